#!/bin/bash
# Tor's SOCKS extensions against Debian's real tor (issue 14), started by
# the test in a namespace without a route anywhere (it listens, never
# bootstraps, and answers .onion requests itself):
#   SocksPort 127.0.0.1:9050 ExtendedErrors IsolateSOCKSAuth
# - framing and extended errors: curl and a C client asking for an invalid
#   .onion name fail fast with Tor's 0xF6 reply, mapped to EHOSTUNREACH and
#   a log line naming it ("Tor: onion service invalid address (0xf6)");
# - isolation credentials (isolate: process / connection) are accepted by
#   tor; the control: a username tor reads as an unknown <torS0X> format is
#   refused, so tor did parse ours (Tor proposal 351, tor 0.4.9+);
# - .onion/.exit/.i2p names are never resolved locally, in local-DNS mode
#   too (a socks5:// hop, no rules): the lookup gets a fake address and the
#   name goes to tor; with a socks4 last hop it fails. A capture of port 53
#   on the client's only link sees no query; the control run (getent
#   without socksify) proves it sees one. Before issue 14 the local-mode
#   lookup went to the real resolver.
# - dns: proxy (-d proxy): RESOLVE (0xF0) and RESOLVE_PTR (0xF1) framing.
#   tor answers a RESOLVE of a name its MapAddress maps at once (so our
#   request and its reply parse both ways, with isolation credentials too);
#   a name it cannot resolve without network waits for a circuit until its
#   SocksTimeout (3 s), then 0x04 -> EAI_NONAME; socksify's own handshake
#   timeout bounds the wait when shorter (EAI_AGAIN). A reverse lookup of a
#   public address waits the same way, of a private one tor refuses at once
#   (ClientDNSRejectInternalAddresses). tor's info log (SafeLogging 0) names
#   each waiting request "NAME:0"; a control run of raw requests shows that
#   only a resolve request can leave such a line: tor answers a RESOLVE of
#   an address literal at once and refuses a CONNECT to port 0 with its own
#   line -- so "9.9.9.9:0" waiting is our RESOLVE_PTR.
#
#   cli 10.204.1.1 ---- 10.204.1.2 dns   (resolv.conf -> 10.204.1.53, a
#   tor on 127.0.0.1:9050                static neighbour: queries go out)
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd tor curl getent tcpdump ss
sfy_begin
[ -x "$SOCKSIFY_BIN" ] || { echo "FAIL: $SOCKSIFY_BIN not built"; exit 1; }
[ -x "$SFY_TOOLS/tcpclient" ] || { echo "FAIL: $SFY_TOOLS/tcpclient not built"; exit 1; }

C=$(sfy_ns cli) D=$(sfy_ns dns) || exit 1
sfy_link "$C" "$D" 10.204.1 || exit 1
sfy_wire_dns "$C" "$D" 10.204.1

mkdir -m 700 "$SFY_TMP/tor-data"
cat >"$SFY_TMP/torrc" <<EOT
SocksPort 127.0.0.1:9050 ExtendedErrors IsolateSOCKSAuth
DataDirectory $SFY_TMP/tor-data
ClientOnly 1
AvoidDiskWrites 1
Log notice stdout
Log info file $SFY_TMP/tor-info.log
SafeLogging 0
SocksTimeout 3
MapAddress mapped.tortest 192.0.2.7
EOT
sfy_bg tor "$C" tor -f "$SFY_TMP/torrc" --defaults-torrc /dev/null
sfy_wait_port tor "$C" 9050 30 || { echo "FAIL: setup: tor did not start"; exit 1; }
SFY_WATCH_LOGS=tor

