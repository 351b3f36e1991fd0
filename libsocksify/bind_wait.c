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

/* Ends the waiter (a wake-up, then a join: it never blocks on anything
 * else) and closes the connector. Not under sfy_bind_mu. */
void sfy_bind_stop_waiter(struct sfy_bind *b)
{
	pthread_mutex_lock(&sfy_bind_mu);
	bool th = b->thread;
	pthread_t t = b->thr;
	b->thread = false;
	int wake = b->wake;
	pthread_mutex_unlock(&sfy_bind_mu);
	if (th) {
		uint64_t one = 1;
		int e = errno;
		(void)sfy_real()->write(wake, &one, sizeof(one));
		pthread_join(t, NULL);
		errno = e;
	}
	pthread_mutex_lock(&sfy_bind_mu);
	int c = b->cfd, w = b->wake;
	b->cfd = b->wake = -1;
	pthread_mutex_unlock(&sfy_bind_mu);
	sfy_bind_close_priv(&c);
	sfy_bind_close_priv(&w);
}

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
	int s = sfy_bind_private_fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
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
	struct sfy_bind *b = arg;       /* outlives us: sfy_bind_stop_waiter() joins */
	pthread_mutex_lock(&sfy_bind_mu);
	int bfd = b->bfd, wake = b->wake, family = b->family;
	bool s4 = b->s4;
	struct sockaddr_storage lsn = b->lsn;
	socklen_t lsn_len = b->lsn_len;
	pthread_mutex_unlock(&sfy_bind_mu);

	struct sfy_addr peer;
	const char *why = "";
	int err = second_reply(bfd, wake, s4, &peer, &why);
	if (err == -ECANCELED)
		return NULL;
	struct sockaddr_storage to, loc, pss;
	socklen_t tl = 0, ll = 0, pl = err == 0 && !sfy_bind_zero_ip(&peer) ? sfy_bind_in_family(&peer, family, &pss)
								   : 0;
	int c = connector(&lsn, lsn_len, &to, &tl, &loc, &ll);
	pthread_mutex_lock(&sfy_bind_mu);
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
	pthread_mutex_unlock(&sfy_bind_mu);

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
int sfy_bind_start_waiter(struct sfy_bind *b, const struct sockaddr_storage *lsn, socklen_t lsn_len)
{
	int w = sfy_bind_private_fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	if (w < 0)
		return -errno;
	pthread_mutex_lock(&sfy_bind_mu);
	b->wake = w;
	b->lsn = *lsn;
	b->lsn_len = lsn_len;
	b->st = B_LISTENING;
	pthread_mutex_unlock(&sfy_bind_mu);
	sigset_t allsig, old;
	sigfillset(&allsig);
	/* The program's signal handlers must not run on our thread. */
	pthread_sigmask(SIG_SETMASK, &allsig, &old);
	pthread_t t;
	int e = pthread_create(&t, NULL, waiter, b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_lock(&sfy_bind_mu);
	if (e == 0) {
		b->thr = t;
		b->thread = true;
	} else {
		b->st = B_FAILED;
		b->err = -e;
		b->wake = -1;
	}
	pthread_mutex_unlock(&sfy_bind_mu);
	if (e) {
		sfy_bind_close_priv(&w);
		return -e;
	}
	return 0;
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
	pthread_mutex_lock(&sfy_bind_mu);
	bool ours = b->st >= B_LISTENING && b->st <= B_BROKEN;
	pthread_mutex_unlock(&sfy_bind_mu);
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
		pthread_mutex_lock(&sfy_bind_mu);
		enum bstate st = b->st;
		bool mine = (st == B_READY || st == B_BROKEN) && is_connector(b, &ss, sl);
		int bfd = -1;
		if (mine) {
			bfd = b->bfd;
			b->bfd = -1;
			b->st = B_DONE;         /* a plain listener from now on */
		}
		pthread_mutex_unlock(&sfy_bind_mu);
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
		sfy_bind_stop_waiter(b);
		int r = st == B_BROKEN ? -ECONNABORTED : move_under(bfd, nfd, flags);
		sfy_bind_close_priv(&bfd);
		if (r < 0) {
			sfy_real()->close(nfd);
			sfy_bind_put(b);
			return r;
		}
		sfy_fdreg_close(nfd);   /* whatever an earlier socket left there */
		pthread_mutex_lock(&sfy_bind_mu);
		struct sockaddr_storage peer = b->peer;
		socklen_t pl = b->peer_len;
		pthread_mutex_unlock(&sfy_bind_mu);
		if (pl) {
			sfy_fdreg_peer_set(nfd, (struct sockaddr *)&peer, pl);
			if (sa && len)
				sfy_bind_copy_out(&peer, pl, sa, len);
		} else if (sa && len) {
			*len = 0;
		}
		sfy_bind_put(b);
		return nfd;
	}
}
