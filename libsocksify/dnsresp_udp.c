/* The responder's UDP transport (dnsresp_udp.h). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "addr.h"
#include "dns_msg.h"
#include "dnsresp.h"
#include "dnsresp_udp.h"
#include "fdreg.h"
#include "log.h"
#include "real.h"
#include "sock.h"
#include "udp_assoc.h"

_Static_assert(SFY_DNSRESP_UDP_NFD == 2 * SFY_DNSRESP_NS_MAX, "one socket per family and nameserver");

/* Numbered like the library's other descriptors (shmfd.h, async.c). */
#define LO_FD_MIN 100
/* A query larger than this (EDNS padding, say) takes malloc(). */
#define QBUF 1024
/* Our answers to a UDP query never exceed the client's EDNS size, itself
 * at most 4096 here (dnsresp.h). */
#define ABUF 4096

/* Our sockets, [family: 0 v4, 1 v6][nameserver]: fd + 1 in the low 32
 * bits (0: none yet), the port (network order) above, so that one atomic
 * store publishes both and a racing creator loses cleanly. */
static _Atomic uint64_t los[2][SFY_DNSRESP_NS_MAX];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int lo_fd(uint64_t v) { return (int)(uint32_t)v - 1; }
static uint16_t lo_port(uint64_t v) { return (uint16_t)(v >> 32); }
static uint64_t lo_pack(int fd, uint16_t port) { return (uint64_t)port << 32 | (uint32_t)(fd + 1); }

/* Runs in a fork() child only (never after vfork/posix_spawn, which share
 * our memory): the inherited sockets stay the parent's -- the child makes
 * its own, so that its answers never depend on another process's
 * descriptors. A socket connected to a parent's one is reconnected at its
 * next query (send_connected). */
static void at_child(void)
{
	for (int f = 0; f < 2; f++)
		for (int i = 0; i < SFY_DNSRESP_NS_MAX; i++) {
			uint64_t v = atomic_exchange(&los[f][i], 0);
			if (v)
				sfy_real()->close(lo_fd(v));
		}
}

static void setup(void)
{
	pthread_atfork(NULL, NULL, at_child);
}

static void loopback(int f, struct sockaddr_storage *ss, socklen_t *len, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (f == 0) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		in->sin_port = port;
		*len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_loopback;
		in6->sin6_port = port;
		*len = sizeof(*in6);
	}
}

/* Our socket for nameserver ns in family f, made on first use: its fd
 * with *port set, or -errno. */
static int lo_get(int f, int ns, uint16_t *port)
{
	if (ns < 0 || ns >= SFY_DNSRESP_NS_MAX)
		return -EINVAL;
	pthread_once(&once, setup);
	uint64_t v = atomic_load_explicit(&los[f][ns], memory_order_acquire);
	if (v) {
		*port = lo_port(v);
		return lo_fd(v);
	}
	/* A vfork() child shares our memory: it must not publish descriptors
	 * that are only its own. */
	if (!sfy_fdreg_owner())
		return -EAGAIN;
	int s = socket(f ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		       IPPROTO_UDP);
	if (s < 0)
		return -errno;
	struct sockaddr_storage ss;
	socklen_t sl;
	loopback(f, &ss, &sl, 0);
	/* Nothing should ever arrive (we only send); what a program sends us
	 * past our hooks must not pile up. */
	int small = 1;
	(void)setsockopt(s, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	int hi = -1, e = 0;
	if (sfy_real()->bind(s, (struct sockaddr *)&ss, sl) < 0 ||
	    (hi = sfy_real()->fcntl(s, F_DUPFD_CLOEXEC, LO_FD_MIN)) < 0)
		e = -errno;
	sfy_real()->close(s);
	sl = sizeof(ss);
	if (!e && sfy_real()->getsockname(hi, (struct sockaddr *)&ss, &sl) < 0)
		e = -errno;
	if (e) {
		if (hi >= 0)
			sfy_real()->close(hi);
		/* Said once for ::1 (a host whose lo has no IPv6, Docker's
		 * default: v6 sockets that are not V6ONLY get the IPv4 one). */
		static atomic_bool v6_said;
		if (!f || !atomic_exchange(&v6_said, true))
			sfy_warn("dns responder: cannot make a loopback UDP socket on %s (%s)",
				 f ? "::1" : "127.0.0.1", strerrorname_np(-e));
		return e;
	}
	uint16_t p = f ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port;
	uint64_t want = lo_pack(hi, p), none = 0;
	if (!atomic_compare_exchange_strong(&los[f][ns], &none, want)) {
		sfy_real()->close(hi);          /* another thread made one first */
		*port = lo_port(none);
		return lo_fd(none);
	}
	*port = p;
	return hi;
}

static bool v4mapped(const struct in6_addr *a)
{
	return !memcmp(a->s6_addr, sfy_v4mapped_prefix, sizeof(sfy_v4mapped_prefix));
}

/* fd (AF_INET6) takes IPv4 datagrams too (IPV6_V6ONLY off). */
static bool dual_stack(int fd)
{
	int on = 1;
	socklen_t l = sizeof(on);
	return sfy_real()->getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, &l) == 0 && !on;
}

