/* dns: proxy (dns_proxy.h): RESOLVE / RESOLVE_PTR through the chain to its
 * last hop, the reply codes' meaning for a resolver, and a small cache.
 *
 * The request is a chain set-up like a connect()'s (chain.c), on a socket
 * of our own, with the last hop's command RESOLVE or RESOLVE_PTR: every
 * earlier hop only sees a CONNECT to the next hop, so the name reaches the
 * last hop alone, as a connection by name would. The set-up is bounded by
 * the handshake timeout, the last hop's answer (like each hop's part) by
 * the connect timeout; the socket is closed right after the reply. A
 * dynamic chain never drops its last hop for it (chain.c).
 *
 * The cache is set-associative (SFY_DNSPROXY_SETS sets of
 * SFY_DNSPROXY_WAYS entries, least recently used out), in static memory,
 * behind a try-lock that is never waited on for long: a lookup that cannot
 * take it asks the proxy instead, so a fork() child whose parent held it
 * (another thread, at the fork) only loses the cache, never hangs. */
#include <errno.h>
#include <netdb.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "chain.h"
#include "dns_proxy.h"
#include "errmap.h"
#include "fakedns.h"
#include "io.h"
#include "log.h"
#include "real.h"
#include "route.h"
#include "sfy.h"
#include "state.h"

int sfy_dnsproxy_eai(uint8_t rep)
{
	switch (rep) {
	case SFY_S5_SUCCEEDED:
		return 0;
	case SFY_S5_CMD_NOT_SUPPORTED:
		return SFY_DNSPROXY_FAKE;
	case SFY_S5_HOST_UNREACHABLE:   /* Tor: the name does not resolve */
	case 0xF0:                      /* onion service descriptor not found */
	case 0xF6:                      /* invalid onion service address */
		return EAI_NONAME;
	case SFY_S5_GENERAL_FAILURE:    /* Tor: no circuit yet, and the like */
	case SFY_S5_NET_UNREACHABLE:
	case SFY_S5_TTL_EXPIRED:        /* the lookup timed out */
	case 0xF2:                      /* introduction failed */
	case 0xF3:                      /* rendezvous failed */
	case 0xF7:                      /* onion service: timed out */
		return EAI_AGAIN;
	default:                        /* 0x02 not allowed, 0x05, 0x08, F1
					   (descriptor invalid), F4/F5 (client
					   authorization), unknown codes */
		return EAI_FAIL;
	}
}

/* ---- the cache ---------------------------------------------------------- */

struct entry {
	const void *chain;              /* NULL: empty */
	int64_t expires, used;
	uint8_t kind;
	uint8_t klen;
	uint8_t key[SFY_NAME_MAX];
	struct sfy_dnsproxy_ans ans;
};

static struct entry cache[SFY_DNSPROXY_SETS][SFY_DNSPROXY_WAYS];
static atomic_flag cache_lock = ATOMIC_FLAG_INIT;
static int64_t cache_tick;              /* under the lock: LRU order */

/* A few yields at most: contention is two threads looking up at once. */
static bool lock_try(void)
{
	for (int i = 0; i < 64; i++) {
		if (!atomic_flag_test_and_set_explicit(&cache_lock, memory_order_acquire))
			return true;
		sched_yield();
	}
	return false;
}

static void unlock(void)
{
	atomic_flag_clear_explicit(&cache_lock, memory_order_release);
}

static size_t set_of(const void *chain, unsigned kind, const void *key, size_t klen)
{
	const uint8_t *k = key;
	uint64_t h = 14695981039346656037ull ^ (uintptr_t)chain ^ kind;
	for (size_t i = 0; i < klen; i++)
		h = (h ^ k[i]) * 1099511628211ull;
	return (size_t)(h ^ h >> 29) % SFY_DNSPROXY_SETS;
}

static bool same(const struct entry *e, const void *chain, unsigned kind, const void *key,
		 size_t klen)
{
	return e->chain == chain && e->kind == kind && e->klen == klen && !memcmp(e->key, key, klen);
}

bool sfy_dnsproxy_cache_get(const void *chain, enum sfy_dnsproxy_kind kind, const void *key,
			    size_t klen, int64_t now, struct sfy_dnsproxy_ans *out)
{
	if (!chain || klen > SFY_NAME_MAX || !lock_try())
		return false;
	struct entry *set = cache[set_of(chain, kind, key, klen)];
	bool hit = false;
	for (size_t w = 0; w < SFY_DNSPROXY_WAYS; w++) {
		struct entry *e = &set[w];
		if (!same(e, chain, kind, key, klen))
			continue;
		if (now >= e->expires) {
			e->chain = NULL;        /* expired: forget it */
			break;
		}
		e->used = ++cache_tick;
		*out = e->ans;
		hit = true;
		break;
	}
	unlock();
	return hit;
}

