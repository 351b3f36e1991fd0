#!/bin/bash
# Whole-chain pipelining (issue 10, point 3): once every hop is known to
# take pipelined bytes and to pass early bytes on, the messages of all hops
# leave in one flight, before the first reply. Forwarding is a fact of its
# own, learned from evidence: a hop that drops bytes sent before its reply
# costs one restarted connect, is remembered, and is then waited for.
#
#   tcpclient -> danted :A -> danted :B -> danted :C -> echo   (loopback)
#   tcpclient -> fakepeer (drops early bytes, then relays) -> danted :B -> echo
#
# The order of the client's sends and receives is read from strace: in a
# single flight, all three SOCKS5 requests precede the first recvfrom().
set -u
for c in danted strace python3; do
	command -v $c >/dev/null || { echo "tcp_pipeline: $c missing" >&2; exit 77; }
done
. "$(dirname "$0")/lib/loopback.sh" tcp_pipeline
export XDG_CACHE_HOME=$tmp/cache

fail=0
check() {  # NAME COMMAND...
	local name=$1
	shift
	if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fail=1; fi
}

start_danted() {  # NAME: sets the port in $tmp/NAME.port
	local name=$1 port _
	for _ in 1 2 3 4 5; do
		port=$(freeport)
		cat >"$tmp/$name.conf" <<EOF
logoutput: $tmp/$name.log
internal: 127.0.0.1 port = $port
external: lo
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 0/0 to: 0/0 }
socks pass { from: 0/0 to: 0/0 }
EOF
		danted -f "$tmp/$name.conf" -p "$tmp/$name.pid" >/dev/null 2>&1 &
		pids+=($!)
		for _ in $(seq 100); do
			ss -ltnH "sport = :$port" | grep -q . && { echo "$port" >"$tmp/$name.port"; return 0; }
			sleep 0.05
		done
	done
	return 1
}

$py "$top/tests/tools/echoserver.py" --port-file "$tmp/echo.port" >/dev/null 2>&1 &
pids+=($!)
wait_file "$tmp/echo.port" || { echo "echo server did not start"; exit 1; }
echo_port=$(cat "$tmp/echo.port")
for d in a b c; do start_danted $d || { echo "danted did not start"; exit 1; }; done
A=$(cat "$tmp/a.port") B=$(cat "$tmp/b.port") C=$(cat "$tmp/c.port")

cat >"$tmp/three.yaml" <<EOF
chain: strict
proxies:
  - socks5://127.0.0.1:$A
  - socks5://127.0.0.1:$B
  - socks5://127.0.0.1:$C
log:
  level: info
EOF

# flights FILE: for each connect in an strace log, the number of sendto()
# calls made before its first recvfrom() (the program's own "hi" ends one).
flights() {
	awk '/sendto\(/ && /"hi"/ { print n; next }
	     /recvfrom\(/ && /"hi"/ { n = 0; seen = 0; next }
	     /sendto\(/ && !seen { n++ }
	     /recvfrom\(/ { seen = 1 }' "$1"
}

# 1. Three danted: the first connect learns (the messages go hop by hop,
#    probing), a later connect in the same process is one flight.
LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/three.yaml \
	strace -qq -e trace=sendto,recvfrom -o "$tmp/st1" \
	"$client" --port "$echo_port" --send hi --count 3 >"$tmp/c1" 2>&1
rc=$?
check "3 hops, 3 connects through danted (exit $rc)" test $rc -eq 0
f=$(flights "$tmp/st1" | tr '\n' ' ')
check "the first connect probes, the last one is one flight of 3 requests (sends before the first reply: $f)" \
	test "$(flights "$tmp/st1" | tail -1)" -eq 3
check "the first connect was not one flight" test "$(flights "$tmp/st1" | head -1)" -lt 3
check "forwarding remembered for hops 1 and 2" \
	grep -Eq "^socks5 127\.0\.0\.1#fwd $B ok " "$XDG_CACHE_HOME/socksify/stepwise"
check "no restart: nothing learned as dropping" bash -c "! grep -q 'did not pass early bytes' '$tmp/c1'"

# 2. A later run starts from what the file remembers: one flight at once.
LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/three.yaml \
	strace -qq -e trace=sendto,recvfrom -o "$tmp/st2" \
	"$client" --port "$echo_port" --send hi >"$tmp/c2" 2>&1
rc=$?
check "a later run: one flight from the first connect (exit $rc, $(flights "$tmp/st2") sends)" \
	test $rc -eq 0 -a "$(flights "$tmp/st2" | head -1)" -eq 3

# 3. A hop that drops bytes sent before its reply: one restart, learned,
#    then waited for; every connect succeeds.
$py "$top/tests/tools/fakepeer.py" --port-file "$tmp/fake.port" --log "$tmp/fake.log" \
	readsocks5 'send 0500' readsocks5 'sleep 0.1' discard \
	'send 05000001000000000000' "relay 127.0.0.1:$B" >/dev/null &
pids+=($!)
wait_file "$tmp/fake.port" || { echo "fakepeer did not start"; exit 1; }
F=$(cat "$tmp/fake.port")
cat >"$tmp/drop.yaml" <<EOF
chain: strict
proxies:
  - socks5://127.0.0.1:$F
  - socks5://127.0.0.1:$B
log:
  level: info
EOF
LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/drop.yaml \
	"$client" --port "$echo_port" --send hi --count 3 >"$tmp/c3" 2>&1
rc=$?
check "through a hop that drops early bytes: 3 connects (exit $rc)" test $rc -eq 0
check "it was learned once" test "$(grep -c 'did not pass early bytes on' "$tmp/c3")" -eq 1
n=$(grep -c ' discarded [1-9]' "$tmp/fake.log")
check "only the first connection had early bytes to drop ($n)" test "$n" -eq 1
check "remembered as not forwarding" \
	grep -Eq "^socks5 127\.0\.0\.1#fwd $F stepwise " "$XDG_CACHE_HOME/socksify/stepwise"
# 4. A silent hop that is not the last: microsocks as hop 1 (it drops the
#    pipelined request), danted as hop 2, nothing learned yet. The race for
#    hop 1 is decided, then hop 2 must still be negotiated -- blocking and
#    non-blocking connects alike.
command -v microsocks >/dev/null || { echo "tcp_pipeline: microsocks missing" >&2; exit 77; }
start_microsocks || { echo "microsocks did not start"; exit 1; }
cat >"$tmp/ms2.yaml" <<EOF
chain: strict
proxies:
  - socks5://127.0.0.1:$ms_port
  - socks5://127.0.0.1:$B
log:
  level: debug
EOF
for mode in blocking nonblock; do
	rm -rf "$XDG_CACHE_HOME"
	flag=
	[ $mode = nonblock ] && flag=--nonblock
	LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/ms2.yaml \
		"$client" --port "$echo_port" --send hi $flag >"$tmp/c4$mode" 2>&1
	rc=$?
	check "$mode: a raced hop 1, then hop 2: the echo comes back (exit $rc)" \
		grep -qx 'ok: 1 round trips' "$tmp/c4$mode"
	check "$mode: the race ran" grep -q 'racing a step-by-step' "$tmp/c4$mode"
done
[ $fail -eq 0 ] || for f in c1 c2 c3 c4blocking c4nonblock fake.log; do echo "--- $f"; sed 's/^/    | /' "$tmp/$f"; done
exit $fail
