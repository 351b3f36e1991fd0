/* The configuration from the environment: SOCKSIFY_* variables, the
 * config search order of INTERFACE.md, and the cross-field checks that
 * finish a configuration. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "addr.h"
#include "config.h"
#include "config_rules.h"
#include "fakedns.h"
#include "sfy.h"

/* One URL in SOCKSIFY_PROXY: scheme, fully percent-encoded user and password
 * (3 x 255 each), a 255-byte host, port and separators fit in 2 KiB. */
#define URL_TEXT_MAX 2048

/* --- environment ---------------------------------------------------- */

int sfy_config_set_proxies(struct sfy_config *c, const char *list, char *err, size_t errcap)
{
	static const char seps[] = " \t\n,";
	char url[URL_TEXT_MAX + 1], why[SFY_ERR_MAX];
	size_t n = 0;

	for (const char *s = list + strspn(list, seps); *s; s += strspn(s, seps)) {
		size_t len = strcspn(s, seps);
		if (n == SFY_MAX_PROXIES)
			return sfy_errf(err, errcap, "more than %d proxies", SFY_MAX_PROXIES);
		if (len > URL_TEXT_MAX)
			return sfy_errf(err, errcap, "proxy %zu: URL too long", n + 1);
		memcpy(url, s, len);
		url[len] = '\0';
		if (sfy_proxy_url_parse(url, &c->proxies[n], why, sizeof why))
			return sfy_errf(err, errcap, "proxy %zu: %s", n + 1, why);
		n++;
		s += len;
	}
	if (!n)
		return sfy_errf(err, errcap, "no proxy URL given");
	c->nproxies = n;
	c->proxies_file[0] = '\0';
	memset(c->proxy_line, 0, sizeof c->proxy_line);
	return 0;
}

/* snprintf for messages that may be cut (a long path): one line, at
 * most cap bytes, no warning about the cut. */
__attribute__((format(printf, 3, 4)))
static void text(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
}

/* One chain as finish() checks it: the top-level proxies or a named one. */
struct chain_view {
	const struct sfy_proxy *p;
	const unsigned *line;
	size_t n;
	enum sfy_chain_mode mode;
	unsigned chain_length;
	const char *file;       /* where lines count, "" for SOCKSIFY_PROXY */
	const char *key;        /* "proxies" or "chains.NAME" */
	bool list_form;         /* chains.NAME[i] rather than .proxies[i] */
};

/* Can proxy j come right after proxy i in some chain this mode builds? */
static bool may_follow(const struct chain_view *v, size_t i, size_t j)
{
	size_t n = v->n;
	switch (v->mode) {
	case SFY_CHAIN_STRICT:
		return j == i + 1;
	case SFY_CHAIN_DYNAMIC:         /* dead hops in between are skipped */
		return j > i;
	case SFY_CHAIN_ROUND_ROBIN:
		return v->chain_length > 1 && j == (i + 1) % n;
	case SFY_CHAIN_RANDOM:
		return v->chain_length > 1 && j != i;
	}
	return false;
}

/* A socks4 hop can only be asked for an IPv4 address. With remote DNS a
 * following hop given by name would have to be resolved here, leaking the
 * inner proxy's name to the local resolver: refused. (With local DNS the
 * user chose this machine's resolver, and the chain resolves it.) */
static int socks4_names(const struct chain_view *v, char *err, size_t errcap)
{
	for (size_t i = 0; i < v->n; i++) {
		if (v->p[i].proto != SFY_PROTO_SOCKS4)
			continue;
		for (size_t j = 0; j < v->n; j++) {
			struct sfy_addr a;
			if (!may_follow(v, i, j) ||
			    sfy_addr_set_host(&a, v->p[j].host, v->p[j].port) ||
			    a.type != SFY_ATYP_DOMAIN)
				continue;
			char msg[SFY_ERR_MAX];
			text(msg, sizeof msg, "socks4 cannot pass the name of proxy %zu (%s) on "
				 "with remote DNS: use socks4a, give %s as an IP address, or "
				 "dns: local", j + 1, v->p[j].host, v->p[j].host);
			if (v->line[i])
				return sfy_errf(err, errcap, "%s:%u: %s%s%zu]: %s", v->file, v->line[i],
						v->key, v->list_form ? "[" : ".proxies[", i + 1, msg);
			return sfy_errf(err, errcap, "SOCKSIFY_PROXY: proxy %zu: %s", i + 1, msg);
		}
	}
	return 0;
}

