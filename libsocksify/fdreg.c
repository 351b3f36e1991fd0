/* The per-fd registry (see fdreg.h for the rules it keeps). */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "async_slot.h"
#include "bind.h"
#include "dnsresp_tcp.h"
#include "fdreg.h"
#include "udp_assoc.h"

/* Two levels, allocated on demand: 1024 chunks of 1024 entries cover fds up
 * to 1M (the kernel's default nr_open). An fd above gets no entry: its
 * getpeername() answers the first hop and a UDP socket there fails closed
 * (hooks_udp.c). Chunks are never freed, so an entry's memory stays valid
 * for a lock-free look at its state. */
#define CHUNK 1024
#define NCHUNK 1024

/* state = generation << GEN_SHIFT | what (SFY_FDREG_* bits). what == 0 is
 * an empty entry. Every change under the lock bumps the generation, so a
 * lookup that fstat()ed before taking the lock can tell that the entry it
 * is about to compare was replaced meanwhile. */
#define GEN_SHIFT 6
#define WHAT_MASK ((1u << GEN_SHIFT) - 1)

struct entry {
	_Atomic uint32_t state;         /* written under lock, read anywhere */
	/* The rest only under lock. */
	dev_t dev;                      /* the socket's identity, from fstat() */
	ino_t ino;
	struct sfy_udp_sess *sess;      /* UDP: holds a reference */
	struct sfy_udp_sess *ctl_of;    /* CTL: the session, no reference */
	struct sfy_aslot *pending;      /* PENDING: the set-up, counted in its refs */
	uint32_t pending_gen;
	struct sfy_dnstcp *dns;         /* DNS: holds a reference */
	struct sfy_bind *bind;          /* BIND: holds a reference */
	socklen_t peer_len;             /* PEER */
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer;
};

static _Atomic(struct entry *) chunks[NCHUNK];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* The process the registry belongs to; another pid means a child sharing
 * our memory (vfork, CLONE_VM) that must change nothing. */
static atomic_int owner_pid;
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;

static void at_prepare(void) { pthread_mutex_lock(&lock); }
static void at_parent(void) { pthread_mutex_unlock(&lock); }
/* Runs after fork(), never after vfork()/posix_spawn()/clone(CLONE_VM):
 * exactly the children that get their own copy of the memory. */
static void at_child(void)
{
	atomic_store(&owner_pid, (int)getpid());
	pthread_mutex_unlock(&lock);
}

static void setup(void)
{
	atomic_store(&owner_pid, (int)getpid());
	pthread_atfork(at_prepare, at_parent, at_child);
}

/* At load, so that the owner is the process that loaded us before any
 * vfork() (done lazily, a vfork() child could make itself the owner): a
 * getpid() and a handler registration, nothing else. The registration
 * paths also run it, for hooks called by other libraries' constructors
 * before ours. */
__attribute__((constructor)) static void fdreg_init(void)
{
	pthread_once(&setup_once, setup);
}

/* getpid() is a system call in glibc >= 2.25 (no cached pid), so a vfork()
 * child gets its own pid here. Asked only where an entry would change (it
 * never blocks, so it may run under the lock). */
static bool owner(void)
{
	pthread_once(&setup_once, setup);
	return (int)getpid() == atomic_load(&owner_pid);
}

bool sfy_fdreg_owner(void)
{
	return owner();
}

static struct entry *slot(int fd, bool create)
{
	if (fd < 0 || fd >= CHUNK * NCHUNK)
		return NULL;
	_Atomic(struct entry *) *c = &chunks[fd / CHUNK];
	struct entry *e = atomic_load_explicit(c, memory_order_acquire);
	if (!e && create) {
		struct entry *n = calloc(CHUNK, sizeof(*n));
		if (!n)
			return NULL;
		if (atomic_compare_exchange_strong(c, &e, n))
			e = n;
		else
			free(n);
	}
	return e ? &e[fd % CHUNK] : NULL;
}

bool sfy_fdreg_has(int fd, unsigned what)
{
	if (fd < 0 || fd >= CHUNK * NCHUNK)
		return false;
	struct entry *e = atomic_load_explicit(&chunks[fd / CHUNK], memory_order_acquire);
	return e && (atomic_load_explicit(&e[fd % CHUNK].state, memory_order_relaxed) & what);
}

