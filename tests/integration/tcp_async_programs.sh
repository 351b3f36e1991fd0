#!/bin/bash
# Event-loop programs through socksify over a slow link (issue 10, point 5):
# each must work, and its concurrent connects must overlap -- which they only
# do when a non-blocking connect() returns EINPROGRESS and the chain is built
# in the background. A connect() that builds the chain inside the call
# serialises them: N at once then take about N times one.
#
#   cli 10.230.1.1 ------------- 10.230.1.2 prx 10.230.2.1 ---- 10.230.2.2 tgt
#   programs under socksify       delayrelay :1080 -> microsocks  echo :7
#   nginx under socksify          delayrelay :1081 -> danted      http :8080
#     on 127.0.0.1:8090           (+D ms each way, on 127.0.0.1)  (big backlogs)
#   resolv.conf -> dead           /etc/hosts: web/echo.sfy.test -> tgt
#
# No forwarding: the client reaches nothing but the two relay ports, and the
# names only exist at the proxy (socks5h, remote DNS), so every success went
# through a proxy. The relays add D ms to every chunk each way (no netem
# here): a SOCKS round trip costs 2D. Each program first times one connect +
# echo (after a warm-up that lets socksify learn the proxy), then N at once,
# and prints "one_ms=A all_ms=B n=N". A set-up costs at least one SOCKS
# round trip (2D, even with the request pipelined), so set-ups serialised
# inside connect() make B - A >= (N-1) x 2D however fast the machine is; the
# parallel check wants B - A < (N-1) x 3D/2, and A >= 4D (or the link was not
# slow and the check means nothing). Not a ratio of two wall times: a stall
# of the machine during one run must not fail it (a 3x ratio did on CI).
#
# The C/C++ clients (Boost.Asio, GLib, libevent) are compiled here, into the
# run's temp dir; the sources are in tests/integration/async_programs/.
# Under SANITIZE=1 every program runs with the ASan runtime preloaded except
# curl (tests/run.sh's PATH shim, see there).
# shellcheck source=tests/integration/lib/common.sh
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd microsocks danted curl node nginx java javac g++ pkg-config ss
SRC=$(cd "$(dirname "$0")/async_programs" && pwd)
for h in /usr/include/boost/asio.hpp /usr/include/event2/bufferevent.h; do
	[ -e "$h" ] || { echo "SKIP: missing $h (tests/deps.sh test installs it)"; exit 77; }
done
pkg-config --exists gio-2.0 libevent || { echo "SKIP: missing gio-2.0/libevent .pc files"; exit 77; }
sfy_begin
for f in "$SOCKSIFY_BIN" "$SFY_TOOLS/delayrelay"; do
	[ -x "$f" ] || { echo "FAIL: $f not built"; exit 1; }
done
[ "$SFY_VIA" = socksify ] || { echo "SKIP: SFY_VIA=$SFY_VIA: this test is about socksify"; exit 77; }

D=${SFY_ASYNC_DELAY_MS:-50}   # added per direction on the client-proxy link

# Compile while the namespaces and servers come up (the 2 cores are shared).
# nice: the timed checks below run while it compiles.
(
	set -e
	cd "$SFY_TMP"
	nice -n 19 g++ -O1 -o asio_echo "$SRC/asio_echo.cpp" -pthread
	# shellcheck disable=SC2046
	nice -n 19 cc -O1 -Wall -o gio_echo "$SRC/gio_echo.c" $(pkg-config --cflags --libs gio-2.0)
	# shellcheck disable=SC2046
	nice -n 19 cc -O1 -Wall -o ev_echo "$SRC/ev_echo.c" $(pkg-config --cflags --libs libevent)
) >"$SFY_TMP/compile.log" 2>&1 &
COMPILE_PID=$!

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$P" 10.230.1 || exit 1
sfy_link "$P" "$T" 10.230.2 || exit 1
PRX=10.230.1.2 TGT=10.230.2.2
printf 'nameserver 10.230.1.53\noptions timeout:1 attempts:1\n' | sfy_etc "$C" resolv.conf
printf '127.0.0.1 localhost\n' | sfy_etc "$C" hosts
printf '127.0.0.1 localhost\n%s web.sfy.test echo.sfy.test\n' "$TGT" | sfy_etc "$P" hosts
printf 'nameserver 10.230.2.53\noptions timeout:1 attempts:1\n' | sfy_etc "$P" resolv.conf

