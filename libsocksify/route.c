/* Routing rules -> a route per destination (route.h), compiled.
 *
 * sfy_routes_build() puts every rule of the effective order into one
 * open-addressing hash table, keyed by what the rule matches:
 *   - an exact name (lower case), and a suffix name ("*.b.c" -> "b.c");
 *   - an IPv4 or IPv6 network, masked, together with its prefix length;
 * each key holding its rules' effective indexes in ascending order. The `*`
 * rules are one short list, and the prefix lengths in use are listed per
 * family. A destination then costs one lookup for its exact name, one per
 * label for its suffixes ("a.b.c": "b.c", "c"; the name is hashed once,
 * right to left, each suffix's hash falling out on the way), and one per
 * prefix length in use for its address. The answer is the smallest index
 * among the candidates that applies to this port (route_int.h), else
 * default: -- exactly what the linear walk of route_ref.c finds.
 *
 * Nothing is allocated and nothing is locked on the match path: the index
 * is immutable once built. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dnsmem.h"
#include "route_int.h"
#include "sock.h"
#include "sfy.h"

#define NONE UINT32_MAX
#define FNV_OFF 14695981039346656037ull
#define FNV_PRIME 1099511628211ull
/* An invalid rule (a CIDR of no family, a name outside the pool) never
 * matches, in the index and in the reference alike. */
#define RM_NEVER 0xff
/* CIDR key: family tag, prefix length, the masked address. */
#define CIDR_KEY_MAX 18

bool sfy_route_special_tld(const char *name)
{
	static const char *const tlds[] = { "onion", "exit", "i2p" };
	size_t n = strlen(name);
	if (n && name[n - 1] == '.')
		n--;
	for (size_t i = 0; i < SFY_ARRAY_LEN(tlds); i++) {
		size_t t = strlen(tlds[i]);
		if ((n == t || (n > t && name[n - t - 1] == '.')) &&
		    !strncasecmp(name + n - t, tlds[i], t))
			return true;
	}
	return false;
}

/* ---- verdicts ---------------------------------------------------------- */

void sfy_route_set(const struct sfy_routes *rt, int via, int rule, struct sfy_route *out)
{
	const struct sfy_config *cfg = rt->cfg;
	out->rule = rule;
	out->cfg = cfg;
	/* Fail closed: a chain that does not exist, or the top-level chain
	 * when there are no top-level proxies (a chain of no hops would be a
	 * direct connection nobody asked for). */
	if ((via >= 0 && ((size_t)via >= cfg->nchains || !rt->chain_cfg[via] ||
			  !rt->chain_cfg[via]->nproxies)) ||
	    (via == SFY_VIA_TOP && !cfg->nproxies) || via < SFY_VIA_BLOCK)
		via = SFY_VIA_BLOCK;
	out->via = via;
	if (via == SFY_VIA_DIRECT) {
		out->kind = SFY_ROUTE_DIRECT;
		if (rt->direct_cfg)
			out->cfg = rt->direct_cfg;
	} else if (via == SFY_VIA_BLOCK) {
		out->kind = SFY_ROUTE_BLOCK;
	} else {
		out->kind = SFY_ROUTE_CHAIN;
		if (via >= 0)
			out->cfg = rt->chain_cfg[via];
	}
}

const struct sfy_config *sfy_routes_chain(const struct sfy_routes *rt, int via)
{
	struct sfy_route r;
	sfy_route_set(rt, via, SFY_RULE_DEFAULT, &r);
	return r.kind == SFY_ROUTE_CHAIN ? r.cfg : NULL;
}

int sfy_route_default_via(const struct sfy_routes *rt, bool special, int port)
{
	int via = rt->cfg->default_via;
	if (via == SFY_VIA_DIRECT && (special || (rt->remote && port == 53)))
		return SFY_VIA_BLOCK;
	return via;
}

int sfy_route_severity(const struct sfy_route *r)
{
	return r->kind == SFY_ROUTE_BLOCK ? 2 : r->kind == SFY_ROUTE_CHAIN ? 1 : 0;
}

