#!/bin/bash
# Chains of proxies: strict, dynamic, random, round_robin, and failures.
#
#   cli --10.202.1-- h1 --10.202.2-- h2 --10.202.3-- h3 --10.202.4-- tgt
#                    danted :1080    danted :1080    microsocks     http :8080
#                    (hop1, socks5)  (hop2, socks4a) :1080 auth     echo :7
#                    microsocks                      (hop3, socks5)
#                    :1091-1093 (rr/random)  http :8080 (their target)
#
# No forwarding: every namespace reaches only its direct neighbours, so
# client -> hop1 -> hop2 -> hop3 -> target is the one path to the target and
# a chain that skips a hop cannot work; the first checks prove both.
# shellcheck source=tests/integration/lib/common.sh
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted microsocks curl socat ss
sfy_begin
if [ "$SFY_VIA" = socksify ] && [ ! -x "$SOCKSIFY_BIN" ]; then
	echo "FAIL: $SOCKSIFY_BIN not built"
	exit 1
fi

C=$(sfy_ns cli) H1=$(sfy_ns h1) H2=$(sfy_ns h2) H3=$(sfy_ns h3) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$H1" 10.202.1 || exit 1
sfy_link "$H1" "$H2" 10.202.2 || exit 1
sfy_link "$H2" "$H3" 10.202.3 || exit 1
sfy_link "$H3" "$T" 10.202.4 || exit 1
A1=10.202.1.2 A2=10.202.2.2 A3=10.202.3.2 TGT=10.202.4.2

sfy_http web "$T" 8080
sfy_echo echo "$T" 7
sfy_http web2 "$H2" 8080
sfy_danted hop1 "$H1" "$A1" 1080 none
sfy_danted hop2 "$H2" "$A2" 1080 none
sfy_microsocks hop3 "$H3" "$A3" 1080 chainuser 'ch@in:pw'
for i in 1 2 3; do sfy_microsocks "r$i" "$H1" "$A1" "109$i"; done

HOP1=socks5://$A1:1080
HOP2=socks4a://$A2:1080
HOP3='socks5://chainuser:ch%40in%3Apw@'$A3:1080
BADPW='socks5://chainuser:wrong@'$A3:1080
DEAD1=socks5://$A1:1099      # refused at once by h1's kernel
DEAD2=socks5://$A2:1099      # refused by h2: hop1 reports the failure
CURL=(curl -sS --max-time 20 "http://$TGT:8080/")
# A connect() whose errno is printed by name, as an application sees it.
PYCONN='import errno, socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
    print("connected")
except OSError as e:
    print("connect failed:", errno.errorcode.get(e.errno, e.errno), e)
    sys.exit(1)'

echo "--- topology"
ok "client reaches hop1" sfy_direct "$C" socat -T2 - "TCP:$A1:1080,connect-timeout=2"
ok "hop2 reaches hop3" sfy_direct "$H2" socat -T2 - "TCP:$A3:1080,connect-timeout=2"
fails "client cannot reach hop2" sfy_direct "$C" socat -T2 - "TCP:$A2:1080,connect-timeout=2"
fails "client cannot reach hop3" sfy_direct "$C" \
	socat -T2 - "TCP:$A3:1080,connect-timeout=2"
fails "client cannot reach the target" sfy_direct "$C" curl -sS --connect-timeout 2 "http://$TGT:8080/"
fails "hop1 cannot reach hop3" sfy_direct "$H1" socat -T2 - "TCP:$A3:1080,connect-timeout=2"
fails "hop2 cannot reach the target" sfy_direct "$H2" curl -sS --connect-timeout 2 "http://$TGT:8080/"

echo "--- strict"
sfy_conf chain3 strict - "$HOP1" "$HOP2" "$HOP3"
sfy_conf skip2 strict - "$HOP1" "$HOP3"
sfy_conf skip1 strict - "$HOP2" "$HOP3"
export SFY_WATCH_LOGS="hop1-dante hop2-dante hop3 web"
expect_out "3-hop strict chain socks5 -> socks4a -> socks5+auth: curl" "$SFY_TOKEN" \
	sfy_run "$C" -f "$SFY_TMP/chain3.yaml" -- "${CURL[@]}"
ok "3-hop strict chain: 1 MiB" sfy_run "$C" -f "$SFY_TMP/chain3.yaml" -- \
	curl -sS --max-time 20 -o "$SFY_TMP/big.out" "http://$TGT:8080/big.bin" &&
	expect_out "3-hop strict chain: 1 MiB intact" "$SFY_BIG_SHA" sha256sum "$SFY_TMP/big.out"
expect_out "3-hop strict chain: python" "connected" \
	sfy_run "$C" -f "$SFY_TMP/chain3.yaml" -- "$SFY_PY" -c "$PYCONN" "$TGT" 8080
