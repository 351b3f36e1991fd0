/* Picking hops and walking them, as one re-enterable state machine
 * (chainsm.h). Hop 1 is reached by a TCP connect of the program's own
 * socket; each further hop is reached by asking the previous one to
 * CONNECT to it, by its host as configured (hop_addr.h); the last hop is
 * asked for the destination.
 *
 * Whole-chain pipelining: when hop i is known to take pipelined bytes and
 * to forward early data, hop i+1's first messages go out right behind hop
 * i's, before its reply -- one flight for as much of the chain as is known
 * to allow it. A hop whose forwarding is unknown gets the next SOCKS5 hop's
 * greeting early as a probe: the greeting's answer is immediate from any
 * SOCKS5 server, so silence after hop i's success is evidence that hop i
 * dropped it.
 *
 * Retries (a proxy that needs step-by-step negotiation, a dead hop in a
 * dynamic chain) disconnect the same socket (connect() with AF_UNSPEC) and
 * connect it again: the program's descriptor, its open file description
 * and its epoll registrations stay what they were. Only a blocking connect
 * whose socket is of the other family than hop 1 gets a fresh socket
 * (sfy_sock_replace), before anything was sent. A pipelined hop that goes
 * silent is raced against a step-by-step connection: a blocking connect
 * swaps the winner under the program's fd (probe_race.h); an asynchronous
 * one runs the second connection on a private socket only as evidence, and
 * if it wins, starts over step by step on the program's own socket. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "chain.h"
#include "chainsm.h"
#include "dns_rules.h"
#include "handshake.h"
#include "hop_addr.h"
#include "io.h"
#include "isolate.h"
#include "log.h"
#include "probe_race.h"
#include "ready.h"
#include "real.h"
#include "route.h"
#include "sock.h"
#include "stepwise.h"
#include "thread.h"

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
	if (n == 0)
		return 0;       /* a direct route: no hops */
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
	return sfy_real()->getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &l) == 0 && v;
}

#define NO_STEP ((size_t)-1)

enum st { ST_FIRST, ST_CONNECTING, ST_HOPS, ST_DONE, ST_FAILED };

struct sfy_chain_sm {
	const struct sfy_config *cfg;
	int fd;
	bool async;
	bool partial;                   /* the race's second walk: no log lines */
	bool may_block;                 /* this step may resolve hop 1's name */
	enum st st;
	struct sfy_addr dst;            /* what the last hop is asked for (a
					   direct route: what fd connects to) */
	struct sfy_addr asked;          /* the destination as the caller gave it */
	bool resolve_dst;               /* dst is a name to resolve here first */
	bool dns_failed;                /* ...and it did not resolve */
	char note[SFY_CHAIN_NOTE_MAX];  /* for the log lines: the route's rule */
	const char *iso;                /* isolation password, NULL: none */
	char iso_buf[SFY_ISOLATE_PASS_MAX];
	enum sfy_s5_cmd cmd;
	size_t idx[SFY_MAX_PROXIES];
	size_t n, upto;                 /* hops in the chain; walk hops [0, upto) */
	size_t step_at;                 /* hop negotiated step by step, NO_STEP */
	uint32_t stepwise_now;          /* proxies (cfg index) to take step by step */
	struct aprobe *probe;           /* async: the race's second connection */
	int64_t deadline;               /* the whole chain's */
	int64_t hop_deadline;           /* the TCP connect's */
	bool has_bound;                 /* the program bound fd before connect() */
	struct sockaddr_storage bound;
	int tries;
	int result;
	/* The attempt under way. */
	size_t cur;                     /* position of the hop being read */
	size_t inited;                  /* hops [0, inited) have messages built */
	bool fwd_probe;                 /* hop fwd_hop's greeting went early as a probe */
	size_t fwd_hop;
	bool fwd_dropped;               /* ...and the hop before it dropped it */
	int64_t fwd_until;              /* ...and must be answered by then */
	int err;
	size_t failed;                  /* position in idx of the hop at fault */
	bool at_dst;                    /* the last hop could not reach dst */
	struct sfy_hop_error he;
	struct sfy_addr first;          /* hop 1's connected address */
	struct sfy_addr bnd;            /* the last hop's BND */
	int rep;                        /* ...and its REP (SOCKS5), -1: none */
	uint8_t in[SFY_HOP_IN_MAX];
	struct sfy_hop hops[SFY_MAX_PROXIES];
};

static int failed(struct sfy_chain_sm *sm, size_t i, int err, const char *why)
{
	sm->failed = i;
	sm->he.blame = SFY_BLAME_HOP;
	snprintf(sm->he.why, sizeof(sm->he.why), "%s", why);
	return sm->err = err;
}

/* Hop i failed with err: the hop itself, or (its reply says) what it was
 * asked to reach -- the next hop, or dst for the last. */
static int blame(struct sfy_chain_sm *sm, size_t i, int err)
{
	sm->failed = i;
	sm->he = sm->hops[i].e;
	if (i + 1 == sm->n && sm->hops[i].has_rep)
		sm->rep = sm->hops[i].rep;
	if (err != -SFY_ESTEPWISE && sm->he.blame == SFY_BLAME_TARGET) {
		if (i + 1 == sm->n)
			sm->at_dst = true;
		else
			sm->failed = i + 1;
	}
	return sm->err = err;
}

static const struct sfy_proxy *proxy_at(const struct sfy_chain_sm *sm, size_t i)
{
	return &sm->cfg->proxies[sm->idx[i]];
}

static bool is_s5(const struct sfy_proxy *p)
{
	return p->proto == SFY_PROTO_SOCKS5 || p->proto == SFY_PROTO_SOCKS5H;
}

/* ------------------------------------------------------------ hop 1 */

