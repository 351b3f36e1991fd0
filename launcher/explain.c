/* socksify --explain: the routing rules applied to one destination, as the
 * library would apply them at connect() -- same configuration, same
 * compiled routes -- without any packet leaving. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "explain.h"
#include "launcher.h"
#include "route.h"
#include "sfy.h"

static const char *dns_name(enum sfy_dns_mode d)
{
	return d == SFY_DNS_REMOTE ? "remote (names go to the last hop)"
	       : d == SFY_DNS_PROXY ? "proxy (lookups ask the last hop with RESOLVE, through the chain)"
	       : "local";
}

static void print_route(const struct sfy_config *top, const struct sfy_routes *rt,
			const struct sfy_route *r)
{
	char d[SFY_NAME_MAX + 600], hop[1100];
	sfy_route_describe(rt, r, d, sizeof(d));
	printf("  rule:  %s\n", d);
	switch (r->kind) {
	case SFY_ROUTE_BLOCK:
		printf("  route: block (refused: ECONNREFUSED, datagrams EPERM)\n");
		return;
	case SFY_ROUTE_DIRECT:
		printf("  route: direct (no proxy; a name is resolved locally)\n");
		return;
	case SFY_ROUTE_CHAIN:
		break;
	}
	const struct sfy_config *c = r->cfg;
	printf("  route: chain %s (%s, %zu hop%s):", sfy_config_via_name(top, r->via),
	       sfy_chain_mode_name(c->chain), c->nproxies, c->nproxies == 1 ? "" : "s");
	for (size_t i = 0; i < c->nproxies; i++) {
		sfy_proxy_format(&c->proxies[i], hop, sizeof(hop));
		printf(" %s", hop);
	}
	printf("\n  dns:   %s\n", dns_name(c->dns));
}

/* A .onion/.exit/.i2p name is never resolved here (route.h), in local-DNS
 * chains neither: say where it goes. */
static void print_special(const char *host, const struct sfy_route *r)
{
	if (r->kind != SFY_ROUTE_CHAIN || !sfy_route_special_tld(host))
		return;
	printf("  name:  never resolved on this machine: %s\n",
	       sfy_route_carries_names(r->cfg) ? "the last hop gets it by name"
					       : "the lookup fails (the last hop cannot take a name)");
}

/* HOST, HOST:PORT, [V6], [V6]:PORT or a bare IPv6 address into host and
 * port (-1: none). */
static int split(const char *t, char host[SFY_NAME_MAX + 1], long *port)
{
	const char *colon = NULL, *end;
	size_t hl;
	*port = -1;
	if (t[0] == '[') {
		end = strchr(t, ']');
		if (!end || (end[1] && end[1] != ':'))
			return -1;
		hl = (size_t)(end - t - 1);
		t++;
		colon = end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = strchr(t, ':');
		if (colon && strchr(colon + 1, ':'))
			colon = NULL;           /* an unbracketed IPv6 address */
		hl = colon ? (size_t)(colon - t) : strlen(t);
	}
	if (hl == 0 || hl > SFY_NAME_MAX)
		return -1;
	memcpy(host, t, hl);
	host[hl] = '\0';
	for (size_t i = 0; i < hl; i++)
		if ((unsigned char)host[i] <= ' ' || host[i] == 0x7f)
			return -1;
	if (colon) {
		unsigned long v;
		if (sfy_decimal(colon + 1, strlen(colon + 1), 65535, &v) || v == 0)
			return -1;
		*port = (long)v;
	}
	return 0;
}

static bool same_route(const struct sfy_route *a, const struct sfy_route *b)
{
	return a->kind == b->kind && a->via == b->via && a->rule == b->rule;
}

int sfy_explain(const struct sfy_config *cfg, const char *target)
{
	char host[SFY_NAME_MAX + 1], err[SFY_ERR_MAX];
	long port;
	struct sockaddr_storage ss;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	const struct sockaddr *sa = NULL;
	struct sfy_route r;
	int rc = 0;

	if (split(target, host, &port) < 0) {
		fprintf(stderr, "socksify: --explain: bad destination '%s' (HOST, HOST:PORT, "
			"[IPV6]:PORT; port 1-65535)\n", target);
		return SFY_EXIT_USAGE;
	}
	struct sfy_routes *rt = sfy_routes_build(cfg, err, sizeof(err));
	if (!rt) {
		fprintf(stderr, "socksify: %s\n", err);
		return SFY_EXIT_USAGE;
	}
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		sa = (const struct sockaddr *)&ss;
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		sa = (const struct sockaddr *)&ss;
	}
	bool v6 = sa && ss.ss_family == AF_INET6;
	if (port >= 0)
		printf(v6 ? "[%s]:%ld" : "%s:%ld", host, port);
	else
		printf("%s", host);
	printf(" (%s)\n", sa ? "an address: address rules apply" : "a name: host rules apply");
	if (port >= 0) {
		sfy_route_match(rt, sa ? NULL : host, sa, (uint16_t)port, &r);
		print_route(cfg, rt, &r);
		if (!sa)
			print_special(host, &r);
		rc = r.kind == SFY_ROUTE_BLOCK;
	} else if (sa) {
		sfy_route_match(rt, NULL, sa, 0, &r);
		printf("  (no port given: port rules not applied)\n");
		print_route(cfg, rt, &r);
		rc = r.kind == SFY_ROUTE_BLOCK;
	} else {
		enum sfy_name_plan p = sfy_route_name_plan(rt, host, -1);
		printf("  lookup: %s\n", p == SFY_PLAN_BLOCK ? "blocked (the resolver answers "
		       "EAI_NONAME, no packet is sent)" : p == SFY_PLAN_LOCAL ?
		       "resolved locally (then the address's own rules apply too, the most "
		       "restrictive wins)" : "a fake address; the route is decided at connect() "
		       "with the port");
		rc = p == SFY_PLAN_BLOCK;
		/* The route per port range: the ports where the verdict changes. */
		struct sfy_route prev;
		long from = 1;
		sfy_route_match(rt, host, NULL, 1, &prev);
		for (long q = 2; q <= 65536; q++) {
			if (q <= 65535)
				sfy_route_match(rt, host, NULL, (uint16_t)q, &r);
			if (q <= 65535 && same_route(&r, &prev))
				continue;
			if (from == 1 && q == 65536)
				printf(" any port:\n");
			else if (from == q - 1)
				printf(" port %ld:\n", from);
			else
				printf(" ports %ld-%ld:\n", from, q - 1);
			print_route(cfg, rt, &prev);
			prev = r;
			from = q;
		}
	}
	sfy_routes_free(rt);
	return rc;
}
