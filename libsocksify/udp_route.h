/* What UDP does with the routing rules' verdicts beyond a relay (dest.h):
 * a blocked destination's one warn line, and the local lookup of a name
 * behind a fake address -- for a direct route (the datagram goes to the
 * name's real address through the kernel) or a chain in local-DNS mode
 * (the relay gets the address, as a TCP chain would). */
#ifndef SFY_UDP_ROUTE_H
#define SFY_UDP_ROUTE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"
#include "config.h"
#include "dest.h"

/* How long an answer is reused: a datagram stream to a name must not cost
 * a lookup per datagram; a failure is kept for a moment only, so that a
 * program retrying in a loop does not flood the name server. */
#define SFY_UDP_NAME_TTL_MS 30000
#define SFY_UDP_NAME_FAIL_MS 1000

/* name -> an address of family (AF_INET, or AF_UNSPEC for any), with
 * port, resolved here within cfg's handshake timeout (or from the cache).
 * The answer is remembered for the rules (dnsmem.h), so that replies from
 * it are recognised as the direct destination's. 0, -EHOSTUNREACH,
 * -ETIMEDOUT, -ENOMEM. */
int sfy_udp_resolve(const struct sfy_config *cfg, const char *name, uint16_t port, int family,
		    struct sfy_addr *out);

/* The real address a direct-named destination d (SFY_V_DIRECT_NAME) goes
 * to, as a sockaddr of the socket's family: 0 or -errno. */
int sfy_udp_direct_addr(const struct sfy_dest *d, struct sockaddr_storage *ss, socklen_t *len);

/* One warn line per blocked destination (bounded, logonce.h); what is the
 * call ("datagram", "connect") and err the errno it fails with. */
void sfy_udp_block_log(const struct sfy_dest *d, const char *what, int err);

/* Forgets the cache (tests). */
void sfy_udp_resolve_flush(void);

#endif
