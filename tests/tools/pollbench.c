/* pollbench: what an idle event loop pays per readiness call -- tight loops
 * of poll(), epoll_wait() and select() with timeout 0 on an idle pipe, each
 * once through whatever the process has (a preloaded shim's hook, if any)
 * and once straight to libc's own function, in the same process; the
 * difference of the two is the shim's cost per call.
 *
 *   pollbench [--calls N] [--batches B] [--connect H:P]
 *
 * Why in one process: two processes running the same loop differ by 10-30%
 * on a shared machine (core, cache, neighbours), far more than the few ns a
 * hook's fast path costs. So each API's N hooked calls and N libc calls are
 * made in B alternating batches of N/B calls, and each side's per-call time
 * is its best batch (the least disturbed one). Prints, in ns per call:
 *
 *   RESULT poll_ns=H poll_libc_ns=L poll_added_ns=H-L epoll_ns=... select_ns=...
 *
 * Without any preload, *_added_ns shows the method's own noise (should be
 * about 0). libc's functions are looked up in libc.so.6 itself (dlopen
 * RTLD_NOLOAD + dlsym), so a shim's interposer is not found instead.
 *
 * --connect H:P first makes one non-blocking connect() to H:P (numeric),
 * waits with poll() until it is writable with SO_ERROR 0 and keeps it open:
 * the loops then run in a process whose proxied connect has completed, so a
 * shim that left a "something is pending" flag behind shows it here.
 *
 * Every call must report nothing ready (the pipe stays empty): anything
 * else fails the run (exit 1); bad usage exits 2. */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int connect_first(const char *hp)
{
	char h[64];
	const char *c = strrchr(hp, ':');
	struct sockaddr_in a = { .sin_family = AF_INET };
	if (!c || (size_t)(c - hp) >= sizeof(h))
		return -2;
	memcpy(h, hp, (size_t)(c - hp));
	h[c - hp] = 0;
	a.sin_port = htons((uint16_t)atoi(c + 1));
	if (inet_pton(AF_INET, h, &a.sin_addr) != 1)
		return -2;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || (connect(fd, (struct sockaddr *)&a, sizeof(a)) && errno != EINPROGRESS)) {
		perror("pollbench: connect");
		return -1;
	}
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int err = 0;
	socklen_t el = sizeof(err);
	if (poll(&p, 1, 60000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err ||
	    !(p.revents & POLLOUT)) {
		fprintf(stderr, "pollbench: connect to %s did not complete: %s\n", hp,
			err ? strerror(err) : "no POLLOUT within 60 s");
		return -1;
	}
	return fd;             /* kept open for the whole run */
}

typedef int (*poll_fn)(struct pollfd *, nfds_t, int);
typedef int (*epoll_wait_fn)(int, struct epoll_event *, int, int);
typedef int (*select_fn)(int, fd_set *, fd_set *, fd_set *, struct timeval *);

static int rfd, ep;
static poll_fn libc_poll;
static epoll_wait_fn libc_epoll_wait;
static select_fn libc_select;

/* One batch of n calls of API k (0 poll, 1 epoll_wait, 2 select), hooked
 * (the name as the program calls it) or libc's. Returns the ns taken;
 * *bad counts calls that did not return 0. */
static int64_t batch(int k, bool hooked, long n, long *bad)
{
	struct epoll_event out[4];
	int64_t t0 = now_ns();
	for (long i = 0; i < n; i++) {
		struct pollfd p = { .fd = rfd, .events = POLLIN };
		fd_set rs;
		struct timeval tv = { 0, 0 };
		switch (k) {
		case 0:
			*bad += (hooked ? poll(&p, 1, 0) : libc_poll(&p, 1, 0)) != 0;
			break;
		case 1:
			*bad += (hooked ? epoll_wait(ep, out, 4, 0) : libc_epoll_wait(ep, out, 4, 0)) != 0;
			break;
		default:
			FD_ZERO(&rs);
			FD_SET(rfd, &rs);
			*bad += (hooked ? select(rfd + 1, &rs, NULL, NULL, &tv)
					: libc_select(rfd + 1, &rs, NULL, NULL, &tv)) != 0;
			break;
		}
	}
	return now_ns() - t0;
}

static void usage(void)
{
	fprintf(stderr, "usage: pollbench [--calls N] [--batches B] [--connect H:P]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long calls = 1000000, batches = 10;
	const char *conn = NULL;
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		const char *o = argv[i], *v = argv[++i];
		if (!strcmp(o, "--calls"))
			calls = atol(v);
		else if (!strcmp(o, "--batches"))
			batches = atol(v);
		else if (!strcmp(o, "--connect"))
			conn = v;
		else
			usage();
	}
	if (batches < 1 || batches > 1000 || calls < batches)
		usage();
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	if (!libc || !(libc_poll = (poll_fn)dlsym(libc, "poll")) ||
	    !(libc_epoll_wait = (epoll_wait_fn)dlsym(libc, "epoll_wait")) ||
	    !(libc_select = (select_fn)dlsym(libc, "select"))) {
		fprintf(stderr, "pollbench: libc's own functions: %s\n", dlerror());
		return 1;
	}
	if (conn) {
		int r = connect_first(conn);
		if (r == -2)
			usage();
		if (r < 0)
			return 1;
	}
	int pfd[2];
	if (pipe(pfd)) {
		perror("pollbench: pipe");
		return 1;
	}
	rfd = pfd[0];
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = rfd };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, rfd, &ev)) {
		perror("pollbench: epoll");
		return 1;
	}
	long per = calls / batches, bad = 0;
	int64_t best[3][2];
	for (int k = 0; k < 3; k++) {
		best[k][0] = best[k][1] = INT64_MAX;
		for (long b = 0; b < batches; b++)
			for (int h = 0; h < 2; h++) {
				/* Alternate which side goes first: neither always
				 * runs on a cache the other warmed. */
				bool hooked = (h ^ (int)(b & 1)) != 0;
				int64_t t = batch(k, hooked, per, &bad);
				if (t < best[k][hooked])
					best[k][hooked] = t;
			}
	}
	if (bad) {
		fprintf(stderr, "pollbench: %ld calls on an idle pipe did not return 0\n", bad);
		return 1;
	}
	static const char *const name[3] = { "poll", "epoll", "select" };
	printf("RESULT");
	for (int k = 0; k < 3; k++) {
		double hk = (double)best[k][1] / (double)per, lc = (double)best[k][0] / (double)per;
		printf(" %s_ns=%.1f %s_libc_ns=%.1f %s_added_ns=%.1f", name[k], hk, name[k], lc,
		       name[k], hk - lc);
	}
	printf(" calls=%ld batches=%ld\n", per * batches, batches);
	return 0;
}
