#!/bin/bash
# dns: proxy -- lookups ask the chain's LAST hop, through the chain, with
# Tor's SOCKS5 RESOLVE (0xF0) / RESOLVE_PTR (0xF1), and return its real
# answers. The proxies are tests/tools/fakepeer.py scripted to answer by
# what was asked (`answer`), and to relay (hop 1 of a two-hop chain, whose
# log must show only the CONNECT to hop 2). Checked: forward and reverse
# answers (getent, Python's getaddrinfo/gethostbyname/gethostbyaddr/
# getnameinfo), the reply codes (0x04 and Tor's F0 -> EAI_NONAME, never a
# fake address; F7 -> EAI_AGAIN; gethostbyname's h_errno for each), the
# cache (a second lookup sends nothing), the 0x07 fallback to fake
# addresses with one info line, a connect() to the answer going by address
# through the chain, .onion never asked, --explain, the socks5-last-hop
# config error, a dynamic chain whose last hop is dead (the lookup fails,
# hop 1 never gets the RESOLVE), a
# hostile RESOLVE_PTR name (not a host name: no name, cached), local
# addresses never asked about (numeric or /etc/hosts), getaddrinfo_a's
# GAI_NOWAIT returning before a slow answer -- and no DNS packet
# from the client namespace during all of it (tcpdump, with a control run
# that shows the capture sees a direct lookup).
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd getent tcpdump ss
sfy_begin
[ -x "$SOCKSIFY_BIN" ] || { echo "FAIL: $SOCKSIFY_BIN not built"; exit 1; }

C=$(sfy_ns cli) N=$(sfy_ns net) || exit 1
sfy_link "$C" "$N" 10.204.1 || exit 1
# The client's nameserver sits behind a static neighbour entry, so a query
# that escaped would really go out on the wire (the control run shows it).
sfy_wire_dns "$C" "$N" 10.204.1
ip -n "$C" route add default via 10.204.1.2

peer=$SFY_TOP/tests/tools/fakepeer.py
# start_peer NAME STEPS: a fakepeer in the client namespace (127.0.0.1),
# its port in $port, its log in $SFY_TMP/NAME.peer.
start_peer() {
	local name=$1 i
	sfy_bg "$name" "$C" "$SFY_PY" "$peer" --port-file "$SFY_TMP/$name.port" \
		--log "$SFY_TMP/$name.peer" "$2"
	for ((i = 0; i < 100; i++)); do [ -s "$SFY_TMP/$name.port" ] && break; sleep 0.05; done
	port=$(cat "$SFY_TMP/$name.port" 2>/dev/null) || { echo "FAIL: setup: fakepeer $name"; exit 1; }
}
conf() {  # NAME URL...: a config in proxy mode with these hops
	local name=$1 u
	shift
	{
		echo "proxies:"
		for u in "$@"; do echo "  - $u"; done
		echo "dns: proxy"
		echo "timeouts: {connect: 2s, handshake: 4s}"
	} >"$SFY_TMP/$name.yaml"
}
count() { grep -c -- "$2" "$SFY_TMP/$1.peer" 2>/dev/null; }

hexs() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }
# Reverse lookups ask about public addresses (198.51.100.0/24): local ones
# are never sent (below).
answers='ok.test=10.1.2.3 two.test=10.1.2.4 v6.test=2001:db8::5 cache.test=10.1.2.9'
answers+=' nx.test=!04 f0.test=!f0 f7.test=!f7 198.51.100.3=name:back.test 198.51.100.99=!04'
answers+=' tornx.test=tor!04 torf7.test=tor!f7 198.51.100.98=tor!04 f1.test=!f1'
answers+=" 198.51.100.66=namehex:$(hexs 'x$(id).evil;rm') 198.51.100.67=name:a..b.test"
answers+=" 198.51.100.68=namehex:$(hexs 'caf')c3a9$(hexs .test)"
answers+=' 10.9.9.9=name:leak.test 192.168.7.7=name:leak.test 127.0.0.2=name:leak.test'
answers+=' 100.64.1.1=name:leak.test 169.254.1.1=name:leak.test fd00::7=name:leak.test'
answers+=' fe80::7=name:leak.test ::1=name:leak.test 172.20.0.1=name:leak.test'
S5='readsocks5; send 0500; readsocks5'
start_peer res "$S5; answer $answers"
res=$port
start_peer relay "$S5; send 05000001000000000000; relay 127.0.0.1:$res"
relay=$port
start_peer nores "$S5; answer *=!07"
nores=$port
conf one "socks5://127.0.0.1:$res"
conf two "socks5://127.0.0.1:$relay" "socks5://127.0.0.1:$res"
conf fallback "socks5h://127.0.0.1:$nores"
one=(-f "$SFY_TMP/one.yaml")

