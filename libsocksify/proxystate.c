/* The per-proxy state table shared by a process tree.
 *
 *   +------------------+-------------------------------------------------+
 *   | header (64)      | ents[PX_NENTS], open addressing, linear probing |
 *   +------------------+-------------------------------------------------+
 *   ent: tag (hash|1, 0 = free) | state (when << 2 | verdict) | ready |
 *        port, proto, hostlen, host[256]
 *
 * An entry is claimed by compare-and-swap on its tag, its key written, then
 * published by `ready` (release); its key never changes afterwards, only
 * its state (one 64-bit word, so verdict and time always go together). Two
 * threads adding the same key at once may both claim a slot: lookups take
 * the newest matching entry and updates go to every matching one, so a
 * duplicate is a wasted slot, never a wrong answer. A process killed between
 * claim and publish leaves one unusable slot, never a lock.
 *
 * The memfd is sealed against shrinking and growing (so no process of the
 * tree can make our mapping fault) and against further seals; it cannot be
 * sealed against writes, so every field read back is range-checked: lookups
 * are bounded by the compiled-in entry count, never by anything stored. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proxystate.h"
#include "real.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "need lock-free 64-bit atomics");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "need lock-free 32-bit atomics");

/* A tree talks to a handful of proxies (a config holds at most 32, nested
 * or named chains a few more): 256 entries leave the probe chains short and
 * cost 72 KiB of address space per process. */
#define PX_NENTS 256u
#define PX_MAGIC "SFYPXST1"
/* As for the fake-DNS table: above the fds shells use for redirections. */
#define PX_FD_MIN 100

struct px_hdr {
	char magic[8];
	uint64_t id;                    /* random, names this table in the variable */
	_Atomic uint32_t seeded;        /* filled from the file cache */
	uint8_t pad[44];
};

struct px_ent {
	_Atomic uint64_t tag;
	_Atomic uint64_t state;
	_Atomic uint32_t ready;
	uint16_t port;
	uint8_t proto;
	uint8_t hostlen;
	char host[SFY_HOST_MAX + 1];
};

_Static_assert(sizeof(struct px_hdr) == 64, "header layout");

#define PX_TOTAL (sizeof(struct px_hdr) + PX_NENTS * sizeof(struct px_ent))

struct px_tab {
	struct px_hdr *hdr;
	struct px_ent *ents;
	int fd;                         /* -1 for a private table */
	bool own_fd;                    /* opened here: ours to close */
	bool shared;                    /* came from (or went to) the variable */
};

static _Atomic(struct px_tab *) g_tab;

bool sfy_pxkey_of(const struct sfy_proxy *p, struct sfy_pxkey *k)
{
	size_t n = strnlen(p->host, sizeof(p->host));
	if (n == 0 || n > SFY_HOST_MAX)
		return false;
	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p->host[i];
		if (c <= ' ' || c == 0x7f)
			return false;
		k->host[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	k->hostlen = (uint8_t)n;
	k->proto = (uint8_t)p->proto;
	k->port = p->port;
	return true;
}

bool sfy_pxkey_eq(const struct sfy_pxkey *a, const struct sfy_pxkey *b)
{
	return a->proto == b->proto && a->port == b->port && a->hostlen == b->hostlen &&
	       !memcmp(a->host, b->host, a->hostlen);
}

static uint64_t key_tag(const struct sfy_pxkey *k)
{
	uint64_t h = 14695981039346656037ull;
	uint8_t head[3] = { k->proto, (uint8_t)(k->port >> 8), (uint8_t)k->port };
	for (size_t i = 0; i < sizeof(head); i++)
		h = (h ^ head[i]) * 1099511628211ull;
	for (size_t i = 0; i < k->hostlen; i++)
		h = (h ^ (uint8_t)k->host[i]) * 1099511628211ull;
	return h | 1;
}

/* ---- creating and attaching ------------------------------------------- */

static struct px_tab *tab_wrap(void *base, int fd, bool own_fd, bool shared)
{
	struct px_tab *t = malloc(sizeof(*t));
	if (!t) {
		munmap(base, PX_TOTAL);
		return NULL;
	}
	t->hdr = base;
	t->ents = (struct px_ent *)((char *)base + sizeof(struct px_hdr));
	t->fd = fd;
	t->own_fd = own_fd;
	t->shared = shared;
	return t;
}

/* Is fd one of our tables (of id, when id != 0), sealed so that nobody can
 * shrink it under our mapping? */
static bool tab_check(int fd, uint64_t id)
{
	struct stat st;
	struct px_hdr h;
	int seals = fcntl(fd, F_GET_SEALS);
	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == (off_t)PX_TOTAL &&
	       seals >= 0 && (seals & F_SEAL_SHRINK) &&
	       pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) && !memcmp(h.magic, PX_MAGIC, 8) &&
	       (!id || h.id == id);
}