# Targets with listen backlogs for 64 connects at once (http.server's is 5:
# a burst would turn into SYN retries of a second each).
cat >"$SFY_TMP/httpd.py" <<'EOF'
import functools, http.server, sys
class S(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[3])
S((sys.argv[1], int(sys.argv[2])), h).serve_forever()
EOF
sfy_bg web "$T" "$SFY_PY" -u "$SFY_TMP/httpd.py" "$TGT" 8080 "$SFY_TMP/www"
sfy__served web "$T" 8080
sfy_bg echo "$T" "$SFY_PY" -u "$SFY_TOP/tests/tools/echoserver.py" --host "$TGT" --port 7 \
	--log "$SFY_TMP/echo.accepts"
sfy__served echo "$T" 7
# The proxies listen on the proxy's loopback; only the relays face the client.
sfy_microsocks ms "$P" 127.0.0.1 1082
sfy_danted dante "$P" 127.0.0.1 1091 none
sfy_bg relay_ms "$P" "$SFY_TOOLS/delayrelay" --listen "$PRX:1080" --to 127.0.0.1:1082 --delay "$D"
sfy__served relay_ms "$P" 1080
sfy_bg relay_dante "$P" "$SFY_TOOLS/delayrelay" --listen "$PRX:1081" --to 127.0.0.1:1091 --delay "$D"
sfy__served relay_dante "$P" 1081
sfy_conf ms strict - "socks5h://$PRX:1080"
sfy_conf dante strict - "socks5h://$PRX:1081"
MS=(-f "$SFY_TMP/ms.yaml")
DANTE=(-f "$SFY_TMP/dante.yaml")
URL=http://web.sfy.test:8080/index.html

echo "--- topology"
fails "client cannot reach the target directly" \
	sfy_direct "$C" curl -sS --connect-timeout 2 "http://$TGT:8080/"
fails "client cannot resolve web.sfy.test" sfy_direct "$C" getent hosts web.sfy.test
fails "client cannot reach the proxies themselves, only the relays" \
	sfy_direct "$C" curl -sS --connect-timeout 2 "http://$PRX:1082/"
# A relayed SOCKS5 greeting answered after >= 2D: the link really is slow.
ok "the relay delays the SOCKS5 greeting's reply by >= $((2 * D)) ms" \
	sfy_direct "$C" "$SFY_PY" -c '
import socket, sys, time
s = socket.create_connection((sys.argv[1], 1080), timeout=5)
t = time.monotonic(); s.sendall(b"\5\1\0"); r = s.recv(2)
ms = (time.monotonic() - t) * 1000
print(r, round(ms)); sys.exit(0 if r == b"\5\0" and ms >= 2 * float(sys.argv[2]) else 1)' "$PRX" "$D"

# The timing line of the last check (or of FILE): "N at once took less than
# one connect plus 3/4 of what N-1 serialised set-ups add at least, and one
# took >= 4D". Fails when there is none.
parallel() {  # label [file]
	local l=$1 f=${2:-$SFY_LAST_OUT} t one all n
	t=$(grep -o 'one_ms=[0-9]* all_ms=[0-9]* n=[0-9]*' "$f" | tail -n1)
	if [ -z "$t" ]; then
		SFY_LAST_MS=0 SFY_WATCH_LOGS=" " sfy__fail "$l: parallel" "no timings (the program failed)"
		return 1
	fi
	eval "${t//_ms/}"  # one= all= n=
	SFY_WATCH_LOGS=" " check "$l: $n at once in ${all}ms, one in ${one}ms (>= 4D = $((4 * D))ms): \
less than $(((n - 1) * 3 * D / 2))ms more (serialised: >= $(((n - 1) * 2 * D))ms more)" \
		test "$one" -ge $((4 * D)) -a $((all - one)) -lt $(((n - 1) * 3 * D / 2))
}

