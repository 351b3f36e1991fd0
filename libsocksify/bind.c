/* A listening socket's SOCKS BIND (bind.h): the request inside the
 * triggering call, the wait for the second reply on a thread, the loopback
 * connector that makes the real listener readable, and the move of the
 * BIND connection under the descriptor accept() returns.
 *
 * States (under mu):
 *   ASKED       bound to port 0 at the wildcard or a handed-out address
 *               (or a never-bound socket at listen()); nothing sent
 *   TRIGGERING  a thread is sending the BIND request; others wait on cv
 *   FAILED      the BIND could not be had: listen() fails with err,
 *               getsockname() is the kernel's
 *   BOUND       the first reply is in: getsockname() shows it
 *   LISTENING   listening for real; the waiter thread reads the second reply
 *   READY       the second reply said the peer connected: the connector
 *               (cloc) is on its way into the listener's queue
 *   BROKEN      the second reply failed: likewise, for accept() to report
 *               ECONNABORTED
 *   DONE        a plain listener (accepted, or a fork()ed child's copy, or
 *               no BIND was due at listen())
 *
 * fork(): the waiter thread is the parent's; a child that inherits the
 * listening socket gets a plain listener (DONE) and closes its copies of
 * the BIND connection, the connector and the wake-up descriptor. Both
 * processes share the kernel's listening socket, so the connector's
 * connection goes to whichever accept()s first -- in the child it is an
 * empty loopback connection. One process should accept, as with any
 * listener shared across fork(). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bind.h"
#include "bind_rec.h"
#include "errmap.h"
#include "fdreg.h"
#include "log.h"
#include "proxy_url.h"
#include "real.h"
#include "sock.h"
#include "socks4.h"
#include "socks5.h"
#include "state.h"

/* Our descriptors start here, as the async driver's do: a program that
 * expects its next socket to get the lowest free number keeps it. */
#define PRIVATE_FD_MIN 100
/* The handed-out addresses bind() compares against. */
#define HANDED_MAX SFY_BIND_REC_N

enum bstate { B_ASKED, B_TRIGGERING, B_FAILED, B_BOUND, B_LISTENING, B_READY, B_BROKEN, B_DONE };

