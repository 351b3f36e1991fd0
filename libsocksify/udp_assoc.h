/* UDP through a SOCKS5 UDP ASSOCIATE (RFC 1928 section 7): one session per
 * UDP socket that talks to a non-bypass destination, holding the TCP control
 * connection through the chain (the association lives exactly as long as
 * it), the relay address, and the destination of a connect()ed socket.
 *
 * A session lives in the per-fd registry (fdreg.h): the entry of the UDP
 * socket holds a reference, and the control connection's fd has an entry
 * too, tagged, so that a program that closes or dup2()s over it (daemons
 * closing every fd) kills that one association instead of corrupting it.
 *
 * Threads: sessions are reference counted; a lookup takes a reference under
 * the registry's lock (held for a few loads, never across I/O), so close()
 * in one thread cannot free a session another thread is sending with.
 * Forks: the child shares the kernel sockets and gets a copy of the
 * registry, so its association keeps working as long as the control
 * connection lives (the parent's copy of the control fd keeps it open even
 * if the child closes its own). A vfork() child changes nothing (fdreg.h). */
#ifndef SFY_UDP_ASSOC_H
#define SFY_UDP_ASSOC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "addr.h"
#include "config.h"
#include "socks5.h"

/* The largest UDP payload an IPv4 datagram carries: 65535 - 20 (IP header)
 * - 8 (UDP header). Header + data above it cannot be sent to an IPv4 relay. */
#define SFY_UDP_MAX_V4 65507
/* IPv6 without jumbograms: 65535 - 8; the IPv6 header is not counted. */
#define SFY_UDP_MAX_V6 65527
/* How often a send checks the control connection for a close by the proxy
 * (one extra recv() syscall): often enough that a dead association is
 * reported within a fraction of a second, rarely enough that a stream of
 * datagrams pays nothing measurable. */
#define SFY_UDP_CTL_CHECK_MS 100
/* After a failed association, sends fail with the same error without asking
 * the chain again for this long: a program retrying in a loop must not turn
 * into a flood of TCP handshakes and log lines. */
#define SFY_UDP_RETRY_MS 1000

enum sfy_udp_kind {
	SFY_UDP_SESS_ASSOC,     /* an association is up (or was: see dead) */
	SFY_UDP_SESS_FAILED,    /* association failed with err until retry_at */
	SFY_UDP_SESS_BLOCKED,   /* policy refuses: only remembers the log line */
	/* The DNS responder answered this socket (dnsresp_udp.h): its
	 * receive hooks report our loopback sockets as the nameservers; with
	 * a peer, it is connected to nameserver ns (really: to our socket). */
	SFY_UDP_SESS_DNS,
	/* connect()ed to a relayed destination that has no association yet
	 * (the first send or receive opens it): only the peer, and what
	 * getsockname() says, are recorded. */
	SFY_UDP_SESS_LAZY,
};

struct sfy_udp_sess {
	atomic_int refs;
	enum sfy_udp_kind kind;
	int family;                     /* of the program's UDP socket */
	/* The chain (route.h: the route's cfg) the association goes through,
	 * and its verdict (a chain index or SFY_VIA_TOP) for log lines. */
	const struct sfy_config *cfg;
	int via;
	atomic_bool chain_logged;       /* "another chain" said once */
	atomic_int ctl;                 /* control connection, -1 once gone */
	atomic_bool dead;               /* control connection lost */
	atomic_bool dead_logged;
	atomic_bool block_logged;
	_Atomic int64_t ctl_checked_ms;
	int err;                        /* FAILED: the errno (negative) */
	int64_t retry_at;               /* FAILED: sfy_now_ms() after which to retry */

	/* The relay, as a sockaddr of the program's socket family. */
	struct sockaddr_storage relay;
	socklen_t relay_len;
	size_t max_dgram;               /* SFY_UDP_MAX_V4 or _V6, by relay family */

	/* connect(): the destination sends without an address go to. Guarded by
	 * one lock of udp_assoc.c (sfy_udp_peer_*()); peer_set is also read
	 * without it as a hint. */
	atomic_bool peer_set;
	bool peer_blocked;              /* connected to a refused destination */
	struct sfy_addr peer;           /* as sent in the header (names for fakes) */
	struct sockaddr_storage peer_sa;        /* as the program gave it */
	socklen_t peer_sa_len;

	int ns;                         /* DNS: the nameserver (dnsresp.h) */
	/* The source address the kernel would pick for the connected peer
	 * (a lazy connect()): getsockname() reports it with the socket's own
	 * port while the socket is bound to the wildcard. 0: none. */
	struct sockaddr_storage local;
	socklen_t local_len;
};

/* ---- sessions (the registry, fdreg.h, maps fds to them) ---- */

/* A new session with one reference; ctl = -1. NULL if out of memory. */
struct sfy_udp_sess *sfy_udp_sess_new(enum sfy_udp_kind kind, int family);
/* Drops a reference; the last one closes the control connection (with the
 * real close(), if the number is still ours) and frees the session. NULL is
 * ignored. */
