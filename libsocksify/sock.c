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

uint16_t sfy_sockaddr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
	return 0;
}

void sfy_sockaddr_set_port(struct sockaddr *sa, uint16_t port)
{
	if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)(void *)sa)->sin_port = htons(port);
	else if (sa->sa_family == AF_INET6)
		((struct sockaddr_in6 *)(void *)sa)->sin6_port = htons(port);
}

bool sfy_sockaddr_is_inet(const struct sockaddr *sa, socklen_t len)
{
	return sa && len >= sizeof(sa_family_t) &&
	       ((sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) ||
		(sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)));
}

int sfy_sock_family(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (sfy_real()->getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	return ss.ss_family;
}

int sfy_private_fd(int fd)
{
	if (fd < 0 || fd >= SFY_PRIVATE_FD_MIN)
		return fd;
	int n = sfy_real()->fcntl(fd, F_DUPFD_CLOEXEC, SFY_PRIVATE_FD_MIN);
	sfy_real()->close(fd);
	return n;
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

/* The local address the replacement binds to keep what the program bound:
 * the same address and port within a family; across families only the
 * port (an address of one family is no source for the other), on the
 * wildcard address. Returns its length, 0 if the program bound nothing. */
static socklen_t kept_local(const struct sockaddr_storage *ss, int family,
			    struct sockaddr_storage *out)
{
	in_port_t port;
	bool any;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		port = s4->sin_port;
		any = s4->sin_addr.s_addr == htonl(INADDR_ANY);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		port = s6->sin6_port;
		any = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
	} else {
		return 0;
	}
	if (any && !port)
		return 0;
	if (ss->ss_family == family) {
		*out = *ss;
		return family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	}
	if (!port)
		return 0;
	memset(out, 0, sizeof(*out));
	if (family == AF_INET) {
		struct sockaddr_in *o4 = (struct sockaddr_in *)out;
		o4->sin_family = AF_INET;
		o4->sin_port = port;
		return sizeof(*o4);
	}
	struct sockaddr_in6 *o6 = (struct sockaddr_in6 *)out;
	o6->sin6_family = AF_INET6;
	o6->sin6_port = port;
	return sizeof(*o6);
}

static void set_int(int fd, int level, int name, int v)
{
	(void)setsockopt(fd, level, name, &v, sizeof(v));
}

/* Binds nfd where the program bound fd. fd still holds that port, so both
 * sockets carry SO_REUSEADDR for the bind (Linux then lets two sockets that
 * are not listening share it); the program's own setting comes back in
 * sfy_sock_replace. The port is dropped only if it really is taken. */
static void bind_like(int fd, int nfd, const struct sockaddr_storage *ss, int family)
{
	struct sockaddr_storage loc;
	socklen_t ll = ss ? kept_local(ss, family, &loc) : 0;
	if (!ll)
		return;
	set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	set_int(nfd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (sfy_real()->bind(nfd, (struct sockaddr *)&loc, ll) == 0)
		return;
	((struct sockaddr_in *)&loc)->sin_port = 0;   /* same offset in sockaddr_in6 */
	(void)sfy_real()->bind(nfd, (struct sockaddr *)&loc, ll);
}

bool sfy_sock_bound(int fd, struct sockaddr_storage *out)
{
	struct sockaddr_storage loc;
	socklen_t sl = sizeof(*out);
	return sfy_real()->getsockname(fd, (struct sockaddr *)out, &sl) == 0 &&
	       kept_local(out, out->ss_family, &loc) != 0;
}

int sfy_sock_replace(int fd, int family, const struct sockaddr_storage *bound, bool discard)
{
	int fl = sfy_real()->fcntl(fd, F_GETFL);
	int fdfl = sfy_real()->fcntl(fd, F_GETFD);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int reuse = 0;
	socklen_t rl = sizeof(reuse);
	struct linger lg;
	socklen_t lgl = sizeof(lg);
	if (fl < 0 || fdfl < 0 || sfy_real()->getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
	    sfy_real()->getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, &rl) < 0 ||
	    sfy_real()->getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &lgl) < 0)
		return -errno;
	int old_family = ss.ss_family;
	/* The same protocol: an MPTCP socket stays MPTCP. */
	int proto = 0;
	socklen_t pl = sizeof(proto);
	if (sfy_real()->getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &pl) < 0)
		proto = 0;
	int nfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, proto);
	if (nfd < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		if (opts[i].same_family && old_family != family)
			continue;
		char v[64];
		socklen_t vl = sizeof(v);
		if (sfy_real()->getsockopt(fd, opts[i].level, opts[i].name, v, &vl) == 0)
			(void)setsockopt(nfd, opts[i].level, opts[i].name, v, vl);
	}
	char dev[IFNAMSIZ];
	socklen_t dl = sizeof(dev);
	if (sfy_real()->getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &dl) == 0 && dl > 1)
		(void)setsockopt(nfd, SOL_SOCKET, SO_BINDTODEVICE, dev, dl);
	bind_like(fd, nfd, bound, family);
	if ((fl & O_NONBLOCK) && sfy_real()->fcntl(nfd, F_SETFL, fl & O_NONBLOCK) < 0)
		goto fail;
	/* The old connection ends with a reset: a plain close would leave it in
	 * TIME_WAIT on the very address pair the retry to the same proxy from
	 * the same port needs. */
	struct linger abort_close = { .l_onoff = 1, .l_linger = 0 };
	if (discard)
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
	if (sfy_real()->dup3(nfd, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		goto fail;
	}
	set_int(fd, SOL_SOCKET, SO_REUSEADDR, reuse);
	sfy_real()->close(nfd);
	return 0;
fail:;
	int e = errno;
	set_int(fd, SOL_SOCKET, SO_REUSEADDR, reuse);
	sfy_real()->close(nfd);
	return -e;
}
