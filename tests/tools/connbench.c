/* connbench: TCP connect benchmarks, run under socksify or proxychains4
 * (whatever hooks connect()), plus the echo server they talk to.
 *
 *   connbench --serve [--port P] [--port-file F] [--once]
 *       an epoll echo server on 127.0.0.1 (port 0 = any free one); --once:
 *       close each connection after its first echo, so that the server, not
 *       the client or a proxy, closes first and holds the TIME_WAIT state --
 *       a rate run's tens of thousands of connections would otherwise use up
 *       the ephemeral ports (a client given --wait-eof waits for that close)
 *   connbench --host H --port P --count N [--warmup W]
 *       latency: N sequential connects; each times connect() and then one
 *       byte echoed back (connect + first byte). Prints
 *       "RESULT connect_ms median=M p90=Q min=L  first_byte_ms median=... n=N"
 *   connbench --host H --port P --seconds S [--threads T]
 *       rate: T threads each doing connect/send/recv/close for S seconds.
 *       Prints "RESULT conns_per_sec=R threads=T total=N errors=E cpu_us=C".
 *       --wait-eof: after the echo, wait for the server to close first.
 *   --socks5 A:PORT [--stepwise] (either mode)
 *       no shim: do the SOCKS5 CONNECT (no auth) to H:P through A:PORT
 *       ourselves, greeting and request in one write unless --stepwise --
 *       the "native client" ceiling a shim can approach.
 *
 * cpu_us is this process's user+system CPU time per connection (the cost of
 * the client side, shim included; the proxy and the kernel's loopback work
 * done on behalf of the other end are not in it). Wall-clock numbers on a
 * small machine mostly measure the proxy; this one measures the client.
 *
 * H is a numeric address: no resolver call may add its own time. Exit 1 when
 * any round trip failed (the numbers would be meaningless), 2 on bad usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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

/* More threads than cores * a few only measures the scheduler. */
#define MAX_THREADS 256
/* Latency samples kept; a benchmark run is tens to hundreds of connects. */
#define MAX_COUNT 100000

static struct sockaddr_storage dst;
static socklen_t dst_len;
static atomic_bool stop;
static atomic_long total, errors;
static struct sockaddr_in proxy;        /* --socks5: sin_family set */
static bool stepwise, once, wait_eof;

static int64_t cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
	       ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* SOCKS5 CONNECT to dst (IPv4 only) on fd, already connected to the proxy.
 *   greeting  05 01 00                 reply 05 00
 *   request   05 01 00 01 ADDR(4) PORT(2)
 *   reply     05 00 00 01 ADDR(4) PORT(2)   (an IPv4 BND; others refused) */
static int socks5_connect(int fd)
{
	const struct sockaddr_in *d = (const struct sockaddr_in *)&dst;
	unsigned char m[13] = { 5, 1, 0, 5, 1, 0, 1 }, r[10];
	if (d->sin_family != AF_INET)
		return EAFNOSUPPORT;
	memcpy(m + 7, &d->sin_addr, 4);
	memcpy(m + 11, &d->sin_port, 2);
	if (stepwise) {
		if (!io_all(fd, m, 3, true) || !io_all(fd, r, 2, false) || !io_all(fd, m + 3, 10, true))
			return EPROTO;
	} else if (!io_all(fd, m, 13, true) || !io_all(fd, r, 2, false)) {
		return EPROTO;
	}
	if (r[0] != 5 || r[1] != 0 || !io_all(fd, r, 10, false) || r[1] != 0 || r[3] != 1)
		return ECONNREFUSED;
	return 0;
}

/* dst from the command line: 0, or -1 when host is not a literal. */
static int parse_dst(const char *host, int port)
{
	dst_len = parse_sockaddr(host, port, &dst);
	return dst_len ? 0 : -1;
}

/* One connect + one byte echoed; times in ns through *t_conn and *t_echo.
 * Returns 0 or an errno. */
