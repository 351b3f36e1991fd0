/* addrforms: tries every way of naming an IPv4 destination that the Linux
 * kernel accepts but a naive "is this an inet address" check misses, and
 * the sockets socksify cannot proxy, against one target; one line per form:
 *
 *   addrforms --host A.B.C.D [--tcp PORT] [--udp PORT] [--only FORM]
 *
 *   FORM ok REPLY          a round trip completed (REPLY: what came back,
 *                          for the UDP echo of udpserver.py DATA|SENDER-IP)
 *   FORM sent              sent (twice), no reply expected (raw, ICMP,
 *                          UDP-Lite)
 *   FORM error ENAME       the call failed with that errno
 *   FORM skip WHY          this kernel has no such socket (SCTP without the
 *                          sctp module, ICMP sockets outside
 *                          net.ipv4.ping_group_range, no MPTCP)
 *
 * TCP forms expect an echo server on --tcp (default 7), UDP forms
 * udpserver.py echo on --udp (default 7). Exit status 0 unless the
 * arguments are wrong: the caller judges the lines. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <netinet/udp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <arpa/inet.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
/* SIN6_LEN_RFC2133: a sockaddr_in6 without its scope id. */
#define SIN6_LEN_OLD 24
#define TIMEOUT_S 4

static struct in_addr host;
static unsigned tport = 7, uport = 7;

static struct sockaddr_in sin4(unsigned port, sa_family_t fam)
{
	struct sockaddr_in s = { .sin_family = fam, .sin_port = htons(port), .sin_addr = host };
	return s;
}

static struct sockaddr_in6 mapped(unsigned port)
{
	struct sockaddr_in6 s = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	s.sin6_addr.s6_addr[10] = s.sin6_addr.s6_addr[11] = 0xff;
	memcpy(s.sin6_addr.s6_addr + 12, &host, 4);
	return s;
}

