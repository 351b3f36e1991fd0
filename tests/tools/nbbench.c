/* nbbench: N concurrent non-blocking connects, the way an event loop makes
 * them, timed -- run under socksify or proxychains4 (whatever hooks
 * connect()) against connbench's echo server.
 *
 *   nbbench --host H --port P --count N [--rounds R] [--warmup W] [--timeout S]
 *           [--socks5 A:PORT]
 *
 * One round: open N non-blocking sockets, connect() each (EINPROGRESS or an
 * immediate 0 are both fine), wait with epoll until every one is writable
 * with SO_ERROR 0 ("connected"), then send one byte on each and wait until
 * every echo is back ("echoed"). Times are from the first socket() of the
 * round. Prints, over R rounds (median of each):
 *
 *   RESULT n=N rounds=R connect_ms=C echo_ms=E call_max_ms=M call_sum_ms=S
 *
 * call_max_ms is the longest single connect() call: how long the program's
 * event loop stood still in one call (a non-blocking connect should return
 * in well under a millisecond); call_sum_ms is all N calls together. W
 * warm-up rounds of one connect come first, untimed (library start-up,
 * config load, a first probe of the proxy are not per-connect costs).
 *
 * --socks5 A:PORT: no shim; nbbench itself is the asynchronous client: each
 * socket connects to the SOCKS5 proxy A:PORT (IPv4, no auth) and, once
 * writable, sends greeting and CONNECT request in one write and reads both
 * replies as they come, all sockets at once in the same epoll loop; a
 * socket counts as connected when its CONNECT reply is in. That is the
 * ceiling for a shim with the same proxy and links (the "native" row).
 *
 * It is a benchmark, but an honest one: a socket reported writable whose
 * send() then fails (EAGAIN: readiness came before the connection was up),
 * a nonzero SO_ERROR, a wrong echo byte or a round not done after S seconds
 * (default 120) fails the run: exit 1 with the reason on stderr. Bad usage:
 * exit 2. H is numeric: no resolver time in the numbers. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

/* Far above the 64 the bench uses; each socket is one fd. */
#define MAX_N 4096
#define MAX_ROUNDS 1000

static struct sockaddr_storage dst;
static socklen_t dst_len;
static double timeout_s = 120;

/* dst from the command line: 0, or -1 when host is not a literal. */
static int parse_dst(const char *host, int port)
{
	dst_len = parse_sockaddr(host, port, &dst);
	return dst_len ? 0 : -1;
}

struct round_times {
	int64_t connect, echo, call_max, call_sum;
};

/* Waits for `want` events of the kind each socket is registered for;
 * on_ready(i, events) returns 1 when socket i is done, 0 to keep waiting,
 * -1 on failure. */
static int wait_all(int ep, int want, int64_t t0, int (*on_ready)(int, uint32_t))
{
	struct epoll_event evs[256];
	int done = 0;
	while (done < want) {
		int64_t left_ms = (int64_t)(timeout_s * 1000) - (now_ns() - t0) / 1000000;
		if (left_ms <= 0) {
			fprintf(stderr, "nbbench: %d of %d sockets not ready after %.0f s\n", want - done,
				want, timeout_s);
			return -1;
		}
		int n = epoll_wait(ep, evs, 256, (int)(left_ms > 1000 ? 1000 : left_ms));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("nbbench: epoll_wait");
			return -1;
		}
		for (int k = 0; k < n; k++) {
			int r = on_ready(evs[k].data.u32, evs[k].events);
			if (r < 0)
				return -1;
			done += r;
		}
	}
	return 0;
}

static int *fds, ep_fd;
static struct sockaddr_in proxy;        /* --socks5: sin_family set */
/* --socks5: bytes of the two replies (2 + 10) read so far, per socket. */
static unsigned char (*reply)[12];
static int *got;

/* --socks5: the connect to the proxy is up (first call: send greeting and
 * request) or a reply byte came in. 1 when the CONNECT reply is complete.
 *   greeting 05 01 00                reply 05 00
 *   request  05 01 00 01 ADDR PORT   reply 05 00 00 01 ADDR(4) PORT(2) */
