/* DNS over TCP answered in the library (dnsresp_tcp.h).
 *
 * The wire (RFC 1035 4.2.2, RFC 7766): each message on the stream is
 *
 *   +--------+--------+----------------------------+
 *   | length (2, BE)  | DNS message (length bytes) |
 *   +--------+--------+----------------------------+
 *
 * several queries may arrive in one write or one query over several; the
 * server end keeps the bytes of an incomplete one until the rest comes.
 *
 * Locks: `mu` guards the listeners and the list of connections (what the
 * descriptor shield walks) and is never held across a wait: fork() takes
 * it. `acc` serializes connect()s (a listener's accept queue) and may wait
 * up to ACCEPT_WAIT_MS. Each connection's `io` serializes its reads and
 * answers and may wait seconds. Order: acc, then mu; io, then mu; mu never
 * with fdreg's lock (fdreg.c drops its references after its unlock). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dest.h"
#include "dns_msg.h"
#include "dnsresp.h"
#include "dnsresp_tcp.h"
#include "fdreg.h"
#include "io.h"
#include "log.h"
#include "real.h"
#include "shmfd.h"
#include "sock.h"
#include "state.h"

/* Connections the kernel may queue on a listener before we accept: we
 * accept each one inside the connect() that made it, so only concurrent
 * connects of this process's threads wait there. */
#define BACKLOG 64
/* How long connect() waits for its loopback connection to reach the
 * accept queue. The kernel completes the handshake within the connect
 * call or its softirq; this only bounds a pathological case. */
#define ACCEPT_WAIT_MS 2000
/* An answer the program does not read (its receive buffer full after
 * thousands of pipelined queries) is waited for this long at most; then
 * the connection is reset, as a server would drop such a client. */
#define WRITE_WAIT_MS 5000
/* How long a write hook waits for bytes the program's socket has sent to
 * reach the server end. On loopback they are there when the call returns
 * unless softirq work was deferred to ksoftirqd (a loaded machine); the
 * wait only covers that. */
#define ARRIVE_WAIT_MS 1000

