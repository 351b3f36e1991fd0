/* bindclient: the client half of an active-FTP-like exchange, for the SOCKS
 * BIND tests (tests/integration/bind.sh). It opens a control connection to
 * tests/tools/bindserver.py, makes a listening socket the way FTP clients do,
 * tells the server "PORT ADDR PORT" and waits for the server to connect back
 * and send a line.
 *
 *   bindclient --ctrl HOST:PORT [--bind wild|ctrl|none] [--listen-first] [--raw]
 *              [--nonblock] [--count N] [--timeout-ms MS]
 *   bindclient --ctrl HOST:PORT --local ADDR:PORT
 *
 * --bind: where the data socket is bound before listen(): the wildcard
 *   address port 0 (default, what lftp/most clients do), getsockname() of
 *   the control connection port 0 (curl -P -), or not at all (listen()
 *   autobinds).
 * --listen-first: listen() before the first getsockname() (default: read
 *   the port first, as curl and lftp do).
 * --raw: bind, getsockname, listen and accept/accept4 of the data socket
 *   go through syscall(SYS_*), not libc's names.
 * --nonblock: the listener is O_NONBLOCK in an epoll set; the accept is
 *   accept4(SOCK_NONBLOCK|SOCK_CLOEXEC) after epoll says readable, and the
 *   line is read after epoll says the accepted fd is readable. Default:
 *   blocking accept() and read().
 * --count N: N exchanges on the same control connection, each with a new
 *   listening socket (an FTP session with N transfers).
 * --local ADDR:PORT: a plain local listener after the control connection
 *   is up (an OAuth callback on 127.0.0.1:0, a server on a fixed port):
 *   bind, listen, getsockname, connect to it from 127.0.0.1 and pass a line.
 *   It must stay local: getsockname shows the bound address.
 *
 * Output (stdout), one line each:
 *   ctrl-local: A:P        getsockname() of the control connection
 *   listen-addr: A:P       getsockname() of the listening socket (each call)
 *   sent: PORT A P
 *   accepted: A:P          getpeername() of the accepted fd
 *   accept-addr: A:P       the address accept() filled in
 *   flags: nonblock=0|1 cloexec=0|1   of the accepted fd
 *   data: LINE             what the peer sent on the data connection
 *   ctrl: LINE             the server's report on the control connection
 *   local: ok A:P          (--local) the local listener worked
 *   ok: N exchanges
 * A failing call prints "CALL: ENAME (message)" on stderr and exits 1; so
 * does a run that takes longer than --count times --timeout-ms plus 5 s
 * ("timeout: ..."). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct {
	const char *ctrl, *bind, *local;
	bool listen_first, nonblock, raw;
	long count;
	int timeout_ms;
} opt = { .bind = "wild", .count = 1, .timeout_ms = 15000 };

static void die(const char *what, int err)
{
	fprintf(stderr, "%s: %s (%s)\n", what, strerrorname_np(err) ? strerrorname_np(err) : "E?",
		strerror(err));
	fflush(stdout);
	exit(1);
}

/* The whole run's deadline: a blocking accept() that nobody wakes must
 * fail the test cleanly, not hang it. */
static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "timeout: no connection within the time limit\n";
	if (write(2, msg, sizeof(msg) - 1) < 0) {
	}
	_exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: bindclient --ctrl HOST:PORT [--bind wild|ctrl|none] "
			"[--listen-first] [--raw] [--nonblock] [--count N] [--timeout-ms MS] "
			"[--local ADDR:PORT]\n");
	exit(2);
}

/* "A:P" with IPv6 addresses in brackets. */
static const char *fmt(const struct sockaddr_storage *ss)
{
	static char out[2][INET6_ADDRSTRLEN + 16];
	static int k;
	char a[INET6_ADDRSTRLEN] = "?";
	char *o = out[k++ & 1];
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(o, sizeof(out[0]), "%s:%u", a, ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(o, sizeof(out[0]), "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		snprintf(o, sizeof(out[0]), "family-%d", ss->ss_family);
	}
	return o;
}

/* HOST:PORT or [HOST6]:PORT, numeric only. */
static void parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		usage();
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	char *h = host;
	if (h[0] == '[') {
		h++;
		h[strlen(h) - 1] = 0;
	}
	long port = strtol(colon + 1, NULL, 10);
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (void *)ss;
	struct sockaddr_in6 *s6 = (void *)ss;
	if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
	} else {
		usage();
	}
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Reads one line (without the newline) from fd; blocking or via epoll. */
static void read_line(int fd, int ep, char *buf, size_t cap, const char *what)
{
	size_t n = 0;
	long deadline = now_ms() + opt.timeout_ms;
	while (n + 1 < cap) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r == 1) {
			if (c == '\n')
				break;
			buf[n++] = c;
			continue;
		}
		if (r == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && ep >= 0) {
			struct epoll_event ev;
			long left = deadline - now_ms();
			if (left <= 0)
				die(what, ETIMEDOUT);
			int k = epoll_wait(ep, &ev, 1, (int)left);
			if (k < 0 && errno != EINTR)
				die("epoll_wait", errno);
			continue;
		}
		die(what, errno);
	}
	buf[n] = 0;
}

