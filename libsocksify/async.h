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

/* Set-ups this process may still have to hide (started here or inherited
 * and not yet seen to end). The hooks' fast path: one atomic load. */
extern atomic_int sfy_async_count;

static inline bool sfy_async_any(void)
{
	return atomic_load_explicit(&sfy_async_count, memory_order_relaxed) > 0;
}

/* Is fd a socket whose set-up has not ended? (Checks identity.) */
bool sfy_async_pending(int fd);

#endif
