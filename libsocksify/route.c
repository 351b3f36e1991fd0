/* Routing rules -> a route per destination (route.h).
 *
 * FIRST VERSION: a linear walk over the effective rule order. It is the
 * reference semantics; the compiled index replaces the walk in
 * sfy_route_match and keeps this one for differential tests. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dnsmem.h"
#include "log.h"
#include "route.h"
#include "sock.h"
#include "sfy.h"
#include "state.h"

/* One entry of the effective order: a rule of cfg->rules, or bypass rule
 * i as a direct rule. */
struct eff {
	struct sfy_rule r;
	const char *name;               /* NAME/SUFFIX: into cfg->rule_names */
};

struct sfy_routes {
	const struct sfy_config *cfg;
	bool active, remote;
	struct eff *eff;
	size_t neff;
	struct sfy_config *chain_cfg[SFY_MAX_CHAINS];
	struct sfy_config *top_cfg;     /* the top-level chain with its own dns */
	struct sfy_config *direct_cfg;  /* no hops */
};

static bool special_tld(const char *name)
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

/* name (normalized or not: compared case-insensitively, one trailing dot
 * ignored) against a NAME/SUFFIX rule. */
static bool name_match(const struct eff *e, const char *name)
{
	size_t n = strlen(name), rl = e->r.name_len;
	if (n && name[n - 1] == '.')
		n--;
	if (e->r.kind == SFY_RM_NAME)
		return n == rl && !strncasecmp(name, e->name, rl);
	return n > rl + 1 && name[n - rl - 1] == '.' && !strncasecmp(name + n - rl, e->name, rl);
}

static bool rule_match(const struct sfy_routes *rt, const struct eff *e, const char *name,
		       const struct sockaddr *sa, int port)
{
	if (port >= 0 && (port < e->r.port_lo || port > e->r.port_hi))
		return false;
	switch (e->r.kind) {
	case SFY_RM_ANY:
		break;
	case SFY_RM_NAME:
	case SFY_RM_SUFFIX:
		if (!name || !name_match(e, name))
			return false;
		break;
	case SFY_RM_CIDR:
		if (!sa || !sfy_cidr_match(&e->r.cidr, sa))
			return false;
		break;
	default:
		return false;
	}
	if (e->r.via == SFY_VIA_DIRECT) {
		if (name && special_tld(name))
			return false;
		if (rt->remote && port == 53 && !(e->r.has_port && e->r.port_lo == 53 &&
						  e->r.port_hi == 53))
			return false;
	}
	return true;
}

static const struct sfy_config *via_cfg(const struct sfy_routes *rt, int via)
{
	if (via >= 0 && (size_t)via < rt->cfg->nchains && rt->chain_cfg[via])
		return rt->chain_cfg[via];
	if (via == SFY_VIA_DIRECT)
		return rt->direct_cfg ? rt->direct_cfg : rt->cfg;
	if (via == SFY_VIA_TOP && rt->top_cfg)
		return rt->top_cfg;
	return rt->cfg;
}

static void set_route(const struct sfy_routes *rt, int via, int rule, struct sfy_route *out)
{
	out->via = via;
	out->rule = rule;
	out->kind = via == SFY_VIA_DIRECT ? SFY_ROUTE_DIRECT
		  : via == SFY_VIA_BLOCK ? SFY_ROUTE_BLOCK : SFY_ROUTE_CHAIN;
	out->cfg = via_cfg(rt, via);
}

static void match_one(const struct sfy_routes *rt, const char *name, const struct sockaddr *sa,
		      int port, struct sfy_route *out)
{
	for (size_t i = 0; i < rt->neff; i++)
		if (rule_match(rt, &rt->eff[i], name, sa, port)) {
			set_route(rt, rt->eff[i].r.via, (int)i, out);
			return;
		}
	int via = rt->cfg->default_via;
	if (via == SFY_VIA_DIRECT && name && special_tld(name))
		via = SFY_VIA_BLOCK;
	set_route(rt, via, SFY_RULE_DEFAULT, out);
}

static int severity(const struct sfy_route *r)
{
	return r->kind == SFY_ROUTE_BLOCK ? 2 : r->kind == SFY_ROUTE_CHAIN ? 1 : 0;
}

void sfy_route_match(const struct sfy_routes *rt, const char *name, const struct sockaddr *sa,
		     uint16_t port, struct sfy_route *out)
{
	if (name || !sa) {
		match_one(rt, name, NULL, port, out);
		return;
	}
	char names[SFY_DNSMEM_NAMES_MAX][SFY_NAME_MAX + 1];
	size_t nn = rt->active ? sfy_dnsmem_names(sa, sa->sa_family == AF_INET ?
						   sizeof(struct sockaddr_in) :
						   sizeof(struct sockaddr_in6),
						   names, SFY_DNSMEM_NAMES_MAX) : 0;
	match_one(rt, NULL, sa, port, out);
	/* Each name local DNS gave this address is matched together with the
	 * address; the most restrictive verdict wins, the earliest rule among
	 * equals. */
	for (size_t i = 0; i < nn; i++) {
		struct sfy_route r;
		match_one(rt, names[i], sa, port, &r);
		if (severity(&r) > severity(out) ||
		    (severity(&r) == severity(out) && (unsigned)r.rule < (unsigned)out->rule))
			*out = r;
	}
}

