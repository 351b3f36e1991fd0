/* The responder's UDP transport (issue 13): a query a program sends to a
 * system nameserver (dnsresp.h) is answered here, synchronously, and the
 * answer reaches the program through the kernel, from a loopback UDP
 * socket of ours that stands for that nameserver -- so readiness (poll,
 * epoll, a blocking recv) is real and the program's fd is never replaced.
 *
 * The sockets: one per (family, nameserver), bound to 127.0.0.1 or ::1
 * port 0, made on first use, close-on-exec, at fd >= 100, never read from.
 * Their port tells which nameserver a datagram stands for, so a receive
 * hook can report the nameserver as its source. A forked child makes its
 * own (and closes the inherited ones, which stay the parent's); the
 * program's close()/dup2()/close_range() move them out of the way the
 * shared tables are (shmfd.h). */
#ifndef SFY_DNSRESP_UDP_H
#define SFY_DNSRESP_UDP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct sfy_udp_sess;

/* m's data (one DNS message) sent by UDP socket fd (of family) to
 * nameserver ns: binds fd to the wildcard port 0 if it is unbound, answers
 * and sends the answer to fd's address. Returns what the real send would
 * (the bytes of the datagram) or -errno. Marks fd (a DNS session, unless it
 * has a session) so that its receive hooks report the nameserver. */
ssize_t sfy_dnsresp_udp_send(int fd, int family, int ns, const struct msghdr *m);

/* connect() of UDP socket fd (of family) to nameserver ns, sa/len as the
 * kernel reads them: connects it for real to our socket for ns and
 * records sa as its peer (a DNS session). 0 or -errno. */
int sfy_dnsresp_udp_connect(int fd, int family, int ns, const struct sockaddr *sa,
			    socklen_t len);

/* A send without an address on socket fd whose session s is a DNS one:
 * answered as sfy_dnsresp_udp_send() to the connected nameserver. */
ssize_t sfy_dnsresp_udp_send_connected(int fd, struct sfy_udp_sess *s, const struct msghdr *m);

/* from (*len bytes, as a receive on a socket of family reported it): if it
 * is one of our sockets, rewrites it to its nameserver's address, port 53,
 * in family (v4-mapped for an AF_INET6 socket and an IPv4 nameserver), and
 * returns true. */
bool sfy_dnsresp_udp_source(int family, struct sockaddr_storage *from, socklen_t *len);

/* The program is about to close fd or dup2() over it: if one of our
 * sockets is there, moves it to another number first. */
void sfy_dnsresp_udp_evict(int fd);
/* Our sockets' descriptors within [first, last], ascending (at most max). */
int sfy_dnsresp_udp_guarded_in(unsigned first, unsigned last, int out[], int max);
#define SFY_DNSRESP_UDP_NFD (2 * 8)

#endif
