/* A listening socket's BIND after listen() (bind_wait.h): a thread waits
 * for the second reply; when it comes (or fails) the thread connects a
 * private loopback socket to the real listener, so the kernel itself makes
 * it readable for poll/epoll/select/accept; accept()/accept4() recognise
 * that connection and move the BIND connection under the descriptor the
 * kernel gave it. The states are described in bind.c. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bind.h"
#include "bind_wait.h"
#include "errmap.h"
#include "fdreg.h"
#include "log.h"
#include "real.h"
#include "sock.h"
#include "socks4.h"
#include "socks5.h"
#include "thread.h"

/* Ends the waiter (a wake-up, then a join: it never blocks on anything
 * else) and closes the connector. Not under sfy_bind_mu. */
void sfy_bind_stop_waiter(struct sfy_bind *b)
{
	sfy_bind_lock();
	bool th = b->thread;
	pthread_t t = b->thr;
	b->thread = false;
	if (b->running) {
		uint64_t one = 1;
		int e = errno;
		b->stop = true;
		(void)sfy_real()->write(b->wake, &one, sizeof(one));
		errno = e;
	}
	sfy_bind_unlock();
	if (th)
		pthread_join(t, NULL);
	sfy_bind_lock();
	sfy_bind_close_priv(&b->cfd);
	sfy_bind_close_priv(&b->wake);
	sfy_bind_unlock();
}

/* The connector: a non-blocking socket bound to loopback in the listener's
 * family (::1, else ::ffff:127.0.0.1 for a dual-stack listener), or, for a
 * listener bound to one local address (a proxied connection's, rule
 * PROXIED), to that address; its own address in *loc and the listener's
 * address (lsn: the real listener's getsockname()) in *to. Made at
 * listen(), connected when the second reply is in. */