conf() {  # name url isolate (none: no isolate: key, as configs before it)
	{
		printf 'proxies:\n  - "%s"\ntimeouts:\n  connect: 3s\n  handshake: 8s\n' "$2"
		[ "$3" = none ] || printf 'isolate: %s\n' "$3"
	} >"$SFY_TMP/$1.yaml"
}
conf remote socks5h://127.0.0.1:9050 none
conf local socks5://127.0.0.1:9050 none
conf s4 socks4://127.0.0.1:9050 none
conf iso_p socks5h://127.0.0.1:9050 process
conf iso_c socks5h://127.0.0.1:9050 connection
conf iso_bad 'socks5h://%3CtorS0X%3E9:x@127.0.0.1:9050' none
# dns: proxy: the last hop's reply is awaited for at most the connect
# timeout (each hop's handshake step is bounded by it), so it stays above
# tor's SocksTimeout here; fast: our own bound below it.
printf 'proxies:\n  - socks5h://127.0.0.1:9050\ntimeouts:\n  connect: 8s\n  handshake: 10s\n' \
	>"$SFY_TMP/slow.yaml"
printf 'proxies:\n  - socks5h://127.0.0.1:9050\ntimeouts:\n  handshake: 1s\n' >"$SFY_TMP/fast.yaml"
# 56 characters of base32 with a wrong checksum: syntactically an onion
# (v3) name, which tor refuses itself (invalid checksum) with 0xF6.
ONION=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaad.onion
F6='Tor: onion service invalid address \(0xf6\).*EHOSTUNREACH'
tc() { "$SFY_TOOLS/tcpclient" --host "$1" --port 80 --timeout-ms 8000; }

echo "--- control: the capture sees a direct lookup of an onion name"
sfy_capture_start ctl "$C" any port 53
fails "getent ahosts $ONION without socksify" sfy_direct "$C" getent ahosts "$ONION"
n=$(sfy_capture_stop ctl)
check "control capture saw DNS queries ($n packets)" test "$n" -gt 0

sfy_capture_start dns "$C" any port 53
echo "--- framing and Tor's extended errors (remote DNS)"
fails_with "curl http://$ONION/: fails with tor's 0xF6" "$F6" \
	sfy_run "$C" -f "$SFY_TMP/remote.yaml" -- curl -sS --max-time 10 "http://$ONION/"
check "...fast (${SFY_LAST_MS}ms < 3000ms)" test "$SFY_LAST_MS" -lt 3000
fails_with "tcpclient: connect() says EHOSTUNREACH" "connect: EHOSTUNREACH" \
	sfy_run "$C" -f "$SFY_TMP/remote.yaml" -- "$SFY_TOOLS/tcpclient" --host "$ONION" --port 80
check "...and the log line names tor's reply" grep -qE "$F6" "$SFY_LAST_OUT"
fails_with "a short name: tor's 0xF6 too" "$F6" \
	sfy_run "$C" -f "$SFY_TMP/remote.yaml" -- "$SFY_TOOLS/tcpclient" --host abc.onion --port 80

echo "--- isolation credentials"
fails_with "isolate: process: accepted, tor answers the request (0xF6)" "$F6" \
	sfy_run "$C" -f "$SFY_TMP/iso_p.yaml" -- "$SFY_TOOLS/tcpclient" --host "$ONION" --port 80
fails_with "isolate: connection: accepted, tor answers the request (0xF6)" "$F6" \
	sfy_run "$C" -f "$SFY_TMP/iso_c.yaml" -- "$SFY_TOOLS/tcpclient" --host "$ONION" --port 80
fails_with "isolation without the launcher: accepted too" "$F6" \
	sfy_preload "$C" SOCKSIFY_CONFIG="$SFY_TMP/iso_p.yaml" -- "$SFY_TOOLS/tcpclient" --host "$ONION" --port 80
fails_with "control: tor parses <torS0X> usernames (format 9 is refused)" \
	"username/password rejected.*EACCES" \
	sfy_run "$C" -f "$SFY_TMP/iso_bad.yaml" -- "$SFY_TOOLS/tcpclient" --host "$ONION" --port 80

