/* The fake-address table shared by a whole process tree.
 *
 * One MAP_SHARED mapping of a memfd (inherited across fork(), re-attached
 * after exec() through SOCKSIFY_FAKEDNS_FD=FD:PID:ID), lock-free so that a process
 * killed at any instant never leaves it locked:
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
 * address space, not memory. */
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
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fakedns.h"
#include "log.h"
#include "real.h"

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
/* Above the fds shells and programs use for redirections (bash takes 10+
 * and 255), so a dup2() by the program is unlikely to land on it. */
#define FAKE_FD_MIN 100
#define FAKE_HDR_SIZE 4096u
#define FAKE_MAGIC "SFYFAKE1"

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
	uint32_t hash;
	uint32_t len;
};

struct fake_tab {
	struct fake_hdr *hdr;
	_Atomic uint32_t *slots;
	struct fake_ent *ents;
	char *heap;
	int fd;                         /* -1 when memfd is unavailable */
	bool own_fd;                    /* created here, not inherited */
};

static _Atomic(struct fake_tab *) g_tab;
static _Atomic uint32_t cfg_net = 0xe0000000u;  /* 224.0.0.0/8 */
static _Atomic uint32_t cfg_prefix = 8;

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

/* Layout sizes from the header's sizing fields; false if inconsistent. */
static bool layout(const struct fake_hdr *h, uint64_t *ents_off, uint64_t *heap_off,
		   uint64_t *total)
{
	if (h->capacity == 0 || h->capacity > FAKE_MAX_NAMES || h->nslots < 2 * h->capacity ||
	    (h->nslots & (h->nslots - 1)) || h->nslots > 4 * FAKE_MAX_NAMES ||
	    h->heap_size > (uint64_t)h->capacity * (SFY_NAME_MAX + 1) + FAKE_HEAP_SLACK)
		return false;
	*ents_off = align_up(FAKE_HDR_SIZE + (uint64_t)h->nslots * 4, 8);
	*heap_off = *ents_off + (uint64_t)h->capacity * sizeof(struct fake_ent);
	*total = align_up(*heap_off + h->heap_size, FAKE_HDR_SIZE);
	return true;
}

static struct fake_tab *tab_wrap(void *base, int fd, bool own_fd)
{
	struct fake_tab *t = malloc(sizeof(*t));
	uint64_t eo = 0, ho = 0, total = 0;
	if (!t)
		return NULL;
	t->hdr = base;
	layout(t->hdr, &eo, &ho, &total);
	t->slots = (_Atomic uint32_t *)((char *)base + FAKE_HDR_SIZE);
	t->ents = (struct fake_ent *)((char *)base + eo);
	t->heap = (char *)base + ho;
	t->fd = fd;
	t->own_fd = own_fd;
	return t;
}

/* Is fd a table (of id, when id != 0)? Returns its size or 0. */
static uint64_t tab_check(int fd, uint64_t id)
{
	struct stat st;
	struct fake_hdr h;
	uint64_t eo, ho, total;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)FAKE_HDR_SIZE ||
	    pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || memcmp(h.magic, FAKE_MAGIC, 8) ||
	    !layout(&h, &eo, &ho, &total) || total != h.total || total != (uint64_t)st.st_size ||
	    (id && h.id != id))
		return 0;
	return total;
}

static struct fake_tab *tab_map(int fd, uint64_t total, bool own_fd)
{
	void *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return NULL;
	struct fake_tab *t = tab_wrap(base, fd, own_fd);
	if (!t)
		munmap(base, total);
	return t;
}

/* Moves fd to FAKE_FD_MIN or above, without close-on-exec. */
static int fd_high(int fd)
{
	if (fd < FAKE_FD_MIN) {
		int hi = fcntl(fd, F_DUPFD, FAKE_FD_MIN);
		if (hi >= 0) {
			sfy_real()->close(fd);
			fd = hi;
		}
	}
	return fd;
}

/* SOCKSIFY_FAKEDNS_FD=FD:PID:ID -- our fd, the process holding it, the
 * table's random id. The launcher creates it, so the whole tree shares one
 * table from the start. */