enum sfy_name_plan sfy_route_name_plan(const struct sfy_routes *rt, const char *name, int port)
{
	bool all_block = true, all_local = true;
	for (size_t i = 0; i < rt->neff; i++) {
		const struct eff *e = &rt->eff[i];
		if (e->r.kind == SFY_RM_CIDR)
			continue;       /* the name's address is not known yet */
		if (!rule_match(rt, e, name, NULL, port))
			continue;
		const struct sfy_config *c = via_cfg(rt, e->r.via);
		if (e->r.via != SFY_VIA_BLOCK)
			all_block = false;
		if (e->r.via != SFY_VIA_DIRECT && !(e->r.via != SFY_VIA_BLOCK &&
						    c->dns == SFY_DNS_LOCAL))
			all_local = false;
		if (port >= 0 || !e->r.has_port)
			goto done;      /* matches on every port this call can mean */
	}
	{
		int via = rt->cfg->default_via;
		if (via == SFY_VIA_DIRECT && special_tld(name))
			via = SFY_VIA_BLOCK;
		const struct sfy_config *c = via_cfg(rt, via);
		if (via != SFY_VIA_BLOCK)
			all_block = false;
		if (via != SFY_VIA_DIRECT && !(via != SFY_VIA_BLOCK && c->dns == SFY_DNS_LOCAL))
			all_local = false;
	}
done:
	if (all_block)
		return SFY_PLAN_BLOCK;
	if (all_local && !special_tld(name))
		return SFY_PLAN_LOCAL;
	return SFY_PLAN_FAKE;
}

bool sfy_routes_active(const struct sfy_routes *rt)
{
	return rt->active;
}

bool sfy_routes_remote(const struct sfy_routes *rt)
{
	return rt->remote;
}

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
		for (size_t i = 0; i < d->n; i++) {
			c->proxies[i] = cfg->chain_proxies[d->first + i];
			c->proxy_line[i] = cfg->chain_proxy_line[d->first + i];
		}
		c->nproxies = d->n;
		c->chain = d->chain;
		c->chain_length = d->chain_length;
		c->dns = d->dns;
	}
	return c;
}

struct sfy_routes *sfy_routes_build(const struct sfy_config *cfg, char *err, size_t errcap)
{
	struct sfy_routes *rt = calloc(1, sizeof(*rt));
	if (!rt)
		goto oom;
	rt->cfg = cfg;
	rt->active = cfg->nrules || cfg->nchains || cfg->default_line || cfg->no_proxy_env;
	rt->neff = cfg->nrules + cfg->nbypass;
	rt->eff = calloc(rt->neff ? rt->neff : 1, sizeof(*rt->eff));
	if (!rt->eff)
		goto oom;
	size_t k = 0;
	for (int o = SFY_RO_CLI; o <= SFY_RO_FILE; o++) {
		if (o == SFY_RO_BYPASS) {
			for (size_t i = 0; i < cfg->nbypass; i++) {
				struct sfy_rule *r = &rt->eff[k++].r;
				r->kind = SFY_RM_CIDR;
				r->origin = SFY_RO_BYPASS;
				r->via = SFY_VIA_DIRECT;
				r->cidr = cfg->bypass[i];
				r->cidr.port = 0;
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
			rt->eff[k].r = cfg->rules[i];
			rt->eff[k].name = cfg->rule_names ? cfg->rule_names + cfg->rules[i].name_off : "";
			k++;
		}
	}
	rt->neff = k;
	for (size_t i = 0; i < cfg->nchains; i++)
		if (!(rt->chain_cfg[i] = derive(cfg, &cfg->chains[i])))
			goto oom;
	if (rt->active && !(rt->direct_cfg = derive(cfg, NULL)))
		goto oom;
	rt->remote = cfg->dns == SFY_DNS_REMOTE;
	for (size_t i = 0; i < cfg->nchains; i++)
		rt->remote |= cfg->chains[i].dns == SFY_DNS_REMOTE;
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
	free(rt->top_cfg);
	free(rt->direct_cfg);
	free(rt->eff);
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
	const struct eff *e = &rt->eff[r->rule];
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
	default: {
		struct sfy_addr ad = { 0 };
		ad.type = e->r.cidr.family == AF_INET ? SFY_ATYP_IPV4 : SFY_ATYP_IPV6;
		memcpy(ad.ip, e->r.cidr.addr, e->r.cidr.family == AF_INET ? 4 : 16);
		sfy_addr_format(&ad, a, sizeof(a));
		/* sfy_addr_format appends ":0" for the zero port: cut it. */
		char *c = strrchr(a, ':');
		if (c && !strcmp(c, ":0"))
			*c = '\0';
		snprintf(m, sizeof(m), "%s/%u", a, e->r.cidr.prefix);
	}
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

/* Old interface, until the hooks move to sfy_route_match. */
bool sfy_route_bypass(const struct sfy_config *cfg, const struct sockaddr *sa)
{
	bool dns = cfg->dns == SFY_DNS_REMOTE && sfy_sockaddr_port(sa) == 53;
	for (size_t i = 0; i < cfg->nbypass; i++)
		if (sfy_cidr_match(&cfg->bypass[i], sa) && (!dns || cfg->bypass[i].port == 53))
			return true;
	return false;
}
