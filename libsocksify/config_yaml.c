/* The YAML side of the configuration: the helpers every key handler uses
 * (typed scalars, key walking with unknown/duplicate detection, errors with
 * file, line and key) and the proxies: list in both its forms. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "config.h"
#include "config_yaml.h"
#include "sfy.h"

unsigned sfy_cfg_line(const yaml_node_t *n)
{
	return (unsigned)n->start_mark.line + 1;
}

int sfy_cfg_kerr(struct load *l, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
	char why[SFY_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	return sfy_errf(l->err, l->errcap, "%s:%u: %s: %s", l->name, sfy_cfg_line(n), path, why);
}

const char *sfy_cfg_kind(const yaml_node_t *n)
{
	return n->type == YAML_MAPPING_NODE ? "a mapping"
	     : n->type == YAML_SEQUENCE_NODE ? "a list" : "a value";
}

bool sfy_cfg_is_null(const yaml_node_t *n)
{
	const char *v = (const char *)n->data.scalar.value;

	return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
	    && (!*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null")
		|| !strcmp(v, "NULL"));
}

/* A non-empty scalar without embedded NUL bytes ("\0" in a quoted string). */
int sfy_cfg_scalar(struct load *l, yaml_node_t *n, const char *path, const char **out)
{
	if (n->type != YAML_SCALAR_NODE)
		return sfy_cfg_kerr(l, n, path, "expected a value, got %s", sfy_cfg_kind(n));
	if (sfy_cfg_is_null(n))
		return sfy_cfg_kerr(l, n, path, "missing value");
	if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
		return sfy_cfg_kerr(l, n, path, "NUL byte in value");
	*out = (const char *)n->data.scalar.value;
	return 0;
}

int sfy_cfg_expect(struct load *l, yaml_node_t *n, const char *path, yaml_node_type_t t)
{
	const yaml_node_t want_map = { .type = YAML_MAPPING_NODE };
	const yaml_node_t want_seq = { .type = YAML_SEQUENCE_NODE };

	if (n->type == t)
		return 0;
	return sfy_cfg_kerr(l, n, path, "expected %s, got %s",
		    sfy_cfg_kind(t == YAML_MAPPING_NODE ? &want_map : &want_seq),
		    sfy_cfg_is_null(n) ? "nothing" : sfy_cfg_kind(n));
}

/* Calls the handler of each key of map, in file order; unknown and
 * duplicate keys are errors. */
int sfy_cfg_walk(struct load *l, yaml_node_t *map, const char *prefix,
		const struct key_def *defs, size_t ndefs, void *arg)
{
	char path[KEY_PATH_MAX];

	if (sfy_cfg_expect(l, map, *prefix ? prefix : "(top level)", YAML_MAPPING_NODE))
		return -1;
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(l->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(l->doc, pr->value);
		const char *name;
		size_t i;

		if (k->type != YAML_SCALAR_NODE || sfy_cfg_is_null(k))
			return sfy_cfg_kerr(l, k, *prefix ? prefix : "(top level)", "keys must be words, got %s",
				    k->type == YAML_SCALAR_NODE ? "nothing" : sfy_cfg_kind(k));
		name = (const char *)k->data.scalar.value;
		snprintf(path, sizeof path, "%s%s%.40s", prefix, *prefix ? "." : "", name);
		/* "dns\0junk" must not pass for "dns". */
		if (strlen(name) != k->data.scalar.length)
			return sfy_cfg_kerr(l, k, path, "NUL byte in a key");
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pr; q++) {
			yaml_node_t *qk = yaml_document_get_node(l->doc, q->key);
			if (qk->type == YAML_SCALAR_NODE && !strcmp((const char *)qk->data.scalar.value, name))
				return sfy_cfg_kerr(l, k, path, "duplicate key (first on line %u)", sfy_cfg_line(qk));
		}
		for (i = 0; i < ndefs && strcmp(defs[i].name, name); i++)
			;
		if (i == ndefs)
			return sfy_cfg_kerr(l, k, path, "unknown key");
		if (defs[i].fn(l, v, path, arg))
			return -1;
	}
	return 0;
}