struct sfy_dnstcp {
	atomic_int refs;
	pthread_mutex_t io;
	int srv;                /* the server end; -1 once closed. Changed
				   under io and mu, read under either */
	bool done;              /* the program half-closed: answered, EOF sent */
	/* Under io: the bytes the hooks saw the program write, and the bytes
	 * read on the server end. */
	uint64_t wrote, got;
	struct sfy_dnstcp *next;        /* under mu */
	size_t inlen;           /* under io */
	uint8_t in[2 + SFY_DNS_TCP_MAX];
	uint8_t out[2 + SFY_DNS_TCP_MAX];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t acc = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct sfy_dnstcp *conns;
/* [0] 127.0.0.1, [1] ::1; the process that made each (a fork()ed child
 * holds its parent's copy and makes its own). Changed under acc and mu,
 * read under either. */
static int lst[2] = { -1, -1 };
static pid_t lst_pid[2];
static dev_t lst_dev[2];
static ino_t lst_ino[2];
static struct sockaddr_storage lst_addr[2];
static socklen_t lst_len[2];
/* Private descriptors open: the shield's fast path. */
static atomic_int nfds;

static void at_prepare(void) { pthread_mutex_lock(&mu); }
static void at_parent(void) { pthread_mutex_unlock(&mu); }
/* The child has only the forking thread: a lock another thread held stays
 * held in its copy. acc guards only the parent's listeners' queues (the
 * child makes its own). A connection whose io was held was mid-answer: its
 * buffer and counts are half-updated and the parent's thread finishes that
 * work on the shared server end, so the child leaves it to the parent. */
static void at_child(void)
{
	pthread_mutex_init(&acc, NULL);
	for (struct sfy_dnstcp *c = conns; c; c = c->next) {
		if (pthread_mutex_trylock(&c->io) == 0) {
			pthread_mutex_unlock(&c->io);
			continue;
		}
		pthread_mutex_init(&c->io, NULL);
		c->done = true;
	}
	pthread_mutex_unlock(&mu);
}
static void setup(void) { pthread_atfork(at_prepare, at_parent, at_child); }

/* fd moved to a close-on-exec number >= SFY_SHM_FD_MIN (fd itself closed
 * unless keep_old), or -errno. */
static int move_high(int fd, bool keep_old)
{
	int n = sfy_real()->fcntl(fd, F_DUPFD_CLOEXEC, SFY_SHM_FD_MIN);
	if (n < 0)
		return -errno;
	if (!keep_old)
		sfy_real()->close(fd);
	return n;
}

static bool same_file(int fd, dev_t dev, ino_t ino)
{
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/* Under mu: listener i of this process, made on first use. 0 or -errno. */
static int listener(int i)
{
	pid_t me = getpid();
	if (lst[i] >= 0 && lst_pid[i] == me && same_file(lst[i], lst_dev[i], lst_ino[i]))
		return 0;
	if (lst[i] >= 0) {
		/* Our parent's (we are its fork()ed child), or closed behind our
		 * back; the child's copy is no use to it. */
		if (lst_pid[i] != me && same_file(lst[i], lst_dev[i], lst_ino[i]))
			sfy_real()->close(lst[i]);
		lst[i] = -1;
		atomic_fetch_sub(&nfds, 1);
	}
	int fam = i ? AF_INET6 : AF_INET;
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t sl;
	if (i) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(*s4);
	}
	int s = socket(fam, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return -errno;
	if (sfy_real()->bind(s, (struct sockaddr *)&ss, sl) < 0 || sfy_real()->listen(s, BACKLOG) < 0 ||
	    sfy_real()->getsockname(s, (struct sockaddr *)&ss, &sl) < 0) {
		int e = errno;
		sfy_real()->close(s);
		return -e;
	}
	int h = move_high(s, false);
	if (h < 0) {
		sfy_real()->close(s);
		return h;
	}
	struct stat st;
	if (fstat(h, &st) < 0) {
		int e = errno;
		sfy_real()->close(h);
		return -e;
	}
	lst[i] = h;
	lst_pid[i] = me;
	lst_dev[i] = st.st_dev;
	lst_ino[i] = st.st_ino;
	lst_addr[i] = ss;
	lst_len[i] = sl;
	atomic_fetch_add(&nfds, 1);
	return 0;
}

/* An address as (v4-mapped) IPv6 bytes and port, to compare the two ends
 * of one loopback connection whatever the sockets' families. */
static bool norm(const struct sockaddr_storage *ss, uint8_t ip[16], uint16_t *port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		static const uint8_t pre[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		memcpy(ip, pre, 12);
		memcpy(ip + 12, &s4->sin_addr, 4);
		*port = s4->sin_port;
		return true;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		memcpy(ip, &s6->sin6_addr, 16);
		*port = s6->sin6_port;
		return true;
	}
	return false;
}

/* Under acc: accepts, on listener i, the connection whose client end is
 * fd. The server end (moved high, non-blocking, close-on-exec) or -errno. */
static int accept_for(int i, int fd)
{
	struct sockaddr_storage me;
	socklen_t ml = sizeof(me);
	uint8_t mip[16];
	uint16_t mport;
	if (sfy_real()->getsockname(fd, (struct sockaddr *)&me, &ml) < 0)
		return -errno;
	if (!norm(&me, mip, &mport))
		return -EAFNOSUPPORT;
	int64_t end = sfy_now_ms() + ACCEPT_WAIT_MS;
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int a = sfy_real()->accept4(lst[i], (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (a >= 0) {
			uint8_t pip[16];
			uint16_t pport;
			if (norm(&peer, pip, &pport) && pport == mport && !memcmp(pip, mip, 16)) {
				/* Each answer out at once: Nagle would hold the second
				 * of two pipelined answers for the client's ACK. */
				int one = 1;
				setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				return move_high(a, false);
			}
			/* Someone else on this host found our port: not a query of
			 * this program's, not ours to answer. */
			sfy_real()->close(a);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno != EAGAIN)
			return -errno;
		int64_t left = end - sfy_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = lst[i], .events = POLLIN };
		sfy_real()->poll(&p, 1, (int)left);
	}
}

/* ------------------------------------------------------------ references */

struct sfy_dnstcp *sfy_dnstcp_ref(struct sfy_dnstcp *c)
{
	if (c)
		atomic_fetch_add(&c->refs, 1);
	return c;
}

void sfy_dnstcp_put(struct sfy_dnstcp *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	pthread_mutex_lock(&mu);
	for (struct sfy_dnstcp **p = &conns; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	if (c->srv >= 0) {
		sfy_real()->close(c->srv);
		atomic_fetch_sub(&nfds, 1);
	}
	pthread_mutex_unlock(&mu);
	pthread_mutex_destroy(&c->io);
	munmap(c, sizeof(*c));
}

/* ------------------------------------------------------------ connect */

int sfy_dnstcp_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	/* The fast refusal: every connect() comes here first. */
	if (!sa || len < sizeof(struct sockaddr_in) ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
	    sfy_sockaddr_port(sa) != 53 || !sfy_fdreg_owner())
		return 1;
	struct sfy_dest d;
	memset(&d, 0, sizeof(d));
	if (!sfy_sockinfo_get(fd, &d.si) || d.si.proto != SFY_SOCK_TCP ||
	    sfy_dest_read(fd, SFY_OP_CONNECT, 0, sa, len, &d) != SFY_READ_DEST ||
	    !sfy_dnsresp_is_ns((const struct sockaddr *)&d.sa, d.len, NULL))
		return 1;
	struct sockaddr_storage ps;
	socklen_t psl = sizeof(ps);
	if (sfy_real()->getpeername(fd, (struct sockaddr *)&ps, &psl) == 0)
		return 1;       /* connected already: the kernel's EISCONN */

	/* v4 (and v4-mapped, on an AF_INET6 socket) to 127.0.0.1, v6 to ::1. */
	const struct sockaddr_in6 *d6 = (const struct sockaddr_in6 *)&d.sa;
	int i = d.sa.ss_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&d6->sin6_addr);
	/* mmap, not malloc: connect() is async-signal-safe, so a fork()ed
	 * child of a threaded program may call it, and an allocator lock
	 * another thread held at the fork stays held there forever (ASan's
	 * allocator has no fork handlers; glibc's has). Zero-filled. */
	struct sfy_dnstcp *c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c == MAP_FAILED)
		return -ENOMEM;
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->io, NULL);
	c->srv = -1;

	pthread_once(&once, setup);
	pthread_mutex_lock(&acc);
	pthread_mutex_lock(&mu);
	int r = listener(i);
	if (r < 0 && i) {
		/* No ::1 (IPv6 off on lo): an AF_INET6 socket reaches the v4
		 * listener as ::ffff:127.0.0.1 (unless IPV6_V6ONLY, which then
		 * fails as the kernel's own connect would fail elsewhere). */
		i = 0;
		r = listener(i);
	}
	pthread_mutex_unlock(&mu);
	int cr = 0;
	if (r == 0) {
		struct sockaddr_storage to = lst_addr[i];
		socklen_t tl = lst_len[i];
		if (!i && d.si.family == AF_INET6) {
			/* ::ffff:127.0.0.1 and the listener's port. */
			const struct sockaddr_in *l4 = (const struct sockaddr_in *)&lst_addr[i];
			struct sockaddr_in6 m;
			memset(&m, 0, sizeof(m));
			m.sin6_family = AF_INET6;
			m.sin6_port = l4->sin_port;
			m.sin6_addr.s6_addr[10] = m.sin6_addr.s6_addr[11] = 0xff;
			memcpy(&m.sin6_addr.s6_addr[12], &l4->sin_addr, 4);
			memcpy(&to, &m, sizeof(m));
			tl = sizeof(m);
		}
		if (sfy_real()->connect(fd, (struct sockaddr *)&to, tl) < 0)
			cr = -errno;
		if (cr == 0 || cr == -EINPROGRESS) {
			r = accept_for(i, fd);
			if (r >= 0) {
				pthread_mutex_lock(&mu);
				c->srv = r;
				c->next = conns;
				conns = c;
				atomic_fetch_add(&nfds, 1);
				pthread_mutex_unlock(&mu);
				r = 0;
			}
		} else {
			r = cr;
		}
	}
	pthread_mutex_unlock(&acc);
	if (r < 0) {
		sfy_dnstcp_put(c);
		if (r != cr)
			sfy_warn("DNS over TCP to a system nameserver: the in-library responder "
				 "could not take the connection (%s)", strerror(-r));
		return r;
	}
	if (sfy_fdreg_dns_set(fd, c) == 0)
		sfy_fdreg_peer_set(fd, (const struct sockaddr *)&d.sa, d.len);
	sfy_dnstcp_put(c);      /* the registry's reference keeps it; without
				   one the program reads the end of the stream */
	if (sfy_log_level_get() >= SFY_LOG_DEBUG) {
		char a[300];
		sfy_dest_format(&d, a, sizeof(a));
		sfy_debug("%s: TCP, answered by the in-library DNS responder", a);
	}
	return cr;
}

