/* io_uring submits connects, sends and epoll_ctl inside the kernel
 * (IORING_OP_CONNECT, IORING_OP_SENDMSG, IORING_OP_EPOLL_CTL), past every
 * hook. Unless the config says `io_uring: allow`, setting up a ring fails
 * with ENOSYS, as on a kernel without io_uring, and its users fall back to
 * epoll and plain calls, which the hooks see:
 *
 * syscall(SYS_io_uring_setup, ...) through libc, as libuv (node) does:
 * hooks_fd.c's syscall() hook comes here.
 *
 * Not covered: programs that issue the system call themselves -- liburing
 * (inline `syscall` instructions since 2.2, Debian 12's 2.3 included),
 * Rust's io-uring crate, static binaries. Only libc's names are ours to
 * export, so liburing's API is not interposed. */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/syscall.h>

#include "log.h"
#include "real.h"
#include "sfy.h"
#include "state.h"
#include "uring.h"

static bool uring_allowed(void)
{
	static atomic_flag said = ATOMIC_FLAG_INIT;
	const struct sfy_config *c = sfy_config_get();
	if (c && c->io_uring == SFY_IO_URING_ALLOW)
		return true;
	/* Expected for every node program: not worth a warning. */
	if (!atomic_flag_test_and_set(&said))
		sfy_info("io_uring_setup: io_uring refused (ENOSYS): its connects and sends "
			 "would bypass the proxy (io_uring: allow permits it)");
	return false;
}

long sfy_io_uring_setup(long entries, long params)
{
#ifdef SYS_io_uring_setup
	if (uring_allowed())
		return sfy_real()->syscall(SYS_io_uring_setup, entries, params);
#else
	(void)entries, (void)params;
#endif
	errno = ENOSYS;
	return -1;
}
