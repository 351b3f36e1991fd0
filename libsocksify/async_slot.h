/* The shared table of pending set-ups (async.h): one slot per non-blocking
 * connect() whose chain is being built, in a MAP_SHARED anonymous mapping
 * made at load, so that a fork()ed child sees the same slots and waits for
 * the parent's driver instead of touching the handshake.
 *
 * A slot is named by (pointer, generation): the generation changes every
 * time the slot is claimed, so a reference kept by a dup()ed fd or by a
 * child after the slot was reused for another socket is seen as stale
 * ("ended, result unknown": ask the kernel). The state and generation share
 * one 32-bit word, the futex a blocked reader sleeps on (a shared futex:
 * the parent's driver wakes a waiting child).
 *
 * Reuse: a slot whose set-up succeeded is free at once (its readers see a
 * stale generation and ask the kernel, which has the connected socket); a
 * failed one keeps its error until it was reported once (SO_ERROR, I/O,
 * connect) or it ended more than SFY_ASLOT_KEEP_MS ago. */
#ifndef SFY_ASYNC_SLOT_H
#define SFY_ASYNC_SLOT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* What sfy_aslot_state() says. 0: the generation is not the slot's any more
 * (the set-up ended long ago; its result is the kernel's to tell). */
#define SFY_ASLOT_PENDING 1
#define SFY_ASLOT_OK      2
#define SFY_ASLOT_FAILED  3

/* A failed set-up whose error nobody collected is kept this long. */
#define SFY_ASLOT_KEEP_MS 60000

struct sfy_aslot;

struct sockaddr;

/* Claims a slot for the socket open on fd, PENDING, owned by this process
 * (whose driver will end it), and counts it in sfy_async_count. peer: the
 * destination the program asked for (getpeername() of any descriptor of
 * the socket). NULL when fd is not open or the table is full (the caller
 * takes the blocking path). */
struct sfy_aslot *sfy_aslot_claim(int fd, const struct sockaddr *peer, unsigned peer_len,
				  uint32_t *gen);

/* The set-up of socket (dev, ino) among those this process counts: a
 * descriptor of it that the registry does not know (dup()ed before
 * connect(), inherited). Lock-free. */
bool sfy_aslot_find(dev_t dev, ino_t ino, struct sfy_aslot **s, uint32_t *gen);
/* The peer given to sfy_aslot_claim() (0 if none fits in cap). */
unsigned sfy_aslot_peer(const struct sfy_aslot *s, struct sockaddr *sa, unsigned cap);

/* The set-up ended: err 0 (up) or a positive errno. reported: the error
 * already went to the program (connect() returned it). Wakes every waiter
 * in every process, then uncounts and shows (sfy_aslot_seen_end). */
void sfy_aslot_end(struct sfy_aslot *s, uint32_t gen, int err, bool reported);

/* SFY_ASLOT_PENDING/OK/FAILED, or 0 when gen is stale. */
int sfy_aslot_state(const struct sfy_aslot *s, uint32_t gen);

/* Does the slot (still at gen) describe socket (dev, ino)? */
bool sfy_aslot_is(const struct sfy_aslot *s, uint32_t gen, dev_t dev, ino_t ino);

/* The failure's positive errno, exactly once per set-up across every
 * process sharing the socket; 0 when there is none to report (success,
 * pending, stale, already reported). */
int sfy_aslot_take_error(struct sfy_aslot *s, uint32_t gen);

/* Blocks until the set-up at gen is no longer pending. A set-up whose owner
 * process died without ending it is ended here (ECONNABORTED). */
void sfy_aslot_wait(struct sfy_aslot *s, uint32_t gen);

/* In a process that does not own the set-up (a child that inherited the
 * socket): ends it as failed if its owner died (ECONNABORTED) or it is
 * still pending past its expiry (ETIMEDOUT: the owner exec()ed or its
 * driver is gone), so that no descriptor waits for ever. */
void sfy_aslot_reap(struct sfy_aslot *s, uint32_t gen);
/* The owner sets when the set-up must have ended: the chain's deadline
 * plus a margin. */
void sfy_aslot_set_expiry(struct sfy_aslot *s, uint32_t gen, int64_t ms);

/* This process saw the set-up end (or its slot reused): drops it from
 * sfy_async_count and puts its epoll registrations back
 * (sfy_ready_show), once per process. Never call it under a lock that
 * sfy_async_pending() takes. */
void sfy_aslot_seen_end(struct sfy_aslot *s, uint32_t gen);

/* Looks at every set-up this process counts and does sfy_aslot_seen_end()
 * for those that ended: for a process that inherited set-ups (fork) and
 * may never look at their fds again. Same lock rule. */
void sfy_aslot_sweep(void);

/* The owner's descriptors of the socket (the fd registry's entries): ref
 * for each entry made, unref for each dropped. Only the owner process
 * counts (a child's copies of the entries are not the owner's). When the
 * last one goes while the set-up is pending it is aborted: the abort flag
 * is set and sfy_aslot_abort_hook (the driver's wake-up) is called. Called
 * under the fd registry's lock: neither blocks. */
void sfy_aslot_ref(struct sfy_aslot *s, uint32_t gen);
void sfy_aslot_unref(struct sfy_aslot *s, uint32_t gen);

/* Asks the owner's driver to abort the set-up (shutdown() while pending, or
 * the last descriptor gone). */
void sfy_aslot_abort(struct sfy_aslot *s, uint32_t gen);
bool sfy_aslot_aborted(const struct sfy_aslot *s, uint32_t gen);
/* The abort was for a close() of what proved not to be the last descriptor
 * (one the registry did not know): the set-up goes on. */
void sfy_aslot_unabort(struct sfy_aslot *s, uint32_t gen);
extern void (*_Atomic sfy_aslot_abort_hook)(void);

/* Is this process the one whose driver runs the set-up? */
bool sfy_aslot_mine(const struct sfy_aslot *s);
/* No descriptor of the owner's is left (the set-up was aborted by close). */
bool sfy_aslot_orphan(const struct sfy_aslot *s, uint32_t gen);
/* The slot's index, 0 .. SFY_ASLOT_N - 1: for per-process side tables. */
#define SFY_ASLOT_N 4096
unsigned sfy_aslot_index(const struct sfy_aslot *s);

#endif
