/* Readiness while a non-blocking connect is being set up (async.h): the
 * program must see no event on the socket until the last hop's reply is
 * in, then exactly what the kernel shows for a connected (or failed)
 * socket, through every readiness API.
 *
 * epoll: epoll_create, epoll_create1 and epoll_ctl are interposed and every registration is
 * kept in a shadow table (epfd, fd, events, data, the socket's identity).
 * A socket's registrations are taken out of the kernel while its set-up is
 * pending and added back when it ends: the kernel's ep_insert polls the
 * socket and wakes level- and edge-triggered, EPOLLONESHOT and
 * EPOLLEXCLUSIVE waiters alike, and nothing (not even EPOLLHUP/EPOLLERR,
 * which epoll reports whatever the mask) leaks while it is out. A
 * registration the program adds, modifies or deletes while hidden changes
 * only the shadow, with the errors the kernel would give. epoll_wait and
 * its forms are not interposed: they cost nothing.
 *
 * poll/ppoll/select/pselect (and __poll_chk/__ppoll_chk): one atomic load
 * (sfy_async_any()) when nothing is pending; otherwise pending fds are
 * polled as -1 plus a per-thread eventfd that sfy_ready_show() signals,
 * until a real event or the caller's timeout. */
#ifndef SFY_READY_H
#define SFY_READY_H

#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/types.h>
#include <time.h>

/* fd's socket starts its set-up: take its registrations out of every epoll
 * set (remembered in the shadow table). Called by connect() before it
 * returns EINPROGRESS, after the set-up is marked pending. */
void sfy_ready_hide(int fd);

/* A fresh socket was dup3()ed under fd before its set-up began (hop 1 of
 * the other address family): the program's registrations of fd named the
 * old file, which the kernel dropped with it; add them again for the new
 * one, so they survive the replacement. */
void sfy_ready_replaced(int fd);

/* The set-up of socket (dev, ino) ended (success or failure), already
 * marked so: put its registrations back and wake poll/select waiters.
 * Called by the driver, and by whoever sees a set-up end first. */
void sfy_ready_show(dev_t dev, ino_t ino);

/* ---- what the hooks call (hooks_epoll.c, hooks_poll.c, hooks_fd.c) ----
 *
 * Locks: sfy_ready_hide() and sfy_ready_show() take the shadow table's
 * lock and call sfy_async_pending() under it, so their callers must hold
 * no lock that sfy_async_pending() takes. */

/* Epoll fd numbers this process tracks plus per-thread eventfds alive:
 * while 0 the close/dup hooks have nothing to tell (one atomic load). */
extern atomic_int sfy_ready_watch;

static inline bool sfy_ready_watching(void)
{
	return atomic_load_explicit(&sfy_ready_watch, memory_order_relaxed) > 0;
}

/* epoll_create*() returned epfd (>= 0): a new, empty epoll set there. */
void sfy_ready_epoll_new(int epfd);
/* epoll_ctl() with the shadow table: the kernel's result (0, or -1 and
 * errno), the registration remembered or, for a socket whose set-up is
 * pending, kept out of the kernel with the errors the kernel would give. */
int sfy_ready_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);

/* fd is about to be closed (close, dup2/dup3 over it), while the number
 * is still the program's: forget it as an epoll set (the set's
 * registrations go with its last number) and its registrations, and stop
 * using it if it is a waiter's eventfd. */
void sfy_ready_fd_closed(int fd);
/* close_range()/closefrom() of [first, last] (inclusive). */
void sfy_ready_fd_close_range(unsigned first, unsigned last);
/* newfd is now a duplicate of oldfd (dup, dup2, dup3, F_DUPFD): a copy of
 * an epoll set's number names the same set. newfd's old life was already
 * ended by sfy_ready_fd_closed(). */
void sfy_ready_fd_dup(int oldfd, int newfd);

/* The slow paths of the poll family, for callers that already saw
 * sfy_async_any(): ppoll() semantics (tmo NULL: no limit; mask NULL: none)
 * with pending fds reported as nothing until their set-up ends. When left
 * is non-NULL it receives the time that was left (the raw system calls and
 * select() report it). */
int sfy_ready_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
		    const sigset_t *mask, struct timespec *left);
/* pselect() semantics on top of sfy_ready_ppoll(), same left. */
int sfy_ready_pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
		      const struct timespec *tmo, const sigset_t *mask, struct timespec *left);

#endif