void sfy_dnsproxy_cache_put(const void *chain, enum sfy_dnsproxy_kind kind, const void *key,
			    size_t klen, int64_t now, const struct sfy_dnsproxy_ans *ans)
{
	if (!chain || klen > SFY_NAME_MAX || !lock_try())
		return;
	struct entry *set = cache[set_of(chain, kind, key, klen)], *victim = &set[0];
	for (size_t w = 0; w < SFY_DNSPROXY_WAYS; w++) {
		struct entry *e = &set[w];
		if (same(e, chain, kind, key, klen) || !e->chain) {
			victim = e;
			break;
		}
		if (e->expires <= now || e->used < victim->used)
			victim = e;
	}
	victim->chain = chain;
	victim->kind = (uint8_t)kind;
	victim->klen = (uint8_t)klen;
	memcpy(victim->key, key, klen);
	victim->expires = now + SFY_DNSPROXY_TTL_MS;
	victim->used = ++cache_tick;
	victim->ans = *ans;
	unlock();
}

/* ---- chains without RESOLVE (a 0x07 reply) ------------------------------ */

/* Marks per chain configuration (a route's cfg never moves): bit 1 no
 * RESOLVE, bit 2 no RESOLVE_PTR. */
#define MARKS_MAX (SFY_MAX_CHAINS + 2)
static struct {
	_Atomic(const void *) chain;
	atomic_uint bits;
} marks[MARKS_MAX];

static unsigned marked(const void *chain)
{
	for (size_t i = 0; i < MARKS_MAX; i++) {
		const void *c = atomic_load_explicit(&marks[i].chain, memory_order_acquire);
		if (!c)
			return 0;
		if (c == chain)
			return atomic_load(&marks[i].bits);
	}
	return 0;
}

static void mark(const void *chain, unsigned bit)
{
	for (size_t i = 0; i < MARKS_MAX; i++) {
		const void *none = NULL;
		if (atomic_compare_exchange_strong(&marks[i].chain, &none, chain) || none == chain) {
			atomic_fetch_or(&marks[i].bits, bit);
			return;
		}
	}
}

void sfy_dnsproxy_reset(void)
{
	if (!lock_try())
		return;
	memset(cache, 0, sizeof(cache));
	cache_tick = 0;
	unlock();
	for (size_t i = 0; i < MARKS_MAX; i++) {
		atomic_store(&marks[i].bits, 0);
		atomic_store(&marks[i].chain, NULL);
	}
}

/* ---- asking ----------------------------------------------------------- */

/* Can any lookup ask a chain? Checked first: the route walks below are
 * wasted on every faked lookup of a process without dns: proxy. */
static bool any_proxy(const struct sfy_config *c, const struct sfy_routes *rt)
{
	return rt ? sfy_routes_proxy(rt) : c->dns == SFY_DNS_PROXY;
}

const struct sfy_config *sfy_dnsproxy_chain_for(const char *name, int port)
{
	const struct sfy_config *c = sfy_config_get(), *ch;
	const struct sfy_routes *rt = c ? sfy_routes_get() : NULL;
	if (!c || !any_proxy(c, rt))
		return NULL;
	if (rt && sfy_routes_active(rt))
		ch = sfy_routes_chain(rt, sfy_route_name_via(rt, name, port));
	else
		ch = c;
	return ch && ch->nproxies && ch->dns == SFY_DNS_PROXY ? ch : NULL;
}

const struct sfy_config *sfy_dnsproxy_chain_for_addr(const struct sockaddr *sa, socklen_t len)
{
	const struct sfy_config *c = sfy_config_get(), *ch = NULL;
	const struct sfy_routes *rt = c ? sfy_routes_get() : NULL;
	(void)len;
	if (!c || !any_proxy(c, rt))
		return NULL;
	if (rt && sfy_routes_active(rt)) {
		struct sfy_route r;
		sfy_route_match(rt, NULL, sa, 0, &r);
		if (r.kind == SFY_ROUTE_CHAIN)
			ch = r.cfg;
	} else if (!sfy_route_bypass(c, sa)) {
		ch = c;
	}
	return ch && ch->nproxies && ch->dns == SFY_DNS_PROXY ? ch : NULL;
}

