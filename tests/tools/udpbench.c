/* udpbench: UDP datagrams per second to an echo server through a SOCKS5 UDP
 * relay, either through the socksify shim or through our own UDP ASSOCIATE
 * (the "native client" baseline), plus the echo server itself.
 *
 *   udpbench --serve [--port P] [--port-file F]
 *       a UDP echo server on 127.0.0.1. It drops a datagram whose first two
 *       bytes equal its source port: the client puts its own port there, so
 *       a datagram that bypassed the relay (same source port) gets no echo
 *       and a shim that leaks UDP measures 0, not a flattering number.
 *   udpbench --host H --port P [--native --proxy A:PORT] [--seconds S]
 *            [--window W] [--size B]
 *       plain sendto()/recvfrom() to H:P (run it under socksify with
 *       udp: associate), or with --native: UDP ASSOCIATE on A:PORT ourselves
 *       and add/strip the RFC 1928 datagram header ourselves.
 *       W datagrams are kept in flight; each echo received sends the next;
 *       a silence of LOSS_MS refills the window (counted as lost). Prints
 *       "RESULT dgrams_per_sec=R sent=S received=N lost=L"
 *
 * Hosts are numeric IPv4 addresses: no resolver call may add its own time. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

/* A reply this late on loopback is lost, not slow. */
#define LOSS_MS 50
/* Datagram payload bound: an IPv4 UDP datagram minus a SOCKS header. */
#define MAX_SIZE 65000
/* More in flight than this just overflows socket buffers (losses). */
#define MAX_WINDOW 1024

/*  RFC 1928 section 7, with an IPv4 address (the only kind used here):
 *  +----+------+------+----------+----------+----------+
 *  |RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
 *  +----+------+------+----------+----------+----------+
 *  | 2  |  1   |  1   |    4     |    2     | Variable |
 *  +----+------+------+----------+----------+----------+ */
#define HDR4 10

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse4(const char *host, int port, struct sockaddr_in *a)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static int parse_hostport(const char *s, struct sockaddr_in *a)
{
	char h[64];
	const char *c = strrchr(s, ':');
	if (!c || (size_t)(c - s) >= sizeof(h))
		return -1;
	memcpy(h, s, (size_t)(c - s));
	h[c - s] = 0;
	return parse4(h, atoi(c + 1), a);
}

/* UDP ASSOCIATE for udp_fd (already bound) over a new TCP connection to
 * proxy; the relay's address in *relay. Returns the control fd or -1. The
 * control connection must stay open for as long as the association lives. */
static int associate(const struct sockaddr_in *proxy, int udp_fd, struct sockaddr_in *relay)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)proxy, sizeof(*proxy))) {
		perror("udpbench: connect to proxy");
		return -1;
	}
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	getsockname(udp_fd, (struct sockaddr *)&me, &ml);
	/* greeting: VER=5 NMETHODS=1 METHOD=0 (no auth) */
	unsigned char g[3] = { 5, 1, 0 }, gr[2];
	/* request: VER CMD=3 (UDP ASSOCIATE) RSV ATYP=1 ADDR PORT, naming the
	 * address our datagrams will come from */
	unsigned char rq[10] = { 5, 3, 0, 1 };
	memcpy(rq + 4, &me.sin_addr, 4);
	memcpy(rq + 8, &me.sin_port, 2);
	unsigned char rp[10];
	if (!io_all(fd, g, sizeof(g), true) || !io_all(fd, gr, 2, false) || gr[0] != 5 ||
	    gr[1] != 0 || !io_all(fd, rq, sizeof(rq), true) || !io_all(fd, rp, 4, false) ||
	    rp[0] != 5 || rp[1] != 0 || rp[3] != 1 || !io_all(fd, rp + 4, 6, false)) {
		fprintf(stderr, "udpbench: UDP ASSOCIATE refused or malformed reply\n");
		close(fd);
		return -1;
	}
	memset(relay, 0, sizeof(*relay));
	relay->sin_family = AF_INET;
	memcpy(&relay->sin_addr, rp + 4, 4);
	memcpy(&relay->sin_port, rp + 8, 2);
	/* 0.0.0.0 means "the address you reached me at". */
	if (relay->sin_addr.s_addr == htonl(INADDR_ANY))
		relay->sin_addr = proxy->sin_addr;
	return fd;
}