struct sfy_bind {
	struct sfy_bind *prev, *next;   /* every record of the process (fork) */
	atomic_int refs;
	/* The rest under mu. */
	enum bstate st;
	int err;                        /* FAILED: listen()'s -errno */
	int family;                     /* the listening socket's */
	enum sfy_bind_at at;
	uint16_t port;                  /* the port the program asked for */
	struct sockaddr_storage asked;  /* AT_HANDED: the address it asked for */
	socklen_t asked_len;
	bool s4;                        /* the last hop is SOCKS4: 8-byte replies */
	int bfd, cfd, wake;             /* BIND connection, connector, wake-up; -1 */
	bool thread;
	pthread_t thr;
	struct sockaddr_storage lsn;    /* the real listener's address */
	socklen_t lsn_len;
	struct sockaddr_storage first;  /* the first reply, listener's family */
	socklen_t first_len;
	struct sockaddr_storage cloc;   /* the connector's own address */
	socklen_t cloc_len;
	struct sockaddr_storage peer;   /* getpeername() of the accepted socket */
	socklen_t peer_len;
	char what[960];                 /* "BIND for HOST:PORT via HOP" */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct sfy_bind *all;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* ------------------------------------------------------------ fork */

static void at_prepare(void) { pthread_mutex_lock(&mu); }
static void at_parent(void) { pthread_mutex_unlock(&mu); }

static void close_priv(int *fd)
{
	if (*fd >= 0)
		sfy_real()->close(*fd);
	*fd = -1;
}

/* The parent's BINDs stay the parent's (see the top of the file). */
static void at_child(void)
{
	pthread_mutex_init(&mu, NULL);
	pthread_cond_init(&cv, NULL);
	for (struct sfy_bind *b = all; b; b = b->next) {
		close_priv(&b->bfd);
		close_priv(&b->cfd);
		close_priv(&b->wake);
		b->thread = false;
		if (b->st != B_ASKED && b->st != B_FAILED)
			b->st = B_DONE;
	}
}

static void setup(void)
{
	pthread_atfork(at_prepare, at_parent, at_child);
}

/* ------------------------------------------------------------ records */

static struct sfy_bind *bind_new(int family, enum sfy_bind_at at, uint16_t port)
{
	pthread_once(&once, setup);
	struct sfy_bind *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	atomic_init(&b->refs, 1);
	b->st = B_ASKED;
	b->family = family;
	b->at = at;
	b->port = port;
	b->bfd = b->cfd = b->wake = -1;
	pthread_mutex_lock(&mu);
	b->next = all;
	if (all)
		all->prev = b;
	all = b;
	pthread_mutex_unlock(&mu);
	return b;
}

struct sfy_bind *sfy_bind_ref(struct sfy_bind *b)
{
	if (b)
		atomic_fetch_add(&b->refs, 1);
	return b;
}

/* Ends the waiter (a wake-up, then a join: it never blocks on anything
 * else) and closes the connector. Not under mu. */
static void stop_waiter(struct sfy_bind *b)
{
	pthread_mutex_lock(&mu);
	bool th = b->thread;
	pthread_t t = b->thr;
	b->thread = false;
	int wake = b->wake;
	pthread_mutex_unlock(&mu);
	if (th) {
		uint64_t one = 1;
		int e = errno;
		(void)sfy_real()->write(wake, &one, sizeof(one));
		pthread_join(t, NULL);
		errno = e;
	}
	pthread_mutex_lock(&mu);
	int c = b->cfd, w = b->wake;
	b->cfd = b->wake = -1;
	pthread_mutex_unlock(&mu);
	close_priv(&c);
	close_priv(&w);
}

void sfy_bind_put(struct sfy_bind *b)
{
	if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
		return;
	int e = errno;
	stop_waiter(b);
	pthread_mutex_lock(&mu);
	if (b->prev)
		b->prev->next = b->next;
	else
		all = b->next;
	if (b->next)
		b->next->prev = b->prev;
	int bfd = b->bfd;
	pthread_mutex_unlock(&mu);
	close_priv(&bfd);
	free(b);
	errno = e;
}

/* ------------------------------------------------------------ helpers */

static int private_fd(int fd)
{
	if (fd < 0 || fd >= PRIVATE_FD_MIN)
		return fd;
	int n = sfy_real()->fcntl(fd, F_DUPFD_CLOEXEC, PRIVATE_FD_MIN);
	sfy_real()->close(fd);
	return n;
}

/* fd is a TCP socket of AF_INET/AF_INET6: its family, else 0. */
static int tcp_family(int fd)
{
	int type = 0, proto = 0, e = errno;
	socklen_t l = sizeof(type), pl = sizeof(proto);
	bool tcp = sfy_real()->getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0 &&
		   type == SOCK_STREAM &&
		   sfy_real()->getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &pl) == 0 &&
		   proto == IPPROTO_TCP;
	int fam = tcp ? sfy_sock_family(fd) : 0;
	errno = e;
	return fam == AF_INET || fam == AF_INET6 ? fam : 0;
}

static bool connected(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int e = errno;
	bool r = sfy_real()->getpeername(fd, (struct sockaddr *)&ss, &sl) == 0;
	errno = e;
	return r;
}

static bool bind_off(void)
{
	const struct sfy_config *c = sfy_config_get();
	return !c || c->bind_off;
}

/* a as a sockaddr of family (v4-mapped into AF_INET6); 0 when it cannot be. */
static socklen_t in_family(const struct sfy_addr *a, int family, struct sockaddr_storage *ss)
{
	if (a->type == SFY_ATYP_DOMAIN || (family == AF_INET && a->type != SFY_ATYP_IPV4))
		return 0;
	int n = sfy_addr_to_sockaddr(a, family, ss);
	return n > 0 ? (socklen_t)n : 0;
}

static bool zero_ip(const struct sfy_addr *a)
{
	static const uint8_t z[16];
	return a->type == SFY_ATYP_DOMAIN ||
	       !memcmp(a->ip, z, a->type == SFY_ATYP_IPV4 ? 4 : 16);
}

static void copy_out(const struct sockaddr_storage *ss, socklen_t n, struct sockaddr *sa,
		     socklen_t *len)
{
	memcpy(sa, ss, *len < n ? *len : n);
	*len = n;
}

/* ------------------------------------------------------------ the request */

