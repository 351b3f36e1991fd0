/* Picking hops (strict/dynamic/random/round_robin) and walking them: the
 * whole chain is built on the caller's fd, honouring its O_NONBLOCK flag
 * only at the end (the handshake itself is driven with poll()). */
#ifndef SFY_CHAIN_H
#define SFY_CHAIN_H

#include "addr.h"
#include "config.h"
#include "socks5.h"

/* Connects fd (an unconnected AF_INET/AF_INET6 stream socket) through the
 * configured chain to dst, with SOCKS5 command cmd on the last hop
 * (SFY_S5_CONNECT or SFY_S5_UDP_ASSOCIATE; the latter needs a SOCKS5 last
 * hop). On success returns 0 and, if bnd is not NULL, the last hop's BND
 * address. On failure returns a negative errno and has logged one line. */
int sfy_chain_connect(const struct sfy_config *cfg, int fd, const struct sfy_addr *dst,
		      enum sfy_s5_cmd cmd, struct sfy_addr *bnd);

#endif
