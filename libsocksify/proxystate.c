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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "proxystate.h"
#include "real.h"
#include "shmfd.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "need lock-free 64-bit atomics");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "need lock-free 32-bit atomics");

/* A tree talks to a handful of proxies (a config holds at most 32, nested
 * or named chains a few more): 256 entries leave the probe chains short and
 * cost 72 KiB of address space per process. */
#define PX_NENTS 256u
#define PX_MAGIC "SFYPXST1"

struct px_hdr {
	struct sfy_shm_head head;
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

/* Is fd (sealed: shmfd.h) one of our tables, of this id? */
static bool tab_is(int fd, uint64_t id)
{
	return sfy_shm_head_is(fd, PX_TOTAL, PX_MAGIC, id);
}

static struct px_tab *tab_map(int fd, bool own_fd)
{
	void *base = mmap(NULL, PX_TOTAL, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return NULL;
	return tab_wrap(base, fd, own_fd, true);
}

/* SOCKSIFY_PROXYSTATE_FD=FD:PID:ID, wherever the table is now (shmfd.h:
 * moved away from a program's close, or reopened through /proc when it was
 * closed out of our reach). This process does not export it again (that
 * would take a setenv() in a hook): its children find it the same way. */
static struct px_tab *tab_attach_env(void)
{
	const char *v = getenv(SFY_PROXYSTATE_ENV);
	struct sfy_shm_ref r;
	bool own;
	if (!sfy_shm_parse(v, &r))
		return NULL;
	int fd = sfy_shm_find(&r, SFY_SHM_PXSTATE_NAME, tab_is, &own);
	struct px_tab *t = fd >= 0 ? tab_map(fd, own) : NULL;
	if (t)
		return t;
	if (fd >= 0 && own)
		sfy_real()->close(fd);
	sfy_debug("proxy state: %s=%s is not usable, keeping a private table",
		  SFY_PROXYSTATE_ENV, v);
	return NULL;
}

/* Shared with fork()ed children only. */
static struct px_tab *tab_private(void)
{
	void *base = sfy_shm_head_private(PX_TOTAL, PX_MAGIC, 0);
	return base ? tab_wrap(base, -1, false, false) : NULL;
}

/* A sealed memfd, inherited across exec. */
static struct px_tab *tab_memfd(void)
{
	int fd = sfy_shm_head_create(SFY_SHM_PXSTATE_NAME, PX_TOTAL, PX_MAGIC);
	if (fd < 0)
		return NULL;
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
	if (t->shared)
		sfy_shm_guard_set(SFY_SHM_PXSTATE, t->fd);
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
	if (t && t->fd >= 0 && t->shared)
		goto export;            /* inherited: name it where it is now */
	sfy_pxtab_detach(false);
	if (!(t = tab_install(tab_memfd())))
		return -ENOSYS;
export:;
	char buf[80];
	int fd = sfy_shm_guard_get(SFY_SHM_PXSTATE);  /* moved since, perhaps */
	sfy_shm_format(fd, t->hdr->head.id, buf, sizeof(buf));
	setenv(SFY_PROXYSTATE_ENV, buf, 1);
	return fd;
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
	if (t->shared) {
		int fd = sfy_shm_guard_get(SFY_SHM_PXSTATE);
		sfy_shm_guard_set(SFY_SHM_PXSTATE, -1);
		if (fd >= 0)
			t->fd = fd;     /* where it is now */
	}
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
