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

#include <sys/types.h>

/* fd's socket starts its set-up: take its registrations out of every epoll
 * set (remembered in the shadow table). Called by connect() before it
 * returns EINPROGRESS, after the set-up is marked pending. */
void sfy_ready_hide(int fd);

/* The set-up of socket (dev, ino) ended (success or failure), already
 * marked so: put its registrations back and wake poll/select waiters.
 * Called by the driver, and by whoever sees a set-up end first. */
void sfy_ready_show(dev_t dev, ino_t ino);

#endif
