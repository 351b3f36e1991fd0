#!/bin/bash
# SOCKS BIND: programs that wait for their peer to connect back (active FTP),
# issue 14 part 1 (semantics: INTERFACE.md `bind:`).
#
#   cli 10.241.1.1 ---- 10.241.1.2 prx 10.241.2.1 ---- 10.241.2.2 srv
#   fakepeer, bindserver  danted :1080 (SOCKS4+5,         vsftpd :21 (anonymous,
#   on 127.0.0.1,         connect, bind, bindreply)        active and passive)
#   nginx 127.0.0.1:8089  tinyproxy :8888 (HTTP CONNECT)   bindserver :7000
#                         microsocks :1081 (no BIND,
#                         all-zero CONNECT BND)
#
# No forwarding anywhere. The client has no route to the server. The server
# has a route to the client's subnet through the proxy namespace, which does
# not forward: a connection the server opens towards the client sends a SYN
# that dies there -- the server cannot reach the client, and the capture on
# the server's link sees every attempt (a SYN to 10.241.1.0/24 is the leak
# this test must never see with `bind: auto`).
# shellcheck source=tests/integration/lib/common.sh
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted microsocks vsftpd lftp nginx tinyproxy curl tcpdump ss
sfy_begin
if [ "$SFY_VIA" = socksify ] && [ ! -x "$SOCKSIFY_BIN" ]; then
	echo "FAIL: $SOCKSIFY_BIN not built"
	exit 1
fi
if [ ! -x "$SFY_TOOLS/bindclient" ]; then
	echo "FAIL: $SFY_TOOLS/bindclient not built"
	exit 1
fi
TOOLS_SRC=$SFY_TOP/tests/tools

C=$(sfy_ns cli) P=$(sfy_ns prx) S=$(sfy_ns srv) || exit 1
sfy_link "$C" "$P" 10.241.1 || exit 1
sfy_link "$P" "$S" 10.241.2 || exit 1
CLI=10.241.1.1 PRX=10.241.1.2 PRX_S=10.241.2.1 SRV=10.241.2.2
ip -n "$S" route add 10.241.1.0/24 via "$PRX_S" || exit 1
S_IF=$(sfy_ifname "$S" "$P")

# ---------------------------------------------------------------- servers

