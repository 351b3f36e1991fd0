/* socksify --check: for each hop in order, build the chain up to the hop
 * before it, ask that chain to reach the hop, and greet the hop itself
 * (SOCKS5: method negotiation incl. the credentials we would offer). Prints
 * one line per hop with its status and the time it took. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chain.h"
#include "check.h"
#include "route.h"
#include "hop_addr.h"
#include "io.h"
#include "log.h"
#include "socks5.h"

/* Blocking helpers for the greeting: the launcher's own thread, nothing to
 * interleave. 0 or -1. */
static int wait_fd(int fd, short ev, int64_t deadline)
{
	int64_t left = deadline - sfy_now_ms();
	struct pollfd p = { .fd = fd, .events = ev };
	return left > 0 && poll(&p, 1, (int)left) == 1 ? 0 : -1;
}

static int send_all(int fd, const uint8_t *b, size_t n, int64_t deadline)
{
	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			b += w;
			n -= (size_t)w;
		} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
			return -1;
		} else if (wait_fd(fd, POLLOUT, deadline) < 0) {
			return -1;
		}
	}
	return 0;
}

static int recv_exact(int fd, uint8_t *b, size_t n, int64_t deadline)
{
	while (n > 0) {
		ssize_t r = recv(fd, b, n, MSG_DONTWAIT);
		if (r > 0) {
			b += r;
			n -= (size_t)r;
		} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
			return -1;
		} else if (wait_fd(fd, POLLIN, deadline) < 0) {
			return -1;
		}
	}
	return 0;
}

static int connect_by(int fd, const struct sockaddr *sa, socklen_t len, int64_t deadline)
{
	int r = sfy_io_connect_start(fd, sa, len, deadline);
	while (r == -EINPROGRESS) {
		if (wait_fd(fd, POLLOUT, deadline) < 0)
			return -ETIMEDOUT;
		r = sfy_io_connect_done(fd);
	}
	return r;
}

/* SOCKS5 only: greeting [+ auth] answered as expected. */
static const char *greet(int fd, const struct sfy_proxy *p, int64_t deadline)
{
	uint8_t out[8 + SFY_S5_AUTH_MAX], in[2];
	if (p->proto != SFY_PROTO_SOCKS5 && p->proto != SFY_PROTO_SOCKS5H)
		return NULL;
	ssize_t n = sfy_s5_build_greeting(out, sizeof(out), !p->has_user, p->has_user);
	size_t need;
	uint8_t v;
	if (n < 0 || send_all(fd, out, (size_t)n, deadline) < 0 ||
	    recv_exact(fd, in, 2, deadline) < 0 ||
	    sfy_s5_parse_method(in, 2, &need, &v) != SFY_PARSE_COMPLETE)
		return "no SOCKS5 greeting reply";
	if (v == SFY_S5_AUTH_NO_ACCEPTABLE)
		return "refuses our authentication method";
	if (!p->has_user)
		return v == SFY_S5_AUTH_NONE ? NULL : "asks for a method we did not offer";
	n = sfy_s5_build_auth(out, sizeof(out), p->user, p->pass);
	if (n < 0 || send_all(fd, out, (size_t)n, deadline) < 0 ||
	    recv_exact(fd, in, 2, deadline) < 0 ||
	    sfy_s5_parse_auth(in, 2, &need, &v) != SFY_PARSE_COMPLETE)
		return "no authentication reply";
	return v == 0 ? NULL : "username/password rejected";
}

static int check_chain(const struct sfy_config *cfg)
{
	struct sfy_config *sub = malloc(sizeof(*sub));
	if (!sub)
		return 1;
	size_t good = 0;
	printf("chain: %s, %zu hop%s\n", sfy_chain_mode_name(cfg->chain), cfg->nproxies,
	       cfg->nproxies == 1 ? "" : "s");
	for (size_t i = 0; i < cfg->nproxies; i++) {
		const struct sfy_proxy *p = &cfg->proxies[i];
		char name[600];
		sfy_proxy_format(p, name, sizeof(name));
		*sub = *cfg;
		sub->chain = SFY_CHAIN_STRICT;
		int64_t t0 = sfy_now_ms(), deadline = t0 + cfg->handshake_timeout_ms;
		const char *why = NULL;
		char buf[160];
		int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			why = "cannot open a socket";
		} else if (i == 0) {
			struct sfy_addr a;
			struct sockaddr_storage ss;
			int sl, r = sfy_hop_first_addr(cfg, 0, t0 + cfg->connect_timeout_ms, &a);
			if (r < 0)
				why = "cannot resolve the host name";
			else if ((sl = sfy_addr_to_sockaddr(&a, AF_INET6, &ss)) < 0)
				why = "bad address";
			else if ((r = connect_by(fd, (struct sockaddr *)&ss, (socklen_t)sl,
						     t0 + cfg->connect_timeout_ms)) < 0)
				why = strerror(-r);
		} else {
			/* Hops 1..i-1 as the chain, hop i as the destination. */
			struct sfy_addr dst;
			sub->nproxies = i;
			sub->log_level = SFY_LOG_ERROR;
			sfy_log_setup(SFY_LOG_ERROR, NULL);
			int r = sfy_addr_set_host(&dst, p->host, p->port);
			if (r == 0)
				r = sfy_chain_connect(sub, fd, &dst, SFY_S5_CONNECT, NULL);
			if (r < 0) {
				snprintf(buf, sizeof(buf), "unreachable through hops 1-%zu: %s", i,
					 strerror(-r));
				why = buf;
			}
		}
		if (!why)
			why = greet(fd, p, deadline);
		if (fd >= 0)
			close(fd);
		double ms = (double)(sfy_now_ms() - t0);
		printf("hop %zu  %-40s  %-4s  %6.1f ms%s%s\n", i + 1, name, why ? "FAIL" : "ok", ms,
		       why ? "  " : "", why ? why : "");
		good += !why;
	}
	free(sub);
	bool usable = cfg->chain == SFY_CHAIN_STRICT ? good == cfg->nproxies
		      : cfg->chain == SFY_CHAIN_DYNAMIC ? good >= 1
		      : good >= (cfg->chain_length ? cfg->chain_length : 1);
	printf("chain %s\n", usable ? "usable" : "NOT usable");
	return usable ? 0 : 1;
}

int sfy_check(const struct sfy_config *cfg)
{
	char err[SFY_ERR_MAX];
	struct sfy_routes *rt = sfy_routes_build(cfg, err, sizeof(err));
	if (!rt) {
		fprintf(stderr, "socksify: %s\n", err);
		return 1;
	}
	/* Every chain a rule or default: can send a connection through, one
	 * after the other: the top-level proxies (when there are any), then
	 * the named chains. */
	int rc = 0;
	bool first = true;
	for (int via = SFY_VIA_TOP; via < (int)cfg->nchains; via++) {
		const struct sfy_config *c = sfy_routes_chain(rt, via);
		if (!c)
			continue;
		if (cfg->nchains) {
			printf("%s== %s\n", first ? "" : "\n", via < 0 ? "proxies" : cfg->chains[via].name);
			fflush(stdout);
		}
		first = false;
		rc |= check_chain(c);
	}
	if (first)
		printf("no chain configured: every route is direct or block\n");
	sfy_routes_free(rt);
	return rc;
}
