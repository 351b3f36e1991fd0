/* The system nameservers the DNS responder stands in for (dnsresp.h):
 * 127.0.0.53 (systemd-resolved's stub, slot 0) and the nameserver lines
 * of /etc/resolv.conf, port 53.
 *
 * The set is an immutable snapshot published through one atomic pointer:
 * readers (every UDP send, every TCP connect) load it and never wait.
 * At most once per second some caller stat()s the file (the one that wins
 * a compare-and-swap on the next check time) and, when mtime, inode or
 * size changed, reads it and publishes a new snapshot -- no lock is held
 * while reading a file, so nothing can wait on a stuck reader, and a
 * fork() at any moment leaves the child a complete snapshot (a checker
 * forked away mid-read is simply replaced a second later).
 *
 * Slots are stable for the life of the process: an address keeps the slot
 * it got first, even after it leaves the file (a late reply from it still
 * needs a source), so a transport's per-slot socket always stands for one
 * address. Fresh processes number the file in order (1..); a new address
 * takes the first free slot, then the slot of an address no longer listed.
 * Old snapshots stay linked from the new one (a reader may still hold
 * one; the file rarely changes). */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include "dnsresp.h"
#include "io.h"
#include "state.h"

struct ns_slot {
	bool used;
	bool listed;            /* in the file as last read (slot 0: always) */
	int family;             /* AF_INET / AF_INET6 */
	uint8_t a[16];
	uint32_t scope;         /* fe80::1%eth0 */
};

struct ns_set {
	struct ns_slot slot[SFY_DNSRESP_NS_MAX];
	/* the file as read: a change of any of these means read it again */
	bool have_file;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	const struct ns_set *prev;      /* keeps old snapshots reachable */
};

#define DEFAULT_RESOLV "/etc/resolv.conf"

static _Atomic(const struct ns_set *) g_set;
static _Atomic int64_t g_next_check;    /* monotonic ms */
static _Atomic(const char *) g_path;

void sfy_dnsresp_set_resolv_path(const char *path)
{
	atomic_store(&g_path, path);
	atomic_store(&g_next_check, 0);         /* read it at the next use */
}

static const char *resolv_path(void)
{
	const char *p = atomic_load(&g_path);
	return p ? p : DEFAULT_RESOLV;
}

/* "nameserver ADDRESS" as glibc reads it: the first word after the
 * keyword; a v6 address may carry %scope. */
static bool ns_line(const char *line, int *family, uint8_t a[16], uint32_t *scope)
{
	char word[INET6_ADDRSTRLEN + 32];
	if (strncmp(line, "nameserver", 10) || (line[10] != ' ' && line[10] != '\t'))
		return false;
	if (sscanf(line + 10, " %63s", word) != 1)
		return false;
	*scope = 0;
	memset(a, 0, 16);
	if (inet_pton(AF_INET, word, a) == 1) {
		*family = AF_INET;
		return true;
	}
	char *pct = strchr(word, '%');
	if (pct) {
		*pct = '\0';
		char *end;
		*scope = (uint32_t)strtoul(pct + 1, &end, 10);
		if (*end)
			*scope = if_nametoindex(pct + 1);
	}
	if (inet_pton(AF_INET6, word, a) != 1)
		return false;
	/* ::ffff:a.b.c.d counts as the v4 address */
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	if (!memcmp(a, mapped, 12)) {
		memmove(a, a + 12, 4);
		memset(a + 4, 0, 12);
		*family = AF_INET;
		return true;
	}
	*family = AF_INET6;
	return true;
}

static int find_slot(const struct ns_set *s, int family, const uint8_t a[16])
{
	size_t n = family == AF_INET ? 4 : 16;
	for (int i = 0; i < SFY_DNSRESP_NS_MAX; i++)
		if (s->slot[i].used && s->slot[i].family == family && !memcmp(s->slot[i].a, a, n))
			return i;
	return -1;
}

/* Lists one address of the file in s: its old slot, a free one, or the
 * slot of an address the file no longer lists. */
static void add_listed(struct ns_set *s, int family, const uint8_t a[16], uint32_t scope)
{
	int i = find_slot(s, family, a);
	for (int j = 1; i < 0 && j < SFY_DNSRESP_NS_MAX; j++)
		if (!s->slot[j].used)
			i = j;
	for (int j = 1; i < 0 && j < SFY_DNSRESP_NS_MAX; j++)
		if (!s->slot[j].listed)
			i = j;
	if (i < 0)
		return;         /* more than 7 nameservers: glibc uses 3 */
	s->slot[i] = (struct ns_slot){ .used = true, .listed = true, .family = family, .scope = scope };
	memcpy(s->slot[i].a, a, 16);
}