# vsftpd, anonymous read-only, in the foreground. port_promiscuous: it
# connects to whatever PORT/EPRT names, so a wrong advertised address shows
# up as a SYN to it (the capture) rather than as a refused command; the
# checks below read the advertised address from its protocol log instead.
mkdir -p "$SFY_TMP/ftp" "$SFY_TMP/vsftpd-empty"
cp "$SFY_TMP/www/index.html" "$SFY_TMP/www/big.bin" "$SFY_TMP/ftp/"
chmod 755 "$SFY_TMP/ftp" "$SFY_TMP/vsftpd-empty"
chmod 644 "$SFY_TMP/ftp"/*
cat >"$SFY_TMP/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=$SRV
listen_port=21
background=NO
anonymous_enable=YES
local_enable=NO
write_enable=NO
no_anon_password=YES
anon_root=$SFY_TMP/ftp
ftp_username=ftp
nopriv_user=nobody
secure_chroot_dir=$SFY_TMP/vsftpd-empty
port_enable=YES
port_promiscuous=YES
connect_from_port_20=NO
pasv_enable=YES
pasv_address=$SRV
connect_timeout=4
data_connection_timeout=20
seccomp_sandbox=NO
syslog_enable=NO
xferlog_enable=YES
xferlog_std_format=NO
log_ftp_protocol=YES
vsftpd_log_file=$(sfy_logfile vsftpd-proto)
dirmessage_enable=NO
use_localtime=NO
EOF
: >"$(sfy_logfile vsftpd-proto)"
echo vsftpd-proto >>"$SFY_TMP/logs"
sfy_bg vsftpd "$S" vsftpd "$SFY_TMP/vsftpd.conf"
sfy__served vsftpd "$S" 21

sfy_danted dante "$P" "$PRX" 1080 none
{
	echo "Port 8888"
	echo "Listen $PRX"
	echo "Timeout 30"
	echo "LogLevel Info"
	echo "Allow 0.0.0.0/0"
} >"$SFY_TMP/tinyproxy.conf"
sfy_bg tiny "$P" tinyproxy -d -c "$SFY_TMP/tinyproxy.conf"
sfy__served tiny "$P" 8888
sfy_microsocks ms "$P" "$PRX" 1081 || exit 1

sfy_bg bindsrv "$S" "$SFY_PY" -u "$TOOLS_SRC/bindserver.py" --listen "$SRV:7000" \
	--token "$SFY_TOKEN" --log "$(sfy_logfile bindsrv-log)"
echo bindsrv-log >>"$SFY_TMP/logs"
sfy__served bindsrv "$S" 7000

sfy_conf s5 strict - "socks5://$PRX:1080"
sfy_conf s4 strict - "socks4://$PRX:1080"
sfy_conf http strict - "http://$PRX:8888"
sfy_conf ms strict - "socks5://$PRX:1081"
for n in s5 s4 http ms; do
	printf 'bypass:\n  - 127.0.0.0/8\n  - "::1/128"\n' >>"$SFY_TMP/$n.yaml"
done
cp "$SFY_TMP/s5.yaml" "$SFY_TMP/s5off.yaml"
echo "bind: off" >>"$SFY_TMP/s5off.yaml"

FTP=ftp://$SRV
S5=(sfy_run "$C" -f "$SFY_TMP/s5.yaml" --)
S4=(sfy_run "$C" -f "$SFY_TMP/s4.yaml" --)
OFF=(sfy_run "$C" -f "$SFY_TMP/s5off.yaml" --)
BC=$SFY_TOOLS/bindclient

# Lines of the vsftpd protocol log since mark (a line count).
proto_mark() { wc -l <"$(sfy_logfile vsftpd-proto)"; }
proto_since() { tail -n +"$(($1 + 1))" "$(sfy_logfile vsftpd-proto)"; }

echo "--- topology and controls"
check "the server has no address in the client's subnet and no forwarding on the way" \
	sh -c "! ip -n $S -o addr | grep -q 10.241.1. && [ \"\$(ip netns exec $P sysctl -n net.ipv4.ip_forward)\" = 0 ]"
fails "the client cannot reach the server directly" \
	sfy_direct "$C" curl -sS --connect-timeout 2 "$FTP/index.html"
fails "the server cannot reach the client" \
	sfy_direct "$S" curl -sS --connect-timeout 2 "http://$CLI:9/"
expect_out "vsftpd serves active mode to a client it can reach (proxy namespace)" "$SFY_TOKEN" \
	sfy_direct "$P" curl -sS --max-time 15 -P - "$FTP/index.html"
expect_out "passive FTP through danted works (the file is there)" "$SFY_TOKEN" \
	"${S5[@]}" curl -sS --max-time 15 "$FTP/index.html"

# SYNs on the server's link: every connection the server (or anything)
# opens there. Counted by destination when a capture stops.
SYNF='tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0'
syns_to() {  # capture net: SYNs to NET in the capture
	tcpdump -nn -r "$SFY_TMP/$1.pcap" "dst net $2" 2>/dev/null | wc -l
}

echo "--- bind: off (the control: what happens without BIND)"
sfy_capture_start synoff "$S" "$S_IF" "$SYNF"
m=$(proto_mark)
fails "bind: off: curl -P - (active FTP) through danted fails" \
	"${OFF[@]}" curl -sS --max-time 20 -P - "$FTP/index.html"
check "bind: off: curl advertised the client's own address (EPRT |1|$CLI|)" \
	sh -c "tail -n +$((m + 1)) $(sfy_logfile vsftpd-proto) | grep -qF 'EPRT |1|$CLI|'"
fails "bind: off: bindclient's peer cannot connect back (the client's address is unreachable)" \
	"${OFF[@]}" "$BC" --ctrl "$SRV:7000" --timeout-ms 8000
n=$(sfy_capture_stop synoff)
check "bind: off: the capture saw the server's SYNs towards the client ($n SYNs in all)" \
	test "$(syns_to synoff 10.241.1.0/24)" -gt 0

# From here on every check runs with `bind: auto` (the default).
sfy_capture_start syn "$S" "$S_IF" "$SYNF"

ftp_checks() {  # label run-array-name
	local l=$1 m
	local -n run=$2
	echo "--- active FTP through danted ($l)"
	m=$(proto_mark)
	expect_out "$l: curl -P - (EPRT) downloads index.html" "$SFY_TOKEN" \
		"${run[@]}" curl -sS --max-time 20 -P - "$FTP/index.html"
	expect_out "$l: curl advertised danted's address (EPRT |1|$PRX_S|)" "EPRT |1|$PRX_S|" \
		proto_since "$m"
	rm -f "$SFY_TMP/big.$l"
	ok "$l: curl -P - 1 MiB" \
		"${run[@]}" curl -sS --max-time 20 -P - -o "$SFY_TMP/big.$l" "$FTP/big.bin" &&
		expect_out "$l: curl -P - 1 MiB intact" "$SFY_BIG_SHA" sha256sum "$SFY_TMP/big.$l"
	m=$(proto_mark)
	expect_out "$l: curl -P - --disable-eprt (PORT) downloads index.html" "$SFY_TOKEN" \
		"${run[@]}" curl -sS --max-time 20 -P - --disable-eprt "$FTP/index.html"
	expect_out "$l: curl advertised danted's address (PORT ${PRX_S//./,},...)" \
		"PORT ${PRX_S//./,}," proto_since "$m"
	ok "$l: curl -P -, two transfers in one FTP session" \
		"${run[@]}" curl -sS --max-time 20 -P - "$FTP/index.html" "$FTP/index.html" &&
		check "$l: both transfers have the page" \
			test "$(grep -cF "$SFY_TOKEN" "$SFY_LAST_OUT")" -eq 2
	m=$(proto_mark)
	expect_out "$l: lftp with ftp:passive-mode off" "$SFY_TOKEN" \
		"${run[@]}" lftp -c "set ftp:passive-mode off; set net:max-retries 1;
			set net:timeout 10; set cmd:fail-exit yes; open $FTP; cat index.html"
	expect_out "$l: lftp advertised danted's address (PORT ${PRX_S//./,},...)" \
		"PORT ${PRX_S//./,}," proto_since "$m"

	echo "--- bindclient through danted ($l)"
	expect_out "$l: bindclient, blocking accept: the server's line arrives" \
		"data: $SFY_TOKEN from $SRV:" "${run[@]}" "$BC" --ctrl "$SRV:7000"
	expect_out "$l: bindclient, blocking: listener shows danted's address" \
		"listen-addr: $PRX_S:" cat "$SFY_LAST_OUT"
	expect_out "$l: bindclient, blocking: getpeername is the server" \
		"accepted: $SRV:" cat "$SFY_LAST_OUT"
	expect_out "$l: bindclient, blocking: accept's address is the server" \
		"accept-addr: $SRV:" cat "$SFY_LAST_OUT"
	expect_out "$l: bindclient, blocking: accepted fd is blocking, no cloexec" \
		"flags: nonblock=0 cloexec=0" cat "$SFY_LAST_OUT"
	# The same calls through syscall(SYS_bind/getsockname/listen/accept[4]).
	expect_out "$l: bindclient --raw (syscall()), blocking: the line arrives" \
		"data: $SFY_TOKEN from $SRV:" "${run[@]}" "$BC" --ctrl "$SRV:7000" --raw
	expect_out "$l: bindclient --raw: listener shows danted's address" \
		"listen-addr: $PRX_S:" cat "$SFY_LAST_OUT"
	expect_out "$l: bindclient --raw (syscall()), epoll + accept4: the line arrives" \
		"data: $SFY_TOKEN from $SRV:" "${run[@]}" "$BC" --ctrl "$SRV:7000" --raw --nonblock
	expect_out "$l: bindclient, epoll + accept4(NONBLOCK|CLOEXEC): the line arrives" \
		"data: $SFY_TOKEN from $SRV:" "${run[@]}" "$BC" --ctrl "$SRV:7000" --nonblock
	expect_out "$l: bindclient, epoll: getpeername is the server" \
		"accepted: $SRV:" cat "$SFY_LAST_OUT"
	expect_out "$l: bindclient, epoll: accepted fd is non-blocking and close-on-exec" \
		"flags: nonblock=1 cloexec=1" cat "$SFY_LAST_OUT"
	check "$l: bindclient, epoll: never woken for nothing (no EAGAIN)" \
		sh -c "! grep -q EAGAIN $SFY_LAST_OUT"
	expect_out "$l: bindclient bound to the control's address (curl -P -)" \
		"data: $SFY_TOKEN from $SRV:" "${run[@]}" "$BC" --ctrl "$SRV:7000" --bind ctrl
	expect_out "$l: bindclient never bound, listen() first" \
		"data: $SFY_TOKEN from $SRV:" "${run[@]}" "$BC" --ctrl "$SRV:7000" --bind none --listen-first
	expect_out "$l: bindclient, 3 listeners in turn on one control connection" \
		"ok: 3 exchanges" "${run[@]}" "$BC" --ctrl "$SRV:7000" --count 3 --nonblock
}
ftp_checks socks5 S5
ftp_checks socks4 S4

echo "--- local listeners stay local"
nb=$(grep -c 'tcp/bind' "$(sfy_logfile dante-dante)")
expect_out "OAuth-style listener on 127.0.0.1:0 after a proxied connect is local" \
	"local: ok 127.0.0.1:" "${S5[@]}" "$BC" --ctrl "$SRV:7000" --local 127.0.0.1:0
expect_out "a fixed port on the wildcard (0.0.0.0:18089) after a proxied connect is local" \
	"local: ok 0.0.0.0:18089" "${S5[@]}" "$BC" --ctrl "$SRV:7000" --local 0.0.0.0:18089
expect_out "a loopback listener on [::1]:0 after a proxied connect is local" \
	"local: ok [::1]:" "${S5[@]}" "$BC" --ctrl "$SRV:7000" --local "[::1]:0"
check "danted saw no BIND for the local listeners" \
	test "$(grep -c 'tcp/bind' "$(sfy_logfile dante-dante)")" -eq "$nb"

sfy_nginx_conf 64 <<EOF
		listen 127.0.0.1:8089;
		listen 8090;
		root $SFY_TMP/www;
EOF
pre=()
[ "${SANITIZE:-}" = 1 ] && [ -n "${SFY_ASAN_RT:-}" ] && pre=(LD_PRELOAD="$SFY_ASAN_RT")
# One socksify tree: nginx starts, then active FTP runs beside it.
sfy_bg nginx "$C" env "${pre[@]}" ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} \
	${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} \
	"$SOCKSIFY_BIN" -f "$SFY_TMP/s5.yaml" -- sh -c '
	nginx -p "$1/nginx" -e "$1/nginx/error.log" -c "$1/nginx/nginx.conf" &
	sleep 1
	curl -sS --max-time 20 -P - -o "$1/nginx-ftp.out" "$2/index.html"
	echo "ftp exit $?"
	wait' sh "$SFY_TMP" "$FTP"
sfy__served nginx "$C" 8089
sfy__served nginx "$C" 8090
expect_out "nginx under socksify serves on 127.0.0.1:8089" "$SFY_TOKEN" \
	sfy_direct "$C" curl -sS --max-time 10 http://127.0.0.1:8089/
expect_out "nginx under socksify serves on *:8090 (the client's own address)" "$SFY_TOKEN" \
	sfy_direct "$C" curl -sS --max-time 10 "http://$CLI:8090/"
for _ in $(seq 100); do grep -q 'ftp exit' "$(sfy_logfile nginx)" && break; sleep 0.2; done
expect_out "active FTP in the same socksify tree as nginx works" "ftp exit 0" \
	cat "$(sfy_logfile nginx)"
expect_out "active FTP beside nginx got the page" "$SFY_TOKEN" cat "$SFY_TMP/nginx-ftp.out"
check "nginx's listeners are real local sockets (ss)" \
	sh -c "ip netns exec $C ss -Hltn | grep -q '127.0.0.1:8089' && ip netns exec $C ss -Hltn | grep -q ':8090'"

echo "--- no BIND possible"
fails_with "HTTP last hop: bindclient's listen fails with EOPNOTSUPP" "listen: EOPNOTSUPP" \
	sfy_run "$C" -f "$SFY_TMP/http.yaml" -- "$BC" --ctrl "$SRV:7000"
expect_out "HTTP last hop: the warn line names the hop" "hop 1 is http" cat "$SFY_LAST_OUT"
# curl binds the data socket to getsockname() of the control connection:
# where no BIND is possible that must not become a local listener whose
# address (the client's own) goes to the server.
active_refused() {  # LABEL CONFIG WARN-REGEX WARN-LABEL: curl -P - fails, one warn line
	local m out
	m=$(proto_mark)
	fails "$1: curl -P - fails" \
		sfy_run "$C" -f "$SFY_TMP/$2.yaml" -- curl -sS --max-time 20 -P - "$FTP/index.html"
	out=$SFY_LAST_OUT
	check "$1: curl -P - got one warn line$4" \
		sh -c "grep socksify $out; test \$(grep -c '^socksify.*: warn: $3' $out) -eq 1"
	check "$1: curl -P - never advertised the client's address" \
		sh -c "! tail -n +$((m + 1)) $(sfy_logfile vsftpd-proto) | grep -qE 'EPRT \|1\|10\.241\.1\.|PORT 10,241,1,'"
}
active_refused "HTTP last hop" http '.*hop 1 is http' " naming the hop"
# microsocks says 0.0.0.0:0 as the CONNECT BND: getsockname() of the
# control connection is the client's own address again, and microsocks
# has no BIND (reply 7).
active_refused microsocks ms '' ""

n=$(sfy_capture_stop syn)
check "bind: auto: no SYN from the server towards the client's subnet ($n SYNs in all)" \
	test "$(syns_to syn 10.241.1.0/24)" -eq 0
check "bind: auto: the server connected to danted's BIND ports (SYNs to $PRX_S)" \
	test "$(syns_to syn "$PRX_S/32")" -gt 0

echo "--- fake peer: refused and failed replies"
# The control connection to $SRV:7000 goes through fakepeer, which relays
# every CONNECT to a bindserver on the client's loopback; the BIND section
# of its script is the case under test.
sfy_bg bindsrv_l "$C" "$SFY_PY" -u "$TOOLS_SRC/bindserver.py" --listen "127.0.0.1:7001" \
	--token "$SFY_TOKEN" --log "$(sfy_logfile bindsrv_l-log)"
sfy__served bindsrv_l "$C" 7001
# BND 10.241.2.1:8000 for the CONNECT
CONNECT_OK='readsocks5; send 0500; readsocks5; oncmd 1; send 05000001 0af10201 1f40; relay 127.0.0.1:7001'
fp() {  # name bind-steps [connect-steps]: starts a fakepeer, writes $SFY_TMP/NAME.yaml
	local name=$1 port i
	sfy_bg "$name" "$C" "$SFY_PY" -u "$TOOLS_SRC/fakepeer.py" --port-file "$SFY_TMP/$name.port" \
		--log "$(sfy_logfile "$name-log")" "${3:-$CONNECT_OK}; oncmd 2; $2"
	for i in $(seq 100); do [ -s "$SFY_TMP/$name.port" ] && break; sleep 0.05; done
	port=$(cat "$SFY_TMP/$name.port") || { echo "FAIL: setup: fakepeer $name"; exit 1; }
	sfy_conf "$name" strict - "socks5://127.0.0.1:$port"
}
fp fp_refused 'send 05020001 00000000 0000'
fp fp_tor 'send 05070001 00000000 0000'
# first reply 10.241.2.1:40000, then a failed second reply / EOF
fp fp_fail2 'send 05000001 0af10201 9c40; sleep 0.3; send 05050001 00000000 0000; stall'
fp fp_eof2 'send 05000001 0af10201 9c40; sleep 0.3; close'
# first reply all-zero (the proxy's own address), second reply from 10.10.10.10:1234
fp fp_ok 'send 05000001 00000000 9c41; sleep 0.3; send 05000001 0a0a0a0a 04d2; sendtext fake-line\n; stall'
# the same after a CONNECT reply with an all-zero BND too (microsocks)
fp fp_okz 'send 05000001 00000000 9c41; sleep 0.3; send 05000001 0a0a0a0a 04d2; sendtext fake-line\n; stall' \
	"${CONNECT_OK/0af10201 1f40/00000000 0000}"
# second reply all-zero: the peer is the expected one
fp fp_ok0 'send 05000001 0af10201 9c42; sleep 0.3; send 05000001 00000000 0000; sendtext fake-line\n; stall'
FPR=(sfy_run "$C" -f)

fails_with "refused first reply (0x02): listen fails with EACCES" "listen: EACCES" \
	"${FPR[@]}" "$SFY_TMP/fp_refused.yaml" -- "$BC" --ctrl "$SRV:7000"
check "the BIND request: SOCKS5 CMD 2, DST = the control's destination, port 0" \
	grep -q "^2 request 050200010af102020000$" "$(sfy_logfile fp_refused-log)"
fails_with "command not supported (0x07, Tor): listen fails with EOPNOTSUPP" "listen: EOPNOTSUPP" \
	"${FPR[@]}" "$SFY_TMP/fp_tor.yaml" -- "$BC" --ctrl "$SRV:7000"
fails_with "failed second reply: blocking accept fails with ECONNABORTED" "accept: ECONNABORTED" \
	"${FPR[@]}" "$SFY_TMP/fp_fail2.yaml" -- "$BC" --ctrl "$SRV:7000"
out=$SFY_LAST_OUT ms=$SFY_LAST_MS
check "failed second reply: no hang (${ms} ms < 5 s)" test "$ms" -lt 5000
expect_out "failed second reply: the listener showed the first reply's address" \
	"listen-addr: $PRX_S:40000" cat "$out"
expect_out "failed second reply: one warn line says why" "the second reply failed" cat "$out"
fails_with "failed second reply: epoll + accept4 fails with ECONNABORTED" "accept4: ECONNABORTED" \
	"${FPR[@]}" "$SFY_TMP/fp_fail2.yaml" -- "$BC" --ctrl "$SRV:7000" --nonblock
ms=$SFY_LAST_MS
check "failed second reply (epoll): no hang (${ms} ms < 5 s)" test "$ms" -lt 5000
fails_with "EOF instead of the second reply: accept fails with ECONNABORTED" "accept: ECONNABORTED" \
	"${FPR[@]}" "$SFY_TMP/fp_eof2.yaml" -- "$BC" --ctrl "$SRV:7000"
# "The proxy's own address": the CONNECT reply's BND (its side facing the
# peer) or the last hop's address; never a wildcard or the client's own.
ok "all-zero first reply: the exchange completes" \
	"${FPR[@]}" "$SFY_TMP/fp_ok.yaml" -- "$BC" --ctrl "$SRV:7000" --timeout-ms 8000
check "all-zero first reply: the listener shows the proxy's own address (127.0.0.1 or $PRX_S)" \
	grep -qE "^listen-addr: (127\.0\.0\.1|${PRX_S//./\\.}):40001\$" "$SFY_LAST_OUT"
expect_out "all-zero first and CONNECT replies: the listener shows the last hop's address" \
	"listen-addr: 127.0.0.1:40001" \
	"${FPR[@]}" "$SFY_TMP/fp_okz.yaml" -- "$BC" --ctrl "$SRV:7000" --timeout-ms 8000
expect_out "second reply: getpeername is the address it names" \
	"accepted: 10.10.10.10:1234" cat "$SFY_LAST_OUT"
expect_out "second reply: the BIND connection's bytes arrive on the accepted fd" \
	"data: fake-line" cat "$SFY_LAST_OUT"
expect_out "all-zero second reply: getpeername is the expected peer" \
	"accepted: $SRV:" \
	"${FPR[@]}" "$SFY_TMP/fp_ok0.yaml" -- "$BC" --ctrl "$SRV:7000" --nonblock --timeout-ms 8000

finish
