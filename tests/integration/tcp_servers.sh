#!/bin/bash
# Real clients through real SOCKS servers, one hop.
#
#   cli 10.201.1.1 ---- 10.201.1.2 prx 10.201.2.1 ---- 10.201.2.2 tgt
#   (ssh -D on         danted :1080 (none, SOCKS4+5)    http :8080 (page,
#    127.0.0.1:1080)   danted :1081 (username)           big.bin, repo.git)
#                      microsocks :1082, :1083 (auth)    echo :7, sshd :22
#                      microsocks [v6]:1084, sshd :22
#
# No forwarding anywhere: the target is reachable from the client only
# through a proxy, which the first checks prove. Every client must fetch the
# known content; targets are IP addresses (names belong to the DNS tests).
# shellcheck source=tests/integration/lib/common.sh
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted microsocks curl wget git node ssh /usr/sbin/sshd socat ss
sfy_begin
if [ "$SFY_VIA" = socksify ] && [ ! -x "$SOCKSIFY_BIN" ]; then
	echo "FAIL: $SOCKSIFY_BIN not built"
	exit 1
fi

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$P" 10.201.1 || exit 1
sfy_link "$P" "$T" 10.201.2 || exit 1
PRX=10.201.1.2 PRX6=$(sfy_v6 10.201.1.2)
TGT=10.201.2.2 TGT6=$(sfy_v6 10.201.2.2)

sfy_git_repo repo
sfy_http web "$T" 8080
sfy_echo echo "$T" 7
sfy_sshd sshd_t "$T" "$TGT" 22
sfy_sshd sshd_p "$P" "$PRX" 22
sfy_danted dante "$P" "$PRX" 1080 none
sfy_danted dante_u "$P" "$PRX" 1081 username
sfy_microsocks ms "$P" "$PRX" 1082
sfy_microsocks ms_a "$P" "$PRX" 1083 msuser 'p@ss:w%rd'
sfy_microsocks ms6 "$P" "$PRX6" 1084
sfy_ssh_socks sshd_socks "$C" 1080 "$PRX" 22
read -r DU DP < <(sfy_user)

echo "--- topology"
fails "client cannot reach the target directly (IPv4)" \
	sfy_direct "$C" curl -sS --connect-timeout 2 "http://$TGT:8080/"
fails "client cannot reach the target directly (IPv6)" \
	sfy_direct "$C" curl -sS --connect-timeout 2 "http://[$TGT6]:8080/"
expect_out "the proxy namespace reaches the target" "$SFY_TOKEN" \
	sfy_direct "$P" curl -sS --max-time 5 "http://$TGT:8080/"

