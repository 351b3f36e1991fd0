/* tcpclient: a plain TCP test client for the integration tests. It connects
 * (blocking or O_NONBLOCK + poll), sends a message, expects bytes back and
 * reports a failed connect() as exactly one line
 *   tcpclient: connect: ECONNREFUSED (Connection refused)
 * on stderr with exit status 1, so a test can assert the errno socksify gave.
 *
 *   tcpclient [--host H] --port P [--send MSG] [--expect STR] [--nonblock]
 *             [--threads T] [--count N] [--fork] [--fds] [--peer]
 *             [--timeout-ms MS] [--quiet]
 *
 * --send defaults to "hello\n"; --expect defaults to the message (an echo
 * server); --send '' sends nothing. --threads T --count N: every thread does
 * N sequential connect/send/recv/close round trips. --fork: round trips after
 * the first run in a forked child each (threads = 1), to show what a child
 * process inherits. --fds: compares the number of entries in /proc/self/fd
 * before and after, failing if it grew. --peer: prints getpeername(). Output
 * on stdout: "nonblock-connect: 0|EINPROGRESS" (--nonblock, single round
 * trip), "peer: ADDR", "fds: before=B after=A", "ok: N round trips". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <arpa/inet.h>
#include <unistd.h>

/* Per-failure lines beyond this add nothing but noise to a test log. */
#define MAX_REPORTED 5
/* More threads than this is a typo, not a test. */
#define MAX_THREADS 1024

static struct {
	const char *host, *port, *send, *expect;
	bool nonblock, fork, fds, peer, quiet;
	long threads, count;
	int timeout_ms;
} opt = { "127.0.0.1", NULL, "hello\n", NULL, false, false, false, false, false, 1, 1,
	  10000 };

static struct addrinfo *targets;
static atomic_long failures, reported;

/* The one-line report of a failure; "what" is connect, send, recv, ... */
static void fail(const char *what, int err, const char *detail)
{
	if (atomic_fetch_add(&reported, 1) >= MAX_REPORTED)
		return;
	if (detail)
		fprintf(stderr, "tcpclient: %s: %s\n", what, detail);
	else
		fprintf(stderr, "tcpclient: %s: %s (%s)\n", what,
			strerrorname_np(err) ? strerrorname_np(err) : "E?", strerror(err));
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Waits for ev on fd until deadline; 0, or -ETIMEDOUT / -errno. */
static int wait_fd(int fd, short ev, long deadline)
{
	for (;;) {
		long left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = ev };
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Connects to one address; returns the fd or -errno (reported by caller). */
static int connect_one(const struct addrinfo *ai, bool report_mode, long deadline)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (opt.nonblock && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
	int e = rc < 0 ? errno : 0;
	if (!opt.nonblock) {
		if (rc < 0) {
			close(fd);
			return -e;
		}
		return fd;
	}
	/* POSIX allows a non-blocking connect() to complete at once (0) or
	 * to return EINPROGRESS; anything else is the failure itself. */
	if (rc < 0 && e != EINPROGRESS) {
		close(fd);
		return -e;
	}
	if (report_mode)
		printf("nonblock-connect: %s\n", rc == 0 ? "0" : "EINPROGRESS");
	if (rc < 0) {
		int w = wait_fd(fd, POLLOUT, deadline);
		if (w < 0) {
			close(fd);
			return w;
		}
		socklen_t len = sizeof e;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
			e = errno;
		if (e) {
			close(fd);
			return -e;
		}
	}
	if (!(fcntl(fd, F_GETFL) & O_NONBLOCK)) {
		close(fd);
		return -EBADFD;  /* reported specially: the flag was clobbered */
	}
	return fd;
}

static void print_peer(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
		printf("peer: error %s\n", strerrorname_np(errno));
		return;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
		port = ntohs(s->sin_port);
		printf("peer: %s:%d\n", host, port);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
		port = ntohs(s->sin6_port);
		printf("peer: [%s]:%d\n", host, port);
	} else {
		printf("peer: family %d\n", ss.ss_family);
	}
}

/* Sends all of buf with poll() between short writes. 0 or -errno. */
static int send_all(int fd, const char *buf, size_t len, long deadline)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int w = wait_fd(fd, POLLOUT, deadline);
			if (w < 0)
				return w;
			continue;
		}
		return -errno;
	}
	return 0;
}

/* Reads exactly len bytes (or fails: -errno, or 1 on early EOF). */
static int recv_all(int fd, char *buf, size_t len, size_t *got, long deadline)
{
	*got = 0;
	while (*got < len) {
		int w = wait_fd(fd, POLLIN, deadline);
		if (w < 0)
			return w;
		ssize_t n = recv(fd, buf + *got, len - *got, 0);
		if (n > 0) {
			*got += (size_t)n;
			continue;
		}
		if (n == 0)
			return 1;
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			continue;
		return -errno;
	}
	return 0;
}

