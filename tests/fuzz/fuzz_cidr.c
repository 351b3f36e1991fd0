/* libFuzzer target: bypass rules (sfy_cidr_parse) and matching.
 * Input: the rule text up to the first NUL; bytes after it are extra
 * addresses to match (4 + 2 bytes IPv4, 16 + 2 bytes IPv6, alternating).
 * Invariants (trap on violation):
 *   - a parsed rule is AF_INET with prefix <= 32 or AF_INET6 with <= 128,
 *     no host bits set, and no v4-mapped IPv6 rule of /96 or longer (those
 *     become IPv4);
 *   - the rule written back as text ("[v6]/len:port") parses to itself;
 *   - it matches its first and last address (as IPv4 and v4-mapped IPv6
 *     for an IPv4 rule), on its port; not the address just past the
 *     network, nor another port when it has one;
 *   - sfy_cidr_match_any agrees with sfy_cidr_match. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "bypass.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool match_ip(const struct sfy_cidr *c, int family, const uint8_t *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		memcpy(&in->sin_addr, ip, 4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		memcpy(in6->sin6_addr.s6_addr, ip, 16);
	}
	bool m = sfy_cidr_match(c, (struct sockaddr *)&ss);
	CHECK(m == sfy_cidr_match_any(c, 1, (struct sockaddr *)&ss));
	return m;
}

/* An IPv4 rule matches the v4-mapped form of its addresses too. The
 * other way round, a v4-mapped address is matched as IPv4, so never by an
 * IPv6 rule (::/80 holds ::ffff:0:0/96 but does not bypass IPv4): the
 * result says nothing about the rule then, *skip is set. */
static bool match_both(const struct sfy_cidr *c, const uint8_t *ip, uint16_t port, bool *skip)
{
	uint8_t m6[16];
	bool m = match_ip(c, c->family, ip, port);
	*skip = c->family == AF_INET6 && !memcmp(ip, sfy_v4mapped_prefix, 12);
	if (*skip)
		CHECK(!m);
	if (c->family == AF_INET) {
		memcpy(m6, sfy_v4mapped_prefix, 12);
		memcpy(m6 + 12, ip, 4);
		CHECK(match_ip(c, AF_INET6, m6, port) == m);
	}
	return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[256], again[128], err[256];
	struct sfy_cidr c, d;
	uint8_t ip[16];

	size_t n = strnlen((const char *)data, size);
	if (n >= sizeof text)
		return 0;
	memcpy(text, data, n);
	text[n] = 0;

	memset(err, 0x55, sizeof err);
	if (sfy_cidr_parse(text, &c, err, sizeof err) < 0) {
		CHECK(memchr(err, 0, sizeof err) && err[0]);
		return 0;
	}
	unsigned bits = c.family == AF_INET ? 32 : 128, bytes = bits / 8;
	CHECK(c.family == AF_INET || c.family == AF_INET6);
	CHECK(c.prefix <= bits);
	for (unsigned i = c.prefix; i < bits; i++)
		CHECK(!(c.addr[i / 8] & (0x80u >> (i % 8))));
	for (unsigned i = bytes; i < 16; i++)
		CHECK(!c.addr[i]);
	if (c.family == AF_INET6 && c.prefix >= 96)
		CHECK(memcmp(c.addr, sfy_v4mapped_prefix, 12));

	/* round trip through text */
	char a[INET6_ADDRSTRLEN];
	CHECK(inet_ntop(c.family, c.addr, a, sizeof a));
	if (c.port)
		snprintf(again, sizeof again, c.family == AF_INET ? "%s/%u:%u" : "[%s]/%u:%u", a,
			 (unsigned)c.prefix, (unsigned)c.port);
	else
		snprintf(again, sizeof again, "%s/%u", a, (unsigned)c.prefix);
	CHECK(sfy_cidr_parse(again, &d, err, sizeof err) == 0);
	CHECK(d.family == c.family && d.prefix == c.prefix && d.port == c.port);
	CHECK(!memcmp(d.addr, c.addr, sizeof d.addr));

	uint16_t port = c.port ? c.port : 1;
	bool m, skip;
	/* first address */
	m = match_both(&c, c.addr, port, &skip);
	CHECK(m || skip);
	if (c.port)
		CHECK(!match_both(&c, c.addr, (uint16_t)(c.port == 65535 ? 1 : c.port + 1), &skip));
	/* last address: every host bit set */
	memcpy(ip, c.addr, 16);
	for (unsigned i = c.prefix; i < bits; i++)
		ip[i / 8] |= (uint8_t)(0x80u >> (i % 8));
	m = match_both(&c, ip, port, &skip);
	CHECK(m || skip);
	/* past the network: flip the last network bit */
	if (c.prefix) {
		memcpy(ip, c.addr, 16);
		ip[(c.prefix - 1) / 8] ^= (uint8_t)(0x80u >> ((c.prefix - 1) % 8));
		CHECK(!match_both(&c, ip, port, &skip));
	}
	/* the other family never matches (apart from v4-mapped, above) */
	memset(ip, 0, sizeof ip);
	ip[0] = 0x20;
	if (c.family == AF_INET)
		CHECK(!match_ip(&c, AF_INET6, ip, port));

	/* the rest of the input: more addresses, only exercised */
	const uint8_t *x = data + n + (n < size), *end = data + size;
	for (int k = 0; x + 6 <= end && k < 8; k++) {
		bool v6 = k & 1 && x + 18 <= end;
		uint16_t pt = (uint16_t)(x[v6 ? 16 : 4] << 8 | x[v6 ? 17 : 5]);
		match_ip(&c, v6 ? AF_INET6 : AF_INET, x, pt);
		x += v6 ? 18 : 6;
	}
	return 0;
}
