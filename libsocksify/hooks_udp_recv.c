/* UDP receive interposers: recvfrom, recvmsg, recvmmsg, recv, read, readv on
 * a socket with an association strip the SOCKS5 UDP header, report the real
 * source and drop what did not come from the relay (see hooks_udp.c for the
 * whole picture, readiness included). */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "async.h"
#include "bypass.h"
#include "dnsresp_udp.h"
#include "fakedns.h"
#include "fdreg.h"
#include "io.h"
#include "log.h"
#include "real.h"
#include "route.h"
#include "sock.h"
#include "sfy.h"
#include "state.h"
#include "udp_assoc.h"

/* Receive buffer per thread: every UDP payload fits (the largest is
 * 65535 - 8, IPv6 without jumbograms), so a datagram is never cut before we
 * have seen its header. Allocated on first use: most threads never need it. */
#define RXBUF_SIZE 65536

/* Same address and port (flow label and scope ignored); both in the
 * socket's family, as the kernel and sfy_udp_decode() give them. */
static bool same_sa(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port &&
	       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
}

static pthread_key_t rx_key;
static pthread_once_t rx_once = PTHREAD_ONCE_INIT;
static _Thread_local uint8_t *rx_buf;

static void rx_key_make(void)
{
	(void)pthread_key_create(&rx_key, free);
}

static uint8_t *rxbuf(void)
{
	if (!rx_buf) {
		pthread_once(&rx_once, rx_key_make);
		rx_buf = malloc(RXBUF_SIZE);
		if (rx_buf)
			(void)pthread_setspecific(rx_key, rx_buf);
	}
	return rx_buf;
}

static size_t scatter(const struct iovec *iov, size_t n, const uint8_t *p, size_t len)
{
	size_t done = 0;
	for (size_t i = 0; i < n && done < len; i++) {
		size_t k = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;
		if (k)
			memcpy(iov[i].iov_base, p + done, k);
		done += k;
	}
	return done;
}

static const char *verdict_name(enum sfy_udp_verdict v)
{
	switch (v) {
	case SFY_UDP_DROP_MALFORMED: return "malformed SOCKS5 UDP header";
	case SFY_UDP_DROP_FRAG: return "fragment (FRAG != 0)";
	case SFY_UDP_DROP_FAMILY: return "source not expressible for this socket";
	default: return "?";
	}
}

/* Would a datagram to from be sent directly (its route is direct: bypass:
 * or a direct rule, by address or by a name local DNS gave it)? Then one
 * from it is the program's to read, relay or not. */
static bool direct_source(const struct sockaddr *from, socklen_t len)
{
	const struct sfy_routes *rt = sfy_routes_get();
	if (!rt || !sfy_sockaddr_is_inet(from, len))
		return false;
	struct sfy_route r;
	sfy_route_match(rt, NULL, from, sfy_sockaddr_port(from), &r);
	return r.kind == SFY_ROUTE_DIRECT;
}

/* One datagram for the program, from the relay (header stripped, real
 * source reported) or from a direct destination (as it is), into um. Every
 * other datagram is dropped and the next one read: the kernel's blocking
 * mode and MSG_DONTWAIT decide whether that waits or says EAGAIN. */
