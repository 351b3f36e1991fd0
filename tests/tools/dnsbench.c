/* dnsbench: the round-trip time of one DNS query, for the in-library DNS
 * responder's bench (tests/bench/run.sh, section dnsresp).
 *
 *   dnsbench --serve [--port-file F]
 *       a plain DNS responder on 127.0.0.1 (UDP and TCP on the same
 *       ephemeral port): every query gets its question back with one A
 *       record 192.0.2.1. The baseline: what a loopback round trip to a
 *       server costs without the library.
 *   dnsbench --host H --port P [--tcp] [--count N] [--warmup W]
 *       N queries for an A record, one at a time: send, wait for the reply
 *       (the same ID), repeat. UDP: one socket, sendto()/recvfrom(), as a
 *       stub resolver does; --tcp: one connection, each query
 *       length-prefixed. Prints "RESULT us_per_query=X queries=N
 *       answer=A" (A: the first answer's address, to show who answered).
 *       A reply that does not come within 2 s ends the run (exit 1).
 *
 * Hosts are numeric: no resolver call may add its own time. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchutil.h"

#define REPLY_WAIT_MS 2000
#define MSG_MAX 1500
/* The question: "bench.example." A IN. */
static const uint8_t QNAME[] = "\x05" "bench" "\x07" "example";

static size_t build_query(uint8_t *q, uint16_t id)
{
	memset(q, 0, 12);
	q[0] = (uint8_t)(id >> 8);
	q[1] = (uint8_t)id;
	q[2] = 0x01;            /* RD */
	q[5] = 1;               /* QDCOUNT */
	size_t n = 12;
	memcpy(q + n, QNAME, sizeof(QNAME));   /* with the root's 0 */
	n += sizeof(QNAME);
	q[n++] = 0, q[n++] = 1;                /* A */
	q[n++] = 0, q[n++] = 1;                /* IN */
	return n;
}

/* The reply to query q (qn bytes) into r: the question copied, one A. */
static size_t build_reply(const uint8_t *q, size_t qn, uint8_t *r)
{
	if (qn < 17 || qn > MSG_MAX - 16)
		return 0;
	memcpy(r, q, qn);
	r[2] = 0x81, r[3] = 0x80;               /* QR RD RA, NOERROR */
	r[6] = 0, r[7] = 1;                     /* ANCOUNT */
	r[8] = r[9] = r[10] = r[11] = 0;        /* no NS, no OPT echoed */
	/* Only the question: cut whatever followed it (an OPT record). */
	size_t i = 12;
	while (i < qn && q[i])
		i += (size_t)q[i] + 1;
	size_t n = i + 5;
	if (n > qn)
		return 0;
	static const uint8_t an[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1 };
	memcpy(r + n, an, sizeof(an));
	return n + sizeof(an);
}

