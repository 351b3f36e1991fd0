/* Where a hop is, as far as this machine may know it. Only hop 1 is this
 * machine's to resolve; every later hop's host is handed to the hop before
 * it exactly as configured (a name as a name, an IP literal as an address),
 * so an inner proxy's name never reaches the local resolver and may be one
 * that only resolves behind hop 1. */
#ifndef SFY_HOP_ADDR_H
#define SFY_HOP_ADDR_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "config.h"

/* The address to connect() to for proxy i used as hop 1: an IP literal as
 * is, a name resolved locally (getaddrinfo_a, bounded by deadline) and kept
 * for the life of the process. 0, -EHOSTUNREACH or -ETIMEDOUT. */
int sfy_hop_first_addr(const struct sfy_config *cfg, size_t i, int64_t deadline,
		       struct sfy_addr *out);

/* The same for a socket that cannot change its family (a non-blocking
 * connect's): an address of family (AF_INET, AF_INET6, or AF_UNSPEC for
 * any), each kept apart. */
int sfy_hop_first_addr_fam(const struct sfy_config *cfg, size_t i, int family,
			   int64_t deadline, struct sfy_addr *out);

/* Fills out with proxy i's address (of family, as above) if it needs no
 * lookup (an IP literal, or a name already resolved): true; false when a
 * lookup is needed. */
bool sfy_hop_first_cached(const struct sfy_config *cfg, size_t i, int family,
			  struct sfy_addr *out);

/* What hop prev is asked to CONNECT to in order to reach proxy next: its
 * host as given. A socks4 hop cannot carry a name: in local-DNS mode the
 * name is resolved here (the user chose this machine's resolver for names;
 * sfy_config_finish() refuses the combination in remote-DNS mode). 0 or a
 * negative errno with why filled. */
int sfy_hop_next_addr(const struct sfy_config *cfg, const struct sfy_proxy *prev,
		      const struct sfy_proxy *next, int64_t deadline, struct sfy_addr *out,
		      char *why, size_t whycap);

/* host -> first address, with a deadline (getaddrinfo() has none). */
int sfy_resolve_by(const char *host, uint16_t port, int64_t deadline, struct sfy_addr *out);
/* The same, of one family (AF_UNSPEC: any). */
int sfy_resolve_fam(const char *host, uint16_t port, int family, int64_t deadline,
		    struct sfy_addr *out);

#endif
