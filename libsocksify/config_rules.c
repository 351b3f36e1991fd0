/* Named chains and routing rules in the configuration: the MATCH grammar
 * (INTERFACE.md), the MATCH=VIA spelling of -r and SOCKSIFY_RULES, the
 * NO_PROXY convention, chain names, and the rule storage on the heap.
 *
 *   MATCH   = "*" [PORTS]
 *           | ["*."] NAME ["."] [PORTS]          host glob
 *           | IPV4 ["/" LEN] [PORTS]
 *           | "[" IPV6 "]" ["/" LEN] [PORTS]
 *           | IPV6 ["/" LEN]                     unbracketed: no port
 *   PORTS   = ":" PORT | ":" PORT "-" PORT      1..65535, LO <= HI
 *
 * The parser is pure (no allocation, no state) so that fuzz harnesses and
 * the launcher can call it on any bytes. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bypass.h"
#include "config.h"
#include "config_rules.h"
#include "sfy.h"

/* RFC 1035 2.3.4: a label is at most 63 bytes. */
#define LABEL_MAX 63

void sfy_config_free(struct sfy_config *c)
{
	free(c->rules);
	free(c->rule_names);
	c->rules = NULL;
	c->rule_names = NULL;
	c->nrules = c->rule_names_len = 0;
}

/* --- names ---------------------------------------------------------- */

static bool name_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

bool sfy_rule_name_ok(const char *s, size_t n)
{
	size_t label = 0;

	if (n < 1 || n > SFY_RULE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (!label)
				return false;
			label = 0;
		} else if (!name_char((unsigned char)s[i]) || ++label > LABEL_MAX) {
			return false;
		}
	}
	return label > 0;
}

bool sfy_chain_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > SFY_CHAIN_NAME_MAX || !strcasecmp(s, "direct") || !strcasecmp(s, "block"))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (!name_char(ch) && !(ch >= 'A' && ch <= 'Z'))
			return false;
	}
	return true;
}

bool sfy_rule_name_special(const char *s, size_t n)
{
	static const char *const tlds[] = { "onion", "exit", "i2p" };

	for (size_t i = 0; i < SFY_ARRAY_LEN(tlds); i++) {
		size_t t = strlen(tlds[i]);
		if ((n == t || (n > t && s[n - t - 1] == '.')) && !memcmp(s + n - t, tlds[i], t))
			return true;
	}
	return false;
}

/* --- the MATCH parser ----------------------------------------------- */

/* "N" or "LO-HI", ports 1..65535. */
static int parse_ports(const char *p, struct sfy_rule *r, const char *all, char *err, size_t errcap)
{
	const char *dash = strchr(p, '-');
	size_t n1 = dash ? (size_t)(dash - p) : strlen(p);
	unsigned long lo, hi;

	if (sfy_decimal(p, n1, 65535, &lo) ||
	    (dash && sfy_decimal(dash + 1, strlen(dash + 1), 65535, &hi)))
		return sfy_errf(err, errcap, "bad port in \"%s\" (PORT or LO-HI, 1..65535)", all);
	if (!dash)
		hi = lo;
	if (lo == 0)
		return sfy_errf(err, errcap, "bad port in \"%s\" (port 0 is not a port: 1..65535)", all);
	if (lo > hi)
		return sfy_errf(err, errcap, "bad port range in \"%s\" (LO-HI with LO <= HI)", all);
	r->has_port = true;
	r->port_lo = (uint16_t)lo;
	r->port_hi = (uint16_t)hi;
	return 0;
}

/* An address with an optional "/LEN" (addr and prefix split already). */
static int parse_cidr(const char *addr, const char *prefix, struct sfy_rule *r, const char *all,
		      char *err, size_t errcap)
{
	char t[SFY_MATCH_TEXT_MAX + 1], why[SFY_ERR_MAX];
	int n = prefix ? snprintf(t, sizeof t, "%s/%s", addr, prefix) : snprintf(t, sizeof t, "%s", addr);

	if (n < 0 || (size_t)n >= sizeof t)
		return sfy_errf(err, errcap, "bad address in \"%s\"", all);
	/* sfy_cidr_parse knows prefixes, host bits and ::ffff:a.b.c.d; the
	 * port was split off here, so it never sees one. */
	if (sfy_cidr_parse(t, &r->cidr, why, sizeof why))
		return sfy_errf(err, errcap, "%s", why);
	r->cidr.port = 0;
	r->kind = SFY_RM_CIDR;
	return 0;
}

