/* The kernel's reading of a destination, and the one decision every hook
 * makes with it (see dest.h for the rules, with their kernel sources). */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "dest.h"
#include "fakedns.h"
#include "log.h"
#include "logonce.h"
#include "dnsresp.h"
#include "real.h"
#include "route.h"
#include "sock.h"
#include "state.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef IPV6_HDRINCL
#define IPV6_HDRINCL 36         /* linux/in6.h, Linux 4.5 */
#endif

/* SIN6_LEN_RFC2133: a sockaddr_in6 without sin6_scope_id, which the kernel
 * takes as a whole IPv6 address. */
#define SIN6_LEN_OLD 24
/* The kernel copies at most a sockaddr_storage of the program's address. */
#define ADDR_MAX ((socklen_t)sizeof(struct sockaddr_storage))

static bool get_int(int fd, int level, int name, int *v)
{
	socklen_t l = sizeof(*v);
	*v = 0;
	return sfy_real()->getsockopt(fd, level, name, v, &l) == 0;
}

bool sfy_sockinfo_get(int fd, struct sfy_sockinfo *si)
{
	int dom, type, proto;
	memset(si, 0, sizeof(*si));
	si->v6only = -1;
	if (!get_int(fd, SOL_SOCKET, SO_DOMAIN, &dom) || (dom != AF_INET && dom != AF_INET6) ||
	    !get_int(fd, SOL_SOCKET, SO_TYPE, &type) ||
	    !get_int(fd, SOL_SOCKET, SO_PROTOCOL, &proto))
		return false;
	si->family = dom;
	si->type = type;
	si->protocol = proto;
	if (type == SOCK_STREAM && (proto == IPPROTO_TCP || proto == IPPROTO_MPTCP)) {
		si->proto = SFY_SOCK_TCP;
	} else if (type == SOCK_DGRAM && proto == IPPROTO_UDP) {
		si->proto = SFY_SOCK_UDP;
	} else {
		si->proto = SFY_SOCK_OTHER;
		int on = 0;
		if (type == SOCK_RAW)
			(void)get_int(fd, dom == AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
				      dom == AF_INET ? IP_HDRINCL : IPV6_HDRINCL, &on);
		si->hdrincl = on != 0;
	}
	return true;
}

static bool v6only(int fd, struct sfy_sockinfo *si)
{
	if (si->v6only < 0) {
		int v = 0;
		si->v6only = fd >= 0 && get_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v) && v;
	}
	return si->v6only == 1;
}

static bool v4mapped(const struct in6_addr *a)
{
	return !memcmp(a->s6_addr, sfy_v4mapped_prefix, sizeof(sfy_v4mapped_prefix));
}

/* An IPv4 destination: 0.0.0.0 is this host, as the kernel's route lookup
 * makes it. On an AF_INET6 socket it is written v4-mapped. */
static enum sfy_read dest_v4(struct sfy_dest *d, struct sockaddr_in sin)
{
	sin.sin_family = AF_INET;
	if (sin.sin_addr.s_addr == htonl(INADDR_ANY))
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(&d->sa, 0, sizeof(d->sa));
	if (d->si.family == AF_INET) {
		memcpy(&d->sa, &sin, sizeof(sin));
		d->len = sizeof(sin);
		return SFY_READ_DEST;
	}
	struct sockaddr_in6 *o = (struct sockaddr_in6 *)&d->sa;
	o->sin6_family = AF_INET6;
	o->sin6_port = sin.sin_port;
	memcpy(o->sin6_addr.s6_addr, sfy_v4mapped_prefix, sizeof(sfy_v4mapped_prefix));
	memcpy(o->sin6_addr.s6_addr + 12, &sin.sin_addr, 4);
	d->len = sizeof(*o);
	return SFY_READ_DEST;
}

