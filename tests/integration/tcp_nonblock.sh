#!/bin/bash
# Non-blocking sockets through socksify: the C client with an O_NONBLOCK
# socket (through microsocks, through a fake peer that trickles its replies,
# and against a refusing peer), a python3 asyncio client, a node
# net.connect client, and curl's multi interface (--parallel, 5 transfers
# at once), all through microsocks to local servers, which check that
# every connection came from microsocks's source address.
#
# What a non-blocking connect() returns through socksify (issue 10): -1 /
# EINPROGRESS at once, the chain being built in the background, and the
# result in SO_ERROR once the socket is writable -- exactly what a slow direct
# connect shows. Returning 0 after building the chain inside connect() (the
# old behaviour) stalls every event loop, so only EINPROGRESS passes here. A
# refused chain is reported through SO_ERROR and must name the errno. The
# socket must still be O_NONBLOCK afterwards (tcpclient checks that).
# tcp_async.sh checks the details API by API.
set -u
for c in microsocks python3 node curl; do
	command -v $c >/dev/null || { echo "tcp_nonblock: $c missing" >&2; exit 77; }
done
. "$(dirname "$0")/lib/loopback.sh" tcp_nonblock

start_peer() {  # NAME STEPS...: sets $port
	local name=$1
	shift
	$py "$top/tests/tools/fakepeer.py" --port-file "$tmp/$name.port" --log "$tmp/$name.log" \
		"$@" >/dev/null &
	pids+=($!)
	wait_file "$tmp/$name.port" || { echo "fakepeer did not start"; exit 1; }
	port=$(cat "$tmp/$name.port")
}

fail=0
# Also asserts the invariant of the whole test: the echo and HTTP servers
# were only ever reached through microsocks (source address ms_src).
direct_seen() {
	grep -vqx "accept $ms_src" "$tmp/echo.log" 2>/dev/null && return 0
	grep -s '"GET ' "$tmp/http.log" | grep -vq "^$ms_src "
}
check() {  # NAME RC-OF-COMMAND OUTPUT-FILE
	local rc=$2
	if direct_seen; then
		echo "a server saw a direct connection" >>"$3"
		rc=1
	fi
	if [ "$rc" -eq 0 ]; then
		echo "ok   $1"
	else
		echo "FAIL $1 (exit $2)"
		sed 's/^/    | /' "$3"
		fail=1
	fi
}

$py "$top/tests/tools/echoserver.py" --port-file "$tmp/echo.port" \
	--count-file "$tmp/echo.count" --log "$tmp/echo.log" >/dev/null &
pids+=($!)
wait_file "$tmp/echo.port" || { echo "echo server did not start"; exit 1; }
echo_port=$(cat "$tmp/echo.port")
start_microsocks || { echo "microsocks did not start"; exit 1; }
ms=socks5://127.0.0.1:$ms_port
# connect: 5s -- the first connect races a step-by-step connection after
# the 1 s probe window, inside the hop's timeout: 2 s left a stalled machine
# too little of it.
cat >"$tmp/fast.yaml" <<EOF
proxies:
  - $ms
timeouts:
  connect: 5s
  handshake: 8s
EOF

# --- the C client, O_NONBLOCK ---------------------------------------------
sfy() { LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/fast.yaml "$@"; }
sfy "$client" --nonblock --port "$echo_port" --peer >"$tmp/c1" 2>&1
rc=$?
grep -qx 'nonblock-connect: EINPROGRESS' "$tmp/c1" || rc=1
check "tcpclient --nonblock via microsocks ($(sed -n 's/^nonblock-connect: //p' "$tmp/c1"))" $rc "$tmp/c1"

# Several sequential connects, the second onward after the step-by-step
# fallback microsocks forces, and 4 threads at once.
sfy "$client" --nonblock --port "$echo_port" --threads 4 --count 25 --fds >"$tmp/c2" 2>&1
rc=$?
grep -qx 'ok: 100 round trips' "$tmp/c2" || rc=1
check "tcpclient --nonblock 4 threads x 25" $rc "$tmp/c2"

start_peer trickle readsocks5 'trickle 0500' readsocks5 'trickle 05000001000000000000' echo
cat >"$tmp/trickle.yaml" <<EOF
proxies:
  - socks5://127.0.0.1:$port
timeouts:
  connect: 2s
  handshake: 5s
EOF
LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/trickle.yaml \
	"$client" --nonblock --port 4242 --send trickled >"$tmp/c3" 2>&1
rc=$?
grep -q '^1 host 127.0.0.1:4242$' "$tmp/trickle.log" || rc=1
grep -qx 'nonblock-connect: EINPROGRESS' "$tmp/c3" || rc=1
check "tcpclient --nonblock via a trickling fake peer" $rc "$tmp/c3"

start_peer refuse readsocks5 'send 0500' readsocks5 'send 05050001000000000000' close
cat >"$tmp/refuse.yaml" <<EOF
proxies:
  - socks5://127.0.0.1:$port
EOF
LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/refuse.yaml \
	"$client" --nonblock --port 4242 >"$tmp/c4" 2>&1
