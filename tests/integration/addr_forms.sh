#!/bin/bash
# Every address form the kernel takes as a destination is tunnelled, and
# sockets socksify cannot proxy (raw, ICMP, UDP-Lite, SCTP) are refused:
# tests/tools/addrforms tries each form (a 24-byte sockaddr_in6 of
# ::ffff:a.b.c.d for TCP connect, sendto(MSG_FASTOPEN) and UDP, AF_UNSPEC
# on IPv4 UDP sends, AF_INET on AF_INET6 UDP sockets, TCP Fast Open through
# sendmsg()/sendmmsg(), MPTCP, raw/ICMP/UDP-Lite/SCTP sockets).
#
#   cli 10.221.1.1 ---- 10.221.1.2 prx 10.221.2.1 ---- 10.221.2.2 tgt
#   cli 10.221.3.1 ------------------------------------ 10.221.3.2 tgt
#                       danted :1080                    tcp echo :7, udp echo :7
#
# The target address 10.221.3.2 is reachable directly over the lower link,
# so a leak would succeed: a control run without socksify shows the
# capture on that link sees each form, and the run through socksify must
# put 0 packets on it. The UDP echo names its sender: the proxy, not us.
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted socat ss python3 tcpdump
sfy_begin
[ -x "$SFY_TOOLS/addrforms" ] || { echo "FAIL: $SFY_TOOLS/addrforms not built"; exit 1; }

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$P" 10.221.1 || exit 1
sfy_link "$P" "$T" 10.221.2 || exit 1
sfy_link "$C" "$T" 10.221.3 || exit 1
ip -n "$P" route add 10.221.3.0/24 via 10.221.2.2
# The target answers the proxy from the address the proxy sent to (a UDP
# server on the wildcard address replies from the route's source, and
# danted drops a reply from another address).
ip -n "$T" route replace 10.221.2.0/24 dev "$(sfy_ifname "$T" "$P")" src 10.221.3.2
PRX=10.221.1.2 PRX_OUT=10.221.2.1 TGT=10.221.3.2 CLI_D=10.221.3.1
# ICMP datagram ("ping") sockets for everyone, as most distributions set it.
ip netns exec "$C" sysctl -qw net.ipv4.ping_group_range="0 2147483647"

sfy_echo echo-t "$T" 7
sfy_bg uecho-t "$T" "$SFY_PY" -u "$SFY_TOP/tests/tools/udpserver.py" echo 7
sfy__served uecho-t "$T" 7 10 udp
sfy_danted dante "$P" "$PRX" 1080 none
sfy_conf via strict - "socks5://$PRX:1080"
sfy_conf bypass strict - "socks5://$PRX:1080"
printf 'bypass:\n  - %s/32\n' "$TGT" >>"$SFY_TMP/bypass.yaml"
SFY_WATCH_LOGS="dante-dante"
IFC=$(sfy_ifname "$C" "$T")
FILTER="(ip and src host $CLI_D) or (ip6 and src host $(sfy_v6 $CLI_D))"
FORMS="$SFY_TOOLS/addrforms --host $TGT --tcp 7 --udp 7"

TUNNELLED="tcp6-mapped-len24 tcp6-mapped-len24-tfo-sendto tfo-sendmsg tfo-sendmmsg
	udp4-unspec-sendto udp4-unspec-sendmsg udp4-unspec-sendmmsg udp6-inet-sendto
	udp6-inet-connect udp6-mapped-len24-sendto udp6-mapped-len24-connect mptcp"
UDP_FORMS="udp4-unspec-sendto udp4-unspec-sendmsg udp4-unspec-sendmmsg udp6-inet-sendto
	udp6-inet-connect udp6-mapped-len24-sendto udp6-mapped-len24-connect"
REFUSED="sctp sctp-seqpacket raw-udp raw-icmp icmp-dgram udplite"

line() { grep "^$1 " "$2" | head -n1; }  # form file -> its result line

