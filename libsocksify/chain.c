/* Picking hops and walking them. Hop 1 is reached by a TCP connect of the
 * program's own fd; each further hop is reached by asking the previous one
 * to CONNECT to it; the last hop is asked for the destination. */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "chain.h"
#include "handshake.h"
#include "io.h"
#include "log.h"
#include "real.h"
#include "sock.h"
#include "stepwise.h"

/* Hop addresses, resolved locally once, at first use. The config is
 * immutable and the same for the whole process, so index i is proxy i. */
static struct {
	pthread_mutex_t lock;
	bool done[SFY_MAX_PROXIES];
	int err[SFY_MAX_PROXIES];
	struct sfy_addr addr[SFY_MAX_PROXIES];
} hops = { .lock = PTHREAD_MUTEX_INITIALIZER };

static atomic_uint rr_next;

static int hop_addr(const struct sfy_proxy *p, size_t i, struct sfy_addr *out)
{
	pthread_mutex_lock(&hops.lock);
	if (!hops.done[i]) {
		struct sfy_addr a;
		int r = sfy_addr_set_host(&a, p->host, p->port);
		if (r == 0 && a.type == SFY_ATYP_DOMAIN) {
			struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
			r = sfy_real()->getaddrinfo(p->host, NULL, &hints, &res) ? -EHOSTUNREACH : 0;
			if (r == 0) {
				r = sfy_addr_from_sockaddr(&a, res->ai_addr, res->ai_addrlen);
				a.port = p->port;
				sfy_real()->freeaddrinfo(res);
			}
		}
		hops.addr[i] = a;
		hops.err[i] = r;
		/* A failed lookup is retried next time: it may be transient. */
		hops.done[i] = r == 0;
	}
	int r = hops.err[i];
	*out = hops.addr[i];
	pthread_mutex_unlock(&hops.lock);
	return r;
}

