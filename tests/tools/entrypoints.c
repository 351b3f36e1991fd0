/* entrypoints: reaches the network through the side doors a preloaded
 * library must also cover, for tests/integration/entry_points.sh.
 *
 *   entrypoints MODE HOST PORT
 *
 * TCP modes connect to HOST:PORT (an echo server) in their own way, send
 * "ping\n" and expect it back; they print "ok: MODE" and exit 0, or one
 * line naming the errno and exit 1:
 *   syscall     syscall(SYS_connect, ...)
 *   __connect   glibc's exported alias __connect()
 *   dlsym       connect from dlsym(dlopen("libc.so.6"), "connect")
 *   dlvsym      connect from dlvsym(that handle, "connect", "GLIBC_2.2.5")
 *   dlvsym-default  from dlvsym(RTLD_DEFAULT, "connect", "GLIBC_2.2.5"),
 *               which skips unversioned definitions such as an interposer's
 *   udp-dlsym   a UDP datagram to a UDP echo server, sent with sendto from
 *               dlsym(libc handle, "sendto"), and its echo received
 * The r-commands (expected to be refused) print "MODE: RESULT ERRNO" and
 * exit 0 if they returned -1, 2 otherwise:
 *   rcmd rexec ruserok   (PORT is ignored by ruserok)
 * Every mode gives up after 8 s (exit 3), so a direct connect into a
 * black hole fails quickly instead of hanging the test. */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define GIVE_UP_SECONDS 8

/* Exported by glibc (GLIBC_2.2.5) but declared in no header. */
int __connect(int fd, const struct sockaddr *sa, socklen_t len);

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
typedef ssize_t (*sendto_fn)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);

static void give_up(int sig)
{
	static const char msg[] = "entrypoints: gave up (timeout)\n";
	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(3);
}

static void *libc_sym(const char *name, const char *version)
{
	void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "entrypoints: dlopen: %s\n", dlerror());
		exit(1);
	}
	void *p = version ? dlvsym(h, name, version) : dlsym(h, name);
	if (!p) {
		fprintf(stderr, "entrypoints: dlsym %s: %s\n", name, dlerror());
		exit(1);
	}
	return p;
}

static int fail(const char *what)
{
	int e = errno;
	fprintf(stderr, "entrypoints: %s: %s (%s)\n", what, strerrorname_np(e) ? strerrorname_np(e) : "?",
		strerror(e));
	return 1;
}

static int tcp(const char *mode, const char *host, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "entrypoints: %s: not an IPv4 address\n", host);
		return 1;
	}
	bool udp = !strcmp(mode, "udp-dlsym");
	int fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
	if (fd < 0)
		return fail("socket");
	const struct sockaddr *a = (const struct sockaddr *)&sa;
	int r = 0;
	sendto_fn snd = sendto;
	if (!strcmp(mode, "syscall"))
		r = (int)syscall(SYS_connect, fd, a, sizeof(sa));
	else if (!strcmp(mode, "__connect"))
		r = __connect(fd, a, sizeof(sa));
	else if (!strcmp(mode, "dlsym"))
		r = ((connect_fn)libc_sym("connect", NULL))(fd, a, sizeof(sa));
	else if (!strcmp(mode, "dlvsym"))
		r = ((connect_fn)libc_sym("connect", "GLIBC_2.2.5"))(fd, a, sizeof(sa));
	else if (!strcmp(mode, "dlvsym-default")) {
		connect_fn f = (connect_fn)dlvsym(RTLD_DEFAULT, "connect", "GLIBC_2.2.5");
		if (!f) {
			fprintf(stderr, "entrypoints: dlvsym: %s\n", dlerror());
			return 1;
		}
		r = f(fd, a, sizeof(sa));
	}
	else if (udp)
		snd = (sendto_fn)libc_sym("sendto", NULL);
	else {
		fprintf(stderr, "entrypoints: unknown mode %s\n", mode);
		return 1;
	}
	if (r < 0)
		return fail("connect");
	if (snd(fd, "ping\n", 5, 0, udp ? a : NULL, udp ? sizeof(sa) : 0) != 5)
		return fail("send");
	char buf[5];
	size_t got = 0;
	while (got < sizeof(buf)) {
		ssize_t n = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (n <= 0)
			return n < 0 ? fail("recv") : (fprintf(stderr, "entrypoints: recv: EOF\n"), 1);
		got += (size_t)n;
	}
	if (memcmp(buf, "ping\n", 5)) {
		fprintf(stderr, "entrypoints: wrong echo\n");
		return 1;
	}
	printf("ok: %s\n", mode);
	return 0;
}

static int rcommand(const char *mode, const char *host, int port)
{
	char *h = (char *)host;
	int fd2 = -1, r;
	errno = 0;
	if (!strcmp(mode, "rcmd"))
		r = rcmd(&h, htons((uint16_t)port), "root", "root", "true", NULL);
	else if (!strcmp(mode, "rexec"))
		r = rexec(&h, htons((uint16_t)port), "root", "secret", "true", &fd2);
	else
		r = ruserok(host, 1, "root", "root");
	int e = errno;
	printf("%s: %d %s\n", mode, r, e && strerrorname_np(e) ? strerrorname_np(e) : "0");
	return r == -1 ? 0 : 2;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: entrypoints MODE HOST PORT\n");
		return 1;
	}
	signal(SIGALRM, give_up);
	alarm(GIVE_UP_SECONDS);
	setvbuf(stdout, NULL, _IONBF, 0);
	const char *mode = argv[1];
	int port = atoi(argv[3]);
	if (!strcmp(mode, "rcmd") || !strcmp(mode, "rexec") || !strcmp(mode, "ruserok"))
		return rcommand(mode, argv[2], port);
	return tcp(mode, argv[2], port);
}
