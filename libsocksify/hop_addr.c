/* Resolving a proxy's own name, with a deadline and without a lock.
 *
 * Why resolve here rather than "the launcher resolves hop 1 and passes the
 * address down": the library also runs without the launcher (LD_PRELOAD set
 * by hand, a program that scrubs its environment, a long-running process
 * whose proxy name changes address), so it must be able to resolve hop 1
 * itself, and getaddrinfo() has no deadline -- a dead name server would hang
 * connect() far past connect_timeout. The launcher could still pre-resolve
 * as an optimisation; this path stays the one that is always correct.
 *
 * The lookup runs on a short-lived thread of ours, and the caller waits for
 * it on a futex word of the lookup's own, up to the deadline, then walks
 * away (the thread frees what it shares when it ends). The waiter touches
 * no lock the lookup can hold: a fork() while another thread of the parent
 * sits inside glibc's resolver (or getaddrinfo_a's request list, whose
 * mutex gai_error() and gai_suspend() take too) leaves the child's lookup
 * thread perhaps stuck on a lock no thread of the child owns -- and the
 * child's connect() still returns at its deadline.
 *
 * No mutex is held while resolving: each cache slot is filled once by
 * whichever thread gets there first, with an atomic state, and read only
 * once filled. */
#include <errno.h>
#include <linux/futex.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "hop_addr.h"
#include "io.h"
#include "real.h"
#include "thread.h"

/* One lookup, shared by the waiter and the lookup thread: a late lookup
 * outlives the waiter that gave up on it, so the last of the two frees it. */
struct lookup {
	atomic_int refs;
	atomic_int done;                /* 0, then 1: the futex word */
	int family;
	uint16_t port;
	int err;
	struct sfy_addr out;
	char host[SFY_HOST_MAX + 1];
};

static void lookup_put(struct lookup *l)
{
	if (atomic_fetch_sub(&l->refs, 1) == 1)
		free(l);
}

static void *lookup_run(void *arg)
{
	struct lookup *l = arg;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = l->family }, *res = NULL;
	int e = sfy_real()->getaddrinfo(l->host, NULL, &hints, &res);
	l->err = -EHOSTUNREACH;
	if (e == 0 && res) {
		l->err = sfy_addr_from_sockaddr(&l->out, res->ai_addr, res->ai_addrlen);
		l->out.port = l->port;
	}
	if (res)
		sfy_real()->freeaddrinfo(res);
	atomic_store(&l->done, 1);
	sfy_real()->syscall(SYS_futex, &l->done, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	lookup_put(l);
	return NULL;
}

int sfy_resolve_by(const char *host, uint16_t port, int64_t deadline, struct sfy_addr *out)
{
	return sfy_resolve_fam(host, port, AF_UNSPEC, deadline, out);
}

int sfy_resolve_fam(const char *host, uint16_t port, int family, int64_t deadline,
		    struct sfy_addr *out)
{
	struct lookup *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	snprintf(l->host, sizeof(l->host), "%s", host);
	l->family = family;
	l->port = port;
	atomic_init(&l->refs, 2);
	pthread_attr_t attr;
	pthread_t t;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int e = sfy_thread_start(&t, &attr, lookup_run, l);
	pthread_attr_destroy(&attr);
	if (e) {
		free(l);
		return -EAGAIN;
	}
	while (!atomic_load(&l->done)) {
		int64_t left = deadline - sfy_now_ms();
		if (left <= 0)
			break;
		struct timespec ts = { left / 1000, (left % 1000) * 1000000 };
		sfy_real()->syscall(SYS_futex, &l->done, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
	}
	int r = -ETIMEDOUT;
	if (atomic_load(&l->done)) {
		r = l->err;
		if (r == 0)
			*out = l->out;
	}
	lookup_put(l);
	return r;
}

enum { SLOT_EMPTY, SLOT_FILLING, SLOT_READY };

/* The config is immutable and the same for the whole process, so slot i is
 * proxy i, per address family asked for (any, IPv4, IPv6). A slot left
 * FILLING by a fork() in the parent only means the child resolves that name
 * on every use. */
static struct {
	atomic_int state;
	struct sfy_addr addr;
} cache[SFY_MAX_PROXIES][3];

static int fam_slot(int family)
{
	return family == AF_INET ? 1 : family == AF_INET6 ? 2 : 0;
}

int sfy_hop_first_addr(const struct sfy_config *cfg, size_t i, int64_t deadline,
		       struct sfy_addr *out)
{
	return sfy_hop_first_addr_fam(cfg, i, AF_UNSPEC, deadline, out);
}

int sfy_hop_first_addr_fam(const struct sfy_config *cfg, size_t i, int family,
			   int64_t deadline, struct sfy_addr *out)
{
	const struct sfy_proxy *p = &cfg->proxies[i];
	int r = sfy_addr_set_host(out, p->host, p->port);
	if (r < 0 || out->type != SFY_ATYP_DOMAIN)
		return r;
	int f = fam_slot(family);
	if (atomic_load_explicit(&cache[i][f].state, memory_order_acquire) == SLOT_READY) {
		*out = cache[i][f].addr;
		return 0;
	}
	struct sfy_addr a;
	/* A failed lookup is not kept: it may be transient. */
	if ((r = sfy_resolve_fam(p->host, p->port, family, deadline, &a)) < 0)
		return r;
	int empty = SLOT_EMPTY;
	if (atomic_compare_exchange_strong(&cache[i][f].state, &empty, SLOT_FILLING)) {
		cache[i][f].addr = a;
		atomic_store_explicit(&cache[i][f].state, SLOT_READY, memory_order_release);
	}
	*out = a;
	return 0;
}

bool sfy_hop_first_cached(const struct sfy_config *cfg, size_t i, int family,
			  struct sfy_addr *out)
{
	const struct sfy_proxy *p = &cfg->proxies[i];
	if (sfy_addr_set_host(out, p->host, p->port) < 0 || out->type != SFY_ATYP_DOMAIN)
		return true;    /* a literal (or an error sfy_hop_first_addr reports) */
	int f = fam_slot(family);
	if (atomic_load_explicit(&cache[i][f].state, memory_order_acquire) != SLOT_READY)
		return false;
	*out = cache[i][f].addr;
	return true;
}

int sfy_hop_next_addr(const struct sfy_config *cfg, const struct sfy_proxy *prev,
		      const struct sfy_proxy *next, int64_t deadline, struct sfy_addr *out,
		      char *why, size_t whycap)
{
	int r = sfy_addr_set_host(out, next->host, next->port);
	if (r < 0) {
		snprintf(why, whycap, "bad proxy host");
		return r;
	}
	if (out->type != SFY_ATYP_DOMAIN || prev->proto != SFY_PROTO_SOCKS4)
		return 0;
	if (cfg->dns != SFY_DNS_LOCAL) {
		snprintf(why, whycap, "socks4 cannot pass the next hop's name on (use socks4a)");
		return -EAFNOSUPPORT;
	}
	if ((r = sfy_resolve_by(next->host, next->port, deadline, out)) < 0)
		snprintf(why, whycap, "cannot resolve the next proxy's host name");
	return r;
}