/* The destination's name resolved here, by the handshake deadline: for a
 * direct route (the address fd connects to, of family ask) or a chain in
 * local-DNS mode (what its last hop is asked for: IPv4 for a socks4 one).
 * 0 (sm->dst is the address now), SFY_SM_RUN (call again where blocking
 * is allowed), or -errno recorded. A name that does not resolve is
 * EHOSTUNREACH, as a SOCKS5 proxy's "host unreachable" is (errmap.c), so
 * a program sees the same errno whichever route the name took; a resolver
 * slower than the handshake timeout is ETIMEDOUT. */
static int resolve_dst(struct sfy_chain_sm *sm, int ask)
{
	/* .onion/.exit/.i2p: never this machine's resolver (its query would
	 * tell the network the name). The last hop gets the name itself when
	 * it can take one; else (socks4, a direct route) nothing is sent. */
	if (sfy_route_special_tld(sm->dst.name)) {
		if (sm->n && proxy_at(sm, sm->n - 1)->proto != SFY_PROTO_SOCKS4) {
			sm->resolve_dst = false;
			return 0;
		}
		sm->dns_failed = true;
		return failed(sm, 0, -EHOSTUNREACH, sm->n
			      ? ".onion/.exit/.i2p names are never resolved locally, and the last "
				"hop (socks4) cannot take a name"
			      : ".onion/.exit/.i2p names are never resolved locally");
	}
	if (!sm->may_block)
		return SFY_SM_RUN;
	if (sm->n && proxy_at(sm, sm->n - 1)->proto == SFY_PROTO_SOCKS4)
		ask = AF_INET;
	else if (sm->n)
		ask = AF_UNSPEC;
	struct sfy_addr a;
	char spelled[SFY_NAME_MAX + 2];
	sfy_dns_rules_local_spelling(sfy_routes_get(), sm->dst.name, sm->dst.port, spelled);
	int r = sfy_resolve_fam(spelled, sm->dst.port, ask, sm->deadline, &a);
	if (r < 0) {
		sm->dns_failed = true;
		return failed(sm, 0, r, r == -ETIMEDOUT ? "resolving the name locally timed out"
						       : "the name does not resolve locally");
	}
	sm->dst = a;
	sm->resolve_dst = false;
	return 0;
}

/* Resolves hop 1 (a direct route: the destination) and starts the TCP
 * connect: 0 connected, SFY_SM_OUT in progress, SFY_SM_RUN (resolve from a
 * thread that may block), or -errno. */
static int start_first(struct sfy_chain_sm *sm)
{
	const struct sfy_config *cfg = sm->cfg;
	int r, fam = sfy_sock_family(sm->fd);
	/* A socket that must stay what it is asks for an address it can
	 * reach: IPv4 for AF_INET, any for a dual-stack AF_INET6 socket (an
	 * IPv4 hop v4-mapped), IPv6 for a V6ONLY one. */
	int ask = !sm->async ? AF_UNSPEC : fam == AF_INET ? AF_INET
		  : v6only(sm->fd) ? AF_INET6 : AF_UNSPEC;
	if (sm->resolve_dst && (r = resolve_dst(sm, ask)) != 0)
		return r;
	sm->hop_deadline = min64(sm->deadline, sfy_now_ms() + cfg->connect_timeout_ms);
	if (sm->n == 0) {
		if (sm->cmd != SFY_S5_CONNECT)
			return failed(sm, 0, -EOPNOTSUPP, "a direct route has no UDP relay");
		sm->first = sm->dst;
	} else {
		if (!sm->may_block && !sfy_hop_first_cached(cfg, sm->idx[0], ask, &sm->first))
			return SFY_SM_RUN;
		if ((r = sfy_hop_first_addr_fam(cfg, sm->idx[0], ask, sm->hop_deadline,
						&sm->first)) < 0)
			return failed(sm, 0, r, r == -ETIMEDOUT
					? "resolving the proxy's host name timed out"
					: "cannot resolve the proxy's host name");
	}
	/* The program's socket may be of the other family than hop 1; an AF_INET6
	 * socket reaches an IPv4 hop through a v4-mapped address. */
	int want = sm->first.type == SFY_ATYP_IPV6 ? AF_INET6 : AF_INET;
	if (fam == AF_INET6 && want == AF_INET && !v6only(sm->fd))
		want = AF_INET6;
	if (fam != want) {
		if (sm->async)
			return failed(sm, 0, -ENETUNREACH, sm->n
				      ? "the proxy has no address of the socket's family"
				      : "no address of the socket's family");
		if ((r = sfy_sock_replace(sm->fd, want, sm->has_bound ? &sm->bound : NULL,
					  true)) < 0)
			return failed(sm, 0, r, sm->n ? "cannot open a socket for the proxy"
						      : "cannot open a socket of the address's family");
	}
	struct sockaddr_storage ss;
	int sl = sfy_addr_to_sockaddr(&sm->first, want, &ss);
	if (sl < 0)
		return failed(sm, 0, sl, sm->n ? "the proxy's address does not fit the socket"
					       : "the address does not fit the socket");
	r = sfy_io_connect_start(sm->fd, (struct sockaddr *)&ss, (socklen_t)sl, sm->hop_deadline);
	if (r == -EINPROGRESS)
		return SFY_SM_OUT;
	if (r < 0) {
		char why[sizeof(sm->he.why)];
		snprintf(why, sizeof(why), "TCP connect failed: %s", strerror(-r));
		return failed(sm, 0, r, why);
	}
	return 0;
}

/* The TCP connect to hop 1 is under way: 0 connected, SFY_SM_OUT, -errno. */
static int finish_first(struct sfy_chain_sm *sm)
{
	int r = sfy_io_connect_done(sm->fd);
	if (r == -EINPROGRESS) {
		if (sfy_now_ms() < sm->hop_deadline)
			return SFY_SM_OUT;
		r = -ETIMEDOUT;
	}
	if (r < 0) {
		char why[sizeof(sm->he.why)];
		snprintf(why, sizeof(why), "TCP connect failed: %s", strerror(-r));
		return failed(sm, 0, r, why);
	}
	return 0;
}