static int socks_step(int i)
{
	if (got[i] < 0) {
		const struct sockaddr_in *d = (const struct sockaddr_in *)&dst;
		unsigned char m[13] = { 5, 1, 0, 5, 1, 0, 1 };
		memcpy(m + 7, &d->sin_addr, 4);
		memcpy(m + 11, &d->sin_port, 2);
		/* 13 bytes into an empty send buffer: all or nothing. */
		if (send(fds[i], m, sizeof(m), MSG_NOSIGNAL) != (ssize_t)sizeof(m)) {
			fprintf(stderr, "nbbench: socket %d: SOCKS5 request: %s\n", i, strerror(errno));
			return -1;
		}
		got[i] = 0;
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		epoll_ctl(ep_fd, EPOLL_CTL_MOD, fds[i], &ev);
		return 0;
	}
	ssize_t r = recv(fds[i], reply[i] + got[i], sizeof(reply[i]) - (size_t)got[i], 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r <= 0) {
		fprintf(stderr, "nbbench: socket %d: SOCKS5 reply: %s\n", i, r ? strerror(errno) : "EOF");
		return -1;
	}
	got[i] += (int)r;
	if (got[i] < (int)sizeof(reply[i]))
		return 0;
	const unsigned char *p = reply[i];
	if (p[0] != 5 || p[1] != 0 || p[2] != 5 || p[3] != 0 || p[5] != 1) {
		fprintf(stderr, "nbbench: socket %d: SOCKS5 refused or not IPv4 BND\n", i);
		return -1;
	}
	epoll_ctl(ep_fd, EPOLL_CTL_DEL, fds[i], NULL);
	return 1;
}

static int on_writable(int i, uint32_t events)
{
	int err = 0;
	socklen_t el = sizeof(err);
	if (getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &el))
		err = errno;
	if (err) {
		fprintf(stderr, "nbbench: socket %d: SO_ERROR %s\n", i, strerror(err));
		return -1;
	}
	if (events & (EPOLLERR | EPOLLHUP)) {
		fprintf(stderr, "nbbench: socket %d: %s with SO_ERROR 0\n", i,
			events & EPOLLERR ? "EPOLLERR" : "EPOLLHUP");
		return -1;
	}
	if (proxy.sin_family && got[i] >= 0 && (events & EPOLLIN))
		return socks_step(i);
	if (!(events & EPOLLOUT))
		return 0;
	if (proxy.sin_family)
		return socks_step(i);
	/* Connected: stop watching it until the echo phase. */
	epoll_ctl(ep_fd, EPOLL_CTL_DEL, fds[i], NULL);
	return 1;
}

static int on_readable(int i, uint32_t events)
{
	(void)events;
	char b = 0;
	ssize_t r = recv(fds[i], &b, 1, 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r != 1 || b != 'x') {
		fprintf(stderr, "nbbench: socket %d: echo: %s\n", i,
			r < 0 ? strerror(errno) : r == 0 ? "EOF" : "wrong byte");
		return -1;
	}
	epoll_ctl(ep_fd, EPOLL_CTL_DEL, fds[i], NULL);
	return 1;
}

static int one_round(int n, struct round_times *t)
{
	int rc = -1, opened = 0;
	memset(t, 0, sizeof(*t));
	ep_fd = epoll_create1(EPOLL_CLOEXEC);
	if (ep_fd < 0) {
		perror("nbbench: epoll_create1");
		return -1;
	}
	int64_t t0 = now_ns();
	for (; opened < n; opened++) {
		int fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
		if (fd < 0) {
			perror("nbbench: socket");
			goto out;
		}
		fds[opened] = fd;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		int64_t c0 = now_ns();
		int r = proxy.sin_family ? connect(fd, (struct sockaddr *)&proxy, sizeof(proxy))
					 : connect(fd, (struct sockaddr *)&dst, dst_len);
		if (got)
			got[opened] = -1;
		int e = errno;
		int64_t dc = now_ns() - c0;
		t->call_sum += dc;
		if (dc > t->call_max)
			t->call_max = dc;
		if (r && e != EINPROGRESS) {
			fprintf(stderr, "nbbench: connect %d: %s\n", opened, strerror(e));
			opened++;
			goto out;
		}
		/* Registered after connect(), as most event loops do. */
		struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = (uint32_t)opened };
		if (epoll_ctl(ep_fd, EPOLL_CTL_ADD, fd, &ev)) {
			perror("nbbench: epoll_ctl");
			opened++;
			goto out;
		}
	}
	if (wait_all(ep_fd, n, t0, on_writable))
		goto out;
	t->connect = now_ns() - t0;
	for (int i = 0; i < n; i++) {
		char b = 'x';
		if (send(fds[i], &b, 1, MSG_NOSIGNAL) != 1) {
			fprintf(stderr, "nbbench: socket %d: send after writable: %s\n", i,
				strerror(errno));
			goto out;
		}
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		if (epoll_ctl(ep_fd, EPOLL_CTL_ADD, fds[i], &ev)) {
			perror("nbbench: epoll_ctl");
			goto out;
		}
	}
	if (wait_all(ep_fd, n, t0, on_readable))
		goto out;
	t->echo = now_ns() - t0;
	rc = 0;
