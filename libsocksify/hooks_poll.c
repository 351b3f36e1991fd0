/* poll, ppoll, select, pselect and their _FORTIFY_SOURCE and syscall()
 * forms: while no set-up may be pending (one atomic load) the real call;
 * otherwise the slow paths of ready.h, which report nothing for a pending
 * socket until its set-up ends. */
#include <errno.h>
#include <poll.h>
#include <sys/select.h>
#include <sys/syscall.h>

#include "async.h"
#include "hooks.h"
#include "ready.h"
#include "real.h"
#include "sfy.h"

/* glibc declares these only under _FORTIFY_SOURCE. */
int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
		const sigset_t *mask, size_t fdslen);

/* The kernel's sigset_t: what the raw system calls take. */
#define KERNEL_SIGSET 8

static int slow_poll(struct pollfd *fds, nfds_t n, int timeout)
{
	struct timespec t = { timeout / 1000, (long)(timeout % 1000) * 1000000 };
	return sfy_ready_ppoll(fds, n, timeout < 0 ? NULL : &t, NULL, NULL);
}

SFY_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	if (!sfy_async_any())
		return sfy_real()->poll(fds, n, timeout);
	return slow_poll(fds, n, timeout);
}

SFY_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
		     const sigset_t *mask)
{
	if (!sfy_async_any())
		return sfy_real()->ppoll(fds, n, tmo, mask);
	return sfy_ready_ppoll(fds, n, tmo, mask, NULL);
}

/* _FORTIFY_SOURCE: an array shorter than n goes to the real check (which
 * aborts); everything else is the plain call. */
SFY_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	if (fdslen / sizeof(*fds) < n && sfy_real()->poll_chk)
		return sfy_real()->poll_chk(fds, n, timeout, fdslen);
	return poll(fds, n, timeout);
}

SFY_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
			   const sigset_t *mask, size_t fdslen)
{
	if (fdslen / sizeof(*fds) < n && sfy_real()->ppoll_chk)
		return sfy_real()->ppoll_chk(fds, n, tmo, mask, fdslen);
	return ppoll(fds, n, tmo, mask);
}

/* Linux's select() reports the time left in *tv; so does this one. */
SFY_EXPORT int select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	if (!sfy_async_any() || (tv && (tv->tv_sec < 0 || tv->tv_usec < 0)))
		return sfy_real()->select(nfds, rd, wr, ex, tv);
	struct timespec t, left;
	if (tv) {
		t.tv_sec = tv->tv_sec + tv->tv_usec / 1000000;
		t.tv_nsec = (long)(tv->tv_usec % 1000000) * 1000;
	}
	int r = sfy_ready_pselect(nfds, rd, wr, ex, tv ? &t : NULL, NULL, tv ? &left : NULL);
	if (tv) {
		tv->tv_sec = left.tv_sec;
		tv->tv_usec = left.tv_nsec / 1000;
	}
	return r;
}

SFY_EXPORT int pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
		       const struct timespec *tmo, const sigset_t *mask)
{
	if (!sfy_async_any())
		return sfy_real()->pselect(nfds, rd, wr, ex, tmo, mask);
	return sfy_ready_pselect(nfds, rd, wr, ex, tmo, mask, NULL);
}

/* syscall(SYS_ppoll, fds, n, tmo, mask, sigsetsize): the kernel writes
 * the time left back into *tmo. */
long sfy_sys_ppoll(const long a[6])
{
	if (!sfy_async_any())
		return sfy_real()->syscall(SYS_ppoll, a[0], a[1], a[2], a[3], a[4], a[5]);
	struct timespec *tmo = (struct timespec *)a[2], left;
	const sigset_t *mask = (const sigset_t *)a[3];
	if (mask && (size_t)a[4] != KERNEL_SIGSET) {
		errno = EINVAL;
		return -1;
	}
	int r = sfy_ready_ppoll((struct pollfd *)a[0], (nfds_t)a[1], tmo, mask,
				tmo ? &left : NULL);
	if (tmo && (r >= 0 || errno == EINTR))
		*tmo = left;
	return r;
}

/* syscall(SYS_pselect6, nfds, rd, wr, ex, tmo, &{mask, size}): the same. */
long sfy_sys_pselect6(const long a[6])
{
	if (!sfy_async_any())
		return sfy_real()->syscall(SYS_pselect6, a[0], a[1], a[2], a[3], a[4], a[5]);
	const struct { const sigset_t *ss; size_t len; } *pack = (const void *)a[5];
	struct timespec *tmo = (struct timespec *)a[4], left;
	if (pack && pack->ss && pack->len != KERNEL_SIGSET) {
		errno = EINVAL;
		return -1;
	}
	int r = sfy_ready_pselect((int)a[0], (fd_set *)a[1], (fd_set *)a[2], (fd_set *)a[3],
				  tmo, pack ? pack->ss : NULL, tmo ? &left : NULL);
	if (tmo && (r >= 0 || errno == EINTR))
		*tmo = left;
	return r;
}
