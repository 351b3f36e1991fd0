/* One hop's negotiation over an already connected fd: ask proxy p to reach
 * dst with cmd. Reads exactly the bytes of each reply, never the program's
 * data that may follow the last one. */
#ifndef SFY_HANDSHAKE_H
#define SFY_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "proxy_url.h"
#include "socks5.h"

/* The hop answered its method choice and then went silent or closed: a
 * server that drops bytes sent before its reply (microsocks). Retry the hop
 * step by step. Outside the errno range on purpose. */
#define SFY_ESTEPWISE 4096

/* How long a pipelined SOCKS5 hop may stay silent after its method reply
 * before we decide it dropped our early bytes. A real server answers auth at
 * once; a CONNECT reply may wait for a slow destination, so this only
 * triggers a slower retry, never a failure. */
#define SFY_PIPELINE_PROBE_MS 1000

enum sfy_blame {
	SFY_BLAME_HOP,          /* the proxy itself failed (protocol, auth, I/O) */
	SFY_BLAME_TARGET,       /* the proxy could not reach what we asked for */
};

struct sfy_hop_error {
	enum sfy_blame blame;
	char why[160];          /* human reason for the log line, no secrets */
};

/* Returns 0 (bnd filled if not NULL), a negative errno, or -SFY_ESTEPWISE
 * (only when pipelined and probe is true). */
int sfy_hop_request(int fd, const struct sfy_proxy *p, enum sfy_s5_cmd cmd,
		    const struct sfy_addr *dst, bool pipelined, bool probe, int64_t deadline,
		    struct sfy_addr *bnd, struct sfy_hop_error *e);

#endif