rc=$?
# The refusal comes later, through SO_ERROR: connect() itself said EINPROGRESS.
if [ $rc -eq 1 ] && grep -q '^tcpclient: connect: ECONNREFUSED (' "$tmp/c4" &&
	grep -qx 'nonblock-connect: EINPROGRESS' "$tmp/c4"; then rc=0; else rc=1; fi
check "tcpclient --nonblock, proxy refuses: EINPROGRESS, then ECONNREFUSED" $rc "$tmp/c4"

# --- python3 asyncio ----------------------------------------------------------
cat >"$tmp/aio.py" <<'EOF'
import asyncio, sys

async def one(port, i):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    msg = f"asyncio {i}\n".encode()
    w.write(msg)
    await w.drain()
    got = await r.readexactly(len(msg))
    w.close()
    await w.wait_closed()
    assert got == msg, (got, msg)

async def main(port):
    # Five at once: the event loop interleaves them on non-blocking sockets.
    await asyncio.wait_for(asyncio.gather(*(one(port, i) for i in range(5))), 20)
    print("asyncio ok")

asyncio.run(main(int(sys.argv[1])))
EOF
before=$(cat "$tmp/echo.count")
sfy timeout 60 $py "$tmp/aio.py" "$echo_port" >"$tmp/py" 2>&1
rc=$?
grep -qx 'asyncio ok' "$tmp/py" || rc=1
[ "$(cat "$tmp/echo.count")" -ge $((before + 5)) ] || rc=1
check "python3 asyncio open_connection x5" $rc "$tmp/py"

# --- node net.connect ------------------------------------------------------
cat >"$tmp/net.js" <<'EOF'
const net = require('net');
const port = +process.argv[2];
let done = 0;
for (let i = 0; i < 5; i++) {
  const msg = `node ${i}\n`;
  let got = '';
  const s = net.connect({ host: '127.0.0.1', port }, () => s.write(msg));
  s.setEncoding('utf8');
  s.on('data', (d) => {
    got += d;
    if (got.length >= msg.length) {
      if (got !== msg) { console.error('mismatch', JSON.stringify(got)); process.exit(1); }
      s.end();
      if (++done === 5) console.log('node ok');
    }
  });
  s.on('error', (e) => { console.error('error', e.code); process.exit(1); });
}
setTimeout(() => { console.error('timeout'); process.exit(1); }, 20000).unref();
EOF
sfy timeout 60 node "$tmp/net.js" "$echo_port" >"$tmp/node" 2>&1
rc=$?
grep -qx 'node ok' "$tmp/node" || rc=1
check "node net.connect x5" $rc "$tmp/node"

# --- curl --parallel (multi interface) --------------------------------------
mkdir "$tmp/www"
for i in 1 2 3 4 5; do head -c $((i * 50000)) /dev/urandom >"$tmp/www/f$i"; done
cat >"$tmp/httpd.py" <<'EOF'
import functools, http.server, os, sys
d, pf = sys.argv[1], sys.argv[2]
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=d)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), h)
with open(pf + ".tmp", "w") as f:
    f.write(f"{s.server_address[1]}\n")
os.rename(pf + ".tmp", pf)
s.serve_forever()
EOF
$py "$tmp/httpd.py" "$tmp/www" "$tmp/http.port" 2>"$tmp/http.log" &
pids+=($!)
wait_file "$tmp/http.port" || { echo "http server did not start"; exit 1; }
hp=$(cat "$tmp/http.port")
urls=()
for i in 1 2 3 4 5; do urls+=("http://127.0.0.1:$hp/f$i" -o "$tmp/got$i"); done
# (Under SANITIZE=1, tests/run.sh's PATH shim runs curl with the plain
# library: curl deadlocks in setlocale() with any ASan runtime preloaded.)
sfy timeout 60 curl -q -sS --parallel --parallel-immediate --parallel-max 5 "${urls[@]}" \
	>"$tmp/curl" 2>&1
rc=$?
for i in 1 2 3 4 5; do
	cmp -s "$tmp/www/f$i" "$tmp/got$i" || { echo "f$i differs" >>"$tmp/curl"; rc=1; }
done
check "curl --parallel x5" $rc "$tmp/curl"

# --- and all of it went through microsocks: without it, everything fails ----
kill "$ms_pid"
wait "$ms_pid" 2>/dev/null
sfy timeout 60 curl -q -sS --max-time 10 -o /dev/null "http://127.0.0.1:$hp/f1" \
	>"$tmp/curl2" 2>&1
rc=$?
[ $rc -eq 7 ] && rc=0 || rc=1   # 7: couldn't connect
check "curl without the proxy fails closed" $rc "$tmp/curl2"
sfy "$client" --nonblock --port "$echo_port" >"$tmp/c5" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q '^tcpclient: connect: ECONNREFUSED (' "$tmp/c5"; then rc=0; else rc=1; fi
check "tcpclient --nonblock without the proxy: ECONNREFUSED" $rc "$tmp/c5"

exit $fail
