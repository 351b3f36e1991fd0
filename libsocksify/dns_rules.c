/* Resolver hooks on the routing rules (dns_rules.h). */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_rules.h"
#include "dnsmem.h"
#include "fakedns.h"
#include "log.h"
#include "logonce.h"

bool sfy_dns_rules_remote(const struct sfy_routes *rt)
{
	return rt && sfy_routes_remote(rt);
}

enum sfy_name_plan sfy_dns_rules_plan(const struct sfy_routes *rt, const char *name, int port)
{
	bool remote = sfy_dns_rules_remote(rt);
	if (!rt || !sfy_routes_active(rt))
		return remote ? SFY_PLAN_FAKE : SFY_PLAN_LOCAL;
	enum sfy_name_plan p = sfy_route_name_plan(rt, name, port);
	if (p == SFY_PLAN_FAKE && !remote)
		p = SFY_PLAN_LOCAL;     /* no fake table to hand one out from */
	if (p == SFY_PLAN_BLOCK) {
		char key[SFY_NAME_MAX + 1], txt[4 * SFY_NAME_MAX + 1];
		if (sfy_fakedns_normalize(name, key) < 0)
			snprintf(key, sizeof(key), "%.*s", SFY_NAME_MAX, name);
		if (sfy_logonce_first("dns-block", key)) {
			sfy_log_escape(txt, sizeof(txt), key, strlen(key));
			sfy_warn("lookup of %s blocked by the rules (no DNS query)", txt);
		}
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

void sfy_dns_remember_ai(const char *name, const struct addrinfo *ai)
{
	const struct sockaddr *prev = NULL;
	socklen_t prevlen = 0;
	for (; ai; ai = ai->ai_next) {
		const struct sockaddr *sa = ai->ai_addr;
		if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
			continue;
		/* glibc repeats each address per socket type: once is enough */
		if (prev && prevlen == ai->ai_addrlen && !memcmp(prev, sa, prevlen))
			continue;
		sfy_dnsmem_add(name, sa, ai->ai_addrlen, sfy_route_name_restrictive(sfy_routes_get(), name, sa));
		prev = sa;
		prevlen = ai->ai_addrlen;
	}
}

void sfy_dns_remember_he(const char *name, const struct hostent *he)
{
	if (!he || !he->h_addr_list)
		return;
	for (char **p = he->h_addr_list; *p; p++) {
		if (he->h_addrtype == AF_INET && he->h_length == 4) {
			struct sockaddr_in s = { .sin_family = AF_INET };
			memcpy(&s.sin_addr, *p, 4);
			sfy_dnsmem_add(name, (struct sockaddr *)&s, sizeof(s), sfy_route_name_restrictive(sfy_routes_get(), name, (struct sockaddr *)&s));
		} else if (he->h_addrtype == AF_INET6 && he->h_length == 16) {
			struct sockaddr_in6 s = { .sin6_family = AF_INET6 };
			memcpy(&s.sin6_addr, *p, 16);
			sfy_dnsmem_add(name, (struct sockaddr *)&s, sizeof(s), sfy_route_name_restrictive(sfy_routes_get(), name, (struct sockaddr *)&s));
		}
	}
}
