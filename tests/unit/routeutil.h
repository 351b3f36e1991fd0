/* Rule sets built by hand for the routing tests and the route fuzzer: a
 * configuration with a top-level chain, named chains and struct sfy_rule
 * entries with their names pool, without the config parser. Header-only. */
#ifndef SFY_ROUTEUTIL_H
#define SFY_ROUTEUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bypass.h"
#include "config.h"

/* A configuration with one top-level hop (url, NULL for none) in dns mode. */
static inline struct sfy_config *rb_new(const char *url, enum sfy_dns_mode dns)
{
	struct sfy_config *c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	sfy_config_defaults(c);
	if (url && sfy_config_set_proxies(c, url, NULL, 0))
		abort();
	c->dns = dns;
	return c;
}

static inline void rb_free(struct sfy_config *c)
{
	sfy_config_free(c);
	free(c);
}

/* A named chain of hops (space separated URLs) with its dns mode (AUTO:
 * the last hop decides); its index. */
static inline int rb_chain(struct sfy_config *c, const char *name, const char *urls,
			   enum sfy_dns_mode dns, enum sfy_chain_mode mode)
{
	struct sfy_chaindef *d = &c->chains[c->nchains];
	struct sfy_config tmp;
	sfy_config_defaults(&tmp);
	if (c->nchains >= SFY_MAX_CHAINS || sfy_config_set_proxies(&tmp, urls, NULL, 0) ||
	    c->nchain_proxies + tmp.nproxies > SFY_MAX_CHAIN_PROXIES)
		abort();
	memset(d, 0, sizeof(*d));
	strncpy(d->name, name, SFY_CHAIN_NAME_MAX);
	d->chain = mode;
	d->dns = dns;
	d->first = (uint8_t)c->nchain_proxies;
	d->n = (uint8_t)tmp.nproxies;
	for (size_t i = 0; i < tmp.nproxies; i++)
		c->chain_proxies[c->nchain_proxies++] = tmp.proxies[i];
	return (int)c->nchains++;
}

/* One rule: match is "*", "*.suffix", a name, or an address/CIDR in
 * sfy_cidr_parse's spelling (without a port); lo..hi the port range, 0 0
 * for none. false if match is not one of those. */
static inline bool rb_rule(struct sfy_config *c, enum sfy_rule_origin origin, const char *match,
			   unsigned lo, unsigned hi, int via)
{
	struct sfy_rule r;
	struct sfy_cidr cidr;
	memset(&r, 0, sizeof(r));
	r.origin = (uint8_t)origin;
	r.via = (int16_t)via;
	r.has_port = lo || hi;
	r.port_lo = (uint16_t)(r.has_port ? lo : 0);
	r.port_hi = (uint16_t)(r.has_port ? hi : 65535);
	r.line = (uint32_t)c->nrules + 1;
	if (!strcmp(match, "*")) {
		r.kind = SFY_RM_ANY;
	} else if (strchr(match, '/') || strchr(match, ':') ||
		   strspn(match, "0123456789.") == strlen(match)) {
		if (sfy_cidr_parse(match, &cidr, NULL, 0))
			return false;
		r.kind = SFY_RM_CIDR;
		r.cidr = cidr;
		r.cidr.port = 0;
	} else {
		const char *n = match;
		r.kind = SFY_RM_NAME;
		if (!strncmp(n, "*.", 2)) {
			r.kind = SFY_RM_SUFFIX;
			n += 2;
		}
		size_t len = strlen(n);
		char *pool = realloc(c->rule_names, c->rule_names_len + len + 1);
		if (!pool)
			abort();
		for (size_t i = 0; i < len; i++)   /* stored lower case */
			pool[c->rule_names_len + i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] + 32 : n[i]);
		pool[c->rule_names_len + len] = '\0';
		c->rule_names = pool;
		r.name_off = (uint32_t)c->rule_names_len;
		r.name_len = (uint16_t)len;
		c->rule_names_len += len + 1;
	}
	struct sfy_rule *rules = realloc(c->rules, (c->nrules + 1) * sizeof(*rules));
	if (!rules)
		abort();
	rules[c->nrules++] = r;
	c->rules = rules;
	return true;
}

#endif