echo "--- .onion names are never resolved locally (local-DNS mode, no rules)"
expect_out "--explain: the last hop gets the name" "never resolved on this machine: the last hop gets it by name" \
	"$SOCKSIFY_BIN" -f "$SFY_TMP/local.yaml" --explain "$ONION:80"
expect_out "--explain, socks4 last hop: the lookup fails" "the lookup fails" \
	"$SOCKSIFY_BIN" -f "$SFY_TMP/s4.yaml" --explain "$ONION:80"
expect_out "getent ahosts $ONION: a fake address" "224." \
	sfy_run "$C" -f "$SFY_TMP/local.yaml" -- getent ahosts "$ONION"
expect_out "python gethostbyname: a fake address" "224." \
	sfy_run "$C" -f "$SFY_TMP/local.yaml" -- "$SFY_PY" -c \
	'import socket, sys; print(socket.gethostbyname(sys.argv[1]))' "x.exit"
fails_with "tcpclient: the name reaches tor (its 0xF6)" "$F6" \
	sfy_run "$C" -f "$SFY_TMP/local.yaml" -- "$SFY_TOOLS/tcpclient" --host "$ONION" --port 80
fails_with "curl: the name reaches tor (its 0xF6)" "$F6" \
	sfy_run "$C" -f "$SFY_TMP/local.yaml" -- curl -sS --max-time 10 "http://$ONION/"
fails_with "without the launcher, too" "$F6" \
	sfy_preload "$C" SOCKSIFY_CONFIG="$SFY_TMP/local.yaml" -- "$SFY_TOOLS/tcpclient" --host "$ONION" --port 80
fails "socks4 last hop: the lookup fails (the hop cannot take a name)" \
	sfy_run "$C" -f "$SFY_TMP/s4.yaml" -- getent ahosts "$ONION"
check "...quickly, without asking anyone (${SFY_LAST_MS}ms; tor would take 3 s)" test "$SFY_LAST_MS" -lt 2000
echo "--- dns: proxy: RESOLVE / RESOLVE_PTR against tor"
P=(-f "$SFY_TMP/slow.yaml" -d proxy)
TLOG=$SFY_TMP/tor-info.log
GAI='import socket, sys
try:
    print(socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])
except socket.gaierror as e:
    sys.exit("gaierror: %s" % e)'
waited() { grep -c "Tried for [0-9]* seconds to get a connection to $1:0\." "$TLOG"; }
expect_out "getent ahosts mapped.tortest: tor's own answer (MapAddress)" "192.0.2.7" \
	sfy_run "$C" "${P[@]}" -- getent ahosts mapped.tortest
check "...at once (${SFY_LAST_MS}ms < 2000ms)" test "$SFY_LAST_MS" -lt 2000
expect_out "isolate: process: credentials and RESOLVE accepted" "192.0.2.7" \
	sfy_run "$C" -f "$SFY_TMP/iso_p.yaml" -d proxy -- "$SFY_PY" -c "$GAI" mapped.tortest
expect_out "isolate: connection: the same" "192.0.2.7" \
	sfy_run "$C" -f "$SFY_TMP/iso_c.yaml" -d proxy -- "$SFY_PY" -c "$GAI" mapped.tortest
expect_out "without the launcher (SOCKSIFY_DNS=proxy), isolate: process" "192.0.2.7" \
	sfy_preload "$C" SOCKSIFY_CONFIG="$SFY_TMP/iso_p.yaml" SOCKSIFY_DNS=proxy -- \
	"$SFY_PY" -c "$GAI" mapped.tortest
fails_with "a name tor cannot resolve here: EAI_NONAME (its 0x04)" "Name or service not known" \
	sfy_run "$C" "${P[@]}" -- "$SFY_PY" -c "$GAI" nowhere.tortest
check "...after tor's SocksTimeout (3 s), before our timeouts (8 s): ${SFY_LAST_MS}ms" \
	test "$SFY_LAST_MS" -ge 1900 -a "$SFY_LAST_MS" -lt 7500
