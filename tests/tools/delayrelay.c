/* delayrelay: a TCP relay that adds a fixed one-way delay to every chunk in
 * each direction, in order -- a stand-in for a slow link where tc netem is
 * not available (the benchmarks put one in front of every proxy hop).
 *
 *   delayrelay --listen [ADDR:]PORT --to HOST:PORT --delay MS [--port-file F]
 *
 *   client --(+D ms)--> relay --> HOST:PORT
 *   client <--(+D ms)-- relay <-- HOST:PORT
 *
 * Each chunk read at time t is written at t + D; chunks leave in the order
 * they arrived, so a stream stays a stream. A half close is delayed the same
 * way. The TCP handshake itself is NOT delayed: the relay's kernel completes
 * it at once (see tests/bench/README.md for what that means for the numbers).
 *
 * One thread per direction per connection: a relay for a benchmark of
 * sequential connects, not a server. PORT 0 picks a free port; the port is
 * printed on stdout and written to --port-file once listening. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* One read's worth; a chunk is queued whole, so this bounds one queue entry. */
#define CHUNK 16384
/* Queued bytes per direction before the reader stops reading: enough for the
 * bandwidth-delay product of loopback at 10 ms without hoarding memory. */
#define MAX_QUEUED (8 * 1024 * 1024)

struct chunk {
	struct chunk *next;
	int64_t due_us;
	size_t len;             /* 0 = the peer's EOF: shutdown the writer */
	char data[];
};

struct conn {
	int fd[2];              /* [0] client side, [1] upstream side */
	atomic_int refs;
};

struct dir {
	struct conn *c;
	int from, to;
};

static int64_t delay_us;
static struct addrinfo *upstream;

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void conn_put(struct conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) == 1) {
		close(c->fd[0]);
		close(c->fd[1]);
		free(c);
	}
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Reads whatever arrives, stamps it, and writes each chunk when it is due. */
static void *pump(void *arg)
{
	struct dir *d = arg;
	struct chunk *head = NULL, **tail = &head;
	size_t queued = 0;
	bool eof = false, broken = false;

	while (!broken && (!eof || head)) {
		/* ppoll, not poll: a millisecond timeout would round every
		 * delay up by up to 1 ms per chunk and per hop. */
		struct timespec ts, *tsp = NULL;
		if (head) {
			int64_t left = head->due_us - now_us();
			if (left < 0)
				left = 0;
			ts = (struct timespec){ (time_t)(left / 1000000), (long)(left % 1000000) * 1000 };
			tsp = &ts;
		}
		struct pollfd p = { .fd = d->from, .events = POLLIN };
		bool can_read = !eof && queued < MAX_QUEUED;
		int n = ppoll(&p, can_read ? 1 : 0, tsp, NULL);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
			struct chunk *ck = malloc(sizeof(*ck) + CHUNK);
			if (!ck)
				break;
			ssize_t r = recv(d->from, ck->data, CHUNK, 0);
			if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
				free(ck);
				continue;
			}
			ck->len = r > 0 ? (size_t)r : 0;
			ck->due_us = now_us() + delay_us;
			ck->next = NULL;
			eof = ck->len == 0;
			queued += ck->len;
			*tail = ck;
			tail = &ck->next;
		}
		while (head && head->due_us <= now_us()) {
			struct chunk *ck = head;
			if (ck->len == 0)
				shutdown(d->to, SHUT_WR);
			else if (!write_all(d->to, ck->data, ck->len))
				broken = true;
			queued -= ck->len;
			head = ck->next;
			if (!head)
				tail = &head;
			free(ck);
			if (broken)
				break;
		}
	}
	while (head) {
		struct chunk *ck = head;
		head = ck->next;
		free(ck);
	}
	if (broken) {
		/* The writer's peer is gone: make the other direction notice too. */
		shutdown(d->from, SHUT_RD);
		shutdown(d->to, SHUT_RDWR);
	}
	conn_put(d->c);
	free(d);
	return NULL;
}

static int start_dir(struct conn *c, int from, int to)
{
	struct dir *d = malloc(sizeof(*d));
	if (!d)
		return -1;
	*d = (struct dir){ .c = c, .from = from, .to = to };
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 256 * 1024);
	pthread_t t;
	int r = pthread_create(&t, &a, pump, d);
	pthread_attr_destroy(&a);
	if (r) {
		free(d);
		return -1;
	}
	return 0;
}

static int connect_upstream(void)
{
	for (struct addrinfo *ai = upstream; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			return fd;
		close(fd);
	}
	return -1;
}

static void split_hostport(char *s, const char **host, const char **port, const char *defhost)
{
	char *colon = strrchr(s, ':');
	if (!colon) {
		*host = defhost;
		*port = s;
		return;
	}
	*colon = 0;
	*port = colon + 1;
	*host = s;
	if (**host == '[') {
		(*host)++;
		char *e = strchr(*host, ']');
		if (e)
			*e = 0;
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: delayrelay --listen [ADDR:]PORT --to HOST:PORT --delay MS "
			"[--port-file F]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	char *listen_s = NULL, *to_s = NULL;
	const char *port_file = NULL;
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--listen"))
			listen_s = argv[++i];
		else if (!strcmp(argv[i], "--to"))
			to_s = argv[++i];
		else if (!strcmp(argv[i], "--delay"))
			delay_us = (int64_t)(atof(argv[++i]) * 1000);
		else if (!strcmp(argv[i], "--port-file"))
			port_file = argv[++i];
		else
			usage();
	}
	if (!listen_s || !to_s || delay_us < 0)
		usage();
	signal(SIGPIPE, SIG_IGN);

	const char *th, *tp, *lh, *lp;
	split_hostport(to_s, &th, &tp, "127.0.0.1");
	split_hostport(listen_s, &lh, &lp, "127.0.0.1");
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *la;
	int r = getaddrinfo(th, tp, &hints, &upstream);
	if (r) {
		fprintf(stderr, "delayrelay: %s: %s\n", th, gai_strerror(r));
		return 1;
	}
	hints.ai_flags = AI_PASSIVE;
	if ((r = getaddrinfo(lh, lp, &hints, &la))) {
		fprintf(stderr, "delayrelay: %s: %s\n", lh, gai_strerror(r));
		return 1;
	}
	int ls = socket(la->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, la->ai_addr, la->ai_addrlen) || listen(ls, 1024)) {
		perror("delayrelay: listen");
		return 1;
	}
	freeaddrinfo(la);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	getsockname(ls, (struct sockaddr *)&ss, &sl);
	int port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						  : ((struct sockaddr_in *)&ss)->sin_port);
	printf("%d\n", port);
	fflush(stdout);
	if (port_file) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) || rename(tmp, port_file)) {
			perror("delayrelay: port file");
			return 1;
		}
	}

	for (;;) {
		int cfd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
				continue;
			perror("delayrelay: accept");
			return 1;
		}
		int ufd = connect_upstream();
		if (ufd < 0) {
			close(cfd);
			continue;
		}
		/* Chunks are timed by us; Nagle would add its own, unrelated delay. */
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = malloc(sizeof(*c));
		if (!c) {
			close(cfd);
			close(ufd);
			continue;
		}
		c->fd[0] = cfd;
		c->fd[1] = ufd;
		atomic_init(&c->refs, 2);
		if (start_dir(c, cfd, ufd))
			conn_put(c);
		if (start_dir(c, ufd, cfd))
			conn_put(c);
	}
}
