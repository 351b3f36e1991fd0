#!/bin/bash
# Many threads connecting at once through socksify and microsocks: 16
# threads x 200 sequential connect/send/recv/close round trips to a local
# echo server must all succeed, and the process must end with as many open
# fds as it started with. Without a bypass, 127.0.0.1 goes through the proxy
# too; that the traffic really went through microsocks is shown twice: the
# echo server sees exactly 3200 connections, all from the source address
# microsocks binds to (127.0.0.3), and once microsocks is stopped the same
# client fails (fail closed) although the echo server still listens.
#
# microsocks drops bytes sent before its method reply, so the threads' first
# connects also exercise the concurrent fallback to step-by-step SOCKS5.
set -u
command -v microsocks >/dev/null || { echo "tcp_threads: microsocks missing" >&2; exit 77; }
. "$(dirname "$0")/lib/loopback.sh" tcp_threads

$py "$top/tests/tools/echoserver.py" --port-file "$tmp/echo.port" \
	--count-file "$tmp/echo.count" --log "$tmp/echo.log" >/dev/null &
pids+=($!)
wait_file "$tmp/echo.port" || { echo "echo server did not start"; exit 1; }
echo_port=$(cat "$tmp/echo.port")
start_microsocks || { echo "microsocks did not start"; exit 1; }
export SOCKSIFY_PROXY=socks5://127.0.0.1:$ms_port

threads=16 count=200
t0=$(date +%s)
LD_PRELOAD=$preload "$client" --port "$echo_port" --threads $threads --count $count --fds \
	--send "thread test payload" --timeout-ms 20000 >"$tmp/out" 2>&1
rc=$?
echo "$threads x $count round trips in $(($(date +%s) - t0))s, exit $rc"
cat "$tmp/out"
fail=0
[ $rc -eq 0 ] || { echo "FAIL: tcpclient exit $rc"; fail=1; }
grep -qx "ok: $((threads * count)) round trips" "$tmp/out" || { echo "FAIL: not all round trips succeeded"; fail=1; }
grep -Eq '^fds: before=([0-9]+) after=\1$' "$tmp/out" || { echo "FAIL: fd count changed"; fail=1; }
# Every round trip is one connection microsocks made to the echo server
# from its source address; a pipelined attempt microsocks dropped never
# reaches it, and no connection came directly.
sleep 0.2
n=$(cat "$tmp/echo.count" 2>/dev/null || echo 0)
[ "$n" -eq $((threads * count)) ] ||
	{ echo "FAIL: echo server saw $n connections, expected $((threads * count))"; fail=1; }
direct=$(grep -vcx "accept $ms_src" "$tmp/echo.log")
[ "$direct" -eq 0 ] || { echo "FAIL: $direct connections did not come from microsocks"; fail=1; }

# Stop the proxy: the same client must now fail instead of going direct.
kill "$ms_pid"
wait "$ms_pid" 2>/dev/null
LD_PRELOAD=$preload "$client" --port "$echo_port" --threads 4 --count 2 >"$tmp/out2" 2>&1
rc=$?
cat "$tmp/out2"
[ $rc -eq 1 ] || { echo "FAIL: exit $rc without the proxy, expected 1"; fail=1; }
grep -q '^tcpclient: connect: ECONNREFUSED (' "$tmp/out2" ||
	{ echo "FAIL: expected ECONNREFUSED without the proxy"; fail=1; }
n2=$(cat "$tmp/echo.count" 2>/dev/null || echo 0)
[ "$n2" -eq "$n" ] || { echo "FAIL: $((n2 - n)) connections reached the echo server directly"; fail=1; }
[ $fail -eq 0 ] && echo "ok: all round trips through microsocks, no fd leak, fails closed"
exit $fail
