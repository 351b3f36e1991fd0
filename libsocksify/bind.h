/* SOCKS BIND for programs that wait for their peer to connect back (active
 * FTP: PORT/EPRT). The heuristic, its limits and the errnos are in
 * README.md ("Incoming connections"); in short:
 *
 * 1. Every TCP connection set up through a chain is remembered by socket
 *    identity (proxied connections, bind_rec.c): the chain that carried
 *    it, what its last hop was asked for, its peer as the program sees it,
 *    and the CONNECT reply's BND. getsockname() of such a socket answers
 *    BND (the proxy's side): what curl and lftp advertise.
 * 2. bind() of a TCP socket to a BND address handed out that way, port 0,
 *    is accepted: the real socket binds it if it is this machine's, else
 *    the wildcard (a fixed port is always the kernel's bind).
 * 3. The first getsockname() or listen() of a TCP socket bound to port 0
 *    at the wildcard, at a handed-out address or at the kernel's local
 *    address of a live proxied connection (what getsockname() of it
 *    shows when the proxy gave no BND: an HTTP hop, microsocks), or (for
 *    listen()) never bound, never at loopback, while a proxied connection
 *    is alive,
 *    sends a BIND request through that connection's hops for its
 *    destination (the connection whose address it is, else the latest), inside the call, bounded by the handshake timeout. The
 *    first reply is the listening socket's getsockname() from then on.
 * 4. listen() listens for real and a thread waits for the second reply;
 *    when it comes, the thread connects a private loopback socket to the
 *    real listener, so the kernel itself makes it readable. accept()/
 *    accept4() recognise that connection and put the BIND connection under
 *    the descriptor number the kernel gave it.
 *
 * A socket bound to a fixed port, or to a loopback or other local
 * address, never gets any of this: a server's listener stays local. */
#ifndef SFY_BIND_H
#define SFY_BIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"
#include "chain.h"
#include "config.h"

struct sfy_bind;

/* ---- the trigger, as pure functions (unit-tested) ---- */

/* Where a program bound (or asked to bind) a TCP socket. */
enum sfy_bind_at {
	SFY_BIND_AT_NONE,       /* never bound: listen() autobinds the wildcard */
	SFY_BIND_AT_WILDCARD,   /* 0.0.0.0 or :: */
	SFY_BIND_AT_HANDED,     /* a BND address socksify handed out (rule 2) */
	SFY_BIND_AT_PROXIED,    /* the kernel's local address of a live proxied
				   connection: what a program advertises when
				   getsockname() of it shows no BND */
	SFY_BIND_AT_LOOPBACK,   /* 127/8, ::1, ::ffff:127/104 */
	SFY_BIND_AT_OTHER,      /* any other local address */
};

/* The address's kind. handed: the BND addresses handed out (sockaddrs of
 * either family, nhanded of them); locals: the kernel's local addresses of
 * the live proxied connections (nlocals). An address of the wildcard or
 * loopback kind is that kind even if it is in a list (a local proxy's
 * connections are on loopback: they never make a loopback listener a BIND);
 * handed-out comes before local. */
enum sfy_bind_at sfy_bind_at_of(const struct sockaddr *sa, socklen_t len,
				const struct sockaddr_storage *handed, size_t nhanded,
				const struct sockaddr_storage *locals, size_t nlocals);

/* What the trigger looks at. */
struct sfy_bind_ask {
	enum sfy_bind_at at;
	uint16_t port;          /* the port the program asked for (0: any) */
	bool listen_call;       /* listen() (else getsockname()) */
	bool connected;         /* the socket has a peer */
	bool have_proxied;      /* a proxied connection is alive */
	bool off;               /* bind: off */
};

/* Does this call send a BIND? Only for a wildcard, handed-out or proxied
 * connection's local address asked with port 0 (or, at listen(), a socket
 * never bound), never for
 * loopback, other local addresses or fixed ports, only while a proxied
 * connection is alive, never with bind: off. */
bool sfy_bind_triggers(const struct sfy_bind_ask *a);

/* Do a and b name the same IP (ports aside; an IPv4 address and its
 * v4-mapped form are the same)? False unless both are AF_INET/AF_INET6 of
 * their full length. */
bool sfy_bind_same_ip(const struct sockaddr *a, socklen_t alen, const struct sockaddr *b,
		      socklen_t blen);

/* ---- addresses as a socket shows them (bind.c; for the BIND files) ---- */

/* a as a sockaddr of family (v4-mapped into AF_INET6); 0 when it cannot be. */
socklen_t sfy_bind_in_family(const struct sfy_addr *a, int family, struct sockaddr_storage *ss);
/* ss (n bytes) into the caller's sa and len, truncated as getsockname() does. */
void sfy_bind_copy_out(const struct sockaddr_storage *ss, socklen_t n, struct sockaddr *sa,
		       socklen_t *len);

/* ---- proxied connections (bind_rec.c) ---- */

/* The chain set-up of fd's socket succeeded. idfd: a descriptor of the same
 * socket to take its identity from (fd itself, or the async driver's
 * private copy); peer: the program's getpeername(). Connections without
 * hops (direct routes) are not remembered, nor any with bind: off. */
void sfy_bind_note_proxied(int fd, int idfd, const struct sfy_config *cfg,
			   const struct sockaddr *peer, socklen_t peer_len,
			   const struct sfy_chain_report *rep);

/* getsockname() of a proxied TCP socket (fd has a recorded peer): its
 * CONNECT reply's BND in the socket's family. False: the kernel's answer
 * (not proxied, bind: off, BND all zero or not showable, or a socket the
 * program bound to an address or port of its choice before connect()). */
bool sfy_bind_proxied_sockname(int fd, struct sockaddr *sa, socklen_t *len);

/* Has the process ever set up a proxied TCP connection? One atomic load:
 * the gate of listen()'s look at a socket never bound. */
bool sfy_bind_any_proxied(void);

/* ---- a listening socket's BIND (bind.c) ---- */

/* The hooks (hooks_bind.c), each returning what the call returns: 0 or
 * -errno; 1 means "not ours: the real call". */
int sfy_bind_on_bind(int fd, const struct sockaddr *sa, socklen_t len);
int sfy_bind_on_getsockname(int fd, struct sockaddr *sa, socklen_t *len);
int sfy_bind_on_listen(int fd, int backlog);
/* accept4(): the new fd, -errno, or 1 (the real call). */
int sfy_bind_on_accept(int fd, struct sockaddr *sa, socklen_t *len, int flags);

/* References (the fd registry's entries hold one each). The last put
 * tears the BIND down: its connection closed, its waiter joined. */
struct sfy_bind *sfy_bind_ref(struct sfy_bind *b);
void sfy_bind_put(struct sfy_bind *b);

/* The BINDs' own descriptors (>= 100), like the other modules' (hooks_fd.c):
 * the program's close() or dup2()/dup3() of a number that is one of them
 * moves ours to another number first (after waiting for a BIND request in
 * flight on it), so we never read, write or close a number the program has
 * put something else on. */
void sfy_bind_evict(int fd);
/* Ours within [first, last], for close_range()/closefrom() to close around:
 * at most max into out (unsorted); how many. closing: a BIND whose
 * descriptors do not fit is stopped and left to the program's range (its
 * accept() reports ECONNABORTED). */
#define SFY_BIND_KEEP 48
int sfy_bind_guarded_in(unsigned first, unsigned last, int out[], int max, bool closing);

#endif