gai() {  # NAME [FAMILY]: Python's getaddrinfo, the addresses or the EAI code
	"$SFY_PY" -c '
import socket, sys
fam = {"4": socket.AF_INET, "6": socket.AF_INET6}.get(sys.argv[2] if len(sys.argv) > 2 else "", 0)
try:
    print(" ".join(sorted({a[4][0] for a in socket.getaddrinfo(sys.argv[1], 80, fam)})))
except socket.gaierror as e:
    print("EAI", e.errno); sys.exit(3)' "$@"
}
export -f gai
export SFY_PY

echo "--- control: the capture sees a direct lookup"
sfy_capture_start ctl "$C" any port 53
fails "direct lookup (no socksify) fails" sfy_direct "$C" getent hosts ok.test
n=$(sfy_capture_stop ctl)
check "control capture saw DNS queries ($n packets)" test "$n" -gt 0

sfy_capture_start leak "$C" any port 53

echo "--- one hop: RESOLVE to the proxy"
expect_out "getent ahosts ok.test: the proxy's answer" "10.1.2.3" \
	sfy_run "$C" "${one[@]}" -- getent ahosts ok.test
check "the proxy saw RESOLVE ok.test" test "$(count res 'resolve ok.test$')" -ge 1
check "...as command F0 with the name, port 0" \
	grep -q " request 05f0000307$(printf ok.test | od -An -tx1 | tr -d ' \n')0000$" "$SFY_TMP/res.peer"
expect_out "IPv6 answer (AF_UNSPEC)" "2001:db8::5" sfy_run "$C" "${one[@]}" -- bash -c 'gai v6.test'
fails_with "IPv4 answer for AF_INET6 without AI_V4MAPPED: EAI_NONAME" "EAI -2" \
	sfy_run "$C" "${one[@]}" -- bash -c 'gai ok.test 6'
# perl's gethostbyname is libc's (Python's goes through getaddrinfo);
# $? holds h_errno after a failure.
ghbn='my @a = gethostbyname($ARGV[0]); print @a ? join(".", unpack("C4", $a[4])) . "\n" : "h_errno=$?\n"; exit !@a'
expect_out "gethostbyname" "10.1.2.3" sfy_run "$C" "${one[@]}" -- perl -e "$ghbn" ok.test
# Every forward entry point dnsprobe drives (getaddrinfo, gethostbyname,
# gethostbyname2 and the _r forms) answers the proxy's address.
[ -x "$SFY_TOOLS/dnsprobe" ] || { echo "FAIL: $SFY_TOOLS/dnsprobe not built"; exit 1; }
expect_out "dnsprobe: every forward entry point gives the proxy's answer" "OK: 0 failure" \
	sfy_run "$C" "${one[@]}" -- "$SFY_TOOLS/dnsprobe" -e addr -a 10.1.2.3 ok.test

echo "--- reverse: RESOLVE_PTR"
expect_out "gethostbyaddr(198.51.100.3) = back.test" "back.test" sfy_run "$C" "${one[@]}" -- \
	"$SFY_PY" -c 'import socket; print(socket.gethostbyaddr("198.51.100.3")[0])'
check "the proxy saw RESOLVE_PTR 198.51.100.3" test "$(count res 'resolve_ptr 198.51.100.3$')" -ge 1
expect_out "getnameinfo(NI_NAMEREQD) = back.test" "back.test" sfy_run "$C" "${one[@]}" -- \
	"$SFY_PY" -c 'import socket; print(socket.getnameinfo(("198.51.100.3", 80), socket.NI_NAMEREQD)[0])'
expect_out "getnameinfo of an address without a name: numeric" "198.51.100.99" \
	sfy_run "$C" "${one[@]}" -- "$SFY_PY" -c \
	'import socket; print(socket.getnameinfo(("198.51.100.99", 80), 0)[0])'

