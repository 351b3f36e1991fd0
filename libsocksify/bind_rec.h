/* The proxied connections a BIND may belong to (bind.h, rule 1): between
 * bind_rec.c, which keeps them, and bind.c, which sends BINDs for them. */
#ifndef SFY_BIND_REC_H
#define SFY_BIND_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "addr.h"
#include "bind.h"
#include "config.h"

/* One proxied connection, as the BIND for it needs it. */
struct sfy_bind_proxied {
	int fd;                         /* the program's descriptor of it */
	dev_t dev;                      /* the socket's identity */
	ino_t ino;
	const struct sfy_config *cfg;   /* the route's chain (lives as long as
					   the process: configs are never freed) */
	size_t hops[SFY_MAX_PROXIES];   /* the hops that carried it */
	size_t nhops;
	struct sfy_addr dst;            /* what the last hop was asked for */
	bool last_known;
	struct sfy_addr last_addr;      /* the last hop as this machine knows it */
	struct sockaddr_storage peer;   /* getpeername() as the program sees it */
	socklen_t peer_len;
	struct sockaddr_storage bnd;    /* the CONNECT reply's BND; bnd_len 0:
					   all zero or a name */
	socklen_t bnd_len;
	struct sockaddr_storage loc;    /* the kernel's getsockname(): this
					   machine's side of the first hop */
	socklen_t loc_len;
};

/* The proxied connection a BIND is for: the latest still alive (its
 * descriptor still holds the same socket, with its peer recorded) whose
 * BND (a handed-out address) or kernel's local address (a proxied one)
 * is the address the program bound -- curl and lftp bind to getsockname()
 * of their control connection; with at NONE/WILDCARD, or when none of
 * them matches, the latest alive. False when none is alive. */
bool sfy_bind_rec_pick(enum sfy_bind_at at, const struct sockaddr *asked, socklen_t asked_len,
		       struct sfy_bind_proxied *out);

/* The BND addresses handed out (alive or not), at most cap; how many. */
size_t sfy_bind_rec_handed(struct sockaddr_storage *out, size_t cap);

/* The kernel's local addresses of the live proxied connections, at most
 * cap; how many. */
size_t sfy_bind_rec_locals(struct sockaddr_storage *out, size_t cap);

/* How many proxied connections are remembered: a program keeps a few
 * control connections at a time; the oldest are forgotten first. */
#define SFY_BIND_REC_N 64

#endif
