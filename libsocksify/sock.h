/* Replacing the program's socket under the same descriptor number when the
 * chain must start over (a dead hop in a dynamic chain, a server that needs
 * step-by-step negotiation, a first hop of the other address family). */
#ifndef SFY_SOCK_H
#define SFY_SOCK_H

#include <stdbool.h>
#include <sys/socket.h>

/* An AF_INET/AF_INET6 address at least as long as its family needs. */
bool sfy_sockaddr_is_inet(const struct sockaddr *sa, socklen_t len);
/* SO_TYPE of fd, or -1. */
int sfy_sock_type(int fd);
/* Address family of fd (from getsockname), or a negative errno. */
int sfy_sock_family(int fd);

/* Creates a fresh stream socket of family, copies what the program set on fd
 * (O_NONBLOCK, FD_CLOEXEC, common SOL_SOCKET/TCP/IP options, a bound local
 * address of the same family) and dup3()s it over fd. 0 or -errno. */
int sfy_sock_replace(int fd, int family);

#endif
