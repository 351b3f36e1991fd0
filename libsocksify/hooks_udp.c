/* UDP interposers: datagrams of AF_INET/AF_INET6 UDP sockets to non-bypass
 * destinations travel through the SOCKS5 UDP relay of the chain's last hop
 * (udp: associate), or are refused with EPERM (udp: block, and in remote DNS
 * mode DNS over UDP and fake addresses with udp: direct), or go out as they
 * are (udp: direct).
 *
 * Pass-through costs: read/write/send/recv/close on an fd without a session
 * are two atomic loads before the real call (sfy_fdreg_has()); a
 * sendto()/sendmsg() with an inet-family address on a socket without a
 * session adds three getsockopt()s (SO_DOMAIN, SO_TYPE, SO_PROTOCOL: the
 * classification of dest.h), a sendmmsg() three for the whole batch; a
 * socket with a session knows its family and pays none.
 *
 * connect() of a UDP socket to a relayed destination sets up the
 * association, connects the kernel socket to the relay (so poll/epoll,
 * recv and the kernel's source filter work) and records the destination for
 * getpeername() and for send()/write(), which add the header. Readiness:
 * poll/epoll report a datagram as soon as the relay's arrives; one we then
 * drop (not from the relay, a fragment, not from the connected peer) makes a
 * blocking recv wait for the next and a non-blocking one return EAGAIN, as
 * after a datagram with a bad checksum.
 *
 * Not covered: sendfile/splice into a UDP socket, fcntl(F_DUPFD) of a
 * session fd (the copy sends without the relay's header, which the relay
 * drops: nothing leaks), MSG_MORE/UDP_CORK (corking would put our header in
 * the middle of the datagram: sends with MSG_MORE fail with EOPNOTSUPP),
 * UDP_SEGMENT (GSO) control messages. A reply from a name's real address
 * to an unconnected socket that sent to the name's fake address is reported
 * with the real address.
 *
 * Routing rules (route.h) pick each datagram's route, as for TCP: a
 * blocked destination fails with EPERM (connect: ECONNREFUSED), one warn
 * line per destination; a direct real address is the kernel's; a name
 * behind a fake address routed direct is resolved here (udp_route.h) and
 * sent to; a chain's datagrams go through that chain's association. A
 * socket has one association at a time: a datagram whose route is another
 * chain than the one the socket is associated through fails with EPERM
 * (one warn line per socket), as closing and reopening is the only way to
 * change the source address the relays would see.
 *
 * This file is the send side and connect(); hooks_udp_recv.c the receive
 * side; hooks_fd.c keeps the registry (fdreg.h) in step with close()/dup2() and
 * routes syscall(SYS_sendmmsg, ...) here. */
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
#include "bind.h"
#include "bypass.h"
#include "dest.h"
#include "dnsresp_udp.h"
#include "hooks.h"
#include "route.h"
#include "fakedns.h"
#include "fdreg.h"
#include "io.h"
#include "log.h"
#include "real.h"
#include "sock.h"
#include "sfy.h"
#include "state.h"
#include "udp_assoc.h"
#include "udp_route.h"

/* iovecs of a relayed send kept on the stack (our header + the program's);
 * longer scatter lists are rare and take malloc(). */
#define IOV_STACK 16

enum route {
	R_REAL = 0,     /* not ours: the real call, unchanged */
	R_RELAY = 1,    /* through the relay of the returned session */
	R_REFUSE = 2,   /* policy: EPERM (logged once per socket) */
	R_OTHER_CHAIN = 3, /* associated through another chain: EPERM (logged) */
	R_LAZY = 4,     /* a connect(): record the peer, associate at the first send */
};

/* The destination as the relay gets it: a fake address goes as its name. */
static int dst_of(const struct sockaddr *sa, socklen_t len, struct sfy_addr *dst)
{
	if (sfy_fakedns_reverse(sa, len, dst))
		return 0;
	return sfy_addr_from_sockaddr(dst, sa, len);
}

static void refuse_log(struct sfy_udp_sess *s, const struct sockaddr *sa, socklen_t len,
		       const char *why)
{
	if (s && atomic_exchange(&s->block_logged, true))
		return;
	struct sfy_addr a;
	char txt[300] = "?";
	if (dst_of(sa, len, &a) == 0)
		sfy_addr_format(&a, txt, sizeof(txt));
	sfy_warn("udp: datagram to %s refused (EPERM): %s", txt, why);
}

