/* getaddrinfo_a(): glibc runs these lookups on its own threads through its
 * internal resolver, past our getaddrinfo() symbol, so in remote-DNS mode
 * they would query DNS directly. There (and with no usable config, to fail
 * closed) every request is answered by our getaddrinfo() instead; local
 * mode with routing rules too, so that blocked names fail and answers are
 * remembered (dns_rules.h). Local mode without rules: the real function,
 * untouched.
 *
 * GAI_WAIT answers inline. GAI_NOWAIT returns at once, as the API
 * promises an event loop: an answer may take time (`dns: proxy` asks the
 * chain's last hop, up to timeouts.handshake; rules may resolve a name
 * locally), so the requests are marked EAI_INPROGRESS and one detached
 * thread of ours per call looks them up in order, then delivers the
 * notification as asked. glibc never queued these requests, and its
 * gai_suspend() returns EAI_ALLDONE at once for such, so gai_suspend() is
 * ours too: while a listed request of ours is in progress it waits until
 * one of those (or a listed request glibc queued, polled every 10 ms) is
 * done, or the timeout passes (EAI_AGAIN); a signal does not end that wait
 * (glibc's returns EAI_INTR). gai_cancel() of ours in progress is
 * EAI_NOTCANCELED. glibc's gai_error() reads __return alone, with no
 * barrier; ours reads it with acquire, paired with the worker's release
 * after ar_result, so a poller never sees "done" with a stale result.
 * fork(): the child has no worker, so its copies of our unfinished
 * requests end as EAI_AGAIN and nothing waits for them. */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "real.h"
#include "route.h"
#include "sfy.h"
#include "state.h"
#include "thread.h"

struct notify {
	void (*fn)(union sigval);
	union sigval value;
};

static void *notify_thread(void *arg)
{
	struct notify n = *(struct notify *)arg;
	free(arg);
	n.fn(n.value);
	return NULL;
}

static void notify(const struct sigevent *sev)
{
	if (!sev)
		return;
	if (sev->sigev_notify == SIGEV_SIGNAL) {
		(void)sigqueue(getpid(), sev->sigev_signo, sev->sigev_value);
	} else if (sev->sigev_notify == SIGEV_THREAD && sev->sigev_notify_function) {
		struct notify *n = malloc(sizeof(*n));
		pthread_t t;
		pthread_attr_t own;
		const pthread_attr_t *attr = sev->sigev_notify_attributes;
		int detached = PTHREAD_CREATE_JOINABLE;
		if (!n)
			return;
		n->fn = sev->sigev_notify_function;
		n->value = sev->sigev_value;
		if (!attr) {
			pthread_attr_init(&own);
			pthread_attr_setdetachstate(&own, PTHREAD_CREATE_DETACHED);
			attr = &own;
		}
		/* The caller's attributes are theirs, maybe shared with other
		 * sigevents: used as they are, and a joinable thread (which no
		 * one can join: its id is never handed out) detached after. */
		(void)pthread_attr_getdetachstate(attr, &detached);
		if (pthread_create(&t, attr, notify_thread, n) != 0) {
			sfy_warn("getaddrinfo_a: cannot start the notification thread");
			free(n);
		} else if (detached != PTHREAD_CREATE_DETACHED) {
			pthread_detach(t);
		}
		if (attr == &own)
			pthread_attr_destroy(&own);
	}
}


/* The requests of one GAI_NOWAIT call; list[done..n) are still looked up.
 * The worker frees it once all are done. */
struct batch {
	struct batch *next;
	bool has_sev;
	struct sigevent sev;
	int n, done;
	struct gaicb *list[];
};

/* Guards the batches and every request's ar_result/__return while ours;
 * never held across a lookup. finished: broadcast as each request ends
 * (CLOCK_MONOTONIC, so a clock change does not stretch a timeout). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t finished;
static struct batch *running;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void cond_init(void)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&finished, &a);
	pthread_condattr_destroy(&a);
}

static void at_prepare(void) { pthread_mutex_lock(&lock); }
static void at_parent(void) { pthread_mutex_unlock(&lock); }

/* The workers stay in the parent: what they left unanswered fails here,
 * rather than stay in progress with nothing to finish it. */
