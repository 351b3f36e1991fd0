/* Which names remote DNS must not fake, decided without any network:
 * numeric addresses, names and addresses in /etc/hosts (read once and
 * cached here), localhost and *.localhost (RFC 6761), the machine's own
 * hostname.
 *
 * A name's "destination in bypass" can only be known for /etc/hosts names
 * (any other name has no address until the proxy resolves it), and those
 * are never faked anyway. The real resolver is trusted to answer /etc/hosts
 * names from the file, i.e. nsswitch.conf lists "files" before "dns" (the
 * Debian default); when the file has the name but not the family asked for,
 * we answer "no data" ourselves, since glibc would go on to DNS. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fakedns.h"

#define HOSTS_V4 1
#define HOSTS_V6 2

/* Addresses kept per name for the DNS responder's answers (dnsresp.c);
 * glibc's files backend has no limit, but a hosts name with more is rare. */
#define HOSTS_ADDRS_MAX 8

struct hosts_name {
	char *name;                     /* normalized; NULL = empty slot */
	unsigned fams;
	unsigned char n4, n6;           /* in file order */
	unsigned char a4[HOSTS_ADDRS_MAX][4], a6[HOSTS_ADDRS_MAX][16];
};

struct hosts_addr {
	unsigned char used, fam;        /* HOSTS_V4 / HOSTS_V6 */
	unsigned char a[16];
	char *name;                     /* the first name of its first line */
};

/* Both sets: open addressing, power-of-two sizes, at most half full. */
struct hosts {
	struct hosts_name *names;
	size_t ncap, nused;
	struct hosts_addr *addrs;
	size_t acap, aused;
};

static _Atomic(struct hosts *) g_hosts;

static size_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t h = 14695981039346656037u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 1099511628211u;
	return h;
}