static void tab_export(const struct fake_tab *t)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%d:%ld:%016llx", t->fd, (long)getpid(),
		 (unsigned long long)t->hdr->id);
	setenv(SFY_FAKEDNS_ENV, buf, 1);
}

/* The inherited table. The fd is checked, never trusted: the program may
 * have closed it (Python's subprocess closes every fd by default) or reused
 * the number, which we then leave alone. A closed fd is reopened from the
 * exporting process (/proc/PID/fd/FD, alive while it runs); the id proves
 * it is still the same table, and *reopened tells the caller to export ours. */
static struct fake_tab *tab_attach_env(bool *reopened)
{
	const char *v = getenv(SFY_FAKEDNS_ENV);
	long fd = -1, pid = 0;
	unsigned long long id = 0;
	uint64_t total;
	char path[64];

	if (!v || sscanf(v, "%ld:%ld:%llx", &fd, &pid, &id) < 1 || fd < 0 || fd > 1 << 24)
		return NULL;
	if ((total = tab_check((int)fd, id)))
		return tab_map((int)fd, total, false);
	if (pid <= 0 || !id)
		goto bad;
	snprintf(path, sizeof(path), "/proc/%ld/fd/%ld", pid, fd);
	int nfd = open(path, O_RDWR);
	if (nfd < 0)
		goto bad;
	nfd = fd_high(nfd);
	struct fake_tab *t = (total = tab_check(nfd, id)) ? tab_map(nfd, total, true) : NULL;
	if (!t) {
		sfy_real()->close(nfd);
		goto bad;
	}
	*reopened = true;
	return t;
bad:
	sfy_debug("fakedns: %s=%s is not a usable table, making a new one", SFY_FAKEDNS_ENV, v);
	return NULL;
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

	int fd = memfd_create("socksify-fakedns", 0);  /* no CLOEXEC: exec'd children attach */
	void *base;
	if (fd >= 0)
		fd = fd_high(fd);
	if (getrandom(&h.id, sizeof(h.id), GRND_NONBLOCK) != (ssize_t)sizeof(h.id))
		h.id = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
	h.id |= 1;      /* never 0: 0 means "no id" in the variable */
	if (fd >= 0 && ftruncate(fd, (off_t)total) == 0) {
		base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	} else {
		/* No memfd (old kernel, seccomp): shared across fork() only. */
		if (fd >= 0)
			sfy_real()->close(fd);
		fd = -1;
		base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	}
	if (base == MAP_FAILED) {
		if (fd >= 0)
			sfy_real()->close(fd);
		return NULL;
	}
	/* Complete before anyone can see it: the fd is exported afterwards. */
	memcpy(base, &h, sizeof(h));
	struct fake_tab *t = tab_wrap(base, fd, true);
	if (!t) {
		munmap(base, total);
		if (fd >= 0)
			sfy_real()->close(fd);
	}
	return t;
}

static void tab_free(struct fake_tab *t)
{
	munmap(t->hdr, t->hdr->total);
	if (t->own_fd && t->fd >= 0)
		sfy_real()->close(t->fd);
	free(t);
}

/* This process's table: inherited, else (create) a new one exported to
 * our children. Racing threads each build one; the first CAS wins. */
static struct fake_tab *tab_get(bool create)
{
	struct fake_tab *t = atomic_load_explicit(&g_tab, memory_order_acquire), *none = NULL;
	bool fresh = false;
	if (t)
		return t;
	t = tab_attach_env(&fresh);
	if (!t && create) {
		t = tab_create();
		fresh = true;
	}
	if (!t)
		return NULL;
	if (!atomic_compare_exchange_strong(&g_tab, &none, t)) {
		tab_free(t);
		return none;
	}
	if (fresh && t->fd >= 0)       /* created or reopened here: our children use ours */
		tab_export(t);
	return t;
}

int sfy_fakedns_export_fd(void)
{
	struct fake_tab *t = tab_get(true);
	if (!t)
		return -ENOMEM;
	return t->fd >= 0 ? t->fd : -ENOSYS;
}