/* Does network r (its family, address and prefix) cover any address of
 * the IPv4 fake range (or of its IPv6 twin fd73:6f63:6b73::/96)? Two
 * prefixes overlap exactly when the shorter one contains the other's
 * network. */
static bool fake_overlap(const struct sfy_config *c, const struct sfy_cidr *r)
{
	static const uint8_t six[12] = SFY_FAKEDNS_V6_PREFIX;
	uint32_t net;
	unsigned plen = r->prefix;

	if (r->family == AF_INET6) {
		if (plen < 96)
			return !memcmp(r->addr, six, plen / 8) &&
			       (plen % 8 == 0 || !((r->addr[plen / 8] ^ six[plen / 8]) >>
						   (8 - plen % 8)));
		if (memcmp(r->addr, six, 12))
			return false;
		plen -= 96;
		memcpy(&net, r->addr + 12, 4);
	} else {
		memcpy(&net, r->addr, 4);
	}
	unsigned shorter = plen < c->fake_prefix ? plen : c->fake_prefix;
	uint32_t mask = shorter ? ~0u << (32 - shorter) : 0;
	return ((ntohl(net) ^ c->fake_net) & mask) == 0;
}

bool sfy_config_multihop(const struct sfy_config *c)
{
	if (c->chain == SFY_CHAIN_RANDOM || c->chain == SFY_CHAIN_ROUND_ROBIN)
		return c->chain_length >= 2;
	return c->nproxies >= 2;
}

static const char *source_name(const struct sfy_config *c)
{
	return c->source[0] ? c->source : "configuration";
}

/* Where rule k is written, for a message: "FILE:LINE: rules[3]",
 * "SOCKSIFY_RULES entry 2 (TEXT)", "NO_PROXY entry 1 (TEXT)". The launcher
 * turns the SOCKSIFY_RULES form of its own -r rules into "-r 'TEXT'". */
static void rule_where(const struct sfy_config *c, size_t k, const char *np_var, char *buf, size_t cap)
{
	const struct sfy_rule *r = &c->rules[k];
	char t[SFY_RULE_TEXT_MAX + 1];
	size_t nfile = 0;

	sfy_rule_format(c, r, t, sizeof t);
	switch (r->origin) {
	case SFY_RO_FILE:
		for (size_t i = 0; i <= k; i++)
			nfile += c->rules[i].origin == SFY_RO_FILE;
		text(buf, cap, "%s:%u: rules[%zu]", source_name(c), r->line, nfile);
		break;
	case SFY_RO_NOPROXY:
		text(buf, cap, "%s entry %u (%s)", np_var ? np_var : "NO_PROXY", r->line, t);
		break;
	default:
		text(buf, cap, "SOCKSIFY_RULES entry %u (%s)", r->line, t);
	}
}

/* Does any connection reach rule b past an earlier catch-all rule a
 * ("*" on every port)? A direct "*" lets .onion/.exit/.i2p names past,
 * and in remote-DNS mode port 53 (route.h): rules that can match those
 * still match. */
static bool escapes(const struct sfy_config *c, const struct sfy_rule *a, const struct sfy_rule *b,
		    bool remote)
{
	if (a->via != SFY_VIA_DIRECT)
		return false;
	if (remote && b->port_lo <= 53 && b->port_hi >= 53)
		return true;
	if (b->kind == SFY_RM_ANY)
		return true;
	if (b->kind == SFY_RM_NAME || b->kind == SFY_RM_SUFFIX)
		return sfy_rule_name_special(c->rule_names + b->name_off, b->name_len) ||
		       (b->kind == SFY_RM_SUFFIX && b->name_len == 0);
	return false;
}

/* Appends one line to c->warnings (cut when full). */
static void add_warning(struct sfy_config *c, const char *line)
{
	size_t o = strlen(c->warnings);
	text(c->warnings + o, sizeof c->warnings - o, "%s\n", line);
}

/* The rules in the effective order (CLI, NO_PROXY, bypass, file): a rule
 * after a catch-all "*" of its own origin never matches, an error; a
 * catch-all of the command line or NO_PROXY in front of the file's rules
 * is what the user asked for there: a warning. */