static struct hosts_name *name_slot(struct hosts_name *tab, size_t cap, const char *name)
{
	size_t i = hash_bytes(name, strlen(name)) & (cap - 1);
	while (tab[i].name && strcmp(tab[i].name, name))
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

static struct hosts_addr *addr_slot(struct hosts_addr *tab, size_t cap, unsigned fam,
				    const unsigned char a[16])
{
	size_t i = hash_bytes(a, 16) * 31 + fam;
	for (i &= cap - 1; tab[i].used && (tab[i].fam != fam || memcmp(tab[i].a, a, 16));
	     i = (i + 1) & (cap - 1))
		;
	return &tab[i];
}

/* The slot in tab (cap entries) for entry e of another table, or NULL when
 * e is an empty slot. */
typedef void *place_fn(void *tab, size_t cap, const void *e);

static void *place_name(void *tab, size_t cap, const void *e)
{
	const struct hosts_name *n = e;
	return n->name ? name_slot(tab, cap, n->name) : NULL;
}

static void *place_addr(void *tab, size_t cap, const void *e)
{
	const struct hosts_addr *a = e;
	return a->used ? addr_slot(tab, cap, a->fam, a->a) : NULL;
}

/* Doubles an open-addressing table (entries of esz bytes) before one more
 * entry would make it more than half full, re-placing every entry. */
static int grow(void **tab, size_t *cap, size_t used, size_t esz, place_fn *place)
{
	if (2 * (used + 1) <= *cap)
		return 0;
	size_t ncap = *cap ? 2 * *cap : 64;
	char *n = calloc(ncap, esz);
	if (!n)
		return -ENOMEM;
	for (size_t i = 0; i < *cap; i++) {
		const char *e = (const char *)*tab + i * esz;
		void *s = place(n, ncap, e);
		if (s)
			memcpy(s, e, esz);
	}
	free(*tab);
	*tab = n;
	*cap = ncap;
	return 0;
}

static int names_add(struct hosts *h, const char *name, unsigned fam, const unsigned char a[16])
{
	if (grow((void **)&h->names, &h->ncap, h->nused, sizeof(*h->names), place_name))
		return -ENOMEM;
	struct hosts_name *s = name_slot(h->names, h->ncap, name);
	if (!s->name) {
		if (!(s->name = strdup(name)))
			return -ENOMEM;
		h->nused++;
	}
	s->fams |= fam;
	if (fam == HOSTS_V4 && s->n4 < HOSTS_ADDRS_MAX)
		memcpy(s->a4[s->n4++], a, 4);
	else if (fam == HOSTS_V6 && s->n6 < HOSTS_ADDRS_MAX)
		memcpy(s->a6[s->n6++], a, 16);
	return 0;
}

static int addrs_add(struct hosts *h, unsigned fam, const unsigned char a[16], const char *name)
{
	if (grow((void **)&h->addrs, &h->acap, h->aused, sizeof(*h->addrs), place_addr))
		return -ENOMEM;
	struct hosts_addr *s = addr_slot(h->addrs, h->acap, fam, a);
	if (!s->used) {
		s->used = 1;
		s->fam = (unsigned char)fam;
		memcpy(s->a, a, 16);
		h->aused++;
	}
	if (!s->name && name && !(s->name = strdup(name)))
		return -ENOMEM;
	return 0;
}

/* "ADDRESS NAME [ALIAS...]  # comment", as glibc's files backend reads it. */
static int hosts_line(struct hosts *h, char *line)
{
	char *save, *tok, *hash = strchr(line, '#');
	unsigned char a[16] = { 0 };
	unsigned fam;
	if (hash)
		*hash = '\0';
	if (!(tok = strtok_r(line, " \t\r\n", &save)))
		return 0;
	char *pct = strchr(tok, '%');   /* fe80::1%eth0 */
	if (pct)
		*pct = '\0';
	if (inet_pton(AF_INET, tok, a) == 1)
		fam = HOSTS_V4;
	else if (inet_pton(AF_INET6, tok, a) == 1)
		fam = HOSTS_V6;
	else
		return 0;
	bool first = true;
	while ((tok = strtok_r(NULL, " \t\r\n", &save))) {
		char key[SFY_NAME_MAX + 1];
		if (sfy_fakedns_normalize(tok, key) <= 0)
			continue;
		if (names_add(h, key, fam, a) < 0 || (first && addrs_add(h, fam, a, key) < 0))
			return -ENOMEM;
		first = false;
	}
	if (first && addrs_add(h, fam, a, NULL) < 0)
		return -ENOMEM;
	return 0;
}

static struct hosts *hosts_read(const char *path, int *err)
{
	struct hosts *h = calloc(1, sizeof(*h));
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	*err = 0;
	if (!h) {
		*err = -ENOMEM;
		return NULL;
	}
	if (!(f = fopen(path, "re"))) {
		*err = -errno;
		return h;       /* no file: nothing is exempt by name */
	}
	while (getline(&line, &cap, f) >= 0)
		if (hosts_line(h, line) < 0)
			*err = -ENOMEM;
	free(line);
	fclose(f);
	return h;
}

int sfy_hosts_load(const char *path)
{
	int err;
	struct hosts *h = hosts_read(path, &err);
	if (!h)
		return err;
	/* The previous cache is leaked on purpose: readers may still hold it. */
	atomic_store(&g_hosts, h);
	return err;
}

static struct hosts *hosts_get(void)
{
	struct hosts *h = atomic_load_explicit(&g_hosts, memory_order_acquire), *none = NULL;
	int err;
	if (h)
		return h;
	if (!(h = hosts_read("/etc/hosts", &err)))
		return NULL;
	if (!atomic_compare_exchange_strong(&g_hosts, &none, h))
		return none;    /* a racing thread's copy won; ours is leaked (once) */
	return h;
}

void sfy_hosts_warm(void)
{
	(void)hosts_get();
}

bool sfy_hosts_has_addr(int family, const void *addr)
{
	struct hosts *h = hosts_get();
	unsigned char a[16] = { 0 };
	if (!h || !h->acap || (family != AF_INET && family != AF_INET6))
		return false;
	memcpy(a, addr, family == AF_INET ? 4 : 16);
	return addr_slot(h->addrs, h->acap, family == AF_INET ? HOSTS_V4 : HOSTS_V6, a)->used;
}

size_t sfy_hosts_addrs(const char *name, int family, unsigned char out[][16], size_t max)
{
	struct hosts *h = hosts_get();
	char key[SFY_NAME_MAX + 1];
	if (!h || !h->ncap || sfy_fakedns_normalize(name, key) <= 0)
		return 0;
	const struct hosts_name *s = name_slot(h->names, h->ncap, key);
	size_t n = 0;
	if (!s->name)
		return 0;
	if (family == AF_INET)
		for (; n < s->n4 && n < max; n++)
			memcpy(out[n], s->a4[n], 4);
	else if (family == AF_INET6)
		for (; n < s->n6 && n < max; n++)
			memcpy(out[n], s->a6[n], 16);
	return n;
}

bool sfy_hosts_name(int family, const void *addr, char out[static SFY_NAME_MAX + 1])
{
	struct hosts *h = hosts_get();
	unsigned char a[16] = { 0 };
	if (!h || !h->acap || (family != AF_INET && family != AF_INET6))
		return false;
	memcpy(a, addr, family == AF_INET ? 4 : 16);
	const struct hosts_addr *s =
		addr_slot(h->addrs, h->acap, family == AF_INET ? HOSTS_V4 : HOSTS_V6, a);
	if (!s->used || !s->name)
		return false;
	snprintf(out, SFY_NAME_MAX + 1, "%s", s->name);
	return true;
}

static unsigned hosts_fams(const char *key)
{
	struct hosts *h = hosts_get();
	if (!h || !h->ncap)
		return 0;
	return name_slot(h->names, h->ncap, key)->fams;
}

/* Numeric as getaddrinfo/gethostbyname see it: any inet_aton() form
 * ("10.1", "0x7f.1"), or an IPv6 literal with an optional %scope. */
bool sfy_dns_numeric(const char *name)
{
	struct in_addr a4;
	unsigned char a6[16];
	char buf[INET6_ADDRSTRLEN + 64];
	if (strchr(name, ':')) {
		size_t n = strcspn(name, "%");
		if (n >= sizeof(buf))
			return false;
		memcpy(buf, name, n);
		buf[n] = '\0';
		return inet_pton(AF_INET6, buf, a6) == 1;
	}
	return inet_aton(name, &a4) != 0;
}

static bool is_localhost(const char *key, size_t n)
{
	static const char lh[] = "localhost", dot[] = ".localhost";
	return !strcmp(key, lh) || (n > sizeof(dot) - 1 && !strcmp(key + n - (sizeof(dot) - 1), dot));
}

static bool is_own_hostname(const char *key)
{
	char host[SFY_NAME_MAX + 2], norm[SFY_NAME_MAX + 1];
	if (gethostname(host, sizeof(host)) < 0)
		return false;
	host[sizeof(host) - 1] = '\0';
	return sfy_fakedns_normalize(host, norm) > 0 && !strcmp(norm, key);
}

enum sfy_dns_class sfy_dns_classify(const char *name, int family, bool v4mapped)
{
	char key[SFY_NAME_MAX + 1];
	if (!name)
		return SFY_DNS_INVALID;
	/* Whitespace first: inet_aton() accepts "1.2.3.4 junk", glibc does not,
	 * and would then send the whole string to DNS. */
	if (strpbrk(name, " \t\r\n\v\f"))
		return SFY_DNS_INVALID;
	if (sfy_dns_numeric(name))
		return SFY_DNS_REAL;
	int n = sfy_fakedns_normalize(name, key);
	if (n < 0 || strchr(key, ':'))
		return SFY_DNS_INVALID;

	unsigned fams = hosts_fams(key), want;
	if (fams) {
		if (family == AF_INET)
			want = HOSTS_V4;
		else if (family == AF_INET6)
			want = HOSTS_V6 | (v4mapped ? HOSTS_V4 : 0);
		else
			want = HOSTS_V4 | HOSTS_V6;
		return (fams & want) ? SFY_DNS_REAL : SFY_DNS_NODATA;
	}
	if (is_localhost(key, (size_t)n) || is_own_hostname(key))
		return SFY_DNS_LOOPBACK;
	return SFY_DNS_FAKE;
}