static struct px_tab *tab_map(int fd, bool own_fd)
{
	void *base = mmap(NULL, PX_TOTAL, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return NULL;
	return tab_wrap(base, fd, own_fd, true);
}

/* SOCKSIFY_PROXYSTATE_FD=FD:PID:ID. A program may close inherited fds
 * (Python's subprocess does by default): the table is then reopened through
 * the process that holds it (the launcher became the top program), read
 * only from there; this process does not export it again (that would take
 * a setenv() in a hook), so its children do the same. */
static struct px_tab *tab_attach_env(void)
{
	const char *v = getenv(SFY_PROXYSTATE_ENV);
	long fd = -1, pid = 0;
	unsigned long long id = 0;
	char path[64];

	if (!v || sscanf(v, "%ld:%ld:%llx", &fd, &pid, &id) != 3 || fd < 0 || fd > 1 << 24 ||
	    !id)
		return NULL;
	if (tab_check((int)fd, id))
		return tab_map((int)fd, false);
	if (pid <= 0)
		return NULL;
	snprintf(path, sizeof(path), "/proc/%ld/fd/%ld", pid, fd);
	int nfd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (nfd < 0)
		goto bad;
	struct px_tab *t = tab_check(nfd, id) ? tab_map(nfd, true) : NULL;
	if (t)
		return t;
	sfy_real()->close(nfd);
bad:
	sfy_debug("proxy state: %s=%s is not usable, keeping a private table",
		  SFY_PROXYSTATE_ENV, v);
	return NULL;
}

static void hdr_init(struct px_hdr *h)
{
	memcpy(h->magic, PX_MAGIC, 8);
	if (getrandom(&h->id, sizeof(h->id), GRND_NONBLOCK) != (ssize_t)sizeof(h->id))
		h->id = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
	h->id |= 1;     /* 0 means "no id" */
}

/* Shared with fork()ed children only. */
static struct px_tab *tab_private(void)
{
	void *base = mmap(NULL, PX_TOTAL, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			  -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	hdr_init(base);
	return tab_wrap(base, -1, false, false);
}

/* A sealed memfd, inherited across exec (no close-on-exec). */
static struct px_tab *tab_memfd(void)
{
	int fd = memfd_create("socksify-proxystate", MFD_ALLOW_SEALING);
	if (fd < 0)
		return NULL;
	if (fd < PX_FD_MIN) {
		int hi = fcntl(fd, F_DUPFD, PX_FD_MIN);
		if (hi >= 0) {
			sfy_real()->close(fd);
			fd = hi;
		}
	}
	struct px_hdr h = { 0 };
	hdr_init(&h);
	if (ftruncate(fd, (off_t)PX_TOTAL) < 0 ||
	    pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		sfy_real()->close(fd);
		return NULL;
	}
	struct px_tab *t = tab_map(fd, true);
	if (!t)
		sfy_real()->close(fd);
	return t;
}

static void tab_free(struct px_tab *t)
{
	munmap(t->hdr, PX_TOTAL);
	if (t->own_fd && t->fd >= 0)
		sfy_real()->close(t->fd);
	free(t);
}

/* Racing first calls each build one; the first to publish wins. */
static struct px_tab *tab_install(struct px_tab *t)
{
	struct px_tab *none = NULL;
	if (!t)
		return NULL;
	if (!atomic_compare_exchange_strong(&g_tab, &none, t)) {
		tab_free(t);
		return none;
	}
	return t;
}

static struct px_tab *tab_get(void)
{
	struct px_tab *t = atomic_load_explicit(&g_tab, memory_order_acquire);
	if (t)
		return t;
	t = tab_attach_env();
	if (!t)
		t = tab_private();
	return tab_install(t);
}

int sfy_pxtab_export_fd(void)
{
	struct px_tab *t = tab_get();
	if (t && t->fd >= 0 && t->shared && !t->own_fd)
		return t->fd;           /* inherited as is: the variable is right */
	if (t && t->fd >= 0 && t->own_fd && t->shared)
		goto export;            /* reopened from /proc: export our fd */
	sfy_pxtab_detach(false);
	if (!(t = tab_install(tab_memfd())))
		return -ENOSYS;
export:;
	char buf[80];
	snprintf(buf, sizeof(buf), "%d:%ld:%016llx", t->fd, (long)getpid(),
		 (unsigned long long)t->hdr->id);
	if (t->own_fd) {
		/* The launcher's fd must survive exec. */
		int fl = fcntl(t->fd, F_GETFD);
		if (fl >= 0)
			fcntl(t->fd, F_SETFD, fl & ~FD_CLOEXEC);
	}
	setenv(SFY_PROXYSTATE_ENV, buf, 1);
	return t->fd;
}

bool sfy_pxtab_shared(void)
{
	struct px_tab *t = tab_get();
	return t && t->shared;
}

bool sfy_pxtab_seeded(void)
{
	struct px_tab *t = tab_get();
	return t && atomic_load(&t->hdr->seeded) == 1;
}

void sfy_pxtab_set_seeded(void)
{
	struct px_tab *t = tab_get();
	if (t)
		atomic_store(&t->hdr->seeded, 1);
}

void sfy_pxtab_detach(bool close_fd)
{
	struct px_tab *t = atomic_exchange(&g_tab, NULL);
	if (!t)
		return;
	if (close_fd && t->fd >= 0 && t->shared) {
		t->own_fd = true;
		unsetenv(SFY_PROXYSTATE_ENV);
	} else if (t->shared) {
		t->own_fd = false;      /* the variable may still name it */
	}
	tab_free(t);
}

/* ---- lookups ------------------------------------------------------------ */

static bool ent_is(struct px_ent *e, uint64_t tag, const struct sfy_pxkey *k)
{
	/* Key fields are read only after `ready`; they may still be garbage
	 * from a hostile writer, but every length is bounded by its type. */
	return atomic_load_explicit(&e->tag, memory_order_relaxed) == tag &&
	       atomic_load_explicit(&e->ready, memory_order_acquire) == 1 &&
	       e->proto == k->proto && e->port == k->port && e->hostlen == k->hostlen &&
	       !memcmp(e->host, k->host, k->hostlen);
}

/* Decodes a state word; false for garbage (unknown verdict, far future). */
static bool state_ok(uint64_t s, int64_t now, struct sfy_pxstate *out)
{
	int v = (int)(s & 3);
	int64_t when = (int64_t)(s >> 2);
	if (v != 1 && v != 2)
		return false;
	if (when > now + SFY_PX_FUTURE_SLACK)
		return false;
	out->v = v;
	out->when = when;
	return true;
}

struct sfy_pxstate sfy_pxtab_get(const struct sfy_pxkey *k, int64_t now, int64_t max_age)
{
	struct sfy_pxstate best = { 0, 0 }, s;
	struct px_tab *t = tab_get();
	if (!t)
		return best;
	uint64_t tag = key_tag(k);
	for (uint32_t i = 0, at = (uint32_t)(tag >> 1) % PX_NENTS; i < PX_NENTS;
	     i++, at = (at + 1) % PX_NENTS) {
		struct px_ent *e = &t->ents[at];
		uint64_t et = atomic_load_explicit(&e->tag, memory_order_acquire);
		if (et == 0)
			break;
		if (!ent_is(e, tag, k) || !state_ok(atomic_load(&e->state), now, &s))
			continue;
		if (s.when > now - max_age && (best.v == 0 || s.when >= best.when))
			best = s;
	}
	return best;
}

/* Newer wins; a garbage state is overwritten. */
static void ent_merge(struct px_ent *e, uint64_t want, int64_t when, int64_t now)
{
	uint64_t old = atomic_load(&e->state);
	struct sfy_pxstate s;
	do {
		if (state_ok(old, now, &s) && s.when > when)
			return;
	} while (!atomic_compare_exchange_weak(&e->state, &old, want));
}

int sfy_pxtab_put(const struct sfy_pxkey *k, int v, int64_t when, int64_t now)
{
	struct px_tab *t = tab_get();
	if (!t)
		return -ENOMEM;
	if ((v != 1 && v != 2) || when < 0 || when > now + SFY_PX_FUTURE_SLACK)
		return -EINVAL;
	uint64_t tag = key_tag(k), want = (uint64_t)when << 2 | (uint64_t)v;
	bool stored = false;
	for (uint32_t i = 0, at = (uint32_t)(tag >> 1) % PX_NENTS; i < PX_NENTS;
	     i++, at = (at + 1) % PX_NENTS) {
		struct px_ent *e = &t->ents[at];
		uint64_t et = atomic_load_explicit(&e->tag, memory_order_acquire);
		if (et == 0) {
			if (stored)
				return 0;
			if (atomic_compare_exchange_strong(&e->tag, &et, tag)) {
				e->proto = k->proto;
				e->port = k->port;
				e->hostlen = k->hostlen;
				memcpy(e->host, k->host, k->hostlen);
				e->host[k->hostlen] = 0;
				atomic_store(&e->state, want);
				atomic_store_explicit(&e->ready, 1, memory_order_release);
				return 0;
			}
			/* Lost the slot: et is now its tag; look at it as taken. */
		}
		if (et == tag && ent_is(e, tag, k)) {
			ent_merge(e, want, when, now);
			stored = true;
		}
	}
	return stored ? 0 : -ENOSPC;
}