out:
	for (int i = 0; i < opened; i++)
		close(fds[i]);
	close(ep_fd);
	return rc;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static double median_ms(int64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_i64);
	return (n % 2 ? (double)v[n / 2] : (double)(v[n / 2 - 1] + v[n / 2]) / 2) / 1e6;
}

static void usage(void)
{
	fprintf(stderr, "usage: nbbench --host H --port P --count N [--rounds R] [--warmup W] "
			"[--timeout S] [--socks5 A:PORT]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *socks5_s = NULL;
	long port = -1, count = 0, rounds = 1, warmup = 1;
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		const char *o = argv[i], *v = argv[++i];
		if (!strcmp(o, "--host"))
			host = v;
		else if (!strcmp(o, "--port"))
			port = atol(v);
		else if (!strcmp(o, "--count"))
			count = atol(v);
		else if (!strcmp(o, "--rounds"))
			rounds = atol(v);
		else if (!strcmp(o, "--warmup"))
			warmup = atol(v);
		else if (!strcmp(o, "--timeout"))
			timeout_s = atof(v);
		else if (!strcmp(o, "--socks5"))
			socks5_s = v;
		else
			usage();
	}
	if (port <= 0 || port > 65535 || parse_dst(host, (int)port) || count < 1 || count > MAX_N ||
	    rounds < 1 || rounds > MAX_ROUNDS || warmup < 0 || timeout_s <= 0)
		usage();
	if (socks5_s) {
		char h[64];
		const char *col = strrchr(socks5_s, ':');
		if (!col || (size_t)(col - socks5_s) >= sizeof(h) || dst.ss_family != AF_INET)
			usage();
		memcpy(h, socks5_s, (size_t)(col - socks5_s));
		h[col - socks5_s] = 0;
		proxy.sin_family = AF_INET;
		proxy.sin_port = htons((uint16_t)atoi(col + 1));
		if (inet_pton(AF_INET, h, &proxy.sin_addr) != 1)
			usage();
		reply = calloc((size_t)count, sizeof(*reply));
		got = calloc((size_t)count, sizeof(*got));
		if (!reply || !got)
			return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)count + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)count + 64 ? rl.rlim_max : (rlim_t)count + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	fds = calloc((size_t)count, sizeof(*fds));
	int64_t *c = calloc((size_t)rounds, sizeof(int64_t)), *e = calloc((size_t)rounds, sizeof(int64_t));
	int64_t *cm = calloc((size_t)rounds, sizeof(int64_t)), *cs = calloc((size_t)rounds, sizeof(int64_t));
	if (!fds || !c || !e || !cm || !cs)
		return 1;
	struct round_times t;
	for (long i = 0; i < warmup; i++)
		if (one_round(1, &t)) {
			fprintf(stderr, "nbbench: warm-up round failed\n");
			return 1;
		}
	for (long i = 0; i < rounds; i++) {
		if (one_round((int)count, &t)) {
			fprintf(stderr, "nbbench: round %ld of %ld failed\n", i + 1, rounds);
			return 1;
		}
		c[i] = t.connect;
		e[i] = t.echo;
		cm[i] = t.call_max;
		cs[i] = t.call_sum;
	}
	printf("RESULT n=%ld rounds=%ld connect_ms=%.3f echo_ms=%.3f call_max_ms=%.3f "
	       "call_sum_ms=%.3f\n",
	       count, rounds, median_ms(c, (int)rounds), median_ms(e, (int)rounds),
	       median_ms(cm, (int)rounds), median_ms(cs, (int)rounds));
	free(fds);
	free(c);
	free(e);
	free(cm);
	free(cs);
	free(reply);
	free(got);
	return 0;
}