/* Our family for an answer to AF_INET6 socket fd that wants the v6
 * socket (f 1): the v4 one when ::1 cannot be had (lo without IPv6) and
 * fd takes IPv4; the answer's source, ::ffff:127.0.0.1, is mapped back
 * to the nameserver all the same (sfy_dnsresp_udp_source). */
static int v6_or_v4(int fd, int ns)
{
	uint16_t port;
	if (lo_get(1, ns, &port) >= 0 || !dual_stack(fd))
		return 1;
	return 0;
}

/* Where the answer goes (fd's address, the wildcard meaning loopback) and
 * which of our families sends it: 0 for an IPv4 (or v4-mapped) address. */
static int reply_to(int fd, int family, int ns, struct sockaddr_storage *to, socklen_t *tolen,
		    int *f)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int r = sfy_udp_autobind(fd, family, &ss, &sl);
	if (r < 0)
		return r;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		/* Bound to the wildcard with no ::1: to 127.0.0.1 instead. */
		bool v4 = v4mapped(&in6->sin6_addr) ||
			  (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr) && !v6_or_v4(fd, ns));
		if (!v4) {
			*f = 1;
			if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
				in6->sin6_addr = in6addr_loopback;
			in6->sin6_flowinfo = 0;
			*to = ss;
			*tolen = sizeof(*in6);
			return 0;
		}
		struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = in6->sin6_port };
		memcpy(&in.sin_addr, in6->sin6_addr.s6_addr + 12, 4);
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, &in, sizeof(in));
	} else if (ss.ss_family != AF_INET) {
		return -EAFNOSUPPORT;
	}
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	if (in->sin_addr.s_addr == htonl(INADDR_ANY))
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*f = 0;
	*to = ss;
	*tolen = sizeof(*in);
	return 0;
}

/* Gives fd a DNS session unless it has a session: its receive hooks then
 * report our sockets as the nameservers. Best effort. */
static void mark(int fd, int family)
{
	if (sfy_fdreg_has(fd, SFY_FDREG_UDP)) {
		struct sfy_udp_sess *s = sfy_fdreg_udp_get(fd);
		if (s) {
			sfy_udp_sess_put(s);
			return;
		}
	}
	struct sfy_udp_sess *n = sfy_udp_sess_new(SFY_UDP_SESS_DNS, family);
	if (!n)
		return;
	n->ns = -1;
	struct sfy_udp_sess *got = sfy_fdreg_udp_install(fd, n);
	if (got != n)
		sfy_udp_sess_put(got);
	sfy_udp_sess_put(n);
}

/* Answers the query in m and sends the answer from our socket for ns to
 * fd's address; to/tolen/f from reply_to(). */
