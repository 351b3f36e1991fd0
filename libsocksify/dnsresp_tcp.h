/* DNS over TCP to a system nameserver, answered by the in-library
 * responder (dnsresp.h; issue 13 item 2).
 *
 * connect() of a TCP socket to port 53 of a system nameserver connects the
 * program's own socket to a loopback listener this process owns (one per
 * family, made on first use, remade in a fork()ed child), accepts the
 * other end -- the "server end" -- at once and keeps it in the socket's
 * registry entry (fdreg.h SFY_FDREG_DNS). After every write the program
 * makes on the socket (write, send, writev, sendmsg, sendto, and the
 * syscall() forms that reach those hooks) the server end is read, every
 * complete length-prefixed query answered and the answers written back on
 * it: the program reads them through the kernel, with real readiness, and
 * nothing leaves the machine. getpeername() shows the nameserver.
 *
 * The listener and the server ends are private descriptors: close-on-exec,
 * at numbers >= SFY_SHM_FD_MIN, moved out of the way when the program
 * closes or dup2()s over their number and closed around by close_range()
 * (the same shield as the shared tables', shmfd.h). */
#ifndef SFY_DNSRESP_TCP_H
#define SFY_DNSRESP_TCP_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "fdreg.h"

struct sfy_dnstcp;

/* connect(fd, sa, len): 0 or -errno (-EINPROGRESS for a non-blocking
 * socket, as the loopback connect answered) when fd is a TCP socket and sa
 * port 53 of a system nameserver with the responder on; 1: not such a
 * connect, the caller goes on as before. */
int sfy_dnstcp_connect(int fd, const struct sockaddr *sa, socklen_t len);

/* After the program wrote on fd (the real call returned r): if fd is
 * connected to the responder, answers every complete query now on its
 * server end. Returns r, errno kept. Two atomic loads for any other fd. */
void sfy_dnstcp_serve(int fd, ssize_t r);
static inline ssize_t sfy_dnstcp_after(int fd, ssize_t r)
{
	if (sfy_fdreg_has(fd, SFY_FDREG_DNS))
		sfy_dnstcp_serve(fd, r);
	return r;
}

/* shutdown(fd, how) succeeded: a half-close (SHUT_WR, SHUT_RDWR) gets the
 * answers still owed, then the end of the stream, as a server gives. */
void sfy_dnstcp_shutdown(int fd, int how);

/* References (fdreg.c holds one per descriptor of the socket). The last
 * put closes the server end. NULL is allowed. */
struct sfy_dnstcp *sfy_dnstcp_ref(struct sfy_dnstcp *c);
void sfy_dnstcp_put(struct sfy_dnstcp *c);

/* The program is about to close fd or dup2() over it: if one of our
 * private descriptors is there, it moves to another number first. One
 * compare for fd < SFY_SHM_FD_MIN. */
void sfy_dnstcp_evict(int fd);
/* Our private descriptors within [first, last], ascending, at most max:
 * close_range()/closefrom() close around them. With closing, the
 * connections whose server ends do not fit are given up (the range's close
 * ends them). */
int sfy_dnstcp_guarded_in(unsigned first, unsigned last, int out[], int max, bool closing);

#endif