# Clients, each a different way of connecting (blocking libc, Python's
# blocking and asyncio sockets, libuv, curl in a git helper, ssh).
cat >"$SFY_TMP/aio.py" <<'EOF'
import asyncio, sys
async def main(host, port):
    r, w = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 15)
    w.write(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n")
    await w.drain()
    sys.stdout.write((await asyncio.wait_for(r.read(), 15)).decode())
    w.close()
asyncio.run(main(*sys.argv[1:]))
EOF
cat >"$SFY_TMP/get.js" <<'EOF'
const http = require('http');
http.get(process.argv[2], { timeout: 15000 }, (r) => {
	let d = '';
	r.on('data', (c) => { d += c; });
	r.on('end', () => { console.log(d); });
}).on('error', (e) => { console.error('node: ' + e.message); process.exit(1); });
EOF
URLLIB='import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=15).read().decode())'
mapfile -t SSH_OPTS < <(sfy_ssh_opts)

clients() {  # label conf host-in-url
	local l=$1 conf=$2 h=$3 url run
	url=http://$h:8080
	run=(sfy_run "$C" -f "$conf" --)
	echo "--- $l"
	expect_out "$l: curl" "$SFY_TOKEN" "${run[@]}" curl -sS --max-time 15 "$url/"
	rm -f "$SFY_TMP/big.out"
	ok "$l: curl 1 MiB" "${run[@]}" curl -sS --max-time 15 -o "$SFY_TMP/big.out" "$url/big.bin" &&
		expect_out "$l: curl 1 MiB intact" "$SFY_BIG_SHA" sha256sum "$SFY_TMP/big.out"
	expect_out "$l: wget" "$SFY_TOKEN" "${run[@]}" wget -q -T 15 -O - "$url/"
	expect_out "$l: python urllib" "$SFY_TOKEN" "${run[@]}" "$SFY_PY" -c "$URLLIB" "$url/"
	expect_out "$l: python asyncio" "$SFY_TOKEN" \
		"${run[@]}" "$SFY_PY" "$SFY_TMP/aio.py" "${h//[\[\]]/}" 8080
	expect_out "$l: node http.get" "$SFY_TOKEN" "${run[@]}" node "$SFY_TMP/get.js" "$url/"
	rm -rf "$SFY_TMP/clone-$l"
	expect_out "$l: git clone (dumb http)" "$SFY_TOKEN" "${run[@]}" sh -c \
		'HOME=$3 GIT_CONFIG_NOSYSTEM=1 git clone -q "$1" "$2" && cat "$2/README"' \
		sh "$url/repo.git" "$SFY_TMP/clone-$l" "$SFY_TMP"
	expect_out "$l: ssh to the target's sshd" "inet $TGT/24" \
		"${run[@]}" ssh "${SSH_OPTS[@]}" -p 22 "root@$TGT" ip -o -4 addr show
	if [ -x "$SFY_TOOLS/tcpclient" ]; then
		expect_out "$l: tcpclient (blocking)" "ok: 1 round trips" \
			"${run[@]}" "$SFY_TOOLS/tcpclient" --host "${h//[\[\]]/}" --port 7
		expect_out "$l: tcpclient (non-blocking)" "ok: 1 round trips" \
			"${run[@]}" "$SFY_TOOLS/tcpclient" --host "${h//[\[\]]/}" --port 7 --nonblock
	else
		echo "note: $SFY_TOOLS/tcpclient not built, its checks left out"
	fi
}

sfy_conf dante strict - "socks5://$PRX:1080"
sfy_conf dante_u strict - "socks5://$DU:$DP@$PRX:1081"
sfy_conf dante4 strict - "socks4://$PRX:1080"
sfy_conf ms strict - "socks5://$PRX:1082"
sfy_conf ms_a strict - "socks5://msuser:p%40ss%3Aw%25rd@$PRX:1083"
sfy_conf ms6 strict - "socks5://[$PRX6]:1084"
sfy_conf sshd_socks strict - "socks5://127.0.0.1:1080"

SFY_WATCH_LOGS="dante dante-dante web" clients "danted socks5" "$SFY_TMP/dante.yaml" "$TGT"
SFY_WATCH_LOGS="dante_u dante_u-dante web" clients "danted socks5+auth" "$SFY_TMP/dante_u.yaml" "$TGT"
SFY_WATCH_LOGS="dante dante-dante web" clients "danted socks4" "$SFY_TMP/dante4.yaml" "$TGT"
SFY_WATCH_LOGS="ms web" clients "microsocks" "$SFY_TMP/ms.yaml" "$TGT"
SFY_WATCH_LOGS="ms_a web" clients "microsocks+auth" "$SFY_TMP/ms_a.yaml" "$TGT"
SFY_WATCH_LOGS="sshd_socks sshd_p web" clients "ssh -D" "$SFY_TMP/sshd_socks.yaml" "$TGT"

echo "--- IPv6"
expect_out "IPv6 target via danted socks5" "$SFY_TOKEN" \
	sfy_run "$C" -f "$SFY_TMP/dante.yaml" -- curl -sS --max-time 15 "http://[$TGT6]:8080/"
expect_out "IPv6 target via microsocks on an IPv6 address" "$SFY_TOKEN" \
	sfy_run "$C" -f "$SFY_TMP/ms6.yaml" -- curl -sS --max-time 15 "http://[$TGT6]:8080/"
expect_out "IPv4 target via microsocks on an IPv6 address" "$SFY_TOKEN" \
	sfy_run "$C" -f "$SFY_TMP/ms6.yaml" -- "$SFY_PY" -c "$URLLIB" "http://$TGT:8080/"
expect_out "IPv6 target via ssh -D" "$SFY_TOKEN" \
	sfy_run "$C" -f "$SFY_TMP/sshd_socks.yaml" -- curl -sS --max-time 15 "http://[$TGT6]:8080/"

if [ "$SFY_VIA" = socksify ]; then
	echo "--- other ways to name the proxy"
	expect_out "-x URL" "$SFY_TOKEN" \
		sfy_run "$C" -x "socks5://$PRX:1082" -- curl -sS --max-time 15 "http://$TGT:8080/"
	expect_out "SOCKSIFY_PROXY with LD_PRELOAD, no launcher" "$SFY_TOKEN" \
		sfy_preload "$C" SOCKSIFY_PROXY="socks5://$DU:$DP@$PRX:1081" -- \
		curl -sS --max-time 15 "http://$TGT:8080/"
	expect_out "the proxy log names the target" "$TGT:8080" \
		grep -F "$TGT:8080" "$(sfy_logfile ms)"
fi

finish
