/* libFuzzer target: every SOCKS5 parser, plus the parse -> build -> parse
 * round trip of addresses. Invariants checked (trap on violation):
 *   COMPLETE: *need <= len, and the first *need bytes alone are COMPLETE;
 *   NEED:     *need > len;
 *   a prefix of a COMPLETE reply is never COMPLETE with a different length.
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *   -Ilibsocksify tests/fuzz/fuzz_socks5.c libsocksify/socks5.c \
 *   libsocksify/addr.c -o build/fuzz_socks5 */
#include <stdint.h>
#include <string.h>

#include "socks5.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_addr(const struct sfy_addr *a, const struct sfy_addr *b)
{
	CHECK(a->type == b->type && a->port == b->port);
	if (a->type == SFY_ATYP_DOMAIN)
		CHECK(!strcmp(a->name, b->name));
	else
		CHECK(!memcmp(a->ip, b->ip, a->type == SFY_ATYP_IPV4 ? 4 : 16));
}

static void roundtrip(const struct sfy_addr *a, uint8_t frag)
{
	uint8_t buf[SFY_S5_UDP_HDR_MAX];
	struct sfy_addr b;
	size_t hl;
	uint8_t f;
	ssize_t n;

	n = sfy_s5_build_udp_header(buf, sizeof buf, frag, a);
	if (a->type == SFY_ATYP_DOMAIN && !a->name[0]) {
		CHECK(n < 0);
		return;
	}
	CHECK(n > 0 && (size_t)n <= sizeof buf);
	CHECK(sfy_s5_parse_udp_header(buf, (size_t)n, &hl, &f, &b) == SFY_PARSE_COMPLETE);
	CHECK(hl == (size_t)n && f == frag);
	same_addr(a, &b);
	n = sfy_s5_build_request(buf, sizeof buf, SFY_S5_CONNECT, a);
	CHECK(n > 0 && (size_t)n <= SFY_S5_REQ_MAX);
	n = sfy_s5_build_request(buf, sizeof buf, SFY_S5_RESOLVE, a);
	CHECK(n > 0 && (size_t)n <= SFY_S5_REQ_MAX && buf[1] == 0xF0);
	n = sfy_s5_build_request(buf, sizeof buf, SFY_S5_RESOLVE_PTR, a);
	CHECK(n > 0 && (size_t)n <= SFY_S5_REQ_MAX && buf[1] == 0xF1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sfy_s5_reply r, r2;
	struct sfy_addr src;
	size_t need, need2, hl;
	uint8_t v, frag;
	enum sfy_parse p;

	p = sfy_s5_parse_method(data, size, &need, &v);
	CHECK(p == SFY_PARSE_MALFORMED || (p == SFY_PARSE_NEED ? need > size : need == 2));
	p = sfy_s5_parse_auth(data, size, &need, &v);
	CHECK(p == SFY_PARSE_MALFORMED || (p == SFY_PARSE_NEED ? need > size : need == 2));

	p = sfy_s5_parse_reply(data, size, &need, &r);
	if (p == SFY_PARSE_NEED)
		CHECK(need > size && need <= SFY_S5_REPLY_MAX);
	if (p == SFY_PARSE_COMPLETE) {
		CHECK(need <= size && need <= SFY_S5_REPLY_MAX);
		CHECK(sfy_s5_parse_reply(data, need, &need2, &r2) == SFY_PARSE_COMPLETE);
		CHECK(need2 == need && r2.rep == r.rep);
		same_addr(&r.bnd, &r2.bnd);
		for (size_t k = 0; k < need; k++) {
			CHECK(sfy_s5_parse_reply(data, k, &need2, NULL) == SFY_PARSE_NEED);
			CHECK(need2 > k && need2 <= need);
		}
		roundtrip(&r.bnd, 0);
	}

	if (sfy_s5_parse_udp_header(data, size, &hl, &frag, &src) == SFY_PARSE_COMPLETE) {
		CHECK(hl <= size && hl <= SFY_S5_UDP_HDR_MAX);
		roundtrip(&src, frag);
	}
	return 0;
}
