/* connect(), sendto(MSG_FASTOPEN) and getpeername() for TCP: classify, then
 * hand the socket to the chain. Everything that is not an AF_INET/AF_INET6
 * stream socket to a non-bypass destination passes straight through.
 *
 * A non-blocking socket: the chain is built inside connect(), driven with
 * poll() and bounded by timeouts.handshake, and connect() then returns 0 (an
 * immediate success, which POSIX allows for non-blocking sockets) or -1 with
 * the error; it never returns EINPROGRESS, so the program's first POLLOUT
 * means the whole tunnel is up. */
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "chain.h"
#include "fakedns.h"
#include "fdreg.h"
#include "log.h"
#include "real.h"
#include "route.h"
#include "sock.h"
#include "sfy.h"
#include "state.h"
#include "udp_assoc.h"

/* 1 = tunnel it, 0 = pass through, <0 = fail closed with this errno. */
static int classify_tcp(int fd, const struct sockaddr *sa, socklen_t len,
			const struct sfy_config **cfgp)
{
	if (!sfy_sockaddr_is_inet(sa, len) || sfy_sock_type(fd) != SOCK_STREAM)
		return 0;
	const struct sfy_config *cfg = sfy_config_get();
	if (!cfg)
		return -ECONNREFUSED;
	if (sfy_route_bypass(cfg, sa))
		return 0;
	/* Already connected: let the kernel say EISCONN. */
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (sfy_real()->getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
		return 0;
	*cfgp = cfg;
	return 1;
}

static int tunnel(const struct sfy_config *cfg, int fd, const struct sockaddr *sa,
		  socklen_t len)
{
	struct sfy_addr dst;
	if (!sfy_fakedns_reverse(sa, len, &dst)) {
		/* A fake address no name stands behind (stale, or made up) must
		 * not reach the proxy as if it were real. */
		if (cfg->dns == SFY_DNS_REMOTE && sfy_fakedns_is_fake(sa, len)) {
			sfy_addr_from_sockaddr(&dst, sa, len);
			char a[300];
			sfy_addr_format(&dst, a, sizeof(a));
			sfy_warn("connect to %s failed: a fake-DNS address with no name behind it "
				 "(EHOSTUNREACH)", a);
			return -EHOSTUNREACH;
		}
		int r = sfy_addr_from_sockaddr(&dst, sa, len);
		if (r < 0)
			return r;
	}
	int r = sfy_chain_connect(cfg, fd, &dst, SFY_S5_CONNECT, NULL);
	if (r == 0)
		sfy_fdreg_peer_set(fd, sa, len);   /* best effort: else the first hop */
	return r;
}

SFY_EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	const struct sfy_config *cfg = NULL;
	int c = classify_tcp(fd, sa, len, &cfg);
	if (c == 0)
		return sfy_udp_connect(fd, sa, len);   /* UDP, or not ours at all */
	int r = c < 0 ? c : tunnel(cfg, fd, sa, len);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return 0;
}

SFY_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
			  const struct sockaddr *sa, socklen_t len)
{
	/* TCP Fast Open (curl --tcp-fastopen): a connect plus the send. */
	if (flags & MSG_FASTOPEN) {
		const struct sfy_config *cfg = NULL;
		int c = classify_tcp(fd, sa, len, &cfg);
		if (c != 0) {
			int r = c < 0 ? c : tunnel(cfg, fd, sa, len);
			if (r < 0) {
				errno = -r;
				return -1;
			}
			return sfy_real()->send(fd, buf, n, flags & ~MSG_FASTOPEN);
		}
	}
	return sfy_udp_sendto(fd, buf, n, flags, sa, len);   /* UDP, or not ours at all */
}

SFY_EXPORT int getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
	if (sa && len && sfy_fdreg_has(fd, SFY_FDREG_PEER | SFY_FDREG_UDP) &&
	    (sfy_fdreg_peer_get(fd, sa, len) || sfy_udp_getpeername(fd, sa, len)))
		return 0;
	return sfy_real()->getpeername(fd, sa, len);
}