static void at_child(void)
{
	for (struct batch *b = running, *next; b; b = next) {
		next = b->next;
		for (int i = b->done; i < b->n; i++)
			__atomic_store_n(&b->list[i]->__return, EAI_AGAIN, __ATOMIC_RELEASE);
		free(b);
	}
	running = NULL;
	pthread_mutex_unlock(&lock);
	cond_init();   /* its waiters were the parent's threads */
}

static void setup(void)
{
	cond_init();
	pthread_atfork(at_prepare, at_parent, at_child);
}

/* Whether req is ours and still being looked up (lock held). */
static bool pending(const struct gaicb *req)
{
	for (const struct batch *b = running; b; b = b->next)
		for (int i = b->done; i < b->n; i++)
			if (b->list[i] == req)
				return true;
	return false;
}

/* Of the listed requests (lock held): ours still looked up, and glibc's
 * still in progress. */
static void count(const struct gaicb *const list[], int ent, int *ours, int *theirs)
{
	*ours = *theirs = 0;
	for (int i = 0; list && i < ent; i++) {
		if (!list[i])
			continue;
		if (pending(list[i]))
			++*ours;
		else if (__atomic_load_n(&list[i]->__return, __ATOMIC_ACQUIRE) == EAI_INPROGRESS)
			++*theirs;
	}
}

static void *work(void *arg)
{
	struct batch *b = arg;
	for (int i = 0; i < b->n; i++) {
		struct gaicb *r = b->list[i];
		struct addrinfo *res = NULL;
		int rc = getaddrinfo(r->ar_name, r->ar_service, r->ar_request, &res);
		pthread_mutex_lock(&lock);
		r->ar_result = res;
		__atomic_store_n(&r->__return, rc, __ATOMIC_RELEASE);   /* after ar_result */
		b->done = i + 1;
		pthread_cond_broadcast(&finished);
		pthread_mutex_unlock(&lock);
	}
	pthread_mutex_lock(&lock);
	for (struct batch **p = &running; *p; p = &(*p)->next)
		if (*p == b) {
			*p = b->next;
			break;
		}
	pthread_mutex_unlock(&lock);
	if (b->has_sev)
		notify(&b->sev);
	free(b);
	return NULL;
}

/* GAI_NOWAIT: the requests in progress, their lookups on a thread of ours. */
static int start(struct gaicb *list[], int n, const struct sigevent *sev)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		k += list[i] != NULL;
	if (!k) {
		notify(sev);
		return 0;
	}
	struct batch *b = malloc(sizeof(*b) + (size_t)k * sizeof(b->list[0]));
	if (!b)
		return EAI_MEMORY;
	b->n = k;
	b->done = 0;
	b->has_sev = sev != NULL;
	if (sev)
		b->sev = *sev;   /* the caller's may be gone when it is delivered */
	for (int i = 0, j = 0; i < n; i++)
		if (list[i])
			b->list[j++] = list[i];
	pthread_once(&once, setup);

	pthread_attr_t attr;
	pthread_t t;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&lock);
	for (int i = 0; i < k; i++)
		__atomic_store_n(&b->list[i]->__return, EAI_INPROGRESS, __ATOMIC_RELAXED);
	b->next = running;
	running = b;
	int e = sfy_thread_start(&t, &attr, work, b);
	if (e) {   /* the call fails: nothing of it stays in progress */
		running = b->next;
		for (int i = 0; i < k; i++)
			b->list[i]->__return = EAI_AGAIN;
	}
	pthread_mutex_unlock(&lock);
	pthread_attr_destroy(&attr);
	if (e) {
		sfy_warn("getaddrinfo_a: cannot start the lookup thread");
		free(b);
		return EAI_AGAIN;
	}
	return 0;
}

