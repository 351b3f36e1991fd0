/* io_uring submits connects, sends and epoll_ctl inside the kernel
 * (IORING_OP_CONNECT, IORING_OP_SENDMSG, IORING_OP_EPOLL_CTL), past every
 * hook. Unless the config says `io_uring: allow`, setting up a ring fails
 * with ENOSYS, as on a kernel without io_uring, and its users fall back to
 * epoll and plain calls, which the hooks see:
 *
 * - syscall(SYS_io_uring_setup, ...) through libc, as libuv (node) does:
 *   hooks_fd.c's syscall() hook comes here.
 * - liburing's ring set-up functions, for programs linked to liburing.so:
 *   liburing issues the system call itself (inline `syscall` instructions
 *   since liburing 2.2, Debian 12's 2.3 included), where no preload can
 *   reach it, so its exported entry points are interposed instead.
 *
 * Not covered: a program with liburing linked in statically or its own
 * inline system call (Rust's io-uring crate, Go, static binaries): a
 * preloaded library cannot see those. */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/syscall.h>

#include "dlreal.h"
#include "log.h"
#include "real.h"
#include "sfy.h"
#include "state.h"
#include "uring.h"

struct io_uring;
struct io_uring_params;

static bool uring_allowed(const char *what)
{
	static atomic_flag said = ATOMIC_FLAG_INIT;
	const struct sfy_config *c = sfy_config_get();
	if (c && c->io_uring == SFY_IO_URING_ALLOW)
		return true;
	/* Expected for every node program: not worth a warning. */
	if (!atomic_flag_test_and_set(&said))
		sfy_info("%s: io_uring refused (ENOSYS): its connects and sends would bypass "
			 "the proxy (io_uring: allow permits it)", what);
	return false;
}

long sfy_io_uring_setup(long entries, long params)
{
#ifdef SYS_io_uring_setup
	if (uring_allowed("io_uring_setup"))
		return sfy_real()->syscall(SYS_io_uring_setup, entries, params);
#else
	(void)entries, (void)params;
#endif
	errno = ENOSYS;
	return -1;
}

/* liburing's definition of name: the next one after this library, or,
 * when the program dlopen()ed liburing privately (RTLD_LOCAL, as Python's
 * ctypes does), the one in that copy. */
static void *next(const char *name)
{
	static const char *const sonames[] = { "liburing.so.2", "liburing.so.1" };
	const struct sfy_dl *d = sfy_dl();
	void *p = d->dlsym ? d->dlsym(RTLD_NEXT, name) : NULL;
	for (size_t i = 0; !p && d->dlsym && i < SFY_ARRAY_LEN(sonames); i++) {
		void *h = dlopen(sonames[i], RTLD_LAZY | RTLD_NOLOAD);
		if (h) {
			p = d->dlsym(h, name);
			dlclose(h);
		}
	}
	return p;
}

/* liburing 2.x returns -errno; errno is set too, for older callers. */
static int refused(void)
{
	errno = ENOSYS;
	return -ENOSYS;
}

SFY_EXPORT int io_uring_setup(unsigned entries, struct io_uring_params *p);
SFY_EXPORT int io_uring_queue_init(unsigned entries, struct io_uring *ring, unsigned flags);
SFY_EXPORT int io_uring_queue_init_params(unsigned entries, struct io_uring *ring,
					  struct io_uring_params *p);
SFY_EXPORT int io_uring_queue_init_mem(unsigned entries, struct io_uring *ring,
				       struct io_uring_params *p, void *buf, size_t size);

int io_uring_setup(unsigned entries, struct io_uring_params *p)
{
	int (*f)(unsigned, struct io_uring_params *);
	if (!uring_allowed("io_uring_setup") || !(f = (__typeof__(f))next("io_uring_setup")))
		return refused();
	return f(entries, p);
}

int io_uring_queue_init(unsigned entries, struct io_uring *ring, unsigned flags)
{
	int (*f)(unsigned, struct io_uring *, unsigned);
	if (!uring_allowed("io_uring_queue_init") || !(f = (__typeof__(f))next("io_uring_queue_init")))
		return refused();
	return f(entries, ring, flags);
}

int io_uring_queue_init_params(unsigned entries, struct io_uring *ring, struct io_uring_params *p)
{
	int (*f)(unsigned, struct io_uring *, struct io_uring_params *);
	if (!uring_allowed("io_uring_queue_init_params") ||
	    !(f = (__typeof__(f))next("io_uring_queue_init_params")))
		return refused();
	return f(entries, ring, p);
}

int io_uring_queue_init_mem(unsigned entries, struct io_uring *ring, struct io_uring_params *p,
			    void *buf, size_t size)
{
	int (*f)(unsigned, struct io_uring *, struct io_uring_params *, void *, size_t);
	if (!uring_allowed("io_uring_queue_init_mem") ||
	    !(f = (__typeof__(f))next("io_uring_queue_init_mem")))
		return refused();
	return f(entries, ring, p, buf, size);
}