static int sock(int fam, int type, int proto)
{
	int fd = socket(fam, type, proto);
	if (fd >= 0) {
		struct timeval tv = { TIMEOUT_S, 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

static int fail(const char *form, int fd)
{
	printf("%s error %s\n", form, strerrorname_np(errno));
	if (fd >= 0)
		close(fd);
	return 0;
}

/* Reads the reply on fd and prints the result line. */
static int reply(const char *form, int fd)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		return fail(form, fd);
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0;
	printf("%s ok %s\n", form, buf);
	close(fd);
	return 0;
}

static int tcp_connect(const char *form, int fam, int proto, const void *sa, socklen_t len)
{
	int fd = sock(fam, SOCK_STREAM, proto);
	if (fd < 0 && proto == IPPROTO_MPTCP) {
		printf("%s skip no MPTCP here (%s)\n", form, strerrorname_np(errno));
		return 0;
	}
	if (fd < 0 || connect(fd, sa, len) < 0 || send(fd, form, strlen(form), MSG_NOSIGNAL) < 0)
		return fail(form, fd);
	return reply(form, fd);
}

/* sendto/sendmsg/sendmmsg with MSG_FASTOPEN: a connect plus data. */
static int tcp_fastopen(const char *form, int fam, const void *sa, socklen_t len, int how)
{
	int fd = sock(fam, SOCK_STREAM, 0);
	if (fd < 0)
		return fail(form, fd);
	struct iovec iov = { (void *)form, strlen(form) };
	struct mmsghdr mm[2];
	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < 2; i++) {
		mm[i].msg_hdr.msg_name = (void *)sa;
		mm[i].msg_hdr.msg_namelen = len;
		mm[i].msg_hdr.msg_iov = &iov;
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	long r;
	if (how == 0)
		r = sendto(fd, form, strlen(form), MSG_FASTOPEN | MSG_NOSIGNAL, sa, len);
	else if (how == 1)
		r = sendmsg(fd, &mm[0].msg_hdr, MSG_FASTOPEN | MSG_NOSIGNAL);
	else
		r = sendmmsg(fd, mm, 2, MSG_FASTOPEN | MSG_NOSIGNAL);
	if (r < 0)
		return fail(form, fd);
	/* sendmmsg: the kernel sends the first and stops (EISCONN after it) */
	if (how == 2 && r != 1) {
		printf("%s error sendmmsg-returned-%ld\n", form, r);
		close(fd);
		return 0;
	}
	return reply(form, fd);
}

static int udp(const char *form, int fam, const void *sa, socklen_t len, int how)
{
	int fd = sock(fam, SOCK_DGRAM, 0);
	if (fd < 0)
		return fail(form, fd);
	struct iovec iov = { (void *)form, strlen(form) };
	struct mmsghdr mm = { .msg_hdr = { .msg_name = (void *)sa, .msg_namelen = len,
					   .msg_iov = &iov, .msg_iovlen = 1 } };
	long r;
	switch (how) {
	case 0: r = sendto(fd, form, strlen(form), 0, sa, len); break;
	case 1: r = sendmsg(fd, &mm.msg_hdr, 0); break;
	case 2: r = sendmmsg(fd, &mm, 1, 0); break;
	default:
		r = connect(fd, sa, len);
		if (r == 0)
			r = send(fd, form, strlen(form), 0);
	}
	if (r < 0)
		return fail(form, fd);
	return reply(form, fd);
}

/* The sockets socksify cannot proxy: each must fail with EACCES. */
static int other(const char *form, int type, int proto)
{
	int fd = sock(AF_INET, type, proto);
	if (fd < 0) {
		if (errno == EPROTONOSUPPORT || errno == ESOCKTNOSUPPORT ||
		    errno == EAFNOSUPPORT || errno == EACCES || errno == EPERM) {
			printf("%s skip socket(): %s\n", form, strerrorname_np(errno));
			return 0;
		}
		return fail(form, fd);
	}
	struct sockaddr_in to = sin4(0, AF_INET);
	unsigned char pkt[64];
	size_t n = 0;
	memset(pkt, 0, sizeof(pkt));
	if (proto == IPPROTO_ICMP) {
		/* an echo request; the kernel fills id and checksum for ICMP
		 * datagram sockets, a raw one needs the checksum */
		struct icmphdr *ic = (struct icmphdr *)pkt;
		ic->type = ICMP_ECHO;
		ic->un.echo.id = htons(0x5f5f);
		ic->un.echo.sequence = htons(1);
		n = sizeof(*ic) + 8;
		memcpy(pkt + sizeof(*ic), "addrform", 8);
		uint32_t sum = 0;
		for (size_t i = 0; i < n; i += 2)
			sum += (uint32_t)(pkt[i] << 8 | pkt[i + 1]);
		while (sum >> 16)
			sum = (sum & 0xffff) + (sum >> 16);
		ic->checksum = htons((uint16_t)~sum);
	} else if (type == SOCK_RAW) {
		struct udphdr *uh = (struct udphdr *)pkt;   /* checksum 0: none */
		uh->source = htons(40000);
		uh->dest = htons(uport);
		n = sizeof(*uh) + 8;
		uh->len = htons((uint16_t)n);
		memcpy(pkt + sizeof(*uh), "addrform", 8);
	} else {
		to.sin_port = htons(type == SOCK_DGRAM ? uport : tport);
		n = 8;
		memcpy(pkt, "addrform", 8);
	}
	if (type == SOCK_STREAM || type == SOCK_SEQPACKET) {
		if (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0)
			return fail(form, fd);
		printf("%s ok connected\n", form);
		close(fd);
		return 0;
	}
	/* Twice: a refusal is logged once per socket, not per datagram. */
	ssize_t r = sendto(fd, pkt, n, 0, (struct sockaddr *)&to, sizeof(to));
	int e = errno;
	(void)sendto(fd, pkt, n, 0, (struct sockaddr *)&to, sizeof(to));
	errno = e;
	if (r < 0)
		return fail(form, fd);
	printf("%s sent\n", form);
	close(fd);
	return 0;
}

static int run(const char *form)
{
	struct sockaddr_in t4 = sin4(tport, AF_INET), u4 = sin4(uport, AF_INET);
	struct sockaddr_in uun = sin4(uport, AF_UNSPEC);
	struct sockaddr_in6 t6 = mapped(tport), u6 = mapped(uport);
	static const char *all[] = {
		"tcp6-mapped-len24", "tcp6-mapped-len24-tfo-sendto", "tfo-sendmsg",
		"tfo-sendmmsg", "udp4-unspec-sendto", "udp4-unspec-sendmsg",
		"udp4-unspec-sendmmsg", "udp6-inet-sendto", "udp6-inet-connect",
		"udp6-mapped-len24-sendto", "udp6-mapped-len24-connect", "mptcp",
		"sctp", "sctp-seqpacket", "raw-udp", "raw-icmp", "icmp-dgram", "udplite",
	};
	if (!form) {
		for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
			run(all[i]);
			fflush(stdout);
		}
		return 0;
	}
	if (!strcmp(form, "tcp6-mapped-len24"))
		return tcp_connect(form, AF_INET6, 0, &t6, SIN6_LEN_OLD);
	if (!strcmp(form, "tcp6-mapped-len24-tfo-sendto"))
		return tcp_fastopen(form, AF_INET6, &t6, SIN6_LEN_OLD, 0);
	if (!strcmp(form, "tfo-sendmsg"))
		return tcp_fastopen(form, AF_INET, &t4, sizeof(t4), 1);
	if (!strcmp(form, "tfo-sendmmsg"))
		return tcp_fastopen(form, AF_INET, &t4, sizeof(t4), 2);
	if (!strcmp(form, "udp4-unspec-sendto"))
		return udp(form, AF_INET, &uun, sizeof(uun), 0);
	if (!strcmp(form, "udp4-unspec-sendmsg"))
		return udp(form, AF_INET, &uun, sizeof(uun), 1);
	if (!strcmp(form, "udp4-unspec-sendmmsg"))
		return udp(form, AF_INET, &uun, sizeof(uun), 2);
	if (!strcmp(form, "udp6-inet-sendto"))
		return udp(form, AF_INET6, &u4, sizeof(u4), 0);
	if (!strcmp(form, "udp6-inet-connect"))
		return udp(form, AF_INET6, &u4, sizeof(u4), 3);
	if (!strcmp(form, "udp6-mapped-len24-sendto"))
		return udp(form, AF_INET6, &u6, SIN6_LEN_OLD, 0);
	if (!strcmp(form, "udp6-mapped-len24-connect"))
		return udp(form, AF_INET6, &u6, SIN6_LEN_OLD, 3);
	if (!strcmp(form, "mptcp"))
		return tcp_connect(form, AF_INET, IPPROTO_MPTCP, &t4, sizeof(t4));
	if (!strcmp(form, "sctp"))
		return other(form, SOCK_STREAM, IPPROTO_SCTP);
	if (!strcmp(form, "sctp-seqpacket"))
		return other(form, SOCK_SEQPACKET, IPPROTO_SCTP);
	if (!strcmp(form, "raw-udp"))
		return other(form, SOCK_RAW, IPPROTO_UDP);
	if (!strcmp(form, "raw-icmp"))
		return other(form, SOCK_RAW, IPPROTO_ICMP);
	if (!strcmp(form, "icmp-dgram"))
		return other(form, SOCK_DGRAM, IPPROTO_ICMP);
	if (!strcmp(form, "udplite"))
		return other(form, SOCK_DGRAM, IPPROTO_UDPLITE);
	fprintf(stderr, "addrforms: unknown form %s\n", form);
	return 2;
}

int main(int argc, char **argv)
{
	const char *only = NULL;
	bool have_host = false;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--host"))
			have_host = inet_pton(AF_INET, argv[i + 1], &host) == 1;
		else if (!strcmp(argv[i], "--tcp"))
			tport = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--udp"))
			uport = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--only"))
			only = argv[i + 1];
	}
	if (!have_host || !tport || !uport || tport > 65535 || uport > 65535) {
		fprintf(stderr, "usage: addrforms --host A.B.C.D [--tcp PORT] [--udp PORT] "
				"[--only FORM]\n");
		return 2;
	}
	return run(only);
}
