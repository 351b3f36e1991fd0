/* Bypass rules: destinations connect() reaches directly, never through the
 * chain. Syntax, one rule per string:
 *
 *   10.0.0.0/8            IPv4 network, any port
 *   192.168.1.0/24:22     IPv4 network, port 22 only
 *   10.1.2.3[:PORT]       bare address = /32
 *   ::1/128  [::1]/128:22 [2001:db8::]/32:443  [::1]:22
 *
 * Host bits set below the prefix ("10.1.2.3/8") are an error, not silently
 * cleared: that is almost always a typo for a different network, and a bypass
 * rule wider or narrower than meant leaks or breaks traffic silently.
 * ::ffff:a.b.c.d/96+n rules become a.b.c.d/n IPv4 rules, and IPv4-mapped
 * IPv6 destinations are matched as IPv4, so one rule covers both socket
 * families. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "bypass.h"
#include "sfy.h"

/* The longest textual rule: a full IPv6 address with an embedded IPv4
 * (45 bytes), brackets, "/128" and ":65535". 64 leaves room and bounds the
 * copy so nothing is allocated. */
#define CIDR_TEXT_MAX 64


/* Decimal 0..max, digits only; -1 if bad. */
static long number(const char *s, long max)
{
	unsigned long v;
	return sfy_decimal(s, strlen(s), (unsigned long)max, &v) ? -1 : (long)v;
}


int sfy_split_bracketed(char *buf, char **addr, char **prefix, char **port)
{
	char *close = strchr(buf, ']'), *rest;

	*prefix = *port = NULL;
	if (!close)
		return -1;
	*close = '\0';
	*addr = buf + 1;
	rest = close + 1;
	if (*rest == '/') {
		*prefix = rest + 1;
		rest = strchr(*prefix, ':');
		if (rest)
			*rest++ = '\0';
	} else if (*rest == ':') {
		rest++;
	} else if (*rest) {
		return -2;
	} else {
		rest = NULL;
	}
	*port = rest;
	return 0;
}

int sfy_cidr_parse(const char *s, struct sfy_cidr *c, char *err, size_t errcap)
{
	char buf[CIDR_TEXT_MAX + 1], *addr = buf, *prefix = NULL, *port = NULL;
	unsigned bits;
	long v;

	memset(c, 0, sizeof *c);
	/* No address holds one, and the messages below quote s: an error
	 * must stay one line whatever the file held. */
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return sfy_errf(err, errcap, "control byte in address");
	if (strlen(s) > CIDR_TEXT_MAX)
		return sfy_errf(err, errcap, "bad address/prefix \"%.20s...\"", s);
	strcpy(buf, s);

	if (buf[0] == '[') {
		int r = sfy_split_bracketed(buf, &addr, &prefix, &port);
		if (r == -1)
			return sfy_errf(err, errcap, "unterminated '[' in \"%s\"", s);
		if (r < 0)
			return sfy_errf(err, errcap, "unexpected text after ']' in \"%s\"", s);
	} else {
		prefix = strchr(buf, '/');
		if (prefix) {
			*prefix++ = '\0';
			/* "::1/128:22" is unambiguous once the prefix is split off. */
			port = strchr(prefix, ':');
		} else if (strchr(buf, ':') == strrchr(buf, ':')) {
			/* Zero or one ':' -- IPv4 with an optional port. Bare
			 * IPv6 (two or more) cannot carry a port unbracketed. */
			port = strchr(buf, ':');
		}
		if (port)
			*port++ = '\0';
	}

	if (inet_pton(AF_INET, addr, c->addr) == 1) {
		c->family = AF_INET;
		bits = 32;
	} else if (inet_pton(AF_INET6, addr, c->addr) == 1) {
		c->family = AF_INET6;
		bits = 128;
	} else {
		return sfy_errf(err, errcap, "bad address in \"%s\"", s);
	}
	if (buf[0] == '[' && c->family != AF_INET6)
		return sfy_errf(err, errcap, "brackets are for IPv6 addresses in \"%s\"", s);

	c->prefix = (uint8_t)bits;
	if (prefix) {
		if ((v = number(prefix, bits)) < 0)
			return sfy_errf(err, errcap, "bad prefix length in \"%s\" (0..%u)", s, bits);
		c->prefix = (uint8_t)v;
	}
	if (port) {
		if ((v = number(port, 65535)) < 1)
			return sfy_errf(err, errcap, "bad port in \"%s\" (1..65535)", s);
		c->port = (uint16_t)v;
	}

	for (unsigned i = c->prefix; i < bits; i++)
		if (c->addr[i / 8] & (0x80u >> (i % 8)))
			return sfy_errf(err, errcap, "host bits set in \"%s\" (address must be the network's first)", s);

	if (c->family == AF_INET6 && c->prefix >= 96 && !memcmp(c->addr, sfy_v4mapped_prefix, 12)) {
		memmove(c->addr, c->addr + 12, 4);
		memset(c->addr + 4, 0, 12);
		c->family = AF_INET;
		c->prefix -= 96;
	}
	return 0;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole))
		return false;
	if (!rest)
		return true;
	uint8_t mask = (uint8_t)(0xffu << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

bool sfy_cidr_match(const struct sfy_cidr *c, const struct sockaddr *sa)
{
	const uint8_t *ip;
	int family;
	uint16_t port_be;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		ip = (const uint8_t *)&in->sin_addr;
		family = AF_INET;
		port_be = in->sin_port;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		ip = in6->sin6_addr.s6_addr;
		family = AF_INET6;
		port_be = in6->sin6_port;
		if (!memcmp(ip, sfy_v4mapped_prefix, 12)) {
			ip += 12;
			family = AF_INET;
		}
	} else {
		return false;
	}
	if (family != c->family)
		return false;
	if (c->port && ntohs(port_be) != c->port)
		return false;
	return prefix_equal(ip, c->addr, c->prefix);
}

bool sfy_cidr_match_any(const struct sfy_cidr *c, size_t n, const struct sockaddr *sa)
{
	for (size_t i = 0; i < n; i++)
		if (sfy_cidr_match(&c[i], sa))
			return true;
	return false;
}