/* ------------------------------------------------------------ answering */

/* Under io: all of buf on the server end, waiting at most WRITE_WAIT_MS
 * for room. False: the connection is beyond help. */
static bool send_all(struct sfy_dnstcp *c, const uint8_t *buf, size_t n)
{
	int64_t end = -1;
	while (n) {
		ssize_t w = sfy_real()->send(c->srv, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0) {
			buf += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w == 0 || errno != EAGAIN)
			return false;
		if (end < 0)
			end = sfy_now_ms() + WRITE_WAIT_MS;
		int64_t left = end - sfy_now_ms();
		if (left <= 0)
			return false;
		struct pollfd p = { .fd = c->srv, .events = POLLOUT };
		sfy_real()->poll(&p, 1, (int)left);
	}
	return true;
}

/* Under io: answers every complete query in c->in, keeping the start of an
 * incomplete one. False: the connection is beyond help. */
static bool answer_all(struct sfy_dnstcp *c)
{
	size_t off = 0;
	for (;;) {
		size_t need, msglen;
		const uint8_t *msg;
		if (sfy_dns_tcp_next(c->in + off, c->inlen - off, &need, &msg, &msglen) !=
		    SFY_PARSE_COMPLETE)
			break;
		ssize_t a = sfy_dnsresp_answer(msg, msglen, true, c->out + 2, sizeof(c->out) - 2);
		off += need;
		if (a <= 0)
			continue;       /* nothing to send (a response, a runt) */
		ssize_t f = sfy_dns_tcp_frame(c->out, sizeof(c->out), (size_t)a);
		if (f > 0 && !send_all(c, c->out, (size_t)f))
			return false;
	}
	if (off) {
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
	return true;
}

/* The bytes fd's socket has not sent yet (Nagle holds a small segment
 * while an earlier one is unacknowledged; TCP_CORK and MSG_MORE hold
 * data on purpose). Nagle's hold is lifted here -- a TCP_NODELAY on and
 * back off pushes what waits, as the next ACK would -- since no later
 * call of the program may come to make us read it: the program is about
 * to wait for the answer. */
static uint64_t unsent(int fd)
{
	int n = 0;
	if (ioctl(fd, SIOCOUTQNSD, &n) < 0 || n <= 0)
		return 0;
	int nd = 0, cork = 0;
	socklen_t l = sizeof(nd), lc = sizeof(cork);
	if (sfy_real()->getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nd, &l) == 0 && !nd &&
	    sfy_real()->getsockopt(fd, IPPROTO_TCP, TCP_CORK, &cork, &lc) == 0 && !cork) {
		int one = 1, zero = 0;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &zero, sizeof(zero));
		if (ioctl(fd, SIOCOUTQNSD, &n) < 0 || n < 0)
			n = 0;
	}
	return (uint64_t)n;
}