/* A host glob: "*.NAME" or "NAME", one trailing dot ignored. */
static int parse_name(const char *h, struct sfy_rule *r, char name[static SFY_RULE_NAME_MAX + 1],
		      size_t *name_len, const char *all, char *err, size_t errcap)
{
	size_t n = strlen(h);

	r->kind = SFY_RM_NAME;
	if (h[0] == '*' && h[1] == '.') {
		r->kind = SFY_RM_SUFFIX;
		h += 2;
		n -= 2;
	}
	if (strchr(h, '*'))
		return sfy_errf(err, errcap, "bad match \"%s\": '*' only alone or as a leading \"*.\"", all);
	if (n && h[n - 1] == '.')
		n--;
	if (n == 0 || n > SFY_RULE_NAME_MAX)
		return sfy_errf(err, errcap, "bad host name in \"%s\" (1..%d bytes)", all, SFY_RULE_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)h[i];
		name[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	}
	name[n] = '\0';
	if (!sfy_rule_name_ok(name, n))
		return sfy_errf(err, errcap, "bad host name in \"%s\" (labels of 1..63 letters, "
				"digits, '-' or '_', separated by dots)", all);
	/* "10.1.2" or "1.2.3.4.5" is a typo for an address, not a name: no
	 * top-level domain is all digits. */
	const char *last = strrchr(name, '.');
	last = last ? last + 1 : name;
	if (last[strspn(last, "0123456789")] == '\0')
		return sfy_errf(err, errcap, "bad address in \"%s\"", all);
	*name_len = n;
	return 0;
}

int sfy_rule_parse_match(const char *s, size_t len, struct sfy_rule *r,
			 char name[static SFY_RULE_NAME_MAX + 1], size_t *name_len,
			 char *err, size_t errcap)
{
	char buf[SFY_MATCH_TEXT_MAX + 1], all[48];
	char *host = buf, *prefix = NULL, *ports = NULL;

	r->kind = SFY_RM_ANY;
	r->has_port = false;
	r->port_lo = 0;
	r->port_hi = 65535;
	memset(&r->cidr, 0, sizeof r->cidr);
	*name_len = 0;
	name[0] = '\0';
	if (len == 0)
		return sfy_errf(err, errcap, "empty match");
	if (len > SFY_MATCH_TEXT_MAX)
		return sfy_errf(err, errcap, "match longer than %d bytes", SFY_MATCH_TEXT_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] == 0x7f)
			return sfy_errf(err, errcap, "blank or control byte in match");
	memcpy(buf, s, len);
	buf[len] = '\0';
	/* Messages quote the text, cut to keep them one short line. */
	snprintf(all, sizeof all, "%.*s%s", (int)(len < 40 ? len : 40), s, len > 40 ? "..." : "");

	if (buf[0] == '[') {
		int sr = sfy_split_bracketed(buf, &host, &prefix, &ports);
		if (sr == -1)
			return sfy_errf(err, errcap, "unterminated '[' in \"%s\"", all);
		if (sr < 0)
			return sfy_errf(err, errcap, "unexpected text after ']' in \"%s\"", all);
		struct in6_addr a6;
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return sfy_errf(err, errcap, "brackets are for IPv6 addresses in \"%s\"", all);
	} else if ((prefix = strchr(buf, '/'))) {
		*prefix++ = '\0';
		if ((ports = strchr(prefix, ':')))
			*ports++ = '\0';
		if (ports && strchr(host, ':'))
			return sfy_errf(err, errcap, "an IPv6 network with a port needs brackets: "
					"\"[%s]/%s:%s\"", host, prefix, ports);
	} else if (strchr(buf, ':') == strrchr(buf, ':')) {
		/* Zero or one ':': a host with an optional port. Two or more:
		 * an unbracketed IPv6 address, which cannot carry one. */
		if ((ports = strchr(buf, ':')))
			*ports++ = '\0';
	}
	if (ports && parse_ports(ports, r, all, err, errcap))
		return -1;
	if (!strcmp(host, "*")) {
		if (prefix)
			return sfy_errf(err, errcap, "bad match \"%s\": '*' takes no prefix length", all);
		return 0;
	}
	struct in6_addr a;
	if (prefix || buf[0] == '[' || inet_pton(AF_INET, host, &a) == 1 || strchr(host, ':'))
		return parse_cidr(host, prefix, r, all, err, errcap);
	return parse_name(host, r, name, name_len, all, err, errcap);
}