/* One set-up through chain with cmd for dst, on a socket of our own. */
static int ask(const struct sfy_config *chain, const struct sfy_addr *dst, enum sfy_s5_cmd cmd,
	       struct sfy_chain_report *rep)
{
	int saved = errno;
	rep->rep = -1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = -errno;
		errno = saved;
		return e;
	}
	int r = sfy_chain_connect(chain, fd, dst, cmd, rep);
	sfy_real()->close(fd);
	errno = saved;
	return r;
}

/* What a failed set-up means for a lookup: the chain could not carry it. */
static int chain_eai(int err)
{
	return err == -ENOMEM ? EAI_MEMORY : err == -EPROTO ? EAI_FAIL : EAI_AGAIN;
}

static void hop_name(const struct sfy_config *chain, const struct sfy_chain_report *rep,
		     char *buf, size_t cap)
{
	size_t last = rep->last < chain->nproxies ? rep->last : chain->nproxies - 1;
	sfy_proxy_format(&chain->proxies[last], buf, cap);
}

/* 0x07: this chain's last hop has no such command; said once a process. */
static void no_command(const struct sfy_config *chain, const struct sfy_chain_report *rep,
		       unsigned bit)
{
	static atomic_flag said[2] = { ATOMIC_FLAG_INIT, ATOMIC_FLAG_INIT };
	char hop[600];
	mark(chain, bit);
	hop_name(chain, rep, hop, sizeof(hop));
	if (!atomic_flag_test_and_set(&said[bit == 1 ? 0 : 1]))
		sfy_info(bit == 1 ? "dns: proxy: %s has no RESOLVE; names go by fake addresses"
				  : "dns: proxy: %s has no RESOLVE_PTR; reverse lookups answer numerically",
			 hop);
}

/* An address a program may get as a real answer: not unspecified, not one
 * of our fake addresses (connect() would take it for a name). */
static bool usable(const struct sfy_addr *a)
{
	static const uint8_t zero[16];
	struct sockaddr_storage ss;
	int len;
	if (a->type != SFY_ATYP_IPV4 && a->type != SFY_ATYP_IPV6)
		return false;
	if (!memcmp(a->ip, zero, a->type == SFY_ATYP_IPV4 ? 4 : 16))
		return false;
	len = sfy_addr_to_sockaddr(a, a->type == SFY_ATYP_IPV4 ? AF_INET : AF_INET6, &ss);
	return len > 0 && !sfy_fakedns_is_fake((struct sockaddr *)&ss, (socklen_t)len);
}

int sfy_dnsproxy_resolve(const struct sfy_config *chain, const char *name, struct sfy_addr *out)
{
	char key[SFY_NAME_MAX + 1];
	struct sfy_dnsproxy_ans a;
	struct sfy_chain_report rep;
	int n = sfy_fakedns_normalize(name, key);
	if (n <= 0)
		return EAI_NONAME;
	if (marked(chain) & 1)
		return SFY_DNSPROXY_FAKE;
	if (sfy_dnsproxy_cache_get(chain, SFY_DNSPROXY_FWD, key, (size_t)n, sfy_now_ms(), &a)) {
		if (a.rc == 0)
			*out = a.addr;
		return a.rc;
	}
	struct sfy_addr dst = { .type = SFY_ATYP_DOMAIN, .port = 0 };
	memcpy(dst.name, key, (size_t)n + 1);
	int r = ask(chain, &dst, SFY_S5_RESOLVE, &rep);
	memset(&a, 0, sizeof(a));
	if (r == 0) {
		char txt[300];
		if (!usable(&rep.bnd)) {
			sfy_addr_format(&rep.bnd, txt, sizeof(txt));
			sfy_warn("dns: proxy: RESOLVE %s answered %s, not an address a program can use",
				 key, txt);
			return EAI_FAIL;
		}
		a.addr = rep.bnd;
		a.addr.port = 0;
		sfy_addr_format(&a.addr, txt, sizeof(txt));
		sfy_debug("dns: proxy: %s is %s", key, txt);
	} else if (rep.rep > 0) {
		a.rc = sfy_dnsproxy_eai((uint8_t)rep.rep);
		if (a.rc == SFY_DNSPROXY_FAKE) {
			no_command(chain, &rep, 1);
			return SFY_DNSPROXY_FAKE;
		}
		sfy_debug("dns: proxy: RESOLVE %s: reply 0x%02x (%s): %s", key, rep.rep,
			  sfy_s5_rep_str((uint8_t)rep.rep), gai_strerror(a.rc));
		if (a.rc != EAI_NONAME)
			return a.rc;    /* transient or unclear: asked again next time */
	} else {
		return chain_eai(r);
	}
	sfy_dnsproxy_cache_put(chain, SFY_DNSPROXY_FWD, key, (size_t)n, sfy_now_ms(), &a);
	if (a.rc == 0)
		*out = a.addr;
	return a.rc;
}

