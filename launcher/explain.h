/* socksify --explain HOST[:PORT]: which rule routes a destination. */
#ifndef SFY_EXPLAIN_H
#define SFY_EXPLAIN_H

#include "config.h"

/* Prints the destination, the rule that matches, the route (chain and
 * hops, direct or block) and its DNS mode; for a name without a port the
 * lookup-time plan and the route per port range. Nothing is resolved or
 * connected. Returns the exit status: 0, 1 when the destination is
 * blocked (on that port; without a port: at lookup), 125 for a bad
 * HOST[:PORT] or when the routes cannot be built. */
int sfy_explain(const struct sfy_config *cfg, const char *target);

#endif