/* --- storage -------------------------------------------------------- */

int sfy_config_push_rule(struct sfy_config *c, const struct sfy_rule *r, const char *name,
			 size_t name_len, char *err, size_t errcap)
{
	struct sfy_rule nr = *r;
	bool named = r->kind == SFY_RM_NAME || r->kind == SFY_RM_SUFFIX;

	if (c->nrules >= SFY_MAX_RULES)
		return sfy_errf(err, errcap, "more than %d rules", SFY_MAX_RULES);
	/* Capacities double from 16 rules / 256 name bytes: a power of two
	 * is the capacity whenever the count reaches one. */
	if (c->nrules == 0 || (c->nrules >= 16 && !(c->nrules & (c->nrules - 1)))) {
		size_t cap = c->nrules ? 2 * c->nrules : 16;
		struct sfy_rule *nr2 = realloc(c->rules, cap * sizeof *nr2);
		if (!nr2)
			return sfy_errf(err, errcap, "out of memory for the rules");
		c->rules = nr2;
	}
	nr.name_off = 0;
	nr.name_len = 0;
	if (named) {
		size_t need = c->rule_names_len + name_len + 1, cap = 256;
		while (cap < c->rule_names_len)
			cap *= 2;
		if (!c->rule_names || need > cap) {
			while (cap < need)
				cap *= 2;
			char *p = realloc(c->rule_names, cap);
			if (!p)
				return sfy_errf(err, errcap, "out of memory for the rules");
			c->rule_names = p;
		}
		memcpy(c->rule_names + c->rule_names_len, name, name_len);
		c->rule_names[c->rule_names_len + name_len] = '\0';
		nr.name_off = (uint32_t)c->rule_names_len;
		nr.name_len = (uint16_t)name_len;
		c->rule_names_len = need;
	}
	c->rules[c->nrules++] = nr;
	return 0;
}

/* --- VIA ------------------------------------------------------------ */

int sfy_config_via_parse(const struct sfy_config *c, const char *s)
{
	if (!strcasecmp(s, "direct"))
		return SFY_VIA_DIRECT;
	if (!strcasecmp(s, "block"))
		return SFY_VIA_BLOCK;
	for (size_t i = 0; i < c->nchains; i++)
		if (!strcmp(c->chains[i].name, s))
			return (int)i;
	return -4;
}

const char *sfy_config_via_name(const struct sfy_config *c, int via)
{
	if (via >= 0 && (size_t)via < c->nchains)
		return c->chains[via].name;
	return via == SFY_VIA_DIRECT ? "direct" : via == SFY_VIA_BLOCK ? "block" : "proxies";
}

void sfy_rule_format(const struct sfy_config *c, const struct sfy_rule *r, char *buf, size_t cap)
{
	char m[SFY_MATCH_TEXT_MAX + 1], a[INET6_ADDRSTRLEN];
	const char *name = c->rule_names && r->name_off < c->rule_names_len ? c->rule_names + r->name_off : "";
	int nl = r->name_len;

	switch (r->kind) {
	case SFY_RM_NAME:
		snprintf(m, sizeof m, "%.*s", nl, name);
		break;
	case SFY_RM_SUFFIX:
		snprintf(m, sizeof m, "*.%.*s", nl, name);
		break;
	case SFY_RM_CIDR:
		inet_ntop(r->cidr.family, r->cidr.addr, a, sizeof a);
		snprintf(m, sizeof m, r->cidr.family == AF_INET6 && r->has_port ? "[%s]/%u" : "%s/%u",
			 a, r->cidr.prefix);
		break;
	default:
		snprintf(m, sizeof m, "*");
	}
	size_t o = strlen(m);
	if (r->has_port && r->port_lo == r->port_hi)
		snprintf(m + o, sizeof m - o, ":%u", r->port_lo);
	else if (r->has_port)
		snprintf(m + o, sizeof m - o, ":%u-%u", r->port_lo, r->port_hi);
	snprintf(buf, cap, "%s=%s", m, sfy_config_via_name(c, r->via));
}

/* --- -r and SOCKSIFY_RULES ------------------------------------------- */

int sfy_rule_via_error(const struct sfy_config *c, const char *v, char *err, size_t errcap)
{
	char names[SFY_MAX_CHAINS * (SFY_CHAIN_NAME_MAX + 2) + 1] = "";
	size_t o = 0;

	for (size_t i = 0; i < c->nchains; i++)
		o += (size_t)snprintf(names + o, sizeof names - o, "%s, ", c->chains[i].name);
	return sfy_errf(err, errcap, "unknown chain \"%.40s\" (%sdirect or block)", v, names);
}