/* Under lock: a new state with the next generation. */
static void publish_locked(struct entry *e, unsigned what)
{
	uint32_t st = atomic_load_explicit(&e->state, memory_order_relaxed);
	atomic_store_explicit(&e->state, (st & ~WHAT_MASK) + (1u << GEN_SHIFT) + what,
			      memory_order_release);
}

/* References an emptied entry held, dropped after the lock: a session's
 * last may close a control connection; a DNS connection's takes the TCP
 * responder's lock, which fork() takes before ours (dnsresp_tcp.c), so
 * never under ours. */
struct drop {
	struct sfy_udp_sess *sess;
	struct sfy_dnstcp *dns;
	struct sfy_bind *bind;          /* its last may join the BIND's waiter */
};

static void drop_now(struct drop *d)
{
	sfy_udp_sess_put(d->sess);
	sfy_dnstcp_put(d->dns);
	sfy_bind_put(d->bind);
}

/* Under lock: empties e; what it held goes to *put. */
static void clear_locked(struct entry *e, struct drop *put)
{
	uint32_t st = atomic_load_explicit(&e->state, memory_order_relaxed);
	if (st & SFY_FDREG_CTL)
		sfy_udp_ctl_lost(e->ctl_of);    /* the number is no longer ours */
	if (st & SFY_FDREG_UDP)
		put->sess = e->sess;
	/* The last of the owner's descriptors of a pending set-up aborts it
	 * (a flag and a wake-up of the driver: nothing that blocks). */
	if (st & SFY_FDREG_PENDING)
		sfy_aslot_unref(e->pending, e->pending_gen);
	if (st & SFY_FDREG_DNS)
		put->dns = e->dns;
	if (st & SFY_FDREG_BIND)
		put->bind = e->bind;
	e->dns = NULL;
	e->bind = NULL;
	e->sess = e->ctl_of = NULL;
	e->pending = NULL;
	e->peer_len = 0;
	publish_locked(e, 0);
}

/* The socket now open on fd: 0, or -errno (EBADF: nothing is). */
static int identity(int fd, dev_t *dev, ino_t *ino)
{
	int saved = errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int r = -errno;
		errno = saved;
		*dev = 0;
		*ino = 0;
		return r;
	}
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

/* fd's entry, locked, when it holds any of `what` and still describes the
 * socket open on fd; else NULL, unlocked. A stale entry is dropped on the
 * way (not in a vfork() child). */
static struct entry *lookup_lock(int fd, unsigned what)
{
	struct entry *e = slot(fd, false);
	if (!e)
		return NULL;
	for (;;) {
		uint32_t st = atomic_load_explicit(&e->state, memory_order_acquire);
		if (!(st & what))
			return NULL;
		dev_t dev;
		ino_t ino;
		int r = identity(fd, &dev, &ino);
		pthread_mutex_lock(&lock);
		if (atomic_load_explicit(&e->state, memory_order_relaxed) != st) {
			pthread_mutex_unlock(&lock);
			continue;       /* changed while we looked: look again */
		}
		if (r == 0 && dev == e->dev && ino == e->ino)
			return e;
		/* Closed behind our back: gone (EBADF) or another file now. Any
		 * other fstat() failure proves nothing: absent, but kept. */
		struct drop put = { 0 };
		if ((r == 0 || r == -EBADF) && owner())
			clear_locked(e, &put);
		pthread_mutex_unlock(&lock);
		drop_now(&put);
		return NULL;
	}
}

/* fd's entry, locked, for a change on behalf of the socket open on fd now:
 * an entry an earlier socket on that number left is emptied first (its
 * references to *put). NULL when fd cannot have an entry. */
static struct entry *claim_lock(int fd, struct drop *put)
{
	put->sess = NULL;
	put->dns = NULL;
	put->bind = NULL;
	dev_t dev;
	ino_t ino;
	struct entry *e;
	if (!owner() || !(e = slot(fd, true)) || identity(fd, &dev, &ino) < 0)
		return NULL;
	pthread_mutex_lock(&lock);
	uint32_t st = atomic_load_explicit(&e->state, memory_order_relaxed);
	if ((st & WHAT_MASK) && (e->dev != dev || e->ino != ino))
		clear_locked(e, put);
	e->dev = dev;
	e->ino = ino;
	return e;
}

