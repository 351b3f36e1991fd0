/* A listening socket's SOCKS BIND (bind.h): its record, bind(),
 * getsockname(), and the request inside the triggering call up to
 * listen(). The wait for the second reply on a thread, the loopback
 * connector that makes the real listener readable, and the move of the
 * BIND connection under the descriptor accept() returns are in
 * bind_wait.c.
 *
 * States (under sfy_bind_mu; the record is in bind_wait.h):
 *   ASKED       bound to port 0 at the wildcard, a handed-out address or
 *               a proxied connection's local one (or a never-bound socket
 *               at listen()); nothing sent
 *   TRIGGERING  a thread is sending the BIND request; others wait on cv
 *   FAILED      the BIND could not be had: listen() fails with err,
 *               getsockname() is the kernel's
 *   BOUND       the first reply is in: getsockname() shows it
 *   LISTENING   listening for real; the waiter thread reads the second reply
 *   READY       the second reply said the peer connected: the connector
 *               (cloc) is on its way into the listener's queue
 *   BROKEN      the second reply failed: likewise, for accept() to report
 *               ECONNABORTED; without a connector (cloc_len 0: it could
 *               not be made or connect, or the program closed our
 *               numbers) the next accept() reports it before waiting
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
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bind.h"
#include "bind_rec.h"
#include "bind_wait.h"
#include "fdreg.h"
#include "log.h"
#include "proxy_url.h"
#include "real.h"
#include "sock.h"
#include "socks5.h"
#include "state.h"

/* The handed-out addresses bind() compares against. */
#define HANDED_MAX SFY_BIND_REC_N

pthread_mutex_t sfy_bind_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t sfy_bind_cv = PTHREAD_COND_INITIALIZER;
#define cv sfy_bind_cv
static struct sfy_bind *all;
static atomic_int nrec;                 /* records in all: close()'s fast path */
static pthread_once_t once = PTHREAD_ONCE_INIT;
/* This thread holds sfy_bind_mu (or waits on cv with it): a signal
 * handler's close() here must not take it again. */
static __thread bool holding;
/* The record whose BIND request this thread is sending (its rfd is in the
 * chain's hands): a signal handler's close() must not wait for it. */
static __thread struct sfy_bind *requesting;

void sfy_bind_lock(void)
{
	pthread_mutex_lock(&sfy_bind_mu);
	holding = true;
}

void sfy_bind_unlock(void)
{
	holding = false;
	pthread_mutex_unlock(&sfy_bind_mu);
}

/* ------------------------------------------------------------ fork */

static void at_prepare(void) { sfy_bind_lock(); }
static void at_parent(void) { sfy_bind_unlock(); }

void sfy_bind_close_priv(int *fd)
{
	if (*fd >= 0)
		sfy_real()->close(*fd);
	*fd = -1;
}

/* The parent's BINDs stay the parent's (see the top of the file). */
static void at_child(void)
{
	holding = false;
	pthread_mutex_init(&sfy_bind_mu, NULL);
	pthread_cond_init(&cv, NULL);
	for (struct sfy_bind *b = all; b; b = b->next) {
		sfy_bind_close_priv(&b->rfd);
		sfy_bind_close_priv(&b->bfd);
		sfy_bind_close_priv(&b->cfd);
		sfy_bind_close_priv(&b->wake);
		b->thread = b->running = false;
		if (b->st != B_ASKED && b->st != B_FAILED)
			b->st = B_DONE;
	}
}

static void setup(void)
{
	pthread_atfork(at_prepare, at_parent, at_child);
}

/* ------------------------------------------------------------ records */

static struct sfy_bind *bind_new(int family, enum sfy_bind_at at)
{
	pthread_once(&once, setup);
	struct sfy_bind *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	atomic_init(&b->refs, 1);
	b->st = B_ASKED;
	b->family = family;
	b->at = at;
	b->rfd = b->bfd = b->cfd = b->wake = -1;
	sfy_bind_lock();
	b->next = all;
	if (all)
		all->prev = b;
	all = b;
	atomic_fetch_add(&nrec, 1);
	sfy_bind_unlock();
	return b;
}