/* An IPv6 destination (the bytes past len already zero: a 24-byte address
 * has scope id 0). ::ffff:a.b.c.d is IPv4 and ENETUNREACH on a V6ONLY
 * socket. :: is this host: ::1, or 127.0.0.1 for a socket bound to a
 * v4-mapped address (tcp_v6_connect, udpv6_sendmsg). */
static enum sfy_read dest_v6(int fd, struct sfy_dest *d, struct sockaddr_in6 sin6)
{
	if (v4mapped(&sin6.sin6_addr) && v6only(fd, &d->si))
		return SFY_READ_KERNEL;
	if (IN6_IS_ADDR_UNSPECIFIED(&sin6.sin6_addr)) {
		struct sockaddr_storage loc;
		socklen_t ll = sizeof(loc);
		if (fd >= 0 && sfy_real()->getsockname(fd, (struct sockaddr *)&loc, &ll) == 0 &&
		    loc.ss_family == AF_INET6 &&
		    v4mapped(&((struct sockaddr_in6 *)&loc)->sin6_addr)) {
			memcpy(sin6.sin6_addr.s6_addr, sfy_v4mapped_prefix, 12);
			uint32_t lo = htonl(INADDR_LOOPBACK);
			memcpy(sin6.sin6_addr.s6_addr + 12, &lo, 4);
		} else {
			sin6.sin6_addr = in6addr_loopback;
		}
	}
	memset(&d->sa, 0, sizeof(d->sa));
	memcpy(&d->sa, &sin6, sizeof(sin6));
	d->len = sizeof(sin6);
	return SFY_READ_DEST;
}

/* TCP connect(), or sendto/sendmsg with MSG_FASTOPEN (tcp_sendmsg_fastopen
 * hands the address to the same __inet_stream_connect). */
static enum sfy_read read_tcp(int fd, bool connect, const struct sockaddr_storage *in,
			      socklen_t len, struct sfy_dest *d)
{
	if (len < sizeof(sa_family_t))
		return SFY_READ_KERNEL;
	if (in->ss_family == AF_UNSPEC)   /* MSG_FASTOPEN: EOPNOTSUPP */
		return connect ? SFY_READ_DISCONNECT : SFY_READ_KERNEL;
	if (d->si.family == AF_INET)
		return in->ss_family == AF_INET && len >= sizeof(struct sockaddr_in)
			       ? dest_v4(d, *(const struct sockaddr_in *)in) : SFY_READ_KERNEL;
	if (len < SIN6_LEN_OLD || in->ss_family != AF_INET6)
		return SFY_READ_KERNEL;
	return dest_v6(fd, d, *(const struct sockaddr_in6 *)in);
}

static enum sfy_read read_udp(int fd, bool connect, const struct sockaddr_storage *in,
			      socklen_t len, struct sfy_dest *d)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)in;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)in;
	if (len < sizeof(sa_family_t))
		return SFY_READ_KERNEL;
	if (connect) {
		/* inet_dgram_connect, ip4/ip6_datagram_connect */
		if (in->ss_family == AF_UNSPEC)
			return SFY_READ_DISCONNECT;
		if (in->ss_family == AF_INET && len >= sizeof(*sin) &&
		    (d->si.family == AF_INET || !v6only(fd, &d->si)))
			return dest_v4(d, *sin);
		if (d->si.family == AF_INET6 && in->ss_family == AF_INET6 && len >= SIN6_LEN_OLD)
			return dest_v6(fd, d, *sin6);
		return SFY_READ_KERNEL;
	}
	if (d->si.family == AF_INET) {
		/* udp_sendmsg: AF_UNSPEC is read as AF_INET */
		if (len < sizeof(*sin) || (in->ss_family != AF_INET && in->ss_family != AF_UNSPEC) ||
		    !sin->sin_port)
			return SFY_READ_KERNEL;
		return dest_v4(d, *sin);
	}
	/* udpv6_sendmsg */
	switch (in->ss_family) {
	case AF_UNSPEC:
		return SFY_READ_CONNECTED;
	case AF_INET:
		if (v6only(fd, &d->si) || len < sizeof(*sin) || !sin->sin_port)
			return SFY_READ_KERNEL;
		return dest_v4(d, *sin);
	case AF_INET6:
		if (len < SIN6_LEN_OLD || !sin6->sin6_port)
			return SFY_READ_KERNEL;
		return dest_v6(fd, d, *sin6);
	default:
		return SFY_READ_KERNEL;
	}
}

