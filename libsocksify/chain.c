/* Picking hops and walking them. Hop 1 is reached by a TCP connect of the
 * program's own fd; each further hop is reached by asking the previous one
 * to CONNECT to it, by its host as configured (hop_addr.h); the last hop is
 * asked for the destination. A pipelined hop that goes silent is raced
 * against a step-by-step connection (probe_race.h). */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "chain.h"
#include "handshake.h"
#include "hop_addr.h"
#include "io.h"
#include "log.h"
#include "probe_race.h"
#include "real.h"
#include "sock.h"
#include "stepwise.h"

static atomic_uint rr_next;

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

/* What every attempt of one connect() shares. */
struct plan {
	const struct sfy_config *cfg;
	size_t idx[SFY_MAX_PROXIES];
	size_t n;
	const struct sfy_addr *dst;
	enum sfy_s5_cmd cmd;
	int64_t deadline;
	bool has_bound;                 /* the program bound fd before connect() */
	struct sockaddr_storage bound;
};

struct attempt {
	int err;
	size_t failed;                  /* position in idx of the hop at fault */
	bool at_dst;                    /* the last hop could not reach dst */
	struct sfy_hop_error he;
	struct sfy_addr first;          /* hop 1's connected address */
	struct sfy_addr bnd;            /* the last hop's BND */
};

#define NO_STEP ((size_t)-1)

static int failed(struct attempt *at, size_t i, int err, const char *why)
{
	at->failed = i;
	snprintf(at->he.why, sizeof(at->he.why), "%s", why);
	return at->err = err;
}

/* TCP to hop 1 on fd, which may first need a socket of hop 1's family. */
static int connect_first(const struct plan *pl, int fd, struct attempt *at)
{
	const struct sfy_config *cfg = pl->cfg;
	int64_t dl = min64(pl->deadline, sfy_now_ms() + cfg->connect_timeout_ms);
	int r = sfy_hop_first_addr(cfg, pl->idx[0], dl, &at->first);
	if (r < 0)
		return failed(at, 0, r, r == -ETIMEDOUT ? "resolving the proxy's host name timed out"
						       : "cannot resolve the proxy's host name");
	/* The program's socket may be of the other family than hop 1; an AF_INET6
	 * socket reaches an IPv4 hop through a v4-mapped address. */
	int fam = sfy_sock_family(fd);
	int want = at->first.type == SFY_ATYP_IPV6 ? AF_INET6 : AF_INET;
	if (fam == AF_INET6 && want == AF_INET && !v6only(fd))
		want = AF_INET6;
	if (fam != want && (r = sfy_sock_replace(fd, want, pl->has_bound ? &pl->bound : NULL,
						  true)) < 0)
		return failed(at, 0, r, "cannot open a socket for the proxy");
	struct sockaddr_storage ss;
	int sl = sfy_addr_to_sockaddr(&at->first, want, &ss);
	if (sl < 0)
		return failed(at, 0, sl, "the proxy's address does not fit the socket");
	r = sfy_io_connect(fd, (struct sockaddr *)&ss, (socklen_t)sl, dl);
	if (r < 0) {
		char why[sizeof(at->he.why)];
		snprintf(why, sizeof(why), "TCP connect failed: %s", strerror(-r));
		return failed(at, 0, r, why);
	}
	return 0;
}

/* The hop after position i, or dst for the last: what hop i is asked for. */
static int target_of(const struct plan *pl, size_t i, int64_t dl, struct sfy_addr *out,
		     struct attempt *at)
{
	if (i + 1 == pl->n) {
		*out = *pl->dst;
		return 0;
	}
	const struct sfy_proxy *p = &pl->cfg->proxies[pl->idx[i]];
	const struct sfy_proxy *next = &pl->cfg->proxies[pl->idx[i + 1]];
	int r = sfy_hop_next_addr(pl->cfg, p, next, dl, out, at->he.why, sizeof(at->he.why));
	if (r < 0) {
		at->failed = i + 1;
		at->err = r;
	}
	return r;
}

static int walk_from(const struct plan *pl, int fd, size_t from, size_t upto, size_t step_at,
		     struct attempt *at);

/* Hop i failed with err: the hop itself, or (its reply says) what it was
 * asked to reach -- the next hop, or dst for the last. */
static int blame(const struct plan *pl, struct attempt *at, size_t i, int err)
{
	at->failed = i;
	if (err != -SFY_ESTEPWISE && at->he.blame == SFY_BLAME_TARGET) {
		if (i + 1 == pl->n)
			at->at_dst = true;
		else
			at->failed = i + 1;
	}
	return at->err = err;
}

/* The step-by-step side of the race: hops 1..k again on a fresh socket,
 * hop k step by step, asked for the same target. */
