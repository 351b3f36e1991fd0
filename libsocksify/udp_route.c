/* UDP on the routing rules' verdicts (udp_route.h). */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "dns_rules.h"
#include "dnsmem.h"
#include "fakedns.h"
#include "hop_addr.h"
#include "io.h"
#include "log.h"
#include "logonce.h"
#include "route.h"
#include "state.h"
#include "udp_route.h"

#define CACHE_SLOTS 32

static struct slot {
	char name[SFY_NAME_MAX + 1];    /* normalized; "" = empty */
	int family;
	int err;                        /* 0: addr holds the answer */
	struct sfy_addr addr;
	int64_t until;                  /* sfy_now_ms() after which it is stale */
} cache[CACHE_SLOTS];
static unsigned cache_next;
/* Held for a copy, never across a lookup. trylock only: after a fork() in
 * another thread's critical section the child just does without. */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static bool cache_get(const char *key, int family, struct sfy_addr *out, int *err)
{
	bool hit = false;
	if (pthread_mutex_trylock(&cache_lock) != 0)
		return false;
	int64_t now = sfy_now_ms();
	for (unsigned i = 0; i < CACHE_SLOTS && !hit; i++) {
		struct slot *s = &cache[i];
		if (s->name[0] && s->family == family && now < s->until && !strcmp(s->name, key)) {
			*out = s->addr;
			*err = s->err;
			hit = true;
		}
	}
	pthread_mutex_unlock(&cache_lock);
	return hit;
}

static void cache_put(const char *key, int family, const struct sfy_addr *a, int err)
{
	if (pthread_mutex_trylock(&cache_lock) != 0)
		return;
	struct slot *s = NULL;
	for (unsigned i = 0; i < CACHE_SLOTS && !s; i++)
		if (cache[i].family == family && !strcmp(cache[i].name, key))
			s = &cache[i];
	if (!s) {
		s = &cache[cache_next];
		cache_next = (cache_next + 1) % CACHE_SLOTS;
	}
	snprintf(s->name, sizeof(s->name), "%s", key);
	s->family = family;
	s->err = err;
	if (a)
		s->addr = *a;
	s->until = sfy_now_ms() + (err ? SFY_UDP_NAME_FAIL_MS : SFY_UDP_NAME_TTL_MS);
	pthread_mutex_unlock(&cache_lock);
}

void sfy_udp_resolve_flush(void)
{
	pthread_mutex_lock(&cache_lock);
	memset(cache, 0, sizeof(cache));
	cache_next = 0;
	pthread_mutex_unlock(&cache_lock);
}

int sfy_udp_resolve(const struct sfy_config *cfg, const char *name, uint16_t port, int family,
		    struct sfy_addr *out)
{
	char key[SFY_NAME_MAX + 1];
	int err;
	if (sfy_fakedns_normalize(name, key) < 0)
		return -EHOSTUNREACH;
	/* Never resolved on this machine (route.h); the routes give such a
	 * name no direct verdict, and a relay gets it by name (hooks_udp.c):
	 * this only holds the line. */
	if (sfy_route_special_tld(key)) {
		if (sfy_logonce_first("udp-special", key))
			sfy_warn("udp: %s is never resolved locally", key);
		return -EHOSTUNREACH;
	}
	if (!cache_get(key, family, out, &err)) {
		char spelled[SFY_NAME_MAX + 2];
		sfy_dns_rules_local_spelling(sfy_routes_get(), key, port, spelled);
		err = sfy_resolve_fam(spelled, port, family, sfy_now_ms() + cfg->handshake_timeout_ms,
				      out);
		if (err == 0 && out->type != SFY_ATYP_IPV4 && out->type != SFY_ATYP_IPV6)
			err = -EHOSTUNREACH;
		cache_put(key, family, err ? NULL : out, err);
		if (err == 0) {
			struct sockaddr_storage ss;
			int n = sfy_addr_to_sockaddr(out, out->type == SFY_ATYP_IPV4 ? AF_INET : AF_INET6,
						     &ss);
			if (n > 0)
				sfy_dnsmem_add(key, (struct sockaddr *)&ss, (socklen_t)n,
					       sfy_route_name_restrictive(sfy_routes_get(), key,
									  (struct sockaddr *)&ss));
		} else {
			char txt[4 * SFY_NAME_MAX + 1];
			sfy_log_escape(txt, sizeof(txt), key, strlen(key));
			sfy_warn("udp: cannot resolve %s locally (%s)", txt, strerrorname_np(-err));
		}
	}
	if (err == 0)
		out->port = port;
	return err;
}

int sfy_udp_direct_addr(const struct sfy_dest *d, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sfy_addr a;
	const struct sfy_config *cfg = d->route.cfg ? d->route.cfg : d->cfg;
	if (!cfg || !d->named || d->name.type != SFY_ATYP_DOMAIN)
		return -EHOSTUNREACH;
	/* An AF_INET socket reaches IPv4 only; an AF_INET6 one either (v4-mapped). */
	int r = sfy_udp_resolve(cfg, d->name.name, d->name.port,
				d->si.family == AF_INET ? AF_INET : AF_UNSPEC, &a);
	if (r < 0)
		return r;
	int n = sfy_addr_to_sockaddr(&a, d->si.family, ss);
	if (n < 0)
		return -EHOSTUNREACH;
	*len = (socklen_t)n;
	return 0;
}

void sfy_udp_block_log(const struct sfy_dest *d, const char *what, int err)
{
	struct sfy_addr a;
	char txt[4 * SFY_NAME_MAX + 16] = "?", how[SFY_NAME_MAX + 200] = "the rules";
	if (d->named)
		a = d->name;
	else if (sfy_addr_from_sockaddr(&a, (const struct sockaddr *)&d->sa, d->len) < 0)
		return;
	sfy_addr_format(&a, txt, sizeof(txt));
	if (!sfy_logonce_first("udp-block", txt))
		return;
	const struct sfy_routes *rt = sfy_routes_get();
	if (rt)
		sfy_route_describe(rt, &d->route, how, sizeof(how));
	sfy_warn("udp: %s to %s blocked by %s (%s)", what, txt, how, strerrorname_np(err));
}
