#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "real.h"
#include "sock.h"

bool sfy_sockaddr_is_inet(const struct sockaddr *sa, socklen_t len)
{
	return sa && len >= sizeof(sa_family_t) &&
	       ((sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) ||
		(sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)));
}

int sfy_sock_type(int fd)
{
	int t = 0;
	socklen_t l = sizeof(t);
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &l) == 0 ? t : -1;
}

int sfy_sock_family(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	return ss.ss_family;
}

struct opt {
	int level, name;
	int same_family;        /* IP-level options only apply within a family */
};

/* What programs commonly set before connect(); the rest is rare enough to
 * lose on the (rare) replacement path. */
static const struct opt opts[] = {
	{ SOL_SOCKET, SO_KEEPALIVE, 0 },  { SOL_SOCKET, SO_RCVBUF, 0 },
	{ SOL_SOCKET, SO_SNDBUF, 0 },     { SOL_SOCKET, SO_LINGER, 0 },
	{ SOL_SOCKET, SO_PRIORITY, 0 },   { SOL_SOCKET, SO_MARK, 0 },
	{ SOL_SOCKET, SO_RCVTIMEO, 0 },   { SOL_SOCKET, SO_SNDTIMEO, 0 },
	{ SOL_SOCKET, SO_REUSEADDR, 0 },  { SOL_SOCKET, SO_OOBINLINE, 0 },
	{ IPPROTO_TCP, TCP_NODELAY, 0 },  { IPPROTO_TCP, TCP_KEEPIDLE, 0 },
	{ IPPROTO_TCP, TCP_KEEPINTVL, 0 }, { IPPROTO_TCP, TCP_KEEPCNT, 0 },
	{ IPPROTO_TCP, TCP_USER_TIMEOUT, 0 }, { IPPROTO_IP, IP_TOS, 1 },
	{ IPPROTO_IPV6, IPV6_TCLASS, 1 },
};

int sfy_sock_replace(int fd, int family)
{
	int fl = fcntl(fd, F_GETFL);
	int fdfl = fcntl(fd, F_GETFD);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (fl < 0 || fdfl < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	int old_family = ss.ss_family;
	int nfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (nfd < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		if (opts[i].same_family && old_family != family)
			continue;
		char v[64];
		socklen_t vl = sizeof(v);
		if (getsockopt(fd, opts[i].level, opts[i].name, v, &vl) == 0)
			(void)setsockopt(nfd, opts[i].level, opts[i].name, v, vl);
	}
	char dev[IFNAMSIZ];
	socklen_t dl = sizeof(dev);
	if (getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &dl) == 0 && dl > 1)
		(void)setsockopt(nfd, SOL_SOCKET, SO_BINDTODEVICE, dev, dl);
	/* A local address the program bound (not the wildcard one) is kept;
	 * the port only if it is free again. */
	if (old_family == family) {
		int bound = 0;
		if (family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			bound = s4->sin_addr.s_addr != htonl(INADDR_ANY) || s4->sin_port;
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			bound = !IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) || s6->sin6_port;
		}
		if (bound && bind(nfd, (struct sockaddr *)&ss, sl) < 0) {
			((struct sockaddr_in *)&ss)->sin_port = 0;
			(void)bind(nfd, (struct sockaddr *)&ss, sl);
		}
	}
	if ((fl & O_NONBLOCK) && fcntl(nfd, F_SETFL, fl & O_NONBLOCK) < 0)
		goto fail;
	if (dup3(nfd, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
		goto fail;
	sfy_real()->close(nfd);
	return 0;
fail:;
	int e = errno;
	sfy_real()->close(nfd);
	return -e;
}