echo "--- reverse: a name that is not a host name never reaches the program"
# getnameinfo, then gethostbyaddr, twice each, in one process: no name
# (numeric / HOST_NOT_FOUND), one RESOLVE_PTR (cached like "no such name").
hostile='
import socket, sys
a = sys.argv[1]
out = [socket.getnameinfo((a, 80), 0)[0]]
for _ in range(2):
    try:
        out.append(socket.gethostbyaddr(a)[0])
    except socket.herror as e:
        out.append("herror%d" % e.errno)
print(" ".join(out))'
for a in 198.51.100.66 198.51.100.67 198.51.100.68; do
	expect_out "hostile PTR answer of $a: numeric, HOST_NOT_FOUND" "$a herror1 herror1" \
		sfy_run "$C" "${one[@]}" -- "$SFY_PY" -c "$hostile" "$a"
	check "...one RESOLVE_PTR for $a (cached)" test "$(count res "resolve_ptr $a\$")" -eq 1
done
fails_with "NI_NAMEREQD of a hostile name: EAI_NONAME" "Name or service not known" \
	sfy_run "$C" "${one[@]}" -- "$SFY_PY" -c \
	'import socket; print(socket.getnameinfo(("198.51.100.66", 80), socket.NI_NAMEREQD)[0])'
check "...never printed" sh -c "! grep -q 'evil' '$SFY_LAST_OUT'"

echo "--- reverse: local addresses are never sent to the proxy"
for a in 10.9.9.9 192.168.7.7 172.20.0.1 127.0.0.2 100.64.1.1 169.254.1.1 fd00::7 fe80::7; do
	expect_out "getnameinfo($a): numeric, gethostbyaddr: HOST_NOT_FOUND" "$a herror1 herror1" \
		sfy_run "$C" "${one[@]}" -- "$SFY_PY" -c "$hostile" "$a"
done
fails_with "getnameinfo(192.168.7.7, NI_NAMEREQD): EAI_NONAME" "Name or service not known" \
	sfy_run "$C" "${one[@]}" -- "$SFY_PY" -c \
	'import socket; print(socket.getnameinfo(("192.168.7.7", 80), socket.NI_NAMEREQD)[0])'
expect_out "127.0.0.1 from /etc/hosts" "localhost" sfy_run "$C" "${one[@]}" -- "$SFY_PY" -c \
	'import socket; print(socket.getnameinfo(("127.0.0.1", 80), socket.NI_NAMEREQD)[0])'
check "the proxy saw no RESOLVE_PTR for a local address" test "$(count res 'leak.test')" -eq 0
check "...nor any resolve_ptr of one" \
	test "$(grep -cE 'resolve_ptr (10\.|192\.168|172\.20|127\.|100\.64|169\.254|f[de])' "$SFY_TMP/res.peer")" -eq 0

echo "--- reply codes"
fails_with "0x04 host unreachable: EAI_NONAME (-2)" "EAI -2" \
	sfy_run "$C" "${one[@]}" -- bash -c 'gai nx.test'
fails "0x04: getent fails (no fake address)" sfy_run "$C" "${one[@]}" -- getent ahosts nx.test
fails_with "Tor F0 (descriptor not found): EAI_NONAME" "EAI -2" \
	sfy_run "$C" "${one[@]}" -- bash -c 'gai f0.test'
fails_with "Tor F7 (timed out): EAI_AGAIN (-3)" "EAI -3" \
	sfy_run "$C" "${one[@]}" -- bash -c 'gai f7.test'
fails_with "0x04 as Tor sends it (ATYP 0): EAI_NONAME" "EAI -2" \
	sfy_run "$C" "${one[@]}" -- bash -c 'gai tornx.test'
fails_with "F7 as Tor sends it: EAI_AGAIN" "EAI -3" \
	sfy_run "$C" "${one[@]}" -- bash -c 'gai torf7.test'
fails_with "RESOLVE_PTR's 0x04 as Tor sends it: no name (NI_NAMEREQD)" "Name or service not known" \
	sfy_run "$C" "${one[@]}" -- "$SFY_PY" -c \
	'import socket; print(socket.getnameinfo(("198.51.100.98", 80), socket.NI_NAMEREQD)[0])'
fails_with "gethostbyname of 0x04: HOST_NOT_FOUND (1)" "h_errno=1" \
	sfy_run "$C" "${one[@]}" -- perl -e "$ghbn" nx.test
fails_with "gethostbyname of F7: TRY_AGAIN (2)" "h_errno=2" \
	sfy_run "$C" "${one[@]}" -- perl -e "$ghbn" f7.test
