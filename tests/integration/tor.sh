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
# RESOLVE (0xF0) framing against tor belongs to `dns: proxy` (tested there).
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
ip -n "$C" neigh replace 10.204.1.53 lladdr 02:00:0a:cc:01:35 dev "$(sfy_ifname "$C" "$D")" nud permanent
printf 'nameserver 10.204.1.53\noptions timeout:1 attempts:1\n' | sfy_etc "$C" resolv.conf
printf '127.0.0.1 localhost\n' | sfy_etc "$C" hosts

mkdir -m 700 "$SFY_TMP/tor-data"
cat >"$SFY_TMP/torrc" <<EOT
SocksPort 127.0.0.1:9050 ExtendedErrors IsolateSOCKSAuth
DataDirectory $SFY_TMP/tor-data
ClientOnly 1
AvoidDiskWrites 1
Log notice stdout
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
check "...quickly, without asking anyone (${SFY_LAST_MS}ms)" test "$SFY_LAST_MS" -lt 500
n=$(sfy_capture_stop dns)
check "no DNS packet left the client in all of the above ($n)" test "$n" -eq 0 ||
	sfy_capture_show dns

echo "--- tor is stopped"
kill "$(cat "$SFY_TMP/tor.pid")" 2>/dev/null
for _ in $(seq 100); do kill -0 "$(cat "$SFY_TMP/tor.pid")" 2>/dev/null || break; sleep 0.05; done
fails "tor exited" kill -0 "$(cat "$SFY_TMP/tor.pid")"
finish