static int shadows(struct sfy_config *c, bool remote, const char *np_var, char *err, size_t errcap)
{
	static const uint8_t order[] = { SFY_RO_CLI, SFY_RO_NOPROXY, SFY_RO_FILE };
	const struct sfy_rule *all = NULL;
	size_t all_k = 0, later = 0;
	char w[SFY_ERR_MAX], w2[SFY_ERR_MAX];

	for (size_t o = 0; o < sizeof order; o++) {
		for (size_t k = 0; k < c->nrules; k++) {
			const struct sfy_rule *r = &c->rules[k];
			if (r->origin != order[o])
				continue;
			if (all && all->origin == r->origin && r->origin != SFY_RO_NOPROXY &&
			    !escapes(c, all, r, remote)) {
				rule_where(c, k, np_var, w, sizeof w);
				rule_where(c, all_k, np_var, w2, sizeof w2);
				if (r->origin == SFY_RO_FILE)
					return sfy_errf(err, errcap, "%s.match: never matches: rule at "
							"line %u matches everything first", w,
							all->line);
				return sfy_errf(err, errcap, "%s: never matches: %s matches "
						"everything first", w, w2);
			}
			if (all && all->origin != r->origin && !escapes(c, all, r, remote))
				later++;
			if (!all && r->kind == SFY_RM_ANY && !r->has_port) {
				all = r;
				all_k = k;
			}
		}
		if (o == 1 && all && all->origin != SFY_RO_FILE)
			later += c->nbypass;
	}
	if (all && all->origin == SFY_RO_CLI && later) {
		rule_where(c, all_k, np_var, w2, sizeof w2);
		text(w, sizeof w, "%s matches everything first: the %zu rule%s after it "
		     "(NO_PROXY, bypass:, rules:) never match%s", w2, later, later == 1 ? "" : "s",
		     later == 1 ? "es" : "");
		add_warning(c, w);
	}
	return 0;
}

/* Checks of each rule against the rest of the configuration. */
static int rules_check(struct sfy_config *c, bool remote, const char *np_var, char *err, size_t errcap)
{
	char w[SFY_ERR_MAX];

	for (size_t k = 0; k < c->nrules; k++) {
		const struct sfy_rule *r = &c->rules[k];
		if (r->via != SFY_VIA_DIRECT)
			continue;
		/* Such names exist only inside Tor and I2P: sent direct they
		 * would go to the local resolver and out. */
		if ((r->kind == SFY_RM_NAME || r->kind == SFY_RM_SUFFIX) &&
		    sfy_rule_name_special(c->rule_names + r->name_off, r->name_len)) {
			rule_where(c, k, np_var, w, sizeof w);
			return sfy_errf(err, errcap, "%s%s: .onion, .exit and .i2p names cannot go "
					"direct, only through a chain", w,
					r->origin == SFY_RO_FILE ? ".via" : "");
		}
		/* A real address inside fake_ip_range cannot be told from a
		 * fake one: a direct rule for it would send a name's fake
		 * address out as itself, the name lost. (IPv6 rules may cover
		 * the fake twin fd73:6f63:6b73::/96 -- "[fd00::]/8" is a common
		 * LAN rule -- since only IPv4 fake addresses are matched by
		 * address at all.) */
		if (remote && r->kind == SFY_RM_CIDR && r->cidr.family == AF_INET &&
		    fake_overlap(c, &r->cidr)) {
			rule_where(c, k, np_var, w, sizeof w);
			return sfy_errf(err, errcap, "%s%s: direct network overlaps fake_ip_range "
					"%u.%u.%u.%u/%u: pick a range no direct rule covers", w,
					r->origin == SFY_RO_FILE ? ".match" : "",
					c->fake_net >> 24, c->fake_net >> 16 & 255,
					c->fake_net >> 8 & 255, c->fake_net & 255, c->fake_prefix);
		}
	}
	for (size_t i = 0; remote && i < c->nbypass; i++)
		if (fake_overlap(c, &c->bypass[i]))
			return sfy_errf(err, errcap, "%s: bypass rule %zu overlaps fake_ip_range "
					"%u.%u.%u.%u/%u: pick a range no rule covers",
					source_name(c), i + 1,
					c->fake_net >> 24, c->fake_net >> 16 & 255,
					c->fake_net >> 8 & 255, c->fake_net & 255, c->fake_prefix);
	return shadows(c, remote, np_var, err, errcap);
}

