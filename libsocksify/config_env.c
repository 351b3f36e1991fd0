/* The configuration from the environment: SOCKSIFY_* variables, the
 * config search order of INTERFACE.md, and the cross-field checks that
 * finish a configuration. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "addr.h"
#include "config.h"
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

/* Can proxy j come right after proxy i in some chain this mode builds? */
static bool may_follow(const struct sfy_config *c, size_t i, size_t j)
{
	size_t n = c->nproxies;
	switch (c->chain) {
	case SFY_CHAIN_STRICT:
		return j == i + 1;
	case SFY_CHAIN_DYNAMIC:         /* dead hops in between are skipped */
		return j > i;
	case SFY_CHAIN_ROUND_ROBIN:
		return c->chain_length > 1 && j == (i + 1) % n;
	case SFY_CHAIN_RANDOM:
		return c->chain_length > 1 && j != i;
	}
	return false;
}

/* A socks4 hop can only be asked for an IPv4 address. With remote DNS a
 * following hop given by name would have to be resolved here, leaking the
 * inner proxy's name to the local resolver: refused. (With local DNS the
 * user chose this machine's resolver, and the chain resolves it.) */
static int socks4_names(const struct sfy_config *c, char *err, size_t errcap)
{
	for (size_t i = 0; i < c->nproxies; i++) {
		if (c->proxies[i].proto != SFY_PROTO_SOCKS4)
			continue;
		for (size_t j = 0; j < c->nproxies; j++) {
			struct sfy_addr a;
			if (!may_follow(c, i, j) ||
			    sfy_addr_set_host(&a, c->proxies[j].host, c->proxies[j].port) ||
			    a.type != SFY_ATYP_DOMAIN)
				continue;
			char msg[SFY_ERR_MAX];
			snprintf(msg, sizeof msg, "socks4 cannot pass the name of proxy %zu (%s) on "
				 "with remote DNS: use socks4a, give %s as an IP address, or "
				 "dns: local", j + 1, c->proxies[j].host, c->proxies[j].host);
			if (c->proxy_line[i])
				return sfy_errf(err, errcap, "%s:%u: proxies[%zu]: %s", c->proxies_file,
						c->proxy_line[i], i + 1, msg);
			return sfy_errf(err, errcap, "SOCKSIFY_PROXY: proxy %zu: %s", i + 1, msg);
		}
	}
	return 0;
}

/* Does bypass rule r cover any address of the IPv4 fake range (or of its
 * IPv6 twin fd73:6f63:6b73::/96)? Two prefixes overlap exactly when the
 * shorter one contains the other's network. */
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

int sfy_config_finish(struct sfy_config *c, char *err, size_t errcap)
{
	if (!c->nproxies)
		return sfy_errf(err, errcap, "no proxies configured (proxies: in %s, SOCKSIFY_PROXY or -x URL)",
			    c->source[0] ? c->source : "the config file");
	if (!c->chain_length && (c->chain == SFY_CHAIN_RANDOM || c->chain == SFY_CHAIN_ROUND_ROBIN))
		c->chain_length = 1;
	if (c->chain_length > c->nproxies)
		return sfy_errf(err, errcap, "chain_length %u is more than the %zu proxies",
			    c->chain_length, c->nproxies);
	if (c->dns == SFY_DNS_AUTO)
		c->dns = sfy_proto_remote_dns(c->proxies[c->nproxies - 1].proto)
		       ? SFY_DNS_REMOTE : SFY_DNS_LOCAL;
	if (sfy_config_multihop(c) && !c->udp_explicit && c->udp == SFY_UDP_ASSOCIATE)
		c->udp = SFY_UDP_BLOCK;
	/* A fake address that a bypass rule covers would go out as itself:
	 * the name behind it would be lost and the packet would leave
	 * directly, to an address nobody owns. */
	for (size_t i = 0; c->dns == SFY_DNS_REMOTE && i < c->nbypass; i++)
		if (fake_overlap(c, &c->bypass[i]))
			return sfy_errf(err, errcap, "%s: bypass rule %zu overlaps fake_ip_range "
					"%u.%u.%u.%u/%u: pick a range no rule covers",
					c->source[0] ? c->source : "configuration", i + 1,
					c->fake_net >> 24, c->fake_net >> 16 & 255,
					c->fake_net >> 8 & 255, c->fake_net & 255, c->fake_prefix);
	if (c->dns == SFY_DNS_REMOTE)
		return socks4_names(c, err, errcap);
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

int sfy_config_from_env(struct sfy_config *c, const char *explicit_file,
			char *err, size_t errcap)
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

	if ((r = env_word("SOCKSIFY_CHAIN", sfy_chain_mode_parse,
			  "strict, dynamic, random, round_robin", &v, err, errcap)) < 0)
		return -1;
	if (r)
		c->chain = (enum sfy_chain_mode)v;
	if ((r = env_word("SOCKSIFY_DNS", sfy_dns_mode_parse, "remote, local", &v, err, errcap)) < 0)
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
