/* Replacing the program's socket under the same descriptor number when the
 * chain must start over (a dead hop in a dynamic chain, a server that needs
 * step-by-step negotiation, a first hop of the other address family). */
#ifndef SFY_SOCK_H
#define SFY_SOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* An AF_INET/AF_INET6 address at least as long as its family needs: for
 * addresses the kernel wrote (recvfrom) and a bind()'s address; a
 * destination a program hands in is read by sfy_dest_read() (dest.h). */
bool sfy_sockaddr_is_inet(const struct sockaddr *sa, socklen_t len);
/* The port of an AF_INET/AF_INET6 address, host byte order; 0 otherwise. */
uint16_t sfy_sockaddr_port(const struct sockaddr *sa);
/* Sets the port (host byte order) of an AF_INET/AF_INET6 address; any
 * other is left as it is. */
void sfy_sockaddr_set_port(struct sockaddr *sa, uint16_t port);
/* Address family of fd (from getsockname), or a negative errno. */
int sfy_sock_family(int fd);

/* Descriptors the library keeps start here (as shmfd.h's do): a program
 * that expects its next socket to get the lowest free number keeps it. */
#define SFY_PRIVATE_FD_MIN 100
/* fd (one of ours) moved to SFY_PRIVATE_FD_MIN or above, close-on-exec,
 * the old number closed; a negative fd is passed through. */
int sfy_private_fd(int fd);

/* The local address the program bound fd to before any connect (a
 * specific address or port): true with *out filled; false for an unbound
 * or wildcard:0 socket. Call it before the chain connects fd -- afterwards
 * getsockname() shows the kernel's ephemeral port, which is not the
 * program's to keep. */
bool sfy_sock_bound(int fd, struct sockaddr_storage *out);

/* Creates a fresh stream socket of family, copies what the program set on fd
 * (O_NONBLOCK, FD_CLOEXEC, common SOL_SOCKET/TCP/IP options, and bound, the
 * program's local address from sfy_sock_bound(), or NULL) and dup3()s it
 * over fd. discard: the old connection is done with, end it with a reset
 * (a plain close leaves TIME_WAIT on the address pair a retry from the same
 * port needs); false when another descriptor keeps it alive (the probe
 * race). 0 or -errno. */
int sfy_sock_replace(int fd, int family, const struct sockaddr_storage *bound, bool discard);

#endif
