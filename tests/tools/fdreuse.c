/* fdreuse: descriptor-number reuse and vfork() children against socksify's
 * per-fd state, for tests/integration/udp.sh. Every mode prints what it saw
 * and exits 0 only when the program saw what the kernel alone would show.
 *
 *   fdreuse stale HOST UPORT TPORT fclose|syscall
 *     Associates a connect()ed UDP socket (a round trip to HOST:UPORT),
 *     closes it where no close() hook can see it -- fclose() of an fdopen()
 *     stream (glibc closes internally) or syscall(SYS_close) -- then opens a
 *     TCP socket, which gets the same number, connects to HOST:TPORT, sends
 *     MSG and half-closes. The server reports what arrived; it must be
 *     exactly MSG (no SOCKS UDP header in front of it).
 *   fdreuse vfork HOST UPORT close|close_range|dup2
 *     Associates a connect()ed UDP socket, then vfork()s; the child, which
 *     shares our memory, closes the socket's number (close(), close_range(3,
 *     ~0) or dup2() over it) and _exit()s. The parent must still send and
 *     receive through the association, and getpeername() must still answer
 *     HOST:UPORT.
 *   fdreuse vforktcp HOST TPORT
 *     The same for a tunnelled TCP connection: after the child closed the
 *     number, getpeername() still answers HOST:TPORT and the stream works.
 *
 * Output lines: "reused fd N", "reply: TEXT", "peer: IP PORT". */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <unistd.h>

#define MSG "exact-bytes-through-tcp\n"
#define TIMEOUT_MS 5000

static struct sockaddr_in addr(const char *host, const char *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)) };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "fdreuse: bad address %s\n", host);
		exit(2);
	}
	return sa;
}

static void die(const char *what)
{
	printf("%s: %s\n", what, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
	exit(1);
}

/* One read with a deadline; 0 on EOF, -1 on timeout or error. */
static ssize_t read_some(int fd, char *buf, size_t n)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, TIMEOUT_MS) != 1) {
		errno = ETIMEDOUT;
		return -1;
	}
	return recv(fd, buf, n, 0);
}

/* A UDP datagram out and its echo back, on a connect()ed socket. */
static void udp_roundtrip(int fd, const char *msg)
{
	char buf[512];
	if (send(fd, msg, strlen(msg), 0) < 0)
		die("send");
	ssize_t r = read_some(fd, buf, sizeof(buf) - 1);
	if (r < 0)
		die("recv");
	buf[r] = 0;
	printf("reply: %s\n", buf);
	if (strncmp(buf, msg, strlen(msg)) != 0) {
		printf("reply does not echo %s\n", msg);
		exit(1);
	}
}

static int udp_connected(const struct sockaddr_in *sa)
{
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	if (u < 0 || connect(u, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
		die("udp connect");
	return u;
}

/* getpeername() must answer sa. */
static int check_peer(int fd, const struct sockaddr_in *sa)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		die("getpeername");
	const struct sockaddr_in *got = (const void *)&ss;
	char ip[INET6_ADDRSTRLEN] = "?";
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &got->sin_addr, ip, sizeof(ip));
	printf("peer: %s %u\n", ip, ss.ss_family == AF_INET ? ntohs(got->sin_port) : 0);
	return ss.ss_family == AF_INET && sl == sizeof(*sa) && got->sin_port == sa->sin_port &&
	       got->sin_addr.s_addr == sa->sin_addr.s_addr ? 0 : 1;
}

static int stale(const char *host, const char *uport, const char *tport, const char *how)
{
	struct sockaddr_in us = addr(host, uport), ts = addr(host, tport);
	int u = udp_connected(&us);
	udp_roundtrip(u, "before");
	if (!strcmp(how, "fclose")) {
		FILE *f = fdopen(u, "r+");
		if (!f || fclose(f) != 0)
			die("fclose");
	} else if (syscall(SYS_close, u) != 0) {
		die("syscall(SYS_close)");
	}
	int t = socket(AF_INET, SOCK_STREAM, 0);
	if (t != u) {
		printf("the TCP socket got fd %d, not %d: nothing reused\n", t, u);
		return 1;
	}
	printf("reused fd %d\n", t);
	if (connect(t, (const struct sockaddr *)&ts, sizeof(ts)) < 0)
		die("tcp connect");
	if (write(t, MSG, strlen(MSG)) != (ssize_t)strlen(MSG))
		die("write");
	shutdown(t, SHUT_WR);
	char buf[512];
	size_t got = 0;
	ssize_t r;
	while (got < sizeof(buf) - 1 && (r = read_some(t, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)r;
	buf[got] = 0;
	printf("reply: %s\n", buf);
	return 0;
}

/* What the vfork() child does to the number: it shares our memory, so
 * whatever socksify's hooks change here, the parent sees. */
static _Noreturn void child_closes(int fd, const char *how)
{
	if (!strcmp(how, "close"))
		close(fd);
	else if (!strcmp(how, "close_range"))
		close_range(3, ~0U, 0);
	else
		dup2(0, fd);
	_exit(0);
}

static int vfork_child_closes(int fd, const char *how)
{
	pid_t pid = vfork();
	if (pid < 0)
		die("vfork");
	if (pid == 0)
		child_closes(fd, how);
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		printf("child failed\n");
		return 1;
	}
	return 0;
}

static int vfork_udp(const char *host, const char *uport, const char *how)
{
	struct sockaddr_in us = addr(host, uport);
	int u = udp_connected(&us);
	udp_roundtrip(u, "before");
	if (vfork_child_closes(u, how))
		return 1;
	udp_roundtrip(u, "after");
	return check_peer(u, &us);
}

static int vfork_tcp(const char *host, const char *tport)
{
	struct sockaddr_in ts = addr(host, tport);
	int t = socket(AF_INET, SOCK_STREAM, 0);
	if (t < 0 || connect(t, (const struct sockaddr *)&ts, sizeof(ts)) < 0)
		die("tcp connect");
	if (check_peer(t, &ts) || vfork_child_closes(t, "close"))
		return 1;
	if (check_peer(t, &ts))
		return 1;
	if (write(t, MSG, strlen(MSG)) != (ssize_t)strlen(MSG))
		die("write");
	shutdown(t, SHUT_WR);
	char buf[512];
	ssize_t r = read_some(t, buf, sizeof(buf) - 1);
	if (r < 0)
		die("read");
	buf[r] = 0;
	printf("reply: %s\n", buf);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	alarm(15);      /* a read the hooks turned into a wait fails the test sooner */
	if (argc == 6 && !strcmp(argv[1], "stale") &&
	    (!strcmp(argv[5], "fclose") || !strcmp(argv[5], "syscall")))
		return stale(argv[2], argv[3], argv[4], argv[5]);
	if (argc == 5 && !strcmp(argv[1], "vfork"))
		return vfork_udp(argv[2], argv[3], argv[4]);
	if (argc == 4 && !strcmp(argv[1], "vforktcp"))
		return vfork_tcp(argv[2], argv[3]);
	fprintf(stderr, "usage: fdreuse stale HOST UPORT TPORT fclose|syscall\n"
			"       fdreuse vfork HOST UPORT close|close_range|dup2\n"
			"       fdreuse vforktcp HOST TPORT\n");
	return 2;
}