# Wall times of two runs (process start included in both) as a timing line.
timing() {  # name one-ms all-ms n
	echo "one_ms=$2 all_ms=$3 n=$4" >"$SFY_TMP/timing.$1"
}

echo "--- python"
SFY_WATCH_LOGS="ms relay_ms echo" expect_out "asyncio: 64 open_connection + echo" "ok 64 echoes" \
	sfy_run "$C" "${MS[@]}" -- "$SFY_PY" "$SRC/aio_echo.py" "$TGT" 7 64 &&
	parallel "asyncio"
SFY_WATCH_LOGS="ms relay_ms echo" expect_out "selectors.SelectSelector (select): 8 connects + echo" \
	"ok 8 echoes" sfy_run "$C" "${MS[@]}" -- "$SFY_PY" "$SRC/sel_echo.py" "$TGT" 7 8 &&
	parallel "selectors"

echo "--- node"
SFY_WATCH_LOGS="ms relay_ms echo" expect_out "node: 64 net.connect + echo" "ok 64 echoes" \
	sfy_run "$C" "${MS[@]}" -- node "$SRC/net_echo.js" "$TGT" 7 64 &&
	parallel "node net"
# libuv >= 1.45 batches epoll_ctl through io_uring when allowed; socksify
# refuses io_uring (ENOSYS), so libuv must fall back to plain epoll_ctl --
# which socksify sees -- and still overlap the connects.
SFY_WATCH_LOGS="ms relay_ms echo" expect_out "node, UV_USE_IO_URING=1: 16 net.connect + echo" \
	"ok 16 echoes" sfy_run "$C" "${MS[@]}" -- env UV_USE_IO_URING=1 \
	node "$SRC/net_echo.js" "$TGT" 7 16 &&
	parallel "node net, UV_USE_IO_URING=1"
SFY_WATCH_LOGS="dante dante-dante relay_dante web" expect_out "node: 16 http.get by name" \
	"ok 16 pages" sfy_run "$C" "${DANTE[@]}" -- node "$SRC/http_get.js" "$URL" "$SFY_TOKEN" 16 &&
	parallel "node http.get"

echo "--- curl --parallel"
# One curl run per measurement (the process start counts in both): a
# warm-up, one transfer, then N with --parallel-immediate.
curl_par() {  # n
	local n=$1 i one args=()
	for ((i = 0; i < n; i++)); do args+=(-o "$SFY_TMP/curl$n.$i" "$URL?i=$i"); done
	ok "curl warm-up" sfy_run "$C" "${MS[@]}" -- curl -q -sS --max-time 20 -o /dev/null "$URL" ||
		return 1
	expect_out "curl: 1 transfer" "$SFY_TOKEN" \
		sfy_run "$C" "${MS[@]}" -- curl -q -sS --max-time 20 "$URL" || return 1
	one=$SFY_LAST_MS
	ok "curl --parallel --parallel-immediate --parallel-max $n: $n transfers" \
		sfy_run "$C" "${MS[@]}" -- curl -q -sS --max-time 25 --parallel --parallel-immediate \
		--parallel-max "$n" "${args[@]}" || return 1
	timing "curl$n" "$one" "$SFY_LAST_MS" "$n"
	check "curl --parallel $n: every transfer has the page" \
		test "$(grep -lF "$SFY_TOKEN" "$SFY_TMP/curl$n".* | wc -l)" -eq "$n"
	parallel "curl --parallel" "$SFY_TMP/timing.curl$n"
}
SFY_WATCH_LOGS="ms relay_ms web" curl_par 16
SFY_WATCH_LOGS="ms relay_ms web" curl_par 64

