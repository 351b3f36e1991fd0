/* Routing: a destination (the name behind a fake address, or a real
 * address with the names local DNS answers gave it; and the port) -> a
 * named chain, direct, or block. The rules (config.h: sfy_rule) are
 * compiled once per process when the configuration loads; matching is a
 * few hash lookups, never a walk over the rules. First match wins, in the
 * order -r/SOCKSIFY_RULES, no_proxy: env, bypass:, rules:, then default:.
 *
 * Without any rule, chain or default, every destination gets the
 * top-level chain (the configuration itself) except bypass: ones, as
 * before rules existed. */
#ifndef SFY_ROUTE_H
#define SFY_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

enum sfy_route_kind {
	SFY_ROUTE_CHAIN,
	SFY_ROUTE_DIRECT,
	SFY_ROUTE_BLOCK,
};

#define SFY_RULE_DEFAULT (-1)   /* sfy_route.rule: decided by default: */

struct sfy_route {
	enum sfy_route_kind kind;
	/* CHAIN: the chain as a whole configuration -- the top-level one, or
	 * a copy of it with the named chain's hops, mode, chain_length and
	 * dns (REMOTE when the chain's last hop resolves names). Everything
	 * below (chain.c, udp_assoc.c, hop_addr.c) takes it as its cfg.
	 * DIRECT: a copy with no hops (nproxies 0): chain.c then connects
	 * the destination itself, resolving a name locally (chainsm.h).
	 * BLOCK: the top-level configuration. Never NULL. */
	const struct sfy_config *cfg;
	int via;                /* the verdict: chain index or SFY_VIA_* */
	int rule;               /* index in the effective order, or SFY_RULE_DEFAULT */
};

struct sfy_routes;

/* Compiles cfg's rules (cfg must outlive the result). NULL with err on
 * out of memory. */
struct sfy_routes *sfy_routes_build(const struct sfy_config *cfg, char *err, size_t errcap);
void sfy_routes_free(struct sfy_routes *rt);
/* The library's: of sfy_config_get(), built with it; NULL if it failed. */
const struct sfy_routes *sfy_routes_get(void);

/* Are there any rules, chains or a default at all? (false: the old
 * bypass-only behaviour, and the fast path of every hook) */
bool sfy_routes_active(const struct sfy_routes *rt);
/* Does any route resolve names remotely? Then the fake-DNS table is in
 * use and the process is in remote-DNS mode as far as DNS hooks go. */
bool sfy_routes_remote(const struct sfy_routes *rt);
/* Does any route (the top-level chain, a named chain) have dns: proxy?
 * If not, no lookup asks a chain (dns_proxy.h), whatever its route. */
bool sfy_routes_proxy(const struct sfy_routes *rt);

/* The configuration chain `via` (an index into cfg->chains, or
 * SFY_VIA_TOP) runs with; NULL when it has no hops (--check). */
const struct sfy_config *sfy_routes_chain(const struct sfy_routes *rt, int via);

/* The route for a TCP connection or a UDP datagram to port (host order):
 *  - name != NULL: the destination is known by name (a fake address);
 *    host and * rules apply, CIDR rules do not (sa may be NULL).
 *  - name == NULL: sa (AF_INET/AF_INET6, v4-mapped counts as v4) is a
 *    real address; CIDR and * rules apply, and host rules through the
 *    names local DNS answers gave that address (dnsmem.h): when several
 *    names share it, the most restrictive verdict wins (block > chain >
 *    direct).
 * In remote-DNS mode a direct verdict for port 53 holds only when the
 * rule names port 53 itself (bypass: [127.0.0.0/8] must not let a query
 * to 127.0.0.53 out); a direct default: blocks port 53 there. Names under .onion, .exit and .i2p never get a
 * direct verdict: such a rule is skipped, a direct default blocks them. */
void sfy_route_match(const struct sfy_routes *rt, const char *name, const struct sockaddr *sa,
		     uint16_t port, struct sfy_route *out);

/* What a resolver call does with name before any port is known (port -1)
 * or with the port of its service argument. */
/* A .onion/.exit/.i2p name is never LOCAL: FAKE when some route it can
 * take carries the name to a proxy (a chain whose last hop takes names, in
 * either DNS mode), else BLOCK. */
enum sfy_name_plan {
	SFY_PLAN_BLOCK,         /* every rule that can match says block: EAI_NONAME */
	SFY_PLAN_LOCAL,         /* every route it can take resolves locally
				   (direct, or chains in local-DNS mode):
				   the real resolver answers, and the answer
				   is remembered (dnsmem.h) */
	SFY_PLAN_FAKE,          /* a fake address; connect() decides */
};
enum sfy_name_plan sfy_route_name_plan(const struct sfy_routes *rt, const char *name, int port);

/* The verdict (a chain index or SFY_VIA_*) a lookup of name (for port, -1:
 * none known) goes by under dns: proxy: the one every rule that can match
 * the name agrees on, else default:'s. */
int sfy_route_name_via(const struct sfy_routes *rt, const char *name, int port);

/* For log lines and --explain: "rule 3 (/etc/socksify.yaml:12: *.onion -> tor)",
 * "rule 1 (-r 1: *:25 -> block)", "default (direct)". */
void sfy_route_describe(const struct sfy_routes *rt, const struct sfy_route *r, char *buf,
			size_t cap);

/* How restrictive the routes of name (with the address local DNS
 * answered, sa; NULL: the name alone) are over all ports: 0 every one is
 * direct, 1 some is a chain, 2 some blocks. The dnsmem table keeps a name
 * of a higher value over names of a lower one (dnsmem.h: losing it could
 * let a connection to the address go where its name must not). rt NULL: 0. */
int sfy_route_name_restrictive(const struct sfy_routes *rt, const char *name,
			       const struct sockaddr *sa);

/* Is name under .onion, .exit or .i2p (any case, one trailing dot)? Such
 * a name is never resolved on this machine: it goes by name to a proxy
 * that can carry names, or nowhere. */
bool sfy_route_special_tld(const char *name);

/* Can chain configuration c hand a name to its last hop as a name? Every
 * protocol but socks4 carries one; with random or round-robin any hop may
 * end up last. False for a configuration without hops. */
bool sfy_route_carries_names(const struct sfy_config *c);

/* The no-rules path (sfy_routes_active() false): is sa a bypass:
 * destination? In remote-DNS mode port 53 only when the entry names
 * port 53 itself. */
bool sfy_route_bypass(const struct sfy_config *cfg, const struct sockaddr *sa);

#endif