/* A scalar that must be one of a few words. */
int sfy_cfg_enum_value(struct load *l, yaml_node_t *v, const char *path, int (*parse)(const char *),
		      const char *choices, int *out)
{
	const char *s;

	if (sfy_cfg_scalar(l, v, path, &s))
		return -1;
	if ((*out = parse(s)) < 0)
		return sfy_cfg_kerr(l, v, path, "bad value \"%.40s\" (%s)", s, choices);
	return 0;
}

/* A scalar that must be a whole number 1..max; the error calls it what. */
int sfy_cfg_number(struct load *l, yaml_node_t *v, const char *path, const char *what,
		   unsigned long max, unsigned long *out)
{
	const char *s;

	if (sfy_cfg_scalar(l, v, path, &s))
		return -1;
	if (sfy_decimal(s, strlen(s), max, out) || *out < 1)
		return sfy_cfg_kerr(l, v, path, "bad %s \"%.20s\" (1..%lu)", what, s, max);
	return 0;
}

/* --- proxies -------------------------------------------------------- */

struct hop {
	struct sfy_proxy *p;
	yaml_node_t *url, *type, *host, *port, *user, *pass;
};

static int hop_url(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	struct hop *h = arg;
	const char *s;
	char why[SFY_ERR_MAX];

	if (sfy_cfg_scalar(l, v, path, &s))
		return -1;
	if (sfy_proxy_url_parse(s, h->p, why, sizeof why))
		return sfy_cfg_kerr(l, v, path, "%s", why);
	h->url = v;
	l->has_pass |= h->p->has_pass;
	return 0;
}

static int hop_type(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	struct hop *h = arg;
	const char *s;

	if (sfy_cfg_scalar(l, v, path, &s))
		return -1;
	if (!(h->p->proto = sfy_proto_from_name(s)))
		return sfy_cfg_kerr(l, v, path, "unknown type \"%.40s\" (socks4, socks4a, socks5, socks5h, http)", s);
	h->type = v;
	return 0;
}

static int hop_host(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	struct hop *h = arg;
	struct sfy_proxy t = { .proto = SFY_PROTO_SOCKS5, .port = 1 };
	char why[SFY_ERR_MAX];
	const char *s;
	size_t n;

	if (sfy_cfg_scalar(l, v, path, &s))
		return -1;
	n = strlen(s);
	if (n > 2 && s[0] == '[' && s[n - 1] == ']')
		s++, n -= 2;
	if (n > SFY_HOST_MAX)
		return sfy_cfg_kerr(l, v, path, "host longer than %d bytes", SFY_HOST_MAX);
	memcpy(t.host, s, n);
	t.host[n] = '\0';
	if (sfy_proxy_validate(&t, why, sizeof why))
		return sfy_cfg_kerr(l, v, path, "%s", why);
	memcpy(h->p->host, t.host, sizeof t.host);
	h->host = v;
	return 0;
}

static int hop_port(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	struct hop *h = arg;
	unsigned long port;

	if (sfy_cfg_number(l, v, path, "port", 65535, &port))
		return -1;
	h->p->port = (uint16_t)port;
	h->port = v;
	return 0;
}

static int cred(struct load *l, yaml_node_t *v, const char *path, char out[static SFY_CRED_MAX + 1])
{
	const char *s;

	if (sfy_cfg_scalar(l, v, path, &s))
		return -1;
	if (strlen(s) > SFY_CRED_MAX)
		return sfy_cfg_kerr(l, v, path, "longer than %d bytes", SFY_CRED_MAX);
	strcpy(out, s);
	return 0;
}

static int hop_user(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	struct hop *h = arg;

	h->user = v;
	h->p->has_user = true;
	return cred(l, v, path, h->p->user);
}

static int hop_pass(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	struct hop *h = arg;

	h->pass = v;
	h->p->has_pass = true;
	l->has_pass = true;
	return cred(l, v, path, h->p->pass);
}

