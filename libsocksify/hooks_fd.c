/* Interposers that keep the per-fd registry (fdreg.h) true to the
 * program's descriptors (close, dup*, close_range, closefrom), and the entry points
 * that reach the UDP hooks from outside libc's plain names: _FORTIFY_SOURCE
 * variants and syscall(SYS_sendmmsg, ...) as libuv uses it. Each is two
 * atomic loads for an fd without an entry. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "real.h"
#include "sfy.h"
#include "fdreg.h"

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
 * and friends, past every libc hook: those numbers go to our functions
 * (which keep the syscall() convention: -1 and errno), every other number
 * straight to the real syscall() with the six argument registers. */
SFY_EXPORT long syscall(long n, ...)
{
	va_list ap;
	long a[6];
	va_start(ap, n);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	switch (n) {
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
	/* The exec guard (hooks_exec.c) sees these too. */
	case SYS_execve:
		return execve((const char *)a[0], (char *const *)a[1], (char *const *)a[2]);
	case SYS_execveat:
		return execveat((int)a[0], (const char *)a[1], (char *const *)a[2],
				(char *const *)a[3], (int)a[4]);
	default:
		return sfy_real()->syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
	}
}

/* ------------------------------------------------------------ fd lifecycle */

/* The registry's entry goes before the real close, while the number is
 * still ours: after it, another thread may already have a new socket on it.
 * In a vfork() child these only reach the kernel (fdreg.h). */
SFY_EXPORT int close(int fd)
{
	sfy_fdreg_close(fd);
	return sfy_real()->close(fd);
}

SFY_EXPORT int dup(int fd)
{
	int r = sfy_real()->dup(fd);
	if (r >= 0) {
		int saved = errno;
		sfy_fdreg_dup(fd, r);
		errno = saved;
	}
	return r;
}

static int after_dup2(int oldfd, int newfd, int r)
{
	if (r >= 0 && oldfd != newfd) {
		int saved = errno;
		sfy_fdreg_close(newfd);
		sfy_fdreg_dup(oldfd, newfd);
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
		sfy_fdreg_close_range(first, last);
	return sfy_real()->close_range(first, last, flags);
}

SFY_EXPORT void closefrom(int lowfd)
{
	if (lowfd >= 0)
		sfy_fdreg_close_range((unsigned)lowfd, UINT_MAX);
	if (sfy_real()->closefrom)
		sfy_real()->closefrom(lowfd);
}
