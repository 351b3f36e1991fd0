/* bind(), listen(), accept() and accept4() for SOCKS BIND (bind.h): a
 * program's listening socket that waits for the peer of a proxied
 * connection gets its incoming connection through the proxy. Every other
 * socket -- a server's fixed port, a loopback listener, UDP -- goes
 * straight to the kernel after at most a look at the fd registry (and,
 * for bind() of a TCP socket, the socket's type). getsockname() is in
 * hooks_udp.c. */
#include <errno.h>
#include <sys/socket.h>

#include "bind.h"
#include "fdreg.h"
#include "real.h"
#include "sfy.h"

static int ret(int r)
{
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return r;
}

SFY_EXPORT int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	int r = sfy_bind_on_bind(fd, sa, len);
	return r == 1 ? sfy_real()->bind(fd, sa, len) : ret(r);
}

SFY_EXPORT int listen(int fd, int backlog)
{
	int r = sfy_bind_on_listen(fd, backlog);
	return r == 1 ? sfy_real()->listen(fd, backlog) : ret(r);
}

SFY_EXPORT int accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	if (sfy_fdreg_has(fd, SFY_FDREG_BIND)) {
		int r = sfy_bind_on_accept(fd, sa, len, flags);
		if (r != 1)
			return ret(r);
	}
	return sfy_real()->accept4(fd, sa, len, flags);
}

SFY_EXPORT int accept(int fd, struct sockaddr *sa, socklen_t *len)
{
	if (sfy_fdreg_has(fd, SFY_FDREG_BIND)) {
		int r = sfy_bind_on_accept(fd, sa, len, 0);
		if (r != 1)
			return ret(r);
	}
	return sfy_real()->accept(fd, sa, len);
}
