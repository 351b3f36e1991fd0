#!/bin/bash
# Two copies of the library in one process (LD_PRELOAD naming two paths, as
# when a socksify'd shell starts another socksify from a different install):
# the first copy's dlsym(RTLD_NEXT) finds the second copy's hooks instead of
# libc. The program must then be proxied exactly once, or fail closed with
# one log line -- never crash, hang, recurse, go direct or tunnel twice. A
# foreign interposer between socksify and libc must fail closed too.
#
#   cli 10.204.1.1 ---- 10.204.1.2 prx 10.204.2.1 ---- 10.204.2.2 tgt
#                       danted :1080                    echo :7
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted socat cc
sfy_begin

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$P" 10.204.1 || exit 1
sfy_link "$P" "$T" 10.204.2 || exit 1
PRX=10.204.1.2 TGT=10.204.2.2

sfy_echo echo "$T" 7
sfy_danted dante "$P" "$PRX" 1080 none

# A byte-identical copy under another name: the loader maps it a second time.
copy=$SFY_TMP/copy/libsocksify-copy.so
mkdir -p "$SFY_TMP/copy" && cp "$SOCKSIFY_LIB" "$copy" && chmod 755 "$SFY_TMP/copy"

# A foreign interposer of connect() that only forwards.
cat >"$SFY_TMP/shim.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/socket.h>
int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	int (*next)(int, const struct sockaddr *, socklen_t);
	*(void **)&next = dlsym(RTLD_NEXT, "connect");
	return next(fd, sa, len);
}
C
cc -shared -fPIC -o "$SFY_TMP/copy/shim.so" "$SFY_TMP/shim.c" -ldl ||
	{ echo "FAIL: setup: cannot build the shim"; exit 1; }
# One that sees only close() and read() (an I/O-accounting shim): it cannot
# put anything on the network, so socksify works behind it.
cat >"$SFY_TMP/ioshim.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <unistd.h>
int close(int fd)
{
	int (*next)(int);
	*(void **)&next = dlsym(RTLD_NEXT, "close");
	return next(fd);
}
ssize_t read(int fd, void *b, size_t n)
{
	ssize_t (*next)(int, void *, size_t);
	*(void **)&next = dlsym(RTLD_NEXT, "read");
	return next(fd, b, n);
}
C
cc -shared -fPIC -o "$SFY_TMP/copy/ioshim.so" "$SFY_TMP/ioshim.c" -ldl ||
	{ echo "FAIL: setup: cannot build the I/O shim"; exit 1; }

# LD_PRELOAD=LIBS with the proxy from the environment, no launcher.
twice() {  # libs cmd...
	local libs=$1
	shift
	[ "${SANITIZE:-}" = 1 ] && [ -n "${SFY_ASAN_RT:-}" ] && libs="$SFY_ASAN_RT $libs"
	timeout -k 2 "$SFY_CMD_TIMEOUT" ip netns exec "$C" env LD_PRELOAD="$libs" \
	    SOCKSIFY_PROXY="socks5://$PRX:1080" SOCKSIFY_LOG=warn \
	    ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} \
	    ${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} "$@"
}

fails "client cannot reach the target directly" \
	sfy_direct "$C" "$SFY_TOOLS/tcpclient" --host "$TGT" --port 7 --timeout-ms 2000

echo "--- two copies of libsocksify"
for order in "$SOCKSIFY_LIB $copy" "$copy $SOCKSIFY_LIB"; do
	before=$(sfy_proxy_conns dante)
	sfy__exec twice "$order" "$SFY_TOOLS/tcpclient" --host "$TGT" --port 7
	rc=$SFY_LAST_RC out=$SFY_LAST_OUT
	after=$(sfy_proxy_conns dante)
	lines=$(grep -c 'socksify' "$out")
	check "two copies ($(basename "${order%% *}") first): neither crashed nor hung (exit $rc)" \
		test "$rc" -le 1
	if [ "$rc" = 0 ]; then
		check "...the connection went through the proxy exactly once ($((after - before)))" \
			test "$((after - before))" = 1
		check "...and said so in at most one log line ($lines)" test "$lines" -le 1
	else
		check "...it failed closed with exactly one log line ($lines)" test "$lines" = 1
		check "...and nothing reached the proxy" test "$after" = "$before"
	fi
done

echo "--- a foreign interposer between socksify and libc"
before=$(sfy_proxy_conns dante)
fails "connect() fails closed when RTLD_NEXT is not libc" \
	twice "$SOCKSIFY_LIB $SFY_TMP/copy/shim.so" "$SFY_TOOLS/tcpclient" --host "$TGT" --port 7
out=$SFY_LAST_OUT
check "...neither crashed nor hung (exit $SFY_LAST_RC)" test "$SFY_LAST_RC" = 1
check "...with exactly one log line naming the interposer" \
	test "$(grep -c 'socksify.*shim.so' "$out")" = 1
check "...and no other socksify line" test "$(grep -c 'socksify' "$out")" = 1
check "...and nothing reached the proxy" test "$(sfy_proxy_conns dante)" = "$before"
ok "a program that does not use the network still runs" \
	twice "$SOCKSIFY_LIB $SFY_TMP/copy/shim.so" sh -c 'echo hi >/dev/null'
check "...without any log line" test ! -s "$SFY_LAST_OUT"
before=$(sfy_proxy_conns dante)
ok "an interposer of close()/read() only: still proxied" \
	twice "$SOCKSIFY_LIB $SFY_TMP/copy/ioshim.so" "$SFY_TOOLS/tcpclient" --host "$TGT" --port 7
check "...through the proxy, once" test "$(($(sfy_proxy_conns dante) - before))" = 1

finish