/* A new snapshot from old (NULL: none yet) and the file as it is now. */
static struct ns_set *ns_read(const struct ns_set *old, const struct stat *st, bool have)
{
	struct ns_set *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (old)
		memcpy(s->slot, old->slot, sizeof(s->slot));
	for (int i = 0; i < SFY_DNSRESP_NS_MAX; i++)
		s->slot[i].listed = false;
	s->slot[0] = (struct ns_slot){ .used = true, .listed = true, .family = AF_INET,
				       .a = { 127, 0, 0, 53 } };
	s->prev = old;
	s->have_file = have;
	if (have) {
		s->dev = st->st_dev;
		s->ino = st->st_ino;
		s->size = st->st_size;
		s->mtime = st->st_mtim;
	}
	FILE *f = have ? fopen(resolv_path(), "re") : NULL;
	char line[512];
	while (f && fgets(line, sizeof(line), f)) {
		int family;
		uint8_t a[16];
		uint32_t scope;
		if (ns_line(line, &family, a, &scope))
			add_listed(s, family, a, scope);
	}
	if (f)
		fclose(f);
	return s;
}

static bool same_file(const struct ns_set *s, const struct stat *st, bool have)
{
	if (s->have_file != have)
		return false;
	return !have || (s->dev == st->st_dev && s->ino == st->st_ino && s->size == st->st_size &&
			 s->mtime.tv_sec == st->st_mtim.tv_sec &&
			 s->mtime.tv_nsec == st->st_mtim.tv_nsec);
}

/* The current snapshot, checked against the file at most once a second. */
static const struct ns_set *ns_get(void)
{
	const struct ns_set *cur = atomic_load_explicit(&g_set, memory_order_acquire);
	int64_t now = sfy_now_ms(), next = atomic_load(&g_next_check);
	if (cur && now < next)
		return cur;
	if (!atomic_compare_exchange_strong(&g_next_check, &next, now + 1000) && cur)
		return cur;     /* another thread checks now */
	struct stat st;
	bool have = stat(resolv_path(), &st) == 0;
	for (;;) {
		if (cur && same_file(cur, &st, have))
			return cur;
		struct ns_set *s = ns_read(cur, &st, have);
		if (!s)
			return cur;
		if (atomic_compare_exchange_strong(&g_set, &cur, s))
			return s;
		free(s);        /* a racing reader published first: build on it */
	}
}

void sfy_dnsresp_warm(void)
{
	(void)ns_get();
}

static bool same_addr(const struct ns_slot *sl, int family, const uint8_t *a)
{
	return sl->used && sl->family == family && !memcmp(sl->a, a, family == AF_INET ? 4 : 16);
}

bool sfy_dnsresp_is_ns(const struct sockaddr *sa, socklen_t len, int *idx)
{
	int family;
	const uint8_t *a;
	uint16_t port;
	if (!sa || len < (socklen_t)sizeof(sa_family_t))
		return false;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)sa;
		family = AF_INET;
		a = (const uint8_t *)&in->sin_addr;
		port = in->sin_port;
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		family = IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) ? AF_INET : AF_INET6;
		a = in6->sin6_addr.s6_addr + (family == AF_INET ? 12 : 0);
		port = in6->sin6_port;
	} else {
		return false;
	}
	if (port != htons(53) || !sfy_dnsresp_enabled(sfy_config_get()))
		return false;
	const struct ns_set *s = ns_get();
	if (!s)
		return false;
	for (int i = 0; i < SFY_DNSRESP_NS_MAX; i++)
		if (s->slot[i].listed && same_addr(&s->slot[i], family, a)) {
			if (idx)
				*idx = i;
			return true;
		}
	return false;
}

bool sfy_dnsresp_ns_addr(int idx, int family, struct sockaddr_storage *out, socklen_t *len)
{
	const struct ns_set *s = ns_get();
	if (!s || idx < 0 || idx >= SFY_DNSRESP_NS_MAX || !s->slot[idx].used)
		return false;
	const struct ns_slot *sl = &s->slot[idx];
	memset(out, 0, sizeof(*out));
	if (family == AF_UNSPEC)
		family = sl->family;
	if (family == AF_INET && sl->family == AF_INET) {
		struct sockaddr_in *in = (void *)out;
		in->sin_family = AF_INET;
		in->sin_port = htons(53);
		memcpy(&in->sin_addr, sl->a, 4);
		*len = sizeof(*in);
		return true;
	}
	if (family != AF_INET6)
		return false;   /* a v6 nameserver has no v4 form */
	struct sockaddr_in6 *in6 = (void *)out;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(53);
	if (sl->family == AF_INET) {
		in6->sin6_addr.s6_addr[10] = in6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(in6->sin6_addr.s6_addr + 12, sl->a, 4);
	} else {
		memcpy(in6->sin6_addr.s6_addr, sl->a, 16);
		in6->sin6_scope_id = sl->scope;
	}
	*len = sizeof(*in6);
	return true;
}