static ssize_t recv_relay(int fd, struct sfy_udp_sess *s, struct msghdr *um, int flags)
{
	uint8_t *buf = rxbuf();
	if (!buf)
		return -ENOMEM;
	const struct sfy_config *cfg = sfy_config_get();
	const struct sfy_routes *rt = cfg ? sfy_routes_get() : NULL;
	/* A name as the source maps back to its fake address if any exist. */
	bool remote = rt ? sfy_routes_remote(rt) : cfg && sfy_dns_fakes(cfg->dns);
	struct sfy_addr dst;
	struct sockaddr_storage peer;
	socklen_t peer_len = 0;
	bool connected = sfy_udp_peer_get(s, &dst, &peer, &peer_len);
	bool by_name = connected && dst.type == SFY_ATYP_DOMAIN;
	for (;;) {
		struct sockaddr_storage from, src;
		socklen_t srclen = 0;
		size_t off = 0;
		struct iovec kiov = { buf, RXBUF_SIZE };
		struct msghdr m = {
			.msg_name = &from, .msg_namelen = sizeof(from),
			.msg_iov = &kiov, .msg_iovlen = 1,
			.msg_control = um->msg_control, .msg_controllen = um->msg_controllen,
		};
		ssize_t n = sfy_real()->recvmsg(fd, &m, flags & ~MSG_TRUNC);
		if (n < 0)
			return -errno;
		const char *drop = NULL;
		if (sfy_udp_from_relay(s, (struct sockaddr *)&from, m.msg_namelen)) {
			enum sfy_udp_verdict v = sfy_udp_decode(buf, (size_t)n, s->family, remote,
							       &off, &src, &srclen);
			if (v != SFY_UDP_DELIVER)
				drop = verdict_name(v);
			else if (connected && !by_name && !same_sa(&src, &peer))
				drop = "not from the connected destination";
			else if (connected) {
				/* The address the program connected to, fake or not. */
				src = peer;
				srclen = peer_len;
			}
		} else if (!connected && (srclen = m.msg_namelen,
					  sfy_dnsresp_udp_source(s->family, &from, &srclen))) {
			/* The responder's answer (dnsresp_udp.h) to a query this
			 * socket sent to a system nameserver. */
			src = from;
		} else if (!connected && cfg &&
			   direct_source((struct sockaddr *)&from, m.msg_namelen)) {
			src = from;
			srclen = m.msg_namelen;
		} else {
			drop = "not from the relay";
		}
		if (drop) {
			sfy_debug("udp: dropped a datagram: %s", drop);
			if (flags & MSG_PEEK)   /* it is still queued: consume it */
				(void)sfy_real()->recv(fd, buf, 0, MSG_DONTWAIT);
			continue;
		}
		size_t payload = (size_t)n - off;
		size_t copied = scatter(um->msg_iov, um->msg_iovlen, buf + off, payload);
		if (um->msg_name) {
			memcpy(um->msg_name, &src, um->msg_namelen < srclen ? um->msg_namelen : srclen);
			um->msg_namelen = srclen;
		}
		um->msg_controllen = m.msg_controllen;
		um->msg_flags = m.msg_flags | (payload > copied ? MSG_TRUNC : 0);
		return (ssize_t)((flags & MSG_TRUNC) ? payload : copied);
	}
}

/* A socket the responder answered: the real receive, with our loopback
 * sockets' addresses reported as the nameservers they stand for. */
static ssize_t recv_dns(int fd, struct sfy_udp_sess *s, struct msghdr *um, int flags)
{
	struct sockaddr_storage from;
	struct msghdr m = *um;
	m.msg_name = &from;
	m.msg_namelen = sizeof(from);
	ssize_t n = sfy_real()->recvmsg(fd, &m, flags);
	if (n < 0)
		return -errno;
	socklen_t fl = m.msg_namelen;
	(void)sfy_dnsresp_udp_source(s->family, &from, &fl);
	if (um->msg_name) {
		memcpy(um->msg_name, &from, um->msg_namelen < fl ? um->msg_namelen : fl);
		um->msg_namelen = fl;
	}
	um->msg_controllen = m.msg_controllen;
	um->msg_flags = m.msg_flags;
	return n;
}

/* fd's session for a receive: an association (a lazy one is opened now:
 * what the program waits for can only come through it) or the
 * responder's mark; NULL when the receive is the kernel's. *err: the lazy
 * association failed. */
static struct sfy_udp_sess *recv_sess(int fd, int *err)
{
	*err = 0;
	struct sfy_udp_sess *s = sfy_fdreg_udp_get(fd);
	if (s && s->kind == SFY_UDP_SESS_LAZY && atomic_load(&s->peer_set)) {
		*err = sfy_udp_lazy_open(fd, s);
		sfy_udp_sess_put(s);
		if (*err < 0)
			return NULL;
		s = sfy_fdreg_udp_get(fd);
	}
	if (s && s->kind != SFY_UDP_SESS_ASSOC && s->kind != SFY_UDP_SESS_DNS) {
		sfy_udp_sess_put(s);
		s = NULL;
	}
	return s;
}

/* recvmsg() for fd: true with *res when fd has an association. */
static bool udp_recv(int fd, struct msghdr *m, int flags, ssize_t *res)
{
	if (!sfy_fdreg_has(fd, SFY_FDREG_UDP) || (flags & MSG_ERRQUEUE))
		return false;
	int err;
	struct sfy_udp_sess *s = recv_sess(fd, &err);
	if (err < 0) {
		*res = err;
		return true;
	}
	if (!s)
		return false;
	*res = s->kind == SFY_UDP_SESS_DNS ? recv_dns(fd, s, m, flags) : recv_relay(fd, s, m, flags);
	sfy_udp_sess_put(s);
	return true;
}

SFY_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	int g = sfy_async_gate(fd, flags);
	if (g < 0) {
		errno = -g;
		return -1;
	}
	ssize_t r;
	if (msg && udp_recv(fd, msg, flags, &r))
		return sfy_udp_ret(r);
	return sfy_real()->recvmsg(fd, msg, flags);
}