static int round_trip(int64_t *t_conn, int64_t *t_echo)
{
	int64_t t0 = now_ns();
	int fd = socket(dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	int err = 0;
	if (proxy.sin_family) {
		int one = 1;
		if (connect(fd, (struct sockaddr *)&proxy, sizeof(proxy))) {
			err = errno;
			goto out;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if ((err = socks5_connect(fd)))
			goto out;
	} else if (connect(fd, (struct sockaddr *)&dst, dst_len)) {
		err = errno;
		goto out;
	}
	int64_t t1 = now_ns();
	char b = 'x';
	ssize_t n;
	while ((n = send(fd, &b, 1, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (n != 1) {
		err = n < 0 ? errno : EIO;
		goto out;
	}
	while ((n = recv(fd, &b, 1, 0)) < 0 && errno == EINTR)
		;
	if (n != 1 || b != 'x') {
		err = n < 0 ? errno : EPROTO;
		goto out;
	}
	if (t_conn)
		*t_conn = t1 - t0;
	if (t_echo)
		*t_echo = now_ns() - t0;
	/* Let the server close first (--serve --once): no TIME_WAIT here. */
	while (wait_eof && ((n = recv(fd, &b, 1, 0)) > 0 || (n < 0 && errno == EINTR)))
		;
out:
	close(fd);
	return err;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double pct_ms(const int64_t *v, long n, int pct)
{
	long i = (n * pct + 99) / 100 - 1;
	if (i < 0)
		i = 0;
	return (double)v[i] / 1e6;
}

static int latency(long count, long warmup)
{
	int64_t *tc = calloc((size_t)count, sizeof(*tc)), *te = calloc((size_t)count, sizeof(*te));
	if (!tc || !te)
		return 1;
	for (long i = 0; i < warmup; i++) {
		int e = round_trip(NULL, NULL);
		if (e) {
			fprintf(stderr, "connbench: warmup: %s\n", strerror(e));
			return 1;
		}
	}
	int64_t c0 = cpu_ns();
	for (long i = 0; i < count; i++) {
		int e = round_trip(&tc[i], &te[i]);
		if (e) {
			fprintf(stderr, "connbench: connect %ld: %s\n", i, strerror(e));
			return 1;
		}
	}
	qsort(tc, (size_t)count, sizeof(*tc), cmp_i64);
	qsort(te, (size_t)count, sizeof(*te), cmp_i64);
	printf("RESULT connect_ms median=%.3f p90=%.3f min=%.3f  first_byte_ms median=%.3f "
	       "p90=%.3f n=%ld cpu_us=%.1f\n",
	       pct_ms(tc, count, 50), pct_ms(tc, count, 90), pct_ms(tc, count, 0),
	       pct_ms(te, count, 50), pct_ms(te, count, 90), count,
	       (double)(cpu_ns() - c0) / 1e3 / (double)count);
	free(tc);
	free(te);
	return 0;
}

static void *rate_worker(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int e = round_trip(NULL, NULL);
		if (e) {
			if (atomic_fetch_add(&errors, 1) < 3)
				fprintf(stderr, "connbench: %s\n", strerror(e));
		} else {
			atomic_fetch_add_explicit(&total, 1, memory_order_relaxed);
		}
	}
	return NULL;
}

static int rate(double seconds, long threads)
{
	pthread_t t[MAX_THREADS];
	/* Warm-up connect: library init and config load are not per-connect costs. */
	int e = round_trip(NULL, NULL);
	if (e) {
		fprintf(stderr, "connbench: first connect: %s\n", strerror(e));
		return 1;
	}
	int64_t t0 = now_ns(), c0 = cpu_ns();
	for (long i = 0; i < threads; i++)
		if (pthread_create(&t[i], NULL, rate_worker, NULL)) {
			fprintf(stderr, "connbench: pthread_create failed\n");
			return 1;
		}
	struct timespec ts = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	atomic_store(&stop, true);
	for (long i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	double el = (double)(now_ns() - t0) / 1e9, cpu = (double)(cpu_ns() - c0) / 1e3;
	long n = atomic_load(&total), ne = atomic_load(&errors);
	printf("RESULT conns_per_sec=%.1f threads=%ld total=%ld errors=%ld cpu_us=%.1f\n",
	       (double)n / el, threads, n, ne, n ? cpu / (double)n : 0.0);
	return ne ? 1 : 0;
}

/* ------------------------------------------------------------ echo server */

static int serve(int port, const char *port_file)
{
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* A burst of threads connecting at once must not meet SYN retries. */
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 4096)) {
		perror("connbench: listen");
		return 1;
	}
	socklen_t al = sizeof(a);
	getsockname(ls, (struct sockaddr *)&a, &al);
	printf("%d\n", ntohs(a.sin_port));
	fflush(stdout);
	if (port_file) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%d\n", ntohs(a.sin_port)) < 0 || fclose(f) ||
		    rename(tmp, port_file)) {
			perror("connbench: port file");
			return 1;
		}
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = ls };
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	fcntl(ls, F_SETFL, O_NONBLOCK);
	struct epoll_event evs[256];
	char buf[65536];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == ls) {
				int c;
				while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					struct epoll_event ce = { .events = EPOLLIN, .data.fd = c };
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
				}
				continue;
			}
			ssize_t r = recv(fd, buf, sizeof(buf), 0);
			if (r > 0) {
				/* Echo replies are tiny; a full send buffer means a dead peer. */
				if (send(fd, buf, (size_t)r, MSG_NOSIGNAL | MSG_DONTWAIT) == r && !once)
					continue;
			} else if (r < 0 && errno == EAGAIN) {
				continue;
			}
			close(fd);
		}
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: connbench --serve [--port P] [--port-file F] [--once]\n"
			"       connbench --host H --port P --count N [--warmup W]\n"
			"       connbench --host H --port P --seconds S [--threads T]\n"
			"       (either client mode) [--socks5 A:PORT [--stepwise]] [--wait-eof]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *port_file = NULL, *socks5_s = NULL;
	long port = -1, count = 0, warmup = 2, threads = 1;
	double seconds = 0;
	bool srv = false;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--serve")) {
			srv = true;
			continue;
		}
		if (!strcmp(o, "--wait-eof")) {
			wait_eof = true;
			continue;
		}
		if (!strcmp(o, "--once")) {
			once = true;
			continue;
		}
		if (!strcmp(o, "--stepwise")) {
			stepwise = true;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (!strcmp(o, "--host"))
			host = v;
		else if (!strcmp(o, "--port"))
			port = atol(v);
		else if (!strcmp(o, "--port-file"))
			port_file = v;
		else if (!strcmp(o, "--count"))
			count = atol(v);
		else if (!strcmp(o, "--warmup"))
			warmup = atol(v);
		else if (!strcmp(o, "--seconds"))
			seconds = atof(v);
		else if (!strcmp(o, "--threads"))
			threads = atol(v);
		else if (!strcmp(o, "--socks5"))
			socks5_s = v;
		else
			usage();
	}
	signal(SIGPIPE, SIG_IGN);
	if (srv)
		return serve(port < 0 ? 0 : (int)port, port_file);
	if (port <= 0 || port > 65535 || parse_dst(host, (int)port) || threads < 1 ||
	    threads > MAX_THREADS || count < 0 || count > MAX_COUNT || warmup < 0)
		usage();
	if (socks5_s) {
		char h[64];
		const char *c = strrchr(socks5_s, ':');
		if (!c || (size_t)(c - socks5_s) >= sizeof(h))
			usage();
		memcpy(h, socks5_s, (size_t)(c - socks5_s));
		h[c - socks5_s] = 0;
		proxy.sin_family = AF_INET;
		proxy.sin_port = htons((uint16_t)atoi(c + 1));
		if (inet_pton(AF_INET, h, &proxy.sin_addr) != 1)
			usage();
	}
	if (count > 0)
		return latency(count, warmup);
	if (seconds > 0)
		return rate(seconds, threads);
	usage();
}