static int serve(const char *port_file)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int t = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	socklen_t al = sizeof(a);
	if (t < 0 || bind(t, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(t, 16) < 0 ||
	    getsockname(t, (struct sockaddr *)&a, &al) < 0) {
		perror("dnsbench: tcp");
		return 1;
	}
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	if (u < 0 || bind(u, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("dnsbench: udp");
		return 1;
	}
	if (port_file) {
		FILE *f = fopen(port_file, "w");
		if (!f)
			return 1;
		fprintf(f, "%d\n", ntohs(a.sin_port));
		fclose(f);
	}
	int c = -1;     /* one TCP client at a time: the bench runs one */
	uint8_t q[MSG_MAX], r[MSG_MAX + 2];
	for (;;) {
		struct pollfd p[3] = { { u, POLLIN, 0 }, { t, POLLIN, 0 }, { c, POLLIN, 0 } };
		if (poll(p, c >= 0 ? 3 : 2, -1) < 0 && errno != EINTR)
			return 1;
		if (p[0].revents & POLLIN) {
			struct sockaddr_storage from;
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(u, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
			size_t rn = n > 0 ? build_reply(q, (size_t)n, r) : 0;
			if (rn)
				sendto(u, r, rn, 0, (struct sockaddr *)&from, fl);
		}
		if (p[1].revents & POLLIN) {
			int n = accept(t, NULL, NULL);
			if (n >= 0) {
				if (c >= 0)
					close(c);
				c = n;
				setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			}
		}
		if (c >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
			uint8_t len[2];
			size_t n, rn;
			if (!io_all(c, len, 2, false) || (n = (size_t)(len[0] << 8 | len[1])) > MSG_MAX ||
			    !io_all(c, q, n, false) || !(rn = build_reply(q, n, r + 2))) {
				close(c);
				c = -1;
				continue;
			}
			r[0] = (uint8_t)(rn >> 8), r[1] = (uint8_t)rn;
			if (!io_all(c, r, rn + 2, true)) {
				close(c);
				c = -1;
			}
		}
	}
}

/* Waits for fd to be readable: false after REPLY_WAIT_MS. */
static bool wait_in(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	int r;
	while ((r = poll(&p, 1, REPLY_WAIT_MS)) < 0 && errno == EINTR)
		;
	return r > 0;
}

/* One query and its reply; the reply's first A into ans. */
static bool ask(int fd, bool tcp, const struct sockaddr_storage *to, socklen_t tl, uint16_t id,
		char ans[static INET_ADDRSTRLEN])
{
	uint8_t q[MSG_MAX + 2], r[MSG_MAX + 2];
	size_t qn = build_query(q + 2, id);
	ssize_t n;
	if (tcp) {
		q[0] = (uint8_t)(qn >> 8), q[1] = (uint8_t)qn;
		if (!io_all(fd, q, qn + 2, true) || !wait_in(fd) || !io_all(fd, r, 2, false))
			return false;
		n = r[0] << 8 | r[1];
		if (n > MSG_MAX || !io_all(fd, r, (size_t)n, false))
			return false;
	} else {
		if (sendto(fd, q + 2, qn, 0, (const struct sockaddr *)to, tl) != (ssize_t)qn)
			return false;
		do {
			if (!wait_in(fd) || (n = recv(fd, r, sizeof(r), 0)) < 0)
				return false;
		} while (n < 12 || (r[0] << 8 | r[1]) != id);   /* a stray datagram */
	}
	if (n < 12 || (r[0] << 8 | r[1]) != id || !(r[2] & 0x80))
		return false;
	/* The last 4 bytes of a reply whose last record is an A. */
	if (n >= 16 && r[7] >= 1)
		inet_ntop(AF_INET, r + n - 4, ans, INET_ADDRSTRLEN);
	return true;
}

int main(int argc, char **argv)
{
	const char *host = NULL, *port_file = NULL;
	int port = 53;
	long count = 10000, warmup = 100;
	bool tcp = false, srv = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--serve"))
			srv = true;
		else if (!strcmp(argv[i], "--tcp"))
			tcp = true;
		else if (!strcmp(argv[i], "--port-file") && i + 1 < argc)
			port_file = argv[++i];
		else if (!strcmp(argv[i], "--host") && i + 1 < argc)
			host = argv[++i];
		else if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = atol(argv[++i]);
		else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
			warmup = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: dnsbench --serve [--port-file F] | --host H "
					"[--port P] [--tcp] [--count N] [--warmup W]\n");
			return 2;
		}
	}
	if (srv)
		return serve(port_file);
	struct sockaddr_storage to;
	socklen_t tl = host ? parse_sockaddr(host, port, &to) : 0;
	if (!tl || count < 1) {
		fprintf(stderr, "dnsbench: a numeric --host and a --count > 0\n");
		return 2;
	}
	int fd = socket(to.ss_family, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (fd < 0 || (tcp && connect(fd, (struct sockaddr *)&to, tl) < 0)) {
		perror("dnsbench: socket/connect");
		return 1;
	}
	char ans[INET_ADDRSTRLEN] = "-";
	int64_t t0 = 0;
	for (long i = 0; i < warmup + count; i++) {
		if (i == warmup)
			t0 = now_ns();
		if (!ask(fd, tcp, &to, tl, (uint16_t)(i * 7919 + 1), ans)) {
			fprintf(stderr, "dnsbench: query %ld got no reply within %d ms\n", i,
				REPLY_WAIT_MS);
			return 1;
		}
	}
	double us = (double)(now_ns() - t0) / 1e3 / (double)count;
	printf("RESULT us_per_query=%.2f queries=%ld answer=%s\n", us, count, ans);
	return 0;
}