/* A datagram for one chain on a socket associated through another. */
static void other_chain_log(struct sfy_udp_sess *s, const struct sfy_dest *d)
{
	if (atomic_exchange(&s->chain_logged, true))
		return;
	struct sfy_addr a;
	char txt[300] = "?";
	if (d->named)
		a = d->name;
	else if (dst_of((const struct sockaddr *)&d->sa, d->len, &a) < 0)
		a.type = 0;
	if (a.type)
		sfy_addr_format(&a, txt, sizeof(txt));
	const struct sfy_config *top = sfy_config_get();
	sfy_warn("udp: datagram to %s refused (EPERM): its route is chain %s, but the socket is "
		 "associated through chain %s (one association per socket)", txt,
		 top ? sfy_config_via_name(top, d->route.via) : "?",
		 top ? sfy_config_via_name(top, s->via) : "?");
}

/* The destination as the relay of d's chain gets it: a name behind a fake
 * address goes as the name, or, for a chain in local-DNS mode, as the
 * address this machine resolves it to (as a TCP connection through that
 * chain would) -- but a .onion/.exit/.i2p name always as the name: it is
 * never resolved here, and a SOCKS5 relay takes names. */
static int relay_dst(const struct sfy_dest *d, struct sfy_addr *dst)
{
	int r = 0;
	if (d->named)
		*dst = d->name;
	else
		r = dst_of((const struct sockaddr *)&d->sa, d->len, dst);
	if (r == 0 && dst->type == SFY_ATYP_DOMAIN && d->cfg && d->cfg->dns == SFY_DNS_LOCAL &&
	    !sfy_route_special_tld(dst->name))
		r = sfy_udp_resolve(d->cfg, dst->name, dst->port, AF_UNSPEC, dst);
	return r;
}

/* Sets up the association of fd (or finds the failure of an earlier try). */
static int associate(const struct sfy_config *cfg, int via, int fd, int family,
		     struct sfy_udp_sess **sp)
{
	struct sfy_udp_sess *s = sfy_udp_sess_new(SFY_UDP_SESS_FAILED, family);
	if (!s)
		return -ENOMEM;
	const char *why = NULL;
	s->cfg = cfg;
	s->via = via;
	int r = sfy_udp_chain_ok(cfg, &why);
	if (r < 0) {
		/* Permanent for this configuration: fail every send, log once. */
		sfy_warn("udp: this chain cannot carry UDP: %s; nothing is sent (%s)", why,
			 strerrorname_np(-r));
		s->retry_at = INT64_MAX;
	} else if ((r = sfy_udp_associate(cfg, fd, s)) < 0) {
		s->retry_at = sfy_now_ms() + SFY_UDP_RETRY_MS;
	}
	s->err = r;
	struct sfy_udp_sess *got = sfy_fdreg_udp_install(fd, s);
	if (!got) {
		sfy_udp_sess_put(s);
		return r < 0 ? r : -EMFILE;
	}
	if (got != s) {         /* another thread associated this socket first */
		sfy_udp_sess_put(s);
		s = got;
	}
	if (s->kind == SFY_UDP_SESS_ASSOC) {
		*sp = s;
		return R_RELAY;
	}
	r = s->err;
	sfy_udp_sess_put(s);
	return r;
}

/* The classification (dest.h) of an address a UDP hook got, with fd's
 * session (a reference, or NULL) looked up first: a socket with one is a
 * UDP socket of the session's family, which spares the getsockopt()s.
 * known carries what is learnt to the next message of a sendmmsg(). */
static enum sfy_verdict classify(int fd, enum sfy_op op, const struct sockaddr *sa,
				 socklen_t len, struct sfy_sockinfo *known, struct sfy_dest *d,
				 struct sfy_udp_sess **sp)
{
	struct sfy_udp_sess *s = sfy_fdreg_has(fd, SFY_FDREG_UDP) ? sfy_fdreg_udp_get(fd) : NULL;
	if (s && !known->family) {
		known->family = s->family;
		known->proto = SFY_SOCK_UDP;
		known->v6only = -1;
	}
	/* flags 0: MSG_FASTOPEN was sfy_tcp_fastopen()'s to take. */
	enum sfy_verdict v = sfy_classify(fd, op, 0, sa, len, known, d);
	if (!known->family)
		*known = d->si;
	*sp = s;
	return v;
}

/* What a datagram to d (or a connect() to it) does, d being a UDP
 * destination sfy_classify() called SFY_V_PROXY: an enum route, or a
 * negative errno to fail with. s: fd's session (the reference is
 * consumed); R_RELAY hands back a session reference in *sp. */
#define lazy_open sfy_udp_lazy_open

/* A socket connect()ed to a system nameserver: the kernel socket is
 * connected to the responder's loopback socket (dnsresp_udp.h), so it
 * can carry no other session. */
static bool dns_connected(const struct sfy_udp_sess *s)
{
	return s && s->kind == SFY_UDP_SESS_DNS && s->ns >= 0 && atomic_load(&s->peer_set);
}

/* A datagram with another destination on such a socket: EPERM, one warn
 * line per socket (as for another chain), since associating would take
 * the socket's connection to the nameserver away. */
