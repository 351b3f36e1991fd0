/* The slow paths of poll/ppoll/select/pselect (ready.h): taken only while
 * some set-up may be pending (sfy_async_any()).
 *
 * A pending fd is polled as -1 (the kernel reports nothing for it) and the
 * thread's eventfd is polled with the rest; sfy_ready_show() signals the
 * eventfd of every thread that is waiting, and the thread looks at the
 * pending fds again. The eventfd is made at a thread's first slow wait,
 * close-on-exec at a number >= 100 (out of the way of the numbers programs
 * use), and closed at the thread's exit; a waiter is in the list that
 * show() signals only while it waits. A program that closes the number
 * (closefrom() and the like) takes it away: the thread is woken first and
 * makes a new one next time.
 *
 * A forked child (the parent's driver ends the set-ups it inherited and
 * cannot signal it) and a thread without an eventfd wait in slices of at
 * most 10 ms and look again. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "async.h"
#include "ready.h"
#include "ready_wait.h"
#include "real.h"

#define SLICE_NS 10000000L
#define EFD_MIN 100
#define STACK_FDS 64
#define NSEC 1000000000L

struct waiter {
	/* Both under wlock. */
	int fd;                 /* the eventfd, -1: none */
	bool waiting;
	struct waiter *prev, *next;
};

static pthread_mutex_t wlock = PTHREAD_MUTEX_INITIALIZER;
/* As ready.c's `holding`: a signal handler's close() on a thread that holds
 * wlock skips the waiter list instead of deadlocking. */
static __thread bool wholding __attribute__((tls_model("initial-exec")));

static void wtake(void)
{
	wholding = true;
	pthread_mutex_lock(&wlock);
}

static void wgive(void)
{
	pthread_mutex_unlock(&wlock);
	wholding = false;
}
static struct waiter *waiters;
static pthread_key_t key;
static bool key_ok;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_bool forked;

/* Under wlock: w gives up its eventfd (close says whether we close it or
 * the program is about to). */
static void drop_efd_locked(struct waiter *w, bool close)
{
	if (w->fd < 0)
		return;
	if (close)
		sfy_real()->close(w->fd);
	w->fd = -1;
	atomic_fetch_sub(&sfy_ready_watch, 1);
}

static void destroy(void *p)
{
	struct waiter *w = p;
	wtake();
	drop_efd_locked(w, true);
	if (w->prev)
		w->prev->next = w->next;
	else
		waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	wgive();
	free(w);
}

static void at_prepare(void) { pthread_mutex_lock(&wlock); }  /* not wtake() */
static void at_parent(void) { pthread_mutex_unlock(&wlock); }

/* The eventfds are shared with the parent after fork(): the child closes
 * them (the other threads' records stay, unused: their threads are gone). */
static void at_child(void)
{
	for (struct waiter *w = waiters; w; w = w->next) {
		drop_efd_locked(w, true);
		w->waiting = false;
	}
	atomic_store(&forked, true);
	wgive();
}

static void setup(void)
{
	key_ok = pthread_key_create(&key, destroy) == 0;
	pthread_atfork(at_prepare, at_parent, at_child);
}

void sfy_ready_wait_setup(void)
{
	pthread_once(&once, setup);
}

/* This thread's waiter, NULL when none can be made. */
static struct waiter *me(void)
{
	sfy_ready_wait_setup();
	if (!key_ok)
		return NULL;
	struct waiter *w = pthread_getspecific(key);
	if (w)
		return w;
	if (!(w = calloc(1, sizeof(*w))))
		return NULL;
	w->fd = -1;
	if (pthread_setspecific(key, w) != 0) {
		free(w);
		return NULL;
	}
	wtake();
	w->next = waiters;
	if (waiters)
		waiters->prev = w;
	waiters = w;
	wgive();
	return w;
}

/* Under wlock: w's eventfd, made if it has none; -1 if none can be. */
static int efd_locked(struct waiter *w)
{
	if (w->fd >= 0)
		return w->fd;
	int e = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e < 0)
		return -1;
	int h = sfy_real()->fcntl(e, F_DUPFD_CLOEXEC, EFD_MIN);
	sfy_real()->close(e);
	if (h < 0)
		return -1;
	w->fd = h;
	atomic_fetch_add(&sfy_ready_watch, 1);
	return h;
}

/* Starts or ends a wait (w may be NULL); the eventfd to poll, or -1. */
static int begin(struct waiter *w)
{
	if (!w)
		return -1;
	wtake();
	w->waiting = true;
	int fd = efd_locked(w);
	wgive();
	return fd;
}

static void finish(struct waiter *w)
{
	if (!w)
		return;
	wtake();
	w->waiting = false;
	wgive();
}