struct race_ctx {
	const struct plan *pl;
	size_t k;
	struct attempt first_at, second_at;
};

static int race_second(void *arg, int fd, int64_t deadline)
{
	struct race_ctx *c = arg;
	(void)deadline;         /* the walk keeps its own per-hop deadlines */
	return walk_from(c->pl, fd, 0, c->k + 1, c->k, &c->second_at);
}

static int race_first(void *arg, int fd, int64_t deadline)
{
	struct race_ctx *c = arg;
	const struct sfy_proxy *p = &c->pl->cfg->proxies[c->pl->idx[c->k]];
	return sfy_hop_s5_resume(fd, p, deadline, &c->first_at.bnd, &c->first_at.he);
}

/* Hop at position k went silent after its method reply: race (probe_race.h)
 * and learn from what happened. */
static int race(const struct plan *pl, int fd, size_t k, int64_t dl, struct attempt *at)
{
	const struct sfy_proxy *p = &pl->cfg->proxies[pl->idx[k]];
	struct race_ctx c = { .pl = pl, .k = k, .first_at = *at };
	struct sfy_race rc = { .finish_first = race_first, .second = race_second, .arg = &c,
			       .bound = pl->has_bound ? &pl->bound : NULL };
	char hop[600];
	sfy_proxy_format(p, hop, sizeof(hop));
	sfy_debug("%s silent after its method reply; racing a step-by-step connection", hop);
	enum sfy_race_winner w = sfy_probe_race(fd, dl, &rc);
	if (rc.first_closed) {
		sfy_stepwise_set(pl->cfg, p, SFY_PIPE_STEPWISE);
		sfy_info("%s dropped pipelined bytes; negotiating step by step from now on", hop);
	}
	switch (w) {
	case SFY_RACE_FIRST:
		*at = c.first_at;
		if (rc.first_err == 0 || at->he.blame == SFY_BLAME_TARGET)
			sfy_stepwise_set(pl->cfg, p, SFY_PIPE_OK);
		return rc.first_err < 0 ? blame(pl, at, k, rc.first_err) : 0;
	case SFY_RACE_SECOND:
		/* The first stayed silent while a fresh step-by-step connection
		 * to the same hop and target completed: evidence. */
		if (rc.first_late) {
			/* ...but the first answered right after: the target was
			 * slow, the proxy keeps pipelined bytes. */
			sfy_stepwise_set(pl->cfg, p, SFY_PIPE_OK);
		} else if (!rc.first_closed) {
			sfy_stepwise_set(pl->cfg, p, SFY_PIPE_STEPWISE);
			sfy_info("%s ignored pipelined bytes; negotiating step by step from now on",
				 hop);
		}
		*at = c.second_at;
		return 0;
	case SFY_RACE_NONE:
		break;
	}
	if (rc.first_closed) {
		/* The step-by-step attempt has said where it failed. */
		*at = c.second_at;
		return at->err = rc.second_err;
	}
	*at = c.first_at;
	if (!at->he.why[0])
		snprintf(at->he.why, sizeof(at->he.why), "no reply to the request");
	return blame(pl, at, k, rc.first_err);
}

/* Hops from..upto-1 on fd (connected through hops 0..from-1, or not at all
 * when from is 0). Hop step_at goes step by step whatever is known of it;
 * a hop in another walk's race is not probed again. */
