/* Names of local DNS answers per address (dnsmem.h), in one table shared
 * by the process tree (a sealed MAP_SHARED memfd, shmfd.h):
 *
 *   +-------------+---------------------------+------------------------------+
 *   | header (64) | buckets[DM_NBUCKETS]      | ring[DM_NRING]               |
 *   |             | ctr, seq+1 x DM_BUCKET    | ver, hash, family, addr, name |
 *   +-------------+---------------------------+------------------------------+
 *
 * Adding takes the next sequence number s (atomic fetch-add), writes ring
 * entry s % DM_NRING under a per-entry version (odd while written, 2(s+1)
 * once complete: a seqlock without a lock), then records s+1 in one of the
 * slots of the address's bucket. Bounded: the ring overwrites its oldest
 * entries when it wraps, a bucket its oldest slots -- but each entry
 * carries how restrictive its name's routes are (route.h
 * sfy_route_name_restrictive: 0 all direct, 1 a chain, 2 a block), and a
 * name is never pushed out by a less restrictive one: forgetting that
 * ads.example (blocked on port 8080) shares an address with eight CDN
 * names routed direct would let a connect() to that address on 8080 out.
 * So a bucket gives up its dead slots first, then its least restrictive
 * and oldest slot among those no more restrictive than the newcomer (none:
 * the newcomer is not kept, which only loses a name no more restrictive
 * than all that stay); the ring steps over live entries more restrictive
 * than the newcomer (a bounded number, then a restrictive newcomer takes
 * the slot and a direct one is not kept); and a lookup returns the most
 * restrictive names first. Nothing is ever locked, so fork() at any
 * instant and a process killed mid-write leave nothing held; a torn or
 * stale entry only fails the checks below.
 *
 * Trust. Any process of the tree may write anything into the mapping, so
 * the layout is compiled in (never read from the file), every index read
 * from it is reduced modulo a compiled-in size, and an entry is used only
 * when its version is the one its slot names before and after the copy,
 * its family and address are the ones asked for, its name is one
 * sfy_fakedns_normalize() would produce, and its hash is right. The worst
 * a scribbling process achieves is a name lost or one it gave itself. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <netinet/in.h>

#include "dnsmem.h"
#include "fakedns.h"
#include "log.h"
#include "real.h"
#include "shmfd.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "need lock-free 64-bit atomics");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "need lock-free 32-bit atomics");

/* 16384 answers remembered (a browser session resolves a few hundred
 * names); 4.6 MiB of address space, memory only for the pages written. */
#define DM_NRING 16384u
#define DM_NBUCKETS 4096u
/* Slots per bucket: twice the names kept per address, so that two
 * addresses sharing a bucket still keep theirs. */
#define DM_BUCKET (2 * SFY_DNSMEM_NAMES_MAX)
/* Live restrictive ring entries the writer steps over before it takes one. */
#define DM_RING_SKIP 64
#define DM_MAGIC "SFYDNSM2"

struct dm_hdr {
	struct sfy_shm_head head;
	_Atomic uint64_t next;
	uint8_t pad[40];
};

struct dm_bucket {
	_Atomic uint32_t ctr;
	uint32_t pad;
	_Atomic uint64_t seq1[DM_BUCKET];       /* s + 1; 0 = empty */
};

struct dm_ent {
	_Atomic uint64_t ver;
	uint32_t hash;
	uint8_t family;                         /* 4 or 6 */
	uint8_t len;
	uint8_t sev;                            /* sfy_route_name_restrictive() */
	uint8_t pad;
	uint8_t addr[16];
	char name[SFY_NAME_MAX];
};

_Static_assert(sizeof(struct dm_hdr) == 64, "header layout");

#define DM_BUCKETS_OFF sizeof(struct dm_hdr)
#define DM_RING_OFF (DM_BUCKETS_OFF + DM_NBUCKETS * sizeof(struct dm_bucket))
#define DM_TOTAL (DM_RING_OFF + DM_NRING * sizeof(struct dm_ent))