static unsigned what_of(const struct entry *e)
{
	return atomic_load_explicit(&e->state, memory_order_relaxed) & WHAT_MASK;
}

/* ------------------------------------------------------------ peer */

static socklen_t inet_len(const struct sockaddr *sa, socklen_t len)
{
	socklen_t want = sa->sa_family == AF_INET    ? sizeof(struct sockaddr_in)
			 : sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						     : 0;
	return want && len >= want ? want : 0;
}

int sfy_fdreg_peer_set(int fd, const struct sockaddr *sa, socklen_t len)
{
	socklen_t n = inet_len(sa, len);
	if (!n)
		return -EAFNOSUPPORT;
	struct drop put;
	struct entry *e = claim_lock(fd, &put);
	if (!e)
		return -EBADF;
	memcpy(&e->peer, sa, n);
	e->peer_len = n;
	publish_locked(e, what_of(e) | SFY_FDREG_PEER);
	pthread_mutex_unlock(&lock);
	drop_now(&put);
	return 0;
}

bool sfy_fdreg_peer_get(int fd, struct sockaddr *sa, socklen_t *len)
{
	if (!sfy_fdreg_has(fd, SFY_FDREG_PEER))
		return false;
	struct entry *e = lookup_lock(fd, SFY_FDREG_PEER);
	if (!e)
		return false;
	memcpy(sa, &e->peer, *len < e->peer_len ? *len : e->peer_len);
	*len = e->peer_len;
	pthread_mutex_unlock(&lock);
	return true;
}

/* ------------------------------------------------------------ UDP */

struct sfy_udp_sess *sfy_fdreg_udp_get(int fd)
{
	if (!sfy_fdreg_has(fd, SFY_FDREG_UDP))
		return NULL;
	struct entry *e = lookup_lock(fd, SFY_FDREG_UDP);
	if (!e)
		return NULL;
	struct sfy_udp_sess *s = e->sess;
	atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&lock);
	return s;
}

struct sfy_udp_sess *sfy_fdreg_udp_install(int fd, struct sfy_udp_sess *s)
{
	struct drop put;
	struct entry *e = claim_lock(fd, &put);
	if (!e)
		return NULL;
	struct sfy_udp_sess *got = s;
	unsigned what = what_of(e);
	if (what & SFY_FDREG_UDP) {
		got = e->sess;
		atomic_fetch_add(&got->refs, 1);
	} else if (what & SFY_FDREG_CTL) {
		got = NULL;     /* fd is our own control connection, not a UDP socket */
	} else {
		atomic_fetch_add(&s->refs, 1);
		e->sess = s;
		publish_locked(e, what | SFY_FDREG_UDP);
	}
	pthread_mutex_unlock(&lock);
	drop_now(&put);
	return got;
}

void sfy_fdreg_udp_remove(int fd, struct sfy_udp_sess *s)
{
	if (!owner())
		return;
	struct entry *e = lookup_lock(fd, SFY_FDREG_UDP);
	if (!e)
		return;
	struct sfy_udp_sess *put = NULL;
	if (e->sess == s) {
		put = s;
		e->sess = NULL;
		publish_locked(e, what_of(e) & ~SFY_FDREG_UDP);
	}
	pthread_mutex_unlock(&lock);
	sfy_udp_sess_put(put);
}

int sfy_fdreg_ctl_tag(int ctl, struct sfy_udp_sess *s)
{
	struct drop put;
	struct entry *e = claim_lock(ctl, &put);
	if (!e)
		return -EMFILE;
	/* A fresh socket of ours: whatever was recorded for the number was
	 * another socket's, and claim_lock() emptied it. */
	e->ctl_of = s;
	publish_locked(e, what_of(e) | SFY_FDREG_CTL);
	pthread_mutex_unlock(&lock);
	drop_now(&put);
	return 0;
}

