/* Interposers that keep the UDP session table true to the program's
 * descriptors (close, dup*, close_range, closefrom), and the entry points
 * that reach the UDP hooks from outside libc's plain names: _FORTIFY_SOURCE
 * variants and syscall(SYS_sendmmsg, ...) as libuv uses it. Each is a
 * single atomic load for an fd without a session. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "real.h"
#include "sfy.h"
#include "udp_assoc.h"
#include "uring.h"

/* glibc declares these only under _FORTIFY_SOURCE. */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
		       struct sockaddr *from, socklen_t *fromlen);

/* _FORTIFY_SOURCE: a buffer that is too small goes to the real check (which
 * aborts); everything else is the plain call. */
SFY_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (n > buflen && sfy_real()->read_chk)
		return sfy_real()->read_chk(fd, buf, n, buflen);
	return read(fd, buf, n);
}

SFY_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	if (n > buflen && sfy_real()->recv_chk)
		return sfy_real()->recv_chk(fd, buf, n, buflen, flags);
	return recv(fd, buf, n, flags);
}

SFY_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
				  struct sockaddr *from, socklen_t *fromlen)
{
	if (n > buflen && sfy_real()->recvfrom_chk)
		return sfy_real()->recvfrom_chk(fd, buf, n, buflen, flags, from, fromlen);
	return recvfrom(fd, buf, n, flags, from, fromlen);
}

/* libuv (node's dgram, dig) sends and receives with syscall(SYS_sendmmsg)
 * and friends, past every libc hook, and a program can connect the same
 * way: those numbers go to our functions (which keep the syscall()
 * convention: -1 and errno), as do the descriptor calls the session table
 * must see and io_uring_setup (refused by policy, hooks_uring.c); every
 * other number goes straight to the real syscall() with the six argument
 * registers. */
SFY_EXPORT long syscall(long n, ...)
{
	va_list ap;
	long a[6];
	va_start(ap, n);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	switch (n) {
	case SYS_connect:
		return connect((int)a[0], (const struct sockaddr *)a[1], (socklen_t)a[2]);
	case SYS_close:
		return close((int)a[0]);
	case SYS_dup:
		return dup((int)a[0]);
#ifdef SYS_dup2
	case SYS_dup2:
		return dup2((int)a[0], (int)a[1]);
#endif
	case SYS_dup3:
		return dup3((int)a[0], (int)a[1], (int)a[2]);
#ifdef SYS_close_range
	case SYS_close_range:
		return close_range((unsigned)a[0], (unsigned)a[1], (int)a[2]);
#endif
#ifdef SYS_io_uring_setup
	case SYS_io_uring_setup:
		return sfy_io_uring_setup(a[0], a[1]);
#endif
	case SYS_sendmmsg:
		return sendmmsg((int)a[0], (struct mmsghdr *)a[1], (unsigned)a[2], (int)a[3]);
	case SYS_recvmmsg:
		return recvmmsg((int)a[0], (struct mmsghdr *)a[1], (unsigned)a[2], (int)a[3],
				(struct timespec *)a[4]);
	case SYS_sendmsg:
		return sendmsg((int)a[0], (const struct msghdr *)a[1], (int)a[2]);
	case SYS_recvmsg:
		return recvmsg((int)a[0], (struct msghdr *)a[1], (int)a[2]);
	case SYS_sendto:
		return sendto((int)a[0], (const void *)a[1], (size_t)a[2], (int)a[3],
			      (const struct sockaddr *)a[4], (socklen_t)a[5]);
	case SYS_recvfrom:
		return recvfrom((int)a[0], (void *)a[1], (size_t)a[2], (int)a[3],
				(struct sockaddr *)a[4], (socklen_t *)a[5]);
	default:
		return sfy_real()->syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
	}
}

/* ------------------------------------------------------------ fd lifecycle */

SFY_EXPORT int close(int fd)
{
	if (sfy_udp_maybe(fd))
		sfy_udp_forget(fd);   /* a session: ends the association */
	return sfy_real()->close(fd);
}

SFY_EXPORT int dup(int fd)
{
	int r = sfy_real()->dup(fd);
	if (r >= 0 && sfy_udp_maybe(fd))
		sfy_udp_dup(fd, r);
	return r;
}

static int after_dup2(int oldfd, int newfd, int r)
{
	if (r >= 0 && oldfd != newfd) {
		int saved = errno;
		if (sfy_udp_maybe(newfd))
			sfy_udp_forget(newfd);
		if (sfy_udp_maybe(oldfd))
			sfy_udp_dup(oldfd, newfd);
		errno = saved;
	}
	return r;
}

SFY_EXPORT int dup2(int oldfd, int newfd)
{
	return after_dup2(oldfd, newfd, sfy_real()->dup2(oldfd, newfd));
}

SFY_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	return after_dup2(oldfd, newfd, sfy_real()->dup3(oldfd, newfd, flags));
}

SFY_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	if (!sfy_real()->close_range) {
		errno = ENOSYS;
		return -1;
	}
	if (!(flags & CLOSE_RANGE_CLOEXEC))
		sfy_udp_forget_range(first, last);
	return sfy_real()->close_range(first, last, flags);
}

SFY_EXPORT void closefrom(int lowfd)
{
	if (lowfd >= 0)
		sfy_udp_forget_range((unsigned)lowfd, UINT_MAX);
	if (sfy_real()->closefrom)
		sfy_real()->closefrom(lowfd);
}