/* Under io: reads what the program sent and answers it, until the server
 * end has read `target` bytes in all (or the end of the stream, with
 * eof); at the end of the program's stream (a half-close) ends ours too.
 * False: the bytes did not come within ARRIVE_WAIT_MS. */
static bool pump(struct sfy_dnstcp *c, uint64_t target, bool eof)
{
	int64_t end = -1;
	while (c->srv >= 0 && !c->done) {
		ssize_t n = sfy_real()->recv(c->srv, c->in + c->inlen, sizeof(c->in) - c->inlen,
					     MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN || (!eof && c->got >= target))
				return true;    /* all there, all answered */
			if (end < 0)
				end = sfy_now_ms() + ARRIVE_WAIT_MS;
			int64_t left = end - sfy_now_ms();
			if (left <= 0)
				return false;
			struct pollfd p = { .fd = c->srv, .events = POLLIN };
			sfy_real()->poll(&p, 1, (int)left);
			continue;
		}
		c->inlen += (size_t)n;
		c->got += (uint64_t)n;
		bool ok = answer_all(c);
		if (!ok || n == 0) {
			/* The program is done sending (or not reading): what it
			 * sent is answered, now the end of the stream -- or a reset
			 * for a reader that never read. */
			sfy_real()->shutdown(c->srv, ok ? SHUT_WR : SHUT_RDWR);
			c->done = true;
		}
	}
	return true;
}