struct dm_tab {
	struct dm_hdr *hdr;
	struct dm_bucket *buckets;
	struct dm_ent *ring;
	int fd;                 /* -1: private (shared with fork() children only) */
	bool own_fd;
};

static _Atomic(struct dm_tab *) g_tab;
static atomic_bool g_warned;
/* Looked already and found no table: the environment does not change
 * under us (only export and detach, which clear it), so a connect() that
 * asks for names pays one atomic load, not a getenv() and a search. */
static atomic_bool g_absent;

/* The address sa stands for: family 4 (v4-mapped too) or 6. */
static bool key_of(const struct sockaddr *sa, socklen_t len, uint8_t *fam, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		*fam = 4;
		return true;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const uint8_t *b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		if (!memcmp(b, sfy_v4mapped_prefix, 12)) {
			memcpy(addr, b + 12, 4);
			*fam = 4;
		} else {
			memcpy(addr, b, 16);
			*fam = 6;
		}
		return true;
	}
	return false;
}

static uint32_t fnv(uint32_t h, const void *p, size_t n)
{
	const uint8_t *s = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 16777619u;
	return h;
}

static uint32_t addr_hash(uint8_t fam, const uint8_t addr[16])
{
	return fnv(fnv(2166136261u, &fam, 1), addr, 16);
}

static uint32_t ent_hash(uint8_t fam, const uint8_t addr[16], uint8_t sev, const char *name,
			 size_t len)
{
	return fnv(fnv(addr_hash(fam, addr), &sev, 1), name, len);
}

/* ---- the table itself ------------------------------------------------- */

static struct dm_tab *tab_wrap(void *base, int fd, bool own_fd)
{
	struct dm_tab *t = malloc(sizeof(*t));
	if (!t) {
		munmap(base, DM_TOTAL);
		return NULL;
	}
	t->hdr = base;
	t->buckets = (struct dm_bucket *)((char *)base + DM_BUCKETS_OFF);
	t->ring = (struct dm_ent *)((char *)base + DM_RING_OFF);
	t->fd = fd;
	t->own_fd = own_fd;
	return t;
}

static bool tab_is(int fd, uint64_t id)
{
	return sfy_shm_head_is(fd, DM_TOTAL, DM_MAGIC, id);
}

