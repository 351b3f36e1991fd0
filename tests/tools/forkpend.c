/* forkpend: fork() while a non-blocking connect through the chain is
 * pending, and the cases where no driver of the waiting process will end
 * it. Neither may wait past the chain's timeout.
 *
 *   forkpend child-epoll PORT   the child makes its own epoll set, registers
 *                               the inherited socket and waits for EPOLLOUT
 *   forkpend owner-exit PORT    the parent (whose driver runs the set-up)
 *                               exits at once; the child polls the socket
 *
 * The destination is 127.0.0.1:PORT (through the configured proxy). Each
 * prints what the child saw; exit 0 when the child's wait ended within
 * 8 s (set timeouts.handshake below that), 1 when it hung. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long ms_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000;
}

static int so_error(int fd)
{
	int v = -1;
	socklen_t l = sizeof(v);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &l);
	return v;
}

/* The process that connects (the set-up's owner) and its child, which
 * writes what it saw to out. */
static int owner(bool epoll, const char *mode, uint16_t port, int out)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
	if (!(r < 0 && errno == EINPROGRESS)) {
		dprintf(out, "forkpend: connect: %d %s (want EINPROGRESS)\n", r, strerror(errno));
		return 1;
	}
	pid_t p = fork();
	if (p < 0)
		return 1;
	if (p > 0) {
		if (!epoll)
			return 0;       /* the owner goes at once */
		int st;
		waitpid(p, &st, 0);
		return 0;
	}
	long t0 = ms_now();
	int n;
	unsigned ev = 0;
	if (epoll) {
		int ep = epoll_create1(0);
		struct epoll_event e = { .events = EPOLLOUT }, got;
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
		n = epoll_wait(ep, &got, 1, 8000);
		ev = n > 0 ? got.events : 0;
	} else {
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		n = poll(&pf, 1, 8000);
		ev = (unsigned)pf.revents;
	}
	dprintf(out, "%s forkpend %s: the child's wait returned %d after %ld ms, events %#x, "
		"SO_ERROR %d\n", n > 0 ? "ok:" : "FAIL:", mode, n, ms_now() - t0, ev, so_error(fd));
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "child-epoll") && strcmp(argv[1], "owner-exit"))) {
		fprintf(stderr, "usage: forkpend child-epoll|owner-exit PORT\n");
		return 2;
	}
	int pfd[2];
	if (pipe(pfd) < 0)
		return 1;
	pid_t o = fork();
	if (o == 0) {
		close(pfd[0]);
		_exit(owner(!strcmp(argv[1], "child-epoll"), argv[1], (uint16_t)atoi(argv[2]),
			    pfd[1]));
	}
	close(pfd[1]);
	char buf[300] = "";
	size_t len = 0;
	struct pollfd pf = { .fd = pfd[0], .events = POLLIN };
	long t0 = ms_now();
	while (ms_now() - t0 < 10000 && poll(&pf, 1, 10000) > 0) {
		ssize_t got = read(pfd[0], buf + len, sizeof(buf) - 1 - len);
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	buf[len] = 0;
	waitpid(o, NULL, 0);
	if (!len) {
		printf("FAIL: forkpend %s: the child never answered (hung)\n", argv[1]);
		return 1;
	}
	fputs(buf, stdout);
	return strncmp(buf, "ok:", 3) ? 1 : 0;
}