struct sfy_bind *sfy_bind_ref(struct sfy_bind *b)
{
	if (b)
		atomic_fetch_add(&b->refs, 1);
	return b;
}

void sfy_bind_put(struct sfy_bind *b)
{
	if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
		return;
	int e = errno;
	sfy_bind_stop_waiter(b);
	sfy_bind_lock();
	if (b->prev)
		b->prev->next = b->next;
	else
		all = b->next;
	if (b->next)
		b->next->prev = b->prev;
	atomic_fetch_sub(&nrec, 1);
	sfy_bind_close_priv(&b->bfd);
	sfy_bind_close_priv(&b->rfd);
	sfy_bind_unlock();
	free(b);
	errno = e;
}

/* ------------------------------------------------------------ our numbers */

/* Is b still a record (after a wait on cv: it may have been freed)? */
static bool listed(const struct sfy_bind *b)
{
	for (const struct sfy_bind *x = all; x; x = x->next)
		if (x == b)
			return true;
	return false;
}

/* Under the lock: until b's waiter has taken new numbers (or returned).
 * False when b went away meanwhile. */
static bool wait_ack(struct sfy_bind *b)
{
	while (b->running && b->seen != b->gen) {
		pthread_cond_wait(&cv, &sfy_bind_mu);
		if (!listed(b))
			return false;
	}
	return true;
}

/* Under the lock: b's BIND request has its socket (rfd) in the chain's
 * hands on another thread: wait for it to end (bounded by the handshake
 * timeout); its socket is then bfd, or closed. */
static bool request_busy(const struct sfy_bind *b, int fd)
{
	return b->rfd >= 0 && b->st == B_TRIGGERING && requesting != b &&
	       (fd < 0 || b->rfd == fd);
}

/* Under the lock: b's descriptors numbered fd move to a new number (the
 * old stays open for the program's close()/dup2() to end); the waiter is
 * told and acknowledges before the old number goes. Whether any did. */
static bool move_locked(struct sfy_bind *b, int fd)
{
	int *slot[] = { &b->bfd, &b->cfd, &b->wake };
	int w = b->wake;        /* the eventfd, at its old number if it moves */
	bool hit = false;
	for (size_t i = 0; i < sizeof(slot) / sizeof(slot[0]); i++) {
		if (*slot[i] != fd)
			continue;
		int n = sfy_real()->fcntl(fd, F_DUPFD_CLOEXEC, SFY_PRIVATE_FD_MIN);
		*slot[i] = n;   /* -1: lost with the old number; the waiter gives up */
		hit = true;
	}
	if (hit && b->running) {
		uint64_t one = 1;
		b->gen++;
		(void)sfy_real()->write(b->wake >= 0 ? b->wake : w, &one, sizeof(one));
		(void)wait_ack(b);
	}
	return hit;
}

void sfy_bind_evict(int fd)
{
	if (fd < SFY_PRIVATE_FD_MIN || !atomic_load_explicit(&nrec, memory_order_relaxed) ||
	    holding || !sfy_fdreg_owner())
		return;
	int e = errno;
	sfy_bind_lock();
	/* Every wait may change the list: look again from the start. A move
	 * leaves no descriptor of that number, so this ends. */
	for (struct sfy_bind *b = all; b;) {
		if (request_busy(b, fd)) {
			pthread_cond_wait(&cv, &sfy_bind_mu);
			b = all;
		} else if (move_locked(b, fd)) {
			b = all;
		} else {
			b = b->next;
		}
	}
	sfy_bind_unlock();
	errno = e;
}

static bool in_range(int fd, unsigned first, unsigned last)
{
	return fd >= 0 && (unsigned)fd >= first && (unsigned)fd <= last;
}

/* Under the lock: b's waiter returns (without a word: the program closes
 * its numbers) and accept() reports ECONNABORTED. True if it had to wait
 * (the list may have changed). */
