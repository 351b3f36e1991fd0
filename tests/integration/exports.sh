#!/bin/bash
# libsocksify.so must export only libc interposers: every other symbol is
# built hidden, because a preloaded library's exports take precedence over
# the program's and its other libraries' own (a stray exported "log_init" or
# "parse_url" would silently replace theirs).
set -u
: "${SOCKSIFY_LIB:?}"
[ -f "$SOCKSIFY_LIB" ] || { echo "no library at $SOCKSIFY_LIB"; exit 1; }
command -v nm >/dev/null || { echo "nm missing (binutils)"; exit 77; }

# Functions the library may interpose: the socket calls it hooks, the
# resolver entry points, the fd lifecycle calls it must track, the side
# doors (glibc's internal aliases, dlsym/dlvsym, the r-commands), and the
# exec family whose children it keeps proxied.
allowed=" connect sendto sendmsg sendmmsg send recv recvfrom recvmsg recvmmsg
read write readv writev close close_range closefrom dup dup2 dup3 fcntl fcntl64 fork vfork
getaddrinfo freeaddrinfo gai_strerror getaddrinfo_a gai_suspend gai_cancel gai_error
gethostbyname gethostbyname_r
gethostbyname2 gethostbyname2_r gethostbyaddr gethostbyaddr_r getnameinfo
gethostent gethostent_r getpeername getsockname syscall __read_chk __recv_chk
__recvfrom_chk _init _fini
__connect __send __read __write __poll __select __sendmmsg __recv __close __dup2 dlsym dlvsym
rcmd rcmd_af rexec rexec_af ruserok ruserok_af
execve execv execvp execvpe execl execle execlp fexecve
execveat posix_spawn posix_spawnp system popen pclose
getsockopt shutdown bind listen accept accept4
poll ppoll select pselect __poll_chk __ppoll_chk epoll_create epoll_create1 epoll_ctl "
allowed=$(echo $allowed)    # one line, single spaces
allowed=" $allowed "

syms=$(nm -D --defined-only "$SOCKSIFY_LIB") || { echo "nm failed"; exit 1; }
fail=0 n=0 have_connect=0
while read -r _addr type name; do
	[ -n "${name:-}" ] || continue
	name=${name%%@*}            # drop a symbol version
	n=$((n + 1))
	case $type in
	T|W|i) ;;
	*) echo "FAIL: exported non-function $name ($type)"; fail=$((fail + 1)); continue ;;
	esac
	[ "$name" = connect ] && have_connect=1
	case $name in
	res_*|__res_*) continue ;;
	esac
	if [[ $allowed != *" $name "* ]]; then
		echo "FAIL: exported $name: not a libc interposer (mark it static or leave it hidden)"
		fail=$((fail + 1))
	fi
done <<<"$syms"

if [ "$have_connect" != 1 ]; then
	echo "FAIL: connect is not exported: nothing would be interposed"
	fail=$((fail + 1))
fi
# The library's own code (everything but the hooks: the core archive) calls
# the real functions through sfy_real(), never an interposed name: such a
# call would re-enter our hook, or another copy's. poll/ppoll are waited on
# internally and hooked by the async work, so they count too.
core=$(dirname "$SOCKSIFY_LIB")/libsfycore.a
if [ -f "$core" ]; then
	hooked=" $(awk '{print $3}' <<<"$syms" | sed 's/@.*//' | tr '\n' ' ') poll ppoll "
	while read -r obj name; do
		if [[ $hooked == *" $name "* ]]; then
			echo "FAIL: $obj calls $name() by name: use sfy_real()->$name"
			fail=$((fail + 1))
		fi
	done < <(nm -u -A "$core" | sed -n 's/^[^:]*:\([^:]*\): *U \([^@]*\).*/\1 \2/p')
else
	echo "FAIL: no core archive at $core"
	fail=$((fail + 1))
fi

echo "$n exported symbols checked, $fail failures"
[ "$fail" -eq 0 ]
