#!/bin/bash
# Where hop names are resolved, and what a fork() meets meanwhile.
#
#   cli 10.213.1.1 ---- 10.213.1.2 prx 10.213.2.1 ---- 10.213.2.2 tgt
#   resolv.conf: 10.213.9.9   danted :1080                danted :1080 (hop 2)
#   (routed to prx, which     /etc/hosts: hop2.sfy.test   http :8080, echo :7
#    drops it: a black hole)
#
# Only hop 1 is this machine's to resolve; hop 2's name exists only in the
# proxy namespace's /etc/hosts, so the chain works only if the name is
# passed on to hop 1, and the client's capture must see no DNS at all. A
# proxy given by a name the client's resolver cannot answer in time is the
# fork() test: children forked while other threads resolve it must not hang.
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted curl tcpdump getent
sfy_begin
[ -x "$SFY_TOOLS/forkconnect" ] || { echo "FAIL: $SFY_TOOLS/forkconnect not built"; exit 1; }

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$P" 10.213.1 || exit 1
sfy_link "$P" "$T" 10.213.2 || exit 1
PRX=10.213.1.2 TGT=10.213.2.2
# A name server routed through the proxy namespace, which does not forward:
# a lookup leaves the client's interface (the capture sees it) and is never
# answered. timeout:1 attempts:1 keeps a lookup to a couple of seconds.
ip -n "$C" route add default via "$PRX"
printf 'nameserver 10.213.9.9\noptions timeout:1 attempts:1\n' | sfy_etc "$C" resolv.conf
printf '127.0.0.1 localhost\n' | sfy_etc "$C" hosts
printf '127.0.0.1 localhost\n%s hop2.sfy.test\n' "$TGT" | sfy_etc "$P" hosts

sfy_http web "$T" 8080
sfy_echo echo "$T" 7
sfy_danted d1 "$P" "$PRX" 1080 none
sfy_danted d2 "$T" "$TGT" 1080 none
URL="http://$TGT:8080/"
IFC=$(sfy_ifname "$C" "$P")

echo "--- topology"
fails "client cannot reach the target directly" \
	sfy_direct "$C" curl -sS --connect-timeout 2 "$URL"
fails "the client cannot resolve hop 2's name" sfy_direct "$C" getent hosts hop2.sfy.test
ok "the proxy can resolve hop 2's name" sfy_direct "$P" getent hosts hop2.sfy.test

echo "--- hop 2 by name: passed on to hop 1, never resolved here"
sfy_capture_start dnsctl "$C" "$IFC" port 53
sfy_direct "$C" getent hosts hop2.sfy.test >/dev/null
n=$(sfy_capture_stop dnsctl)
check "control: a local lookup shows on the capture ($n packets)" test "$n" -gt 0

sfy_conf named strict - "socks5h://$PRX:1080" "socks5h://hop2.sfy.test:1080"
sfy_capture_start dns "$C" "$IFC" port 53
expect_out "curl through hop 1 to hop 2 given by a name only hop 1 knows" "$SFY_TOKEN" \
	sfy_run "$C" -f "$SFY_TMP/named.yaml" -- curl -sS --max-time 15 "$URL"
expect_out "--check walks the same path" "chain usable" \
	sfy_run "$C" --check -f "$SFY_TMP/named.yaml"
n=$(sfy_capture_stop dns)
check "no DNS packet left the client ($n)" test "$n" -eq 0 || sfy_capture_show dns

echo "--- socks4 cannot pass a name on (remote DNS)"
sfy_conf s4 strict - "socks4://$PRX:1080" "socks5h://hop2.sfy.test:1080"
sfy__exec sfy_run "$C" -f "$SFY_TMP/s4.yaml" -- true
out=$SFY_LAST_OUT
check "exit 125 for socks4 followed by a named hop" test "$SFY_LAST_RC" = 125
check "the error names file, line and key" \
	grep -q "s4.yaml:2: proxies\[1\]: socks4 cannot pass the name of proxy 2" "$out"

echo "--- fork() while threads resolve hop 1"
# hop 1 by a name the black-hole resolver never answers: every connect
# fails after connect_timeout (2s) at most, in parent and children alike.
cat >"$SFY_TMP/slow.yaml" <<EOC
proxies: ["socks5h://slowproxy.sfy.test:1080"]
timeouts:
  connect: 2s
  handshake: 4s
EOC
ok "every forked child's connect returns (none hung past 6s)" \
	sfy_run "$C" -f "$SFY_TMP/slow.yaml" -q -- \
	"$SFY_TOOLS/forkconnect" --host "$TGT" --port 7 --threads 4 --forks 20 --limit-ms 6000
grep children "$SFY_LAST_OUT"

finish
