/* The YAML keys of routing: chains: (named chains, each a list of hops or
 * a mapping {chain, proxies, chain_length, dns}), rules: (a list of
 * {match, via}), default: and no_proxy:. A rule or default: may name a
 * chain defined further down, so via names are resolved once the whole
 * file has been walked (sfy_cfg_resolve_vias). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "config.h"
#include "config_rules.h"
#include "config_yaml.h"
#include "sfy.h"

/* --- chains: -------------------------------------------------------- */

struct chain_ctx {
	struct sfy_chaindef *d;
	yaml_node_t *proxies, *chain_length;
};

static int chain_hop(struct load *l, yaml_node_t *it, const char *ip, size_t i, void *arg)
{
	struct sfy_chaindef *d = arg;
	size_t k = d->first + i;

	if (k >= SFY_MAX_CHAIN_PROXIES)
		return sfy_cfg_kerr(l, it, ip, "more than %d proxies in all chains together",
				    SFY_MAX_CHAIN_PROXIES);
	if (sfy_cfg_proxy(l, it, ip, &l->c->chain_proxies[k]))
		return -1;
	l->c->chain_proxy_line[k] = sfy_cfg_line(it);
	l->c->nchain_proxies = k + 1;
	d->n = (uint8_t)(i + 1);
	return 0;
}

static int chain_hops(struct load *l, yaml_node_t *v, const char *path, struct sfy_chaindef *d)
{
	d->n = 0;
	if (sfy_cfg_each(l, v, path, SFY_MAX_CHAIN_PROXIES, "proxies", chain_hop, d))
		return -1;
	if (!d->n)
		return sfy_cfg_kerr(l, v, path, "empty chain (at least one proxy is needed)");
	return 0;
}

static int c_proxies(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	struct chain_ctx *x = arg;

	x->proxies = v;
	return chain_hops(l, v, path, x->d);
}

static int c_chain(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	struct chain_ctx *x = arg;
	int m;

	if (sfy_cfg_enum_value(l, v, path, sfy_chain_mode_parse, "strict, dynamic, random, round_robin", &m))
		return -1;
	x->d->chain = (enum sfy_chain_mode)m;
	return 0;
}

static int c_chain_length(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	struct chain_ctx *x = arg;
	unsigned long n;

	if (sfy_cfg_number(l, v, path, "value", SFY_MAX_CHAIN_PROXIES, &n))
		return -1;
	x->d->chain_length = (unsigned)n;
	x->chain_length = v;
	return 0;
}

static int c_dns(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	struct chain_ctx *x = arg;
	int m;

	if (sfy_cfg_enum_value(l, v, path, sfy_dns_mode_parse, "remote, local, proxy", &m))
		return -1;
	x->d->dns = (enum sfy_dns_mode)m;
	return 0;
}

static const struct key_def chain_keys[] = {
	{ "chain", c_chain }, { "proxies", c_proxies }, { "chain_length", c_chain_length },
	{ "dns", c_dns },
};

static int one_chain(struct load *l, yaml_node_t *k, yaml_node_t *v, const char *path)
{
	struct sfy_config *c = l->c;
	const char *name = (const char *)k->data.scalar.value;
	struct sfy_chaindef *d = &c->chains[c->nchains];

	if (strlen(name) != k->data.scalar.length)
		return sfy_cfg_kerr(l, k, path, "NUL byte in a chain name");
	if (!sfy_chain_name_ok(name))
		return sfy_cfg_kerr(l, k, path, "bad chain name (1..%d of A-Z a-z 0-9 _ -, "
				    "and not direct or block)", SFY_CHAIN_NAME_MAX);
	for (size_t i = 0; i < c->nchains; i++)
		if (!strcmp(c->chains[i].name, name))
			return sfy_cfg_kerr(l, k, path, "duplicate chain name (first on line %u)",
					    c->chains[i].line);
	if (c->nchains == SFY_MAX_CHAINS)
		return sfy_cfg_kerr(l, k, path, "more than %d chains", SFY_MAX_CHAINS);
	memset(d, 0, sizeof *d);
	strcpy(d->name, name);
	d->chain = SFY_CHAIN_STRICT;
	d->dns = SFY_DNS_AUTO;
	d->first = (uint8_t)c->nchain_proxies;
	d->line = sfy_cfg_line(k);
	if (v->type == YAML_SEQUENCE_NODE) {
		if (chain_hops(l, v, path, d))
			return -1;
	} else if (v->type == YAML_MAPPING_NODE) {
		struct chain_ctx x = { .d = d };
		if (sfy_cfg_walk(l, v, path, chain_keys, SFY_ARRAY_LEN(chain_keys), &x))
			return -1;
		if (!x.proxies)
			return sfy_cfg_kerr(l, v, path, "missing proxies");
		if (x.chain_length && d->chain_length > d->n) {
			char kp[KEY_PATH_MAX + 16];
			snprintf(kp, sizeof kp, "%s.chain_length", path);
			return sfy_cfg_kerr(l, x.chain_length, kp, "%u is more than the %u proxies",
					    d->chain_length, d->n);
		}
	} else {
		return sfy_cfg_kerr(l, v, path, "expected a list of proxies or a mapping, got %s",
				    sfy_cfg_is_null(v) ? "nothing" : sfy_cfg_kind(v));
	}
	c->nchains++;
	return 0;
}

