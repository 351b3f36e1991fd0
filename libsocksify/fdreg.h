/* The one per-fd registry: everything socksify remembers about a program's
 * descriptor -- the destination getpeername() answers for a tunnelled TCP
 * socket, the UDP session of a UDP socket, the tag of a UDP session's
 * control connection, and (reserved) a pending non-blocking connect.
 *
 * Identity. An entry is keyed by fd and records the socket's identity
 * (st_dev + st_ino from fstat() when it was made). Every lookup checks the
 * descriptor against it: a socket closed where no hook saw it (inside glibc,
 * syscall(SYS_close), io_uring) whose number now belongs to another file is
 * treated as absent and its entry dropped -- a UDP session loses that
 * reference, a control tag marks its session dead. The next socket on the
 * number never inherits an old one's state.
 *
 * Cost. sfy_fdreg_has() is the pass-through test of every hot hook
 * (read/write/send/recv/close/dup): two atomic loads, no lock, no syscall.
 * Only an fd with an entry pays an fstat() per lookup. The lock is held for
 * a few loads and stores, never across a syscall that can block.
 *
 * Processes. fork(): the child owns its copy (a pthread_atfork handler makes
 * it the owner). vfork(), posix_spawn(), clone(CLONE_VM): the child shares
 * our memory, so there the registry is read-only -- close()/dup2() in such
 * a child (CPython's subprocess closes fds before exec) only reach the
 * kernel, and lookups never drop. A process made by a raw clone() without
 * CLONE_VM (or glibc's _Fork()) runs no atfork handler and also stays
 * read-only: its entries are still checked on every lookup, they just are
 * not freed there.
 *
 * Dup. dup()/dup2()/dup3() give the new fd its own entry with the same
 * identity (the same socket): a copy of the peer address and a reference
 * to the same UDP session. A control tag is not copied. */
#ifndef SFY_FDREG_H
#define SFY_FDREG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct sfy_udp_sess;
struct sfy_aslot;
struct sfy_dnstcp;
struct sfy_bind;

/* What an entry holds: the mask of sfy_fdreg_has(). */
#define SFY_FDREG_PEER    1u   /* the destination getpeername() answers (TCP) */
#define SFY_FDREG_UDP     2u   /* a UDP session, with the entry's reference */
#define SFY_FDREG_CTL     4u   /* the control connection of a UDP session */
/* A non-blocking connect() whose chain is being set up (async.h): the
 * entry points at the set-up's shared slot (async_slot.h). dup()ed fds
 * share the slot (the pending state belongs to the socket, not the
 * number); each of the owner's entries is one reference, and dropping the
 * last while pending aborts the set-up. */
#define SFY_FDREG_PENDING 8u
/* A TCP socket connected to the DNS responder's loopback listener
 * (dnsresp_tcp.h): the entry holds a reference to the connection, whose
 * server end the write hooks answer on. dup()ed fds share it. */
#define SFY_FDREG_DNS     16u
/* A TCP socket the program bound to port 0 at the wildcard or at an
 * address socksify handed out, or that it listens on (bind.h): the entry
 * holds a reference to the socket's BIND state. dup()ed fds share it; the
 * last reference gone (the listener closed) tears the BIND down. */
#define SFY_FDREG_BIND    32u
#define SFY_FDREG_ANY     63u

/* Might fd have an entry holding any of `what`? Two atomic loads. A true
 * answer may be stale (the lookups below check identity); false is exact
 * for every change this process made through the registry. */
bool sfy_fdreg_has(int fd, unsigned what);

/* Is this process the owner of its memory (not a vfork() child that shares
 * its parent's)? Only the owner changes process-wide state. */
bool sfy_fdreg_owner(void);

/* ---- getpeername() of a tunnelled TCP socket ---- */

/* Records sa (AF_INET/AF_INET6) for fd. 0 or -errno (out of range, not a
 * descriptor, a vfork() child). */
int sfy_fdreg_peer_set(int fd, const struct sockaddr *sa, socklen_t len);
/* Copies the address like getpeername() (truncating to *len, setting *len
 * to its full length). False if fd has none. */
bool sfy_fdreg_peer_get(int fd, struct sockaddr *sa, socklen_t *len);

/* ---- UDP sessions (refcounted by udp_assoc.c) ---- */

/* The session of UDP socket fd with a new reference, or NULL. */
struct sfy_udp_sess *sfy_fdreg_udp_get(int fd);
/* Makes s the session of fd unless it has one; the entry takes its own
 * reference. Returns s, or the existing session (with a reference for the
 * caller, s untouched), or NULL (no entry possible). */
struct sfy_udp_sess *sfy_fdreg_udp_install(int fd, struct sfy_udp_sess *s);
/* Removes s from fd (if it is still fd's session), dropping the entry's
 * reference: a failed association about to be retried. */
void sfy_fdreg_udp_remove(int fd, struct sfy_udp_sess *s);
/* Tags ctl as the control connection of s (no reference: the session's
 * last reference removes the tag). 0 or -errno. */
int sfy_fdreg_ctl_tag(int ctl, struct sfy_udp_sess *s);
/* The last reference of s is gone: removes ctl's tag. True when ctl is
 * still the socket we tagged, so the caller may close it; false when the
 * number is not ours any more (closed and reused behind our back). */
bool sfy_fdreg_ctl_release(int ctl, const struct sfy_udp_sess *s);

/* ---- a pending non-blocking connect (async.h) ---- */

/* Marks fd's socket as set up by slot (at generation gen), one reference.
 * 0 or -errno. */
int sfy_fdreg_pending_set(int fd, struct sfy_aslot *slot, uint32_t gen);
/* True when fd has a pending entry; *slot is NULL when the slot no longer
 * describes this socket (its set-up ended long ago). */
bool sfy_fdreg_pending_get(int fd, struct sfy_aslot **slot, uint32_t *gen);
/* The program saw the set-up end: drops the pending mark (and the
 * recorded peer unless keep_peer: a failed set-up is not connected). */
void sfy_fdreg_pending_drop(int fd, bool keep_peer);

/* ---- a TCP connection to the DNS responder (dnsresp_tcp.h) ---- */

/* Makes c fd's connection (the entry takes a reference). 0 or -errno. */
int sfy_fdreg_dns_set(int fd, struct sfy_dnstcp *c);
/* fd's connection with a new reference, or NULL. */
struct sfy_dnstcp *sfy_fdreg_dns_get(int fd);

/* ---- a listening socket's BIND (bind.h) ---- */

/* Makes b fd's BIND state (the entry takes a reference). 0 or -errno. */
int sfy_fdreg_bind_set(int fd, struct sfy_bind *b);
/* fd's BIND state with a new reference, or NULL. */
struct sfy_bind *sfy_fdreg_bind_get(int fd);

/* ---- the descriptor's life: the close/dup hooks ---- */

/* fd is going away (close, dup2 over it): drops its entry, whatever socket
 * it described. True if there was one. Nothing in a vfork() child. */
bool sfy_fdreg_close(int fd);
/* close_range()/closefrom(): sfy_fdreg_close() for [first, last]; walks
 * only the parts of the table that exist. */
void sfy_fdreg_close_range(unsigned first, unsigned last);
/* newfd is now a duplicate of oldfd: newfd gets a copy of oldfd's entry
 * (peer, a reference to the UDP session). Any entry of newfd must already
 * have been dropped (sfy_fdreg_close()). */
void sfy_fdreg_dup(int oldfd, int newfd);

#endif