static const struct key_def hop_keys[] = {
	{ "url", hop_url }, { "type", hop_type }, { "host", hop_host },
	{ "port", hop_port }, { "username", hop_user }, { "password", hop_pass },
};

static int hop_long(struct load *l, yaml_node_t *map, const char *path, struct sfy_proxy *p)
{
	struct hop h = { .p = p };
	char why[SFY_ERR_MAX];

	memset(p, 0, sizeof *p);
	if (sfy_cfg_walk(l, map, path, hop_keys, SFY_ARRAY_LEN(hop_keys), &h))
		return -1;
	if (h.url) {
		if (h.type || h.host || h.port || h.user || h.pass)
			return sfy_cfg_kerr(l, map, path, "give either url or type/host/port/username/password, not both");
		return 0;
	}
	if (!h.type)
		return sfy_cfg_kerr(l, map, path, "missing type (or url)");
	if (!h.host)
		return sfy_cfg_kerr(l, map, path, "missing host");
	if (!h.port)
		p->port = sfy_proto_default_port(p->proto);
	if (h.pass && (p->proto == SFY_PROTO_SOCKS4 || p->proto == SFY_PROTO_SOCKS4A)) {
		char kp[KEY_PATH_MAX + sizeof ".username"];
		snprintf(kp, sizeof kp, "%s.password", path);
		return sfy_cfg_kerr(l, h.pass, kp, "%s has no password, only a user id", sfy_proto_name(p->proto));
	}
	if (h.user && !p->user[0]) {
		char kp[KEY_PATH_MAX + sizeof ".username"];
		snprintf(kp, sizeof kp, "%s.username", path);
		return sfy_cfg_kerr(l, h.user, kp, "empty user name");
	}
	if (sfy_proxy_validate(p, why, sizeof why))
		return sfy_cfg_kerr(l, map, path, "%s", why);
	return 0;
}

int sfy_cfg_each(struct load *l, yaml_node_t *v, const char *path, size_t max,
		 const char *what, item_fn *item, void *arg)
{
	char ip[KEY_PATH_MAX];

	if (sfy_cfg_expect(l, v, path, YAML_SEQUENCE_NODE))
		return -1;
	size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *it = yaml_document_get_node(l->doc, v->data.sequence.items.start[i]);
		snprintf(ip, sizeof ip, "%s[%zu]", path, i + 1);
		if (i == max)
			return sfy_cfg_kerr(l, it, ip, "more than %zu %s", max, what);
		if (item(l, it, ip, i, arg))
			return -1;
	}
	return 0;
}

int sfy_cfg_proxy(struct load *l, yaml_node_t *it, const char *ip, struct sfy_proxy *p)
{
	char why[SFY_ERR_MAX];
	const char *s;

	if (it->type == YAML_MAPPING_NODE)
		return hop_long(l, it, ip, p);
	if (sfy_cfg_scalar(l, it, ip, &s))
		return -1;
	if (sfy_proxy_url_parse(s, p, why, sizeof why))
		return sfy_cfg_kerr(l, it, ip, "%s", why);
	l->has_pass |= p->has_pass;
	return 0;
}

static int proxy_item(struct load *l, yaml_node_t *it, const char *ip, size_t i, void *arg)
{
	(void)arg;
	if (sfy_cfg_proxy(l, it, ip, &l->c->proxies[i]))
		return -1;
	l->c->proxy_line[i] = sfy_cfg_line(it);
	l->c->nproxies = i + 1;
	return 0;
}

int sfy_cfg_k_proxies(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	(void)arg;
	l->c->nproxies = 0;
	if (sfy_cfg_each(l, v, path, SFY_MAX_PROXIES, "proxies", proxy_item, NULL))
		return -1;
	if (!l->c->nproxies)
		return sfy_cfg_kerr(l, v, path, "empty list (at least one proxy is needed)");
	snprintf(l->c->proxies_file, sizeof l->c->proxies_file, "%s", l->name);
	l->proxies = v;
	return 0;
}