static void dns_connected_log(struct sfy_udp_sess *s, const struct sockaddr *sa, socklen_t len)
{
	if (atomic_exchange(&s->chain_logged, true))
		return;
	struct sfy_addr a;
	char txt[300] = "?";
	if (dst_of(sa, len, &a) == 0)
		sfy_addr_format(&a, txt, sizeof(txt));
	sfy_warn("udp: datagram to %s refused (EPERM): the socket is connected to a system "
		 "nameserver (answered here) and can reach no other destination through us", txt);
}

/* A session that only marks the socket (the responder's, whose sources
 * are recognised whatever the session: dnsresp_udp.h) or a lazy peer
 * being replaced gives way to the one about to be made; consumes s. (A
 * connected DNS session gives way only to a connect(): route().) */
static void drop_mark(int fd, struct sfy_udp_sess *s)
{
	if (s && (s->kind == SFY_UDP_SESS_DNS || s->kind == SFY_UDP_SESS_LAZY))
		sfy_fdreg_udp_remove(fd, s);
	sfy_udp_sess_put(s);
}

static int route(int fd, const struct sfy_dest *d, struct sfy_udp_sess *s,
		 struct sfy_udp_sess **sp, bool lazy)
{
	*sp = NULL;
	if (s && s->kind == SFY_UDP_SESS_LAZY && !lazy && atomic_load(&s->peer_set)) {
		/* A datagram with an address on a lazily connected socket: the
		 * association the connect() stood for opens now. */
		int r = lazy_open(fd, s);
		sfy_udp_sess_put(s);
		if (r < 0)
			return r;
		s = sfy_fdreg_has(fd, SFY_FDREG_UDP) ? sfy_fdreg_udp_get(fd) : NULL;
	}

	const struct sockaddr *sa = (const struct sockaddr *)&d->sa;
	const struct sfy_config *cfg = d->cfg;
	/* Fake addresses exist when any route resolves remotely. */
	const struct sfy_routes *rt = cfg ? sfy_routes_get() : NULL;
	bool remote = rt ? sfy_routes_remote(rt) : cfg && sfy_dns_fakes(cfg->dns);
	bool dns = remote && sfy_sockaddr_port(sa) == 53;
	bool fake = remote && !dns && sfy_fakedns_is_fake(sa, d->len);
	if (cfg && cfg->udp == SFY_UDP_DIRECT && !dns && !fake) {
		sfy_udp_sess_put(s);
		return R_REAL;
	}
	if (s && s->kind == SFY_UDP_SESS_ASSOC) {
		if (cfg && s->cfg && s->cfg != cfg) {
			other_chain_log(s, d);
			sfy_udp_sess_put(s);
			return R_OTHER_CHAIN;
		}
		*sp = s;
		return R_RELAY;
	}
	if (s && s->kind == SFY_UDP_SESS_FAILED && cfg && s->cfg && s->cfg != cfg) {
		/* A failure of another chain says nothing about this one. */
		sfy_fdreg_udp_remove(fd, s);
		sfy_udp_sess_put(s);
		s = NULL;
	}
	if (s && s->kind == SFY_UDP_SESS_FAILED) {
		int e = s->err;
		bool wait = sfy_now_ms() < s->retry_at;
		if (!wait)
			sfy_fdreg_udp_remove(fd, s);   /* time to try again */
		sfy_udp_sess_put(s);
		if (wait)
			return e;
		s = NULL;
	}
	if (!cfg) {
		sfy_udp_sess_put(s);
		return -ENETUNREACH;   /* fail closed; the load failure was logged */
	}
	if (!cfg->nproxies) {
		/* A direct route that is not the kernel's (dest.c): a fake
		 * address no name stands behind, which must not go out. */
		sfy_udp_sess_put(s);
		sfy_debug("udp: a fake-DNS address with no name behind it (EHOSTUNREACH)");
		return -EHOSTUNREACH;
	}
	if (cfg->udp == SFY_UDP_ASSOCIATE) {
		if (!lazy && dns_connected(s)) {
			dns_connected_log(s, sa, d->len);
			sfy_udp_sess_put(s);
			return R_OTHER_CHAIN;
		}
		drop_mark(fd, s);
		return lazy ? R_LAZY : associate(cfg, d->route.via, fd, d->si.family, sp);
	}
	if (s && (s->kind == SFY_UDP_SESS_DNS || s->kind == SFY_UDP_SESS_LAZY) &&
	    (lazy || !dns_connected(s))) {
		drop_mark(fd, s);
		s = NULL;
	}
	if (!s) {
		struct sfy_udp_sess *n = sfy_udp_sess_new(SFY_UDP_SESS_BLOCKED, d->si.family);
		if (n) {
			s = sfy_fdreg_udp_install(fd, n);
			if (s != n)
				sfy_udp_sess_put(n);
		}
	}
	refuse_log(s, sa, d->len,
		   cfg->udp == SFY_UDP_BLOCK ? "udp: block" :
		   dns ? "DNS over UDP never leaves directly in remote DNS mode" :
			 "a fake address of remote DNS cannot be reached directly");
	sfy_udp_sess_put(s);
	return R_REFUSE;
}