int sfy_config_add_rule_text(struct sfy_config *c, const char *text, enum sfy_rule_origin origin,
			     uint32_t line, char *err, size_t errcap)
{
	const char *eq = strrchr(text, '=');
	char name[SFY_RULE_NAME_MAX + 1];
	size_t nlen;
	struct sfy_rule r = { .origin = (uint8_t)origin, .line = line };
	int via;

	if (!eq)
		return sfy_errf(err, errcap, "expected MATCH=VIA (VIA a chain name, direct or block)");
	if (sfy_rule_parse_match(text, (size_t)(eq - text), &r, name, &nlen, err, errcap))
		return -1;
	if ((via = sfy_config_via_parse(c, eq + 1)) < SFY_VIA_BLOCK)
		return sfy_rule_via_error(c, eq + 1, err, errcap);
	r.via = (int16_t)via;
	return sfy_config_push_rule(c, &r, name, nlen, err, errcap);
}

/* A variable's list (SOCKSIFY_RULES, NO_PROXY): entries separated by
 * blanks or commas, each at most max (<= SFY_RULE_TEXT_MAX) bytes, handed
 * to entry with its number (1 for the first); errors name var and the
 * entry. */
typedef int entry_fn(struct sfy_config *c, const char *e, uint32_t n, char *err, size_t errcap);

static int each_entry(struct sfy_config *c, const char *var, const char *list, size_t max,
		      entry_fn *entry, char *err, size_t errcap)
{
	static const char seps[] = " \t\n,";
	char t[SFY_RULE_TEXT_MAX + 1], why[SFY_ERR_MAX];
	uint32_t n = 0;

	for (const char *s = list + strspn(list, seps); *s; s += strspn(s, seps)) {
		size_t len = strcspn(s, seps);
		n++;
		if (len > max)
			return sfy_errf(err, errcap, "%s entry %u (%.40s...): longer than %zu bytes",
					var, n, s, max);
		memcpy(t, s, len);
		t[len] = '\0';
		if (entry(c, t, n, why, sizeof why))
			return sfy_errf(err, errcap, "%s entry %u (%s): %s", var, n, t, why);
		s += len;
	}
	return 0;
}

static int cli_rule(struct sfy_config *c, const char *e, uint32_t n, char *err, size_t errcap)
{
	return sfy_config_add_rule_text(c, e, SFY_RO_CLI, n, err, errcap);
}

int sfy_config_set_rules(struct sfy_config *c, const char *list, char *err, size_t errcap)
{
	return each_entry(c, "SOCKSIFY_RULES", list, SFY_RULE_TEXT_MAX, cli_rule, err, errcap);
}

/* --- NO_PROXY ------------------------------------------------------- */

const char *sfy_no_proxy_var(void)
{
	const char *v = getenv("no_proxy");
	if (v && *v)
		return "no_proxy";
	v = getenv("NO_PROXY");
	return v && *v ? "NO_PROXY" : NULL;
}

/* One NO_PROXY entry: curl's and wget's reading, where "example.com" and
 * ".example.com" both mean the domain and every name under it (Go's
 * "*.example.com" too). */
static int no_proxy_entry(struct sfy_config *c, const char *e, uint32_t n, char *err, size_t errcap)
{
	char name[SFY_RULE_NAME_MAX + 1];
	size_t nlen;
	struct sfy_rule r = { .origin = SFY_RO_NOPROXY, .via = SFY_VIA_DIRECT, .line = n };

	if (e[0] == '.')
		e++;
	else if (e[0] == '*' && e[1] == '.')
		e += 2;
	if (sfy_rule_parse_match(e, strlen(e), &r, name, &nlen, err, errcap))
		return -1;
	if (r.kind != SFY_RM_NAME)
		return sfy_config_push_rule(c, &r, name, nlen, err, errcap);
	if (sfy_config_push_rule(c, &r, name, nlen, err, errcap))
		return -1;
	r.kind = SFY_RM_SUFFIX;
	return sfy_config_push_rule(c, &r, name, nlen, err, errcap);
}

int sfy_config_add_no_proxy(struct sfy_config *c, const char *var, const char *list,
			    char *err, size_t errcap)
{
	return each_entry(c, var, list, SFY_MATCH_TEXT_MAX, no_proxy_entry, err, errcap);
}