/* dns: proxy sends RESOLVE / RESOLVE_PTR, SOCKS5 commands, to the last
 * hop: every hop that can end up last must be SOCKS5 (strict, dynamic:
 * the last one -- a dynamic chain whose last hop is down fails the lookup
 * rather than ask another (chain.c: may_skip); random, round_robin: every one). file NULL:
 * the hops came from SOCKSIFY_PROXY / -x. */
static int proxy_mode_hops(const struct sfy_proxy *p, const unsigned *line, size_t n,
			   enum sfy_chain_mode mode, const char *key, const char *file, char *err,
			   size_t errcap)
{
	size_t i = mode == SFY_CHAIN_RANDOM || mode == SFY_CHAIN_ROUND_ROBIN ? 0 : n - 1;
	for (; n && i < n; i++) {
		if (p[i].proto == SFY_PROTO_SOCKS5 || p[i].proto == SFY_PROTO_SOCKS5H)
			continue;
		char hop[600];
		sfy_proxy_format(&p[i], hop, sizeof(hop));
		if (file && line[i])
			return sfy_errf(err, errcap, "%s:%u: %s: dns: proxy needs a socks5 last hop "
					"(it asks it with RESOLVE), not %s", file, line[i], key, hop);
		return sfy_errf(err, errcap, "%s: dns: proxy needs a socks5 last hop (it asks it "
				"with RESOLVE), not %s", key, hop);
	}
	return 0;
}

static enum sfy_dns_mode by_last_hop(const struct sfy_proxy *last)
{
	return sfy_proto_remote_dns(last->proto) ? SFY_DNS_REMOTE : SFY_DNS_LOCAL;
}

static int chains_finish(struct sfy_config *c, enum sfy_dns_mode global, char *err, size_t errcap)
{
	char key[SFY_CHAIN_NAME_MAX + 16];

	for (size_t i = 0; i < c->nchains; i++) {
		struct sfy_chaindef *d = &c->chains[i];
		if (!d->n || (size_t)d->first + d->n > c->nchain_proxies)
			return sfy_errf(err, errcap, "%s:%u: chains.%s: empty chain", source_name(c),
					d->line, d->name);
		if (!d->chain_length && (d->chain == SFY_CHAIN_RANDOM || d->chain == SFY_CHAIN_ROUND_ROBIN))
			d->chain_length = 1;
		if (d->chain_length > d->n)
			return sfy_errf(err, errcap, "%s:%u: chains.%s.chain_length: %u is more than "
					"the %u proxies", source_name(c), d->line, d->name,
					d->chain_length, d->n);
		/* The chain's own dns:, else the global one, else what its
		 * last hop can do. */
		if (d->dns == SFY_DNS_AUTO)
			d->dns = global != SFY_DNS_AUTO ? global
			       : by_last_hop(&c->chain_proxies[d->first + d->n - 1]);
		if (!sfy_dns_fakes(d->dns))
			continue;
		snprintf(key, sizeof key, "chains.%s", d->name);
		if (d->dns == SFY_DNS_PROXY &&
		    proxy_mode_hops(c->chain_proxies + d->first, c->chain_proxy_line + d->first, d->n,
				    d->chain, key, source_name(c), err, errcap))
			return -1;
		struct chain_view v = {
			.p = c->chain_proxies + d->first, .line = c->chain_proxy_line + d->first,
			.n = d->n, .mode = d->chain, .chain_length = d->chain_length,
			.file = source_name(c), .key = key, .list_form = true,
		};
		if (socks4_names(&v, err, errcap))
			return -1;
	}
	return 0;
}