/* Sends um's data as one datagram to the relay, header first. */
static ssize_t send_relay(int fd, struct sfy_udp_sess *s, const struct sfy_addr *dst,
			  const struct msghdr *um, int flags)
{
	if (flags & MSG_MORE)
		return -EOPNOTSUPP;
	if (!sfy_udp_alive(s))
		return -ECONNRESET;
	size_t total = 0;
	for (size_t i = 0; i < um->msg_iovlen; i++) {
		if (um->msg_iov[i].iov_len > SIZE_MAX - total)
			return -EMSGSIZE;
		total += um->msg_iov[i].iov_len;
	}
	uint8_t hdr[SFY_S5_UDP_HDR_MAX];
	ssize_t h = sfy_udp_encode(hdr, dst, total, s->max_dgram);
	if (h < 0)
		return h;
	if (um->msg_iovlen >= IOV_MAX)
		return -EMSGSIZE;
	struct iovec stack[IOV_STACK], *iov = stack;
	if (um->msg_iovlen + 1 > IOV_STACK && !(iov = malloc((um->msg_iovlen + 1) * sizeof(*iov))))
		return -ENOMEM;
	iov[0].iov_base = hdr;
	iov[0].iov_len = (size_t)h;
	if (um->msg_iovlen)
		memcpy(iov + 1, um->msg_iov, um->msg_iovlen * sizeof(*iov));
	struct msghdr m = {
		.msg_name = &s->relay, .msg_namelen = s->relay_len,
		.msg_iov = iov, .msg_iovlen = um->msg_iovlen + 1,
		.msg_control = um->msg_control, .msg_controllen = um->msg_controllen,
	};
	ssize_t r = sfy_real()->sendmsg(fd, &m, flags);
	int e = errno;
	if (iov != stack)
		free(iov);
	if (r < 0)
		return -e;
	return r >= h ? r - h : 0;
}

/* What one send does once route() has spoken: the session and destination
 * of a relayed datagram, or the error to fail with (err != 0). */
struct plan {
	struct sfy_udp_sess *s;   /* a reference, or NULL */
	struct sfy_addr dst;
	ssize_t err;
	/* A direct route for a name: the kernel sends to this address. */
	struct sockaddr_storage direct;
	socklen_t direct_len;     /* 0: not direct */
	/* >= 0: a query to system nameserver ns, for the responder
	 * (dnsresp_udp.h); s, if set, is the socket's DNS session. */
	int ns;
	int family;
};

/* A send without an address: ours only on a socket connect()ed through the
 * relay. */
static bool plan_connected(int fd, struct plan *p)
{
	p->direct_len = 0;
	p->ns = -1;
	struct sfy_udp_sess *s = sfy_fdreg_udp_get(fd);
	if (s && s->kind == SFY_UDP_SESS_DNS && s->ns >= 0 && atomic_load(&s->peer_set)) {
		p->s = s;
		p->ns = s->ns;
		p->err = 0;
		return true;
	}
	if (s && s->kind == SFY_UDP_SESS_LAZY && atomic_load(&s->peer_set)) {
		int r = lazy_open(fd, s);
		sfy_udp_sess_put(s);
		if (r < 0) {
			p->s = NULL;
			p->err = r;
			return true;
		}
		s = sfy_fdreg_udp_get(fd);
	}
	if (s && s->kind != SFY_UDP_SESS_ASSOC) {
		sfy_udp_sess_put(s);
		s = NULL;
	}
	if (!s)
		return false;
	if (!sfy_udp_peer_get(s, &p->dst, NULL, NULL)) {
		sfy_udp_sess_put(s);
		return false;
	}
	p->s = s;
	p->err = 0;
	return true;
}

/* Any send: true with *p filled when it is ours, false for the real call
 * (nothing to release then). Every send with an address, of any socket,
 * comes here: UDP goes by route(), other inet protocols to a non-bypass
 * destination fail with EACCES, the rest is the kernel's (TCP without
 * MSG_FASTOPEN ignores the address). known: see classify(). */