/* Can chain configuration c hand a name to its last hop as a name? Every
 * protocol but socks4 carries one; with random or round-robin any hop
 * may end up last. */
bool sfy_route_carries_names(const struct sfy_config *c)
{
	size_t n = c->nproxies;
	size_t i = c->chain == SFY_CHAIN_RANDOM || c->chain == SFY_CHAIN_ROUND_ROBIN ? 0 : n - 1;
	for (; n && i < n; i++)
		if (c->proxies[i].proto != SFY_PROTO_SOCKS4)
			return true;
	return false;
}

void sfy_route_plan_note(const struct sfy_routes *rt, int via, struct sfy_plan_acc *acc)
{
	struct sfy_route r;
	sfy_route_set(rt, via, SFY_RULE_DEFAULT, &r);
	if (r.kind != SFY_ROUTE_BLOCK)
		acc->all_block = false;
	if (r.kind == SFY_ROUTE_BLOCK || (r.kind == SFY_ROUTE_CHAIN && r.cfg->dns != SFY_DNS_LOCAL))
		acc->all_local = false;
	if (r.kind == SFY_ROUTE_CHAIN && sfy_route_carries_names(r.cfg))
		acc->any_name = true;
}

/* Without any remote route a name that is not blocked is resolved here
 * (FAKE cannot happen). A .onion/.exit/.i2p name never is, in any mode: it
 * gets a fake address when a chain it can take carries it by name (a
 * chain in local-DNS mode passes such a name on: chain.c), else the
 * lookup fails. */
enum sfy_name_plan sfy_route_plan_end(const struct sfy_routes *rt, const char *name,
				      const struct sfy_plan_acc *acc)
{
	if (acc->all_block)
		return SFY_PLAN_BLOCK;
	if (sfy_route_special_tld(name))
		return acc->any_name ? SFY_PLAN_FAKE : SFY_PLAN_BLOCK;
	if (!rt->remote || acc->all_local)
		return SFY_PLAN_LOCAL;
	return SFY_PLAN_FAKE;
}

void sfy_route_match_with(const struct sfy_routes *rt, sfy_route_one_fn *one, const char *name,
			  const struct sockaddr *sa, uint16_t port, struct sfy_route *out)
{
	if (name || !sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)) {
		one(rt, name, NULL, port, out);
		return;
	}
	char names[SFY_DNSMEM_NAMES_MAX][SFY_NAME_MAX + 1];
	size_t nn = rt->active ? sfy_dnsmem_names(sa, sa->sa_family == AF_INET ?
						   sizeof(struct sockaddr_in) :
						   sizeof(struct sockaddr_in6),
						   names, SFY_DNSMEM_NAMES_MAX) : 0;
	if (!nn) {
		one(rt, NULL, sa, port, out);
		return;
	}
	/* Each name local DNS gave this address is matched together with the
	 * address (its CIDR rules, * rules and default: included); the most
	 * restrictive verdict wins, the earliest rule among equals. The
	 * address alone does not compete: otherwise a name's own direct rule
	 * could never win over a chain default:. */
	one(rt, names[0], sa, port, out);
	for (size_t i = 1; i < nn; i++) {
		struct sfy_route r;
		one(rt, names[i], sa, port, &r);
		int a = sfy_route_severity(&r), b = sfy_route_severity(out);
		if (a > b || (a == b && (unsigned)r.rule < (unsigned)out->rule))
			*out = r;
	}
}

/* ---- the index --------------------------------------------------------- */

static inline unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static inline uint64_t fnv_step(uint64_t h, unsigned char c)
{
	return (h ^ c) * FNV_PRIME;
}

/* A key's table hash: its bytes' hash with its kind mixed in; never 0. */
static inline uint64_t key_hash(uint64_t h, unsigned kind)
{
	h ^= (uint64_t)(kind + 1) * 0x9e3779b97f4a7c15ull;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return h | 1;
}