if [ -x "$SFY_TOOLS/tcpclient" ]; then
	expect_out "3-hop strict chain: tcpclient non-blocking, 20 round trips" "ok: 20 round trips" \
		sfy_run "$C" -f "$SFY_TMP/chain3.yaml" -- "$SFY_TOOLS/tcpclient" \
		--host "$TGT" --port 7 --nonblock --count 20
fi
expect_out "hop3 saw the target request" "connected to $TGT:8080" cat "$(sfy_logfile hop3)"
fails "strict chain without hop2 cannot reach the target" \
	sfy_run "$C" -f "$SFY_TMP/skip2.yaml" -- curl -sS --max-time 20 "http://$TGT:8080/"
fails "strict chain without hop1 cannot reach the target" \
	sfy_run "$C" -f "$SFY_TMP/skip1.yaml" -- curl -sS --max-time 20 "http://$TGT:8080/"
fails "strict chain without hop2 cannot reach the target: python" \
	sfy_run "$C" -f "$SFY_TMP/skip2.yaml" -- "$SFY_PY" -c "$PYCONN" "$TGT" 8080

echo "--- a dead hop"
sfy_conf dyn_dead1 dynamic - "$DEAD1" "$HOP1" "$HOP2" "$HOP3"
sfy_conf dyn_dead2 dynamic - "$HOP1" "$DEAD2" "$HOP2" "$HOP3"
sfy_conf strict_dead strict - "$HOP1" "$DEAD2" "$HOP2" "$HOP3"
expect_out "dynamic chain, first hop dead: works" "$SFY_TOKEN" \
	sfy_run "$C" -f "$SFY_TMP/dyn_dead1.yaml" -- "${CURL[@]}"
expect_out "dynamic chain, second hop dead: works" "$SFY_TOKEN" \
	sfy_run "$C" -f "$SFY_TMP/dyn_dead2.yaml" -- "${CURL[@]}"
expect_out "dynamic chain, first hop dead: python" "connected" \
	sfy_run "$C" -f "$SFY_TMP/dyn_dead1.yaml" -- "$SFY_PY" -c "$PYCONN" "$TGT" 8080
expect_out "dynamic chain, second hop dead: python" "connected" \
	sfy_run "$C" -f "$SFY_TMP/dyn_dead2.yaml" -- "$SFY_PY" -c "$PYCONN" "$TGT" 8080
# curl's exit 7 is "Failed to connect"; a proxy-protocol error would be 97.
fails_with "strict chain with a dead hop: curl reports a connect failure" \
	"Failed to connect|Couldn't connect|refused" \
	sfy_run "$C" -f "$SFY_TMP/strict_dead.yaml" -- "${CURL[@]}"
rc=$SFY_LAST_RC ms=$SFY_LAST_MS
check "strict chain with a dead hop: curl exit 7 ($rc)" test "$rc" = 7
check "strict chain with a dead hop: curl fails fast ($ms ms < 2900, before the 3 s timeout)" test "$ms" -lt 2900
fails_with "strict chain with a dead hop: python sees ECONNREFUSED" "ECONNREFUSED" \
	sfy_run "$C" -f "$SFY_TMP/strict_dead.yaml" -- "$SFY_PY" -c "$PYCONN" "$TGT" 8080
ms=$SFY_LAST_MS
check "strict chain with a dead hop: python fails fast ($ms ms < 2900, before the 3 s timeout)" test "$ms" -lt 2900
if [ -x "$SFY_TOOLS/tcpclient" ]; then
	fails_with "strict chain with a dead hop: tcpclient sees ECONNREFUSED" \
		"connect: ECONNREFUSED" \
		sfy_run "$C" -f "$SFY_TMP/strict_dead.yaml" -- "$SFY_TOOLS/tcpclient" --host "$TGT" --port 7
	fails_with "strict chain with a dead hop: non-blocking tcpclient sees ECONNREFUSED" \
		"ECONNREFUSED" \
		sfy_run "$C" -f "$SFY_TMP/strict_dead.yaml" -- "$SFY_TOOLS/tcpclient" --host "$TGT" \
		--port 7 --nonblock
fi

echo "--- wrong password"
sfy_conf badpw strict - "$HOP1" "$HOP2" "$BADPW"
fails_with "wrong password on hop3: clean failure naming auth/permission" \
	"auth|password|permission|denied|EACCES" \
	sfy_run "$C" -f "$SFY_TMP/badpw.yaml" -- "${CURL[@]}"
ms=$SFY_LAST_MS
check "wrong password: no hang ($ms ms < 5000)" test "$ms" -lt 5000
fails_with "wrong password on hop3: python fails cleanly" "connect failed" \
	sfy_run "$C" -f "$SFY_TMP/badpw.yaml" -- "$SFY_PY" -c "$PYCONN" "$TGT" 8080
ms=$SFY_LAST_MS
check "wrong password: python does not hang ($ms ms < 5000)" test "$ms" -lt 5000

