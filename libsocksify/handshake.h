/* One hop's negotiation over an already connected fd, as resumable steps:
 * ask proxy p to reach dst with cmd. Each message is built by a pure codec
 * at init; a step sends what is due and reads what has arrived with
 * non-blocking calls only, and says what it waits for. Reads exactly the
 * bytes of each reply (SOCKS5: fixed head, then the length ATYP implies;
 * HTTP: a peek for the blank line), never the program's data that may
 * follow the last one. The chain's state machine (chainsm.c) runs these
 * steps; sfy_hop_request() runs one hop to the end with poll(). */
#ifndef SFY_HANDSHAKE_H
#define SFY_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "http_connect.h"
#include "proxy_url.h"
#include "socks4.h"
#include "socks5.h"

/* The hop answered its method choice and then went silent or closed: a
 * server that drops bytes sent before its reply (microsocks). Retry the hop
 * step by step. Outside the errno range on purpose. */
#define SFY_ESTEPWISE 4096

/* The hop answered its method choice and then stayed silent past the probe
 * window (max(SFY_PIPELINE_PROBE_MS, 4 x the method reply's round trip)).
 * Not evidence by itself: a server that dropped our early bytes (microsocks
 * parses its first read and goes silent) and a slow destination look the
 * same. The hop's state is kept: sfy_hop_resume() and further steps finish
 * it, racing a step-by-step connection (probe_race.h) or not. */
#define SFY_ESILENT 4097

/* The shortest probe window: a real server answers auth at once; a CONNECT
 * reply may wait for a slow destination, so the window only starts a race,
 * never a failure. */
#define SFY_PIPELINE_PROBE_MS 1000

/* What a step waits for (the values of chainsm.h's SFY_SM_IN/OUT). */
#define SFY_HOP_IN  0x001
#define SFY_HOP_OUT 0x004

enum sfy_blame {
	SFY_BLAME_HOP,          /* the proxy itself failed (protocol, auth, I/O) */
	SFY_BLAME_TARGET,       /* the proxy could not reach what we asked for */
};

struct sfy_hop_error {
	enum sfy_blame blame;
	char why[160];          /* human reason for the log line, no secrets */
};

/* The longest message sequence of one hop: SOCKS5 greeting + auth +
 * request, a SOCKS4a request, or an HTTP CONNECT (the longest, with its
 * NUL). */
#define SFY_HOP_S5_MAX (8 + SFY_S5_AUTH_MAX + SFY_S5_REQ_MAX)
#define SFY_HOP_MAX2(a, b) ((a) > (b) ? (a) : (b))
#define SFY_HOP_OUT_MAX SFY_HOP_MAX2(SFY_HOP_MAX2(SFY_HOP_S5_MAX, SFY_S4_REQ_MAX), SFY_HTTP_REQ_MAX)

/* One hop's exchange. Messages go in parts: part k is sent before reply k
 * is read (step by step: greeting, auth, request; pipelined: one part). */
struct sfy_hop {
	const struct sfy_proxy *p;
	bool pipelined;
	bool probe;             /* tell a hop that drops early bytes apart */
	bool iso;               /* offers NONE and USERPASS (isolation) */
	size_t auth_at, auth_len;       /* where the isolation auth sits in out */
	uint8_t nparts, nreplies, reply;        /* reply: the one being read */
	uint8_t kind[3];        /* what each reply is (handshake.c) */
	size_t part_end[3];     /* where part k ends in out */
	size_t out_len, sent;
	size_t in_len, need;    /* the reply being read, in the caller's buffer */
	int64_t deadline;       /* this hop's, in sfy_now_ms() time */
	int64_t t0;             /* when the first byte was sent */
	int64_t probe_until;    /* first byte of the reply after the method's */
	int64_t req_sent;       /* when the last part was handed to the kernel */
	struct sfy_addr bnd;    /* the final reply's BND */
	bool has_rep;           /* a SOCKS5 final reply came: its REP, also a */
	uint8_t rep;            /* failed one (dns_proxy.c maps RESOLVE's) */
	struct sfy_hop_error e;
	uint8_t out[SFY_HOP_OUT_MAX];
};

/* The buffer a step reads replies into; one per chain is enough (only one
 * hop reads at a time). */
#define SFY_HOP_IN_MAX SFY_HTTP_REPLY_MAX

/* Builds the hop's messages. 0, or a negative errno with h->e filled.
 * iso (NULL: none) is an isolation password (isolate.h) for a SOCKS5 hop
 * without credentials of its own: its greeting offers no authentication
 * and username/password, and goes alone (the server's choice decides
 * what follows); if the server picks username/password it gets
 * SFY_ISOLATE_USER and iso, pipelined with the request as pipelined says;
 * if it picks no authentication it sees no credentials. Other hops ignore
 * it. */
int sfy_hop_init(struct sfy_hop *h, const struct sfy_proxy *p, enum sfy_s5_cmd cmd,
		 const struct sfy_addr *dst, bool pipelined, bool probe, int64_t deadline,
		 const char *iso);

/* Sends what is due before the first reply. 0 when all of it is with the
 * kernel, SFY_HOP_OUT to wait, or a negative errno. */
int sfy_hop_flush_first(struct sfy_hop *h, int fd);

/* Advances the hop: 0 when its final reply is in (BND in h->bnd), a mask of
 * SFY_HOP_IN/OUT to wait for, a negative errno (h->e says why), or
 * -SFY_ESTEPWISE / -SFY_ESILENT (only when pipelined and probing).
 * Call again on readiness or at sfy_hop_deadline(). */
int sfy_hop_step(struct sfy_hop *h, int fd, uint8_t in[static SFY_HOP_IN_MAX]);

/* When the hop must be stepped even without readiness. */
int64_t sfy_hop_deadline(const struct sfy_hop *h);

/* After -SFY_ESILENT: keep reading with no probe window. Only a close
 * before the first byte of the reply still says -SFY_ESTEPWISE. */
void sfy_hop_resume(struct sfy_hop *h);

/* True once the method reply is in (a SOCKS5 hop that answered at all). */
bool sfy_hop_answered(const struct sfy_hop *h);

/* One hop start to end on fd with poll() (the fuzz target's entry):
 * returns 0 (bnd filled if not NULL), a negative errno, or -SFY_ESTEPWISE /
 * -SFY_ESILENT (only when pipelined and probe is true). */
int sfy_hop_request(int fd, const struct sfy_proxy *p, enum sfy_s5_cmd cmd,
		    const struct sfy_addr *dst, bool pipelined, bool probe, int64_t deadline,
		    struct sfy_addr *bnd, struct sfy_hop_error *e);

#endif