/* Sends the BIND for p's connection and reads the first reply: 0 with
 * b->bfd, b->first, b->peer (the expected peer) set, or -errno (one line
 * logged). Not under mu. */
static int request(struct sfy_bind *b, const struct sfy_bind_proxied *p)
{
	const struct sfy_config *cfg = p->cfg;
	const struct sfy_proxy *last = &cfg->proxies[p->hops[p->nhops - 1]];
	char dst[300], hop[600];
	struct sfy_addr d = p->dst;
	d.port = 0;
	sfy_addr_format(&p->dst, dst, sizeof(dst));
	sfy_proxy_format(last, hop, sizeof(hop));
	if (last->proto == SFY_PROTO_HTTP) {
		sfy_warn("listen: active connections need a SOCKS4/SOCKS5 last hop for BIND; "
			 "hop %zu is http (%s) (EOPNOTSUPP)", p->nhops, hop);
		return -EOPNOTSUPP;
	}
	int s = private_fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (s < 0) {
		int r = -errno;
		sfy_warn("listen: BIND for %s: cannot open a socket: %s", dst, strerror(-r));
		return r;
	}
	struct sfy_chain_report rep;
	int r = sfy_chain_connect_hops(cfg, s, &d, SFY_S5_BIND, p->hops, p->nhops, &rep,
				       "BIND for an incoming connection");
	if (r < 0) {
		sfy_real()->close(s);
		return r;       /* the chain logged the line */
	}
	/* An all-zero BND is "the proxy's own address": the one its CONNECT
	 * reply showed (the side facing the peer), else the last hop as this
	 * machine reaches it. */
	struct sfy_addr first = rep.bnd;
	if (zero_ip(&first)) {
		struct sfy_addr via;
		if (p->bnd_len &&
		    sfy_addr_from_sockaddr(&via, (const struct sockaddr *)&p->bnd, p->bnd_len) == 0)
			first = via;
		else if (p->last_known)
			first = p->last_addr;
		first.port = rep.bnd.port;
	}
	socklen_t fl = in_family(&first, b->family, &b->first);
	if (!fl || zero_ip(&first) || !first.port) {
		char a[300];
		sfy_addr_format(&rep.bnd, a, sizeof(a));
		sfy_warn("listen: BIND for %s via %s: the proxy's address %s cannot be advertised "
			 "on this socket (EADDRNOTAVAIL)", dst, hop, a);
		sfy_real()->close(s);
		return -EADDRNOTAVAIL;
	}
	b->first_len = fl;
	/* The peer the accepted socket shows until the second reply says: the
	 * proxied connection's, in the listener's family. */
	struct sfy_addr pa;
	b->peer_len = 0;
	if (p->peer_len && sfy_addr_from_sockaddr(&pa, (const struct sockaddr *)&p->peer,
						  p->peer_len) == 0)
		b->peer_len = in_family(&pa, b->family, &b->peer);
	b->s4 = last->proto == SFY_PROTO_SOCKS4 || last->proto == SFY_PROTO_SOCKS4A;
	b->bfd = s;
	snprintf(b->what, sizeof(b->what), "BIND for %s via %s", dst, hop);
	if (sfy_log_level_get() >= SFY_LOG_INFO) {
		char a[300];
		sfy_addr_format(&first, a, sizeof(a));
		sfy_info("%s: the peer connects to %s", b->what, a);
	}
	return 0;
}

/* The first getsockname()/listen() of a record: sends the BIND when one is
 * due. 0: a BIND is in place (BOUND or later); 1: none (plain socket);
 * -errno: it failed (FAILED). */
static int settle(struct sfy_bind *b, int fd, bool listen_call)
{
	pthread_mutex_lock(&mu);
	while (b->st == B_TRIGGERING)
		pthread_cond_wait(&cv, &mu);
	enum bstate st = b->st;
	int err = b->err;
	enum sfy_bind_at at = b->at;
	uint16_t port = b->port;
	if (st == B_ASKED)
		b->st = B_TRIGGERING;   /* ours to decide; undone below if not due */
	pthread_mutex_unlock(&mu);
	if (st == B_FAILED)
		return err;
	if (st == B_DONE)
		return 1;
	if (st != B_ASKED)
		return 0;
	struct sfy_bind_proxied p;
	struct sfy_bind_ask ask = { .at = at, .port = port, .listen_call = listen_call,
				    .connected = connected(fd), .off = bind_off() };
	ask.have_proxied = !ask.off && !ask.connected && sfy_bind_rec_latest(&p);
	int r = sfy_bind_triggers(&ask) ? request(b, &p) : 1;
	pthread_mutex_lock(&mu);
	b->st = r == 1 ? B_ASKED : r == 0 ? B_BOUND : B_FAILED;
	b->err = r < 0 ? r : 0;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	return r;
}

