/* The fake-address table shared by a whole process tree.
 *
 * One MAP_SHARED mapping of a sealed memfd (shmfd.h: inherited across
 * fork(), found again after exec() through SOCKSIFY_FAKEDNS_FD=FD:PID:ID),
 * lock-free so that a process killed at any instant never leaves it locked:
 *
 *   +-----------+------------------+----------------------+----------------+
 *   | header    | slots[nslots]    | ents[capacity]       | heap           |
 *   | (1 page)  | u32: index+1     | off+1, hash, len     | names, NUL-end |
 *   +-----------+------------------+----------------------+----------------+
 *
 * Index i is address first + i. A new name takes an index and heap bytes by
 * atomic fetch-add, writes its entry, publishes it (release), then claims
 * an empty slot of its hash chain by compare-and-swap. A thread that loses
 * the slot race to the same name uses the winner's index; its own index is
 * simply never handed out (a bounded waste, never a wrong mapping). Pages
 * of the memfd are only allocated when written, so a big range costs
 * address space, not memory.
 *
 * Trust. Any process of the tree can write anything into the mapping (it
 * cannot be sealed against writes), so:
 *  - the sizes are validated once, at attach, and kept here; the shared
 *    header is never read again except its two counters, each loaded once
 *    and range-checked;
 *  - an entry is copied out and used only if its offset and length fit,
 *    the name is one sfy_fakedns_normalize() would produce, its hash is
 *    right and its hash chain leads back to it;
 *  - each process keeps a private record (its own memory, inherited only by
 *    fork()) of every index it handed out or accepted, and believes it
 *    first: rewriting the shared entry of an address this process gave out
 *    cannot make its next connect() go to another name. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fakedns.h"
#include "log.h"
#include "real.h"
#include "shmfd.h"

/* The table is shared between processes through plain memory: only
 * always-lock-free atomics are address-free (C11 7.17.5 note). */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "need lock-free 32-bit atomics");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "need lock-free 64-bit atomics");

/* A crawler resolving 100,000 names must keep working: 2^20 names is ten
 * times that, and costs ~85 MiB of address space but memory only for the
 * names actually used. A /8 (16M addresses) is capped to this. */
#define FAKE_MAX_NAMES (1u << 20)
/* Heap budget: host names average ~20 bytes; 64 per name plus a slack that
 * holds 4096 maximal names keeps the heap from running out before the
 * addresses do in any realistic mix. */
#define FAKE_HEAP_PER_NAME 64u
#define FAKE_HEAP_SLACK (4096u * (SFY_NAME_MAX + 1))
#define FAKE_HDR_SIZE 4096u
#define FAKE_MAGIC "SFYFAKE1"
#define FAKE_MEMFD_NAME SFY_SHM_FAKEDNS_NAME

struct fake_hdr {
	char magic[8];
	uint32_t first;                 /* first address handed out, host order */
	uint32_t net;                   /* the range, host order */
	uint32_t prefix;
	uint32_t capacity;              /* addresses: index < capacity */
	uint32_t nslots;                /* power of two, >= 2 * capacity */
	uint32_t pad;
	uint64_t heap_size;
	uint64_t total;                 /* bytes of the whole mapping */
	uint64_t id;                    /* random, names this table in the variable */
	_Atomic uint64_t next;          /* next index (may pass capacity) */
	_Atomic uint64_t heap_used;
};

struct fake_ent {
	_Atomic uint32_t off1;          /* heap offset + 1; 0 = not published */
	_Atomic uint32_t hash;
	_Atomic uint32_t len;
};

struct fake_tab {
	/* The shared mapping. */
	struct fake_hdr *hdr;           /* only next and heap_used are read */
	_Atomic uint32_t *slots;
	struct fake_ent *ents;
	char *heap;
	/* Its layout as validated at attach (or made at creation). */
	uint32_t first, net, prefix, capacity, nslots;
	uint64_t heap_size, total, id;
	int fd;                         /* where it was found or made (then
					   the guard in shmfd.c follows it) */
	bool own_fd;                    /* opened here, not inherited */
	/* This process's record: index -> the name it stands for here, and
	 * its own hash chains of index+1 (private anonymous memory, only the
	 * pages used are ever allocated). */
	_Atomic(char *) *mine;
	_Atomic uint32_t *mslots;
};

