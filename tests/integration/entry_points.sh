#!/bin/bash
# The side doors to the network besides the plain libc calls: syscall(),
# glibc's exported __connect, lookups through an explicit libc handle
# (dlsym/dlvsym, Python's ctypes), io_uring (through syscall() as libuv
# does), and the r-commands that connect inside glibc.
#
#   cli 10.219.1.1 ---- 10.219.1.2 prx 10.219.2.1 ---- 10.219.2.2 tgt
#                       danted :1080                    echo :7, udp echo :7,
#                                                       http :8080
#
# The client's default route points into the proxy's namespace, which does
# not forward: a direct packet to the target leaves the client's interface,
# where a capture counts it, and goes no further. The control run (no
# socksify) shows the capture sees what each door sends directly; with
# socksify the count must be 0 and the echo must come back through danted.
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted socat ss python3 tcpdump strace
sfy_begin
EP=$SFY_TOOLS/entrypoints
[ -x "$EP" ] || { echo "FAIL: $EP not built"; exit 1; }

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$P" 10.219.1 || exit 1
sfy_link "$P" "$T" 10.219.2 || exit 1
ip -n "$C" route add default via 10.219.1.2
PRX=10.219.1.2 TGT=10.219.2.2

sfy_echo echo "$T" 7
sfy_bg uecho "$T" "$SFY_PY" -u "$SFY_TOP/tests/tools/udpserver.py" echo 7
sfy__served uecho "$T" 7 10 udp
sfy_http web "$T" 8080
sfy_danted dante "$P" "$PRX" 1080 none
sfy_conf px strict - "socks5://$PRX:1080"
sfy_conf allow strict - "socks5://$PRX:1080"
echo "io_uring: allow" >>"$SFY_TMP/allow.yaml"
run() { sfy_run "$C" -f "$SFY_TMP/$1.yaml" -- "${@:2}"; }
IFC=$(sfy_ifname "$C" "$P")
SFY_WATCH_LOGS="dante-dante"

# Python through ctypes: connect() looked up through a handle, then an echo.
cat >"$SFY_TMP/ctconnect.py" <<'EOF'
import ctypes, errno, select, socket, struct, sys
lib, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
libc = ctypes.CDLL(None if lib == "None" else lib, use_errno=True)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(8)  # the socket is non-blocking underneath
sa = struct.pack("=HH4s8x", socket.AF_INET, socket.htons(port), socket.inet_aton(host))
buf = ctypes.create_string_buffer(sa, len(sa))
# A non-blocking TCP connect: EINPROGRESS, then writable with SO_ERROR 0.
if libc.connect(s.fileno(), buf, len(sa)) != 0:
    e = ctypes.get_errno()
    if e != errno.EINPROGRESS:
        sys.exit("connect: %s" % errno.errorcode.get(e, e))
    if not select.select([], [s], [], 8)[1]:
        sys.exit("connect: not writable within 8 s")
    e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if e:
        sys.exit("connect: SO_ERROR %s" % errno.errorcode.get(e, e))
else:
    sys.exit("connect: returned 0 on a non-blocking TCP socket")
s.sendall(b"ping\n")
assert s.recv(5) == b"ping\n"
print("ok: ctypes", lib)
EOF