static bool udp_plan(int fd, enum sfy_op op, const struct msghdr *m, struct sfy_sockinfo *known,
		     struct plan *p)
{
	p->s = NULL;
	p->direct_len = 0;
	p->ns = -1;
	if (!m->msg_name || !m->msg_namelen)
		return sfy_fdreg_has(fd, SFY_FDREG_UDP) && plan_connected(fd, p);
	struct sfy_dest d;
	struct sfy_udp_sess *s;
	enum sfy_verdict v = classify(fd, op, m->msg_name, m->msg_namelen, known, &d, &s);
	if (d.si.proto == SFY_SOCK_UDP && (v == SFY_V_BLOCK || v == SFY_V_DIRECT_NAME)) {
		sfy_udp_sess_put(s);
		if (v == SFY_V_BLOCK) {
			sfy_udp_block_log(&d, "datagram", EPERM);
			p->err = -EPERM;
		} else {
			p->err = sfy_udp_direct_addr(&d, &p->direct, &p->direct_len);
		}
		return true;
	}
	if (v == SFY_V_PROXY && d.resp) {
		if (dns_connected(s) && s->ns != d.ns) {
			/* Another nameserver's answer would come from a socket
			 * the kernel filters out: refuse rather than lose it. */
			dns_connected_log(s, m->msg_name, m->msg_namelen);
			sfy_udp_sess_put(s);
			p->err = -EPERM;
			return true;
		}
		sfy_udp_sess_put(s);
		p->ns = d.ns;
		p->family = d.si.family;
		p->err = 0;
		return true;
	}
	if (v != SFY_V_PROXY || d.si.proto != SFY_SOCK_UDP) {
		sfy_udp_sess_put(s);
		if (v == SFY_V_REFUSE) {
			p->err = -EACCES;
			return true;
		}
		/* AF_UNSPEC on an AF_INET6 UDP socket: as send() */
		return v == SFY_V_CONNECTED && sfy_fdreg_has(fd, SFY_FDREG_UDP) &&
		       plan_connected(fd, p);
	}
	int k = route(fd, &d, s, &p->s, false);
	if (k == R_REAL)
		return false;
	if (k == R_RELAY)
		p->err = relay_dst(&d, &p->dst);
	else
		p->err = k == R_REFUSE || k == R_OTHER_CHAIN ? -EPERM : k;
	return true;
}

/* The program's datagram to the address a direct route resolved. */
static ssize_t send_direct(int fd, const struct plan *p, const struct msghdr *um, int flags)
{
	struct msghdr m = *um;
	m.msg_name = (void *)&p->direct;
	m.msg_namelen = p->direct_len;
	ssize_t r = sfy_real()->sendmsg(fd, &m, flags);
	return r < 0 ? -errno : r;
}

/* Carries out a plan: the bytes sent or -errno; releases the session. */
static ssize_t plan_send(int fd, struct plan *p, const struct msghdr *m, int flags)
{
	ssize_t r = p->err ? p->err
		  : p->ns >= 0 && p->s ? sfy_dnsresp_udp_send_connected(fd, p->s, m)
		  : p->ns >= 0 ? sfy_dnsresp_udp_send(fd, p->family, p->ns, m)
		  : p->direct_len ? send_direct(fd, p, m, flags)
		  : send_relay(fd, p->s, &p->dst, m, flags);
	sfy_udp_sess_put(p->s);
	return r;
}

/* Any send: true with *res set when it is ours, false for the real call. */
static bool udp_send(int fd, enum sfy_op op, const struct msghdr *m, int flags, ssize_t *res)
{
	struct plan p;
	struct sfy_sockinfo known = { 0 };
	if (!udp_plan(fd, op, m, &known, &p))
		return false;
	*res = plan_send(fd, &p, m, flags);
	return true;
}

static bool send_connected(int fd, const struct msghdr *m, int flags, ssize_t *res)
{
	struct plan p;
	if (!plan_connected(fd, &p))
		return false;
	*res = plan_send(fd, &p, m, flags);
	return true;
}

/* ------------------------------------------------------------ connect */

void sfy_udp_clear_peer(int fd)
{
	struct sfy_udp_sess *s = sfy_fdreg_udp_get(fd);
	if (!s)
		return;
	if (s->kind == SFY_UDP_SESS_LAZY) {
		/* A lazy session is nothing but its peer: without one the
		 * socket is the kernel's again (a later send or receive must
		 * not try to open what the connect() stood for). */
		sfy_fdreg_udp_remove(fd, s);
		sfy_udp_sess_put(s);
		return;
	}
	sfy_udp_peer_set(s, NULL, NULL, 0);
	s->local_len = 0;
	sfy_udp_sess_put(s);
}

bool sfy_udp_getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct sfy_udp_sess *s = sfy_fdreg_udp_get(fd);
	if (!s)
		return false;
	struct sockaddr_storage ss;
	socklen_t sl;
	bool set = sfy_udp_peer_get(s, NULL, &ss, &sl);
	sfy_udp_sess_put(s);
	if (set) {
		memcpy(sa, &ss, *len < sl ? *len : sl);
		*len = sl;
	}
	return set;
}

/* connect() to a name a direct route sends to: the kernel's socket is
 * connected to the name's real address (getpeername() then says so). */