/* ------------------------------------------------------------ the hops */

/* What hop i is asked for: the hop after it, or dst for the last. */
static int target_of(struct sfy_chain_sm *sm, size_t i, int64_t dl, struct sfy_addr *out)
{
	if (i + 1 == sm->n) {
		*out = sm->dst;
		return 0;
	}
	int r = sfy_hop_next_addr(sm->cfg, proxy_at(sm, i), proxy_at(sm, i + 1), dl, out,
				  sm->he.why, sizeof(sm->he.why));
	if (r < 0) {
		sm->failed = i + 1;
		sm->he.blame = SFY_BLAME_HOP;
		sm->err = r;
	}
	return r;
}

/* How hop i negotiates: pipelined or not, probing or not. */
static void mode_of(const struct sfy_chain_sm *sm, size_t i, bool *pipe, bool *probe)
{
	const struct sfy_config *cfg = sm->cfg;
	const struct sfy_proxy *p = proxy_at(sm, i);
	/* Only SOCKS5 has messages to pipeline, so only SOCKS5 is probed. */
	bool s5 = is_s5(p);
	enum sfy_pipe_known known = cfg->pipeline == SFY_PIPELINE_AUTO && s5
				    ? sfy_stepwise_get(cfg, p) : SFY_PIPE_OK;
	*pipe = cfg->pipeline == SFY_PIPELINE_ON ||
		(cfg->pipeline == SFY_PIPELINE_AUTO && known != SFY_PIPE_STEPWISE);
	if (i == sm->step_at || (sm->stepwise_now >> sm->idx[i] & 1))
		*pipe = false;
	*probe = s5 && *pipe && known == SFY_PIPE_UNKNOWN && sm->step_at == NO_STEP;
}

/* Isolation credentials go to hop 1 only: the hop this machine talks to,
 * where a local Tor SocksPort is. A later hop is reached through it (a Tor
 * exit, in plaintext, sees that handshake): a token there would be a
 * stable tag on the connections isolation is to keep apart. */
static const char *iso_for(const struct sfy_chain_sm *sm, size_t i)
{
	return i == 0 ? sm->iso : NULL;
}

/* Builds hop i's messages. 0 or -errno (recorded). */
static int init_hop(struct sfy_chain_sm *sm, size_t i)
{
	int64_t dl = min64(sm->deadline, sfy_now_ms() + sm->cfg->connect_timeout_ms);
	struct sfy_addr next;
	int r;
	if ((r = target_of(sm, i, dl, &next)) < 0)
		return r;
	bool pipe, probe;
	mode_of(sm, i, &pipe, &probe);
	bool last = i + 1 == sm->n;
	r = sfy_hop_init(&sm->hops[i], proxy_at(sm, i), last ? sm->cmd : SFY_S5_CONNECT, &next,
			 pipe, probe, dl, iso_for(sm, i));
	if (r < 0)
		return blame(sm, i, r);
	sm->inited = i + 1;
	return 0;
}

/* Whether hop i+1's first messages may go out before hop i's reply:
 * 2 = all of them (hop i forwards early data), 1 = only a SOCKS5 greeting as
 * a probe of hop i's forwarding, 0 = no. */
static int early_next(const struct sfy_chain_sm *sm, size_t i)
{
	if (i + 1 >= sm->upto || sm->cfg->pipeline == SFY_PIPELINE_OFF)
		return 0;
	const struct sfy_hop *h = &sm->hops[i];
	/* Hop i must itself take its messages in one flight, known to. */
	if (!h->pipelined || h->probe || i == sm->step_at || i + 1 == sm->step_at)
		return 0;
	const struct sfy_proxy *p = proxy_at(sm, i), *next = proxy_at(sm, i + 1);
	enum sfy_pipe_known fwd = sm->cfg->pipeline == SFY_PIPELINE_ON
				  ? SFY_PIPE_OK : sfy_forward_get(sm->cfg, p);
	if (fwd == SFY_PIPE_STEPWISE)
		return 0;
	if (fwd == SFY_PIPE_OK)
		return 2;
	/* An HTTP proxy may take bytes after its CONNECT head for a second
	 * request and answer it with an error instead of its 200: never
	 * probed, early only with `pipelining: on`. */
	if (p->proto == SFY_PROTO_HTTP)
		return 0;
	return is_s5(next) && !(sm->stepwise_now >> sm->idx[i + 1] & 1) ? 1 : 0;
}

/* Makes sure hop cur's messages are built and, with as many hops after it
 * as may go early, handed to the kernel: hops [cur, inited) are the ones
 * whose first part goes (or went) out before hop cur's reply. 0,
 * SFY_SM_OUT, or -errno (recorded). */
static int flush_flight(struct sfy_chain_sm *sm)
{
	int r;
	if (sm->inited <= sm->cur && (r = init_hop(sm, sm->cur)) < 0)
		return r;
	for (size_t i = sm->cur; i < sm->inited; i++) {
		struct sfy_hop *h = &sm->hops[i];
		if ((r = sfy_hop_flush_first(h, sm->fd)) != 0)
			return r < 0 ? blame(sm, i, r) : r;
		if (i + 1 < sm->inited)
			continue;
		/* Hop i's first part is out: may hop i+1's follow? Only when
		 * that part is all of hop i's messages. */
		int e = h->part_end[0] == h->out_len && !sm->fwd_probe ? early_next(sm, i) : 0;
		if (!e)
			return 0;
		if ((r = init_hop(sm, i + 1)) < 0)
			return r;
		struct sfy_hop *nx = &sm->hops[i + 1];
		if (e == 1) {
			/* Probe: hop i+1 negotiates step by step and only its
			 * greeting goes now. */
			if (nx->pipelined) {
				struct sfy_addr next;
				if ((r = target_of(sm, i + 1, nx->deadline, &next)) < 0)
					return r;
				r = sfy_hop_init(nx, proxy_at(sm, i + 1),
						 i + 2 == sm->n ? sm->cmd : SFY_S5_CONNECT, &next,
						 false, false, nx->deadline, iso_for(sm, i + 1));
				if (r < 0)
					return blame(sm, i + 1, r);
			}
			sm->fwd_probe = true;
			sm->fwd_hop = i + 1;
			sm->fwd_until = 0;
		}
	}
	return 0;
}

