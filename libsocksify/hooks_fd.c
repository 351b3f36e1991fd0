/* Interposers that keep the per-fd registry (fdreg.h) and the readiness
 * table (ready.h: epoll sets, registrations, waiters' eventfds) true to the
 * program's descriptors (close, dup*, close_range, closefrom), and the entry points
 * that reach the UDP and readiness hooks from outside libc's plain names:
 * _FORTIFY_SOURCE variants and syscall(SYS_sendmmsg, SYS_ppoll, ...) as libuv
 * uses them. Each is two atomic loads for an fd without an entry, plus
 * one for the readiness table. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bind.h"
#include "dnsresp_tcp.h"
#include "dnsresp_udp.h"
#include "real.h"
#include "sfy.h"
#include "fdreg.h"
#include "hooks.h"
#include "ready.h"
#include "shmfd.h"
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
 * must see, the readiness and I/O calls a pending non-blocking connect
 * answers for (poll family, epoll_ctl, read/write/readv/writev,
 * getsockopt, shutdown, getpeername) and io_uring_setup (refused by
 * policy, hooks_uring.c); every
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
	/* libuv and others reach the readiness calls this way too. */
#ifdef SYS_poll
	case SYS_poll:
		return poll((struct pollfd *)a[0], (nfds_t)a[1], (int)a[2]);
#endif
	case SYS_ppoll:
		return sfy_sys_ppoll(a);
#ifdef SYS_select
	case SYS_select:
		return select((int)a[0], (fd_set *)a[1], (fd_set *)a[2], (fd_set *)a[3],
			      (struct timeval *)a[4]);
#endif
	case SYS_pselect6:
		return sfy_sys_pselect6(a);
#ifdef SYS_epoll_create
	case SYS_epoll_create:
		return epoll_create((int)a[0]);
#endif
	case SYS_epoll_create1:
		return epoll_create1((int)a[0]);
	case SYS_epoll_ctl:
		return epoll_ctl((int)a[0], (int)a[1], (int)a[2], (struct epoll_event *)a[3]);
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
	/* What a pending non-blocking connect must gate (async.h), and the
	 * answers it fakes. */
	case SYS_read:
		return read((int)a[0], (void *)a[1], (size_t)a[2]);
	case SYS_write:
		return write((int)a[0], (const void *)a[1], (size_t)a[2]);
	case SYS_readv:
		return readv((int)a[0], (const struct iovec *)a[1], (int)a[2]);
	case SYS_writev:
		return writev((int)a[0], (const struct iovec *)a[1], (int)a[2]);
	case SYS_getsockopt:
		return getsockopt((int)a[0], (int)a[1], (int)a[2], (void *)a[3],
				  (socklen_t *)a[4]);
	case SYS_shutdown:
		return shutdown((int)a[0], (int)a[1]);
	/* SOCKS BIND (hooks_bind.c). */
	case SYS_bind:
		return bind((int)a[0], (const struct sockaddr *)a[1], (socklen_t)a[2]);
	case SYS_listen:
		return listen((int)a[0], (int)a[1]);
	case SYS_accept:
		return accept((int)a[0], (struct sockaddr *)a[1], (socklen_t *)a[2]);
	case SYS_accept4:
		return accept4((int)a[0], (struct sockaddr *)a[1], (socklen_t *)a[2], (int)a[3]);
	case SYS_getsockname:
		return getsockname((int)a[0], (struct sockaddr *)a[1], (socklen_t *)a[2]);
	case SYS_getpeername:
		return getpeername((int)a[0], (struct sockaddr *)a[1], (socklen_t *)a[2]);
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
 * In a vfork() child these only reach the kernel (fdreg.h).
 *
 * The tree's shared tables (shmfd.h) live on descriptors the program does
 * not know about: a close() or dup2() that names one moves the table to
 * another number first, and close_range()/closefrom() close around them,
 * so that what the program sees is what the kernel would have done and
 * the processes it starts still share the table. */
SFY_EXPORT int close(int fd)
{
	sfy_shm_evict(fd);
	sfy_dnstcp_evict(fd);
	sfy_dnsresp_udp_evict(fd);
	sfy_bind_evict(fd);
	sfy_fdreg_close(fd);
	if (sfy_ready_watching())
		sfy_ready_fd_closed(fd);
	return sfy_real()->close(fd);
}

void sfy_fd_duped(int oldfd, int newfd)
{
	int saved = errno;
	sfy_fdreg_dup(oldfd, newfd);
	if (sfy_ready_watching())
		sfy_ready_fd_dup(oldfd, newfd);
	errno = saved;
}

SFY_EXPORT int dup(int fd)
{
	int r = sfy_real()->dup(fd);
	if (r >= 0)
		sfy_fd_duped(fd, r);
	return r;
}

/* The readiness table forgets newfd before the real call, while the
 * number is still the program's (a waiter's eventfd there must not be
 * signalled once it names the program's file). */
