/* Non-blocking connect() through the chain (issue 10).
 *
 * connect() on a non-blocking socket starts the TCP connect to hop 1 on the
 * program's own fd, hands a private F_DUPFD_CLOEXEC copy of it to the
 * driver -- a lazily started thread with its own epoll set that runs the
 * chain's state machine (chainsm.h) -- and returns -1/EINPROGRESS. Until
 * the set-up ends the program sees what the kernel shows for a slow direct
 * connect: no readiness (ready.h hides the socket from epoll/poll/select),
 * SO_ERROR 0, EALREADY, EAGAIN for I/O, ENOTCONN from getpeername().
 *
 * The state of a set-up lives in memory shared across fork(), keyed by the
 * socket's identity (st_dev, st_ino), so a child that inherited the socket
 * waits for the parent's driver and never touches the handshake. */
#ifndef SFY_ASYNC_H
#define SFY_ASYNC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "fdreg.h"

/* Set-ups this process may still have to hide (started here or inherited
 * and not yet seen to end). The hooks' fast path: one atomic load. */
extern atomic_int sfy_async_count;

static inline bool sfy_async_any(void)
{
	return atomic_load_explicit(&sfy_async_count, memory_order_relaxed) > 0;
}

/* Is fd a socket whose set-up has not ended? (Checks identity.) Takes
 * only the fd registry's lock; never shows anything (callable under the
 * readiness layer's lock). */
bool sfy_async_pending(int fd);
/* ...and is it this process's driver that will end it? A set-up a fork()ed
 * child inherited is not: registrations the child makes in its own epoll
 * sets are not hidden, since no driver of the child's would show them. */
bool sfy_async_pending_here(int fd);

/* ---- connect() (hooks_tcp.c) ---- */

struct sfy_config;
struct sfy_addr;
struct sockaddr;

/* A non-blocking connect() of TCP socket fd through cfg's chain to dst
 * (peer: the address the program gave, for getpeername()): marks the
 * socket pending, hides it from readiness, starts the TCP connect to hop
 * 1 and hands the rest to the driver thread. -EINPROGRESS (also when
 * the chain was up, or failed, at once: the kernel answers nothing else
 * to a non-blocking TCP connect; a failure goes to SO_ERROR), another
 * -errno (no socket of hop 1's family could be made), or 1: no asynchronous
 * set-up possible here (slot table full, out of memory) -- the caller
 * takes the blocking path. note: the routing rule for the log lines
 * (chainsm.h sfy_chain_sm_set_note), or NULL. A cfg without hops (a
 * direct route, route.h) connects to dst itself, resolving a name on the
 * driver thread. */
int sfy_async_connect(const struct sfy_config *cfg, int fd, const struct sfy_addr *dst,
		      const struct sockaddr *peer, unsigned peer_len, const char *note);

/* ---- what the program sees while a set-up is pending (async_view.c) ----
 * Each is for an fd with SFY_FDREG_PENDING; each collects a set-up that
 * has ended (and shows it, so never call them under a lock). */

/* I/O (read, write, send*, recv*): 0 to go on with the real call, or
 * -EAGAIN while pending on a non-blocking socket (or MSG_DONTWAIT in
 * msgflags); blocks while pending otherwise. After a failure the error,
 * once, like the kernel's sk_err. */
int sfy_async_io(int fd, int msgflags);
/* Might fd be a socket whose set-up this process may see pending? Its
 * registry entry says so, or -- a descriptor of it the registry does not
 * know, dup()ed before connect() -- something is pending at all. Three
 * atomic loads when nothing is pending. */
static inline bool sfy_async_maybe(int fd)
{
	return sfy_async_any() || sfy_fdreg_has(fd, SFY_FDREG_PENDING);
}

/* The I/O hooks' test. */
static inline int sfy_async_gate(int fd, int msgflags)
{
	return sfy_async_maybe(fd) ? sfy_async_io(fd, msgflags) : 0;
}
/* getsockopt(SO_ERROR): true with *err to answer (0 while pending, the
 * error once after a failure); false: ask the kernel. */
bool sfy_async_so_error(int fd, int *err);
/* connect() again: -EALREADY while pending; after a failure the error if
 * nothing reported it yet, else -ECONNABORTED (the kernel's answers), and
 * the socket is an unconnected one from then on; 1: go on as for any
 * connect(). */
int sfy_async_reconnect(int fd);
/* getpeername(): -ENOTCONN while pending or after a failure; 0: go on. */
int sfy_async_getpeername(int fd);
/* shutdown(): true when the set-up was pending, now aborted and the socket
 * disconnected (shutdown() returns 0, SO_ERROR then says ECONNRESET, as
 * the kernel does for a connecting socket); false: the real call. */
bool sfy_async_shutdown(int fd);

#endif