fails_with "gethostbyname of F1 (descriptor invalid): NO_RECOVERY (3)" "h_errno=3" \
	sfy_run "$C" "${one[@]}" -- perl -e "$ghbn" f1.test

echo "--- cache"
before=$(count res 'resolve cache.test$')
expect_out "three lookups of one name in one process" "10.1.2.9 10.1.2.9 10.1.2.9" \
	sfy_run "$C" "${one[@]}" -- "$SFY_PY" -c '
import socket
a = socket.getaddrinfo("cache.test", 80, socket.AF_INET)[0][4][0]
b = socket.gethostbyname("cache.test")
c = socket.getaddrinfo("CACHE.test.", 443, socket.AF_INET)[0][4][0]
print(a, b, c)'
check "...sent one RESOLVE" test "$(($(count res 'resolve cache.test$') - before))" -eq 1
before=$(count res 'resolve nx.test$')
expect_out "two lookups of a name that does not exist, one process" "-2 -2" \
	sfy_run "$C" "${one[@]}" -- "$SFY_PY" -c '
import socket
e = []
for _ in range(2):
    try:
        socket.getaddrinfo("nx.test", 80)
    except socket.gaierror as x:
        e.append(str(x.errno))
print(" ".join(e))'
check "...sent one RESOLVE (negative answers are cached)" \
	test "$(($(count res 'resolve nx.test$') - before))" -eq 1

echo "--- two hops: the name goes to the LAST hop, through the first"
expect_out "getent ahosts two.test through 2 hops" "10.1.2.4" \
	sfy_run "$C" -f "$SFY_TMP/two.yaml" -- getent ahosts two.test
check "hop 2 saw RESOLVE two.test" test "$(count res 'resolve two.test$')" -ge 1
check "hop 1 saw a CONNECT to hop 2" test "$(count relay "host 127.0.0.1:$res$")" -ge 1
check "hop 1 never saw the name" test "$(count relay 'two.test')" -eq 0
check "hop 1 saw no RESOLVE at all" test "$(count relay 'resolve')" -eq 0

echo "--- dynamic chain, last hop dead: the lookup fails, hop 1 never gets the name"
# Hop 1 accepts the CONNECT to hop 2 and fails to reach it (closes); were
# hop 2 skipped, hop 1 would get RESOLVE dyn.test and answer it.
start_peer dyn1 "$S5; answer dyn.test=10.1.2.77 *=10.1.2.78; relay 127.0.0.1:1"
printf 'proxies:\n  - socks5://127.0.0.1:%s\n  - socks5://127.0.0.1:1\nchain: dynamic\ndns: proxy\ntimeouts: {connect: 2s, handshake: 4s}\n' \
	"$port" >"$SFY_TMP/dyn.yaml"
fails_with "getaddrinfo(dyn.test): EAI_AGAIN (-3)" "EAI -3" \
	sfy_run "$C" -f "$SFY_TMP/dyn.yaml" -- bash -c 'gai dyn.test'
fails_with "gethostbyname(dyn.test): TRY_AGAIN (2)" "h_errno=2" \
	sfy_run "$C" -f "$SFY_TMP/dyn.yaml" -- perl -e "$ghbn" dyn.test
fails "getnameinfo(198.51.100.3, NI_NAMEREQD) fails" sfy_run "$C" -f "$SFY_TMP/dyn.yaml" -- \
	"$SFY_PY" -c 'import socket; print(socket.getnameinfo(("198.51.100.3", 80), socket.NI_NAMEREQD)[0])'
check "hop 1 saw the CONNECTs to hop 2" test "$(count dyn1 'host 127.0.0.1:1$')" -ge 1
check "hop 1 saw no RESOLVE / RESOLVE_PTR" test "$(count dyn1 'resolve')" -eq 0
check "hop 1 never saw the name" test "$(count dyn1 'dyn.test')" -eq 0
ok "a connection through the same chain still skips the dead hop" sfy_run "$C" -f "$SFY_TMP/dyn.yaml" -- \
	"$SFY_PY" -c 'import socket; socket.create_connection(("10.1.2.3", 8080), timeout=10).close()'
check "...(hop 1 got the CONNECT to 10.1.2.3:8080 itself)" test "$(count dyn1 'host 10.1.2.3:8080$')" -ge 1