/* One connect/send/recv/close round trip. 0 on success, 1 on failure. */
static int round_trip(bool report_mode)
{
	long deadline = now_ms() + opt.timeout_ms;
	int fd = -ECONNREFUSED;
	for (const struct addrinfo *ai = targets; ai; ai = ai->ai_next) {
		fd = connect_one(ai, report_mode, deadline);
		if (fd >= 0)
			break;
	}
	if (fd == -EBADFD) {
		fail("connect", 0, "O_NONBLOCK was cleared by connect()");
		return 1;
	}
	if (fd < 0) {
		fail("connect", -fd, NULL);
		return 1;
	}
	if (opt.peer)
		print_peer(fd);

	int rc = 1;
	size_t slen = strlen(opt.send), elen = strlen(opt.expect), got;
	char *buf = malloc(elen + 1);
	int e = send_all(fd, opt.send, slen, deadline);
	if (!buf) {
		fail("recv", ENOMEM, NULL);
	} else if (e < 0) {
		fail("send", -e, NULL);
	} else if ((e = recv_all(fd, buf, elen, &got, deadline)) < 0) {
		fail("recv", -e, NULL);
	} else if (e > 0) {
		char d[96];
		snprintf(d, sizeof d, "EOF after %zu of %zu bytes", got, elen);
		fail("recv", 0, d);
	} else if (memcmp(buf, opt.expect, elen) != 0) {
		buf[elen] = 0;
		char d[160];
		snprintf(d, sizeof d, "got \"%.60s\", expected \"%.60s\"", buf, opt.expect);
		fail("recv", 0, d);
	} else {
		rc = 0;
	}
	free(buf);
	close(fd);
	return rc;
}

static void *worker(void *arg)
{
	(void)arg;
	for (long i = 0; i < opt.count; i++)
		if (round_trip(false))
			atomic_fetch_add(&failures, 1);
	return NULL;
}

static int run_forked(void)
{
	bool single = opt.count == 1;
	if (round_trip(single))
		atomic_fetch_add(&failures, 1);
	for (long i = 1; i < opt.count; i++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0) {
			fail("fork", errno, NULL);
			return 1;
		}
		if (pid == 0)
			_exit(round_trip(false));
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			atomic_fetch_add(&failures, 1);
	}
	return 0;
}

static void usage(void)
{
	fputs("usage: tcpclient [--host H] --port P [--send MSG] [--expect STR] [--nonblock]\n"
	      "                 [--threads T] [--count N] [--fork] [--fds] [--peer]\n"
	      "                 [--timeout-ms MS] [--quiet]\n",
	      stderr);
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define VALUE() (v ? (i++, v) : (usage(), ""))
		if (!strcmp(a, "--host")) opt.host = VALUE();
		else if (!strcmp(a, "--port")) opt.port = VALUE();
		else if (!strcmp(a, "--send")) opt.send = VALUE();
		else if (!strcmp(a, "--expect")) opt.expect = VALUE();
		else if (!strcmp(a, "--threads")) opt.threads = atol(VALUE());
		else if (!strcmp(a, "--count")) opt.count = atol(VALUE());
		else if (!strcmp(a, "--timeout-ms")) opt.timeout_ms = atoi(VALUE());
		else if (!strcmp(a, "--nonblock")) opt.nonblock = true;
		else if (!strcmp(a, "--fork")) opt.fork = true;
		else if (!strcmp(a, "--fds")) opt.fds = true;
		else if (!strcmp(a, "--peer")) opt.peer = true;
		else if (!strcmp(a, "--quiet")) opt.quiet = true;
		else usage();
#undef VALUE
	}
	if (!opt.port || opt.threads < 1 || opt.threads > MAX_THREADS || opt.count < 1 ||
	    opt.timeout_ms < 1 || (opt.fork && opt.threads != 1))
		usage();
	if (!opt.expect)
		opt.expect = opt.send;
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);

	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	int g = getaddrinfo(opt.host, opt.port, &hints, &targets);
	if (g != 0) {
		fprintf(stderr, "tcpclient: getaddrinfo: %s: %s\n", opt.host, gai_strerror(g));
		return 1;
	}
	/* Counted after name resolution: what a resolver keeps open for the
	 * process's life is not a per-connection leak. */
	int fds_before = opt.fds ? count_fds() : 0;

	long total = opt.threads * opt.count;
	bool single = total == 1;
	if (opt.fork) {
		run_forked();
	} else if (opt.threads == 1) {
		for (long i = 0; i < opt.count; i++)
			if (round_trip(single))
				atomic_fetch_add(&failures, 1);
	} else {
		pthread_t *t = calloc((size_t)opt.threads, sizeof *t);
		long started = 0;
		for (; t && started < opt.threads; started++) {
			int e = pthread_create(&t[started], NULL, worker, NULL);
			if (e) {
				fail("pthread_create", e, NULL);
				atomic_fetch_add(&failures, (opt.threads - started) * opt.count);
				break;
			}
		}
		for (long i = 0; i < started; i++)
			pthread_join(t[i], NULL);
		free(t);
	}
	freeaddrinfo(targets);

	int rc = 0;
	long failed = atomic_load(&failures);
	if (failed) {
		/* A single round trip has said all in its one line already. */
		if (total > 1)
			fprintf(stderr, "tcpclient: %ld of %ld round trips failed\n", failed,
				total);
		rc = 1;
	} else if (!opt.quiet) {
		printf("ok: %ld round trips\n", total);
	}
	if (opt.fds) {
		int fds_after = count_fds();
		printf("fds: before=%d after=%d\n", fds_before, fds_after);
		if (fds_after > fds_before) {
			fprintf(stderr, "tcpclient: fds: %d leaked\n", fds_after - fds_before);
			rc = 1;
		}
	}
	return rc;
}