SFY_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from,
			    socklen_t *fromlen)
{
	int g = sfy_async_gate(fd, flags);
	if (g < 0) {
		errno = -g;
		return -1;
	}
	if (!sfy_fdreg_has(fd, SFY_FDREG_UDP))
		return sfy_real()->recvfrom(fd, buf, n, flags, from, fromlen);
	struct iovec iov = { buf, n };
	struct msghdr m = { .msg_name = from && fromlen ? from : NULL,
			    .msg_namelen = from && fromlen ? *fromlen : 0,
			    .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r;
	if (!udp_recv(fd, &m, flags, &r))
		return sfy_real()->recvfrom(fd, buf, n, flags, from, fromlen);
	if (r >= 0 && m.msg_name)
		*fromlen = m.msg_namelen;
	return sfy_udp_ret(r);
}

SFY_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	int g = sfy_async_gate(fd, flags);
	if (g < 0) {
		errno = -g;
		return -1;
	}
	if (!sfy_fdreg_has(fd, SFY_FDREG_UDP))
		return sfy_real()->recv(fd, buf, n, flags);
	return recvfrom(fd, buf, n, flags, NULL, NULL);
}

SFY_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	int g = sfy_async_gate(fd, 0);
	if (g < 0) {
		errno = -g;
		return -1;
	}
	if (!sfy_fdreg_has(fd, SFY_FDREG_UDP))
		return sfy_real()->read(fd, buf, n);
	struct iovec iov = { buf, n };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r;
	if (udp_recv(fd, &m, 0, &r))
		return sfy_udp_ret(r);
	return sfy_real()->read(fd, buf, n);
}

SFY_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	int g = sfy_async_gate(fd, 0);
	if (g < 0) {
		errno = -g;
		return -1;
	}
	if (!sfy_fdreg_has(fd, SFY_FDREG_UDP) || cnt < 0)
		return sfy_real()->readv(fd, iov, cnt);
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt };
	ssize_t r;
	if (udp_recv(fd, &m, 0, &r))
		return sfy_udp_ret(r);
	return sfy_real()->readv(fd, iov, cnt);
}

/* recvmmsg() on a socket the responder answered: the kernel's, with the
 * sources rewritten (recv_dns); at most MMSG_DNS messages per call, which
 * a recvmmsg() may always return fewer of. */
#define MMSG_DNS 64
static int recvmmsg_dns(int fd, struct sfy_udp_sess *s, struct mmsghdr *vec, unsigned vlen,
			int flags, struct timespec *tmo)
{
	socklen_t cap[MMSG_DNS];
	if (vlen > MMSG_DNS)
		vlen = MMSG_DNS;
	for (unsigned i = 0; i < vlen; i++)
		cap[i] = vec[i].msg_hdr.msg_name ? vec[i].msg_hdr.msg_namelen : 0;
	int n = sfy_real()->recvmmsg(fd, vec, vlen, flags, tmo);
	for (int i = 0; i < n; i++) {
		struct msghdr *h = &vec[i].msg_hdr;
		if (!h->msg_name || h->msg_namelen > sizeof(struct sockaddr_storage) ||
		    h->msg_namelen > cap[i])
			continue;       /* cut by the kernel: nothing to recognise */
		struct sockaddr_storage from;
		socklen_t fl = h->msg_namelen;
		memcpy(&from, h->msg_name, fl);
		if (sfy_dnsresp_udp_source(s->family, &from, &fl)) {
			memcpy(h->msg_name, &from, cap[i] < fl ? cap[i] : fl);
			h->msg_namelen = fl;
		}
	}
	return n;
}

SFY_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
			struct timespec *tmo)
{
	int g = sfy_async_gate(fd, flags);
	if (g < 0) {
		errno = -g;
		return -1;
	}
	if (!sfy_fdreg_has(fd, SFY_FDREG_UDP) || (flags & MSG_ERRQUEUE))
		return sfy_real()->recvmmsg(fd, vec, vlen, flags, tmo);
	int err;
	struct sfy_udp_sess *s = recv_sess(fd, &err);
	if (err < 0)
		return (int)sfy_udp_ret(err);
	if (!s)
		return sfy_real()->recvmmsg(fd, vec, vlen, flags, tmo);
	if (s->kind == SFY_UDP_SESS_DNS) {
		int n = recvmmsg_dns(fd, s, vec, vlen, flags, tmo);
		sfy_udp_sess_put(s);
		return n;
	}
	/* After the first datagram: MSG_WAITFORONE, and (simplification) a
	 * timeout, take only what is already queued. */
	bool rest_nowait = (flags & MSG_WAITFORONE) || tmo;
	flags &= ~MSG_WAITFORONE;
	unsigned i;
	ssize_t r = 0;
	for (i = 0; i < vlen; i++) {
		r = recv_relay(fd, s, &vec[i].msg_hdr,
			       i && rest_nowait ? flags | MSG_DONTWAIT : flags);
		if (r < 0)
			break;
		vec[i].msg_len = (unsigned)r;
	}
	sfy_udp_sess_put(s);
	if (i == 0 && vlen)
		return (int)sfy_udp_ret(r);
	return (int)i;
}