void sfy_udp_sess_put(struct sfy_udp_sess *s);
/* The control fd went away behind the session (the program closed it, or
 * its number now holds another file): no longer ours to close, and the
 * association is dead. Called by the registry under its lock. */
void sfy_udp_ctl_lost(struct sfy_udp_sess *s);

/* The connect()ed destination of s: true with a copy of what was asked for
 * (dst and/or sa may be NULL), false when the socket is not connected. */
bool sfy_udp_peer_get(struct sfy_udp_sess *s, struct sfy_addr *dst,
		      struct sockaddr_storage *sa, socklen_t *salen);
/* Records (or with dst == NULL clears) the connected destination. */
void sfy_udp_peer_set(struct sfy_udp_sess *s, const struct sfy_addr *dst,
		      const struct sockaddr *sa, socklen_t len);

/* ---- datagram codec ---- */

/* Builds the SOCKS5 UDP header for dst into hdr; fails with -EMSGSIZE when
 * header + payload exceeds max_dgram. Returns the header length. */
ssize_t sfy_udp_encode(uint8_t hdr[static SFY_S5_UDP_HDR_MAX], const struct sfy_addr *dst,
		       size_t payload, size_t max_dgram);

enum sfy_udp_verdict {
	SFY_UDP_DELIVER,
	SFY_UDP_DROP_MALFORMED,
	SFY_UDP_DROP_FRAG,      /* RFC 1928: fragments may be dropped; we never
				   reassemble, so every FRAG != 0 is dropped */
	SFY_UDP_DROP_FAMILY,    /* source not expressible in the socket family */
};
/* Parses a datagram from the relay: the payload starts at *off, and its
 * source as a sockaddr of family (v4-mapped for AF_INET6) is written to
 * src/srclen. A domain-name source becomes its fake address when remote is
 * true (the same one the program resolved), else it is dropped. */
enum sfy_udp_verdict sfy_udp_decode(const uint8_t *buf, size_t len, int family, bool remote,
				    size_t *off, struct sockaddr_storage *src,
				    socklen_t *srclen);

/* ---- associations ---- */

/* Can this configuration carry UDP at all? Every hop that may be last must
 * be SOCKS5. 0 or -EPROTONOSUPPORT with why set. */
int sfy_udp_chain_ok(const struct sfy_config *cfg, const char **why);
/* Opens the control connection for UDP socket fd through the chain, asks
 * for UDP ASSOCIATE and fills s (kind ASSOC, ctl, relay). 0 or -errno
 * (logged once). */
int sfy_udp_associate(const struct sfy_config *cfg, int fd, struct sfy_udp_sess *s);
/* Is the control connection still up? Checks at most every
 * SFY_UDP_CTL_CHECK_MS; logs the loss once. */
bool sfy_udp_alive(struct sfy_udp_sess *s);
/* Is sa the relay of s (address and port)? */
bool sfy_udp_from_relay(const struct sfy_udp_sess *s, const struct sockaddr *sa,
			socklen_t len);

/* fd's own address into ss, after binding it to the wildcard (of family)
 * port 0 if it has no port yet: what the kernel's autobind does at a UDP
 * socket's first send or connect. 0 or -errno. */
int sfy_udp_autobind(int fd, int family, struct sockaddr_storage *ss, socklen_t *sl);

/* ---- entry points for hooks_tcp.c (defined in hooks_udp.c) ---- */
struct sfy_dest;
/* connect() of a UDP socket that sfy_classify() called SFY_V_PROXY,
 * SFY_V_BLOCK (-ECONNREFUSED, logged once per destination) or
 * SFY_V_DIRECT_NAME (the name resolved here and the socket connected to
 * it): 0 or -errno, or 1 when the real connect() with the program's
 * address is to follow (udp: direct). */
int sfy_udp_connect(int fd, const struct sfy_dest *d);
/* After a real connect() (a bypass destination, a disconnect): forget the
 * destination recorded for a socket connected through the relay, so that
 * getpeername() and send() are the kernel's again. */
void sfy_udp_clear_peer(int fd);
ssize_t sfy_udp_sendto(int fd, const void *buf, size_t n, int flags,
		       const struct sockaddr *sa, socklen_t len);
/* getpeername() of a UDP socket connect()ed through the relay: the
 * destination the program asked for. False when fd is not one. */
bool sfy_udp_getpeername(int fd, struct sockaddr *sa, socklen_t *len);

/* The first send or receive on a socket with a lazy session (a UDP
 * connect() not yet carried out): carries it out. 0 or -errno. */
int sfy_udp_lazy_open(int fd, struct sfy_udp_sess *lz);

/* The session of fd if it has an association, with a reference (put it
 * with sfy_udp_sess_put()), or NULL. */
struct sfy_udp_sess *sfy_udp_assoc_get(int fd);
/* Negative errno -> -1 with errno set, for the interposers' return. */
ssize_t sfy_udp_ret(ssize_t r);

#endif
