/* struct sfy_addr <-> sockaddr and text. A v4-mapped IPv6 address
 * (::ffff:a.b.c.d) is an IPv4 destination in disguise: an AF_INET6 socket
 * uses it to reach IPv4 hosts, and a SOCKS4 hop can only carry IPv4, so it
 * is normalised to SFY_ATYP_IPV4 on the way in. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"

const uint8_t sfy_v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static void set_ip6(struct sfy_addr *a, const uint8_t ip[16])
{
	if (!memcmp(ip, sfy_v4mapped_prefix, sizeof sfy_v4mapped_prefix)) {
		a->type = SFY_ATYP_IPV4;
		memcpy(a->ip, ip + 12, 4);
	} else {
		a->type = SFY_ATYP_IPV6;
		memcpy(a->ip, ip, 16);
	}
}

int sfy_addr_from_sockaddr(struct sfy_addr *a, const struct sockaddr *sa, socklen_t len)
{
	if (!a || !sa || len < (socklen_t)sizeof(sa_family_t))
		return -EINVAL;
	memset(a, 0, sizeof *a);
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in sin;

		if (len < (socklen_t)sizeof sin)
			return -EINVAL;
		memcpy(&sin, sa, sizeof sin);   /* sa may be unaligned */
		a->type = SFY_ATYP_IPV4;
		memcpy(a->ip, &sin.sin_addr, 4);
		a->port = ntohs(sin.sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 sin6;

		if (len < (socklen_t)sizeof sin6)
			return -EINVAL;
		memcpy(&sin6, sa, sizeof sin6);
		/* The scope id is dropped: a proxy cannot use our interface index. */
		set_ip6(a, sin6.sin6_addr.s6_addr);
		a->port = ntohs(sin6.sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}

int sfy_addr_to_sockaddr(const struct sfy_addr *a, int family, struct sockaddr_storage *ss)
{
	if (!a || !ss)
		return -EINVAL;
	memset(ss, 0, sizeof *ss);
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		const uint8_t *ip4;

		if (a->type == SFY_ATYP_IPV4)
			ip4 = a->ip;
		else if (a->type == SFY_ATYP_IPV6 &&
			 !memcmp(a->ip, sfy_v4mapped_prefix, sizeof sfy_v4mapped_prefix))
			ip4 = a->ip + 12;
		else
			return -EAFNOSUPPORT;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(a->port);
		memcpy(&sin->sin_addr, ip4, 4);
		return (int)sizeof *sin;
	}
	if (family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (a->type == SFY_ATYP_IPV4) {
			memcpy(sin6->sin6_addr.s6_addr, sfy_v4mapped_prefix, 12);
			memcpy(sin6->sin6_addr.s6_addr + 12, a->ip, 4);
		} else if (a->type == SFY_ATYP_IPV6) {
			memcpy(sin6->sin6_addr.s6_addr, a->ip, 16);
		} else {
			return -EAFNOSUPPORT;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(a->port);
		return (int)sizeof *sin6;
	}
	return -EAFNOSUPPORT;
}

void sfy_addr_format(const struct sfy_addr *a, char *buf, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];

	if (!buf || !cap)
		return;
	if (!a) {
		snprintf(buf, cap, "(null)");
		return;
	}
	switch (a->type) {
	case SFY_ATYP_IPV4:
		inet_ntop(AF_INET, a->ip, ip, sizeof ip);
		snprintf(buf, cap, "%s:%u", ip, (unsigned)a->port);
		break;
	case SFY_ATYP_IPV6:
		inet_ntop(AF_INET6, a->ip, ip, sizeof ip);
		snprintf(buf, cap, "[%s]:%u", ip, (unsigned)a->port);
		break;
	case SFY_ATYP_DOMAIN:
		/* %.*s: a hand-filled struct need not be NUL-terminated. */
		snprintf(buf, cap, "%.*s:%u", SFY_NAME_MAX, a->name, (unsigned)a->port);
		break;
	default:
		snprintf(buf, cap, "(bad address type %d)", (int)a->type);
		break;
	}
}

/* Numeric IPv4 (dotted quad only: inet_pton rejects "1" and "0x7f.1"),
 * numeric IPv6 with or without brackets, else a domain name of 1..255
 * bytes. Returns 0, -EINVAL (NULL or empty) or -ENAMETOOLONG. */
int sfy_addr_set_host(struct sfy_addr *a, const char *host, uint16_t port)
{
	uint8_t ip6[16];
	char inner[INET6_ADDRSTRLEN];
	size_t n;

	if (!a || !host || !*host)
		return -EINVAL;
	memset(a, 0, sizeof *a);
	a->port = port;
	if (inet_pton(AF_INET, host, a->ip) == 1) {
		a->type = SFY_ATYP_IPV4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, ip6) == 1) {
		set_ip6(a, ip6);
		return 0;
	}
	n = strlen(host);
	if (host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof inner) {
		memcpy(inner, host + 1, n - 2);
		inner[n - 2] = '\0';
		if (inet_pton(AF_INET6, inner, ip6) == 1) {
			set_ip6(a, ip6);
			return 0;
		}
	}
	if (n > SFY_NAME_MAX) {
		memset(a, 0, sizeof *a);
		return -ENAMETOOLONG;
	}
	a->type = SFY_ATYP_DOMAIN;
	memcpy(a->name, host, n + 1);
	return 0;
}

int sfy_addr_name_len(const struct sfy_addr *a)
{
	size_t n = strnlen(a->name, sizeof a->name);
	if (n > SFY_NAME_MAX)
		return -ENAMETOOLONG;
	return n ? (int)n : -EINVAL;
}