/* Empties efd if it is still w's (under the lock: the number is ours). */
static void drain(struct waiter *w, int efd)
{
	wtake();
	if (w && w->fd == efd && efd >= 0) {
		uint64_t v;
		int saved = errno;
		while (sfy_real()->read(efd, &v, sizeof(v)) < 0 && errno == EINTR)
			;
		errno = saved;
	}
	wgive();
}

static void signal_locked(const struct waiter *w)
{
	uint64_t one = 1;
	int saved = errno;
	if (sfy_real()->write(w->fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, the waiter is awake anyway. */
	}
	errno = saved;
}

void sfy_ready_wake_waiters(void)
{
	wtake();
	for (struct waiter *w = waiters; w; w = w->next)
		if (w->waiting && w->fd >= 0)
			signal_locked(w);
	wgive();
}

void sfy_ready_waiter_close_range(unsigned first, unsigned last)
{
	if (wholding)
		return;
	wtake();
	for (struct waiter *w = waiters; w; w = w->next) {
		if (w->fd < 0 || (unsigned)w->fd < first || (unsigned)w->fd > last)
			continue;
		if (w->waiting)
			signal_locked(w);       /* it looks again, with a new one */
		drop_efd_locked(w, false);
	}
	wgive();
}

void sfy_ready_waiter_closed(int fd)
{
	if (fd >= 0)
		sfy_ready_waiter_close_range((unsigned)fd, (unsigned)fd);
}

/* ------------------------------------------------------------ time */

static struct timespec now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t;
}

static bool ts_valid(const struct timespec *t)
{
	return t->tv_sec >= 0 && t->tv_nsec >= 0 && t->tv_nsec < NSEC;
}

static struct timespec ts_add(struct timespec a, struct timespec b)
{
	struct timespec r = { a.tv_sec + b.tv_sec, a.tv_nsec + b.tv_nsec };
	if (r.tv_nsec >= NSEC) {
		r.tv_sec++;
		r.tv_nsec -= NSEC;
	}
	if (r.tv_sec < a.tv_sec)        /* overflow: as good as forever */
		r = (struct timespec){ LONG_MAX, 0 };
	return r;
}

/* end - now, 0 once past. */
static struct timespec left_until(struct timespec end)
{
	struct timespec n = now(), r = { end.tv_sec - n.tv_sec, end.tv_nsec - n.tv_nsec };
	if (r.tv_nsec < 0) {
		r.tv_sec--;
		r.tv_nsec += NSEC;
	}
	if (r.tv_sec < 0)
		r = (struct timespec){ 0, 0 };
	return r;
}

static bool ts_zero(struct timespec t)
{
	return t.tv_sec == 0 && t.tv_nsec == 0;
}

/* ------------------------------------------------------------ ppoll */

static bool pending(int fd)
{
	return fd >= 0 && sfy_async_pending(fd);
}

/* Some fd of fds is pending: wait with those out until a real event, the
 * deadline (end, NULL: none), a signal. */
static int wait_hiding(struct pollfd *fds, nfds_t n, const struct timespec *end,
		       const sigset_t *mask)
{
	struct pollfd stackbuf[STACK_FDS + 1];
	struct pollfd *copy = n < STACK_FDS ? stackbuf : calloc(n + 1, sizeof(*copy));
	if (!copy) {
		errno = ENOMEM;
		return -1;
	}
	struct waiter *w = me();
	/* In the list before the first look at the fds: a show() after that
	 * look signals us. */
	int efd = begin(w);
	int r;
	for (;;) {
		bool hidden = false;
		for (nfds_t i = 0; i < n; i++) {
			copy[i] = fds[i];
			copy[i].revents = 0;
			if (pending(fds[i].fd)) {
				copy[i].fd = -1;
				hidden = true;
			}
		}
		nfds_t m = n;
		if (hidden && efd >= 0)
			copy[m++] = (struct pollfd){ .fd = efd, .events = POLLIN };
		struct timespec slice, *sp = NULL;
		if (end) {
			slice = left_until(*end);
			sp = &slice;
		}
		if (hidden && (efd < 0 || atomic_load(&forked)) &&
		    (!sp || slice.tv_sec > 0 || slice.tv_nsec > SLICE_NS)) {
			slice = (struct timespec){ 0, SLICE_NS };
			sp = &slice;
		}
		r = sfy_real()->ppoll(copy, m, sp, mask);
		if (r < 0)
			break;
		if (m > n && copy[n].revents) {
			r--;
			drain(w, efd);
		}
		if (r > 0 || !hidden || (end && ts_zero(left_until(*end))))
			break;
		/* Woken, or a slice ended: look again (a new eventfd if the
		 * program took ours). */
		if (w && efd >= 0) {
			wtake();
			efd = efd_locked(w);
			wgive();
		}
	}
	int saved = errno;
	finish(w);
	if (r >= 0)
		for (nfds_t i = 0; i < n; i++)
			fds[i].revents = copy[i].revents;
	if (copy != stackbuf)
		free(copy);
	errno = saved;
	return r;
}