static int serve(int port, const char *port_file)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a;
	parse4("127.0.0.1", port, &a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("udpbench: bind");
		return 1;
	}
	int big = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	socklen_t al = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &al);
	printf("%d\n", ntohs(a.sin_port));
	fflush(stdout);
	if (port_file) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%d\n", ntohs(a.sin_port)) < 0 || fclose(f) ||
		    rename(tmp, port_file)) {
			perror("udpbench: port file");
			return 1;
		}
	}
	static char buf[65536];
	for (;;) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		/* The port is at the same offset in both address families. */
		if (n >= 2 && !memcmp(buf, &((struct sockaddr_in *)&from)->sin_port, 2))
			continue;
		if (n >= 0)
			sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
	}
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *proxy_s = NULL, *port_file = NULL;
	int port = -1;
	long window = 16, size = 64;
	double seconds = 2;
	bool native = false, srv = false;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--serve")) {
			srv = true;
			continue;
		}
		if (!strcmp(o, "--native")) {
			native = true;
			continue;
		}
		if (i + 1 >= argc)
			goto usage;
		const char *v = argv[++i];
		if (!strcmp(o, "--host"))
			host = v;
		else if (!strcmp(o, "--port"))
			port = atoi(v);
		else if (!strcmp(o, "--port-file"))
			port_file = v;
		else if (!strcmp(o, "--proxy"))
			proxy_s = v;
		else if (!strcmp(o, "--seconds"))
			seconds = atof(v);
		else if (!strcmp(o, "--window"))
			window = atol(v);
		else if (!strcmp(o, "--size"))
			size = atol(v);
		else
			goto usage;
	}
	if (srv)
		return serve(port < 0 ? 0 : port, port_file);

	struct sockaddr_in dst, proxy, relay;
	if (port <= 0 || port > 65535 || parse4(host, port, &dst) || window < 1 ||
	    window > MAX_WINDOW || size < 1 || size > MAX_SIZE || seconds <= 0 ||
	    (native && (!proxy_s || parse_hostport(proxy_s, &proxy))))
		goto usage;

	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ctl = -1;
	struct sockaddr_in me;
	parse4("127.0.0.1", 0, &me);
	if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof(me))) {
		perror("udpbench: socket");
		return 1;
	}
	if (native && (ctl = associate(&proxy, fd, &relay)) < 0)
		return 1;
	socklen_t ml = sizeof(me);
	getsockname(fd, (struct sockaddr *)&me, &ml);

	static char out[HDR4 + MAX_SIZE], in[HDR4 + MAX_SIZE + 512];
	size_t hdr = native ? HDR4 : 0, olen = hdr + (size_t)size;
	memset(out, 'u', sizeof(out));
	if (native) {
		memset(out, 0, HDR4);
		out[3] = 1;
		memcpy(out + 4, &dst.sin_addr, 4);
		memcpy(out + 8, &dst.sin_port, 2);
	}
	/* Our port first: the echo server ignores datagrams sent straight from it. */
	if (size >= 2)
		memcpy(out + hdr, &me.sin_port, 2);
	const struct sockaddr_in *to = native ? &relay : &dst;

	long sent = 0, got = 0, lost = 0, inflight = 0, bad = 0;
	double t0 = now_s(), end = t0 + seconds;
	while (now_s() < end) {
		while (inflight < window) {
			if (sendto(fd, out, olen, 0, (const struct sockaddr *)to, sizeof(*to)) < 0) {
				perror("udpbench: sendto");
				return 1;
			}
			sent++;
			inflight++;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, LOSS_MS) == 0) {
			lost += inflight;
			inflight = 0;
			continue;
		}
		ssize_t n = recvfrom(fd, in, sizeof(in), MSG_DONTWAIT, NULL, NULL);
		if (n < 0)
			continue;
		/* A reply must be our payload, behind a header when we add them. */
		if ((size_t)n != olen || (native && (in[2] != 0 || in[3] != 1))) {
			if (bad++ < 3)
				fprintf(stderr, "udpbench: unexpected %zd-byte reply\n", n);
			continue;
		}
		got++;
		if (inflight > 0)
			inflight--;
	}
	double el = now_s() - t0;
	printf("RESULT dgrams_per_sec=%.0f sent=%ld received=%ld lost=%ld\n", (double)got / el, sent,
	       got, lost);
	if (ctl >= 0)
		close(ctl);
	close(fd);
	if (got == 0)
		fprintf(stderr, "udpbench: no echo at all (not relayed? the echo server "
				"ignores datagrams that bypass the relay)\n");
	return got > 0 && !bad ? 0 : 1;
usage:
	fprintf(stderr, "usage: udpbench --serve [--port P] [--port-file F]\n"
			"       udpbench --host H --port P [--native --proxy A:PORT] [--seconds S] "
			"[--window W] [--size B]\n");
	return 2;
}