/* ------------------------------------------------------------ the waiter */

/* The connector: a non-blocking socket bound to loopback in the listener's
 * family (::1, else ::ffff:127.0.0.1 for a dual-stack listener), or, for a
 * listener bound to one local address (a proxied connection's, rule
 * PROXIED), to that address; its own address in *loc and the listener's
 * address (lsn: the real listener's getsockname()) in *to. */
static int connector(const struct sockaddr_storage *lsn, socklen_t lsn_len,
		     struct sockaddr_storage *to, socklen_t *tl,
		     struct sockaddr_storage *loc, socklen_t *ll)
{
	int family = lsn->ss_family;
	uint16_t lport = sfy_sockaddr_port((const struct sockaddr *)lsn);
	int s = private_fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
	if (s < 0)
		return -errno;
	bool wild = sfy_bind_at_of((const struct sockaddr *)lsn, lsn_len, NULL, 0, NULL, 0) ==
		    SFY_BIND_AT_WILDCARD;
	memset(to, 0, sizeof(*to));
	if (!wild) {
		memcpy(to, lsn, lsn_len);
		*tl = lsn_len;
		if (family == AF_INET)
			((struct sockaddr_in *)to)->sin_port = 0;
		else
			((struct sockaddr_in6 *)to)->sin6_port = 0;
		if (sfy_real()->bind(s, (struct sockaddr *)to, *tl) < 0) {
			int r = -errno;
			sfy_real()->close(s);
			return r;
		}
	} else if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)to;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*tl = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)to;
		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_loopback;
		*tl = sizeof(*in6);
	}
	if (wild && sfy_real()->bind(s, (struct sockaddr *)to, *tl) < 0 && family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)to;
		memcpy(in6->sin6_addr.s6_addr, sfy_v4mapped_prefix, 12);
		uint32_t lo = htonl(INADDR_LOOPBACK);
		memcpy(in6->sin6_addr.s6_addr + 12, &lo, 4);
		if (sfy_real()->bind(s, (struct sockaddr *)to, *tl) < 0) {
			int r = -errno;
			sfy_real()->close(s);
			return r;
		}
	}
	*ll = sizeof(*loc);
	if (sfy_real()->getsockname(s, (struct sockaddr *)loc, ll) < 0) {
		int r = -errno;
		sfy_real()->close(s);
		return r;
	}
	if (family == AF_INET)
		((struct sockaddr_in *)to)->sin_port = htons(lport);
	else
		((struct sockaddr_in6 *)to)->sin6_port = htons(lport);
	return s;
}

/* Reads the second reply, exactly (the peer's data follows it). 0 with
 * *peer, or -errno with *why. */
static int second_reply(int bfd, int wake, bool s4, struct sfy_addr *peer, const char **why)
{
	uint8_t in[SFY_S5_REPLY_MAX];
	size_t have = 0, need = s4 ? SFY_S4_REPLY_LEN : 4;
	for (;;) {
		struct pollfd pf[2] = { { .fd = bfd, .events = POLLIN },
					{ .fd = wake, .events = POLLIN } };
		if (sfy_real()->poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			*why = "poll failed";
			return -errno;
		}
		if (pf[1].revents)
			return -ECANCELED;      /* torn down */
		ssize_t n = sfy_real()->recv(bfd, in + have, need - have, MSG_DONTWAIT);
		if (n == 0) {
			*why = "the proxy closed the connection";
			return -ECONNRESET;
		}
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			*why = "I/O error";
			return -errno;
		}
		have += (size_t)n;
		if (have < need)
			continue;
		enum sfy_parse pr;
		struct sfy_s4_reply r4;
		struct sfy_s5_reply r5;
		pr = s4 ? sfy_s4_parse_reply(in, have, &need, &r4)
			: sfy_s5_parse_reply(in, have, &need, &r5);
		if (pr == SFY_PARSE_NEED && need <= sizeof(in))
			continue;
		if (pr != SFY_PARSE_COMPLETE) {
			*why = "malformed second reply";
			return -EPROTO;
		}
		if (s4 && r4.code != SFY_S4_GRANTED) {
			*why = sfy_s4_code_str(r4.code);
			return -sfy_errno_from_s4(r4.code);
		}
		if (!s4 && r5.rep != SFY_S5_SUCCEEDED) {
			*why = sfy_s5_rep_str(r5.rep);
			return -sfy_errno_from_s5(r5.rep);
		}
		*peer = s4 ? r4.bnd : r5.bnd;
		return 0;
	}
}