/* Restarts the attempt on the same socket: disconnected, nothing sent. */
static void aprobe_end(struct sfy_chain_sm *sm);

static int restart(struct sfy_chain_sm *sm)
{
	aprobe_end(sm);
	struct sockaddr sa = { .sa_family = AF_UNSPEC };
	sfy_real()->connect(sm->fd, &sa, sizeof(sa));
	sm->tries++;
	sm->st = ST_FIRST;
	sm->cur = sm->inited = 0;
	sm->fwd_dropped = false;
	sm->fwd_probe = false;
	sm->err = 0;
	sm->failed = 0;
	sm->at_dst = false;
	sm->rep = -1;
	memset(&sm->he, 0, sizeof(sm->he));
	return 0;
}

/* ---------------------------------------------------------- the race */

struct race_ctx {
	struct sfy_chain_sm *sm;        /* the first connection's */
	struct sfy_chain_sm *second;
	size_t k;
};

static int run_blocking(struct sfy_chain_sm *sm);

static int race_second(void *arg, int fd, int64_t deadline)
{
	struct race_ctx *c = arg;
	(void)deadline;         /* the walk keeps its own per-hop deadlines */
	c->second->fd = fd;
	return run_blocking(c->second);
}

static int race_first(void *arg, int fd, int64_t deadline)
{
	struct race_ctx *c = arg;
	struct sfy_hop *h = &c->sm->hops[c->k];
	h->deadline = min64(h->deadline, deadline);
	sfy_hop_resume(h);
	for (;;) {
		int r = sfy_hop_step(h, fd, c->sm->in);
		if (r <= 0)
			return r;
		int64_t left = sfy_hop_deadline(h) - sfy_now_ms();
		struct pollfd pf = { .fd = fd, .events = (short)r };
		if (left > 0)
			sfy_real()->poll(&pf, 1, left > 60000 ? 60000 : (int)left);
	}
}

/* Hop k went silent after its method reply (blocking connect): race
 * (probe_race.h) and learn from what happened. 0 to go on with hop k+1,
 * or -errno (recorded). */
static int race(struct sfy_chain_sm *sm, size_t k)
{
	const struct sfy_config *cfg = sm->cfg;
	const struct sfy_proxy *p = proxy_at(sm, k);
	struct sfy_chain_sm *second = calloc(1, sizeof(*second));
	if (!second)
		return failed(sm, k, -ENOMEM, "out of memory");
	*second = (struct sfy_chain_sm){ .cfg = cfg, .async = false, .partial = true,
					 .may_block = true, .dst = sm->dst, .cmd = sm->cmd,
					 .n = sm->n, .upto = k + 1, .step_at = k,
					 .stepwise_now = sm->stepwise_now, .deadline = sm->deadline,
					 .has_bound = sm->has_bound, .bound = sm->bound,
					 .iso = sm->iso };
	memcpy(second->idx, sm->idx, sizeof(sm->idx));
	struct race_ctx c = { .sm = sm, .second = second, .k = k };
	struct sfy_race rc = { .finish_first = race_first, .second = race_second, .arg = &c,
			       .bound = sm->has_bound ? &sm->bound : NULL };
	char hop[600];
	sfy_proxy_format(p, hop, sizeof(hop));
	sfy_debug("%s silent after its method reply; racing a step-by-step connection", hop);
	enum sfy_race_winner w = sfy_probe_race(sm->fd, sm->hops[k].deadline, &rc);
	int r = 0;
	if (rc.first_closed) {
		sfy_stepwise_set(cfg, p, SFY_PIPE_STEPWISE);
		sfy_info("%s dropped pipelined bytes; negotiating step by step from now on", hop);
	}
	switch (w) {
	case SFY_RACE_FIRST:
		if (rc.first_err == 0 || sm->hops[k].e.blame == SFY_BLAME_TARGET)
			sfy_stepwise_set(cfg, p, SFY_PIPE_OK);
		r = rc.first_err < 0 ? blame(sm, k, rc.first_err) : 0;
		break;
	case SFY_RACE_SECOND:
		/* The first stayed silent while a fresh step-by-step connection
		 * to the same hop and target completed: evidence -- unless the
		 * first answered right after (a slow target). */
		if (rc.first_late) {
			sfy_stepwise_set(cfg, p, SFY_PIPE_OK);
		} else if (!rc.first_closed) {
			sfy_stepwise_set(cfg, p, SFY_PIPE_STEPWISE);
			sfy_info("%s ignored pipelined bytes; negotiating step by step from now on",
				 hop);
		}
		/* fd holds the second connection now: its hops are ours. */
		memcpy(sm->hops, second->hops, (k + 1) * sizeof(sm->hops[0]));
		sm->inited = k + 1;
		break;
	case SFY_RACE_NONE:
		if (rc.first_closed) {
			/* The step-by-step attempt has said where it failed. */
			sm->failed = second->failed;
			sm->at_dst = second->at_dst;
			sm->he = second->he;
			r = sm->err = rc.second_err;
		} else {
			if (!sm->hops[k].e.why[0])
				snprintf(sm->hops[k].e.why, sizeof(sm->hops[k].e.why),
					 "no reply to the request");
			r = blame(sm, k, rc.first_err);
		}
		break;
	}
	free(second);
	return r;
}

/* ------------------------------------------------- the asynchronous race */