/* SCTP, raw, ICMP, UDP-Lite: each reads addresses its own way (raw sockets
 * take family 0 as their own). Whatever could be read as an address is
 * one, so that the bypass decision errs on the side of refusing. */
static enum sfy_read read_other(bool connect, const struct sockaddr_storage *in,
				socklen_t len, struct sfy_dest *d)
{
	if (len < sizeof(sa_family_t))
		return SFY_READ_KERNEL;
	int fam = in->ss_family;
	if (fam == AF_UNSPEC) {
		if (connect)
			return SFY_READ_DISCONNECT;
		fam = d->si.family;
	}
	if (fam == AF_INET && len >= sizeof(struct sockaddr_in))
		return dest_v4(d, *(const struct sockaddr_in *)in);
	if (fam == AF_INET6 && len >= SIN6_LEN_OLD) {
		struct sockaddr_in6 sin6 = *(const struct sockaddr_in6 *)in;
		sin6.sin6_family = AF_INET6;
		if (d->si.family == AF_INET6)
			return dest_v6(-1, d, sin6);
		/* an AF_INET socket: say where it would go, in its own family */
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = sin6.sin6_port };
		if (!v4mapped(&sin6.sin6_addr))
			return dest_v6(-1, d, sin6);
		memcpy(&sin.sin_addr, sin6.sin6_addr.s6_addr + 12, 4);
		return dest_v4(d, sin);
	}
	return SFY_READ_KERNEL;
}

enum sfy_read sfy_dest_read(int fd, enum sfy_op op, int flags, const struct sockaddr *sa,
			    socklen_t len, struct sfy_dest *d)
{
	bool connect = op == SFY_OP_CONNECT;
	d->len = 0;
	if (op == SFY_OP_SENDMSG) {
		/* ___sys_sendmsg: no name is no address; a longer one is clipped */
		if (!sa || !len)
			return d->si.proto == SFY_SOCK_UDP ? SFY_READ_CONNECTED : SFY_READ_KERNEL;
		if (len > INT_MAX)
			return SFY_READ_KERNEL;
		if (len > ADDR_MAX)
			len = ADDR_MAX;
	} else if (op == SFY_OP_SENDTO && !sa) {
		return d->si.proto == SFY_SOCK_UDP ? SFY_READ_CONNECTED : SFY_READ_KERNEL;
	} else if (!sa || len > ADDR_MAX) {
		return SFY_READ_KERNEL;   /* EFAULT, EINVAL (move_addr_to_kernel) */
	}
	/* A copy: the program's may be unaligned or shorter than we read. */
	struct sockaddr_storage in;
	memset(&in, 0, sizeof(in));
	memcpy(&in, sa, len);
	switch (d->si.proto) {
	case SFY_SOCK_TCP:
		if (!connect && !(flags & MSG_FASTOPEN))
			return SFY_READ_KERNEL;   /* tcp_sendmsg ignores the address */
		return read_tcp(fd, connect, &in, len, d);
	case SFY_SOCK_UDP:
		return read_udp(fd, connect, &in, len, d);
	case SFY_SOCK_OTHER:
		return read_other(connect, &in, len, d);
	default:
		return SFY_READ_KERNEL;
	}
}

/* ------------------------------------------------------------ refusals */

/* The sockets already warned about, by identity: one line per socket, not
 * per datagram (a ping sends one a second). A socket that outlives
 * WARNED_MAX later refusals of others may be warned about again. */