static void *waiter(void *arg)
{
	struct sfy_bind *b = arg;       /* outlives us: stop_waiter() joins */
	pthread_mutex_lock(&mu);
	int bfd = b->bfd, wake = b->wake, family = b->family;
	bool s4 = b->s4;
	struct sockaddr_storage lsn = b->lsn;
	socklen_t lsn_len = b->lsn_len;
	pthread_mutex_unlock(&mu);

	struct sfy_addr peer;
	const char *why = "";
	int err = second_reply(bfd, wake, s4, &peer, &why);
	if (err == -ECANCELED)
		return NULL;
	struct sockaddr_storage to, loc, pss;
	socklen_t tl = 0, ll = 0, pl = err == 0 && !zero_ip(&peer) ? in_family(&peer, family, &pss)
								   : 0;
	int c = connector(&lsn, lsn_len, &to, &tl, &loc, &ll);
	pthread_mutex_lock(&mu);
	if (c >= 0) {
		b->cfd = c;
		b->cloc = loc;
		b->cloc_len = ll;
	}
	if (pl) {
		b->peer = pss;
		b->peer_len = pl;
	}
	b->st = err == 0 ? B_READY : B_BROKEN;
	b->err = err;
	pthread_mutex_unlock(&mu);

	if (err < 0)
		sfy_warn("%s: the second reply failed: %s (%s); accept() reports ECONNABORTED",
			 b->what, why, strerrorname_np(-err));
	else if (sfy_log_level_get() >= SFY_LOG_INFO) {
		char a[300];
		sfy_addr_format(&peer, a, sizeof(a));
		sfy_info("%s: %s connected", b->what, a);
	}
	if (c < 0) {
		sfy_warn("%s: cannot connect to the listener from loopback: %s; accept() will not "
			 "wake", b->what, strerror(-c));
		return NULL;
	}
	/* Into the listener's queue: readable for poll/epoll/select/accept. */
	if (sfy_real()->connect(c, (struct sockaddr *)&to, tl) < 0 && errno == EINPROGRESS) {
		struct pollfd pf[2] = { { .fd = c, .events = POLLOUT },
					{ .fd = wake, .events = POLLIN } };
		while (sfy_real()->poll(pf, 2, -1) < 0 && errno == EINTR)
			;
	}
	return NULL;
}

/* Listening for real at lsn (the real listener's address): starts the
 * waiter. 0 or -errno. */