bool sfy_fdreg_ctl_release(int ctl, const struct sfy_udp_sess *s)
{
	if (!owner())
		return false;   /* a vfork() child: neither the tag nor the fd */
	struct entry *e = lookup_lock(ctl, SFY_FDREG_CTL);
	if (!e)
		return false;
	bool ours = e->ctl_of == s;
	if (ours) {
		e->ctl_of = NULL;
		publish_locked(e, what_of(e) & ~SFY_FDREG_CTL);
	}
	pthread_mutex_unlock(&lock);
	return ours;
}

/* ------------------------------------------------------------ close, dup */

bool sfy_fdreg_close(int fd)
{
	if (!sfy_fdreg_has(fd, SFY_FDREG_ANY) || !owner())
		return false;
	struct entry *e = slot(fd, false);
	struct drop put = { 0 };
	pthread_mutex_lock(&lock);
	bool had = what_of(e) != 0;
	if (had)
		clear_locked(e, &put);
	pthread_mutex_unlock(&lock);
	drop_now(&put);
	return had;
}

void sfy_fdreg_close_range(unsigned first, unsigned last)
{
	int own = -1;   /* asked once, at the first entry */
	for (unsigned c = first / CHUNK; c < NCHUNK && c <= last / CHUNK; c++) {
		struct entry *e = atomic_load_explicit(&chunks[c], memory_order_acquire);
		if (!e)
			continue;
		for (unsigned i = 0; i < CHUNK; i++) {
			unsigned fd = c * CHUNK + i;
			if (fd < first || fd > last ||
			    !(atomic_load_explicit(&e[i].state, memory_order_relaxed) & WHAT_MASK))
				continue;
			if (own < 0)
				own = owner();
			if (!own)
				return;
			sfy_fdreg_close((int)fd);
		}
	}
}

void sfy_fdreg_dup(int oldfd, int newfd)
{
	const unsigned copied = SFY_FDREG_PEER | SFY_FDREG_UDP | SFY_FDREG_PENDING | SFY_FDREG_DNS |
				SFY_FDREG_BIND;
	if (!sfy_fdreg_has(oldfd, copied) || !owner())
		return;
	struct entry *o = lookup_lock(oldfd, copied);
	if (!o)
		return;
	unsigned what = what_of(o) & copied;
	struct sfy_aslot *pending = o->pending;
	uint32_t pending_gen = o->pending_gen;
	struct sfy_udp_sess *s = o->sess;
	if (s)
		atomic_fetch_add(&s->refs, 1);  /* for the copy */
	struct sfy_dnstcp *dns = (what & SFY_FDREG_DNS) ? sfy_dnstcp_ref(o->dns) : NULL;
	struct sfy_bind *bind = (what & SFY_FDREG_BIND) ? sfy_bind_ref(o->bind) : NULL;
	socklen_t peer_len = o->peer_len;
	struct sockaddr_in6 peer;
	memcpy(&peer, &o->peer, sizeof(peer));
	pthread_mutex_unlock(&lock);

	struct drop put;
	struct entry *n = claim_lock(newfd, &put);
	if (n) {
		if (what_of(n) & SFY_FDREG_UDP)
			put.sess = n->sess;  /* (cannot happen: the hook dropped newfd first) */
		n->sess = s;
		s = NULL;
		memcpy(&n->peer, &peer, sizeof(peer));
		n->peer_len = peer_len;
		/* The pending state belongs to the socket: the copy shares the
		 * slot and is one more of the owner's descriptors of it. */
		if (what_of(n) & SFY_FDREG_PENDING)
			sfy_aslot_unref(n->pending, n->pending_gen);
		n->pending = (what & SFY_FDREG_PENDING) ? pending : NULL;
		n->pending_gen = pending_gen;
		if (what & SFY_FDREG_PENDING)
			sfy_aslot_ref(pending, pending_gen);
		if (what_of(n) & SFY_FDREG_DNS)
			put.dns = n->dns;
		n->dns = dns;
		dns = NULL;
		if (what_of(n) & SFY_FDREG_BIND)
			put.bind = n->bind;
		n->bind = bind;
		bind = NULL;
		publish_locked(n, (what_of(n) & ~copied) | what);
		pthread_mutex_unlock(&lock);
	}
	drop_now(&put);
	sfy_udp_sess_put(s);
	sfy_dnstcp_put(dns);
	sfy_bind_put(bind);
}