void sfy_fakedns_detach(bool close_fd)
{
	struct fake_tab *t = atomic_exchange(&g_tab, NULL);
	if (!t)
		return;
	if (close_fd && t->fd >= 0) {
		t->own_fd = true;
		unsetenv(SFY_FAKEDNS_ENV);
	} else {
		t->own_fd = false;
	}
	tab_free(t);
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

static bool ent_is(struct fake_tab *t, uint32_t idx, const char *name, size_t n, uint32_t h)
{
	struct fake_ent *e = &t->ents[idx];
	uint32_t off1 = atomic_load_explicit(&e->off1, memory_order_acquire);
	return off1 && e->hash == h && e->len == n && !memcmp(t->heap + off1 - 1, name, n);
}

/* Takes an index and heap bytes for name and publishes the entry. */
static int ent_new(struct fake_tab *t, const char *name, size_t n, uint32_t h, uint32_t *idx)
{
	struct fake_hdr *hd = t->hdr;
	uint64_t i = atomic_fetch_add(&hd->next, 1);
	if (i >= hd->capacity)
		return -ENOSPC;
	uint64_t off = atomic_fetch_add(&hd->heap_used, n + 1);
	if (off + n + 1 > hd->heap_size)
		return -ENOSPC;
	memcpy(t->heap + off, name, n + 1);
	t->ents[i].hash = h;
	t->ents[i].len = (uint32_t)n;
	atomic_store_explicit(&t->ents[i].off1, (uint32_t)off + 1, memory_order_release);
	*idx = (uint32_t)i;
	return 0;
}

static int lookup(const char *name, uint32_t *addr_be, bool create)
{
	char key[SFY_NAME_MAX + 1];
	int n = sfy_fakedns_normalize(name, key);
	if (n < 0)
		return n;
	struct fake_tab *t = tab_get(create);
	if (!t)
		return create ? -ENOMEM : -ENOENT;

	uint32_t h = fnv1a(key, (size_t)n), mask = t->hdr->nslots - 1, mine = UINT32_MAX;
	for (uint32_t probe = 0, s = h & mask; probe <= mask; probe++, s = (s + 1) & mask) {
		uint32_t v = atomic_load_explicit(&t->slots[s], memory_order_acquire);
		if (v == 0) {
			if (!create)
				return -ENOENT;
			if (mine == UINT32_MAX) {
				int rc = ent_new(t, key, (size_t)n, h, &mine);
				if (rc < 0)
					return rc;
			}
			if (atomic_compare_exchange_strong(&t->slots[s], &v, mine + 1)) {
				*addr_be = htonl(t->hdr->first + mine);
				return 0;
			}
		}
		if (ent_is(t, v - 1, key, (size_t)n, h)) {
			*addr_be = htonl(t->hdr->first + v - 1);
			return 0;
		}
	}
	return create ? -ENOSPC : -ENOENT;
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
	struct fake_tab *t = tab_get(false);
	uint32_t a = ntohl(addr_be), net, prefix;
	if (t) {
		net = t->hdr->net;
		prefix = t->hdr->prefix;
	} else {
		net = atomic_load(&cfg_net);
		prefix = atomic_load(&cfg_prefix);
	}
	uint32_t mask = prefix ? ~0u << (32 - prefix) : 0;
	return (a & mask) == net;
}

int sfy_fakedns_name(uint32_t addr_be, char out[static SFY_NAME_MAX + 1])
{
	struct fake_tab *t = tab_get(false);
	if (!t)
		return -ENOENT;
	uint32_t a = ntohl(addr_be);
	uint64_t idx = (uint64_t)a - t->hdr->first;
	if (a < t->hdr->first || idx >= t->hdr->capacity)
		return -ENOENT;
	struct fake_ent *e = &t->ents[idx];
	uint32_t off1 = atomic_load_explicit(&e->off1, memory_order_acquire);
	if (!off1 || e->len > SFY_NAME_MAX)
		return -ENOENT;
	memcpy(out, t->heap + off1 - 1, e->len);
	out[e->len] = '\0';
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

bool sfy_fakedns_is_fake(const struct sockaddr *sa, socklen_t len)
{
	uint32_t a;
	return sfy_fakedns_sockaddr_v4(sa, len, &a) && sfy_fakedns_in_range(a);
}