static ssize_t answer(int ns, const struct msghdr *m, const struct sockaddr_storage *to,
		      socklen_t tolen, int f)
{
	size_t total = 0;
	for (size_t i = 0; i < m->msg_iovlen; i++) {
		if (m->msg_iov[i].iov_len > SFY_UDP_MAX_V6 - total)
			return -EMSGSIZE;
		total += m->msg_iov[i].iov_len;
	}
	if (f == 0 && total > SFY_UDP_MAX_V4)
		return -EMSGSIZE;
	if (total < SFY_DNS_HEADER)
		return (ssize_t)total;  /* no query: nothing to answer */
	uint8_t stack[QBUF], *q = stack;
	if (total > sizeof(stack) && !(q = malloc(total)))
		return -ENOMEM;
	size_t at = 0;
	for (size_t i = 0; i < m->msg_iovlen; i++) {
		if (m->msg_iov[i].iov_len)
			memcpy(q + at, m->msg_iov[i].iov_base, m->msg_iov[i].iov_len);
		at += m->msg_iov[i].iov_len;
	}
	uint8_t out[ABUF];
	ssize_t n = sfy_dnsresp_answer(q, total, false, out, sizeof(out));
	if (q != stack)
		free(q);
	if (n < 0) {
		/* Like a datagram lost on the way: the program's resolver retries
		 * or times out; the send itself went through. */
		sfy_debug("dns responder: no answer built (%s)", strerrorname_np((int)-n));
		return (ssize_t)total;
	}
	if (n == 0)
		return (ssize_t)total;  /* a response sent to us: dropped */
	uint16_t port;
	int lo = lo_get(f, ns, &port);
	if (lo < 0)
		return lo;
	/* Never blocks: a full receive queue drops the answer, as the kernel
	 * drops any datagram then. */
	if (sfy_real()->sendto(lo, out, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL,
			       (const struct sockaddr *)to, tolen) < 0)
		sfy_debug("dns responder: answer not delivered (%s)", strerrorname_np(errno));
	return (ssize_t)total;
}

ssize_t sfy_dnsresp_udp_send(int fd, int family, int ns, const struct msghdr *m)
{
	struct sockaddr_storage to;
	socklen_t tolen;
	int f;
	int r = reply_to(fd, family, ns, &to, &tolen, &f);
	if (r < 0)
		return r;
	ssize_t n = answer(ns, m, &to, tolen, f);
	if (n >= 0)
		mark(fd, family);
	return n;
}

/* Our socket for ns that fd (of family) connects to: the v4 one for an
 * AF_INET socket or one bound to a v4-mapped address, else the v6 one. */
static int connect_lo(int fd, int family, int ns, int *f)
{
	*f = 0;
	if (family == AF_INET6) {
		struct sockaddr_in6 own;
		socklen_t ol = sizeof(own);
		*f = !(sfy_real()->getsockname(fd, (struct sockaddr *)&own, &ol) == 0 &&
		       own.sin6_family == AF_INET6 && v4mapped(&own.sin6_addr));
		if (*f)
			*f = v6_or_v4(fd, ns);
	}
	uint16_t port;
	int lo = lo_get(*f, ns, &port);
	if (lo < 0)
		return lo;
	struct sockaddr_storage ss;
	socklen_t sl;
	loopback(*f, &ss, &sl, port);
	if (family == AF_INET6 && *f == 0) {
		/* ::ffff:127.0.0.1 */
		struct sockaddr_in6 m = { .sin6_family = AF_INET6, .sin6_port = port };
		memcpy(m.sin6_addr.s6_addr, sfy_v4mapped_prefix, 12);
		uint32_t l = htonl(INADDR_LOOPBACK);
		memcpy(m.sin6_addr.s6_addr + 12, &l, 4);
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, &m, sizeof(m));
		sl = sizeof(m);
	}
	if (sfy_real()->connect(fd, (struct sockaddr *)&ss, sl) < 0)
		return -errno;
	return 0;
}

int sfy_dnsresp_udp_connect(int fd, int family, int ns, const struct sockaddr *sa, socklen_t len)
{
	int f;
	int r = connect_lo(fd, family, ns, &f);
	if (r < 0)
		return r;
	struct sfy_addr dst;
	if (sfy_addr_from_sockaddr(&dst, sa, len) < 0)
		memset(&dst, 0, sizeof(dst));
	struct sfy_udp_sess *n = sfy_udp_sess_new(SFY_UDP_SESS_DNS, family);
	if (!n)
		return 0;       /* connected all the same; getpeername says loopback */
	n->ns = ns;
	sfy_udp_peer_set(n, &dst, sa, len);
	/* Whatever the socket had (an association, a lazy peer) is replaced:
	 * its sends without an address now go to the nameserver. */
	struct sfy_udp_sess *old = sfy_fdreg_udp_get(fd);
	if (old) {
		sfy_fdreg_udp_remove(fd, old);
		sfy_udp_sess_put(old);
	}
	struct sfy_udp_sess *got = sfy_fdreg_udp_install(fd, n);
	if (got && got != n)
		sfy_udp_sess_put(got);  /* another thread's session won: rare */
	sfy_udp_sess_put(n);
	return 0;
}