/* --raw: the data socket's calls through syscall(), past libc's names. */
static int x_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	return opt.raw ? (int)syscall(SYS_bind, fd, sa, len) : bind(fd, sa, len);
}

static int x_listen(int fd, int n)
{
	return opt.raw ? (int)syscall(SYS_listen, fd, n) : listen(fd, n);
}

static int x_getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	return opt.raw ? (int)syscall(SYS_getsockname, fd, sa, len) : getsockname(fd, sa, len);
}

static int x_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	if (!opt.raw)
		return flags ? accept4(fd, sa, len, flags) : accept(fd, sa, len);
	return flags ? (int)syscall(SYS_accept4, fd, sa, len, flags)
		     : (int)syscall(SYS_accept, fd, sa, len);
}

static void print_sockname(int fd, const char *label, struct sockaddr_storage *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (x_getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		die("getsockname", errno);
	printf("%s: %s\n", label, fmt(&ss));
	fflush(stdout);
	if (out)
		*out = ss;
}

static bool is_any(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* Accepts the server's connection on listener l. */
static int accept_one(int l, int ep, struct sockaddr_storage *peer)
{
	socklen_t len = sizeof(*peer);
	if (!opt.nonblock) {
		int fd;
		do
			fd = x_accept4(l, (struct sockaddr *)peer, &len, 0);
		while (fd < 0 && errno == EINTR);
		if (fd < 0)
			die("accept", errno);
		return fd;
	}
	long deadline = now_ms() + opt.timeout_ms;
	for (;;) {
		struct epoll_event ev;
		long left = deadline - now_ms();
		if (left <= 0)
			die("accept4", ETIMEDOUT);
		int k = epoll_wait(ep, &ev, 1, (int)left);
		if (k < 0 && errno != EINTR)
			die("epoll_wait", errno);
		if (k <= 0)
			continue;
		len = sizeof(*peer);
		int fd = x_accept4(l, (struct sockaddr *)peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno != EAGAIN && errno != EINTR)
			die("accept4", errno);
		printf("accept4: EAGAIN after epoll said readable\n");
	}
}

/* One listen / PORT / accept / read exchange on control connection c. */
static void exchange(int c, const struct sockaddr_storage *ctrl_local)
{
	int l = socket(ctrl_local->ss_family, SOCK_STREAM, 0);
	if (l < 0)
		die("socket", errno);
	if (strcmp(opt.bind, "none") != 0) {
		struct sockaddr_storage b;
		socklen_t blen;
		if (strcmp(opt.bind, "ctrl") == 0) {
			b = *ctrl_local;
		} else {
			memset(&b, 0, sizeof(b));
			b.ss_family = ctrl_local->ss_family;
		}
		if (b.ss_family == AF_INET) {
			((struct sockaddr_in *)&b)->sin_port = 0;
			blen = sizeof(struct sockaddr_in);
		} else {
			((struct sockaddr_in6 *)&b)->sin6_port = 0;
			blen = sizeof(struct sockaddr_in6);
		}
		if (x_bind(l, (struct sockaddr *)&b, blen) < 0)
			die("bind", errno);
	}
	struct sockaddr_storage adv;
	if (opt.listen_first) {
		if (x_listen(l, 4) < 0)
			die("listen", errno);
		print_sockname(l, "listen-addr", &adv);
	} else {
		print_sockname(l, "listen-addr", &adv);
		if (x_listen(l, 4) < 0)
			die("listen", errno);
		struct sockaddr_storage again;
		print_sockname(l, "listen-addr", &again);
	}
	int ep = -1;
	if (opt.nonblock) {
		if (fcntl(l, F_SETFL, fcntl(l, F_GETFL) | O_NONBLOCK) < 0)
			die("fcntl", errno);
		ep = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = l };
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) < 0)
			die("epoll", errno);
	}
	/* What an FTP client does with a wildcard answer: advertise the
	 * control connection's local address with the listener's port. */
	char host[INET6_ADDRSTRLEN] = "?";
	const struct sockaddr_storage *ha = is_any(&adv) ? ctrl_local : &adv;
	if (ha->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ha)->sin_addr, host, sizeof(host));
	else
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ha)->sin6_addr, host, sizeof(host));
	char line[512];
	int n = snprintf(line, sizeof(line), "PORT %s %u\n", host, port_of(&adv));
	if (write(c, line, (size_t)n) != n)
		die("write control", errno);
	printf("sent: %s", line);
	fflush(stdout);

	struct sockaddr_storage peer;
	int a = accept_one(l, ep, &peer);
	struct sockaddr_storage gp;
	socklen_t gl = sizeof(gp);
	if (getpeername(a, (struct sockaddr *)&gp, &gl) < 0)
		die("getpeername", errno);
	printf("accepted: %s\n", fmt(&gp));
	printf("accept-addr: %s\n", fmt(&peer));
	int fl = fcntl(a, F_GETFL), fd_fl = fcntl(a, F_GETFD);
	printf("flags: nonblock=%d cloexec=%d\n", !!(fl & O_NONBLOCK), !!(fd_fl & FD_CLOEXEC));
	fflush(stdout);
	int aep = -1;
	if (opt.nonblock) {
		/* The accepted fd is new to every epoll set: register and wait. */
		aep = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = a };
		if (aep < 0 || epoll_ctl(aep, EPOLL_CTL_ADD, a, &ev) < 0)
			die("epoll accepted", errno);
	}
	char buf[512];
	read_line(a, aep, buf, sizeof(buf), "read data");
	printf("data: %s\n", buf);
	fflush(stdout);
	close(a);
	if (aep >= 0)
		close(aep);
	if (ep >= 0)
		close(ep);
	close(l);
	read_line(c, -1, buf, sizeof(buf), "read control");
	printf("ctrl: %s\n", buf);
	fflush(stdout);
}