static bool halt_locked(struct sfy_bind *b)
{
	if (b->running) {
		uint64_t one = 1;
		b->stop = true;
		(void)sfy_real()->write(b->wake, &one, sizeof(one));
		while (b->running && listed(b))
			pthread_cond_wait(&cv, &sfy_bind_mu);
		return true;
	}
	if (b->st >= B_BOUND && b->st <= B_READY)
		b->st = B_BROKEN;
	b->cloc_len = 0;        /* no connector on its way: accept() says so */
	return false;
}

int sfy_bind_guarded_in(unsigned first, unsigned last, int out[], int max, bool closing)
{
	if (last < SFY_PRIVATE_FD_MIN || !atomic_load_explicit(&nrec, memory_order_relaxed) ||
	    holding || !sfy_fdreg_owner())
		return 0;
	int e = errno, n = 0;
	sfy_bind_lock();
again:
	n = 0;
	for (struct sfy_bind *b = all; b; b = b->next) {
		if (request_busy(b, -1) && in_range(b->rfd, first, last)) {
			pthread_cond_wait(&cv, &sfy_bind_mu);
			goto again;
		}
		int *slot[] = { &b->rfd, &b->bfd, &b->cfd, &b->wake }, k = 0;
		for (size_t i = 0; i < sizeof(slot) / sizeof(slot[0]); i++)
			k += in_range(*slot[i], first, last);
		if (!k)
			continue;
		if (n + k <= max) {
			for (size_t i = 0; i < sizeof(slot) / sizeof(slot[0]); i++)
				if (in_range(*slot[i], first, last))
					out[n++] = *slot[i];
		} else if (closing) {
			/* Past what we keep: they close with the program's range. */
			if (halt_locked(b))
				goto again;     /* once more, the waiter gone */
			for (size_t i = 0; i < sizeof(slot) / sizeof(slot[0]); i++)
				if (in_range(*slot[i], first, last))
					*slot[i] = -1;
		}
	}
	sfy_bind_unlock();
	errno = e;
	return n;
}

/* ------------------------------------------------------------ helpers */

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
socklen_t sfy_bind_in_family(const struct sfy_addr *a, int family, struct sockaddr_storage *ss)
{
	if (a->type == SFY_ATYP_DOMAIN || (family == AF_INET && a->type != SFY_ATYP_IPV4))
		return 0;
	int n = sfy_addr_to_sockaddr(a, family, ss);
	return n > 0 ? (socklen_t)n : 0;
}

bool sfy_bind_zero_ip(const struct sfy_addr *a)
{
	static const uint8_t z[16];
	return a->type == SFY_ATYP_DOMAIN ||
	       !memcmp(a->ip, z, a->type == SFY_ATYP_IPV4 ? 4 : 16);
}

void sfy_bind_copy_out(const struct sockaddr_storage *ss, socklen_t n, struct sockaddr *sa,
		     socklen_t *len)
{
	memcpy(sa, ss, *len < n ? *len : n);
	*len = n;
}

/* ------------------------------------------------------------ the request */

/* Under the lock: the request's socket closed (a failed request). */
static void drop_rfd(struct sfy_bind *b)
{
	sfy_bind_lock();
	sfy_bind_close_priv(&b->rfd);
	sfy_bind_unlock();
}

