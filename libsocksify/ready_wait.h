/* The poll family's waiters (ready_wait.c), as the epoll side (ready.c)
 * sees them: a show() wakes them, a close of a waiter's eventfd number
 * takes it away from its thread. */
#ifndef SFY_READY_WAIT_H
#define SFY_READY_WAIT_H

/* Registers the waiters' fork handlers (once; at load, ready.c): a
 * fork() child must know it is one before its first slow wait. */
void sfy_ready_wait_setup(void);

/* Signals the eventfd of every thread waiting in the slow path. */
void sfy_ready_wake_waiters(void);

/* The program closes fd (or [first, last]): if a waiter's eventfd lives
 * there, its thread stops using it (woken first, so it looks again) and
 * makes a new one when it needs one. */
void sfy_ready_waiter_closed(int fd);
void sfy_ready_waiter_close_range(unsigned first, unsigned last);

#endif