/* A plain local listener at addr: it must behave like one. */
static void local_listener(const char *addr)
{
	struct sockaddr_storage b, got;
	socklen_t blen;
	parse_addr(addr, &b, &blen);
	int l = socket(b.ss_family, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l < 0 || bind(l, (struct sockaddr *)&b, blen) < 0)
		die("bind local", errno);
	print_sockname(l, "listen-addr", &got);
	if (listen(l, 4) < 0)
		die("listen local", errno);
	print_sockname(l, "listen-addr", &got);
	/* Connect from loopback to the port the kernel gave. */
	struct sockaddr_storage to = got;
	if (to.ss_family == AF_INET && is_any(&to))
		((struct sockaddr_in *)&to)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (to.ss_family == AF_INET6 && is_any(&to))
		((struct sockaddr_in6 *)&to)->sin6_addr = in6addr_loopback;
	int c = socket(to.ss_family, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&to, blen) < 0)
		die("connect local", errno);
	int a = accept(l, NULL, NULL);
	if (a < 0)
		die("accept local", errno);
	if (write(c, "local-line\n", 11) != 11)
		die("write local", errno);
	char buf[64];
	read_line(a, -1, buf, sizeof(buf), "read local");
	if (strcmp(buf, "local-line") != 0) {
		fprintf(stderr, "local: got '%s'\n", buf);
		exit(1);
	}
	printf("local: ok %s\n", fmt(&got));
	close(a);
	close(c);
	close(l);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--ctrl") && v)
			opt.ctrl = argv[++i];
		else if (!strcmp(a, "--bind") && v)
			opt.bind = argv[++i];
		else if (!strcmp(a, "--local") && v)
			opt.local = argv[++i];
		else if (!strcmp(a, "--count") && v)
			opt.count = strtol(argv[++i], NULL, 10);
		else if (!strcmp(a, "--timeout-ms") && v)
			opt.timeout_ms = (int)strtol(argv[++i], NULL, 10);
		else if (!strcmp(a, "--listen-first"))
			opt.listen_first = true;
		else if (!strcmp(a, "--raw"))
			opt.raw = true;
		else if (!strcmp(a, "--nonblock"))
			opt.nonblock = true;
		else
			usage();
	}
	if (!opt.ctrl || (strcmp(opt.bind, "wild") && strcmp(opt.bind, "ctrl") &&
			  strcmp(opt.bind, "none")))
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	alarm((unsigned)(opt.timeout_ms / 1000 * opt.count + 5));
	struct sockaddr_storage to, ctrl_local;
	socklen_t tolen;
	parse_addr(opt.ctrl, &to, &tolen);
	int c = socket(to.ss_family, SOCK_STREAM, 0);
	if (c < 0)
		die("socket", errno);
	if (connect(c, (struct sockaddr *)&to, tolen) < 0)
		die("connect control", errno);
	print_sockname(c, "ctrl-local", &ctrl_local);
	if (opt.local) {
		local_listener(opt.local);
		close(c);
		return 0;
	}
	for (long i = 0; i < opt.count; i++)
		exchange(c, &ctrl_local);
	if (write(c, "QUIT\n", 5) != 5)
		die("write control", errno);
	close(c);
	printf("ok: %ld exchanges\n", opt.count);
	return 0;
}
