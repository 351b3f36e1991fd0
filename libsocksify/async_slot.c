/* The shared table of pending set-ups (see async_slot.h for the rules). */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "async.h"
#include "async_slot.h"
#include "io.h"
#include "ready.h"
#include "real.h"

/* Set-ups pending at once in a process tree. A program past it gets the
 * blocking set-up (today's behaviour), not an error. 4096 x 64 bytes of
 * shared memory, touched page by page as slots are used. */
#define NSLOT SFY_ASLOT_N

/* word = gen << GEN_SHIFT | REPORTED | ABORT | state. Every change is a
 * compare-and-swap on the whole word, so the flags never outlive their
 * generation. */
#define ST_MASK   3u
#define F_ABORT   4u
#define F_REPORT  8u
#define GEN_SHIFT 4
#define GEN_MASK  ((1u << (32 - GEN_SHIFT)) - 1)
#define GEN(w)    ((w) >> GEN_SHIFT)

struct sfy_aslot {
	_Atomic uint32_t word;          /* the futex */
	_Atomic int32_t err;            /* FAILED: positive errno */
	_Atomic int32_t pid;            /* the owner: its driver ends the set-up */
	_Atomic uint64_t refs;          /* gen << 32 | the owner's fds */
	_Atomic uint64_t dev, ino;      /* the socket */
	_Atomic int64_t ended_ms;       /* sfy_now_ms() at the end */
	_Atomic int64_t expires_ms;     /* pending past this: the owner is gone */
	/* Written by the claimer before the slot is counted, then read only. */
	uint32_t peer_len;
	struct sockaddr_in6 peer;       /* or a sockaddr_in */
};

void (*_Atomic sfy_aslot_abort_hook)(void);

static struct sfy_aslot *slots;
static _Atomic unsigned hint;

/* This process's view (copied by fork(): a child counts what it
 * inherited): which generation of each slot it counts in sfy_async_count,
 * plus the socket's identity for sfy_ready_show(). */
static struct {
	_Atomic uint32_t gen1;          /* gen + 1; 0: not counted */
	/* In the inode index from its claim here until the slot is claimed
	 * here again: found after its end too (an error to report). */
	_Atomic uint32_t hgen1;         /* gen + 1; 0: not indexed */
	_Atomic uint64_t dev, ino;
	_Atomic int32_t next;           /* the next counted slot of its bucket, + 1 */
} counted[NSLOT];

/* The counted slots by inode, for sfy_aslot_find(): chains changed under
 * hash_mu, walked without it (a walk that meets a change may miss, never
 * match wrongly: every hit is checked against gen1, dev and ino). */
#define NBUCKET 1024
static _Atomic int32_t bucket[NBUCKET];        /* first slot index + 1 */
static pthread_mutex_t hash_mu = PTHREAD_MUTEX_INITIALIZER;

static unsigned bucket_of(uint64_t ino)
{
	return (unsigned)(ino ^ ino >> 17) % NBUCKET;
}

static void hash_add(unsigned i)
{
	pthread_mutex_lock(&hash_mu);
	_Atomic int32_t *b = &bucket[bucket_of(atomic_load(&counted[i].ino))];
	atomic_store(&counted[i].next, atomic_load(b));
	atomic_store(b, (int32_t)i + 1);
	pthread_mutex_unlock(&hash_mu);
}

static void hash_del(unsigned i, uint64_t ino)
{
	pthread_mutex_lock(&hash_mu);
	_Atomic int32_t *p = &bucket[bucket_of(ino)];
	for (int n = 0; n < NSLOT && atomic_load(p); n++) {
		int32_t k = atomic_load(p) - 1;
		if ((unsigned)k == i) {
			atomic_store(p, atomic_load(&counted[k].next));
			break;
		}
		p = &counted[k].next;
	}
	pthread_mutex_unlock(&hash_mu);
}

/* fork(): the child's copy of the lock may be held by a thread it lacks. */
static void hash_child(void)
{
	pthread_mutex_init(&hash_mu, NULL);
}

