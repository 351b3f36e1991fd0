#!/bin/bash
# The main job, shown: a real SOCKS5 server (danted) started on loopback, a
# real program (curl) run through it by socksify, and the server's own log
# proving the connection passed through it. Everything is stopped after.
set -eu
cd "$(dirname "$0")/.."
: "${BUILD:=build}"
tmp=$(mktemp -d /tmp/socksify-demo.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

web=$(free_port) socks=$(free_port)
echo "hello from the target, reached through SOCKS" > "$tmp/hello.txt"
python3 -m http.server "$web" --bind 127.0.0.1 --directory "$tmp" >/dev/null 2>&1 &
pids+=($!)

if [ "$(id -u)" = 0 ]; then
	cat > "$tmp/danted.conf" <<CONF
logoutput: $tmp/danted.log
internal: 127.0.0.1 port = $socks
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {
  from: 0.0.0.0/0 to: 0.0.0.0/0
}
socks pass {
  from: 0.0.0.0/0 to: 0.0.0.0/0
  log: connect
}
CONF
	chmod 755 "$tmp"
	danted -f "$tmp/danted.conf" -p "$tmp/danted.pid" &
	pids+=($!)
	server="danted (Dante $(danted -v 2>&1 | grep -o 'v[0-9][0-9.]*[0-9]' | head -1))"
else
	microsocks -i 127.0.0.1 -p "$socks" >/dev/null 2>&1 &
	pids+=($!)
	server=microsocks
fi
wait_port "$web"
wait_port "$socks"

echo "== SOCKS5 server: $server on 127.0.0.1:$socks; web server on 127.0.0.1:$web"
echo "== $ $BUILD/socksify -v -x socks5h://127.0.0.1:$socks curl -s http://127.0.0.1:$web/hello.txt"
"$BUILD/socksify" -v -x "socks5h://127.0.0.1:$socks" curl -sS "http://127.0.0.1:$web/hello.txt"
if [ -f "$tmp/danted.log" ]; then
	echo "== what the SOCKS server logged:"
	grep -E 'pass\(' "$tmp/danted.log" | sed 's/^.*danted/danted/' | tail -3
	grep -q "127.0.0.1.$web" "$tmp/danted.log" || { echo "demo: the proxy did not see the connection" >&2; exit 1; }
fi
echo "== $ $BUILD/socksify --check -x socks5h://127.0.0.1:$socks"
"$BUILD/socksify" --check -x "socks5h://127.0.0.1:$socks"
echo "== demo OK"
