/* connect(), sendto(MSG_FASTOPEN) and getpeername() for TCP: classify
 * (dest.h), then hand the socket to the chain. connect() of every socket
 * comes here first: UDP goes on to hooks_udp.c, other inet protocols to a
 * non-bypass destination fail with EACCES, the rest passes straight
 * through. sendmsg()/sendmmsg() with MSG_FASTOPEN (hooks_udp.c) use
 * sfy_tcp_fastopen().
 *
 * Routing rules (route.h): the route's chain takes the connection; a
 * direct route for a real address is the kernel's, for the name behind a
 * fake address chain.c with no hops (it resolves the name and connects,
 * in the background for a non-blocking socket); a blocked destination
 * fails with ECONNREFUSED at once, before any packet, logged once per
 * destination. The rule is named in the connection's info line.
 *
 * A blocking socket: the chain is built inside connect(). A non-blocking
 * one: connect() starts it and returns EINPROGRESS, the driver thread
 * finishes it in the background (async.h), and until then the program
 * sees a connect in progress. TCP Fast Open (sendto/sendmsg with
 * MSG_FASTOPEN) stays blocking even on a non-blocking socket: its data
 * must go out with the call. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "async.h"
#include "bind.h"
#include "chain.h"
#include "dest.h"
#include "dnsresp_tcp.h"
#include "fakedns.h"
#include "fdreg.h"
#include "log.h"
#include "real.h"
#include "route.h"
#include "sock.h"
#include "sfy.h"
#include "state.h"
#include "udp_assoc.h"
#include "hooks.h"

/* Is fd connected already? Then connect() is the kernel's (EISCONN). */
static bool connected(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	return sfy_real()->getpeername(fd, (struct sockaddr *)&ss, &sl) == 0;
}

/* The routing rule behind d, for the info lines; "" without rules or
 * below info (describing costs a format). */
static void rule_note(const struct sfy_dest *d, char *buf, size_t cap)
{
	const struct sfy_routes *rt;
	buf[0] = '\0';
	if (d->route.cfg && sfy_log_level_get() >= SFY_LOG_INFO && (rt = sfy_routes_get()))
		sfy_route_describe(rt, &d->route, buf, cap);
}

/* connect() or MSG_FASTOPEN of a TCP socket that sfy_classify() says is
 * proxied (SFY_V_PROXY), or sent directly by name (SFY_V_DIRECT_NAME:
 * d->cfg has no hops, chain.c resolves the name and connects): 0, -errno,
 * or 1 when the call belongs to the kernel after all (already connected:
 * let it say EISCONN). */
static int tunnel(int fd, const struct sfy_dest *d, bool may_async)
{
	const struct sfy_config *cfg = d->cfg;
	if (!cfg)
		return -ECONNREFUSED;   /* fail closed; the load failure was logged */
	if (connected(fd))
		return 1;
	const struct sockaddr *sa = (const struct sockaddr *)&d->sa;
	struct sfy_addr dst;
	if (d->named) {
		dst = d->name;          /* classify looked the fake address up */
	} else if (!sfy_fakedns_reverse(sa, d->len, &dst)) {
		/* A fake address no name stands behind (stale, or made up) must
		 * not reach the proxy as if it were real. */
		const struct sfy_routes *rt = d->route.cfg ? sfy_routes_get() : NULL;
		bool fake_dns = cfg->dns == SFY_DNS_REMOTE || (rt && sfy_routes_remote(rt));
		if (fake_dns && sfy_fakedns_is_fake(sa, d->len)) {
			sfy_addr_from_sockaddr(&dst, sa, d->len);
			char a[300];
			sfy_addr_format(&dst, a, sizeof(a));
			sfy_warn("connect to %s failed: a fake-DNS address with no name behind it "
				 "(EHOSTUNREACH)", a);
			return -EHOSTUNREACH;
		}
		int r = sfy_addr_from_sockaddr(&dst, sa, d->len);
		if (r < 0)
			return r;
	}
	char note[SFY_CHAIN_NOTE_MAX];
	rule_note(d, note, sizeof(note));
	if (may_async) {
		int fl = sfy_real()->fcntl(fd, F_GETFL);
		if (fl >= 0 && (fl & O_NONBLOCK)) {
			int r = sfy_async_connect(cfg, fd, &dst, sa, d->len, note);
			if (r != 1)
				return r;
		}
	}
	struct sfy_chain_report rep;
	int r = sfy_chain_connect_note(cfg, fd, &dst, SFY_S5_CONNECT, &rep, note);
	if (r == 0) {
		sfy_fdreg_peer_set(fd, sa, d->len);   /* best effort: else the first hop */
		/* A BIND for it may follow (an FTP control connection). */
		sfy_bind_note_proxied(fd, fd, cfg, sa, d->len, &rep);
	}
	return r;
}

/* A real connect() succeeded: whatever we recorded as fd's peer is gone (a
 * disconnect, or a new destination reached directly). */
static void connected_direct(int fd, const struct sfy_dest *d)
{
	if (d->si.proto == SFY_SOCK_UDP) {
		if (sfy_fdreg_has(fd, SFY_FDREG_UDP))
			sfy_udp_clear_peer(fd);
	} else if (sfy_fdreg_has(fd, SFY_FDREG_PEER)) {
		/* A stream socket's entry holds only its peer. */
		sfy_fdreg_close(fd);
	}
}

/* A rule blocks d: ECONNREFUSED (connect() and MSG_FASTOPEN alike), no
 * packet, one warn line per destination; 1 for a connected TCP socket
 * (the kernel's EISCONN comes first). */