check "tor's log: the request for nowhere.tortest:0 waited for a circuit" \
	test "$(waited nowhere.tortest)" -eq 1
fails_with "handshake: 1s: our own bound ends it first (EAI_AGAIN)" "Temporary failure" \
	sfy_run "$C" -f "$SFY_TMP/fast.yaml" -d proxy -- "$SFY_PY" -c "$GAI" slow.tortest
check "...in ${SFY_LAST_MS}ms < 2900ms (tor gives up at 3 s)" test "$SFY_LAST_MS" -lt 2900
fails "getent hosts 9.9.9.9 (RESOLVE_PTR): not found, tor's 0x04" \
	sfy_run "$C" "${P[@]}" -- getent hosts 9.9.9.9
check "...after tor's SocksTimeout: ${SFY_LAST_MS}ms" \
	test "$SFY_LAST_MS" -ge 1900 -a "$SFY_LAST_MS" -lt 7500
check "tor's log: the request for 9.9.9.9:0 waited for a circuit" test "$(waited 9.9.9.9)" -eq 1
expect_out "getnameinfo 9.9.9.9: NI_NAMEREQD fails, then numeric (cached, one request)" \
	"numeric 9.9.9.9" sfy_run "$C" "${P[@]}" -- "$SFY_PY" -c '
import socket
try:
    print(socket.getnameinfo(("9.9.9.9", 80), socket.NI_NAMEREQD))
except socket.gaierror as e:
    print("NAMEREQD:", e)
    print("numeric", socket.getnameinfo(("9.9.9.9", 80), 0)[0])'
check "...NI_NAMEREQD said no name" grep -q "NAMEREQD:.*Name or service not known" "$SFY_LAST_OUT"
check "tor's log: one more request for 9.9.9.9:0" test "$(waited 9.9.9.9)" -eq 2
fails "getent hosts 10.9.8.7: tor refuses a private address's RESOLVE_PTR" \
	sfy_run "$C" "${P[@]}" -- getent hosts 10.9.8.7
check "...at once (${SFY_LAST_MS}ms < 2000ms)" test "$SFY_LAST_MS" -lt 2000
check "tor's log: no CONNECT to port 0 came from us" \
	test "$(grep -c 'asked to connect to port 0' "$TLOG")" -eq 0
# The control: raw requests straight to tor (not through socksify).
RAW='import socket, sys
cmd, host = int(sys.argv[1], 0), sys.argv[2].encode()
s = socket.create_connection(("127.0.0.1", 9050), timeout=10)
s.sendall(b"\x05\x01\x00"); s.recv(2)
s.sendall(bytes([5, cmd, 0, 3, len(host)]) + host + b"\x00\x00")
print(s.recv(64).hex())'
expect_out "control: tor answers a RESOLVE of \"9.9.9.9\" at once, with itself" "0500000109090909" \
	sfy_direct "$C" "$SFY_PY" -c "$RAW" 0xf0 9.9.9.9
check "...without a line of waiting" test "$(waited 9.9.9.9)" -eq 2
expect_out "control: a CONNECT to 9.9.9.9:0 is refused (0x01)" "0501" \
	sfy_direct "$C" "$SFY_PY" -c "$RAW" 1 9.9.9.9
check "...with its own log line" grep -q "asked to connect to port 0" "$TLOG"

n=$(sfy_capture_stop dns)
check "no DNS packet left the client in all of the above ($n)" test "$n" -eq 0 ||
	sfy_capture_show dns

echo "--- tor is stopped"
kill "$(cat "$SFY_TMP/tor.pid")" 2>/dev/null
for _ in $(seq 100); do kill -0 "$(cat "$SFY_TMP/tor.pid")" 2>/dev/null || break; sleep 0.05; done
fails "tor exited" kill -0 "$(cat "$SFY_TMP/tor.pid")"
finish