static int connect_direct(int fd, const struct sfy_dest *d)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int r = sfy_udp_direct_addr(d, &ss, &sl);
	if (r < 0)
		return r;
	if (sfy_real()->connect(fd, (struct sockaddr *)&ss, sl) < 0)
		return -errno;
	if (sfy_fdreg_has(fd, SFY_FDREG_UDP))
		sfy_udp_clear_peer(fd);
	return 0;
}

static bool is_wildcard(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
	return sa->sa_family == AF_INET6 &&
	       IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

/* The source address the kernel would pick for sa: that of a scratch
 * socket connected to it (a UDP connect() sends nothing). */
static socklen_t kernel_source(int family, const struct sockaddr *sa, socklen_t len,
			       struct sockaddr_storage *out)
{
	int sc = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
	if (sc < 0)
		return 0;
	socklen_t ol = sizeof(*out);
	if (sfy_real()->connect(sc, sa, len) < 0 ||
	    sfy_real()->getsockname(sc, (struct sockaddr *)out, &ol) < 0)
		ol = 0;
	sfy_real()->close(sc);
	return ol;
}

/* connect() of a UDP socket to a relayed destination (issue 13 item 4):
 * nothing goes out yet -- c-ares connect()s a socket to every address of
 * an answer only to read getsockname() and sort them. The socket gets its
 * port (the kernel's autobind), the peer is recorded, and getsockname()
 * reports the source address the kernel would pick for the destination. */
static int connect_lazy(int fd, const struct sfy_dest *d)
{
	struct sockaddr_storage own;
	socklen_t ol;
	int r = sfy_udp_autobind(fd, d->si.family, &own, &ol);
	if (r < 0)
		return r;
	struct sfy_udp_sess *n = sfy_udp_sess_new(SFY_UDP_SESS_LAZY, d->si.family);
	if (!n)
		return -ENOMEM;
	n->cfg = d->cfg;
	n->via = d->route.via;
	if (is_wildcard((const struct sockaddr *)&own))
		n->local_len = kernel_source(d->si.family, (const struct sockaddr *)&d->sa, d->len,
					     &n->local);
	struct sfy_addr dst;
	if (dst_of((const struct sockaddr *)&d->sa, d->len, &dst) < 0)
		memset(&dst, 0, sizeof(dst));
	sfy_udp_peer_set(n, &dst, (const struct sockaddr *)&d->sa, d->len);
	struct sfy_udp_sess *old = sfy_fdreg_has(fd, SFY_FDREG_UDP) ? sfy_fdreg_udp_get(fd) : NULL;
	if (old) {
		sfy_fdreg_udp_remove(fd, old);
		sfy_udp_sess_put(old);
	}
	struct sfy_udp_sess *got = sfy_fdreg_udp_install(fd, n);
	sfy_udp_sess_put(n);
	if (!got)
		return -EMFILE;
	if (got != n)
		sfy_udp_sess_put(got);
	return 0;
}

/* The connect() itself: through the association (opened now if the
 * socket has none, unless lazy), or what the route says instead. */
static int connect_now(int fd, const struct sfy_dest *d, bool lazy)
{
	if (d->route.kind == SFY_ROUTE_BLOCK) {
		sfy_udp_block_log(d, "connect", ECONNREFUSED);
		return -ECONNREFUSED;
	}
	if (d->route.kind == SFY_ROUTE_DIRECT && d->named)
		return connect_direct(fd, d);
	struct sfy_udp_sess *s = sfy_fdreg_has(fd, SFY_FDREG_UDP) ? sfy_fdreg_udp_get(fd) : NULL;
	/* A socket already associated just changes its peer. */
	if (s && s->kind == SFY_UDP_SESS_ASSOC)
		lazy = false;
	/* One connected to a nameserver is connected anew: its DNS session
	 * goes (route() keeps it for sends). */
	if (dns_connected(s)) {
		drop_mark(fd, s);
		s = NULL;
	}
	int k = route(fd, d, s, &s, lazy);
	if (k == R_REAL)
		return 1;
	if (k == R_LAZY)
		return connect_lazy(fd, d);
	if (k != R_RELAY)
		return k == R_REFUSE || k == R_OTHER_CHAIN ? -EPERM : k;
	const struct sockaddr *sa = (const struct sockaddr *)&d->sa;
	struct sfy_addr dst;
	int r = relay_dst(d, &dst);
	if (r == 0 && sfy_real()->connect(fd, (struct sockaddr *)&s->relay, s->relay_len) < 0)
		r = -errno;
	if (r == 0)
		sfy_udp_peer_set(s, &dst, sa, d->len);
	sfy_udp_sess_put(s);
	return r;
}

int sfy_udp_connect(int fd, const struct sfy_dest *d)
{
	if (d->resp)
		return sfy_dnsresp_udp_connect(fd, d->si.family, d->ns,
					       (const struct sockaddr *)&d->sa, d->len);
	return connect_now(fd, d, true);
}

/* The first send or receive on a lazily connected socket: the connect()
 * it stood for, for real now (the route is asked again). On failure the
 * socket stays lazily connected and the error is repeated for
 * SFY_UDP_RETRY_MS, as a failed association's is. 0 or -errno. */
int sfy_udp_lazy_open(int fd, struct sfy_udp_sess *lz)
{
	if (lz->err && sfy_now_ms() < lz->retry_at)
		return lz->err;
	struct sockaddr_storage sa;
	socklen_t len;
	if (!sfy_udp_peer_get(lz, NULL, &sa, &len))
		return -EDESTADDRREQ;
	struct sfy_sockinfo known = { .family = lz->family, .proto = SFY_SOCK_UDP, .v6only = -1 };
	struct sfy_dest d;
	enum sfy_verdict v = sfy_classify(fd, SFY_OP_CONNECT, 0, (const struct sockaddr *)&sa, len,
					  &known, &d);
	sfy_fdreg_udp_remove(fd, lz);
	int r = 1;
	if (v == SFY_V_PROXY && d.resp)
		r = sfy_dnsresp_udp_connect(fd, d.si.family, d.ns, (const struct sockaddr *)&d.sa,
					    d.len);
	else if (v == SFY_V_PROXY || v == SFY_V_DIRECT_NAME || v == SFY_V_BLOCK)
		r = connect_now(fd, &d, false);
	if (r == 1)
		r = sfy_real()->connect(fd, (const struct sockaddr *)&sa, len) < 0 ? -errno : 0;
	struct sfy_udp_sess *cur = sfy_fdreg_has(fd, SFY_FDREG_UDP) ? sfy_fdreg_udp_get(fd) : NULL;
	if (r < 0) {
		if (cur) {
			sfy_fdreg_udp_remove(fd, cur);
			sfy_udp_sess_put(cur);
		}
		lz->err = r;
		lz->retry_at = sfy_now_ms() + SFY_UDP_RETRY_MS;
		struct sfy_udp_sess *got = sfy_fdreg_udp_install(fd, lz);
		if (got && got != lz)
			sfy_udp_sess_put(got);
		return r;
	}
	if (cur && cur != lz && !cur->local_len && lz->local_len) {
		cur->local = lz->local;
		cur->local_len = lz->local_len;
	}
	sfy_udp_sess_put(cur);
	return 0;
}

ssize_t sfy_udp_sendto(int fd, const void *buf, size_t n, int flags,
		       const struct sockaddr *sa, socklen_t len)
{
	/* An address of length 0 is the kernel's (EINVAL, or a raw socket's
	 * connected peer), like no address on a socket without a session. */
	if (sa ? !len : !sfy_fdreg_has(fd, SFY_FDREG_UDP))
		return sfy_real()->sendto(fd, buf, n, flags, sa, len);
	struct iovec iov = { (void *)buf, n };
	struct msghdr m = { .msg_name = (void *)sa, .msg_namelen = sa ? len : 0,
			    .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r;
	if (udp_send(fd, SFY_OP_SENDTO, &m, flags, &r))
		return sfy_udp_ret(r);
	return sfy_real()->sendto(fd, buf, n, flags, sa, len);
}

/* ------------------------------------------------------------ interposers */

SFY_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	int g = sfy_async_gate(fd, flags);
	if (g < 0) {
		errno = -g;
		return -1;
	}
	ssize_t r;
	if (msg && (flags & MSG_FASTOPEN) && sfy_tcp_fastopen(fd, SFY_OP_SENDMSG, msg, flags, &r))
		return sfy_udp_ret(r);
	if (msg && udp_send(fd, SFY_OP_SENDMSG, msg, flags, &r))
		return sfy_udp_ret(r);
	return sfy_dnstcp_after(fd, sfy_real()->sendmsg(fd, msg, flags));
}

SFY_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	int g = sfy_async_gate(fd, flags);
	if (g < 0) {
		errno = -g;
		return -1;
	}
	ssize_t r;
	if (vec && vlen && (flags & MSG_FASTOPEN) &&
	    sfy_tcp_fastopen(fd, SFY_OP_SENDMSG, &vec[0].msg_hdr, flags, &r)) {
		if (r < 0)
			return (int)sfy_udp_ret(r);
		vec[0].msg_len = (unsigned)r;
		/* The rest meets the socket as the kernel leaves it after a fast
		 * open: connected (MSG_FASTOPEN then fails with EISCONN), and
		 * like the kernel we report the one message sent. */
		int e = errno;
		int n = vlen > 1 ? sfy_real()->sendmmsg(fd, vec + 1, vlen - 1, flags) : 0;
		errno = e;
		return n > 0 ? 1 + n : 1;
	}
	bool ours = sfy_fdreg_has(fd, SFY_FDREG_UDP);
	for (unsigned i = 0; i < vlen && !ours; i++)
		ours = vec[i].msg_hdr.msg_name && vec[i].msg_hdr.msg_namelen;
	if (!ours)
		return sfy_real()->sendmmsg(fd, vec, vlen, flags);
	if (vlen > IOV_MAX)
		vlen = IOV_MAX;   /* the kernel's UIO_MAXIOV cap, silently, as it does */
	/* Each run of messages that pass straight through (bypass, not ours)
	 * goes to the kernel in one real sendmmsg(); relayed or refused ones
	 * one at a time, in order. Like the kernel, an error after the first
	 * sent message ends the batch with the count so far. */
	unsigned done = 0;
	struct sfy_sockinfo known = { 0 };
	while (done < vlen) {
		struct plan p;
		unsigned end = done;
		while (end < vlen && !udp_plan(fd, SFY_OP_SENDMSG, &vec[end].msg_hdr, &known, &p))
			end++;
		if (end > done) {
			int n = sfy_real()->sendmmsg(fd, vec + done, end - done, flags);
			if (n < 0 || (unsigned)n < end - done) {
				int e = errno;
				if (end < vlen)
					sfy_udp_sess_put(p.s);
				errno = e;
				if (n < 0)
					return done ? (int)done : -1;
				return (int)(done + (unsigned)n);
			}
			done = end;
		}
		if (end == vlen)
			break;
		r = plan_send(fd, &p, &vec[done].msg_hdr, flags);
		if (r < 0)
			return done ? (int)done : (int)sfy_udp_ret(r);
		vec[done++].msg_len = (unsigned)r;
	}
	return (int)done;
}