static int walk_from(const struct plan *pl, int fd, size_t from, size_t upto, size_t step_at,
		     struct attempt *at)
{
	const struct sfy_config *cfg = pl->cfg;
	int r;
	if (from == 0 && (r = connect_first(pl, fd, at)) < 0)
		return r;
	for (size_t i = from; i < upto; i++) {
		const struct sfy_proxy *p = &cfg->proxies[pl->idx[i]];
		bool last = i + 1 == pl->n;
		int64_t dl = min64(pl->deadline, sfy_now_ms() + cfg->connect_timeout_ms);
		struct sfy_addr next;
		if ((r = target_of(pl, i, dl, &next, at)) < 0)
			return r;
		/* Only SOCKS5 has messages to pipeline, so only SOCKS5 is probed. */
		bool s5 = p->proto == SFY_PROTO_SOCKS5 || p->proto == SFY_PROTO_SOCKS5H;
		enum sfy_pipe_known known = cfg->pipeline == SFY_PIPELINE_AUTO && s5
					    ? sfy_stepwise_get(cfg, p) : SFY_PIPE_OK;
		bool pipe = cfg->pipeline == SFY_PIPELINE_ON ||
			    (cfg->pipeline == SFY_PIPELINE_AUTO && known != SFY_PIPE_STEPWISE);
		if (i == step_at)
			pipe = false;
		bool probe = s5 && pipe && known == SFY_PIPE_UNKNOWN && step_at == NO_STEP;
		r = sfy_hop_request(fd, p, last ? pl->cmd : SFY_S5_CONNECT, &next, pipe, probe, dl,
				    last ? &at->bnd : NULL, &at->he);
		if (r == -SFY_ESILENT) {
			if ((r = race(pl, fd, i, dl, at)) < 0)
				return r;
			continue;
		}
		if (probe && (r == 0 || (r != -SFY_ESTEPWISE && at->he.blame == SFY_BLAME_TARGET)))
			/* A reply to a pipelined request: it takes early bytes. */
			sfy_stepwise_set(cfg, p, SFY_PIPE_OK);
		if (r < 0)
			return blame(pl, at, i, r);
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

static void fill_report(const struct plan *pl, const struct attempt *at,
			struct sfy_chain_report *rep)
{
	memcpy(rep->hops, pl->idx, pl->n * sizeof(pl->idx[0]));
	rep->nhops = pl->n;
	rep->last = pl->idx[pl->n - 1];
	rep->bnd = at->bnd;
	if (pl->n == 1) {
		rep->last_addr = at->first;
	} else {
		const struct sfy_proxy *p = &pl->cfg->proxies[rep->last];
		sfy_addr_set_host(&rep->last_addr, p->host, p->port);
	}
	rep->last_addr_known = rep->last_addr.type != SFY_ATYP_DOMAIN;
}

int sfy_chain_connect(const struct sfy_config *cfg, int fd, const struct sfy_addr *dst,
		      enum sfy_s5_cmd cmd, struct sfy_chain_report *rep)
{
	struct plan pl = { .cfg = cfg, .dst = dst, .cmd = cmd };
	pl.n = pick(cfg, pl.idx);
	pl.deadline = sfy_now_ms() + cfg->handshake_timeout_ms;
	pl.has_bound = sfy_sock_bound(fd, &pl.bound);
	struct attempt at;
	char dsts[300], hop[600];
	/* Each retry removes a hop or switches one to step-by-step, so this
	 * ends; the bound is a guard. */
	for (int tries = 0; tries < 2 * SFY_MAX_PROXIES + 2; tries++) {
		memset(&at, 0, sizeof(at));
		int r = walk_from(&pl, fd, 0, pl.n, NO_STEP, &at);
		if (r == 0) {
			if (sfy_log_level_get() >= SFY_LOG_INFO) {
				sfy_addr_format(dst, dsts, sizeof(dsts));
				sfy_info("%s via %zu hop%s", dsts, pl.n, pl.n == 1 ? "" : "s");
			}
			if (rep)
				fill_report(&pl, &at, rep);
			return 0;
		}
		if (r == -SFY_ESTEPWISE) {
			/* Closed right after its method reply: evidence. */
			sfy_stepwise_set(cfg, &cfg->proxies[pl.idx[at.failed]], SFY_PIPE_STEPWISE);
			sfy_proxy_format(&cfg->proxies[pl.idx[at.failed]], hop, sizeof(hop));
			sfy_info("%s dropped pipelined bytes; negotiating step by step from now on",
				 hop);
		} else if (cfg->chain == SFY_CHAIN_DYNAMIC && !at.at_dst && pl.n > 1 &&
			   sfy_now_ms() < pl.deadline) {
			sfy_proxy_format(&cfg->proxies[pl.idx[at.failed]], hop, sizeof(hop));
			sfy_info("skipping dead hop %s: %s", hop, at.he.why);
			memmove(&pl.idx[at.failed], &pl.idx[at.failed + 1],
				(pl.n - at.failed - 1) * sizeof(pl.idx[0]));
			pl.n--;
		} else {
			break;
		}
		int e = sfy_sock_replace(fd, sfy_sock_family(fd), pl.has_bound ? &pl.bound : NULL,
					 true);
		if (e < 0) {
			at.err = e;
			snprintf(at.he.why, sizeof(at.he.why), "cannot reopen the socket");
			break;
		}
	}
	sfy_addr_format(dst, dsts, sizeof(dsts));
	sfy_proxy_format(&cfg->proxies[pl.idx[at.failed]], hop, sizeof(hop));
	if (at.err == -SFY_ESTEPWISE) {
		at.err = -ECONNREFUSED;
		snprintf(at.he.why, sizeof(at.he.why), "closed the connection after its method reply");
	}
	int err = program_errno(at.err);
	const char *why = at.he.why[0] ? at.he.why : strerror(-err);
	if (at.at_dst)
		sfy_warn("connect to %s failed: last hop %s: %s (%s)", dsts, hop, why,
			 strerrorname_np(-err));
	else
		sfy_warn("connect to %s failed: hop %zu %s: %s (%s)", dsts, at.failed + 1, hop,
			 why, strerrorname_np(-err));
	return err;
}