echo "--- nginx reverse proxy under socksify"
# nginx resolves proxy_pass's name once at start (getaddrinfo: socksify's
# fake address), registers each upstream socket with epoll (edge-triggered)
# before connect(), and must never block its one event loop in connect().
# curl is not under socksify: it talks to nginx on the client's loopback.
sfy_nginx_conf 1024 <<EOF
		listen 127.0.0.1:8090;
		location / { proxy_pass http://web.sfy.test:8080; }
EOF
pre=()
[ "${SANITIZE:-}" = 1 ] && [ -n "${SFY_ASAN_RT:-}" ] && pre=(LD_PRELOAD="$SFY_ASAN_RT")
sfy_bg nginx "$C" env "${pre[@]}" ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} \
	${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} \
	"$SOCKSIFY_BIN" "${DANTE[@]}" -- nginx -p "$SFY_TMP/nginx" -e "$SFY_TMP/nginx/error.log" \
	-c "$SFY_TMP/nginx/nginx.conf"
sfy__served nginx "$C" 8090
NGX=http://127.0.0.1:8090/index.html
export SFY_WATCH_LOGS="nginx dante-dante relay_dante web"
ok "nginx warm-up" sfy_direct "$C" curl -q -sS --max-time 20 -o /dev/null "$NGX"
if expect_out "nginx: proxy_pass to a remote name, 1 fetch" "$SFY_TOKEN" \
	sfy_direct "$C" curl -q -sS --max-time 20 "$NGX"; then
	one=$SFY_LAST_MS
	args=()
	for ((i = 0; i < 16; i++)); do args+=(-o "$SFY_TMP/ngx.$i" "$NGX?i=$i"); done
	ok "nginx: 16 fetches at once (curl --parallel)" sfy_direct "$C" \
		curl -q -sS --max-time 25 --parallel --parallel-immediate --parallel-max 16 "${args[@]}"
	timing nginx "$one" "$SFY_LAST_MS" 16
	check "nginx: every fetch has the page" \
		test "$(grep -lF "$SFY_TOKEN" "$SFY_TMP"/ngx.* | wc -l)" -eq 16
	parallel "nginx" "$SFY_TMP/timing.nginx"
fi
# The name only exists at the proxy: nginx got socksify's fake address for it.
check "nginx: every fetch went through nginx to the upstream (access log: 200s)" \
	test "$(grep -c '" 200 ' "$SFY_TMP/nginx/access.log")" -ge 18
unset SFY_WATCH_LOGS

echo "--- compiled clients: Boost.Asio, GLib/GIO, libevent"
if ! wait "$COMPILE_PID"; then
	SFY_LAST_OUT=$SFY_TMP/compile.log SFY_LAST_MS=0 sfy__fail "compile the C/C++ clients" "see log"
else
	export SFY_WATCH_LOGS="ms relay_ms echo"
	expect_out "Boost.Asio: 8 async_connect + echo (epoll ET)" "ok 8 echoes" \
		sfy_run "$C" "${MS[@]}" -- "$SFY_TMP/asio_echo" "$TGT" 7 8 &&
		parallel "Boost.Asio"
	expect_out "libevent: 8 bufferevent_socket_connect + echo" "ok 8 echoes" \
		sfy_run "$C" "${MS[@]}" -- "$SFY_TMP/ev_echo" "$TGT" 7 8 &&
		parallel "libevent ($(sed -n 's/^backend //p' "$SFY_LAST_OUT"))"
	SFY_WATCH_LOGS="dante-dante relay_dante echo" \
		expect_out "GLib: 8 g_socket_client_connect_to_host_async by name + echo" "ok 8 echoes" \
		sfy_run "$C" "${DANTE[@]}" -- "$SFY_TMP/gio_echo" echo.sfy.test 7 8 &&
		parallel "GLib"
	unset SFY_WATCH_LOGS
fi

echo "--- Java NIO"
SFY_WATCH_LOGS="ms relay_ms echo" expect_out "Java NIO: 8 SocketChannel + Selector + echo" \
	"ok 8 echoes" sfy_run "$C" "${MS[@]}" -- java "$SRC/NioEcho.java" "$TGT" 7 8 &&
	parallel "Java NIO"

echo "--- and none of it went around the proxies"
check "the echo server saw connections, all from the proxies' address" \
	test -s "$SFY_TMP/echo.accepts" -a -z "$(grep -v "^accept 10.230.2.1\$" "$SFY_TMP/echo.accepts")"

finish