static struct dm_tab *tab_map(int fd, bool own_fd)
{
	void *base = mmap(NULL, DM_TOTAL, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return base == MAP_FAILED ? NULL : tab_wrap(base, fd, own_fd);
}

/* Shared with fork()ed children only: no variable names it. */
static struct dm_tab *tab_private(void)
{
	void *base = sfy_shm_head_private(DM_TOTAL, DM_MAGIC, MAP_NORESERVE);
	return base ? tab_wrap(base, -1, false) : NULL;
}

/* A sealed memfd, inherited across exec. */
static struct dm_tab *tab_memfd(void)
{
	int fd = sfy_shm_head_create(SFY_SHM_DNSMEM_NAME, DM_TOTAL, DM_MAGIC);
	if (fd < 0)
		return NULL;
	struct dm_tab *t = tab_map(fd, true);
	if (!t)
		sfy_real()->close(fd);
	return t;
}

static void tab_free(struct dm_tab *t)
{
	munmap(t->hdr, DM_TOTAL);
	if (t->own_fd && t->fd >= 0)
		sfy_real()->close(t->fd);
	free(t);
}

static struct dm_tab *tab_install(struct dm_tab *t)
{
	struct dm_tab *none = NULL;
	if (!t)
		return NULL;
	if (!atomic_compare_exchange_strong(&g_tab, &none, t)) {
		tab_free(t);
		return none;
	}
	if (t->fd >= 0)
		sfy_shm_guard_set(SFY_SHM_DNSMEM, t->fd);
	return t;
}

/* The tree's table the variable names, wherever it is now; else (create)
 * one of this process and its fork()ed children. A table named but out of
 * reach is said once: routes by name then see only this process's own
 * answers. */
static struct dm_tab *tab_get(bool create)
{
	struct dm_tab *t = atomic_load_explicit(&g_tab, memory_order_acquire);
	if (t)
		return t;
	if (!create && atomic_load_explicit(&g_absent, memory_order_acquire))
		return NULL;
	bool own, named;
	int fd = sfy_shm_attach(SFY_SHM_DNSMEM, tab_is, &own, &named);
	if (fd >= 0) {
		if ((t = tab_map(fd, own)))
			return tab_install(t);
		if (own)
			sfy_real()->close(fd);
	}
	if (named && !atomic_exchange(&g_warned, true))
		sfy_warn("the tree's table of local DNS answers (%s) is out of reach: host rules "
			 "see only this process's own lookups", SFY_DNSMEM_ENV);
	atomic_store(&g_absent, true);
	return create ? tab_install(tab_private()) : NULL;
}

int sfy_dnsmem_export_fd(void)
{
	struct dm_tab *t = tab_get(false);
	if (!t || t->fd < 0) {
		sfy_dnsmem_detach(false);
		if (!(t = tab_install(tab_memfd())))
			return -ENOSYS;
	}
	if (!sfy_shm_export(SFY_SHM_DNSMEM, t->hdr->head.id))
		return -ENOSYS;
	return sfy_shm_guard_get(SFY_SHM_DNSMEM);
}

void sfy_dnsmem_detach(bool close_fd)
{
	struct dm_tab *t = atomic_exchange(&g_tab, NULL);
	atomic_store(&g_absent, false);
	if (!t)
		return;
	if (t->fd >= 0) {
		int fd = sfy_shm_guard_get(SFY_SHM_DNSMEM);
		sfy_shm_guard_set(SFY_SHM_DNSMEM, -1);
		if (fd >= 0)
			t->fd = fd;     /* where it is now */
		t->own_fd = close_fd;   /* else the variable may still name it */
		if (close_fd)
			unsetenv(SFY_DNSMEM_ENV);
	}
	tab_free(t);
}

/* ---- reading and writing ----------------------------------------------- */

/* Entry of sequence s copied out if sound and for (fam, addr): its name's
 * length (its severity in *sev), or -1. */
static int ent_read(const struct dm_tab *t, uint64_t s, uint8_t fam, const uint8_t addr[16],
		    char out[SFY_NAME_MAX + 1], uint8_t *sev)
{
	struct dm_ent *e = &t->ring[s % DM_NRING];
	uint64_t want = 2 * (s + 1);
	uint8_t efam, elen, esev, eaddr[16];
	uint32_t ehash;
	char norm[SFY_NAME_MAX + 1];
	if (atomic_load_explicit(&e->ver, memory_order_acquire) != want)
		return -1;
	efam = e->family;
	elen = e->len;
	esev = e->sev;
	ehash = e->hash;
	memcpy(eaddr, e->addr, 16);
	/* Another address's entry (the bucket is shared): no need for its name. */
	if (efam != fam || memcmp(eaddr, addr, 16) || elen == 0 || esev > 2)
		return -1;
	memcpy(out, e->name, elen);
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&e->ver, memory_order_relaxed) != want)
		return -1;
	out[elen] = '\0';       /* elen <= 255 = SFY_NAME_MAX */
	if (strlen(out) != elen || sfy_fakedns_normalize(out, norm) != (int)elen ||
	    memcmp(norm, out, elen) || ent_hash(fam, addr, esev, out, elen) != ehash)
		return -1;
	*sev = esev;
	return elen;
}

/* The ring entry of sequence s as it stands: its address and severity if
 * it is complete (whatever its name), else false. */