static int start_waiter(struct sfy_bind *b, const struct sockaddr_storage *lsn, socklen_t lsn_len)
{
	int w = private_fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	if (w < 0)
		return -errno;
	pthread_mutex_lock(&mu);
	b->wake = w;
	b->lsn = *lsn;
	b->lsn_len = lsn_len;
	b->st = B_LISTENING;
	pthread_mutex_unlock(&mu);
	sigset_t allsig, old;
	sigfillset(&allsig);
	/* The program's signal handlers must not run on our thread. */
	pthread_sigmask(SIG_SETMASK, &allsig, &old);
	pthread_t t;
	int e = pthread_create(&t, NULL, waiter, b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_lock(&mu);
	if (e == 0) {
		b->thr = t;
		b->thread = true;
	} else {
		b->st = B_FAILED;
		b->err = -e;
		b->wake = -1;
	}
	pthread_mutex_unlock(&mu);
	if (e) {
		close_priv(&w);
		return -e;
	}
	return 0;
}

/* ------------------------------------------------------------ the hooks */

int sfy_bind_on_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	if (!sa || len < sizeof(struct sockaddr_in) ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return 1;
	int fam = tcp_family(fd);
	if (!fam || bind_off())
		return 1;
	struct sockaddr_storage handed[HANDED_MAX], locals[HANDED_MAX];
	size_t nh = sfy_bind_rec_handed(handed, HANDED_MAX);
	size_t nl = sfy_bind_rec_locals(locals, HANDED_MAX);
	enum sfy_bind_at at = sfy_bind_at_of(sa, len, handed, nh, locals, nl);
	uint16_t port = sfy_sockaddr_port(sa);
	/* A proxied connection's own local address is a real one: the real
	 * socket binds it as asked (the connector finds it there). */
	if (!((at == SFY_BIND_AT_WILDCARD || at == SFY_BIND_AT_PROXIED) && port == 0) &&
	    at != SFY_BIND_AT_HANDED)
		return 1;
	int r;
	if (at == SFY_BIND_AT_HANDED) {
		/* The proxy's address is not this machine's: the real socket
		 * binds the wildcard of its family, with the port asked for. */
		struct sockaddr_storage any;
		memset(&any, 0, sizeof(any));
		socklen_t al;
		if (sa->sa_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&any;
			in->sin_family = AF_INET;
			in->sin_port = htons(port);
			al = sizeof(*in);
		} else {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&any;
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons(port);
			al = sizeof(*in6);
		}
		r = sfy_real()->bind(fd, (struct sockaddr *)&any, al);
	} else {
		r = sfy_real()->bind(fd, sa, len);
	}
	if (r < 0)
		return -errno;
	struct sfy_bind *b = bind_new(fam, at, port);
	if (b) {
		if (at == SFY_BIND_AT_HANDED) {
			socklen_t n = len < sizeof(b->asked) ? len : sizeof(b->asked);
			memcpy(&b->asked, sa, n);
			b->asked_len = n;
		}
		sfy_fdreg_bind_set(fd, b);
		sfy_bind_put(b);
	}
	return 0;
}

int sfy_bind_on_getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct sfy_bind *b = sfy_fdreg_bind_get(fd);
	if (!b)
		return 1;
	(void)settle(b, fd, false);
	int r = 1;
	pthread_mutex_lock(&mu);
	if (b->st >= B_BOUND && b->st <= B_BROKEN) {
		copy_out(&b->first, b->first_len, sa, len);
		r = 0;
	} else if (b->st == B_ASKED && b->asked_len) {
		/* Rule 3: the address asked for, until a BIND runs. */
		struct sockaddr_storage own, out = b->asked;
		socklen_t ol = sizeof(own);
		if (sfy_real()->getsockname(fd, (struct sockaddr *)&own, &ol) == 0 &&
		    own.ss_family == out.ss_family) {
			uint16_t p = sfy_sockaddr_port((struct sockaddr *)&own);
			if (out.ss_family == AF_INET)
				((struct sockaddr_in *)&out)->sin_port = htons(p);
			else
				((struct sockaddr_in6 *)&out)->sin6_port = htons(p);
			copy_out(&out, b->asked_len, sa, len);
			r = 0;
		}
	}
	pthread_mutex_unlock(&mu);
	sfy_bind_put(b);
	return r;
}

int sfy_bind_on_listen(int fd, int backlog)
{
	struct sfy_bind *b = sfy_fdreg_bind_get(fd);
	if (!b) {
		/* A socket never bound: listen() autobinds it to the wildcard. */
		int fam;
		if (!sfy_bind_any_proxied() || !(fam = tcp_family(fd)) || bind_off())
			return 1;
		struct sockaddr_storage own;
		socklen_t ol = sizeof(own);
		if (sfy_real()->getsockname(fd, (struct sockaddr *)&own, &ol) < 0 ||
		    sfy_sockaddr_port((struct sockaddr *)&own) != 0)
			return 1;
		if (!(b = bind_new(fam, SFY_BIND_AT_NONE, 0)))
			return 1;
		if (sfy_fdreg_bind_set(fd, b) < 0) {
			sfy_bind_put(b);
			return 1;
		}
	}
	int r = settle(b, fd, true);
	if (r == 1) {
		/* No BIND due now: a plain listener for good. */
		pthread_mutex_lock(&mu);
		if (b->st == B_ASKED)
			b->st = B_DONE;
		pthread_mutex_unlock(&mu);
	}
	pthread_mutex_lock(&mu);
	bool bound = b->st == B_BOUND;
	pthread_mutex_unlock(&mu);
	if (r != 0 || !bound) {
		sfy_bind_put(b);
		return r < 0 ? r : 1;   /* listening again, or plain: the kernel's */
	}
	if (sfy_real()->listen(fd, backlog) < 0) {
		r = -errno;
		sfy_bind_put(b);
		return r;
	}
	struct sockaddr_storage own;
	socklen_t ol = sizeof(own);
	if (sfy_real()->getsockname(fd, (struct sockaddr *)&own, &ol) < 0)
		r = -errno;
	else
		r = start_waiter(b, &own, ol);
	if (r < 0)
		sfy_warn("listen: %s: cannot wait for the peer: %s", b->what, strerror(-r));
	sfy_bind_put(b);
	return r;
}

