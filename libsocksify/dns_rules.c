/* Resolver hooks on the routing rules (dns_rules.h). */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_rules.h"
#include "dns_search.h"
#include "dnsmem.h"
#include "fakedns.h"
#include "log.h"
#include "logonce.h"
#include "sfy.h"

bool sfy_dns_rules_remote(const struct sfy_routes *rt)
{
	return rt && sfy_routes_remote(rt);
}

/* The plan for name as written; a block is said once per name. */
static enum sfy_name_plan plan_one(const struct sfy_routes *rt, const char *name, int port,
				   const char *asked)
{
	bool remote = sfy_dns_rules_remote(rt);
	enum sfy_name_plan p = sfy_route_name_plan(rt, name, port);
	/* Local-DNS routes only hand out fake addresses for .onion/.exit/.i2p
	 * names, which must never reach this machine's resolver. */
	if (p == SFY_PLAN_FAKE && !remote && !sfy_route_special_tld(name))
		p = SFY_PLAN_LOCAL;
	if (p == SFY_PLAN_BLOCK) {
		char key[SFY_NAME_MAX + 1], txt[4 * SFY_NAME_MAX + 1], via[4 * SFY_NAME_MAX + 64] = "";
		if (sfy_fakedns_normalize(asked, key) < 0)
			snprintf(key, sizeof(key), "%.*s", SFY_NAME_MAX, asked);
		if (sfy_logonce_first("dns-block", key)) {
			sfy_log_escape(txt, sizeof(txt), key, strlen(key));
			if (asked != name) {
				/* the name itself may be fine: say what the search list made of it */
				char e[4 * SFY_NAME_MAX + 1];
				sfy_log_escape(e, sizeof(e), name, strlen(name));
				snprintf(via, sizeof(via), ", as %s by the search list", e);
			}
			sfy_warn("lookup of %s blocked by the rules%s (no DNS query)", txt, via);
		}
	}
	return p;
}

enum sfy_name_plan sfy_dns_rules_plan(const struct sfy_routes *rt, const char *name, int port)
{
	if (!rt || !sfy_routes_active(rt))
		return sfy_dns_rules_remote(rt) ? SFY_PLAN_FAKE : SFY_PLAN_LOCAL;
	return plan_one(rt, name, port, name);
}

enum sfy_name_plan sfy_dns_rules_plan_search(const struct sfy_routes *rt, const char *name,
					     int port, const struct __res_state *statp)
{
	enum sfy_name_plan p = sfy_dns_rules_plan(rt, name, port);
	if (p == SFY_PLAN_BLOCK || !rt || !sfy_routes_active(rt) || !sfy_search_applies(name))
		return p;
	struct sfy_search s;
	char full[SFY_NAME_MAX + 1];
	sfy_search_get(&s, statp);
	for (size_t i = 0; i < s.n; i++) {
		if (!sfy_search_join(name, s.dom[i], full))
			continue;
		enum sfy_name_plan q = plan_one(rt, full, port, name);
		if (q == SFY_PLAN_BLOCK)
			return q;
		if (q == SFY_PLAN_FAKE)
			p = q;
	}
	return p;
}

int sfy_dns_service_port(const char *service, int socktype, int flags)
{
	char *end, buf[1024];
	struct servent se, *sp = NULL;
	if (!service || !*service)
		return -1;
	unsigned long v = strtoul(service, &end, 10);
	if (!*end)
		return v >= 1 && v <= 65535 ? (int)v : -1;
	if (flags & AI_NUMERICSERV)
		return -1;
	/* nsswitch "services: files": a local file, no network. */
	if (getservbyname_r(service, socktype == SOCK_DGRAM ? "udp" : "tcp", &se, buf, sizeof(buf),
			    &sp) != 0 || !sp)
		return -1;
	int p = ntohs((uint16_t)sp->s_port);
	return p ? p : -1;
}

/* The names a local answer for name stands for: name itself and, when the
 * resolver may have appended a search domain, every such expansion (we
 * cannot tell which one answered). n or 0. */
static size_t answer_names(const char *name, char out[][SFY_NAME_MAX + 1], size_t max)
{
	const struct sfy_routes *rt = sfy_routes_get();
	size_t n = 0;
	if (snprintf(out[n], SFY_NAME_MAX + 1, "%s", name) > SFY_NAME_MAX)
		return 0;
	n++;
	if (!rt || !sfy_routes_active(rt) || !sfy_search_applies(name))
		return n;
	struct sfy_search s;
	sfy_search_get(&s, NULL);
	for (size_t i = 0; i < s.n && n < max; i++)
		if (sfy_search_join(name, s.dom[i], out[n]))
			n++;
	return n;
}

static void remember(char names[][SFY_NAME_MAX + 1], size_t n, const struct sockaddr *sa,
		     socklen_t len)
{
	const struct sfy_routes *rt = sfy_routes_get();
	for (size_t i = 0; i < n; i++)
		sfy_dnsmem_add(names[i], sa, len, rt ? sfy_route_name_restrictive(rt, names[i], sa) : 2);
}

void sfy_dns_remember_ai(const char *name, const struct addrinfo *ai)
{
	char names[SFY_SEARCH_MAX + 1][SFY_NAME_MAX + 1];
	size_t n = ai ? answer_names(name, names, SFY_ARRAY_LEN(names)) : 0;
	const struct sockaddr *prev = NULL;
	socklen_t prevlen = 0;
	for (; ai && n; ai = ai->ai_next) {
		const struct sockaddr *sa = ai->ai_addr;
		if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
			continue;
		/* glibc repeats each address per socket type: once is enough */
		if (prev && prevlen == ai->ai_addrlen && !memcmp(prev, sa, prevlen))
			continue;
		remember(names, n, sa, ai->ai_addrlen);
		prev = sa;
		prevlen = ai->ai_addrlen;
	}
}

void sfy_dns_remember_he(const char *name, const struct hostent *he)
{
	if (!he || !he->h_addr_list)
		return;
	char names[SFY_SEARCH_MAX + 1][SFY_NAME_MAX + 1];
	size_t n = answer_names(name, names, SFY_ARRAY_LEN(names));
	for (char **p = he->h_addr_list; *p && n; p++) {
		if (he->h_addrtype == AF_INET && he->h_length == 4) {
			struct sockaddr_in s = { .sin_family = AF_INET };
			memcpy(&s.sin_addr, *p, 4);
			remember(names, n, (struct sockaddr *)&s, sizeof(s));
		} else if (he->h_addrtype == AF_INET6 && he->h_length == 16) {
			struct sockaddr_in6 s = { .sin6_family = AF_INET6 };
			memcpy(&s.sin6_addr, *p, 16);
			remember(names, n, (struct sockaddr *)&s, sizeof(s));
		}
	}
}

void sfy_dns_rules_local_spelling(const struct sfy_routes *rt, const char *name, int port,
				  char *out)
{
	size_t n = strnlen(name, SFY_NAME_MAX);
	memcpy(out, name, n);
	out[n] = '\0';
	if (!rt || !sfy_routes_active(rt) || !sfy_search_applies(name))
		return;
	struct sfy_search s;
	char exp[SFY_NAME_MAX + 1];
	sfy_search_get(&s, NULL);
	for (size_t i = 0; i < s.n; i++)
		if (sfy_search_join(name, s.dom[i], exp) &&
		    sfy_route_name_plan(rt, exp, port) != SFY_PLAN_LOCAL) {
			out[n] = '.';
			out[n + 1] = '\0';
			return;
		}
}