# io_uring_setup through libc's syscall(): prints "syscall: ENOSYS" or
# "syscall: ok".
cat >"$SFY_TMP/uring.py" <<'EOF'
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
params = ctypes.create_string_buffer(120)
r = libc.syscall(ctypes.c_long(425), ctypes.c_uint(4), params)
print("syscall:", "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()])
EOF

echo "--- topology and control (no socksify)"
fails "the client cannot reach the target directly" \
	sfy_direct "$C" "$EP" syscall "$TGT" 7
sfy_capture_start ctl "$C" "$IFC" host "$TGT"
sfy_direct "$C" "$EP" syscall "$TGT" 7 >/dev/null 2>&1
sfy_direct "$C" "$EP" rcmd "$TGT" 514 >/dev/null 2>&1
n=$(sfy_capture_stop ctl)
check "control: the capture sees direct connects to the target ($n packets)" test "$n" -gt 0
sfy__exec sfy_direct "$C" "$SFY_PY" "$SFY_TMP/uring.py"
uring_ok=0
grep -q "syscall: ok" "$SFY_LAST_OUT" && uring_ok=1
[ "$uring_ok" = 0 ] && echo "note: this kernel refuses io_uring itself; io_uring checks skipped"

echo "--- connect through side doors goes through the proxy"
sfy_capture_start leak "$C" "$IFC" host "$TGT"
before=$(sfy_proxy_conns dante)
for m in syscall __connect dlsym dlvsym dlvsym-default; do
	expect_out "connect via $m: echoed through the proxy" "ok: $m" run px "$EP" "$m" "$TGT" 7
done
expect_out "python ctypes.CDLL(\"libc.so.6\").connect: through the proxy" "ok: ctypes" \
	run px "$SFY_PY" "$SFY_TMP/ctconnect.py" libc.so.6 "$TGT" 7
expect_out "python ctypes.CDLL(None).connect: through the proxy" "ok: ctypes" \
	run px "$SFY_PY" "$SFY_TMP/ctconnect.py" None "$TGT" 7
expect_out "UDP sendto via dlsym(libc handle): through the relay" "ok: udp-dlsym" \
	run px "$EP" udp-dlsym "$TGT" 7
after=$(sfy_proxy_conns dante)
check "danted relayed the 7 TCP connections ($before -> $after)" test $((after - before)) -ge 7

echo "--- RTLD_NEXT and RTLD_DEFAULT answer as before"
# A wrapper library loaded after socksify finds libc's close() with
# RTLD_NEXT (not itself, not socksify's), and RTLD_DEFAULT finds
# socksify's; loaded before socksify, its RTLD_NEXT finds socksify's.
cat >"$SFY_TMP/next.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
static const char *where(void *p)
{
	Dl_info i;
	return p && dladdr(p, &i) && i.dli_fname ? i.dli_fname : "NULL";
}
__attribute__((constructor)) static void probe(void)
{
	printf("next=%s\n", where(dlsym(RTLD_NEXT, "close")));
	printf("vnext=%s\n", where(dlvsym(RTLD_NEXT, "close", "GLIBC_2.2.5")));
	printf("default=%s\n", where(dlsym(RTLD_DEFAULT, "close")));
}
EOF
if ${CC:-cc} -shared -fPIC -o "$SFY_TMP/libnext.so" "$SFY_TMP/next.c"; then
	pre=
	[ "${SANITIZE:-}" = 1 ] && [ -n "${SFY_ASAN_RT:-}" ] && pre="$SFY_ASAN_RT "
	sfy__exec env LD_PRELOAD="$pre$SOCKSIFY_LIB $SFY_TMP/libnext.so" true
	out=$SFY_LAST_OUT
	check "after socksify: RTLD_NEXT finds libc's close" grep -q "^next=.*/libc.so.6" "$out"
	check "...dlvsym RTLD_NEXT too" grep -q "^vnext=.*/libc.so.6" "$out"
	check "...RTLD_DEFAULT finds socksify's" grep -qF "default=$SOCKSIFY_LIB" "$out"
	sfy__exec env LD_PRELOAD="$pre$SFY_TMP/libnext.so $SOCKSIFY_LIB" true
	check "before socksify: RTLD_NEXT finds socksify's close" \
		grep -qF "next=$SOCKSIFY_LIB" "$SFY_LAST_OUT"
	# A second copy of the same build stays idle (real.c): a handle lookup
	# must not hand out its hooks either.
	cp "$SOCKSIFY_LIB" "$SFY_TMP/copy2.so"
	cat >"$SFY_TMP/two.py" <<'EOF'
import ctypes
a = lambda f: ctypes.cast(f, ctypes.c_void_p).value
print("same hook:", a(ctypes.CDLL("libc.so.6").connect) == a(ctypes.CDLL(None).connect))
EOF
	expect_out "two copies preloaded: libc-handle lookups get the first copy's hook" \
		"same hook: True" env LD_PRELOAD="$pre$SOCKSIFY_LIB $SFY_TMP/copy2.so" \
		"$SFY_PY" "$SFY_TMP/two.py"
else
	echo "FAIL: setup: cannot build a test library"
	exit 1
fi

echo "--- r-commands are refused"
for m in "rcmd 514" "rexec 512" "ruserok 0"; do
	set -- $m
	expect_out "$1() returns -1 with EACCES" "$1: -1 EACCES" run px "$EP" "$1" "$TGT" "$2"
	out=$SFY_LAST_OUT
	check "...and says so in one warn line" test "$(grep -c "warn: $1($TGT) refused" "$out")" = 1
done
n=$(sfy_capture_stop leak)
check "no packet went to the target directly ($n)" test "$n" = 0 || sfy_capture_show leak

echo "--- io_uring"
if [ "$uring_ok" != 0 ]; then
	expect_out "io_uring_setup through syscall(): ENOSYS" "syscall: ENOSYS" \
		run px "$SFY_PY" "$SFY_TMP/uring.py"
	expect_out "io_uring: allow lets io_uring_setup through" "syscall: ok" \
		run allow "$SFY_PY" "$SFY_TMP/uring.py"
fi
if [ "$uring_ok" != 0 ] && command -v node >/dev/null; then
	js='require("http").get("http://'$TGT':8080/", r => { let d = "";
		r.on("data", c => d += c);
		r.on("end", () => require("fs").readFile("/etc/hostname", () => console.log(d))); })
		.on("error", e => { console.error(e.message); process.exit(1); });'
	sfy_direct "$C" env UV_USE_IO_URING=1 strace -f -qq -e trace=io_uring_setup \
		-o "$SFY_TMP/node_ctl.strace" node -e 'require("fs").readFile("/etc/hostname", () => {})'
	check "control: node with UV_USE_IO_URING=1 sets up io_uring without socksify" \
		grep -q io_uring_setup "$SFY_TMP/node_ctl.strace"
	expect_out "node with UV_USE_IO_URING=1 fetches through the proxy" "$SFY_TOKEN" \
		run px env UV_USE_IO_URING=1 strace -f -qq -e trace=io_uring_setup \
		-o "$SFY_TMP/node.strace" node -e "$js"
	check "...and no io_uring_setup reached the kernel" \
		sh -c "! grep -q io_uring_setup '$SFY_TMP/node.strace'"
fi

finish