SFY_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	int g = sfy_async_gate(fd, flags);
	if (g < 0) {
		errno = -g;
		return -1;
	}
	if (!sfy_fdreg_has(fd, SFY_FDREG_UDP))
		return sfy_dnstcp_after(fd, sfy_real()->send(fd, buf, n, flags));
	struct iovec iov = { (void *)buf, n };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r;
	if (send_connected(fd, &m, flags, &r))
		return sfy_udp_ret(r);
	return sfy_real()->send(fd, buf, n, flags);
}

SFY_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	int g = sfy_async_gate(fd, 0);
	if (g < 0) {
		errno = -g;
		return -1;
	}
	if (!sfy_fdreg_has(fd, SFY_FDREG_UDP))
		return sfy_dnstcp_after(fd, sfy_real()->write(fd, buf, n));
	struct iovec iov = { (void *)buf, n };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r;
	if (send_connected(fd, &m, 0, &r))
		return sfy_udp_ret(r);
	return sfy_real()->write(fd, buf, n);
}

SFY_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	int g = sfy_async_gate(fd, 0);
	if (g < 0) {
		errno = -g;
		return -1;
	}
	if (!sfy_fdreg_has(fd, SFY_FDREG_UDP) || cnt < 0)
		return sfy_dnstcp_after(fd, sfy_real()->writev(fd, iov, cnt));
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt };
	ssize_t r;
	if (send_connected(fd, &m, 0, &r))
		return sfy_udp_ret(r);
	return sfy_real()->writev(fd, iov, cnt);
}