/* A non-blocking connect's race: the program's socket can never be
 * swapped, so the step-by-step connection runs on a private socket, on its
 * own thread, only to give evidence. The pipelined one answers (even late:
 * a slow target) -> it wins, the proxy takes early bytes. The second
 * completes and the first is still silent SFY_RACE_GRACE_MS later (or at
 * the hop's deadline, if that comes first) -> the
 * proxy dropped our bytes: learned, and the set-up starts over on the
 * program's socket, this hop step by step. Each side's target sees one
 * attempt. */
struct aprobe {
	pthread_t thread;
	struct sfy_chain_sm *second;
	size_t k;
	atomic_int done;
	int err;
	int64_t done_at;
};

/* How often the driver looks at the second connection while it runs. */
#define APROBE_TICK_MS 20

static void *aprobe_run(void *arg)
{
	struct aprobe *ap = arg;
	ap->err = run_blocking(ap->second);
	ap->done_at = sfy_now_ms();
	atomic_store(&ap->done, 1);
	return NULL;
}

/* Hop k went silent in an asynchronous set-up: start the second side. 0,
 * or -1 when it cannot start (the first then waits alone). */
static int aprobe_start(struct sfy_chain_sm *sm, size_t k)
{
	struct aprobe *ap = calloc(1, sizeof(*ap));
	struct sfy_chain_sm *second = calloc(1, sizeof(*second));
	int fam = sfy_sock_family(sm->fd);
	int fd = fam < 0 ? -1 : sfy_private_fd(socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (!ap || !second || fd < 0) {
		free(ap);
		free(second);
		if (fd >= 0)
			sfy_real()->close(fd);
		return -1;
	}
	*second = (struct sfy_chain_sm){ .cfg = sm->cfg, .fd = fd, .async = false,
					 .partial = true, .may_block = true, .dst = sm->dst,
					 .cmd = sm->cmd, .n = sm->n, .upto = k + 1, .step_at = k,
					 .stepwise_now = sm->stepwise_now,
					 .deadline = sm->hops[k].deadline, .iso = sm->iso };
	memcpy(second->idx, sm->idx, sizeof(sm->idx));
	ap->second = second;
	ap->k = k;
	int e = sfy_thread_start(&ap->thread, NULL, aprobe_run, ap);
	if (e) {
		sfy_real()->close(fd);
		free(second);
		free(ap);
		return -1;
	}
	sm->probe = ap;
	return 0;
}

/* Ends the second side (it gives up at once on a shut-down socket). */
static void aprobe_end(struct sfy_chain_sm *sm)
{
	struct aprobe *ap = sm->probe;
	if (!ap)
		return;
	sfy_real()->shutdown(ap->second->fd, SHUT_RDWR);
	pthread_join(ap->thread, NULL);
	sfy_real()->close(ap->second->fd);
	free(ap->second);
	free(ap);
	sm->probe = NULL;
}

/* When a completed second side wins: SFY_RACE_GRACE_MS after it completed,
 * but never after hop k's deadline -- there the first would time out and
 * take a working step-by-step path down with it. */
static int64_t aprobe_decides_at(const struct sfy_chain_sm *sm)
{
	const struct aprobe *ap = sm->probe;
	return min64(ap->done_at + SFY_RACE_GRACE_MS, sm->hops[ap->k].deadline);
}

/* While the race runs, before each step of hop k: 0 to go on waiting for
 * the first, or -SFY_ESILENT when the second has won (learned; the caller
 * starts over step by step). */
static int aprobe_check(struct sfy_chain_sm *sm)
{
	struct aprobe *ap = sm->probe;
	if (!ap || !atomic_load(&ap->done) || ap->err < 0 ||
	    sfy_now_ms() < aprobe_decides_at(sm))
		return 0;
	/* The second completed and the first stayed silent past the grace:
	 * evidence. */
	size_t k = ap->k;
	const struct sfy_proxy *p = proxy_at(sm, k);
	char hop[600];
	sfy_proxy_format(p, hop, sizeof(hop));
	sfy_stepwise_set(sm->cfg, p, SFY_PIPE_STEPWISE);
	sfy_info("%s ignored pipelined bytes; negotiating step by step from now on", hop);
	aprobe_end(sm);
	sm->stepwise_now |= 1u << sm->idx[k];
	sm->failed = k;
	snprintf(sm->he.why, sizeof(sm->he.why), "ignored pipelined bytes");
	return sm->err = -SFY_ESILENT;
}

/* Hop k's first connection answered (r: its step's result, 0 or an
 * error): it wins the race, whatever the second did. */
static void aprobe_first_answered(struct sfy_chain_sm *sm, int r)
{
	struct aprobe *ap = sm->probe;
	if (!ap)
		return;
	const struct sfy_proxy *p = proxy_at(sm, ap->k);
	if (r == 0 || (r != -SFY_ESTEPWISE && sm->hops[ap->k].e.blame == SFY_BLAME_TARGET))
		sfy_stepwise_set(sm->cfg, p, SFY_PIPE_OK);
	aprobe_end(sm);
}

/* ------------------------------------------------------------ the steps */

/* Hop cur's step failed with r: race, retry, or give up on this attempt.
 * > 0 / 0 to go on stepping, < 0 when the attempt failed (recorded). */
static int hop_failed(struct sfy_chain_sm *sm, int r)
{
	size_t k = sm->cur;
	if (r == -SFY_ESILENT) {
		if (!sm->async && !sm->partial) {
			if ((r = race(sm, k)) < 0)
				return r;
			if (k + 1 == sm->n)
				sm->bnd = sm->hops[k].bnd;
			sm->cur++;
			return 0;
		}
		/* Asynchronous: race a second connection on a private socket
		 * for evidence; the first keeps waiting, with no window. */
		char hop[600];
		sfy_proxy_format(proxy_at(sm, k), hop, sizeof(hop));
		sfy_debug("%s silent after its method reply; racing a step-by-step connection",
			  hop);
		aprobe_start(sm, k);
		sfy_hop_resume(&sm->hops[k]);
		return 0;
	}
	if (r == -SFY_ESTEPWISE)
		sm->stepwise_now |= 1u << sm->idx[k];
	return blame(sm, k, r);
}

/* Hop cur's reply is in. */
static void hop_done(struct sfy_chain_sm *sm)
{
	size_t k = sm->cur;
	struct sfy_hop *h = &sm->hops[k];
	const struct sfy_proxy *p = proxy_at(sm, k);
	if (h->probe)
		/* A reply to a pipelined request: it takes early bytes. */
		sfy_stepwise_set(sm->cfg, p, SFY_PIPE_OK);
	if (k + 1 == sm->n) {
		sm->bnd = h->bnd;
		sm->rep = h->has_rep ? h->rep : -1;
	}
	if (sm->fwd_probe && k + 1 == sm->fwd_hop) {
		/* Hop k+1's greeting went early through hop k: its answer is
		 * immediate unless hop k dropped it. */
		int64_t rtt = sfy_now_ms() - h->t0, win = 4 * rtt;
		if (win < SFY_PIPELINE_PROBE_MS)
			win = SFY_PIPELINE_PROBE_MS;
		sm->fwd_until = sfy_now_ms() + win;
	}
	sm->cur++;
}

static int step_hops(struct sfy_chain_sm *sm)
{
	while (sm->cur < sm->upto) {
		int r = flush_flight(sm);
		if (r < 0)
			return r;
		if (r > 0) {
			if (sfy_now_ms() >= sm->hops[sm->cur].deadline) {
				snprintf(sm->hops[sm->cur].e.why, sizeof(sm->hops[sm->cur].e.why),
					 "could not send within the timeout");
				return blame(sm, sm->cur, -ETIMEDOUT);
			}
			return r;
		}
		size_t k = sm->cur;
		struct sfy_hop *h = &sm->hops[k];
		bool probed_fwd = sm->fwd_probe && sm->fwd_until && k == sm->fwd_hop;
		if (sm->probe && (r = aprobe_check(sm)) < 0)
			return r;
		r = sfy_hop_step(h, sm->fd, sm->in);
		if (sm->probe && r <= 0 && r != -SFY_ESILENT)
			aprobe_first_answered(sm, r);
		if (probed_fwd && (r == 0 || sfy_hop_answered(h))) {
			/* The early greeting was answered: hop k-1 forwards. */
			sfy_forward_set(sm->cfg, proxy_at(sm, k - 1), SFY_PIPE_OK);
			sm->fwd_probe = false;
		}
		if (r > 0) {
			if (probed_fwd && sm->fwd_probe && sfy_now_ms() >= sm->fwd_until) {
				char hop[600];
				sfy_proxy_format(proxy_at(sm, k - 1), hop, sizeof(hop));
				sfy_forward_set(sm->cfg, proxy_at(sm, k - 1), SFY_PIPE_STEPWISE);
				sfy_info("%s did not pass early bytes on; waiting for its replies "
					 "from now on", hop);
				snprintf(sm->he.why, sizeof(sm->he.why),
					 "dropped bytes sent before its reply");
				sm->failed = k - 1;
				sm->fwd_dropped = true;
				return sm->err = -SFY_ESTEPWISE;
			}
			return r;
		}
		if (r < 0) {
			/* A race decided in the hop's favour goes on, as does a
			 * race started: the loop looks at hop cur again. */
			if (hop_failed(sm, r) < 0)
				return sm->err;
			continue;
		}
		hop_done(sm);
	}
	return 0;
}

/* Tor's RESOLVE / RESOLVE_PTR: a lookup, not a connection. */
static bool is_lookup(enum sfy_s5_cmd cmd)
{
	return cmd == SFY_S5_RESOLVE || cmd == SFY_S5_RESOLVE_PTR;
}

/* A dynamic chain may go on without a dead hop -- but never without its
 * last one for a lookup (the hop before it would get the name it must not
 * see) or a BIND (it must reach the proxy that carried the connection). */
static bool may_skip(const struct sfy_chain_sm *sm)
{
	return sm->failed + 1 < sm->n ||
	       !(is_lookup(sm->cmd) || sm->cmd == SFY_S5_BIND);
}

static const char *sep_of(const struct sfy_chain_sm *sm)
{
	return sm->note[0] ? ", " : "";
}

static const char *lookup_name(const struct sfy_chain_sm *sm)
{
	return sm->cmd == SFY_S5_RESOLVE ? "RESOLVE" : "RESOLVE_PTR";
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

/* The attempt failed (sm->err): retry it, or end the set-up with one line. */
static int attempt_failed(struct sfy_chain_sm *sm)
{
	const struct sfy_config *cfg = sm->cfg;
	char dsts[300], hop[600];
	if (sm->partial) {
		sm->st = ST_FAILED;
		return sm->result = sm->err;
	}
	bool retry = false;
	/* No hop is at fault when the destination's name did not resolve. */
	if (sm->tries < 2 * SFY_MAX_PROXIES + 2 && !sm->dns_failed) {
		if (sm->err == -SFY_ESILENT) {
			retry = true;
		} else if (sm->err == -SFY_ESTEPWISE) {
			const struct sfy_proxy *p = proxy_at(sm, sm->failed);
			sfy_proxy_format(p, hop, sizeof(hop));
			if (!sm->fwd_dropped) {
				/* Closed right after its method reply: evidence. */
				sfy_stepwise_set(cfg, p, SFY_PIPE_STEPWISE);
				sfy_info("%s dropped pipelined bytes; negotiating step by step from "
					 "now on", hop);
			}
			retry = true;
		} else if (cfg->chain == SFY_CHAIN_DYNAMIC && !sm->at_dst && sm->n > 1 &&
			   may_skip(sm) && sfy_now_ms() < sm->deadline) {
			sfy_proxy_format(proxy_at(sm, sm->failed), hop, sizeof(hop));
			sfy_info("skipping dead hop %s: %s", hop, sm->he.why);
			memmove(&sm->idx[sm->failed], &sm->idx[sm->failed + 1],
				(sm->n - sm->failed - 1) * sizeof(sm->idx[0]));
			sm->n--;
			sm->upto = sm->n;
			retry = true;
		}
	}
	if (retry && sfy_now_ms() < sm->deadline) {
		restart(sm);
		return 0;
	}
	sfy_addr_format(&sm->asked, dsts, sizeof(dsts));
	if (sm->n)
		sfy_proxy_format(proxy_at(sm, sm->failed), hop, sizeof(hop));
	if (sm->err == -SFY_ESTEPWISE || sm->err == -SFY_ESILENT) {
		sm->err = sm->err == -SFY_ESILENT ? -ETIMEDOUT : -ECONNREFUSED;
		if (!sm->he.why[0])
			snprintf(sm->he.why, sizeof(sm->he.why),
				 "closed the connection after its method reply");
	}
	int err = program_errno(sm->err);
	const char *why = sm->he.why[0] ? sm->he.why : strerror(-err);
	const char *sep = sep_of(sm);
	if (sm->dns_failed || !sm->n) {
		char at[300] = "";
		if (!sm->dns_failed && sm->asked.type == SFY_ATYP_DOMAIN &&
		    sm->dst.type != SFY_ATYP_DOMAIN) {
			strcpy(at, " to ");
			sfy_addr_format(&sm->dst, at + 4, sizeof(at) - 4);
		}
		sfy_warn("connect to %s failed: %s%s: %s (%s)%s%s", dsts,
			 sm->n ? "resolving for the chain" : "direct", at, why,
			 strerrorname_np(-err), sep, sm->note);
	} else if (sm->at_dst && is_lookup(sm->cmd))
		/* The name's answer, not a failure of the chain: the resolver
		 * (dns_proxy.c) logs what it means. */
		sfy_debug("%s %s: last hop %s: %s%s%s", lookup_name(sm), dsts, hop, why, sep,
			  sm->note);
	else if (sm->at_dst)
		sfy_warn("connect to %s failed: last hop %s: %s (%s)%s%s", dsts, hop, why,
			 strerrorname_np(-err), sep, sm->note);
	else
		sfy_warn("connect to %s failed: hop %zu %s: %s (%s)%s%s", dsts, sm->failed + 1, hop,
			 why, strerrorname_np(-err), sep, sm->note);
	sm->st = ST_FAILED;
	return sm->result = err;
}

/* The chain is up: one info line. */
static int finished(struct sfy_chain_sm *sm)
{
	sm->st = ST_DONE;
	if (is_lookup(sm->cmd)) {
		if (!sm->partial && sfy_log_level_get() >= SFY_LOG_DEBUG) {
			char dsts[300];
			sfy_addr_format(&sm->asked, dsts, sizeof(dsts));
			sfy_debug("%s %s via %zu hop%s%s%s", lookup_name(sm), dsts, sm->n,
				  sm->n == 1 ? "" : "s", sep_of(sm), sm->note);
		}
		return sm->result = 0;
	}
	if (!sm->partial && sfy_log_level_get() >= SFY_LOG_INFO) {
		char dsts[300], at[300] = "";
		const char *sep = sep_of(sm);
		sfy_addr_format(&sm->asked, dsts, sizeof(dsts));
		if (sm->asked.type == SFY_ATYP_DOMAIN && sm->dst.type != SFY_ATYP_DOMAIN)
			sfy_addr_format(&sm->dst, at, sizeof(at));
		if (!sm->n)
			sfy_info("%s: direct%s%s%s%s%s", dsts, at[0] ? " (" : "", at, at[0] ? ")" : "",
				 sep, sm->note);
		else
			sfy_info("%s via %zu hop%s%s%s%s%s%s", dsts, sm->n, sm->n == 1 ? "" : "s",
				 at[0] ? " (resolved here: " : "", at, at[0] ? ")" : "", sep, sm->note);
	}
	return sm->result = 0;
}

int sfy_chain_sm_step(struct sfy_chain_sm *sm)
{
	for (;;) {
		int r;
		switch (sm->st) {
		case ST_FIRST:
			r = start_first(sm);
			if (r == SFY_SM_RUN)
				sm->may_block = true;
			else if (r == SFY_SM_OUT)
				sm->st = ST_CONNECTING;
			break;
		case ST_CONNECTING:
			r = finish_first(sm);
			break;
		case ST_HOPS:
			r = step_hops(sm);
			break;
		default:
			return sm->result;
		}
		if (r > 0)
			return r;
		if (r < 0) {
			if ((r = attempt_failed(sm)) < 0)
				return r;
			continue;       /* a retry from hop 1 */
		}
		if (sm->st == ST_HOPS)
			return finished(sm);
		sm->st = ST_HOPS;
	}
}

int64_t sfy_chain_sm_deadline(const struct sfy_chain_sm *sm)
{
	switch (sm->st) {
	case ST_FIRST:
	case ST_CONNECTING:
		return sm->hop_deadline;
	case ST_HOPS:
		if (sm->inited <= sm->cur || sm->cur >= sm->upto)
			return sm->deadline;
		int64_t d = sfy_hop_deadline(&sm->hops[sm->cur]);
		if (sm->fwd_probe && sm->fwd_until && sm->fwd_until < d)
			d = sm->fwd_until;
		if (sm->probe) {
			/* The race's second side is looked at, not waited on. */
			int64_t t = atomic_load(&sm->probe->done)
				    ? aprobe_decides_at(sm)
				    : sfy_now_ms() + APROBE_TICK_MS;
			if (t < d)
				d = t;
		}
		return d;
	default:
		return sm->deadline;
	}
}

struct sfy_chain_sm *sfy_chain_sm_new(const struct sfy_config *cfg, int fd,
				      const struct sfy_addr *dst, enum sfy_s5_cmd cmd, bool async)
{
	struct sfy_chain_sm *sm = malloc(sizeof(*sm));
	if (!sm)
		return NULL;
	memset(sm, 0, offsetof(struct sfy_chain_sm, in));
	sm->cfg = cfg;
	sm->fd = fd;
	sm->async = async;
	sm->may_block = !async;
	sm->dst = sm->asked = *dst;
	sm->cmd = cmd;
	sm->rep = -1;
	sm->n = sm->upto = pick(cfg, sm->idx);
	/* A name reaches the last hop as a name only when the chain resolves
	 * names remotely; a direct route always resolves it here -- except a
	 * .onion/.exit/.i2p name, which is never resolved here (resolve_dst). */
	sm->resolve_dst = dst->type == SFY_ATYP_DOMAIN && (!sm->n || cfg->dns == SFY_DNS_LOCAL);
	sm->step_at = NO_STEP;
	/* One password for the whole set-up, retries included: a connection
	 * (isolate: connection) is this set-up, whatever it takes. */
	sm->iso = sm->n ? sfy_isolate_pass(cfg->isolate, sm->iso_buf) : NULL;
	sm->deadline = sfy_now_ms() + cfg->handshake_timeout_ms;
	sm->has_bound = sfy_sock_bound(fd, &sm->bound);
	if (sm->n)
		sfy_stepwise_warm(cfg);
	return sm;
}

int sfy_chain_sm_fit(struct sfy_chain_sm *sm)
{
	struct sfy_addr a;
	if (!sm->n)
		return 0;       /* a direct route resolves for the socket's family */
	const struct sfy_proxy *p = proxy_at(sm, 0);
	if (sfy_addr_set_host(&a, p->host, p->port) < 0 || a.type == SFY_ATYP_DOMAIN)
		return 0;
	int fam = sfy_sock_family(sm->fd);
	int want = a.type == SFY_ATYP_IPV6 ? AF_INET6 : AF_INET;
	if (fam < 0 || fam == want || (fam == AF_INET6 && !v6only(sm->fd)))
		return 0;
	int r = sfy_sock_replace(sm->fd, want, sm->has_bound ? &sm->bound : NULL, true);
	if (r == 0)
		sfy_ready_replaced(sm->fd);
	return r;
}

void sfy_chain_sm_set_fd(struct sfy_chain_sm *sm, int fd)
{
	sm->fd = fd;
}

void sfy_chain_sm_set_note(struct sfy_chain_sm *sm, const char *note)
{
	snprintf(sm->note, sizeof(sm->note), "%s", note ? note : "");
}

void sfy_chain_sm_report(const struct sfy_chain_sm *sm, struct sfy_chain_report *rep)
{
	memcpy(rep->hops, sm->idx, sm->n * sizeof(sm->idx[0]));
	rep->nhops = sm->n;
	rep->last = sm->n ? sm->idx[sm->n - 1] : 0;
	rep->bnd = sm->bnd;
	rep->rep = sm->rep;
	rep->dst = sm->dst;
	rep->bound = sm->has_bound;
	if (sm->n <= 1) {       /* no hops: the destination's own address */
		rep->last_addr = sm->first;
	} else {
		const struct sfy_proxy *p = &sm->cfg->proxies[rep->last];
		sfy_addr_set_host(&rep->last_addr, p->host, p->port);
	}
	rep->last_addr_known = rep->last_addr.type != SFY_ATYP_DOMAIN;
}

void sfy_chain_sm_free(struct sfy_chain_sm *sm)
{
	aprobe_end(sm);
	free(sm);
}

/* The blocking caller's loop: the same steps, waiting with poll(). */
static int run_blocking(struct sfy_chain_sm *sm)
{
	for (;;) {
		int w = sfy_chain_sm_step(sm);
		if (w <= 0)
			return w;
		if (w & SFY_SM_RUN)
			continue;
		int64_t left = sfy_chain_sm_deadline(sm) - sfy_now_ms();
		struct pollfd pf = { .fd = sm->fd, .events = (short)(w & (POLLIN | POLLOUT)) };
		if (left > 0)
			sfy_real()->poll(&pf, 1, left > 60000 ? 60000 : (int)left);
	}
}

int sfy_chain_connect(const struct sfy_config *cfg, int fd, const struct sfy_addr *dst,
		      enum sfy_s5_cmd cmd, struct sfy_chain_report *rep)
{
	return sfy_chain_connect_note(cfg, fd, dst, cmd, rep, NULL);
}

int sfy_chain_connect_note(const struct sfy_config *cfg, int fd, const struct sfy_addr *dst,
			   enum sfy_s5_cmd cmd, struct sfy_chain_report *rep, const char *note)
{
	return sfy_chain_connect_hops(cfg, fd, dst, cmd, NULL, 0, rep, note);
}

int sfy_chain_connect_hops(const struct sfy_config *cfg, int fd, const struct sfy_addr *dst,
			   enum sfy_s5_cmd cmd, const size_t *hops, size_t nhops,
			   struct sfy_chain_report *rep, const char *note)
{
	struct sfy_chain_sm *sm = sfy_chain_sm_new(cfg, fd, dst, cmd, false);
	if (!sm)
		return -ENOMEM;
	if (hops && nhops && nhops <= SFY_MAX_PROXIES) {
		for (size_t i = 0; i < nhops; i++)
			if (hops[i] >= cfg->nproxies) {
				sfy_chain_sm_free(sm);
				return -EINVAL;
			}
		memcpy(sm->idx, hops, nhops * sizeof(hops[0]));
		sm->n = sm->upto = nhops;
	}
	sfy_chain_sm_set_note(sm, note);
	int r = run_blocking(sm);
	if (r == 0 && rep)
		sfy_chain_sm_report(sm, rep);
	else if (rep && (rep->rep = sm->rep) >= 0)
		rep->last = sm->idx[sm->n - 1];
	sfy_chain_sm_free(sm);
	return r;
}