int sfy_cfg_k_chains(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	char kp[KEY_PATH_MAX];

	(void)arg;
	if (sfy_cfg_expect(l, v, path, YAML_MAPPING_NODE))
		return -1;
	for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(l->doc, pr->key);
		yaml_node_t *val = yaml_document_get_node(l->doc, pr->value);

		if (k->type != YAML_SCALAR_NODE || sfy_cfg_is_null(k))
			return sfy_cfg_kerr(l, k, path, "chain names must be words, got %s",
					    k->type == YAML_SCALAR_NODE ? "nothing" : sfy_cfg_kind(k));
		snprintf(kp, sizeof kp, "%s.%.40s", path, (const char *)k->data.scalar.value);
		if (one_chain(l, k, val, kp))
			return -1;
	}
	return 0;
}

/* --- rules: --------------------------------------------------------- */

struct rule_ctx {
	yaml_node_t *match, *via;
};

static int r_match(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	const char *s;

	((struct rule_ctx *)arg)->match = v;
	return sfy_cfg_scalar(l, v, path, &s);
}

static int r_via(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	const char *s;

	((struct rule_ctx *)arg)->via = v;
	return sfy_cfg_scalar(l, v, path, &s);
}

static const struct key_def rule_keys[] = { { "match", r_match }, { "via", r_via } };

static int rule_item(struct load *l, yaml_node_t *it, const char *ip, size_t i, void *arg)
{
	struct rule_ctx x = { 0 };
	struct sfy_rule r = { .origin = SFY_RO_FILE, .via = SFY_VIA_BLOCK };
	char name[SFY_RULE_NAME_MAX + 1], why[SFY_ERR_MAX], kp[KEY_PATH_MAX + 8];
	size_t nlen;

	(void)i, (void)arg;
	if (sfy_cfg_walk(l, it, ip, rule_keys, SFY_ARRAY_LEN(rule_keys), &x))
		return -1;
	if (!x.match)
		return sfy_cfg_kerr(l, it, ip, "missing match");
	if (!x.via)
		return sfy_cfg_kerr(l, it, ip, "missing via (a chain name, direct or block)");
	const char *s = (const char *)x.match->data.scalar.value;
	snprintf(kp, sizeof kp, "%s.match", ip);
	if (sfy_rule_parse_match(s, strlen(s), &r, name, &nlen, why, sizeof why))
		return sfy_cfg_kerr(l, x.match, kp, "%s", why);
	r.line = sfy_cfg_line(it);
	/* The via is resolved after the walk (it may name a later chain);
	 * block until then, so a half-loaded config never routes. */
	if (sfy_config_push_rule(l->c, &r, name, nlen, why, sizeof why))
		return sfy_cfg_kerr(l, it, ip, "%s", why);
	return 0;
}

int sfy_cfg_k_rules(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	(void)arg;
	l->rules = v;
	l->rules_first = l->c->nrules;
	return sfy_cfg_each(l, v, path, SFY_MAX_RULES, "rules", rule_item, NULL);
}

int sfy_cfg_k_default(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	const char *s;

	(void)arg;
	if (sfy_cfg_scalar(l, v, path, &s))
		return -1;
	l->default_via = v;
	return 0;
}

static int no_proxy_parse(const char *s)
{
	return !strcasecmp(s, "env") ? 1 : !strcasecmp(s, "off") ? 0 : -1;
}

int sfy_cfg_k_no_proxy(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	int m;

	(void)arg;
	if (sfy_cfg_enum_value(l, v, path, no_proxy_parse, "env, off", &m))
		return -1;
	l->c->no_proxy_env = m == 1;
	return 0;
}

/* --- after the walk ------------------------------------------------- */

static int resolve(struct load *l, yaml_node_t *v, const char *path, int *out)
{
	char why[SFY_ERR_MAX];
	const char *s = (const char *)v->data.scalar.value;

	if ((*out = sfy_config_via_parse(l->c, s)) < SFY_VIA_BLOCK) {
		sfy_rule_via_error(l->c, s, why, sizeof why);
		return sfy_cfg_kerr(l, v, path, "%s", why);
	}
	return 0;
}

int sfy_cfg_resolve_vias(struct load *l)
{
	char kp[KEY_PATH_MAX];
	int via;

	if (l->rules) {
		size_t n = (size_t)(l->rules->data.sequence.items.top - l->rules->data.sequence.items.start);
		for (size_t i = 0; i < n; i++) {
			yaml_node_t *it = yaml_document_get_node(l->doc, l->rules->data.sequence.items.start[i]);
			yaml_node_t *vn = NULL;
			for (yaml_node_pair_t *pr = it->data.mapping.pairs.start;
			     pr < it->data.mapping.pairs.top; pr++) {
				yaml_node_t *k = yaml_document_get_node(l->doc, pr->key);
				if (!strcmp((const char *)k->data.scalar.value, "via"))
					vn = yaml_document_get_node(l->doc, pr->value);
			}
			snprintf(kp, sizeof kp, "rules[%zu].via", i + 1);
			if (!vn || resolve(l, vn, kp, &via))
				return vn ? -1 : sfy_cfg_kerr(l, it, kp, "missing");
			l->c->rules[l->rules_first + i].via = (int16_t)via;
		}
	}
	if (l->default_via) {
		if (resolve(l, l->default_via, "default", &via))
			return -1;
		l->c->default_via = (int16_t)via;
		l->c->default_line = sfy_cfg_line(l->default_via);
	}
	return 0;
}