static int connector(const struct sockaddr_storage *lsn, socklen_t lsn_len,
		     struct sockaddr_storage *to, socklen_t *tl,
		     struct sockaddr_storage *loc, socklen_t *ll)
{
	int family = lsn->ss_family;
	uint16_t lport = sfy_sockaddr_port((const struct sockaddr *)lsn);
	int s = sfy_private_fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
	if (s < 0)
		return -errno;
	bool wild = sfy_bind_at_of((const struct sockaddr *)lsn, lsn_len, NULL, 0, NULL, 0) ==
		    SFY_BIND_AT_WILDCARD;
	memset(to, 0, sizeof(*to));
	if (!wild) {
		memcpy(to, lsn, lsn_len);
		*tl = lsn_len;
		sfy_sockaddr_set_port((struct sockaddr *)to, 0);
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
	sfy_sockaddr_set_port((struct sockaddr *)to, lport);
	return s;
}

/* Waits until our descriptor (the BIND connection, or the connector when
 * conn) has events: 1 with *fdp its number now, -ECANCELED when the waiter
 * is to return (or the descriptor is gone), -errno. The numbers are read
 * under the lock every time: when the program closes or dup2()s over one
 * of them, sfy_bind_evict() moves ours, bumps gen and wakes us, and waits
 * for this ack before the old number goes -- so the number *fdp stays ours
 * until the next call. */
static int await(struct sfy_bind *b, bool conn, short events, int *fdp)
{
	for (;;) {
		sfy_bind_lock();
		int fd = conn ? b->cfd : b->bfd, wake = b->wake;
		bool stop = b->stop;
		sfy_bind_unlock();
		if (stop || fd < 0 || wake < 0)
			return -ECANCELED;
		struct pollfd pf[2] = { { .fd = fd, .events = events },
					{ .fd = wake, .events = POLLIN } };
		if (sfy_real()->poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pf[1].revents) {
			sfy_bind_lock();
			if (b->stop) {
				sfy_bind_unlock();
				return -ECANCELED;
			}
			uint64_t v;
			if (b->wake >= 0)
				(void)sfy_real()->read(b->wake, &v, sizeof(v));
			b->seen = b->gen;
			pthread_cond_broadcast(&sfy_bind_cv);
			sfy_bind_unlock();
			continue;
		}
		*fdp = fd;
		return 1;
	}
}

/* Reads the second reply, exactly (the peer's data follows it). 0 with
 * *peer, or -errno with *why. */
static int second_reply(struct sfy_bind *b, bool s4, struct sfy_addr *peer, const char **why)
{
	uint8_t in[SFY_S5_REPLY_MAX];
	size_t have = 0, need = s4 ? SFY_S4_REPLY_LEN : 4;
	for (;;) {
		int bfd, w = await(b, false, POLLIN, &bfd);
		if (w < 0) {
			*why = "poll failed";
			return w;
		}
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

/* Connects the connector to the listener: 0 once it is in the listener's
 * queue, -ECANCELED, or -errno (it cannot reach the listener). */
static int connect_connector(struct sfy_bind *b)
{
	sfy_bind_lock();
	int c = b->cfd;
	struct sockaddr_storage to = b->cto;
	socklen_t tl = b->cto_len;
	sfy_bind_unlock();
	if (c < 0)
		return -ECANCELED;
	if (sfy_real()->connect(c, (struct sockaddr *)&to, tl) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -errno;
	int w = await(b, true, POLLOUT, &c);
	if (w < 0)
		return w;
	int err = 0;
	socklen_t el = sizeof(err);
	if (sfy_real()->getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		return -errno;
	return -err;
}

/* Under the lock: no connector will come (accept() reports ECONNABORTED
 * at once). */
static void no_connector(struct sfy_bind *b)
{
	sfy_bind_close_priv(&b->cfd);
	b->cloc_len = 0;
	b->st = B_BROKEN;
}

static void *waiter(void *arg)
{
	struct sfy_bind *b = arg;       /* outlives us: sfy_bind_stop_waiter() joins */
	sfy_bind_lock();
	int family = b->family;
	bool s4 = b->s4;
	sfy_bind_unlock();

	struct sfy_addr peer;
	const char *why = "";
	int err = second_reply(b, s4, &peer, &why);
	struct sockaddr_storage pss;
	socklen_t pl = err == 0 && !sfy_bind_zero_ip(&peer) ? sfy_bind_in_family(&peer, family, &pss)
							    : 0;
	sfy_bind_lock();
	if (err == -ECANCELED) {
		/* Told to stop (close, fork, the program's close_range), or our
		 * descriptor was lost to the program's close(). */
		if (!b->stop)
			no_connector(b);
		b->running = false;
		pthread_cond_broadcast(&sfy_bind_cv);
		sfy_bind_unlock();
		return NULL;
	}
	if (pl) {
		b->peer = pss;
		b->peer_len = pl;
	}
	b->st = err == 0 ? B_READY : B_BROKEN;
	int cerr = b->cfd < 0 ? b->cerr : 0;
	if (cerr)
		no_connector(b);
	sfy_bind_unlock();

	if (err < 0)
		sfy_warn("%s: the second reply failed: %s (%s); accept() reports ECONNABORTED",
			 b->what, why, strerrorname_np(-err));
	else if (sfy_log_level_get() >= SFY_LOG_INFO) {
		char a[300];
		sfy_addr_format(&peer, a, sizeof(a));
		sfy_info("%s: %s connected", b->what, a);
	}
	/* Into the listener's queue: readable for poll/epoll/select/accept. */
	int c = cerr ? cerr : connect_connector(b);
	sfy_bind_lock();
	/* -ECANCELED without stop: the connector's number was lost. */
	bool lost = c < 0 && !(c == -ECANCELED && b->stop);
	if (lost)
		no_connector(b);
	b->running = false;
	pthread_cond_broadcast(&sfy_bind_cv);
	sfy_bind_unlock();
	if (lost)
		sfy_warn("%s: cannot connect to the listener from loopback: %s; the next accept() "
			 "reports ECONNABORTED", b->what, strerror(-c));
	return NULL;
}

/* Listening for real at lsn (the real listener's address): makes the
 * connector and starts the waiter. 0 or -errno. */
int sfy_bind_start_waiter(struct sfy_bind *b, const struct sockaddr_storage *lsn, socklen_t lsn_len)
{
	int w = sfy_private_fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	if (w < 0)
		return -errno;
	struct sockaddr_storage to, loc;
	socklen_t tl = 0, ll = 0;
	int c = connector(lsn, lsn_len, &to, &tl, &loc, &ll);
	sfy_bind_lock();
	b->wake = w;
	if (c >= 0) {
		b->cfd = c;
		b->cto = to;
		b->cto_len = tl;
		b->cloc = loc;
		b->cloc_len = ll;
	} else {
		b->cerr = c;    /* said when the second reply is in */
	}
	b->st = B_LISTENING;
	b->running = true;
	sfy_bind_unlock();
	pthread_t t;
	int e = sfy_thread_start(&t, NULL, waiter, b);
	sfy_bind_lock();
	if (e == 0) {
		b->thr = t;
		b->thread = true;
	} else {
		b->running = false;
		pthread_cond_broadcast(&sfy_bind_cv);
		b->st = B_FAILED;
		b->err = -e;
		sfy_bind_close_priv(&b->wake);
		sfy_bind_close_priv(&b->cfd);
		b->cloc_len = 0;
	}
	sfy_bind_unlock();
	return -e;
}

/* Is the connection the kernel accepted from peer our connector's? An
 * IPv4 address and its v4-mapped form are the same; no connector
 * (cloc_len 0) matches nothing. */
static bool is_connector(const struct sfy_bind *b, const struct sockaddr_storage *peer,
			 socklen_t pl)
{
	const struct sockaddr *p = (const struct sockaddr *)peer,
			      *c = (const struct sockaddr *)&b->cloc;
	return sfy_bind_same_ip(p, pl, c, b->cloc_len) &&
	       sfy_sockaddr_port(p) == sfy_sockaddr_port(c);
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

/* The BIND is over (accepted, or reported): the waiter ended, the BIND
 * connection either under nfd (>= 0: dup3 with the caller's flags) or
 * closed. 0 or -errno. */
static int finish(struct sfy_bind *b, int nfd, int flags)
{
	sfy_bind_stop_waiter(b);
	int r = 0;
	sfy_bind_lock();
	/* Under the lock: the number is ours until closed (sfy_bind_evict). */
	if (nfd >= 0)
		r = b->bfd >= 0 ? move_under(b->bfd, nfd, flags) : -ECONNABORTED;
	sfy_bind_close_priv(&b->bfd);
	sfy_bind_unlock();
	return r;
}

int sfy_bind_on_accept(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	struct sfy_bind *b = sfy_fdreg_bind_get(fd);
	if (!b)
		return 1;
	sfy_bind_lock();
	bool ours = b->st >= B_LISTENING && b->st <= B_BROKEN;
	/* No connector will wake the listener: say so now rather than wait
	 * for nothing. */
	bool gone = b->st == B_BROKEN && !b->cloc_len;
	if (gone)
		b->st = B_DONE;
	sfy_bind_unlock();
	if (!ours) {
		sfy_bind_put(b);
		return 1;
	}
	if (gone) {
		(void)finish(b, -1, 0);
		sfy_bind_put(b);
		return -ECONNABORTED;
	}
	if (sa && !len) {
		/* The kernel's answer, before anything is taken off the queue. */
		sfy_bind_put(b);
		return -EFAULT;
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
		sfy_bind_lock();
		enum bstate st = b->st;
		bool mine = (st == B_READY || st == B_BROKEN) && is_connector(b, &ss, sl);
		if (mine)
			b->st = B_DONE;         /* a plain listener from now on */
		sfy_bind_unlock();
		if (!mine) {
			if (st == B_DONE) {     /* a plain listener now (fork, another thread) */
				if (sa && len)
					sfy_bind_copy_out(&ss, sl, sa, len);
				sfy_bind_put(b);
				return nfd;
			}
			/* Someone reached the real wildcard port directly: not the
			 * peer the program advertised to. As if it had not come. */
			sfy_real()->close(nfd);
			continue;
		}
		int r = finish(b, st == B_BROKEN ? -1 : nfd, flags);
		if (st == B_BROKEN || r < 0) {
			sfy_real()->close(nfd);
			sfy_bind_put(b);
			return st == B_BROKEN ? -ECONNABORTED : r;
		}
		sfy_fdreg_close(nfd);   /* whatever an earlier socket left there */
		sfy_bind_lock();
		struct sockaddr_storage peer = b->peer;
		socklen_t pl = b->peer_len;
		sfy_bind_unlock();
		if (pl) {
			sfy_fdreg_peer_set(nfd, (struct sockaddr *)&peer, pl);
		} else {
			/* No peer known: the proxy's end, as the kernel has it. */
			pl = sizeof(peer);
			if (sfy_real()->getpeername(nfd, (struct sockaddr *)&peer, &pl) < 0)
				pl = 0;
		}
		if (sa && len && pl)
			sfy_bind_copy_out(&peer, pl, sa, len);
		sfy_bind_put(b);
		return nfd;
	}
}