bool sfy_dnsproxy_hostname_ok(const char *s)
{
	size_t n = strlen(s), label = 0;
	if (n && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0)
				return false;   /* an empty label */
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_') || ++label > 63)
			return false;
	}
	return label > 0;
}

bool sfy_dnsproxy_local_addr(int af, const void *addr)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff }, zero[15];
	const uint8_t *a = addr;
	if (af == AF_INET6) {
		if (!memcmp(a, mapped, sizeof(mapped)))
			return sfy_dnsproxy_local_addr(AF_INET, a + 12);
		if (!memcmp(a, zero, sizeof(zero)) && a[15] <= 1)
			return true;                            /* ::1, :: */
		return (a[0] & 0xfe) == 0xfc ||                 /* fc00::/7 ULA */
		       (a[0] == 0xfe && (a[1] & 0xc0) == 0x80); /* fe80::/10 */
	}
	return a[0] == 0 || a[0] == 127 || a[0] == 10 ||        /* this net, loopback */
	       (a[0] == 172 && (a[1] & 0xf0) == 16) ||          /* RFC 1918 */
	       (a[0] == 192 && a[1] == 168) ||
	       (a[0] == 169 && a[1] == 254) ||                  /* link-local */
	       (a[0] == 100 && (a[1] & 0xc0) == 64);            /* CGNAT 100.64/10 */
}

int sfy_dnsproxy_reverse(const struct sfy_config *chain, int af, const void *addr,
			 char out[static SFY_NAME_MAX + 1])
{
	struct sfy_dnsproxy_ans a;
	struct sfy_chain_report rep;
	size_t alen = af == AF_INET ? 4 : 16;
	if ((af != AF_INET && af != AF_INET6) || (marked(chain) & 2))
		return EAI_NONAME;
	if (sfy_dnsproxy_local_addr(af, addr)) {
		/* This machine's or its LAN's address: no business of the last
		 * hop (a server logging its clients' names would hand it every
		 * LAN address). Numeric, as without a name. */
		sfy_debug("dns: proxy: no RESOLVE_PTR for a local address");
		return EAI_NONAME;
	}
	if (sfy_dnsproxy_cache_get(chain, SFY_DNSPROXY_PTR, addr, alen, sfy_now_ms(), &a)) {
		if (a.rc == 0)
			memcpy(out, a.addr.name, SFY_NAME_MAX + 1);
		return a.rc;
	}
	struct sfy_addr dst = { .type = af == AF_INET ? SFY_ATYP_IPV4 : SFY_ATYP_IPV6, .port = 0 };
	memcpy(dst.ip, addr, alen);
	int r = ask(chain, &dst, SFY_S5_RESOLVE_PTR, &rep);
	memset(&a, 0, sizeof(a));
	if (r == 0) {
		/* A name from the network: only a host name (res_hnok's
		 * rule) reaches the program, which may paste it into a log, a
		 * shell command or an access check -- as glibc's resolver
		 * drops PTR answers that fail res_hnok(). */
		if (rep.bnd.type != SFY_ATYP_DOMAIN || !sfy_dnsproxy_hostname_ok(rep.bnd.name) ||
		    sfy_fakedns_normalize(rep.bnd.name, a.addr.name) <= 0) {
			sfy_debug("dns: proxy: RESOLVE_PTR answered no usable host name%s%s",
				  rep.bnd.type == SFY_ATYP_DOMAIN ? ": " : "",
				  rep.bnd.type == SFY_ATYP_DOMAIN ? rep.bnd.name : "");
			memset(&a, 0, sizeof(a));
			a.rc = EAI_NONAME;
		}
	} else if (rep.rep > 0) {
		a.rc = sfy_dnsproxy_eai((uint8_t)rep.rep);
		if (a.rc == SFY_DNSPROXY_FAKE) {
			no_command(chain, &rep, 2);
			return EAI_NONAME;
		}
		if (a.rc != EAI_NONAME)
			return a.rc;
	} else {
		return chain_eai(r);
	}
	sfy_dnsproxy_cache_put(chain, SFY_DNSPROXY_PTR, addr, alen, sfy_now_ms(), &a);
	if (a.rc == 0)
		memcpy(out, a.addr.name, SFY_NAME_MAX + 1);
	return a.rc;
}
