/* libFuzzer target: the relay's datagram decoder (sfy_udp_decode) with the
 * real fake-DNS table behind it (a named source in remote mode becomes the
 * fake address the program resolved).
 *
 * Input: 1 byte (bit 0: AF_INET6 socket, bit 1: remote DNS), then the
 * datagram. Invariants (trap on violation):
 *   - DELIVER exactly when the SOCKS5 header parses, FRAG is 0 and the
 *     source fits the socket family; the payload offset is the header's
 *     length; the source is a sockaddr of the socket's family with the
 *     header's port and address (v4-mapped on AF_INET6), and a name's fake
 *     address maps back to that name;
 *   - every other verdict is one of the three drops, for its reason. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fakedns.h"
#include "socks5.h"
#include "udp_assoc.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* Fresh table now and then: a long run would otherwise fill the fake range
 * and test only its exhaustion. */
#define NAMES_PER_TABLE 100000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_ip(const struct sockaddr_storage *ss, int family, const uint8_t *ip4,
		     const uint8_t *ip6, uint16_t port)
{
	if (family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		CHECK(ip4 && !memcmp(&in->sin_addr, ip4, 4) && ntohs(in->sin_port) == port);
		return;
	}
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
	CHECK(ntohs(in6->sin6_port) == port);
	if (ip6) {
		CHECK(!memcmp(in6->sin6_addr.s6_addr, ip6, 16));
	} else {
		CHECK(!memcmp(in6->sin6_addr.s6_addr, sfy_v4mapped_prefix, 12));
		CHECK(!memcmp(in6->sin6_addr.s6_addr + 12, ip4, 4));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned names;
	struct sockaddr_storage src;
	struct sfy_addr a;
	socklen_t srclen = 0;
	size_t off = (size_t)-1, hl;
	uint8_t frag;

	if (size < 1)
		return 0;
	int family = data[0] & 1 ? AF_INET6 : AF_INET;
	bool remote = data[0] & 2;
	data++, size--;

	memset(&src, 0xee, sizeof src);
	enum sfy_udp_verdict v = sfy_udp_decode(data, size, family, remote, &off, &src, &srclen);
	enum sfy_parse p = sfy_s5_parse_udp_header(data, size, &hl, &frag, &a);

	if (p != SFY_PARSE_COMPLETE) {
		CHECK(v == SFY_UDP_DROP_MALFORMED);
		return 0;
	}
	CHECK(hl <= size);
	if (frag) {
		CHECK(v == SFY_UDP_DROP_FRAG);
		return 0;
	}
	if (a.type == SFY_ATYP_IPV6 && family == AF_INET) {
		/* only a v4-mapped address is expressible in AF_INET */
		bool mapped = !memcmp(a.ip, sfy_v4mapped_prefix, 12);
		CHECK(v == (mapped ? SFY_UDP_DELIVER : SFY_UDP_DROP_FAMILY));
		if (mapped)
			check_ip(&src, family, a.ip + 12, NULL, a.port);
	} else if (a.type == SFY_ATYP_DOMAIN) {
		char norm[SFY_NAME_MAX + 1], back[SFY_NAME_MAX + 1];
		if (!remote) {
			CHECK(v == SFY_UDP_DROP_FAMILY);
			return 0;
		}
		if (v != SFY_UDP_DELIVER) {
			/* not a usable name, or the range is full */
			CHECK(v == SFY_UDP_DROP_FAMILY);
			return 0;
		}
		uint32_t ip;
		CHECK(sfy_fakedns_ipv4(a.name, &ip) == 0);     /* the same one again */
		check_ip(&src, family, (const uint8_t *)&ip, NULL, a.port);
		CHECK(sfy_fakedns_name(ip, back) == 0);
		CHECK(sfy_fakedns_normalize(a.name, norm) > 0 && !strcmp(back, norm));
		if (++names >= NAMES_PER_TABLE) {
			sfy_fakedns_detach(true);
			names = 0;
		}
	} else {
		CHECK(v == SFY_UDP_DELIVER);
		check_ip(&src, family, a.type == SFY_ATYP_IPV4 ? a.ip : NULL,
			 a.type == SFY_ATYP_IPV6 ? a.ip : NULL, a.port);
	}
	if (v == SFY_UDP_DELIVER) {
		CHECK(off == hl && off <= size);
		CHECK(((const struct sockaddr *)&src)->sa_family == family);
		CHECK(srclen == (family == AF_INET ? sizeof(struct sockaddr_in)
						   : sizeof(struct sockaddr_in6)));
	}
	return 0;
}