/* Sends the BIND for p's connection and reads the first reply: 0 with
 * b->rfd (the BIND connection), b->first, b->peer (the expected peer)
 * set, or -errno (one line logged). Not under sfy_bind_mu. */
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
	/* In the listener's family: accept() puts this connection under the
	 * descriptor of a connection to the listener, and the program expects
	 * that family of it (getsockname(), IPV6_* options). A dual-stack
	 * AF_INET6 socket reaches an IPv4 hop v4-mapped (the chain does it). */
	int s = sfy_private_fd(socket(b->family, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (s < 0) {
		int r = -errno;
		sfy_warn("listen: BIND for %s: cannot open a socket: %s", dst, strerror(-r));
		return r;
	}
	if (b->family == AF_INET6) {
		int off = 0;
		(void)setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	}
	sfy_bind_lock();
	b->rfd = s;     /* from now on the number is guarded (sfy_bind_evict) */
	sfy_bind_unlock();
	struct sfy_chain_report rep;
	int r = sfy_chain_connect_hops(cfg, s, &d, SFY_S5_BIND, p->hops, p->nhops, &rep,
				       "BIND for an incoming connection");
	if (r < 0) {
		drop_rfd(b);
		return r;       /* the chain logged the line */
	}
	/* An all-zero BND is "the proxy's own address": the one its CONNECT
	 * reply showed (the side facing the peer), else the last hop as this
	 * machine reaches it. */
	struct sfy_addr first = rep.bnd;
	if (sfy_bind_zero_ip(&first)) {
		struct sfy_addr via;
		if (p->bnd_len &&
		    sfy_addr_from_sockaddr(&via, (const struct sockaddr *)&p->bnd, p->bnd_len) == 0)
			first = via;
		else if (p->last_known)
			first = p->last_addr;
		first.port = rep.bnd.port;
	}
	socklen_t fl = sfy_bind_in_family(&first, b->family, &b->first);
	if (!fl || sfy_bind_zero_ip(&first) || !first.port) {
		char a[300];
		sfy_addr_format(&rep.bnd, a, sizeof(a));
		sfy_warn("listen: BIND for %s via %s: the proxy's address %s cannot be advertised "
			 "on this socket (EADDRNOTAVAIL)", dst, hop, a);
		drop_rfd(b);
		return -EADDRNOTAVAIL;
	}
	b->first_len = fl;
	/* The peer the accepted socket shows until the second reply says: the
	 * proxied connection's, in the listener's family. */
	struct sfy_addr pa;
	b->peer_len = 0;
	if (p->peer_len && sfy_addr_from_sockaddr(&pa, (const struct sockaddr *)&p->peer,
						  p->peer_len) == 0)
		b->peer_len = sfy_bind_in_family(&pa, b->family, &b->peer);
	b->s4 = last->proto == SFY_PROTO_SOCKS4 || last->proto == SFY_PROTO_SOCKS4A;
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
	sfy_bind_lock();
	while (b->st == B_TRIGGERING)
		pthread_cond_wait(&cv, &sfy_bind_mu);
	enum bstate st = b->st;
	int err = b->err;
	enum sfy_bind_at at = b->at;
	struct sockaddr_storage asked = b->asked;
	socklen_t asked_len = b->asked_len;
	if (st == B_ASKED)
		b->st = B_TRIGGERING;   /* ours to decide; undone below if not due */
	sfy_bind_unlock();
	if (st == B_FAILED)
		return err;
	if (st == B_DONE)
		return 1;
	if (st != B_ASKED)
		return 0;
	struct sfy_bind_proxied p;
	/* Port 0: a record is only made for it (sfy_bind_on_bind). */
	struct sfy_bind_ask ask = { .at = at, .port = 0, .listen_call = listen_call,
				    .connected = connected(fd), .off = bind_off() };
	ask.have_proxied = !ask.off && !ask.connected &&
			   sfy_bind_rec_pick(at, (struct sockaddr *)&asked, asked_len, &p);
	int r = 1;
	if (sfy_bind_triggers(&ask)) {
		requesting = b;
		r = request(b, &p);
		requesting = NULL;
	}
	sfy_bind_lock();
	if (r == 0) {
		b->bfd = b->rfd;
		b->rfd = -1;
	}
	b->st = r == 1 ? B_ASKED : r == 0 ? B_BOUND : B_FAILED;
	b->err = r < 0 ? r : 0;
	pthread_cond_broadcast(&cv);
	sfy_bind_unlock();
	return r;
}

/* ------------------------------------------------------------ the hooks */

int sfy_bind_on_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	if (!sfy_sockaddr_is_inet(sa, len))
		return 1;
	/* Only port 0 is a BIND's: a fixed port is a server's, whatever the
	 * address (the kernel's bind, which says EADDRNOTAVAIL for an address
	 * that is not this machine's, as without socksify). */
	if (sfy_sockaddr_port(sa) != 0)
		return 1;
	/* The wildcard and loopback kinds come before the lists (bind.h):
	 * loopback is never a BIND's, and only another address needs the
	 * lists (a lock and an fstat() per record). */
	enum sfy_bind_at at = sfy_bind_at_of(sa, len, NULL, 0, NULL, 0);
	if (at == SFY_BIND_AT_LOOPBACK)
		return 1;
	/* TCP first: bind_off() loads the configuration, which bind() of any
	 * other socket never does. */
	int fam = tcp_family(fd);
	if (!fam || bind_off())
		return 1;
	if (at == SFY_BIND_AT_OTHER) {
		struct sockaddr_storage handed[HANDED_MAX], locals[HANDED_MAX];
		size_t nh = sfy_bind_rec_handed(handed, HANDED_MAX);
		size_t nl = sfy_bind_rec_locals(locals, HANDED_MAX);
		at = sfy_bind_at_of(sa, len, handed, nh, locals, nl);
		if (at != SFY_BIND_AT_HANDED && at != SFY_BIND_AT_PROXIED)
			return 1;
	}
	/* The address asked for when it is this machine's (a proxied
	 * connection's own local address; a handed-out one when the proxy
	 * runs here): the connector finds the listener there. */
	bool moved = false;
	int r = sfy_real()->bind(fd, sa, len);
	if (r < 0 && errno == EADDRNOTAVAIL && at == SFY_BIND_AT_HANDED) {
		/* The proxy's address is not this machine's: the real socket
		 * binds the wildcard of its family, port 0. */
		struct sockaddr_storage any;
		memset(&any, 0, sizeof(any));
		any.ss_family = sa->sa_family;
		r = sfy_real()->bind(fd, (struct sockaddr *)&any,
				     sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
							      : sizeof(struct sockaddr_in6));
		moved = true;
	}
	if (r < 0)
		return -errno;
	struct sfy_bind *b = bind_new(fam, at);
	if (b) {
		if (at != SFY_BIND_AT_WILDCARD) {
			/* By family, as the kernel would say it: the caller's
			 * length may be a sockaddr_storage's. */
			socklen_t n = sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
							       : sizeof(struct sockaddr_in6);
			memcpy(&b->asked, sa, n);
			b->asked_len = n;
			b->moved = moved;
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
	sfy_bind_lock();
	if (b->st >= B_BOUND && b->st <= B_BROKEN) {
		sfy_bind_copy_out(&b->first, b->first_len, sa, len);
		r = 0;
	} else if (b->st == B_ASKED && b->moved) {
		/* Rule 3: the address asked for, until a BIND runs. */
		struct sockaddr_storage own, out = b->asked;
		socklen_t ol = sizeof(own);
		if (sfy_real()->getsockname(fd, (struct sockaddr *)&own, &ol) == 0 &&
		    own.ss_family == out.ss_family) {
			sfy_sockaddr_set_port((struct sockaddr *)&out,
					      sfy_sockaddr_port((struct sockaddr *)&own));
			sfy_bind_copy_out(&out, b->asked_len, sa, len);
			r = 0;
		}
	}
	sfy_bind_unlock();
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
		if (!(b = bind_new(fam, SFY_BIND_AT_NONE)))
			return 1;
		if (sfy_fdreg_bind_set(fd, b) < 0) {
			sfy_bind_put(b);
			return 1;
		}
	}
	int r = settle(b, fd, true);
	if (r == 1) {
		/* No BIND due now: a plain listener for good. */
		sfy_bind_lock();
		if (b->st == B_ASKED)
			b->st = B_DONE;
		sfy_bind_unlock();
	}
	sfy_bind_lock();
	bool bound = b->st == B_BOUND;
	sfy_bind_unlock();
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
		r = sfy_bind_start_waiter(b, &own, ol);
	if (r < 0)
		sfy_warn("listen: %s: cannot wait for the peer: %s", b->what, strerror(-r));
	sfy_bind_put(b);
	return r;
}