#define WARNED_MAX 64
static struct { dev_t dev; ino_t ino; } warned[WARNED_MAX];
static unsigned warned_next;
static pthread_mutex_t warned_lock = PTHREAD_MUTEX_INITIALIZER;

static bool first_refusal(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return true;
	/* trylock: after a fork() in another thread's critical section the
	 * lock may stay taken; a repeated line is the worst that follows. */
	if (pthread_mutex_trylock(&warned_lock) != 0)
		return true;
	bool seen = false;
	for (unsigned i = 0; i < WARNED_MAX && !seen; i++)
		seen = warned[i].ino == st.st_ino && warned[i].dev == st.st_dev;
	if (!seen) {
		warned[warned_next].dev = st.st_dev;
		warned[warned_next].ino = st.st_ino;
		warned_next = (warned_next + 1) % WARNED_MAX;
	}
	pthread_mutex_unlock(&warned_lock);
	return !seen;
}

static const char *proto_name(const struct sfy_sockinfo *si, char buf[static 32])
{
	switch (si->protocol) {
	case IPPROTO_SCTP: return "SCTP";
	case IPPROTO_UDPLITE: return "UDP-Lite";
	case IPPROTO_ICMP: case IPPROTO_ICMPV6:
		if (si->type != SOCK_RAW)
			return "ICMP (ping)";
		break;
	default: break;
	}
	if (si->type == SOCK_RAW)
		return "raw";
	snprintf(buf, 32, "protocol %d", si->protocol);
	return buf;
}

static void refuse_log(int fd, const struct sfy_dest *d, enum sfy_op op, const char *why)
{
	if (!first_refusal(fd))
		return;
	struct sfy_addr a;
	char txt[300] = "?", pb[32];
	if (sfy_addr_from_sockaddr(&a, (const struct sockaddr *)&d->sa, d->len) == 0)
		sfy_addr_format(&a, txt, sizeof(txt));
	sfy_warn("%s socket: %s to %s refused (EACCES): %s", proto_name(&d->si, pb),
		 op == SFY_OP_CONNECT ? "connect" : "send", txt, why);
}

/* ------------------------------------------------------------ the decision */

/* A family no inet socket takes (AF_UNIX, AF_NETLINK ...): known without
 * asking the kernel anything about the socket. */
static bool foreign(enum sfy_op op, const struct sockaddr *sa, socklen_t len)
{
	if (!sa || len < sizeof(sa_family_t) || (op == SFY_OP_SENDMSG && len > INT_MAX))
		return false;
	sa_family_t f;
	memcpy(&f, sa, sizeof(f));
	return f != AF_INET && f != AF_INET6 && f != AF_UNSPEC;
}

void sfy_dest_format(const struct sfy_dest *d, char *buf, size_t cap)
{
	struct sfy_addr a;
	if (d->named)
		sfy_addr_format(&d->name, buf, cap);
	else if (sfy_addr_from_sockaddr(&a, (const struct sockaddr *)&d->sa, d->len) == 0)
		sfy_addr_format(&a, buf, cap);
	else
		snprintf(buf, cap, "?");
}

void sfy_dest_block_log(const struct sfy_dest *d, const char *what, int err)
{
	char dst[300], rule[400] = "";
	sfy_dest_format(d, dst, sizeof(dst));
	/* one line per destination, not per attempt (a program retrying a
	 * blocked host in a loop must not flood the log); UDP's lines
	 * (udp_route.c) are a kind of their own */
	if (!sfy_logonce_first("tcp-block", dst))
		return;
	const struct sfy_routes *rt = sfy_routes_get();
	if (rt)
		sfy_route_describe(rt, &d->route, rule, sizeof(rule));
	sfy_warn("%s to %s blocked by %s (%s)", what, dst, rule, strerrorname_np(err));
}