ssize_t sfy_dnsresp_udp_send_connected(int fd, struct sfy_udp_sess *s, const struct msghdr *m)
{
	struct sockaddr_storage to;
	socklen_t tolen;
	int f;
	int r = reply_to(fd, s->family, s->ns, &to, &tolen, &f);
	if (r < 0)
		return r;
	/* The kernel takes datagrams only from the socket fd is connected
	 * to: after a fork() that may be the parent's, so check and move. */
	uint16_t port;
	int lo = lo_get(f, s->ns, &port);
	if (lo < 0)
		return lo;
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);
	if (sfy_real()->getpeername(fd, (struct sockaddr *)&peer, &pl) == 0 &&
	    sfy_sockaddr_port((struct sockaddr *)&peer) != ntohs(port)) {
		int g;
		if ((r = connect_lo(fd, s->family, s->ns, &g)) < 0)
			return r;
	}
	return answer(s->ns, m, &to, tolen, f);
}

bool sfy_dnsresp_udp_source(int family, struct sockaddr_storage *from, socklen_t *len)
{
	int f;
	uint16_t port;
	if (from->ss_family == AF_INET && *len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)from;
		if (in->sin_addr.s_addr != htonl(INADDR_LOOPBACK))
			return false;
		f = 0;
		port = in->sin_port;
	} else if (from->ss_family == AF_INET6 && *len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)from;
		uint8_t lo4[16] = { 0 };
		memcpy(lo4, sfy_v4mapped_prefix, 12);
		lo4[12] = 127, lo4[15] = 1;
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			f = 1;
		else if (!memcmp(in6->sin6_addr.s6_addr, lo4, 16))
			f = 0;
		else
			return false;
		port = in6->sin6_port;
	} else {
		return false;
	}
	for (int i = 0; i < SFY_DNSRESP_NS_MAX; i++) {
		uint64_t v = atomic_load_explicit(&los[f][i], memory_order_acquire);
		if (!v || lo_port(v) != port)
			continue;
		struct sockaddr_storage ns;
		socklen_t nl;
		if (!sfy_dnsresp_ns_addr(i, family, &ns, &nl))
			return false;
		*from = ns;
		*len = nl;
		return true;
	}
	return false;
}

void sfy_dnsresp_udp_evict(int fd)
{
	if (fd < LO_FD_MIN)
		return;
	for (int f = 0; f < 2; f++)
		for (int i = 0; i < SFY_DNSRESP_NS_MAX; i++) {
			uint64_t v = atomic_load_explicit(&los[f][i], memory_order_relaxed);
			if (!v || lo_fd(v) != fd)
				continue;
			/* A vfork() child has its own descriptor table but our
			 * memory: the record stays the parent's. */
			if (!sfy_fdreg_owner())
				return;
			int saved = errno;
			int hi = sfy_real()->fcntl(fd, F_DUPFD_CLOEXEC, LO_FD_MIN);
			/* Without a copy the slot is emptied: a new socket is
			 * made at the next query. */
			uint64_t n = hi >= 0 ? lo_pack(hi, lo_port(v)) : 0;
			if (!atomic_compare_exchange_strong(&los[f][i], &v, n) && hi >= 0)
				sfy_real()->close(hi);
			errno = saved;
		}
}

int sfy_dnsresp_udp_guarded_in(unsigned first, unsigned last, int out[], int max)
{
	int n = 0;
	for (int f = 0; f < 2; f++)
		for (int i = 0; i < SFY_DNSRESP_NS_MAX && n < max; i++) {
			uint64_t v = atomic_load_explicit(&los[f][i], memory_order_relaxed);
			int fd = lo_fd(v);
			if (!v || (unsigned)fd < first || (unsigned)fd > last)
				continue;
			int j = n++;
			for (; j > 0 && out[j - 1] > fd; j--)
				out[j] = out[j - 1];
			out[j] = fd;
		}
	return n;
}
