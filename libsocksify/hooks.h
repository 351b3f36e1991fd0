/* What the hook files call in each other (the UDP side's entry points are
 * in udp_assoc.h). */
#ifndef SFY_HOOKS_H
#define SFY_HOOKS_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "dest.h"
/* The write hooks answer DNS over TCP after the real call (sfy_dnstcp_after). */
#include "dnsresp_tcp.h"

/* sendto()/sendmsg() with MSG_FASTOPEN (op says which: the kernel reads
 * their lengths differently) on a TCP socket to a proxied destination:
 * tunnels fd through the chain, then sends m's data without the address.
 * True with *res (bytes or -errno) when it did; false: not such a call,
 * the real one follows. sendmmsg() calls it for its first message. */
bool sfy_tcp_fastopen(int fd, enum sfy_op op, const struct msghdr *m, int flags,
		      ssize_t *res);

/* syscall(SYS_ppoll) and syscall(SYS_pselect6) with the raw calls'
 * conventions (kernel sigset size, the time left written back), given the
 * six argument registers (hooks_poll.c). */
long sfy_sys_ppoll(const long a[6]);
long sfy_sys_pselect6(const long a[6]);

/* newfd is now a duplicate of oldfd (dup, dup2/dup3, fcntl F_DUPFD): the
 * fd registry and the readiness layer's epoll sets learn it; errno kept
 * (hooks_fd.c). */
void sfy_fd_duped(int oldfd, int newfd);

#endif