static int blocked(int fd, const struct sfy_dest *d)
{
	if (d->si.proto == SFY_SOCK_TCP && connected(fd))
		return 1;
	sfy_dest_block_log(d, "connect", ECONNREFUSED);
	return -ECONNREFUSED;
}

/* A rule sends a real address straight to the kernel: said at info. */
static void direct_log(const struct sfy_dest *d)
{
	if (sfy_log_level_get() < SFY_LOG_INFO)
		return;
	char dst[300], note[SFY_CHAIN_NOTE_MAX];
	sfy_dest_format(d, dst, sizeof(dst));
	rule_note(d, note, sizeof(note));
	sfy_info("%s: direct, %s", dst, note);
}

/* connect() of a socket whose set-up we drive: EALREADY while pending,
 * the error after a failure (once); a disconnect (AF_UNSPEC) while pending
 * aborts it. 1: an ordinary connect() follows. */
static int again(int fd, const struct sockaddr *sa, socklen_t len)
{
	if (sa && len >= sizeof(sa_family_t) && sa->sa_family == AF_UNSPEC &&
	    sfy_async_shutdown(fd))
		return 0;
	return sfy_async_reconnect(fd);
}

SFY_EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	if (sfy_async_maybe(fd)) {
		int a = again(fd, sa, len);
		if (a <= 0) {
			if (a == 0)
				return 0;
			errno = -a;
			return -1;
		}
	}
	/* A system nameserver's port 53 is answered here (dnsresp_tcp.h),
	 * before the rules and the port-53 refusal (INTERFACE.md step 2). */
	int dr = sfy_dnstcp_connect(fd, sa, len);
	if (dr != 1) {
		if (dr == 0)
			return 0;
		errno = -dr;
		return -1;
	}
	struct sfy_dest d;
	enum sfy_verdict v = sfy_classify(fd, SFY_OP_CONNECT, 0, sa, len, NULL, &d);
	int r = 1;
	bool udp = d.si.proto == SFY_SOCK_UDP;
	switch (v) {
	case SFY_V_REFUSE:
		r = -EACCES;
		break;
	case SFY_V_BLOCK:
		r = blocked(fd, &d);
		break;
	case SFY_V_PROXY:
	case SFY_V_DIRECT_NAME:
		/* UDP's own policy takes both (hooks_udp.c). */
		r = udp ? sfy_udp_connect(fd, &d) : tunnel(fd, &d, true);
		break;
	case SFY_V_KERNEL:
		if (d.route.cfg && !udp)
			direct_log(&d);
		break;
	default:
		break;
	}
	if (r == 1) {
		r = sfy_real()->connect(fd, sa, len);
		if ((r == 0 || errno == EINPROGRESS) && d.si.proto != SFY_SOCK_NONE) {
			int e = errno;
			connected_direct(fd, &d);
			errno = e;
		}
		return r;
	}
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return 0;
}

bool sfy_tcp_fastopen(int fd, enum sfy_op op, const struct msghdr *m, int flags,
		      ssize_t *res)
{
	struct sfy_dest d;
	if (!m->msg_name || !m->msg_namelen)
		return false;
	enum sfy_verdict v = sfy_classify(fd, op, flags, m->msg_name, m->msg_namelen, NULL, &d);
	if (d.si.proto != SFY_SOCK_TCP)
		return false;
	if (v == SFY_V_KERNEL && d.route.cfg)
		direct_log(&d);
	if (v != SFY_V_PROXY && v != SFY_V_DIRECT_NAME && v != SFY_V_BLOCK)
		return false;
	int r = v == SFY_V_BLOCK ? blocked(fd, &d) : tunnel(fd, &d, false);
	if (r == 1)
		return false;
	if (r < 0) {
		*res = r;
		return true;
	}
	/* Connected through the chain: the payload is plain data now. */
	struct msghdr data = *m;
	data.msg_name = NULL;
	data.msg_namelen = 0;
	ssize_t n = sfy_real()->sendmsg(fd, &data, flags & ~MSG_FASTOPEN);
	*res = n < 0 ? -errno : n;
	return true;
}

SFY_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
			  const struct sockaddr *sa, socklen_t len)
{
	int g = sfy_async_gate(fd, flags);
	if (g < 0) {
		errno = -g;
		return -1;
	}
	/* TCP Fast Open (curl --tcp-fastopen): a connect plus the send. */
	if ((flags & MSG_FASTOPEN) && sa && len) {
		struct iovec iov = { (void *)buf, n };
		struct msghdr m = { .msg_name = (void *)sa, .msg_namelen = len,
				    .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t r;
		if (sfy_tcp_fastopen(fd, SFY_OP_SENDTO, &m, flags, &r))
			return sfy_udp_ret(r);
	}
	/* UDP, or not ours at all; a query on a connection to the responder
	 * is answered once it is sent. */
	return sfy_dnstcp_after(fd, sfy_udp_sendto(fd, buf, n, flags, sa, len));
}

SFY_EXPORT int getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
	if (sfy_async_maybe(fd)) {
		int r = sfy_async_getpeername(fd);
		if (r < 0) {
			errno = -r;
			return -1;
		}
	}
	if (sa && len && sfy_fdreg_has(fd, SFY_FDREG_PEER | SFY_FDREG_UDP) &&
	    (sfy_fdreg_peer_get(fd, sa, len) || sfy_udp_getpeername(fd, sa, len)))
		return 0;
	return sfy_real()->getpeername(fd, sa, len);
}
