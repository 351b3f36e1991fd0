/* The chain as one re-enterable state machine (the pattern of curl's
 * lib/socks.c): resolving hop 1, the TCP connect to it, and every message
 * and reply of every hop are steps. A step does only non-blocking I/O and
 * says what it waits for; the blocking connect() runs it with poll() until
 * done (chain.c), the background driver of a non-blocking connect() runs it
 * from its own epoll set (async.c). One code path for both. */
#ifndef SFY_CHAINSM_H
#define SFY_CHAINSM_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "chain.h"
#include "config.h"
#include "socks5.h"

/* What sfy_chain_sm_step() waits for, when it returns > 0. */
#define SFY_SM_IN  0x001        /* fd readable (POLLIN) */
#define SFY_SM_OUT 0x004        /* fd writable (POLLOUT) */
/* Call again from a thread that may block for a bounded time (hop 1's name
 * is not resolved yet): the driver does it, never the program's thread. */
#define SFY_SM_RUN 0x100

struct sfy_chain_sm;

/* A set-up of fd (an unconnected AF_INET/AF_INET6 stream socket) through
 * cfg's chain to dst with command cmd on the last hop. async: fd belongs to
 * a non-blocking connect() that has (or will have) returned EINPROGRESS, so
 * the socket under fd is never replaced -- retries disconnect and reconnect
 * the same socket, and hop 1 is reached by an address of the socket's own
 * family. NULL when out of memory. Nothing is sent before the first step.
 * A cfg with no hops (nproxies 0: a direct route, route.h) connects fd to
 * dst itself: a name is resolved locally like hop 1's (SFY_SM_RUN, on the
 * driver for an asynchronous set-up, bounded by the handshake timeout) for
 * the socket's family, then the TCP connect; nothing is sent. A
 * .onion/.exit/.i2p name is never resolved here: a chain in local-DNS mode
 * passes it to a last hop that takes names (all but socks4), else the
 * set-up fails with EHOSTUNREACH (one line) before any packet. */
struct sfy_chain_sm *sfy_chain_sm_new(const struct sfy_config *cfg, int fd,
				      const struct sfy_addr *dst, enum sfy_s5_cmd cmd, bool async);

/* For an asynchronous set-up, before its socket is marked pending: when
 * hop 1 is an IP literal of a family the socket cannot reach (an AF_INET
 * socket and an IPv6 hop, a V6ONLY socket and an IPv4 one), replaces the
 * socket under fd now -- the last moment it may be -- carrying the
 * program's epoll registrations over (ready.h). A hop 1 given by name is
 * resolved for the socket's family instead. 0 or -errno. */
int sfy_chain_sm_fit(struct sfy_chain_sm *sm);

/* The descriptor the steps use from now on: another descriptor of the same
 * socket (the driver's private F_DUPFD_CLOEXEC copy). */
void sfy_chain_sm_set_fd(struct sfy_chain_sm *sm, int fd);

/* Appends note (the routing rule that chose cfg; NULL: none) to the
 * set-up's log lines (chain.h sfy_chain_connect_note). */
void sfy_chain_sm_set_note(struct sfy_chain_sm *sm, const char *note);

/* Advances as far as it can without blocking (SFY_SM_RUN aside). Returns a
 * mask of SFY_SM_IN / SFY_SM_OUT to wait for on the fd, or SFY_SM_RUN; 0 when
 * the chain is up; a negative errno when it failed (one line logged, the
 * errno a program expects from connect()). Call again when the fd is ready
 * or sfy_chain_sm_deadline() has passed, whichever is first. */
int sfy_chain_sm_step(struct sfy_chain_sm *sm);

/* When the step must run even without readiness (a timeout), in
 * sfy_now_ms() time. */
int64_t sfy_chain_sm_deadline(const struct sfy_chain_sm *sm);

/* After a step returned 0. */
void sfy_chain_sm_report(const struct sfy_chain_sm *sm, struct sfy_chain_report *rep);

/* Frees sm (a set-up not finished is simply dropped; the caller owns fd). */
void sfy_chain_sm_free(struct sfy_chain_sm *sm);

#endif