static bool ent_peek(const struct dm_tab *t, uint64_t s, uint8_t *fam, uint8_t addr[16],
		     uint8_t *sev)
{
	struct dm_ent *e = &t->ring[s % DM_NRING];
	uint64_t want = 2 * (s + 1);
	if (atomic_load_explicit(&e->ver, memory_order_acquire) != want)
		return false;
	*fam = e->family;
	*sev = e->sev;
	memcpy(addr, e->addr, 16);
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&e->ver, memory_order_relaxed) == want && *sev <= 2;
}

static struct dm_bucket *bucket_of(const struct dm_tab *t, uint8_t fam, const uint8_t addr[16])
{
	return &t->buckets[addr_hash(fam, addr) % DM_NBUCKETS];
}

/* The names for (fam, addr), the most restrictive first and among equals
 * the most recent, deduplicated; how many. sevs (may be NULL): each
 * name's severity. */
static size_t lookup(const struct dm_tab *t, uint8_t fam, const uint8_t addr[16],
		     char names[][SFY_NAME_MAX + 1], uint8_t *sevs, size_t max)
{
	const struct dm_bucket *b = bucket_of(t, fam, addr);
	char got[DM_BUCKET][SFY_NAME_MAX + 1];
	uint64_t seq[DM_BUCKET];
	uint8_t sev[DM_BUCKET];
	size_t ng = 0, n = 0;
	for (size_t i = 0; i < DM_BUCKET; i++) {
		uint64_t v = atomic_load_explicit(&b->seq1[i], memory_order_acquire);
		bool again = false;
		for (size_t k = 0; k < ng && !again; k++)
			again = seq[k] == v - 1;
		if (!v || again || ent_read(t, v - 1, fam, addr, got[ng], &sev[ng]) < 0)
			continue;
		seq[ng++] = v - 1;
	}
	bool used[DM_BUCKET] = { false };
	while (n < max) {
		size_t best = DM_BUCKET;
		for (size_t i = 0; i < ng; i++)
			if (!used[i] && (best == DM_BUCKET || sev[i] > sev[best] ||
					 (sev[i] == sev[best] && seq[i] > seq[best])))
				best = i;
		if (best == DM_BUCKET)
			break;
		used[best] = true;
		bool dup = false;
		for (size_t k = 0; k < n && !dup; k++)
			dup = !strcmp(names[k], got[best]);
		if (dup)
			continue;
		memcpy(names[n], got[best], strlen(got[best]) + 1);
		if (sevs)
			sevs[n] = sev[best];
		n++;
	}
	return n;
}

/* Is ring entry s (of fam/addr) still one its bucket names? */
static bool ent_live(const struct dm_tab *t, uint64_t s, uint8_t fam, const uint8_t addr[16])
{
	const struct dm_bucket *b = bucket_of(t, fam, addr);
	for (size_t i = 0; i < DM_BUCKET; i++)
		if (atomic_load_explicit(&b->seq1[i], memory_order_relaxed) == s + 1)
			return true;
	return false;
}

/* A ring sequence number to write an entry of severity sev at: the next
 * one, stepping over slots whose entry (of whatever earlier wrap: a slot
 * stepped over keeps its entry) is live and more restrictive than sev;
 * false when a direct-only name finds nothing but those. */
static bool ring_claim(struct dm_tab *t, uint8_t sev, uint64_t *out)
{
	for (unsigned tries = 0;; tries++) {
		uint64_t s = atomic_fetch_add(&t->hdr->next, 1);
		uint64_t v = atomic_load_explicit(&t->ring[s % DM_NRING].ver, memory_order_acquire);
		uint64_t old = v / 2 - 1;
		uint8_t ofam, osev, oaddr[16];
		if (!v || v % 2 || old >= s || old % DM_NRING != s % DM_NRING ||
		    !ent_peek(t, old, &ofam, oaddr, &osev) || osev <= sev ||
		    !ent_live(t, old, ofam, oaddr)) {
			*out = s;
			return true;
		}
		if (tries + 1 >= DM_RING_SKIP) {
			*out = s;
			return sev > 0;
		}
	}
}