SFY_EXPORT int getaddrinfo_a(int mode, struct gaicb *list[], int n, struct sigevent *sev)
{
	const struct sfy_config *cfg = sfy_config_get();
	const struct sfy_routes *rt = cfg ? sfy_routes_get() : NULL;
	/* Local DNS: the real function, unless a .onion/.exit/.i2p name is
	 * asked for, which only our getaddrinfo() keeps off the network. */
	bool special = false;
	for (int i = 0; list && i < n; i++)
		special |= list[i] && list[i]->ar_name && sfy_route_special_tld(list[i]->ar_name);
	if (cfg && !special && !(rt ? sfy_routes_remote(rt) || sfy_routes_active(rt)
				    : sfy_dns_fakes(cfg->dns))) {
		if (!sfy_real()->getaddrinfo_a)
			return EAI_SYSTEM;
		return sfy_real()->getaddrinfo_a(mode, list, n, sev);
	}
	if ((mode != GAI_WAIT && mode != GAI_NOWAIT) || n < 0) {
		errno = EINVAL;
		return EAI_SYSTEM;
	}
	if (mode == GAI_NOWAIT)
		return start(list, n, sev);
	for (int i = 0; i < n; i++)
		if (list[i])
			list[i]->__return = getaddrinfo(list[i]->ar_name, list[i]->ar_service,
							list[i]->ar_request, &list[i]->ar_result);
	return 0;
}

static void ts_add(struct timespec *t, const struct timespec *d)
{
	t->tv_sec += d->tv_sec;
	t->tv_nsec += d->tv_nsec;
	if (t->tv_nsec >= 1000000000) {
		t->tv_nsec -= 1000000000;
		t->tv_sec++;
	}
}

static bool before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

SFY_EXPORT int gai_suspend(const struct gaicb *const list[], int ent, const struct timespec *timeout)
{
	int ours, theirs, o, t, cs, rc = 0;
	pthread_mutex_lock(&lock);
	count(list, ent, &ours, &theirs);
	if (!ours) {
		pthread_mutex_unlock(&lock);
		if (!sfy_real()->gai_suspend) {
			errno = ENOSYS;
			return EAI_SYSTEM;
		}
		return sfy_real()->gai_suspend(list, ent, timeout);
	}
	if (timeout && (timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000)) {
		pthread_mutex_unlock(&lock);
		errno = EINVAL;
		return EAI_SYSTEM;
	}
	struct timespec dl, now;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	if (timeout)
		ts_add(&dl, timeout);
	/* A cancellation inside the wait would leave our lock held. */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cs);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (timeout && !before(&now, &dl)) {
			rc = EAI_AGAIN;
			break;
		}
		if (theirs) {   /* glibc does not tell us when its requests end */
			struct timespec slice = now;
			ts_add(&slice, &(struct timespec){ 0, 10000000 });
			pthread_cond_timedwait(&finished, &lock,
					       timeout && before(&dl, &slice) ? &dl : &slice);
		} else if (timeout) {
			pthread_cond_timedwait(&finished, &lock, &dl);
		} else {
			pthread_cond_wait(&finished, &lock);
		}
		count(list, ent, &o, &t);
		if (o < ours || t < theirs)
			break;
	}
	pthread_mutex_unlock(&lock);
	pthread_setcancelstate(cs, NULL);
	return rc;
}

SFY_EXPORT int gai_cancel(struct gaicb *req)
{
	pthread_mutex_lock(&lock);
	bool ours = pending(req);
	pthread_mutex_unlock(&lock);
	if (ours)
		return EAI_NOTCANCELED;   /* its lookup is already running */
	if (!sfy_real()->gai_cancel) {
		errno = ENOSYS;
		return EAI_SYSTEM;
	}
	return sfy_real()->gai_cancel(req);
}

/* glibc's reads __return with no barrier; see the top of the file. */
SFY_EXPORT int gai_error(struct gaicb *req)
{
	return __atomic_load_n(&req->__return, __ATOMIC_ACQUIRE);
}
