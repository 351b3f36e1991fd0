/* The routing rules as the resolver hooks (hooks_dns.c, hooks_gai_a.c,
 * hooks_res.c) apply them to forward lookups (route.h: the name plan):
 * a name every rule blocks fails without a packet, a name every route of
 * which resolves locally goes to the real resolver and its answers are
 * remembered (dnsmem.h) so that a connect() to the address is routed by
 * the name, and the rest gets a fake address (remote-DNS mode only).
 * Without rules (sfy_routes_active() false) nothing changes: fake
 * addresses in remote mode, the real resolver in local mode. */
#ifndef SFY_DNS_RULES_H
#define SFY_DNS_RULES_H

#include <netdb.h>
#include <stdbool.h>

#include "route.h"

/* Is fake DNS in use (some route resolves names remotely)? rt NULL: no. */
bool sfy_dns_rules_remote(const struct sfy_routes *rt);

/* What a lookup of name (not numeric, not localhost) does; port: the
 * service's port, or -1 when the call names none. Without active rules:
 * FAKE in remote mode, LOCAL otherwise. In local mode FAKE never comes
 * back (LOCAL instead). A BLOCK is logged at warn once per name. */
enum sfy_name_plan sfy_dns_rules_plan(const struct sfy_routes *rt, const char *name, int port);

/* The same for a lookup the resolver may extend with its search list
 * (dns_search.h; statp: the program's resolver state, NULL for _res): the
 * most restrictive plan over name as written and every expansion -- any
 * BLOCK blocks, else any FAKE fakes, else LOCAL. */
struct __res_state;
enum sfy_name_plan sfy_dns_rules_plan_search(const struct sfy_routes *rt, const char *name,
					     int port, const struct __res_state *statp);

/* The spelling a name is handed to this machine's resolver with when a
 * route resolves it here at connect() (a direct route, a local-DNS chain,
 * for a name that got a fake address at lookup): as written when every
 * name the search list could make of it is resolved locally too, else
 * absolute ("name."), so the resolver never asks for an expansion a rule
 * blocks or sends to a remote-DNS chain. out: SFY_NAME_MAX + 2 bytes. */
void sfy_dns_rules_local_spelling(const struct sfy_routes *rt, const char *name, int port,
				  char *out);

/* The port a getaddrinfo() service argument names: a number 1..65535, or
 * a name from the services file (for udp when socktype is SOCK_DGRAM,
 * else tcp); -1 when there is none, it is 0, or not known here. */
int sfy_dns_service_port(const char *service, int socktype, int flags);

/* Remembers every inet address of a local answer for name (dnsmem.h),
 * under name and, with active rules, under each search-list expansion of
 * it (the answer may be for any of them). */
void sfy_dns_remember_ai(const char *name, const struct addrinfo *ai);
void sfy_dns_remember_he(const char *name, const struct hostent *he);

#endif