static void serve(int fd, ssize_t r, bool eof)
{
	if (!sfy_fdreg_owner())
		return;         /* a vfork() child: the parent's to answer */
	int saved = errno;
	struct sfy_dnstcp *c = sfy_fdreg_dns_get(fd);
	if (c) {
		pthread_mutex_lock(&c->io);
		if (r > 0)
			c->wrote += (uint64_t)r;
		uint64_t held = eof ? 0 : unsent(fd);
		if (!pump(c, c->wrote > held ? c->wrote - held : 0, eof))
			/* The counts diverged (MSG_OOB; a fork()ed child read what
			 * the parent wrote, or wrote itself): start again from what
			 * arrived, so the wait is paid once, not on every write. */
			c->wrote = c->got + held;
		pthread_mutex_unlock(&c->io);
		sfy_dnstcp_put(c);
	}
	errno = saved;
}

void sfy_dnstcp_serve(int fd, ssize_t r)
{
	serve(fd, r, false);
}

void sfy_dnstcp_shutdown(int fd, int how)
{
	if (how == SHUT_WR || how == SHUT_RDWR)
		serve(fd, 0, true);
}

/* ------------------------------------------------------------ the shield */

/* A reference to c unless its last one is already gone (its put waits for
 * mu to unlink it). */
static bool ref_live(struct sfy_dnstcp *c)
{
	int r = atomic_load(&c->refs);
	while (r > 0)
		if (atomic_compare_exchange_weak(&c->refs, &r, r + 1))
			return true;
	return false;
}

/* Under mu, and io or no reference left: the server end to another number
 * (the program's close() or dup2() ends its old one). */
static void move_srv(struct sfy_dnstcp *c)
{
	int n = move_high(c->srv, true);
	if (n < 0) {
		/* No number left: the program's close ends the connection. */
		atomic_fetch_sub(&nfds, 1);
		c->done = true;
	}
	c->srv = n < 0 ? -1 : n;
}

void sfy_dnstcp_evict(int fd)
{
	if (fd < SFY_SHM_FD_MIN || !atomic_load_explicit(&nfds, memory_order_relaxed) ||
	    !sfy_fdreg_owner())
		return;
	int saved = errno;
	pthread_mutex_lock(&acc);
	pthread_mutex_lock(&mu);
	pid_t me = getpid();
	for (int i = 0; i < 2; i++) {
		if (lst[i] == fd && lst_pid[i] == me) {
			/* The program's close() or dup2() ends the old number. */
			int n = move_high(fd, true);
			if (n >= 0)
				lst[i] = n;
			else
				lst[i] = -1, atomic_fetch_sub(&nfds, 1);  /* remade on next use */
		}
	}
	struct sfy_dnstcp *c = conns;
	while (c && c->srv != fd)
		c = c->next;
	if (c && !ref_live(c)) {
		/* Its last put waits for mu: nothing serves it any more. */
		move_srv(c);
		c = NULL;
	}
	pthread_mutex_unlock(&mu);
	pthread_mutex_unlock(&acc);
	if (c) {
		/* A serve() may be using the number: wait for it with mu not
		 * held (io before mu), then look again. */
		pthread_mutex_lock(&c->io);
		pthread_mutex_lock(&mu);
		if (c->srv == fd)
			move_srv(c);
		pthread_mutex_unlock(&mu);
		pthread_mutex_unlock(&c->io);
		sfy_dnstcp_put(c);
	}
	errno = saved;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int sfy_dnstcp_guarded_in(unsigned first, unsigned last, int out[], int max, bool closing)
{
	if (!atomic_load_explicit(&nfds, memory_order_relaxed) || last < SFY_SHM_FD_MIN ||
	    !sfy_fdreg_owner())
		return 0;
	int n = 0;
	pthread_mutex_lock(&mu);
	pid_t me = getpid();
	for (int i = 0; i < 2 && n < max; i++)
		if (lst[i] >= 0 && lst_pid[i] == me && (unsigned)lst[i] >= first &&
		    (unsigned)lst[i] <= last)
			out[n++] = lst[i];
	for (struct sfy_dnstcp *c = conns; c; c = c->next) {
		if (c->srv < 0 || (unsigned)c->srv < first || (unsigned)c->srv > last)
			continue;
		if (n < max) {
			out[n++] = c->srv;
		} else if (closing) {
			/* Closed with the program's range: the number is no longer
			 * ours to close again or read. (Without io: a serve() at
			 * this moment is the program's own race with closing its
			 * socket, and at worst reads a closed number.) */
			c->srv = -1;
			c->done = true;
			atomic_fetch_sub(&nfds, 1);
		}
	}
	pthread_mutex_unlock(&mu);
	qsort(out, (size_t)n, sizeof(int), cmp_int);
	return n;
}