echo "--- connect() to the answer goes by address through the chain"
ok "create_connection(ok.test:8080)" sfy_run "$C" "${one[@]}" -- "$SFY_PY" -c '
import socket
socket.create_connection(("ok.test", 8080), timeout=10).close()'
check "the proxy saw CONNECT 10.1.2.3:8080" test "$(count res 'host 10.1.2.3:8080$')" -ge 1

echo "--- .onion is never asked"
expect_out ".onion gets a fake address" "224." sfy_run "$C" "${one[@]}" -- \
	bash -c 'gai abcdefghijklmnop.onion 4'
check "...and no RESOLVE for it" test "$(count res 'resolve abcdefghijklmnop.onion')" -eq 0

echo "--- 0x07 (no RESOLVE): fake addresses, one info line"
expect_out "two names through a hop without RESOLVE: fake addresses" "224." \
	sfy_run "$C" -v -f "$SFY_TMP/fallback.yaml" -- bash -c 'gai a.test 4 && gai b.test 4'
grep -c 'has no RESOLVE; names go by fake addresses' "$SFY_LAST_OUT" >"$SFY_TMP/n07"
check "one info line per process (2 processes: 2 lines, got $(cat "$SFY_TMP/n07"))" \
	test "$(cat "$SFY_TMP/n07")" -eq 2
expect_out "in one process: both names fake" "OK" \
	sfy_run "$C" -v -f "$SFY_TMP/fallback.yaml" -- "$SFY_PY" -c '
import socket
a = socket.gethostbyname("c.test"); b = socket.gethostbyname("d.test")
print("OK" if a.startswith("224.") and b.startswith("224.") and a != b else "BAD", a, b)'
check "...one info line" test "$(grep -c 'has no RESOLVE' "$SFY_LAST_OUT")" -eq 1
check "...one RESOLVE sent (the chain is marked)" test "$(count nores 'resolve d.test')" -eq 0

echo "--- getaddrinfo_a(GAI_NOWAIT) returns at once while the proxy takes its time"
# The peer answers the RESOLVE 1.5 s late: GAI_NOWAIT must not wait for
# it (an event loop would stall), gai_suspend() must.
start_peer slow "$S5; sleep 1.5; answer slow.test=10.1.2.55"
conf slow "socks5://127.0.0.1:$port"
# Step by step: a silent pipelined hop would get a raced second RESOLVE.
echo "pipelining: off" >>"$SFY_TMP/slow.yaml"
expect_out "GAI_NOWAIT, then gai_suspend: the proxy's answer" "slow.test 10.1.2.55" \
	sfy_run "$C" -f "$SFY_TMP/slow.yaml" -- "$SFY_TOOLS/gaiaprobe" --nowait slow.test
cp "$SFY_LAST_OUT" "$SFY_TMP/nowait.out"
ms=$(sed -n 's/^nowait: \([0-9]*\) ms$/\1/p' "$SFY_TMP/nowait.out")
check "...getaddrinfo_a returned in ${ms:-?} ms, under half the 1.5 s delay" test "${ms:-9999}" -lt 750
check "...gai_error right after: EAI_INPROGRESS" grep -q '^error: inprogress$' "$SFY_TMP/nowait.out"
check "...gai_suspend waited for the answer: 0" grep -q '^suspend: 0 ' "$SFY_TMP/nowait.out"
check "...one RESOLVE slow.test" test "$(count slow 'resolve slow.test$')" -eq 1

n=$(sfy_capture_stop leak)
check "no DNS packet left the client namespace ($n)" test "$n" -eq 0 || sfy_capture_show leak

echo "--- configuration"
expect_out "--explain shows dns proxy" "proxy (lookups ask the last hop" \
	sfy_run "$C" "${one[@]}" --explain ok.test:443
printf 'proxies: [socks5://127.0.0.1:1, socks4://127.0.0.1:2]\ndns: proxy\n' >"$SFY_TMP/bad.yaml"
fails_with "dns: proxy with a socks4 last hop is a config error" \
	"dns: proxy needs a socks5 last hop" sfy_run "$C" -f "$SFY_TMP/bad.yaml" -- true
fails_with "SOCKSIFY_DNS=proxy with an http last hop too" "dns: proxy needs a socks5 last hop" \
	sfy_direct "$C" env SOCKSIFY_DNS=proxy "$SOCKSIFY_BIN" -x http://127.0.0.1:3 -- true
expect_out "-d proxy" "10.1.2.3" \
	sfy_run "$C" -d proxy -x "socks5://127.0.0.1:$res" -- getent ahosts ok.test

finish