/* Names hash right to left, so that one pass over a destination yields
 * every suffix's hash. */
static uint64_t name_hash(const char *s, size_t n)
{
	uint64_t h = FNV_OFF;
	while (n)
		h = fnv_step(h, lower((unsigned char)s[--n]));
	return h;
}

static uint64_t bytes_hash(const uint8_t *s, size_t n)
{
	uint64_t h = FNV_OFF;
	for (size_t i = 0; i < n; i++)
		h = fnv_step(h, s[i]);
	return h;
}

/* The slot of key, or NONE. fold: compare the (lower-case) key with s
 * case-insensitively. */
static uint32_t find(const struct sfy_routes *rt, uint64_t h, unsigned kind, const char *s,
		     size_t n, bool fold)
{
	if (!rt->slots)
		return NONE;
	for (uint32_t i = (uint32_t)h & rt->mask;; i = (i + 1) & rt->mask) {
		const struct sfy_rslot *sl = &rt->slots[i];
		if (!sl->h)
			return NONE;
		if (sl->h != h || sl->kind != kind || sl->key_len != n)
			continue;
		const char *k = rt->keys + sl->key_off;
		if (!fold) {
			if (!memcmp(k, s, n))
				return i;
			continue;
		}
		size_t j = 0;
		while (j < n && (unsigned char)k[j] == lower((unsigned char)s[j]))
			j++;
		if (j == n)
			return i;
	}
}

/* The first rule of slot si at index >= from and < best that applies:
 * best lowered to it. */
