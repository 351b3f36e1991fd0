/* The library's own threads. */
#ifndef SFY_THREAD_H
#define SFY_THREAD_H

#include <pthread.h>

/* pthread_create(t, attr, fn, arg) with every signal blocked in the new
 * thread: the program's signal handlers must run in its own threads only,
 * never on ours (a thread inherits its creator's mask, so the creator's is
 * set around the call and restored). pthread_create's result. */
int sfy_thread_start(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

#endif