static void before_dup2(int oldfd, int newfd)
{
	if (oldfd != newfd) {
		sfy_shm_evict(newfd);
		sfy_dnstcp_evict(newfd);
		sfy_dnsresp_udp_evict(newfd);
		sfy_bind_evict(newfd);
		if (sfy_ready_watching())
			sfy_ready_fd_closed(newfd);
	}
}

static int after_dup2(int oldfd, int newfd, int r)
{
	if (r >= 0 && oldfd != newfd) {
		int saved = errno;
		sfy_fdreg_close(newfd);
		errno = saved;
		sfy_fd_duped(oldfd, newfd);
	}
	return r;
}

SFY_EXPORT int dup2(int oldfd, int newfd)
{
	before_dup2(oldfd, newfd);
	return after_dup2(oldfd, newfd, sfy_real()->dup2(oldfd, newfd));
}

SFY_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	before_dup2(oldfd, newfd);
	return after_dup2(oldfd, newfd, sfy_real()->dup3(oldfd, newfd, flags));
}

/* The library's own descriptors within [first, last], ascending: the
 * shared tables', the DNS responder's loopback sockets (UDP) and its
 * listeners and server ends (TCP, dnsresp_tcp.h), and the SOCKS BINDs'
 * (bind.h). Beyond DNS_TCP_KEEP (SFY_BIND_KEEP) of the last in one range,
 * the rest close with the program's range (those connections end; the
 * program closed their numbers, after all). */
#define DNS_TCP_KEEP 64
#define NKEEP (SFY_SHM_NGUARD + SFY_DNSRESP_UDP_NFD + DNS_TCP_KEEP + SFY_BIND_KEEP)
static int guarded_in(unsigned first, unsigned last, int keep[NKEEP], bool closing)
{
	int n = sfy_shm_guarded_in(first, last, keep, SFY_SHM_NGUARD);
	int more[SFY_DNSRESP_UDP_NFD + DNS_TCP_KEEP + SFY_BIND_KEEP];
	int m = sfy_dnsresp_udp_guarded_in(first, last, more, SFY_DNSRESP_UDP_NFD);
	m += sfy_dnstcp_guarded_in(first, last, more + m, DNS_TCP_KEEP, closing);
	m += sfy_bind_guarded_in(first, last, more + m, SFY_BIND_KEEP, closing);
	for (int i = 0; i < m; i++) {
		int j = n++;
		for (; j > 0 && keep[j - 1] > more[i]; j--)
			keep[j] = keep[j - 1];
		keep[j] = more[i];
	}
	return n;
}

/* [first, last] but the library's descriptors, with the kernel's answer for
 * the range (flags the kernel does not know reach it unchanged). */
static int close_around(unsigned first, unsigned last, int flags)
{
	int keep[NKEEP], n = 0;
	if (first <= last && !(flags & ~(CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE)))
		n = guarded_in(first, last, keep, !(flags & CLOSE_RANGE_CLOEXEC));
	unsigned lo = first;
	for (int i = 0; i < n; i++) {
		if ((unsigned)keep[i] > lo &&
		    sfy_real()->close_range(lo, (unsigned)keep[i] - 1, flags) < 0)
			return -1;
		lo = (unsigned)keep[i] + 1;
	}
	if (n && lo > last)
		return 0;
	return sfy_real()->close_range(lo, last, flags);
}

SFY_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	if (!sfy_real()->close_range) {
		errno = ENOSYS;
		return -1;
	}
	if (!(flags & CLOSE_RANGE_CLOEXEC)) {
		sfy_fdreg_close_range(first, last);
		if (sfy_ready_watching() && first <= last)
			sfy_ready_fd_close_range(first, last);
	}
	return close_around(first, last, flags);
}

SFY_EXPORT void closefrom(int lowfd)
{
	int keep[NKEEP], n = 0;
	if (lowfd >= 0) {
		sfy_fdreg_close_range((unsigned)lowfd, UINT_MAX);
		if (sfy_ready_watching())
			sfy_ready_fd_close_range((unsigned)lowfd, UINT_MAX);
		n = guarded_in((unsigned)lowfd, INT_MAX, keep, true);
	}
	for (int i = 0; i < n; i++) {
		/* closefrom() exists from glibc 2.34, like close_range(); the
		 * kernel's may not (< 5.9): then one by one, below a table's fd. */
		if (keep[i] > lowfd && (!sfy_real()->close_range ||
		    sfy_real()->close_range((unsigned)lowfd, (unsigned)keep[i] - 1, 0) < 0))
			for (int fd = lowfd; fd < keep[i]; fd++)
				sfy_real()->close(fd);
		lowfd = keep[i] + 1;
	}
	if (sfy_real()->closefrom)
		sfy_real()->closefrom(lowfd);
}