/* Is the connection the kernel accepted from peer our connector's? */
static bool is_connector(const struct sfy_bind *b, const struct sockaddr_storage *peer,
			 socklen_t pl)
{
	struct sfy_addr x, y;
	return b->cloc_len && pl &&
	       sfy_addr_from_sockaddr(&x, (const struct sockaddr *)peer, pl) == 0 &&
	       sfy_addr_from_sockaddr(&y, (const struct sockaddr *)&b->cloc, b->cloc_len) == 0 &&
	       x.type == y.type && x.port == y.port &&
	       !memcmp(x.ip, y.ip, x.type == SFY_ATYP_IPV4 ? 4 : 16);
}

/* The BIND connection goes under nfd (the kernel's fresh descriptor of the
 * connector's other end), with the flags accept4() was asked for. */
static int move_under(int bfd, int nfd, int flags)
{
	if (sfy_real()->dup3(bfd, nfd, flags & SOCK_CLOEXEC ? O_CLOEXEC : 0) < 0)
		return -errno;
	int fl = sfy_real()->fcntl(nfd, F_GETFL);
	if (fl >= 0) {
		int want = flags & SOCK_NONBLOCK ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
		if (want != fl)
			sfy_real()->fcntl(nfd, F_SETFL, want);
	}
	return 0;
}

int sfy_bind_on_accept(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	struct sfy_bind *b = sfy_fdreg_bind_get(fd);
	if (!b)
		return 1;
	pthread_mutex_lock(&mu);
	bool ours = b->st >= B_LISTENING && b->st <= B_BROKEN;
	pthread_mutex_unlock(&mu);
	if (!ours) {
		sfy_bind_put(b);
		return 1;
	}
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int nfd = sfy_real()->accept4(fd, (struct sockaddr *)&ss, &sl, flags);
		if (nfd < 0) {
			int r = -errno;
			sfy_bind_put(b);
			return r;
		}
		pthread_mutex_lock(&mu);
		enum bstate st = b->st;
		bool mine = (st == B_READY || st == B_BROKEN) && is_connector(b, &ss, sl);
		int bfd = -1;
		if (mine) {
			bfd = b->bfd;
			b->bfd = -1;
			b->st = B_DONE;         /* a plain listener from now on */
		}
		pthread_mutex_unlock(&mu);
		if (!mine) {
			if (st == B_DONE) {     /* a plain listener now (fork, another thread) */
				if (sa && len)
					copy_out(&ss, sl, sa, len);
				sfy_bind_put(b);
				return nfd;
			}
			/* Someone reached the real wildcard port directly: not the
			 * peer the program advertised to. As if it had not come. */
			sfy_real()->close(nfd);
			continue;
		}
		stop_waiter(b);
		int r = st == B_BROKEN ? -ECONNABORTED : move_under(bfd, nfd, flags);
		close_priv(&bfd);
		if (r < 0) {
			sfy_real()->close(nfd);
			sfy_bind_put(b);
			return r;
		}
		sfy_fdreg_close(nfd);   /* whatever an earlier socket left there */
		pthread_mutex_lock(&mu);
		struct sockaddr_storage peer = b->peer;
		socklen_t pl = b->peer_len;
		pthread_mutex_unlock(&mu);
		if (pl) {
			sfy_fdreg_peer_set(nfd, (struct sockaddr *)&peer, pl);
			if (sa && len)
				copy_out(&peer, pl, sa, len);
		} else if (sa && len) {
			*len = 0;
		}
		sfy_bind_put(b);
		return nfd;
	}
}