static _Atomic(struct fake_tab *) g_tab;
static _Atomic uint32_t cfg_net = 0xe0000000u;  /* 224.0.0.0/8 */
static _Atomic uint32_t cfg_prefix = 8;
/* The variable names a table this process cannot reach: fail closed. */
static atomic_bool g_unreachable;

void sfy_fakedns_configure(uint32_t net, uint8_t prefix)
{
	if (prefix > 32)
		return;
	uint32_t mask = prefix ? ~0u << (32 - prefix) : 0;
	atomic_store(&cfg_net, net & mask);
	atomic_store(&cfg_prefix, prefix);
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

/* Layout of a header (a private copy); false if inconsistent: sizes out of
 * bounds, addresses outside the range. */
static bool layout(const struct fake_hdr *h, uint64_t *ents_off, uint64_t *heap_off,
		   uint64_t *total)
{
	if (h->capacity == 0 || h->capacity > FAKE_MAX_NAMES || h->nslots < 2 * h->capacity ||
	    (h->nslots & (h->nslots - 1)) || h->nslots > 4 * FAKE_MAX_NAMES ||
	    h->heap_size < FAKE_HEAP_SLACK ||
	    h->heap_size > (uint64_t)h->capacity * (SFY_NAME_MAX + 1) + FAKE_HEAP_SLACK ||
	    h->prefix > 32)
		return false;
	uint64_t size = 1ull << (32 - h->prefix);
	uint32_t mask = h->prefix ? ~0u << (32 - h->prefix) : 0;
	if ((h->net & mask) != h->net || h->first < h->net ||
	    (uint64_t)(h->first - h->net) + h->capacity > size)
		return false;
	*ents_off = align_up(FAKE_HDR_SIZE + (uint64_t)h->nslots * 4, 8);
	*heap_off = *ents_off + (uint64_t)h->capacity * sizeof(struct fake_ent);
	*total = align_up(*heap_off + h->heap_size, FAKE_HDR_SIZE);
	return true;
}

static void *anon(uint64_t size, int share)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, share | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* The table over mapping base (of fd, or -1), laid out as h says
 * (validated). The mapping is unmapped on failure. */
static struct fake_tab *tab_wrap(void *base, const struct fake_hdr *h, int fd, bool own_fd)
{
	uint64_t eo, ho, total;
	if (!layout(h, &eo, &ho, &total))
		return NULL;
	struct fake_tab *t = calloc(1, sizeof(*t));
	if (t) {
		t->mine = anon((uint64_t)h->capacity * sizeof(*t->mine), MAP_PRIVATE);
		t->mslots = anon((uint64_t)h->nslots * sizeof(*t->mslots), MAP_PRIVATE);
	}
	if (!t || !t->mine || !t->mslots) {
		if (t && t->mine)
			munmap(t->mine, (uint64_t)h->capacity * sizeof(*t->mine));
		if (t && t->mslots)
			munmap(t->mslots, (uint64_t)h->nslots * sizeof(*t->mslots));
		free(t);
		munmap(base, total);
		return NULL;
	}
	t->hdr = base;
	t->slots = (_Atomic uint32_t *)((char *)base + FAKE_HDR_SIZE);
	t->ents = (struct fake_ent *)((char *)base + eo);
	t->heap = (char *)base + ho;
	t->first = h->first;
	t->net = h->net;
	t->prefix = h->prefix;
	t->capacity = h->capacity;
	t->nslots = h->nslots;
	t->heap_size = h->heap_size;
	t->total = total;
	t->id = h->id;
	t->fd = fd;
	t->own_fd = own_fd;
	return t;
}

/* fd's header, when it describes a table (of id) exactly fd's size. */
static bool hdr_read(int fd, uint64_t id, struct fake_hdr *h)
{
	uint64_t eo, ho, total;
	int64_t size = sfy_shm_sealed_size(fd);
	return size >= (int64_t)FAKE_HDR_SIZE &&
	       pread(fd, h, sizeof(*h), 0) == (ssize_t)sizeof(*h) &&
	       !memcmp(h->magic, FAKE_MAGIC, 8) && layout(h, &eo, &ho, &total) &&
	       total == h->total && total == (uint64_t)size && h->id == id;
}

static bool tab_is(int fd, uint64_t id)
{
	struct fake_hdr h;
	return hdr_read(fd, id, &h);
}

/* Maps fd with the layout read from it now: what we checked is what we
 * use, whatever the file says later. */
static struct fake_tab *tab_map(int fd, uint64_t id, bool own_fd)
{
	struct fake_hdr h;
	if (!hdr_read(fd, id, &h))
		return NULL;
	void *base = mmap(NULL, h.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return NULL;
	return tab_wrap(base, &h, fd, own_fd);
}

/* The table the variable names, wherever it is now (shmfd.h). */
static struct fake_tab *tab_attach(const struct sfy_shm_ref *r)
{
	bool own;
	int fd = sfy_shm_find(r, FAKE_MEMFD_NAME, tab_is, &own);
	if (fd < 0)
		return NULL;
	struct fake_tab *t = tab_map(fd, r->id, own);
	if (!t && own)
		sfy_real()->close(fd);
	return t;
}

static struct fake_tab *tab_create(void)
{
	struct fake_hdr h = { .magic = FAKE_MAGIC };
	uint32_t prefix = atomic_load(&cfg_prefix), net = atomic_load(&cfg_net);
	uint64_t size = 1ull << (32 - prefix), eo, ho, total;
	uint64_t usable = size >= 4 ? size - 2 : size;  /* skip network and broadcast */

	h.net = net;
	h.prefix = prefix;
	h.first = net + (size >= 4);
	h.capacity = (uint32_t)(usable < FAKE_MAX_NAMES ? usable : FAKE_MAX_NAMES);
	h.nslots = 8;
	while (h.nslots < 2 * h.capacity)
		h.nslots *= 2;
	h.heap_size = (uint64_t)h.capacity * FAKE_HEAP_PER_NAME + FAKE_HEAP_SLACK;
	if (!layout(&h, &eo, &ho, &total))
		return NULL;
	h.total = total;
	h.id = sfy_shm_new_id();

	int fd = sfy_shm_create(FAKE_MEMFD_NAME, total);
	void *base = fd >= 0 ? mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
			     : anon(total, MAP_SHARED);  /* no memfd: shared across fork() only */
	if (base == MAP_FAILED || !base) {
		if (fd >= 0)
			sfy_real()->close(fd);
		return NULL;
	}
	/* Complete before anyone can see it: the fd is exported afterwards. */
	memcpy(base, &h, sizeof(h));
	struct fake_tab *t = tab_wrap(base, &h, fd, true);
	if (!t && fd >= 0)
		sfy_real()->close(fd);
	return t;
}

/* fd: the descriptor to close, or -1. */
static void tab_free(struct fake_tab *t, int fd)
{
	for (uint32_t i = 0; i < t->capacity; i++)
		free(atomic_load(&t->mine[i]));
	munmap(t->mine, (uint64_t)t->capacity * sizeof(*t->mine));
	munmap(t->mslots, (uint64_t)t->nslots * sizeof(*t->mslots));
	munmap(t->hdr, t->total);
	if (fd >= 0)
		sfy_real()->close(fd);
	free(t);
}

/* SOCKSIFY_FAKEDNS_FD=FD:PID:ID for our children: the fd, this process,
 * the table's random id. Only for a table this process created without a
 * launcher (the launcher's is set before exec). */
static void tab_export(const struct fake_tab *t)
{
	char buf[64];
	int fd = sfy_shm_guard_get(SFY_SHM_FAKEDNS);
	if (fd < 0)
		return;
	sfy_shm_format(fd, t->id, buf, sizeof(buf));
	setenv(SFY_FAKEDNS_ENV, buf, 1);
}

/* This process's table: the one the variable names, else (create) a new
 * one exported to our children. A variable that names a table we cannot
 * reach means an ancestor has one: we fail closed rather than hand out
 * addresses that mean other names there. Racing threads each build one;
 * the first CAS wins. NULL with *err. */
static struct fake_tab *tab_get(bool create, int *err)
{
	struct fake_tab *t = atomic_load_explicit(&g_tab, memory_order_acquire), *none = NULL;
	struct sfy_shm_ref r;
	bool fresh = false;
	if (t)
		return t;
	*err = create ? -ENOMEM : -ENOENT;
	if (atomic_load(&g_unreachable)) {
		*err = -EAGAIN;
		return NULL;
	}
	const char *v = getenv(SFY_FAKEDNS_ENV);
	if (sfy_shm_parse(v, &r)) {
		if (!(t = tab_attach(&r))) {
			if (!atomic_exchange(&g_unreachable, true))
				sfy_warn("fake-DNS: the tree's table (%s=%s) is out of reach (closed, "
					 "its holder gone or not ours to open): names fail with "
					 "EAI_AGAIN rather than get addresses that mean other names "
					 "elsewhere in the tree", SFY_FAKEDNS_ENV, v);
			*err = -EAGAIN;
			return NULL;
		}
	} else {
		if (v)
			sfy_debug("fakedns: %s=%s names no table, making a new one",
				  SFY_FAKEDNS_ENV, v);
		if (!create || !(t = tab_create()))
			return NULL;
		fresh = true;
	}
	if (!atomic_compare_exchange_strong(&g_tab, &none, t)) {
		tab_free(t, t->own_fd ? t->fd : -1);
		return none;
	}
	sfy_shm_guard_set(SFY_SHM_FAKEDNS, t->fd);
	if (fresh)              /* created here: our children use ours */
		tab_export(t);
	return t;
}

int sfy_fakedns_export_fd(void)
{
	int err;
	struct fake_tab *t = tab_get(true, &err);
	if (!t && err == -EAGAIN) {
		/* The launcher starts a tree of its own. */
		unsetenv(SFY_FAKEDNS_ENV);
		atomic_store(&g_unreachable, false);
		t = tab_get(true, &err);
	}
	if (!t)
		return err;
	int fd = sfy_shm_guard_get(SFY_SHM_FAKEDNS);
	if (fd < 0)
		return -ENOSYS;
	tab_export(t);          /* it may have been found at another number */
	return fd;
}

void sfy_fakedns_detach(bool close_fd)
{
	struct fake_tab *t = atomic_exchange(&g_tab, NULL);
	atomic_store(&g_unreachable, false);
	if (!t)
		return;
	int fd = sfy_shm_guard_get(SFY_SHM_FAKEDNS);
	sfy_shm_guard_set(SFY_SHM_FAKEDNS, -1);
	if (close_fd)
		unsetenv(SFY_FAKEDNS_ENV);
	tab_free(t, close_fd ? fd : -1);
}

int sfy_fakedns_normalize(const char *name, char out[static SFY_NAME_MAX + 1])
{
	size_t n = strlen(name);
	if (n && name[n - 1] == '.')
		n--;
	if (n == 0)
		return -EINVAL;
	if (n > SFY_NAME_MAX)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c <= ' ' || c == 0x7f)
			return -EINVAL;
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[n] = '\0';
	return (int)n;
}

static uint32_t fnv1a(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

/* Entry idx copied into out (NUL-terminated) if it is sound: published,
 * inside the heap, a name sfy_fakedns_normalize() would produce, with its
 * hash. Every shared field is loaded once; a writer changing the bytes
 * meanwhile changes only our copy's chance of passing. Returns the length
 * or -1. */
static int ent_read(const struct fake_tab *t, uint32_t idx, char out[static SFY_NAME_MAX + 1])
{
	char norm[SFY_NAME_MAX + 1];
	if (idx >= t->capacity)
		return -1;
	struct fake_ent *e = &t->ents[idx];
	uint32_t off1 = atomic_load_explicit(&e->off1, memory_order_acquire);
	uint32_t len = atomic_load_explicit(&e->len, memory_order_relaxed);
	uint32_t hash = atomic_load_explicit(&e->hash, memory_order_relaxed);
	if (!off1 || len == 0 || len > SFY_NAME_MAX || (uint64_t)off1 - 1 + len + 1 > t->heap_size)
		return -1;
	memcpy(out, t->heap + off1 - 1, len);
	out[len] = '\0';
	if (sfy_fakedns_normalize(out, norm) != (int)len || memcmp(norm, out, len) ||
	    fnv1a(out, len) != hash)
		return -1;
	return (int)len;
}

/* The first sound entry for key along its shared hash chain (or
 * UINT32_MAX): where a reverse lookup's name must lead back to. */
static uint32_t shared_find(const struct fake_tab *t, const char *key, size_t n, uint32_t h)
{
	char name[SFY_NAME_MAX + 1];
	uint32_t mask = t->nslots - 1;
	for (uint32_t probe = 0, s = h & mask; probe <= mask; probe++, s = (s + 1) & mask) {
		uint32_t v = atomic_load_explicit(&t->slots[s], memory_order_acquire);
		if (v == 0)
			break;
		if (ent_read(t, v - 1, name) == (int)n && !memcmp(name, key, n))
			return v - 1;
	}
	return UINT32_MAX;
}

/* This process's own record: the index key stands for here, or UINT32_MAX. */
static uint32_t mine_find(const struct fake_tab *t, const char *key, uint32_t h)
{
	uint32_t mask = t->nslots - 1;
	for (uint32_t probe = 0, s = h & mask; probe <= mask; probe++, s = (s + 1) & mask) {
		uint32_t v = atomic_load_explicit(&t->mslots[s], memory_order_acquire);
		if (v == 0)
			break;
		const char *name = atomic_load_explicit(&t->mine[v - 1], memory_order_acquire);
		if (name && !strcmp(name, key))
			return v - 1;
	}
	return UINT32_MAX;
}

/* Records idx as key's in this process. 1: done (or already so); 0: idx
 * already stands for another name here (a forged duplicate or a reused
 * index: never hand it out for key); -ENOMEM. */
static int mine_claim(struct fake_tab *t, uint32_t idx, const char *key, uint32_t h)
{
	char *cur = atomic_load_explicit(&t->mine[idx], memory_order_acquire);
	if (cur)
		return !strcmp(cur, key);
	char *copy = strdup(key);
	if (!copy)
		return -ENOMEM;
	if (!atomic_compare_exchange_strong(&t->mine[idx], &cur, copy)) {
		free(copy);
		return !strcmp(cur, key);
	}
	/* At most capacity names in nslots >= 2 * capacity slots: a free one
	 * is always found. */
	uint32_t mask = t->nslots - 1;
	for (uint32_t probe = 0, s = h & mask; probe <= mask; probe++, s = (s + 1) & mask) {
		uint32_t zero = 0;
		if (atomic_compare_exchange_strong(&t->mslots[s], &zero, idx + 1))
			break;
	}
	return 1;
}

/* Takes an index and heap bytes for name and publishes the entry. The
 * shared counters are loaded once each and checked against our sizes. */
static int ent_new(struct fake_tab *t, const char *name, size_t n, uint32_t h, uint32_t *idx)
{
	struct fake_hdr *hd = t->hdr;
	uint64_t i = atomic_fetch_add(&hd->next, 1);
	if (i >= t->capacity)
		return -ENOSPC;
	uint64_t off = atomic_fetch_add(&hd->heap_used, n + 1);
	if (off > t->heap_size || t->heap_size - off < n + 1)
		return -ENOSPC;
	memcpy(t->heap + off, name, n + 1);
	atomic_store_explicit(&t->ents[i].hash, h, memory_order_relaxed);
	atomic_store_explicit(&t->ents[i].len, (uint32_t)n, memory_order_relaxed);
	atomic_store_explicit(&t->ents[i].off1, (uint32_t)off + 1, memory_order_release);
	*idx = (uint32_t)i;
	return 0;
}

/* The index for key: our own record first, then a sound shared entry that
 * is not another name's here, then (create) a new one. */
static int lookup(const char *name, uint32_t *addr_be, bool create)
{
	char key[SFY_NAME_MAX + 1], got[SFY_NAME_MAX + 1];
	int n = sfy_fakedns_normalize(name, key), err;
	if (n < 0)
		return n;
	struct fake_tab *t = tab_get(create, &err);
	if (!t)
		return err;

	uint32_t h = fnv1a(key, (size_t)n), mask = t->nslots - 1, idx = mine_find(t, key, h);
	if (idx != UINT32_MAX) {
		*addr_be = htonl(t->first + idx);
		return 0;
	}
	uint32_t fresh = UINT32_MAX;
	for (uint32_t probe = 0, s = h & mask; probe <= mask; probe++, s = (s + 1) & mask) {
		uint32_t v = atomic_load_explicit(&t->slots[s], memory_order_acquire);
		if (v == 0) {
			if (!create)
				return -ENOENT;
			if (fresh == UINT32_MAX && (err = ent_new(t, key, (size_t)n, h, &fresh)) < 0)
				return err;
			if (atomic_compare_exchange_strong(&t->slots[s], &v, fresh + 1)) {
				idx = fresh;
				if ((err = mine_claim(t, idx, key, h)) == 1)
					goto found;
				if (err < 0)
					return err;
				fresh = UINT32_MAX;  /* handed out here before: a rewound counter */
				continue;
			}
			/* v is now the winner's: look at it as taken. */
		}
		if (ent_read(t, v - 1, got) == n && !memcmp(got, key, (size_t)n)) {
			idx = v - 1;
			if ((err = mine_claim(t, idx, key, h)) == 1)
				goto found;
			if (err < 0)
				return err;
		}
	}
	return create ? -ENOSPC : -ENOENT;
found:
	*addr_be = htonl(t->first + idx);
	return 0;
}

int sfy_fakedns_ipv4(const char *name, uint32_t *addr_be)
{
	return lookup(name, addr_be, true);
}

int sfy_fakedns_find(const char *name, uint32_t *addr_be)
{
	return lookup(name, addr_be, false);
}

void sfy_fakedns_ipv6(uint32_t addr_be, uint8_t out[16])
{
	static const uint8_t prefix[12] = SFY_FAKEDNS_V6_PREFIX;
	memcpy(out, prefix, 12);
	memcpy(out + 12, &addr_be, 4);
}

bool sfy_fakedns_in_range(uint32_t addr_be)
{
	int err;
	struct fake_tab *t = tab_get(false, &err);
	uint32_t a = ntohl(addr_be), net, prefix;
	if (t) {
		net = t->net;
		prefix = t->prefix;
	} else {
		net = atomic_load(&cfg_net);
		prefix = atomic_load(&cfg_prefix);
	}
	uint32_t mask = prefix ? ~0u << (32 - prefix) : 0;
	return (a & mask) == net;
}

/* Our own record first; an entry from another process (an address a parent
 * resolved and passed down) only when sound and its chain leads back to
 * it, and then it is recorded as ours. */
int sfy_fakedns_name(uint32_t addr_be, char out[static SFY_NAME_MAX + 1])
{
	int err;
	struct fake_tab *t = tab_get(false, &err);
	if (!t)
		return -ENOENT;
	uint32_t a = ntohl(addr_be);
	if (a < t->first || (uint64_t)a - t->first >= t->capacity)
		return -ENOENT;
	uint32_t idx = a - t->first;
	const char *own = atomic_load_explicit(&t->mine[idx], memory_order_acquire);
	if (!own) {
		int n = ent_read(t, idx, out);
		if (n < 0)
			return -ENOENT;
		uint32_t h = fnv1a(out, (size_t)n);
		if (shared_find(t, out, (size_t)n, h) != idx || mine_claim(t, idx, out, h) < 0)
			return -ENOENT;
		/* A racing thread may have recorded another name for idx. */
		own = atomic_load_explicit(&t->mine[idx], memory_order_acquire);
	}
	size_t len = strlen(own);
	memcpy(out, own, len + 1);
	return 0;
}

bool sfy_fakedns_sockaddr_v4(const struct sockaddr *sa, socklen_t len, uint32_t *addr_be)
{
	static const uint8_t fake6[12] = SFY_FAKEDNS_V6_PREFIX;
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		memcpy(addr_be, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const uint8_t *b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		if (memcmp(b, fake6, 12) && memcmp(b, sfy_v4mapped_prefix, 12))
			return false;
		memcpy(addr_be, b + 12, 4);
		return true;
	}
	return false;
}

bool sfy_fakedns_reverse(const struct sockaddr *sa, socklen_t len, struct sfy_addr *out)
{
	uint32_t v4;
	if (!sfy_fakedns_sockaddr_v4(sa, len, &v4) || sfy_fakedns_name(v4, out->name) < 0)
		return false;
	out->type = SFY_ATYP_DOMAIN;
	memset(out->ip, 0, sizeof(out->ip));
	/* sin_port and sin6_port sit at the same offset. */
	out->port = ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	return true;
}

bool sfy_fakedns_exists(void)
{
	int err;
	return tab_get(false, &err) || err == -EAGAIN;
}

bool sfy_fakedns_is_fake(const struct sockaddr *sa, socklen_t len)
{
	uint32_t a;
	return sfy_fakedns_sockaddr_v4(sa, len, &a) && sfy_fakedns_in_range(a);
}
