/* Inside route.c and route_ref.c only: the compiled routes and the rule
 * tests both matchers share, so that the compiled index and the linear
 * reference can differ only in how they find candidate rules, never in
 * what a candidate means. */
#ifndef SFY_ROUTE_INT_H
#define SFY_ROUTE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "route.h"

/* One entry of the effective order: a rule of cfg->rules, or bypass rule
 * i as a direct rule. */
struct sfy_eff {
	struct sfy_rule r;
	const char *name;               /* NAME/SUFFIX: into cfg->rule_names */
	bool exact53;                   /* names exactly port 53 */
};

/* A key of the index (route.c): a normalized name of an exact or suffix
 * rule, or a masked network of one family and prefix length. Its rules
 * are list[off, off + n), ascending effective indexes. */
struct sfy_rslot {
	uint64_t h;                     /* 0 = empty slot */
	uint32_t key_off;               /* in keys */
	uint16_t key_len;
	uint8_t kind;                   /* SFY_RM_NAME, SFY_RM_SUFFIX, SFY_RM_CIDR */
	uint32_t off, n;
};

struct sfy_routes {
	const struct sfy_config *cfg;
	bool active, remote;
	bool proxy;                     /* a route (top-level, a chain) has dns: proxy */
	struct sfy_eff *eff;
	size_t neff;
	struct sfy_config *chain_cfg[SFY_MAX_CHAINS];
	struct sfy_config *direct_cfg;  /* no hops */

	/* The index: an open-addressing table of every key, the rule lists,
	 * the `*` rules in order, and the CIDR prefix lengths in use. */
	struct sfy_rslot *slots;
	uint32_t mask;                  /* slots - 1 (a power of two) */
	uint32_t *list;
	char *keys;
	uint32_t *any;
	size_t nany;
	size_t nnamekeys;               /* rules of kind NAME/SUFFIX */
	uint8_t lens4[33], lens6[129];
	size_t nlens4, nlens6;
};

/* Does candidate e (already known to match name/sa by what it matches)
 * apply to this destination: its port range (port -1: any), and direct
 * rules skipped for .onion/.exit/.i2p names (special) and, in remote-DNS
 * mode, for port 53 unless they name exactly that port. */
static inline bool sfy_route_applies(const struct sfy_routes *rt, const struct sfy_eff *e,
				     bool special, int port)
{
	if (port >= 0 && (port < e->r.port_lo || port > e->r.port_hi))
		return false;
	if (e->r.via == SFY_VIA_DIRECT)
		return !special && !(rt->remote && port == 53 && !e->exact53);
	return true;
}

/* The verdict via (rule index or SFY_RULE_DEFAULT) as a route. */
void sfy_route_set(const struct sfy_routes *rt, int via, int rule, struct sfy_route *out);
/* default: for a destination (special: a .onion/.exit/.i2p name; port -1:
 * any). A direct default blocks special names, and in remote-DNS mode
 * port 53 (only a rule naming port 53 itself lets DNS out directly). */
int sfy_route_default_via(const struct sfy_routes *rt, bool special, int port);
/* block > chain > direct. */
int sfy_route_severity(const struct sfy_route *r);

/* The lookup-time plan's accounting of the verdicts a name can get
 * (route.c, shared with the reference). */
struct sfy_plan_acc {
	bool all_block;         /* every verdict so far blocks */
	bool all_local;         /* every one resolves here (direct, local-DNS chain) */
	bool any_name;          /* some chain can take the name itself to its last hop */
};
#define SFY_PLAN_ACC_INIT { true, true, false }
void sfy_route_plan_note(const struct sfy_routes *rt, int via, struct sfy_plan_acc *acc);
enum sfy_name_plan sfy_route_plan_end(const struct sfy_routes *rt, const char *name,
				      const struct sfy_plan_acc *acc);

/* One destination against the rules: name (or NULL), sa (or NULL: CIDR
 * rules then never match), port (-1: any). */
typedef void sfy_route_one_fn(const struct sfy_routes *rt, const char *name,
			      const struct sockaddr *sa, int port, struct sfy_route *out);
/* sfy_route_match with one's answers: a name as is; a real address with
 * each name dnsmem.h remembers for it, the most restrictive verdict. */
void sfy_route_match_with(const struct sfy_routes *rt, sfy_route_one_fn *one, const char *name,
			  const struct sockaddr *sa, uint16_t port, struct sfy_route *out);

#endif