int sfy_ready_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
		    const sigset_t *mask, struct timespec *left)
{
	if (tmo && !ts_valid(tmo))
		return sfy_real()->ppoll(fds, n, tmo, mask);   /* EINVAL */
	struct timespec end;
	if (tmo)
		end = ts_add(now(), *tmo);
	nfds_t i = 0;
	while (i < n && !pending(fds[i].fd))
		i++;
	int r = i == n ? sfy_real()->ppoll(fds, n, tmo, mask)
		       : wait_hiding(fds, n, tmo ? &end : NULL, mask);
	if (left && tmo)
		*left = left_until(end);
	return r;
}

/* ------------------------------------------------------------ pselect */

#define LBITS (8 * (int)sizeof(unsigned long))

/* The bits as the kernel reads them: nfds of them, whatever FD_SETSIZE
 * says (beyond it is the caller's affair). */
static bool bit(const fd_set *s, int fd)
{
	const unsigned long *w = (const unsigned long *)(const void *)s;
	return s && (w[fd / LBITS] >> (fd % LBITS)) & 1;
}

static void set_bit(fd_set *s, int fd)
{
	unsigned long *w = (unsigned long *)(void *)s;
	w[fd / LBITS] |= 1ul << (fd % LBITS);
}

static void clear_bits(fd_set *s, int nfds)
{
	if (s)
		memset(s, 0, (size_t)(nfds + LBITS - 1) / LBITS * sizeof(unsigned long));
}

/* The kernel's select masks (fs/select.c). */
#define IN_SET (POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR)
#define OUT_SET (POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR)
#define EX_SET (POLLPRI)

int sfy_ready_pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
		      const struct timespec *tmo, const sigset_t *mask, struct timespec *left)
{
	if (nfds < 0 || (tmo && !ts_valid(tmo)))
		return sfy_real()->pselect(nfds, rd, wr, ex, tmo, mask);   /* EINVAL */
	struct timespec end;
	if (tmo)
		end = ts_add(now(), *tmo);
	int k = 0;
	bool any = false;
	for (int fd = 0; fd < nfds; fd++)
		if (bit(rd, fd) || bit(wr, fd) || bit(ex, fd)) {
			k++;
			any = any || pending(fd);
		}
	int r;
	if (!any) {
		r = sfy_real()->pselect(nfds, rd, wr, ex, tmo, mask);
		goto out;
	}
	struct pollfd *p = calloc((size_t)k, sizeof(*p));
	if (!p) {
		errno = ENOMEM;
		r = -1;
		goto out;
	}
	k = 0;
	for (int fd = 0; fd < nfds; fd++) {
		short ev = (bit(rd, fd) ? POLLIN | POLLRDNORM | POLLRDBAND : 0) |
			   (bit(wr, fd) ? POLLOUT | POLLWRNORM | POLLWRBAND : 0) |
			   (bit(ex, fd) ? POLLPRI : 0);
		if (ev)
			p[k++] = (struct pollfd){ .fd = fd, .events = ev };
	}
	struct timespec rest = tmo ? left_until(end) : (struct timespec){ 0, 0 };
	r = sfy_ready_ppoll(p, (nfds_t)k, tmo ? &rest : NULL, mask, NULL);
	for (int i = 0; r > 0 && i < k; i++)
		if (p[i].revents & POLLNVAL) {
			errno = EBADF;
			r = -1;
		}
	if (r >= 0) {
		clear_bits(rd, nfds);
		clear_bits(wr, nfds);
		clear_bits(ex, nfds);
		r = 0;
		for (int i = 0; i < k; i++) {
			short ev = p[i].events, got = p[i].revents;
			if ((ev & POLLIN) && (got & IN_SET)) {
				set_bit(rd, p[i].fd);
				r++;
			}
			if ((ev & POLLOUT) && (got & OUT_SET)) {
				set_bit(wr, p[i].fd);
				r++;
			}
			if ((ev & POLLPRI) && (got & EX_SET)) {
				set_bit(ex, p[i].fd);
				r++;
			}
		}
	}
	int saved = errno;
	free(p);
	errno = saved;
out:
	if (left && tmo)
		*left = left_until(end);
	return r;
}