/* Records s+1 (an entry of severity sev) in bucket b: a dead slot first,
 * else the least restrictive and oldest live one no more restrictive than
 * sev. A slot changed under us is looked at again (bounded). */
static void bucket_put(const struct dm_tab *t, struct dm_bucket *b, uint64_t s, uint8_t sev)
{
	for (int round = 0; round < 4; round++) {
		size_t pick = DM_BUCKET;
		uint64_t pv = 0, pseq = 0;
		uint8_t psev = 0;
		for (size_t i = 0; i < DM_BUCKET; i++) {
			uint64_t v = atomic_load_explicit(&b->seq1[i], memory_order_acquire);
			uint8_t ofam, osev, oaddr[16];
			if (!v || !ent_peek(t, v - 1, &ofam, oaddr, &osev) ||
			    bucket_of(t, ofam, oaddr) != b) {
				pick = i;       /* empty, overwritten in the ring, or foreign */
				pv = v;
				break;
			}
			if (osev > sev)
				continue;
			if (pick == DM_BUCKET || osev < psev || (osev == psev && v - 1 < pseq)) {
				pick = i;
				pv = v;
				pseq = v - 1;
				psev = osev;
			}
		}
		if (pick == DM_BUCKET)
			return;         /* every slot more restrictive: not kept */
		if (atomic_compare_exchange_strong_explicit(&b->seq1[pick], &pv, s + 1,
							    memory_order_release,
							    memory_order_relaxed))
			return;
	}
}

void sfy_dnsmem_add(const char *name, const struct sockaddr *sa, socklen_t len, int sev)
{
	char key[SFY_NAME_MAX + 1];
	char have[SFY_DNSMEM_NAMES_MAX][SFY_NAME_MAX + 1];
	uint8_t hsev[SFY_DNSMEM_NAMES_MAX];
	uint8_t fam, addr[16], sv = (uint8_t)(sev < 0 ? 0 : sev > 2 ? 2 : sev);
	int saved = errno;
	int n = name ? sfy_fakedns_normalize(name, key) : -EINVAL;
	struct dm_tab *t;
	uint64_t s;
	if (n <= 0 || !key_of(sa, len, &fam, addr) || !(t = tab_get(true)))
		goto out;
	/* Already known as restrictive: the table keeps its room for other
	 * answers. */
	size_t nh = lookup(t, fam, addr, have, hsev, SFY_DNSMEM_NAMES_MAX);
	for (size_t i = 0; i < nh; i++)
		if (!strcmp(have[i], key) && hsev[i] >= sv)
			goto out;
	if (!ring_claim(t, sv, &s))
		goto out;
	struct dm_ent *e = &t->ring[s % DM_NRING];
	atomic_store_explicit(&e->ver, 2 * (s + 1) - 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	e->family = fam;
	e->len = (uint8_t)n;
	e->sev = sv;
	memcpy(e->addr, addr, 16);
	memcpy(e->name, key, (size_t)n);
	e->hash = ent_hash(fam, addr, sv, key, (size_t)n);
	atomic_store_explicit(&e->ver, 2 * (s + 1), memory_order_release);
	bucket_put(t, bucket_of(t, fam, addr), s, sv);
out:
	errno = saved;
}

size_t sfy_dnsmem_names(const struct sockaddr *sa, socklen_t len,
			char names[][SFY_NAME_MAX + 1], size_t max)
{
	uint8_t fam, addr[16];
	int saved = errno;
	struct dm_tab *t;
	size_t n = 0;
	if (key_of(sa, len, &fam, addr) && (t = tab_get(false)))
		n = lookup(t, fam, addr, names, NULL, max);
	errno = saved;
	return n;
}
