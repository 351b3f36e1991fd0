/* Resolving a proxy's own name, with a deadline and without a lock.
 *
 * Why getaddrinfo_a + gai_suspend here rather than "the launcher resolves
 * hop 1 and passes the address down": the library also runs without the
 * launcher (LD_PRELOAD set by hand, a program that scrubs its environment,
 * a long-running process whose proxy name changes address), so it must be
 * able to resolve hop 1 itself, and getaddrinfo() has no deadline -- a dead
 * name server would hang connect() far past connect_timeout. The launcher
 * could still pre-resolve as an optimisation; this path stays the one that
 * is always correct. glibc runs the lookup on its own thread; we wait for it
 * with gai_suspend() up to the deadline and walk away if it is late.
 *
 * No mutex is held while resolving (a fork() in another thread must not
 * leave the child waiting for a lock whose owner it does not have): each
 * cache slot is filled once by whichever thread gets there first, with an
 * atomic state, and read only once filled. */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hop_addr.h"
#include "io.h"
#include "real.h"

/* One lookup, owned by the waiter and by glibc's completion notification:
 * a late lookup outlives the waiter that gave up on it, so the last of the
 * two frees it. */
struct lookup {
	atomic_int refs;
	struct gaicb cb;
	struct addrinfo hints;
	char host[SFY_HOST_MAX + 1];
};

static void lookup_put(struct lookup *l)
{
	if (atomic_fetch_sub(&l->refs, 1) == 1) {
		if (l->cb.ar_result)
			sfy_real()->freeaddrinfo(l->cb.ar_result);
		free(l);
	}
}

static void lookup_done(union sigval v)
{
	lookup_put(v.sival_ptr);
}

int sfy_resolve_by(const char *host, uint16_t port, int64_t deadline, struct sfy_addr *out)
{
	return sfy_resolve_fam(host, port, AF_UNSPEC, deadline, out);
}

int sfy_resolve_fam(const char *host, uint16_t port, int family, int64_t deadline,
		    struct sfy_addr *out)
{
	const struct sfy_real *real = sfy_real();
	if (!real->getaddrinfo_a)
		return -EHOSTUNREACH;
	struct lookup *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	snprintf(l->host, sizeof(l->host), "%s", host);
	l->hints.ai_socktype = SOCK_STREAM;
	l->hints.ai_family = family;
	l->cb.ar_name = l->host;
	l->cb.ar_request = &l->hints;
	atomic_init(&l->refs, 2);
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD };
	sev.sigev_value.sival_ptr = l;
	sev.sigev_notify_function = lookup_done;
	struct gaicb *list[1] = { &l->cb };
	if (real->getaddrinfo_a(GAI_NOWAIT, list, 1, &sev) != 0) {
		free(l);
		return -EHOSTUNREACH;
	}
	const struct gaicb *wait[1] = { &l->cb };
	int e;
	while ((e = gai_error(&l->cb)) == EAI_INPROGRESS) {
		int64_t left = deadline - sfy_now_ms();
		if (left <= 0)
			break;
		struct timespec ts = { left / 1000, (left % 1000) * 1000000 };
		gai_suspend(wait, 1, &ts);
	}
	int r;
	if (e == EAI_INPROGRESS) {
		/* Too late. A request glibc had not started is removed and will
		 * never notify; a running one notifies (and frees) when done. */
		if (gai_cancel(&l->cb) == EAI_CANCELED)
			lookup_put(l);
		lookup_put(l);
		return -ETIMEDOUT;
	}
	r = e == 0 && l->cb.ar_result ? 0 : -EHOSTUNREACH;
	if (r == 0) {
		r = sfy_addr_from_sockaddr(out, l->cb.ar_result->ai_addr,
					   l->cb.ar_result->ai_addrlen);
		out->port = port;
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
