/* What the hook files call in each other (the UDP side's entry points are
 * in udp_assoc.h). */
#ifndef SFY_HOOKS_H
#define SFY_HOOKS_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "dest.h"

/* sendto()/sendmsg() with MSG_FASTOPEN (op says which: the kernel reads
 * their lengths differently) on a TCP socket to a proxied destination:
 * tunnels fd through the chain, then sends m's data without the address.
 * True with *res (bytes or -errno) when it did; false: not such a call,
 * the real one follows. sendmmsg() calls it for its first message. */
bool sfy_tcp_fastopen(int fd, enum sfy_op op, const struct msghdr *m, int flags,
		      ssize_t *res);

#endif