static unsigned rand_below(unsigned n)
{
	static _Thread_local unsigned seed;
	if (!seed && getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (unsigned)sfy_now_ms() ^ (unsigned)(uintptr_t)&seed;
	seed |= 1;
	return (unsigned)rand_r(&seed) % n;
}

/* The hops this connection uses, as indexes into cfg->proxies. */
static size_t pick(const struct sfy_config *cfg, size_t idx[static SFY_MAX_PROXIES])
{
	size_t n = cfg->nproxies, len = cfg->chain_length ? cfg->chain_length : 1;
	if (len > n)
		len = n;
	switch (cfg->chain) {
	case SFY_CHAIN_STRICT:
	case SFY_CHAIN_DYNAMIC:
		for (size_t i = 0; i < n; i++)
			idx[i] = i;
		return n;
	case SFY_CHAIN_ROUND_ROBIN: {
		unsigned start = atomic_fetch_add(&rr_next, 1) % (unsigned)n;
		for (size_t i = 0; i < len; i++)
			idx[i] = (start + i) % n;
		return len;
	}
	case SFY_CHAIN_RANDOM: {
		size_t all[SFY_MAX_PROXIES];
		for (size_t i = 0; i < n; i++)
			all[i] = i;
		for (size_t i = 0; i < len; i++) {   /* partial Fisher-Yates */
			size_t j = i + rand_below((unsigned)(n - i));
			size_t t = all[i];
			all[i] = all[j];
			all[j] = t;
			idx[i] = all[i];
		}
		return len;
	}
	}
	return 0;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static bool v6only(int fd)
{
	int v = 0;
	socklen_t l = sizeof(v);
	return getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &l) == 0 && v;
}

struct attempt {
	int err;
	size_t failed;                  /* position in idx of the hop at fault */
	bool at_dst;                    /* the last hop could not reach dst */
	struct sfy_hop_error he;
};

static int walk(const struct sfy_config *cfg, int fd, const size_t *idx, size_t n,
		const struct sfy_addr *dst, enum sfy_s5_cmd cmd, struct sfy_addr *bnd,
		int64_t deadline, struct attempt *at)
{
	struct sfy_addr first;
	memset(at, 0, sizeof(*at));
	int r = hop_addr(&cfg->proxies[idx[0]], idx[0], &first);
	if (r < 0) {
		snprintf(at->he.why, sizeof(at->he.why), "cannot resolve the proxy's host name");
		return at->err = r;
	}
	/* The program's socket may be of the other family than hop 1; an AF_INET6
	 * socket reaches an IPv4 hop through a v4-mapped address. */
	int fam = sfy_sock_family(fd);
	int want = first.type == SFY_ATYP_IPV6 ? AF_INET6 : AF_INET;
	if (fam == AF_INET6 && want == AF_INET && !v6only(fd))
		want = AF_INET6;
	if (fam != want && (r = sfy_sock_replace(fd, want)) < 0) {
		snprintf(at->he.why, sizeof(at->he.why), "cannot open a socket for the proxy");
		return at->err = r;
	}
	struct sockaddr_storage ss;
	int sl = sfy_addr_to_sockaddr(&first, want, &ss);
	if (sl < 0)
		return at->err = sl;
	r = sfy_io_connect(fd, (struct sockaddr *)&ss, (socklen_t)sl,
			   min64(deadline, sfy_now_ms() + cfg->connect_timeout_ms));
	if (r < 0) {
		snprintf(at->he.why, sizeof(at->he.why), "TCP connect failed: %s", strerror(-r));
		return at->err = r;
	}
	for (size_t i = 0; i < n; i++) {
		const struct sfy_proxy *p = &cfg->proxies[idx[i]];
		struct sfy_addr next;
		bool last = i + 1 == n;
		if (!last && (r = hop_addr(&cfg->proxies[idx[i + 1]], idx[i + 1], &next)) < 0) {
			at->failed = i + 1;
			snprintf(at->he.why, sizeof(at->he.why),
				 "cannot resolve the proxy's host name");
			return at->err = r;
		}
		bool pipe = cfg->pipeline == SFY_PIPELINE_ON ||
			    (cfg->pipeline == SFY_PIPELINE_AUTO && sfy_stepwise_get(cfg, p) != SFY_PIPE_STEPWISE);
		int64_t dl = min64(deadline, sfy_now_ms() + cfg->connect_timeout_ms);
		r = sfy_hop_request(fd, p, last ? cmd : SFY_S5_CONNECT, last ? dst : &next, pipe,
				    cfg->pipeline == SFY_PIPELINE_AUTO, dl,
				    last ? bnd : NULL, &at->he);
		if (r < 0) {
			at->failed = i;
			if (r != -SFY_ESTEPWISE && at->he.blame == SFY_BLAME_TARGET) {
				if (last)
					at->at_dst = true;
				else
					at->failed = i + 1;
			}
			return at->err = r;
		}
	}
	return 0;
}

/* connect() must not report what no program expects of it. */
static int program_errno(int err)
{
	switch (err) {
	case -ECONNRESET:
	case -EPIPE:
		return -ECONNREFUSED;
	default:
		return err;
	}
}

int sfy_chain_connect(const struct sfy_config *cfg, int fd, const struct sfy_addr *dst,
		      enum sfy_s5_cmd cmd, struct sfy_addr *bnd)
{
	size_t idx[SFY_MAX_PROXIES];
	size_t n = pick(cfg, idx);
	int64_t deadline = sfy_now_ms() + cfg->handshake_timeout_ms;
	struct attempt at;
	char dsts[300], hop[600];
	/* Each retry removes a hop or switches one to step-by-step, so this
	 * ends; the bound is a guard. */
	for (int tries = 0; tries < 2 * SFY_MAX_PROXIES + 2; tries++) {
		int r = walk(cfg, fd, idx, n, dst, cmd, bnd, deadline, &at);
		if (r == 0) {
			if (sfy_log_level_get() >= SFY_LOG_INFO) {
				sfy_addr_format(dst, dsts, sizeof(dsts));
				sfy_info("%s via %zu hop%s", dsts, n, n == 1 ? "" : "s");
			}
			return 0;
		}
		if (r == -SFY_ESTEPWISE) {
			sfy_stepwise_set(cfg, &cfg->proxies[idx[at.failed]], SFY_PIPE_STEPWISE);
			sfy_proxy_format(&cfg->proxies[idx[at.failed]], hop, sizeof(hop));
			sfy_info("%s dropped pipelined bytes; negotiating step by step from now on",
				 hop);
		} else if (cfg->chain == SFY_CHAIN_DYNAMIC && !at.at_dst && n > 1 &&
			   sfy_now_ms() < deadline) {
			sfy_proxy_format(&cfg->proxies[idx[at.failed]], hop, sizeof(hop));
			sfy_info("skipping dead hop %s: %s", hop, at.he.why);
			memmove(&idx[at.failed], &idx[at.failed + 1],
				(n - at.failed - 1) * sizeof(idx[0]));
			n--;
		} else {
			break;
		}
		int e = sfy_sock_replace(fd, sfy_sock_family(fd));
		if (e < 0) {
			at.err = e;
			snprintf(at.he.why, sizeof(at.he.why), "cannot reopen the socket");
			break;
		}
	}
	sfy_addr_format(dst, dsts, sizeof(dsts));
	sfy_proxy_format(&cfg->proxies[idx[at.failed]], hop, sizeof(hop));
	int err = program_errno(at.err == -SFY_ESTEPWISE ? -ECONNREFUSED : at.err);
	if (at.at_dst)
		sfy_warn("connect to %s failed: last hop %s: %s (%s)", dsts, hop, at.he.why,
			 strerrorname_np(-err));
	else
		sfy_warn("connect to %s failed: hop %zu %s: %s (%s)", dsts, at.failed + 1, hop,
			 at.he.why, strerrorname_np(-err));
	return err;
}