static void scan(const struct sfy_routes *rt, const uint32_t *l, uint32_t n, bool special,
		 int port, uint32_t from, uint32_t *best)
{
	uint32_t lo = 0, hi = n;
	while (lo < hi) {               /* first entry >= from */
		uint32_t mid = lo + (hi - lo) / 2;
		if (l[mid] < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (uint32_t j = lo; j < n && l[j] < *best; j++)
		if (sfy_route_applies(rt, &rt->eff[l[j]], special, port)) {
			*best = l[j];
			return;
		}
}

static void scan_slot(const struct sfy_routes *rt, uint32_t si, bool special, int port,
		      uint32_t from, uint32_t *best)
{
	if (si != NONE)
		scan(rt, rt->list + rt->slots[si].off, rt->slots[si].n, special, port, from, best);
}

static void mask_addr(uint8_t *out, const uint8_t *ip, unsigned nbytes, unsigned prefix)
{
	for (unsigned i = 0; i < nbytes; i++) {
		unsigned bits = prefix > i * 8 ? prefix - i * 8 : 0;
		out[i] = bits >= 8 ? ip[i] : bits ? (uint8_t)(ip[i] & (0xffu << (8 - bits))) : 0;
	}
}

/* key[] for a network of family (4/6) and prefix: its length. */
static size_t cidr_key(uint8_t key[CIDR_KEY_MAX], unsigned fam, unsigned prefix,
		       const uint8_t *ip)
{
	unsigned nb = fam == 4 ? 4 : 16;
	key[0] = (uint8_t)fam;
	key[1] = (uint8_t)prefix;
	mask_addr(key + 2, ip, nb, prefix);
	return 2 + nb;
}

/* The smallest effective index >= from whose rule matches (name, sa) and
 * applies to port (-1: any), or NONE. */
static uint32_t first_match(const struct sfy_routes *rt, const char *name, bool special,
			    const struct sockaddr *sa, int port, uint32_t from)
{
	uint32_t best = NONE;

	scan(rt, rt->any, (uint32_t)rt->nany, special, port, from, &best);
	if (name && rt->nnamekeys) {
		size_t n = strlen(name);
		if (n && name[n - 1] == '.')
			n--;
		uint64_t h = FNV_OFF;
		for (size_t i = n; i-- > 0;) {
			/* name[i + 1, n) is a suffix when a dot precedes it
			 * that is not the name's first byte. */
			if (name[i] == '.' && i >= 1)
				scan_slot(rt, find(rt, key_hash(h, SFY_RM_SUFFIX), SFY_RM_SUFFIX,
						   name + i + 1, n - i - 1, true),
					  special, port, from, &best);
			h = fnv_step(h, lower((unsigned char)name[i]));
		}
		scan_slot(rt, find(rt, key_hash(h, SFY_RM_NAME), SFY_RM_NAME, name, n, true),
			  special, port, from, &best);
	}
	if (sa) {
		const uint8_t *ip;
		const uint8_t *lens;
		size_t nlens;
		unsigned fam;
		if (sa->sa_family == AF_INET) {
			ip = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
			fam = 4;
		} else if (sa->sa_family == AF_INET6) {
			ip = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
			fam = 6;
			if (!memcmp(ip, sfy_v4mapped_prefix, 12)) {
				ip += 12;
				fam = 4;
			}
		} else {
			return best;
		}
		lens = fam == 4 ? rt->lens4 : rt->lens6;
		nlens = fam == 4 ? rt->nlens4 : rt->nlens6;
		for (size_t i = 0; i < nlens; i++) {
			uint8_t key[CIDR_KEY_MAX];
			size_t kl = cidr_key(key, fam, lens[i], ip);
			scan_slot(rt, find(rt, key_hash(bytes_hash(key, kl), SFY_RM_CIDR), SFY_RM_CIDR,
					   (const char *)key, kl, false),
				  special, port, from, &best);
		}
	}
	return best;
}

static void match_one(const struct sfy_routes *rt, const char *name, const struct sockaddr *sa,
		      int port, struct sfy_route *out)
{
	bool special = name && sfy_route_special_tld(name);
	uint32_t i = first_match(rt, name, special, sa, port, 0);
	if (i != NONE)
		sfy_route_set(rt, rt->eff[i].r.via, (int)i, out);
	else
		sfy_route_set(rt, sfy_route_default_via(rt, special, port), SFY_RULE_DEFAULT, out);
}

void sfy_route_match(const struct sfy_routes *rt, const char *name, const struct sockaddr *sa,
		     uint16_t port, struct sfy_route *out)
{
	sfy_route_match_with(rt, match_one, name, sa, port, out);
}

/* Every rule that can match name on this port (port -1: on some port),
 * in order, until one that matches on every port the call can mean. */
enum sfy_name_plan sfy_route_name_plan(const struct sfy_routes *rt, const char *name, int port)
{
	struct sfy_plan_acc acc = SFY_PLAN_ACC_INIT;
	bool special = sfy_route_special_tld(name);
	for (uint32_t i = first_match(rt, name, special, NULL, port, 0); i != NONE;
	     i = first_match(rt, name, special, NULL, port, i + 1)) {
		const struct sfy_eff *e = &rt->eff[i];
		sfy_route_plan_note(rt, e->r.via, &acc);
		if (port >= 0 || !e->r.has_port)
			return sfy_route_plan_end(rt, name, &acc);
	}
	sfy_route_plan_note(rt, sfy_route_default_via(rt, special, port), &acc);
	return sfy_route_plan_end(rt, name, &acc);
}

/* The chain a lookup of name goes through with dns: proxy (dns_proxy.h):
 * the verdict every rule that can match it (on port, -1: any) agrees on,
 * else default:'s. */
int sfy_route_name_via(const struct sfy_routes *rt, const char *name, int port)
{
	bool special = sfy_route_special_tld(name);
	int via = 0;
	bool any = false;
	for (uint32_t i = first_match(rt, name, special, NULL, port, 0); i != NONE;
	     i = first_match(rt, name, special, NULL, port, i + 1)) {
		const struct sfy_eff *e = &rt->eff[i];
		if (any && e->r.via != via)
			return sfy_route_default_via(rt, special, port);
		via = e->r.via;
		any = true;
		if (port >= 0 || !e->r.has_port)
			return via;
	}
	/* Only port-bound rules matched (or none): default: decides the
	 * ports they leave, and agrees with them or is the fallback anyway. */
	return sfy_route_default_via(rt, special, port);
}

/* Every rule that can match (name, sa) on some port, in order, until one
 * that matches on every port, then default:. Port 53's remote-DNS rule is
 * left out: it judges the port, whatever names the address has. */
int sfy_route_name_restrictive(const struct sfy_routes *rt, const char *name,
			       const struct sockaddr *sa)
{
	struct sfy_route r;
	int sev = 0;
	if (!rt || !name)
		return 0;
	bool special = sfy_route_special_tld(name);
	for (uint32_t i = first_match(rt, name, special, sa, -1, 0); i != NONE;
	     i = first_match(rt, name, special, sa, -1, i + 1)) {
		sfy_route_set(rt, rt->eff[i].r.via, (int)i, &r);
		if (sfy_route_severity(&r) > sev)
			sev = sfy_route_severity(&r);
		if (!rt->eff[i].r.has_port)
			return sev;
	}
	sfy_route_set(rt, sfy_route_default_via(rt, special, -1), SFY_RULE_DEFAULT, &r);
	return sfy_route_severity(&r) > sev ? sfy_route_severity(&r) : sev;
}

bool sfy_routes_active(const struct sfy_routes *rt)
{
	return rt->active;
}

bool sfy_routes_remote(const struct sfy_routes *rt)
{
	return rt->remote;
}

bool sfy_routes_proxy(const struct sfy_routes *rt)
{
	return rt->proxy;
}

/* ---- building ---------------------------------------------------------- */

/* A named chain (d) or direct (NULL) as a whole configuration: the
 * top-level one with the chain's hops, mode, length and DNS mode, and the
 * UDP rule of sfy_config_finish() applied to the chain itself: with 2+
 * hops and no udp: in the file, associate becomes block (the top-level
 * value may have been lowered for the top-level chain alone). */
static struct sfy_config *derive(const struct sfy_config *cfg, const struct sfy_chaindef *d)
{
	struct sfy_config *c = malloc(sizeof(*c));
	if (!c)
		return NULL;
	*c = *cfg;
	memset(c->proxies, 0, sizeof(c->proxies));
	memset(c->proxy_line, 0, sizeof(c->proxy_line));
	c->nproxies = 0;
	if (d) {
		size_t n = d->n;
		if ((size_t)d->first + n > cfg->nchain_proxies || n > SFY_MAX_PROXIES)
			n = 0;  /* not a slice of chain_proxies: no hops, blocked (sfy_route_set) */
		for (size_t i = 0; i < n; i++) {
			c->proxies[i] = cfg->chain_proxies[d->first + i];
			c->proxy_line[i] = cfg->chain_proxy_line[d->first + i];
		}
		c->nproxies = n;
		c->chain = d->chain;
		c->chain_length = d->chain_length;
		if (!c->chain_length && (c->chain == SFY_CHAIN_RANDOM ||
					 c->chain == SFY_CHAIN_ROUND_ROBIN))
			c->chain_length = 1;
		c->dns = d->dns;
		if (c->dns == SFY_DNS_AUTO)     /* not finished: the last hop decides */
			c->dns = n && sfy_proto_remote_dns(c->proxies[n - 1].proto)
			       ? SFY_DNS_REMOTE : SFY_DNS_LOCAL;
	}
	if (!cfg->udp_explicit)
		c->udp = sfy_config_multihop(c) ? SFY_UDP_BLOCK : SFY_UDP_ASSOCIATE;
	return c;
}

/* rt->eff in the effective order: -r, no_proxy, bypass, rules:. An invalid
 * rule is kept (its number still counts) but can never match. */
static void effective(struct sfy_routes *rt)
{
	const struct sfy_config *cfg = rt->cfg;
	size_t k = 0;
	for (int o = SFY_RO_CLI; o <= SFY_RO_FILE; o++) {
		if (o == SFY_RO_BYPASS) {
			for (size_t i = 0; i < cfg->nbypass; i++) {
				struct sfy_rule *r = &rt->eff[k++].r;
				r->kind = SFY_RM_CIDR;
				r->origin = SFY_RO_BYPASS;
				r->via = SFY_VIA_DIRECT;
				r->cidr = cfg->bypass[i];
				r->has_port = cfg->bypass[i].port != 0;
				r->port_lo = r->has_port ? cfg->bypass[i].port : 0;
				r->port_hi = r->has_port ? cfg->bypass[i].port : 65535;
				r->line = (uint32_t)(i + 1);
			}
			continue;
		}
		for (size_t i = 0; i < cfg->nrules; i++) {
			if (cfg->rules[i].origin != o)
				continue;
			struct sfy_eff *e = &rt->eff[k++];
			e->r = cfg->rules[i];
			e->name = "";
			if (e->r.kind == SFY_RM_NAME || e->r.kind == SFY_RM_SUFFIX) {
				if (cfg->rule_names && (uint64_t)e->r.name_off + e->r.name_len <=
						       cfg->rule_names_len)
					e->name = cfg->rule_names + e->r.name_off;
				else
					e->r.kind = RM_NEVER;
			}
		}
	}
	rt->neff = k;
	for (size_t i = 0; i < rt->neff; i++) {
		struct sfy_rule *r = &rt->eff[i].r;
		if (r->kind == SFY_RM_CIDR) {
			r->cidr.port = 0;       /* the port is port_lo..port_hi */
			if (!(r->cidr.family == AF_INET && r->cidr.prefix <= 32) &&
			    !(r->cidr.family == AF_INET6 && r->cidr.prefix <= 128))
				r->kind = RM_NEVER;
		} else if (r->kind > SFY_RM_CIDR) {
			r->kind = RM_NEVER;
		}
		rt->eff[i].exact53 = r->has_port && r->port_lo == 53 && r->port_hi == 53;
	}
}

/* The key of eff[i] into key (names lower-cased): its length and hash, or
 * false for `*` and never-matching rules. */
static bool rule_key(const struct sfy_eff *e, uint8_t *key, size_t *len, uint64_t *h)
{
	const struct sfy_rule *r = &e->r;
	if (r->kind == SFY_RM_NAME || r->kind == SFY_RM_SUFFIX) {
		for (size_t i = 0; i < r->name_len; i++)
			key[i] = lower((unsigned char)e->name[i]);
		*len = r->name_len;
		*h = key_hash(name_hash((const char *)key, *len), r->kind);
		return true;
	}
	if (r->kind == SFY_RM_CIDR) {
		*len = cidr_key(key, r->cidr.family == AF_INET ? 4 : 6, r->cidr.prefix, r->cidr.addr);
		*h = key_hash(bytes_hash(key, *len), SFY_RM_CIDR);
		return true;
	}
	return false;
}

static void add_len(uint8_t *lens, size_t *n, uint8_t len)
{
	for (size_t i = 0; i < *n; i++)
		if (lens[i] == len)
			return;
	lens[(*n)++] = len;
}

static int index_build(struct sfy_routes *rt)
{
	size_t nkeyed = 0, keybytes = 0;
	for (size_t i = 0; i < rt->neff; i++) {
		const struct sfy_rule *r = &rt->eff[i].r;
		if (r->kind == SFY_RM_ANY) {
			rt->nany++;
		} else if (r->kind == SFY_RM_NAME || r->kind == SFY_RM_SUFFIX) {
			nkeyed++;
			rt->nnamekeys++;
			keybytes += r->name_len;
		} else if (r->kind == SFY_RM_CIDR) {
			nkeyed++;
			keybytes += CIDR_KEY_MAX;
			if (r->cidr.family == AF_INET)
				add_len(rt->lens4, &rt->nlens4, r->cidr.prefix);
			else
				add_len(rt->lens6, &rt->nlens6, r->cidr.prefix);
		}
	}
	size_t nslots = 8;
	while (nslots < 2 * nkeyed)
		nslots *= 2;
	uint32_t *slot_of = calloc(rt->neff ? rt->neff : 1, sizeof(*slot_of));
	rt->slots = calloc(nslots, sizeof(*rt->slots));
	rt->keys = malloc(keybytes ? keybytes : 1);
	rt->list = malloc((nkeyed ? nkeyed : 1) * sizeof(*rt->list));
	rt->any = malloc((rt->nany ? rt->nany : 1) * sizeof(*rt->any));
	if (!slot_of || !rt->slots || !rt->keys || !rt->list || !rt->any) {
		free(slot_of);
		return -1;
	}
	rt->mask = (uint32_t)nslots - 1;

	/* Pass 1: every key once, counting its rules. */
	size_t kpos = 0, na = 0;
	for (size_t i = 0; i < rt->neff; i++) {
		uint8_t *kp;
		size_t len;
		uint64_t h;
		slot_of[i] = NONE;
		if (rt->eff[i].r.kind == SFY_RM_ANY) {
			rt->any[na++] = (uint32_t)i;
			continue;
		}
		kp = (uint8_t *)rt->keys + kpos;
		if (!rule_key(&rt->eff[i], kp, &len, &h))
			continue;
		uint32_t si = find(rt, h, rt->eff[i].r.kind, (const char *)kp, len, false);
		if (si == NONE) {
			for (si = (uint32_t)h & rt->mask; rt->slots[si].h; si = (si + 1) & rt->mask)
				;
			rt->slots[si] = (struct sfy_rslot){ .h = h, .key_off = (uint32_t)kpos,
							    .key_len = (uint16_t)len,
							    .kind = rt->eff[i].r.kind };
			kpos += len;    /* a new key: keep its bytes */
		}
		rt->slots[si].n++;
		slot_of[i] = si;
	}
	/* Each key's list in one array, filled in effective order: ascending. */
	uint32_t off = 0;
	for (size_t s = 0; s < nslots; s++) {
		rt->slots[s].off = off;
		off += rt->slots[s].n;
		rt->slots[s].n = 0;
	}
	for (size_t i = 0; i < rt->neff; i++)
		if (slot_of[i] != NONE) {
			struct sfy_rslot *sl = &rt->slots[slot_of[i]];
			rt->list[sl->off + sl->n++] = (uint32_t)i;
		}
	free(slot_of);
	return 0;
}

struct sfy_routes *sfy_routes_build(const struct sfy_config *cfg, char *err, size_t errcap)
{
	struct sfy_routes *rt = calloc(1, sizeof(*rt));
	if (!rt)
		goto oom;
	rt->cfg = cfg;
	rt->active = cfg->nrules || cfg->nchains || cfg->default_line || cfg->no_proxy_env;
	size_t n = cfg->nrules + cfg->nbypass;
	if (n >= NONE)
		goto oom;
	rt->eff = calloc(n ? n : 1, sizeof(*rt->eff));
	if (!rt->eff)
		goto oom;
	effective(rt);
	if (index_build(rt) < 0)
		goto oom;
	for (size_t i = 0; i < cfg->nchains && i < SFY_MAX_CHAINS; i++)
		if (!(rt->chain_cfg[i] = derive(cfg, &cfg->chains[i])))
			goto oom;
	if (rt->active && !(rt->direct_cfg = derive(cfg, NULL)))
		goto oom;
	rt->remote = sfy_dns_fakes(cfg->dns);
	for (size_t i = 0; i < cfg->nchains && i < SFY_MAX_CHAINS; i++)
		rt->remote |= sfy_dns_fakes(rt->chain_cfg[i]->dns);
	rt->proxy = cfg->dns == SFY_DNS_PROXY;
	for (size_t i = 0; i < cfg->nchains && i < SFY_MAX_CHAINS; i++)
		rt->proxy |= rt->chain_cfg[i]->dns == SFY_DNS_PROXY;
	return rt;
oom:
	sfy_routes_free(rt);
	sfy_errf(err, errcap, "out of memory compiling the routing rules");
	return NULL;
}

void sfy_routes_free(struct sfy_routes *rt)
{
	if (!rt)
		return;
	for (size_t i = 0; i < SFY_MAX_CHAINS; i++)
		free(rt->chain_cfg[i]);
	free(rt->direct_cfg);
	free(rt->eff);
	free(rt->slots);
	free(rt->keys);
	free(rt->list);
	free(rt->any);
	free(rt);
}

void sfy_route_describe(const struct sfy_routes *rt, const struct sfy_route *r, char *buf,
			size_t cap)
{
	const char *via = sfy_config_via_name(rt->cfg, r->via);
	if (r->rule < 0 || (size_t)r->rule >= rt->neff) {
		snprintf(buf, cap, "default (%s)", via);
		return;
	}
	const struct sfy_eff *e = &rt->eff[r->rule];
	char m[SFY_NAME_MAX + 80], a[64];
	switch (e->r.kind) {
	case SFY_RM_ANY:
		snprintf(m, sizeof(m), "*");
		break;
	case SFY_RM_NAME:
		snprintf(m, sizeof(m), "%.*s", (int)e->r.name_len, e->name);
		break;
	case SFY_RM_SUFFIX:
		snprintf(m, sizeof(m), "*.%.*s", (int)e->r.name_len, e->name);
		break;
	case SFY_RM_CIDR: {
		struct sfy_addr ad = { 0 };
		ad.type = e->r.cidr.family == AF_INET ? SFY_ATYP_IPV4 : SFY_ATYP_IPV6;
		memcpy(ad.ip, e->r.cidr.addr, e->r.cidr.family == AF_INET ? 4 : 16);
		sfy_addr_format(&ad, a, sizeof(a));
		/* sfy_addr_format appends ":0" for the zero port: cut it. */
		char *c = strrchr(a, ':');
		if (c && !strcmp(c, ":0"))
			*c = '\0';
		snprintf(m, sizeof(m), "%s/%u", a, e->r.cidr.prefix);
		break;
	}
	default:
		snprintf(m, sizeof(m), "(invalid)");
	}
	size_t ml = strlen(m);
	if (e->r.has_port && e->r.port_lo == e->r.port_hi)
		snprintf(m + ml, sizeof(m) - ml, ":%u", e->r.port_lo);
	else if (e->r.has_port)
		snprintf(m + ml, sizeof(m) - ml, ":%u-%u", e->r.port_lo, e->r.port_hi);
	switch (e->r.origin) {
	case SFY_RO_CLI:
		snprintf(buf, cap, "rule %d (-r %u: %s=%s)", r->rule + 1, e->r.line, m, via);
		break;
	case SFY_RO_NOPROXY:
		snprintf(buf, cap, "rule %d (NO_PROXY entry %u: %s=%s)", r->rule + 1, e->r.line, m, via);
		break;
	case SFY_RO_BYPASS:
		snprintf(buf, cap, "rule %d (bypass %u: %s=%s)", r->rule + 1, e->r.line, m, via);
		break;
	default:
		snprintf(buf, cap, "rule %d (%s:%u: %s=%s)", r->rule + 1,
			 rt->cfg->source[0] ? rt->cfg->source : "config", e->r.line, m, via);
	}
}

/* The path of every hook when no rule, chain or default exists
 * (sfy_routes_active() false): the bypass: list alone, as before rules. */
bool sfy_route_bypass(const struct sfy_config *cfg, const struct sockaddr *sa)
{
	bool dns = sfy_dns_fakes(cfg->dns) && sfy_sockaddr_port(sa) == 53;
	for (size_t i = 0; i < cfg->nbypass; i++)
		if (sfy_cidr_match(&cfg->bypass[i], sa) && (!dns || cfg->bypass[i].port == 53))
			return true;
	return false;
}