/* getsockname() of a lazily connected UDP socket (connect_lazy): the
 * source address the kernel would have picked, with the socket's port.
 * TCP (bind.h): a proxied socket shows its CONNECT reply's BND; a socket
 * bound for a BIND sends it at the first look and shows its first reply. */
SFY_EXPORT int getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	if (sa && len && sfy_fdreg_has(fd, SFY_FDREG_PEER | SFY_FDREG_BIND)) {
		if (sfy_bind_proxied_sockname(fd, sa, len))
			return 0;
		if (sfy_fdreg_has(fd, SFY_FDREG_BIND) && sfy_bind_on_getsockname(fd, sa, len) == 0)
			return 0;
	}
	if (!sa || !len || !sfy_fdreg_has(fd, SFY_FDREG_UDP))
		return sfy_real()->getsockname(fd, sa, len);
	struct sfy_udp_sess *s = sfy_fdreg_udp_get(fd);
	struct sockaddr_storage local, own;
	socklen_t ll = 0, ol = sizeof(own);
	if (s && s->local_len && atomic_load(&s->peer_set)) {
		local = s->local;
		ll = s->local_len;
	}
	sfy_udp_sess_put(s);
	if (!ll)
		return sfy_real()->getsockname(fd, sa, len);
	if (sfy_real()->getsockname(fd, (struct sockaddr *)&own, &ol) < 0)
		return -1;
	if (own.ss_family != local.ss_family)
		ll = 0;
	else
		sfy_sockaddr_set_port((struct sockaddr *)&local,
				      sfy_sockaddr_port((struct sockaddr *)&own));
	const struct sockaddr_storage *out = ll ? &local : &own;
	socklen_t n = ll ? ll : ol;
	memcpy(sa, out, *len < n ? *len : n);
	*len = n;
	return 0;
}