/* ------------------------------------------------------------ pending connect */

int sfy_fdreg_pending_set(int fd, struct sfy_aslot *slot, uint32_t gen)
{
	struct drop put;
	struct entry *e = claim_lock(fd, &put);
	if (!e)
		return -EBADF;
	if (what_of(e) & SFY_FDREG_PENDING)
		sfy_aslot_unref(e->pending, e->pending_gen);
	e->pending = slot;
	e->pending_gen = gen;
	sfy_aslot_ref(slot, gen);
	publish_locked(e, what_of(e) | SFY_FDREG_PENDING);
	pthread_mutex_unlock(&lock);
	drop_now(&put);
	return 0;
}

bool sfy_fdreg_pending_get(int fd, struct sfy_aslot **slot, uint32_t *gen)
{
	if (!sfy_fdreg_has(fd, SFY_FDREG_PENDING))
		return false;
	struct entry *e = lookup_lock(fd, SFY_FDREG_PENDING);
	if (!e)
		return false;
	*gen = e->pending_gen;
	/* The slot must still describe this socket (same generation, same
	 * identity); else its set-up ended long ago: stale. */
	*slot = sfy_aslot_is(e->pending, e->pending_gen, e->dev, e->ino) ? e->pending : NULL;
	pthread_mutex_unlock(&lock);
	return true;
}

void sfy_fdreg_pending_drop(int fd, bool keep_peer)
{
	if (!owner())
		return;
	struct entry *e = lookup_lock(fd, SFY_FDREG_PENDING);
	if (!e)
		return;
	sfy_aslot_unref(e->pending, e->pending_gen);
	e->pending = NULL;
	unsigned what = what_of(e) & ~SFY_FDREG_PENDING;
	if (!keep_peer) {
		what &= ~SFY_FDREG_PEER;
		e->peer_len = 0;
	}
	publish_locked(e, what);
	pthread_mutex_unlock(&lock);
}

/* ------------------------------------------------------------ DNS over TCP */

int sfy_fdreg_dns_set(int fd, struct sfy_dnstcp *c)
{
	struct drop put;
	struct entry *e = claim_lock(fd, &put);
	if (!e)
		return -EBADF;
	if (what_of(e) & SFY_FDREG_DNS)
		put.dns = e->dns;       /* (claim_lock emptied another socket's) */
	e->dns = sfy_dnstcp_ref(c);
	publish_locked(e, what_of(e) | SFY_FDREG_DNS);
	pthread_mutex_unlock(&lock);
	drop_now(&put);
	return 0;
}

struct sfy_dnstcp *sfy_fdreg_dns_get(int fd)
{
	if (!sfy_fdreg_has(fd, SFY_FDREG_DNS))
		return NULL;
	struct entry *e = lookup_lock(fd, SFY_FDREG_DNS);
	if (!e)
		return NULL;
	struct sfy_dnstcp *c = sfy_dnstcp_ref(e->dns);
	pthread_mutex_unlock(&lock);
	return c;
}

/* ------------------------------------------------------------ BIND */

int sfy_fdreg_bind_set(int fd, struct sfy_bind *b)
{
	struct drop put;
	struct entry *e = claim_lock(fd, &put);
	if (!e)
		return -EBADF;
	if (what_of(e) & SFY_FDREG_BIND)
		put.bind = e->bind;
	e->bind = sfy_bind_ref(b);
	publish_locked(e, what_of(e) | SFY_FDREG_BIND);
	pthread_mutex_unlock(&lock);
	drop_now(&put);
	return 0;
}

struct sfy_bind *sfy_fdreg_bind_get(int fd)
{
	if (!sfy_fdreg_has(fd, SFY_FDREG_BIND))
		return NULL;
	struct entry *e = lookup_lock(fd, SFY_FDREG_BIND);
	if (!e)
		return NULL;
	struct sfy_bind *b = sfy_bind_ref(e->bind);
	pthread_mutex_unlock(&lock);
	return b;
}
