#!/bin/bash
# No UDP datagram leaves the client except to the SOCKS5 relay: a capture on
# the client's only interface during a run of UDP programs (python, socat,
# dig, node) in every mode, including the ones that must refuse (udp: block,
# DNS over UDP with udp: direct in remote DNS mode, a socks4 last hop).
#
#   cli 10.212.1.1 ---- 10.212.1.2 prx 10.212.2.1 ---- 10.212.2.2 tgt
#                       danted :1080 (udpassociate)     udp echo :7, dns :53
#
# Every captured UDP packet from the client must go to 10.212.1.2 on a port
# danted reported as the relay of an association (BND.PORT in its log).
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted socat dig ss python3 tcpdump
sfy_begin
[ -x "$SOCKSIFY_BIN" ] || { echo "FAIL: $SOCKSIFY_BIN not built"; exit 1; }

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$P" 10.212.1 || exit 1
sfy_link "$P" "$T" 10.212.2 || exit 1
# A default route through the proxy (which does not forward): a datagram
# sent directly to the target leaves the client's interface, where the
# capture sees it, and is dropped by the proxy namespace.
ip -n "$C" route add default via 10.212.1.2
PRX=10.212.1.2 TGT=10.212.2.2 CLI=10.212.1.1

# ucli.py HOST PORT N: N datagrams with sendto, then one connected round trip.
cat >"$SFY_TMP/ucli.py" <<'EOF'
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
for i in range(n):
    s.sendto(b"leak%d" % i, (host, port))
    s.recv(100)
c = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
c.settimeout(3)
c.connect(("::ffff:" + host, port))
c.send(b"connected")
print("ok", c.recv(100).decode())
EOF

sfy_bg echo-t "$T" "$SFY_PY" -u "$SFY_TOP/tests/tools/udpserver.py" echo 7
sfy__served echo-t "$T" 7 10 udp
sfy_bg dns-t "$T" "$SFY_PY" -u "$SFY_TOP/tests/tools/udpserver.py" dns 53 10.212.2.99
sfy__served dns-t "$T" 53 10 udp
sfy_danted dante "$P" "$PRX" 1080 none
sfy_danted dante2 "$P" "$PRX" 1081 none

conf() {  # name url [extra yaml line...]
	local name=$1 url=$2 l
	shift 2
	sfy_conf "$name" strict - "$url"
	for l in "$@"; do echo "$l" >>"$SFY_TMP/$name.yaml"; done
}
conf assoc "socks5://$PRX:1080"
conf assoch "socks5h://$PRX:1080"
conf block "socks5://$PRX:1080" "udp: block"
conf directh "socks5h://$PRX:1080" "udp: direct"
conf s4 "socks4://$PRX:1080"
# Two hops (the second danted beside the first): UDP would go from the
# client straight to hop 2's relay, which then learns the client's address.
sfy_conf two strict - "socks5://$PRX:1080" "socks5://$PRX:1081"
sfy_conf two_assoc strict - "socks5://$PRX:1080" "socks5://$PRX:1081"
echo "udp: associate" >>"$SFY_TMP/two_assoc.yaml"
run() { sfy_run "$C" -f "$SFY_TMP/$1.yaml" -- "${@:2}"; }
SFY_WATCH_LOGS="dante-dante"

IFC=$(sfy_ifname "$C" "$P")
sfy_capture_start cap "$C" "$IFC" udp

echo "--- traffic through the relay"
expect_out "python: 50 datagrams + connected AF_INET6" "ok connected" \
	run assoc "$SFY_PY" "$SFY_TMP/ucli.py" "$TGT" 7 50
expect_out "socat UDP" "socat-leak" \
	run assoc sh -c "echo socat-leak | socat -T3 - UDP4:$TGT:7"
expect_out "dig @target (remote DNS mode)" "10.212.2.99" \
	run assoch dig "@$TGT" leak.sfy.test A +short +time=3 +tries=1
if command -v node >/dev/null; then
	expect_out "node dgram" "node-leak" run assoc node -e '
		const s = require("dgram").createSocket("udp4");
		s.on("message", (m) => { console.log(m.toString()); s.close(); });
		s.send("node-leak", 7, process.argv[1]);
		setTimeout(() => process.exit(1), 5000).unref();' "$TGT"
fi

echo "--- refused: nothing may leave"
fails_with "udp: block" "EPERM|Operation not permitted" \
	run block "$SFY_PY" "$SFY_TMP/ucli.py" "$TGT" 7 1
fails_with "udp: direct, remote DNS: dig @target" "refused \(EPERM\)" \
	run directh dig "@$TGT" leak.sfy.test A +time=1 +tries=1
fails_with "udp: direct, remote DNS: python to port 53" "EPERM|Operation not permitted" \
	run directh "$SFY_PY" "$SFY_TMP/ucli.py" "$TGT" 53 1
fails_with "socks4 last hop" "cannot carry UDP" \
	run s4 "$SFY_PY" "$SFY_TMP/ucli.py" "$TGT" 7 1
fails_with "2 hops, no udp: key: UDP blocked" "EPERM|Operation not permitted" \
	run two "$SFY_PY" "$SFY_TMP/ucli.py" "$TGT" 7 1

echo "--- 2 hops with an explicit udp: associate"
expect_out "2 hops, udp: associate: datagrams flow" "ok connected" \
	run two_assoc "$SFY_PY" "$SFY_TMP/ucli.py" "$TGT" 7 2
check "one warning that the relay sees this machine" \
	test "$(grep -c "warning: udp: associate with a chain of 2+ hops" "$SFY_LAST_OUT")" = 1

total=$(sfy_capture_stop cap)
ports=$(cat "$(sfy_logfile dante-dante)" "$(sfy_logfile dante2-dante)" |
	grep -o "udp/udpassociate \[: [^ ]* $PRX\.[0-9]*" |
	sed 's/.*\.//' | sort -u | tr '\n' ' ')
echo "captured $total UDP packets; relay ports from danted: $ports"
tcpdump -nn -r "$SFY_TMP/cap.pcap" 2>/dev/null >"$SFY_TMP/cap.txt"
# "IP 10.212.1.1.40000 > 10.212.1.2.45678: UDP, length 14"
bad=$(awk -v cli="$CLI" -v prx="$PRX" -v ports=" $ports" '
	$2 == "IP6" { print; next }          # no test sends over IPv6 at all
	{
		src = $3; dst = $5; sub(/:$/, "", dst)
		sip = src; sub(/\.[0-9]+$/, "", sip)
		if (sip != cli) next                 # replies from the relay
		dip = dst; sub(/\.[0-9]+$/, "", dip)
		dport = dst; sub(/.*\./, "", dport)
		if (dip != prx || index(ports, " " dport " ") == 0) print
	}' "$SFY_TMP/cap.txt")
from_cli=$(grep -c "IP $CLI\." "$SFY_TMP/cap.txt")
check "the capture saw the relayed traffic ($from_cli datagrams from the client)" \
	test "$from_cli" -ge 50
if [ -z "$bad" ]; then
	sfy__pass "no UDP from the client except to the relay"
else
	sfy__fail "no UDP from the client except to the relay" "leaked:"
	printf '%s\n' "$bad" | head -n 20 | sed 's/^/    | /'
fi
finish