# Selection modes: three one-hop proxies in h1, each able to reach h2's web
# server (which the client cannot); the proxies' logs tell which were used.
# All connections come from one process, where the rotation state lives.
echo "--- round_robin and random"
export SFY_WATCH_LOGS="r1 r2 r3 web2"
RR=("socks5://$A1:1091" "socks5://$A1:1092" "socks5://$A1:1093")
FETCH='import sys, urllib.request
n = int(sys.argv[2])
for i in range(n):
    body = urllib.request.urlopen(sys.argv[1], timeout=20).read().decode()
    assert sys.argv[3] in body, body
print("fetched", n)'
# Per proxy, the connections it made to the final target ("connected to
# A2:8080") and to another proxy (a middle hop). The target count is exact;
# the middle count may exceed the hops used: a proxy that drops a pipelined
# request (microsocks reads one message per recv) makes socksify redo the
# chain step by step, and the earlier hop logs that attempt too.
counts() {  # kind: final|middle -> "n1 n2 n3"
	local i pat f
	[ "$1" = final ] && pat="connected to $A2:8080" || pat="connected to $A1:109"
	for i in 1 2 3; do
		f=$(sfy_logfile "r$i")
		printf '%s ' "$(grep -c "$pat" "$f")"
	done
}
delta() {  # before after -> per-proxy differences
	local -a b a
	read -ra b <<<"$1"
	read -ra a <<<"$2"
	echo "$((a[0] - b[0])) $((a[1] - b[1])) $((a[2] - b[2]))"
}
sum() { local -a d; read -ra d <<<"$1"; echo $((d[0] + d[1] + d[2])); }
used() { local n=0 x; for x in $1; do [ "$x" -gt 0 ] && n=$((n + 1)); done; echo "$n"; }
both() {  # F M -> how many proxies appear in either
	local -a f m
	read -ra f <<<"$1"
	read -ra m <<<"$2"
	local n=0 i
	for i in 0 1 2; do [ $((f[i] + m[i])) -gt 0 ] && n=$((n + 1)); done
	echo "$n"
}
fails "rr target is not reachable directly" sfy_direct "$C" curl -sS --connect-timeout 2 "http://$A2:8080/"

mode_run() {  # label conf n -> sets F (last hops) and M (middle hops) per proxy
	local bf bm
	bf=$(counts final) bm=$(counts middle)
	expect_out "$1: $3 connections fetched" "fetched $3" \
		sfy_run "$C" -f "$SFY_TMP/$2.yaml" -- "$SFY_PY" -c "$FETCH" "http://$A2:8080/" "$3" "$SFY_TOKEN"
	sleep 0.2  # microsocks logs after connecting; let the last line land
	F=$(delta "$bf" "$(counts final)") M=$(delta "$bm" "$(counts middle)")
	check "$1: $3 connections reached the target through the proxies (last hops: $F)" \
		test "$(sum "$F")" -eq "$3"
}

sfy_conf rr1 round_robin 1 "${RR[@]}"
# First, each proxy once: what a non-blocking connect learns about a proxy
# that drops pipelined bytes costs the target one extra connection (the
# race's step-by-step side, on a private socket), once per proxy; the
# counts below are of connections made knowing it.
sfy_run "$C" -f "$SFY_TMP/rr1.yaml" -- "$SFY_PY" -c "$FETCH" "http://$A2:8080/" 3 "$SFY_TOKEN" \
	>/dev/null 2>&1
mode_run "round_robin, chain_length 1" rr1 6
check "round_robin, chain_length 1: 2 connections per proxy ($F)" test "$F" = "2 2 2"
check "round_robin, chain_length 1: no middle hops ($M)" test "$M" = "0 0 0"
sfy_conf rr2 round_robin 2 "${RR[@]}"
mode_run "round_robin, chain_length 2" rr2 6
# Whether the start moves by 1 or by chain_length, 6 two-hop chains over 3
# proxies end at each proxy twice and start at each at least twice.
check "round_robin, chain_length 2: each proxy the last hop twice ($F)" test "$F" = "2 2 2"
check "round_robin, chain_length 2: each proxy a first hop ($M)" \
	bash -c 'for x in $1; do [ "$x" -ge 2 ] || exit 1; done' sh "$M"
sfy_conf rnd1 random 1 "${RR[@]}"
mode_run "random, chain_length 1" rnd1 12
check "random, chain_length 1: no middle hops ($M)" test "$M" = "0 0 0"
# P(all 12 on one proxy) = 3^-11: "more than one used" does not flake.
check "random, chain_length 1: more than one proxy used ($F)" test "$(used "$F")" -ge 2
sfy_conf rnd2 random 2 "${RR[@]}"
mode_run "random, chain_length 2" rnd2 12
check "random, chain_length 2: 12 or more middle hops ($M)" test "$(sum "$M")" -ge 12
# A proxy never the last hop of 12 picks: P = 3 * (2/3)^12 = 2%: too likely
# to assert; a proxy in no pick at all: 3 * 3^-12.
check "random, chain_length 2: every proxy used ($F / $M)" \
	test "$(both "$F" "$M")" -eq 3

finish
