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

/* The hop answered its method choice and then stayed silent past the probe
 * window (max(SFY_PIPELINE_PROBE_MS, 4 x the method reply's round trip)).
 * Not evidence by itself: a server that dropped our early bytes (microsocks
 * parses its first read and goes silent) and a slow destination look the
 * same. The request is sent; finish it with sfy_hop_s5_resume(), racing a
 * step-by-step connection (probe_race.h). */
#define SFY_ESILENT 4097

/* The shortest probe window: a real server answers auth at once; a CONNECT
 * reply may wait for a slow destination, so the window only starts a race,
 * never a failure. */
#define SFY_PIPELINE_PROBE_MS 1000

enum sfy_blame {
	SFY_BLAME_HOP,          /* the proxy itself failed (protocol, auth, I/O) */
	SFY_BLAME_TARGET,       /* the proxy could not reach what we asked for */
};

struct sfy_hop_error {
	enum sfy_blame blame;
	char why[160];          /* human reason for the log line, no secrets */
};

/* Returns 0 (bnd filled if not NULL), a negative errno, or -SFY_ESTEPWISE /
 * -SFY_ESILENT (only when pipelined and probe is true). */
int sfy_hop_request(int fd, const struct sfy_proxy *p, enum sfy_s5_cmd cmd,
		    const struct sfy_addr *dst, bool pipelined, bool probe, int64_t deadline,
		    struct sfy_addr *bnd, struct sfy_hop_error *e);

/* Reads the rest of a SOCKS5 hop that returned -SFY_ESILENT: the auth
 * reply if p has credentials, then the request's. -SFY_ESTEPWISE if the
 * proxy closes before the first byte. */
int sfy_hop_s5_resume(int fd, const struct sfy_proxy *p, int64_t deadline, struct sfy_addr *bnd,
		      struct sfy_hop_error *e);

#endif