echo "--- control: without socksify every form reaches the target directly"
sfy_capture_start ctl "$C" "$IFC" "$FILTER"
ok "addrforms without socksify" sfy_direct "$C" $FORMS
cp "$SFY_LAST_OUT" "$SFY_TMP/control.out"
n=$(sfy_capture_stop ctl)
for f in $TUNNELLED; do
	l=$(line "$f" "$SFY_TMP/control.out")
	case $l in
	"$f skip "*) echo "SKIP: $l" ;;
	*) check "control: $f works directly ($l)" grep -q "^$f ok $f" "$SFY_TMP/control.out" ;;
	esac
done
for f in $UDP_FORMS; do
	check "control: the UDP echo saw the client itself for $f" \
		grep -q "^$f ok .*|$CLI_D\$" "$SFY_TMP/control.out"
done
for f in $REFUSED; do
	l=$(line "$f" "$SFY_TMP/control.out")
	case $l in
	"$f skip "*) echo "SKIP: $l (this kernel cannot make that socket)" ;;
	*) check "control: $f works directly ($l)" grep -Eq "^$f (sent|ok)" "$SFY_TMP/control.out" ;;
	esac
done
check "control: the capture on the direct link saw the traffic ($n packets)" test "$n" -ge 20

echo "--- through socksify: every form through the proxy, nothing on the direct link"
sfy_capture_start cap "$C" "$IFC" "$FILTER"
ok "addrforms through socksify" sfy_run "$C" -f "$SFY_TMP/via.yaml" -- $FORMS
cp "$SFY_LAST_OUT" "$SFY_TMP/via.out"
for f in $TUNNELLED; do
	l=$(line "$f" "$SFY_TMP/via.out")
	case $l in
	"$f skip "*) echo "SKIP: $l" ;;
	*) check "$f tunnelled ($l)" grep -q "^$f ok $f" "$SFY_TMP/via.out" ;;
	esac
done
for f in $UDP_FORMS; do
	check "the UDP echo saw the proxy for $f" grep -q "^$f ok .*|$PRX_OUT\$" "$SFY_TMP/via.out"
done
nref=0
for f in $REFUSED; do
	l=$(line "$f" "$SFY_TMP/via.out")
	case $l in
	"$f skip "*) echo "SKIP: $l (this kernel cannot make that socket)" ;;
	*)
		nref=$((nref + 1))
		check "$f refused with EACCES ($l)" test "$l" = "$f error EACCES"
		;;
	esac
done
warns=$(grep -c "refused (EACCES)" "$SFY_TMP/via.out")
check "one warning per refused socket ($warns for $nref)" test "$warns" = "$nref"
n=$(sfy_capture_stop cap)
if [ "$n" = 0 ]; then
	sfy__pass "nothing from the client on the direct link"
else
	sfy__fail "nothing from the client on the direct link" "$n packets leaked:"
	sfy_capture_show cap | sed 's/^/    | /'
fi
conns=$(sfy_proxy_conns dante)
check "danted relayed the TCP forms ($conns connections)" test "$conns" -ge 4

echo "--- a bypass destination is reached directly, by every kind of socket"
sfy_capture_start byp "$C" "$IFC" "$FILTER"
ok "addrforms with the target bypassed" sfy_run "$C" -f "$SFY_TMP/bypass.yaml" -- $FORMS
cp "$SFY_LAST_OUT" "$SFY_TMP/bypass.out"
n=$(sfy_capture_stop byp)
for f in raw-icmp icmp-dgram tcp6-mapped-len24 udp4-unspec-sendto; do
	check "bypass: $f goes directly" grep -Eq "^$f (sent|ok)" "$SFY_TMP/bypass.out"
done
check "bypass: the UDP echo saw the client itself" \
	grep -q "^udp6-inet-sendto ok .*|$CLI_D\$" "$SFY_TMP/bypass.out"
check "bypass: on the direct link ($n packets)" test "$n" -ge 20
if command -v ping >/dev/null; then
	fails_with "ping through socksify is refused (EACCES)" "EACCES|refused|not permitted" \
		sfy_run "$C" -f "$SFY_TMP/via.yaml" -- ping -c1 -W2 "$TGT"
fi
finish
