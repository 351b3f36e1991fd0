/* glibc's exported internal aliases of hooked calls, which a program (or a
 * lookup by name, see hooks_dl.c) can reach directly: __connect and __send
 * (public since GLIBC_2.2.5), __sendmmsg and __recv (GLIBC_PRIVATE, found
 * by dlsym), __close and __dup2 (the descriptor bookkeeping must see them).
 * Each is the public hook under its other name. __read and __write are left
 * to glibc: on a UDP session's socket, connected to the relay, a raw write
 * lacks the relay's header and is dropped there; nothing leaves directly. */
#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sfy.h"

SFY_EXPORT int __connect(int fd, const struct sockaddr *sa, socklen_t len);
SFY_EXPORT ssize_t __send(int fd, const void *buf, size_t n, int flags);
SFY_EXPORT int __sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags);
SFY_EXPORT ssize_t __recv(int fd, void *buf, size_t n, int flags);
SFY_EXPORT int __close(int fd);
SFY_EXPORT int __dup2(int oldfd, int newfd);
SFY_EXPORT ssize_t __read(int fd, void *buf, size_t n);
SFY_EXPORT ssize_t __write(int fd, const void *buf, size_t n);
SFY_EXPORT int __poll(struct pollfd *fds, nfds_t n, int timeout);
SFY_EXPORT int __select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv);

int __connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	return connect(fd, sa, len);
}

ssize_t __send(int fd, const void *buf, size_t n, int flags)
{
	return send(fd, buf, n, flags);
}

int __sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	return sendmmsg(fd, vec, vlen, flags);
}

ssize_t __recv(int fd, void *buf, size_t n, int flags)
{
	return recv(fd, buf, n, flags);
}

int __close(int fd)
{
	return close(fd);
}

int __dup2(int oldfd, int newfd)
{
	return dup2(oldfd, newfd);
}

ssize_t __read(int fd, void *buf, size_t n)
{
	return read(fd, buf, n);
}

ssize_t __write(int fd, const void *buf, size_t n)
{
	return write(fd, buf, n);
}

int __poll(struct pollfd *fds, nfds_t n, int timeout)
{
	return poll(fds, n, timeout);
}

int __select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	return select(n, r, w, e, tv);
}