/* At load, so that every process forked later shares it. */
__attribute__((constructor)) static void aslot_init(void)
{
	void *p = mmap(NULL, NSLOT * sizeof(struct sfy_aslot), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p != MAP_FAILED)
		slots = p;
	pthread_atfork(NULL, NULL, hash_child);
}

static unsigned index_of(const struct sfy_aslot *s)
{
	return (unsigned)(s - slots);
}

unsigned sfy_aslot_index(const struct sfy_aslot *s)
{
	return index_of(s);
}

/* Shared futex (no FUTEX_PRIVATE_FLAG): waiters in other processes. */
static void futex_wake(_Atomic uint32_t *w)
{
	sfy_real()->syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void futex_wait(_Atomic uint32_t *w, uint32_t val, const struct timespec *ts)
{
	int e = errno;
	sfy_real()->syscall(SYS_futex, w, FUTEX_WAIT, val, ts, NULL, 0);
	errno = e;
}

static bool reusable(uint32_t w, const struct sfy_aslot *s, int64_t now)
{
	switch (w & ST_MASK) {
	case 0:
	case SFY_ASLOT_OK:
		return true;
	case SFY_ASLOT_FAILED:
		return (w & F_REPORT) || now - atomic_load(&s->ended_ms) > SFY_ASLOT_KEEP_MS;
	default:
		return false;
	}
}

static void count(unsigned i, uint32_t gen, dev_t dev, ino_t ino)
{
	/* An older generation this process still counted ended unseen. */
	if (atomic_exchange(&counted[i].gen1, 0))
		atomic_fetch_sub(&sfy_async_count, 1);
	if (atomic_exchange(&counted[i].hgen1, 0))
		hash_del(i, atomic_load(&counted[i].ino));
	atomic_store(&counted[i].dev, (uint64_t)dev);
	atomic_store(&counted[i].ino, (uint64_t)ino);
	hash_add(i);
	atomic_store(&counted[i].hgen1, gen + 1);
	atomic_fetch_add(&sfy_async_count, 1);
	atomic_store(&counted[i].gen1, gen + 1);
}

bool sfy_aslot_find(dev_t dev, ino_t ino, struct sfy_aslot **s, uint32_t *gen)
{
	if (!slots)
		return false;
	int32_t k = atomic_load(&bucket[bucket_of((uint64_t)ino)]);
	for (int n = 0; k && n < NSLOT; n++) {
		unsigned i = (unsigned)(k - 1);
		uint32_t g1 = atomic_load(&counted[i].hgen1);
		if (g1 && atomic_load(&counted[i].ino) == (uint64_t)ino &&
		    atomic_load(&counted[i].dev) == (uint64_t)dev &&
		    sfy_aslot_is(&slots[i], g1 - 1, dev, ino)) {
			*s = &slots[i];
			*gen = g1 - 1;
			return true;
		}
		k = atomic_load(&counted[i].next);
	}
	return false;
}

unsigned sfy_aslot_peer(const struct sfy_aslot *s, struct sockaddr *sa, unsigned cap)
{
	if (!s->peer_len || s->peer_len > cap)
		return 0;
	memcpy(sa, &s->peer, s->peer_len);
	return s->peer_len;
}

struct sfy_aslot *sfy_aslot_claim(int fd, const struct sockaddr *peer, unsigned peer_len,
				  uint32_t *gen)
{
	struct stat st;
	if (!slots || fstat(fd, &st) < 0)
		return NULL;
	int64_t now = sfy_now_ms();
	unsigned start = atomic_fetch_add(&hint, 1);
	for (unsigned k = 0; k < NSLOT; k++) {
		struct sfy_aslot *s = &slots[(start + k) % NSLOT];
		uint32_t w = atomic_load(&s->word);
		if (!reusable(w, s, now))
			continue;
		uint32_t g = (GEN(w) + 1) & GEN_MASK;
		if (!atomic_compare_exchange_strong(&s->word, &w, g << GEN_SHIFT | SFY_ASLOT_PENDING))
			continue;
		/* Nobody holds generation g yet: the fields are ours to fill. */
		atomic_store(&s->err, 0);
		atomic_store(&s->pid, (int32_t)getpid());
		atomic_store(&s->refs, (uint64_t)g << 32);
		atomic_store(&s->dev, (uint64_t)st.st_dev);
		atomic_store(&s->ino, (uint64_t)st.st_ino);
		atomic_store(&s->ended_ms, 0);
		atomic_store(&s->expires_ms, sfy_now_ms() + SFY_ASLOT_KEEP_MS);
		s->peer_len = peer && peer_len <= sizeof(s->peer) ? peer_len : 0;
		if (s->peer_len)
			memcpy(&s->peer, peer, peer_len);
		count(index_of(s), g, st.st_dev, st.st_ino);
		*gen = g;
		return s;
	}
	return NULL;
}

/* PENDING at gen -> state with flags added; false if it was not pending. */
static bool finish(struct sfy_aslot *s, uint32_t gen, uint32_t state)
{
	uint32_t w = atomic_load(&s->word);
	do {
		if (GEN(w) != gen || (w & ST_MASK) != SFY_ASLOT_PENDING)
			return false;
	} while (!atomic_compare_exchange_weak(&s->word, &w, (w & ~ST_MASK) | state));
	futex_wake(&s->word);
	return true;
}

void sfy_aslot_end(struct sfy_aslot *s, uint32_t gen, int err, bool reported)
{
	atomic_store(&s->err, err);
	atomic_store(&s->ended_ms, sfy_now_ms());
	finish(s, gen, err ? SFY_ASLOT_FAILED | (reported ? F_REPORT : 0) : SFY_ASLOT_OK);
	sfy_aslot_seen_end(s, gen);
}

int sfy_aslot_state(const struct sfy_aslot *s, uint32_t gen)
{
	uint32_t w = atomic_load(&s->word);
	return GEN(w) == gen ? (int)(w & ST_MASK) : 0;
}

bool sfy_aslot_is(const struct sfy_aslot *s, uint32_t gen, dev_t dev, ino_t ino)
{
	bool same = atomic_load(&s->dev) == (uint64_t)dev && atomic_load(&s->ino) == (uint64_t)ino;
	return same && GEN(atomic_load(&s->word)) == gen;
}

int sfy_aslot_take_error(struct sfy_aslot *s, uint32_t gen)
{
	uint32_t w = atomic_load(&s->word);
	for (;;) {
		if (GEN(w) != gen || (w & ST_MASK) != SFY_ASLOT_FAILED || (w & F_REPORT))
			return 0;
		/* Read before the swap: the slot cannot be reused (and err
		 * rewritten) until the swap below has set F_REPORT. */
		int err = atomic_load(&s->err);
		if (atomic_compare_exchange_weak(&s->word, &w, w | F_REPORT))
			return err;
	}
}

bool sfy_aslot_mine(const struct sfy_aslot *s)
{
	return atomic_load(&s->pid) == (int32_t)getpid();
}

/* A set-up owned by a process that is gone will never end by itself. */
static bool owner_gone(const struct sfy_aslot *s)
{
	pid_t pid = atomic_load(&s->pid);
	int e = errno;
	bool gone = pid > 0 && pid != getpid() && kill(pid, 0) < 0 && errno == ESRCH;
	errno = e;
	return gone;
}

/* A pending set-up whose owner died is ended here (ECONNABORTED): every
 * process that notices writes the same error. */
static void reap(struct sfy_aslot *s, uint32_t gen)
{
	if (sfy_aslot_state(s, gen) != SFY_ASLOT_PENDING)
		return;
	/* Past its expiry the owner's driver is gone whatever the pid says
	 * (it exec()ed, or lost its thread): the set-up timed out. */
	int64_t now = sfy_now_ms();
	bool expired = now > atomic_load(&s->expires_ms);
	if (expired || owner_gone(s)) {
		atomic_store(&s->err, expired ? ETIMEDOUT : ECONNABORTED);
		atomic_store(&s->ended_ms, now);
		finish(s, gen, SFY_ASLOT_FAILED);
	}
}

void sfy_aslot_reap(struct sfy_aslot *s, uint32_t gen)
{
	if (!sfy_aslot_mine(s))
		reap(s, gen);
}

void sfy_aslot_set_expiry(struct sfy_aslot *s, uint32_t gen, int64_t ms)
{
	if (sfy_aslot_state(s, gen) == SFY_ASLOT_PENDING)
		atomic_store(&s->expires_ms, ms);
}

void sfy_aslot_wait(struct sfy_aslot *s, uint32_t gen)
{
	for (;;) {
		reap(s, gen);
		uint32_t w = atomic_load(&s->word);
		if (GEN(w) != gen || (w & ST_MASK) != SFY_ASLOT_PENDING)
			return;
		/* Slices: a dead owner is noticed within one. */
		struct timespec ts = { 1, 0 };
		futex_wait(&s->word, w, &ts);
	}
}

void sfy_aslot_seen_end(struct sfy_aslot *s, uint32_t gen)
{
	unsigned i = index_of(s);
	dev_t dev = (dev_t)atomic_load(&counted[i].dev);
	ino_t ino = (ino_t)atomic_load(&counted[i].ino);
	uint32_t want = gen + 1;
	if (!atomic_compare_exchange_strong(&counted[i].gen1, &want, 0))
		return;
	atomic_fetch_sub(&sfy_async_count, 1);
	sfy_ready_show(dev, ino);
}

void sfy_aslot_sweep(void)
{
	if (!slots)
		return;
	for (unsigned i = 0; i < NSLOT && sfy_async_any(); i++) {
		uint32_t g1 = atomic_load(&counted[i].gen1);
		if (!g1)
			continue;
		reap(&slots[i], g1 - 1);
		if (sfy_aslot_state(&slots[i], g1 - 1) != SFY_ASLOT_PENDING)
			sfy_aslot_seen_end(&slots[i], g1 - 1);
	}
}

void sfy_aslot_ref(struct sfy_aslot *s, uint32_t gen)
{
	if (!sfy_aslot_mine(s))
		return;
	uint64_t r = atomic_load(&s->refs);
	while (r >> 32 == gen && !atomic_compare_exchange_weak(&s->refs, &r, r + 1))
		;
}

void sfy_aslot_unref(struct sfy_aslot *s, uint32_t gen)
{
	if (!sfy_aslot_mine(s))
		return;
	uint64_t r = atomic_load(&s->refs);
	do {
		if (r >> 32 != gen || !(uint32_t)r)
			return;
	} while (!atomic_compare_exchange_weak(&s->refs, &r, r - 1));
	if ((uint32_t)(r - 1) == 0)
		sfy_aslot_abort(s, gen);
}

void sfy_aslot_abort(struct sfy_aslot *s, uint32_t gen)
{
	uint32_t w = atomic_load(&s->word);
	do {
		if (GEN(w) != gen || (w & ST_MASK) != SFY_ASLOT_PENDING || (w & F_ABORT))
			return;
	} while (!atomic_compare_exchange_weak(&s->word, &w, w | F_ABORT));
	void (*hook)(void) = atomic_load(&sfy_aslot_abort_hook);
	if (hook && sfy_aslot_mine(s))
		hook();
}

bool sfy_aslot_orphan(const struct sfy_aslot *s, uint32_t gen)
{
	uint64_t r = atomic_load(&s->refs);
	return r >> 32 == gen && (uint32_t)r == 0;
}

void sfy_aslot_unabort(struct sfy_aslot *s, uint32_t gen)
{
	uint32_t w = atomic_load(&s->word);
	do {
		if (GEN(w) != gen || !(w & F_ABORT))
			return;
	} while (!atomic_compare_exchange_weak(&s->word, &w, w & ~F_ABORT));
}

bool sfy_aslot_aborted(const struct sfy_aslot *s, uint32_t gen)
{
	uint32_t w = atomic_load(&s->word);
	return GEN(w) == gen && (w & F_ABORT);
}
