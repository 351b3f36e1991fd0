/* Picking hops (strict/dynamic/random/round_robin) and walking them: the
 * whole chain is built on the caller's fd, honouring its O_NONBLOCK flag
 * only at the end (the handshake itself is driven with poll()). */
#ifndef SFY_CHAIN_H
#define SFY_CHAIN_H

#include <stdbool.h>

#include "addr.h"
#include "config.h"
#include "socks5.h"

/* What a successful sfy_chain_connect() did. */
struct sfy_chain_report {
	size_t hops[SFY_MAX_PROXIES];   /* indexes into cfg->proxies, hop 1 first */
	size_t nhops;
	size_t last;                    /* hops[nhops - 1]: the hop that answered */
	/* The last hop's address as this machine knows it: hop 1's connected
	 * address, or a later hop's host when it was given as an IP literal. A
	 * later hop given by name was never resolved here: not known. */
	bool last_addr_known;
	struct sfy_addr last_addr;
	struct sfy_addr bnd;            /* the last hop's BND */
	struct sfy_addr dst;            /* what the last hop was asked for (a
					   name resolved here: its address) */
	bool bound;                     /* the program bound fd itself first */
};

/* Connects fd (an unconnected AF_INET/AF_INET6 stream socket) through the
 * configured chain to dst, with SOCKS5 command cmd on the last hop
 * (SFY_S5_CONNECT, SFY_S5_UDP_ASSOCIATE: a SOCKS5 last hop, SFY_S5_BIND: a
 * SOCKS4 or SOCKS5 last hop -- rep->bnd is then BIND's first reply and the
 * second is the caller's to read). On success returns 0 and, if rep is not NULL, fills it. On failure
 * returns a negative errno and has logged one line. */
int sfy_chain_connect(const struct sfy_config *cfg, int fd, const struct sfy_addr *dst,
		      enum sfy_s5_cmd cmd, struct sfy_chain_report *rep);

/* The same, with note (or NULL) appended to its log lines: the routing
 * rule that chose cfg (route.h sfy_route_describe), as in
 * "example.com:443 via 2 hops, rule 3 (...)". */
#define SFY_CHAIN_NOTE_MAX 320
int sfy_chain_connect_note(const struct sfy_config *cfg, int fd, const struct sfy_addr *dst,
			   enum sfy_s5_cmd cmd, struct sfy_chain_report *rep, const char *note);

/* The same over exactly the hops hops[0..nhops) (indexes into
 * cfg->proxies, as a report lists them) instead of picking: a BIND must
 * reach the proxy that carried the connection it belongs to. */
int sfy_chain_connect_hops(const struct sfy_config *cfg, int fd, const struct sfy_addr *dst,
			   enum sfy_s5_cmd cmd, const size_t *hops, size_t nhops,
			   struct sfy_chain_report *rep, const char *note);

#endif