int sfy_config_finish(struct sfy_config *c, char *err, size_t errcap)
{
	enum sfy_dns_mode global = c->dns;
	const char *np_var = c->no_proxy_env ? sfy_no_proxy_var() : NULL;
	bool remote;

	c->warnings[0] = '\0';
	if (!c->nproxies && c->default_via == SFY_VIA_TOP)
		return sfy_errf(err, errcap, "no proxies configured (proxies: or default: in %s, "
				"SOCKSIFY_PROXY or -x URL)",
			    c->source[0] ? c->source : "the config file");
	if (c->nproxies && !c->chain_length &&
	    (c->chain == SFY_CHAIN_RANDOM || c->chain == SFY_CHAIN_ROUND_ROBIN))
		c->chain_length = 1;
	if (c->chain_length > c->nproxies)
		return sfy_errf(err, errcap, "chain_length %u is more than the %zu proxies",
			    c->chain_length, c->nproxies);
	if (chains_finish(c, global, err, errcap))
		return -1;
	/* dns: the top-level chain's own; without one, remote when any named
	 * chain is (the fake-DNS table is then in use). */
	if (c->nproxies && c->dns == SFY_DNS_AUTO)
		c->dns = by_last_hop(&c->proxies[c->nproxies - 1]);
	remote = c->nproxies && sfy_dns_fakes(c->dns);
	for (size_t i = 0; i < c->nchains; i++)
		remote |= sfy_dns_fakes(c->chains[i].dns);
	if (!c->nproxies)
		c->dns = remote ? SFY_DNS_REMOTE : SFY_DNS_LOCAL;
	if (sfy_config_multihop(c) && !c->udp_explicit && c->udp == SFY_UDP_ASSOCIATE)
		c->udp = SFY_UDP_BLOCK;
	if (rules_check(c, remote, np_var, err, errcap))
		return -1;
	for (size_t k = 0; k < c->nrules; k++)
		if (c->rules[k].origin == SFY_RO_NOPROXY && c->rules[k].kind == SFY_RM_ANY &&
		    !c->rules[k].has_port) {
			char w[SFY_ERR_MAX];
			text(w, sizeof w, "%s=* (no_proxy: env): every destination goes direct, "
			     "unproxied", np_var ? np_var : "NO_PROXY");
			add_warning(c, w);
			break;
		}
	if (c->nproxies && c->dns == SFY_DNS_PROXY &&
	    proxy_mode_hops(c->proxies, c->proxy_line, c->nproxies, c->chain, "proxies",
			    c->proxies_file[0] ? c->proxies_file : NULL, err, errcap))
		return -1;
	if (c->nproxies && sfy_dns_fakes(c->dns)) {
		struct chain_view v = {
			.p = c->proxies, .line = c->proxy_line, .n = c->nproxies, .mode = c->chain,
			.chain_length = c->chain_length, .file = c->proxies_file, .key = "proxies",
			.list_form = true,
		};
		return socks4_names(&v, err, errcap);
	}
	return 0;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* The n-th place of the search order of INTERFACE.md into path; false
 * when there is no such place (or it is skipped: no HOME, or a sysconfdir
 * that is /etc itself). */
static bool place(int n, char path[static PATH_MAX], bool *skip)
{
	const char *xdg = env("XDG_CONFIG_HOME"), *home = env("HOME");

	*skip = false;
	switch (n) {
	/* Never the current directory: a cloned repository holding a
	 * socksify.yaml must not be able to reroute the user's traffic. */
	case 0:
		if (xdg)
			snprintf(path, PATH_MAX, "%s/socksify/config.yaml", xdg);
		else if (home)
			snprintf(path, PATH_MAX, "%s/.config/socksify/config.yaml", home);
		else
			*skip = true;
		return true;
	case 1:
		*skip = !strcmp(SFY_SYSCONFDIR, "/etc");
		snprintf(path, PATH_MAX, "%s/socksify.yaml", SFY_SYSCONFDIR);
		return true;
	case 2:
		snprintf(path, PATH_MAX, "/etc/socksify.yaml");
		return true;
	}
	return false;
}

/* 1 with the (absolute) path of the first place that exists, or 0 with
 * err naming every place looked at. One path buffer at a time: this runs
 * on the stack of whatever thread first calls connect(). */
static int search(char path[static PATH_MAX], char *err, size_t errcap)
{
	char p[PATH_MAX];
	size_t o = 0;
	bool skip;

	for (int n = 0; place(n, p, &skip); n++) {
		if (skip)
			continue;
		if (exists(p)) {
			if (!realpath(p, path))
				strcpy(path, p);
			return 1;
		}
		if (o < errcap)
			o += (size_t)snprintf(err + o, errcap - o, "%s %s",
					      o ? "," : "no configuration: looked at", p);
	}
	if (o < errcap)
		snprintf(err + o, errcap - o, "; set SOCKSIFY_PROXY or SOCKSIFY_CONFIG");
	return 0;
}

static int env_word(const char *var, int (*parse)(const char *), const char *choices,
		    int *out, char *err, size_t errcap)
{
	const char *v = env(var);

	if (!v)
		return 0;
	if ((*out = parse(v)) < 0)
		return sfy_errf(err, errcap, "%s: bad value \"%.40s\" (%s)", var, v, choices);
	return 1;
}

static int from_env(struct sfy_config *c, const char *explicit_file, char *err, size_t errcap)
{
	const char *file = explicit_file ? explicit_file : env("SOCKSIFY_CONFIG");
	const char *list = env("SOCKSIFY_PROXY");
	char found[PATH_MAX], why[SFY_ERR_MAX];
	int v, r;

	sfy_config_defaults(c);
	if (!file && !list) {
		if (!search(found, err, errcap))
			return -1;
		file = found;
	}
	if (file) {
		if (sfy_config_load_file(c, file, err, errcap))
			return -1;
		if (file == found || realpath(file, c->source) == NULL)
			snprintf(c->source, sizeof c->source, "%s", file);
	}
	if (list && sfy_config_set_proxies(c, list, why, sizeof why))
		return sfy_errf(err, errcap, "SOCKSIFY_PROXY: %s", why);
	/* After the file: the rules may name its chains. */
	if ((list = env("SOCKSIFY_RULES")) && sfy_config_set_rules(c, list, err, errcap))
		return -1;
	const char *np = c->no_proxy_env ? sfy_no_proxy_var() : NULL;
	if (np && sfy_config_add_no_proxy(c, np, getenv(np), err, errcap))
		return -1;

	if ((r = env_word("SOCKSIFY_CHAIN", sfy_chain_mode_parse,
			  "strict, dynamic, random, round_robin", &v, err, errcap)) < 0)
		return -1;
	if (r)
		c->chain = (enum sfy_chain_mode)v;
	if ((r = env_word("SOCKSIFY_DNS", sfy_dns_mode_parse, "remote, local, proxy", &v, err, errcap)) < 0)
		return -1;
	if (r)
		c->dns = (enum sfy_dns_mode)v;
	if ((r = env_word("SOCKSIFY_LOG", sfy_log_level_parse, "error, warn, info, debug", &v, err, errcap)) < 0)
		return -1;
	if (r)
		c->log_level = (enum sfy_log_level)v;
	if ((r = env_word("SOCKSIFY_UNPROXYABLE", sfy_unproxyable_parse, "refuse, allow", &v,
			  err, errcap)) < 0)
		return -1;
	if (r)
		c->unproxyable = (enum sfy_unproxyable)v;
	return sfy_config_finish(c, err, errcap);
}

int sfy_config_from_env(struct sfy_config *c, const char *explicit_file,
			char *err, size_t errcap)
{
	int rc = from_env(c, explicit_file, err, errcap);

	/* A failed configuration is never used: nothing of it stays. */
	if (rc)
		sfy_config_free(c);
	return rc;
}

/* Whether the file at path has the word anywhere: a file without it
 * cannot set that key, and saying so costs one read, no parse. */
static bool mentions(const char *path, const char *word)
{
	char buf[4096 + 64];
	size_t wl = strlen(word), keep = 0;
	bool found = false;
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	for (size_t n; !found && (n = fread(buf + keep, 1, sizeof(buf) - 1 - keep, f)) > 0;) {
		n += keep;
		buf[n] = '\0';
		found = memmem(buf, n, word, wl) != NULL;
		keep = n >= wl ? wl - 1 : n;
		memmove(buf, buf + n - keep, keep);
	}
	fclose(f);
	return found;
}

bool sfy_config_env_isolates(void)
{
	const char *file = env("SOCKSIFY_CONFIG");
	char found[PATH_MAX], err[SFY_ERR_MAX];
	if (!file) {
		/* Only a file can say isolate: (there is no variable). */
		if (env("SOCKSIFY_PROXY") || !search(found, err, sizeof(err)))
			return false;
		file = found;
	}
	if (!mentions(file, "isolate"))
		return false;
	struct sfy_config *c = calloc(1, sizeof(*c));
	if (!c)
		return false;
	bool iso = false;
	if (sfy_config_from_env(c, NULL, err, sizeof(err)) == 0) {
		iso = c->isolate != SFY_ISOLATE_NONE;
		sfy_config_free(c);
	}
	free(c);
	return iso;
}