/* The routing rules' verdict on d (read, not refused), routes active. */
static enum sfy_verdict routed(int fd, enum sfy_op op, const struct sfy_routes *rt,
			       struct sfy_dest *d)
{
	const struct sockaddr *sa = (const struct sockaddr *)&d->sa;
	uint16_t port = sfy_sockaddr_port(sa);
	/* A fake address is its name (remote routes hand them out; in local
	 * mode only .onion/.exit/.i2p names get one: hooks_dns.c). */
	d->named = sfy_fakedns_reverse(sa, d->len, &d->name) &&
		   (sfy_routes_remote(rt) || sfy_route_special_tld(d->name.name));
	sfy_route_match(rt, d->named ? d->name.name : NULL, d->named ? NULL : sa, port, &d->route);
	bool other = d->si.proto == SFY_SOCK_OTHER;
	if (other) {
		if (d->route.kind == SFY_ROUTE_DIRECT && !d->named)
			return SFY_V_KERNEL;
		refuse_log(fd, d, op, d->named ? "only TCP and UDP can reach a name"
			   : d->route.kind == SFY_ROUTE_BLOCK ? "a rule blocks this destination"
			   : "only TCP and UDP can be proxied; a direct rule lets it reach this "
			     "destination directly");
		return SFY_V_REFUSE;
	}
	d->cfg = d->route.cfg;
	switch (d->route.kind) {
	case SFY_ROUTE_BLOCK:
		return SFY_V_BLOCK;
	case SFY_ROUTE_DIRECT:
		if (d->named)
			return SFY_V_DIRECT_NAME;
		/* A fake address no name stands behind must not go out as if
		 * it were real: the proxied path refuses it (hooks_tcp.c). */
		if (sfy_routes_remote(rt) && sfy_fakedns_is_fake(sa, d->len))
			return SFY_V_PROXY;
		return SFY_V_KERNEL;
	default:
		return SFY_V_PROXY;
	}
}

enum sfy_verdict sfy_classify(int fd, enum sfy_op op, int flags, const struct sockaddr *sa,
			      socklen_t len, const struct sfy_sockinfo *known,
			      struct sfy_dest *d)
{
	memset(d, 0, sizeof(*d));
	if (known && known->family) {
		d->si = *known;
	} else if (foreign(op, sa, len) || !sfy_sockinfo_get(fd, &d->si)) {
		d->si.family = 0;
		return SFY_V_KERNEL;
	}
	switch (sfy_dest_read(fd, op, flags, sa, len, d)) {
	case SFY_READ_DEST:
		break;
	case SFY_READ_DISCONNECT:
		return SFY_V_DISCONNECT;
	case SFY_READ_CONNECTED:
		return SFY_V_CONNECTED;
	default:
		return SFY_V_KERNEL;
	}
	d->cfg = sfy_config_get();
	/* The responder comes first (INTERFACE.md's precedence): the UDP
	 * hooks answer the query (dnsresp_udp.h). */
	if (d->si.proto == SFY_SOCK_UDP && d->cfg &&
	    sfy_dnsresp_is_ns((const struct sockaddr *)&d->sa, d->len, &d->ns)) {
		d->resp = true;
		return SFY_V_PROXY;
	}
	bool other = d->si.proto == SFY_SOCK_OTHER;
	if (other && d->si.hdrincl) {
		/* The packet's own IP header names where it goes, not sa. */
		refuse_log(fd, d, op, "a raw socket with IP_HDRINCL writes its own destination");
		return SFY_V_REFUSE;
	}
	const struct sfy_routes *rt = d->cfg ? sfy_routes_get() : NULL;
	if (rt && sfy_routes_active(rt))
		return routed(fd, op, rt, d);
	if (d->cfg && sfy_route_bypass(d->cfg, (const struct sockaddr *)&d->sa))
		return SFY_V_KERNEL;
	if (!other)
		return SFY_V_PROXY;
	refuse_log(fd, d, op, d->cfg ? "only TCP and UDP can be proxied; a bypass rule lets it "
				       "reach this destination directly"
				     : "no configuration");
	return SFY_V_REFUSE;
}
