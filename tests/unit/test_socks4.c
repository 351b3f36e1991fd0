/* SOCKS4 / SOCKS4a codec: table-driven byte vectors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "socks4.h"

#include "testutil.h"

static void test_request(void **state)
{
	struct sfy_addr ip4 = { .type = SFY_ATYP_IPV4, .ip = { 127, 0, 0, 1 }, .port = 80 };
	struct sfy_addr dom = { .type = SFY_ATYP_DOMAIN, .name = "example.org", .port = 443 };
	struct sfy_addr ip6 = { .type = SFY_ATYP_IPV6, .ip = { [15] = 1 }, .port = 1 };
	struct sfy_addr a4ip = { .type = SFY_ATYP_IPV4, .ip = { 0, 0, 0, 7 }, .port = 1 };
	struct sfy_addr zero = { .type = SFY_ATYP_IPV4, .port = 1 };
	struct sfy_addr n255 = { .type = SFY_ATYP_DOMAIN, .port = 1 };
	struct sfy_addr n256 = { .type = SFY_ATYP_DOMAIN, .port = 1 };
	struct sfy_addr empty = { .type = SFY_ATYP_DOMAIN, .port = 1 };
	struct sfy_addr badtype = { .type = 2 };
	char u255[256], u256[257];
	static const uint8_t w_ip_bob[] = { 4, 1, 0, 80, 127, 0, 0, 1, 'b', 'o', 'b', 0 };
	static const uint8_t w_ip_nouser[] = { 4, 2, 0, 80, 127, 0, 0, 1, 0 };
	static const uint8_t w_a[] = { 4, 1, 0x01, 0xbb, 0, 0, 0, 1, 'u', 0,
				       'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'o', 'r', 'g', 0 };
	static const uint8_t w_zero[] = { 4, 1, 0, 1, 0, 0, 0, 0, 0 };
	const struct {
		const char *what;
		enum sfy_s4_cmd cmd;
		const struct sfy_addr *dst;
		const char *user;
		int a4;
		ssize_t ret;
		const uint8_t *out;
	} t[] = {
		{ "ipv4 user", SFY_S4_CONNECT, &ip4, "bob", 0, sizeof w_ip_bob, w_ip_bob },
		{ "ipv4 via a4 mode", SFY_S4_CONNECT, &ip4, "bob", 1, sizeof w_ip_bob, w_ip_bob },
		{ "ipv4 bind no user", SFY_S4_BIND, &ip4, NULL, 0, sizeof w_ip_nouser, w_ip_nouser },
		{ "ipv4 empty user", SFY_S4_BIND, &ip4, "", 0, sizeof w_ip_nouser, w_ip_nouser },
		{ "0.0.0.0", SFY_S4_CONNECT, &zero, NULL, 0, sizeof w_zero, w_zero },
		{ "4a name", SFY_S4_CONNECT, &dom, "u", 1, sizeof w_a, w_a },
		{ "name 255 user 255", SFY_S4_CONNECT, &n255, u255, 1, SFY_S4_REQ_MAX, NULL },
		{ "name without 4a", SFY_S4_CONNECT, &dom, NULL, 0, -EINVAL, NULL },
		{ "name 256", SFY_S4_CONNECT, &n256, NULL, 1, -ENAMETOOLONG, NULL },
		{ "name empty", SFY_S4_CONNECT, &empty, NULL, 1, -EINVAL, NULL },
		{ "user 256", SFY_S4_CONNECT, &ip4, u256, 0, -EINVAL, NULL },
		{ "ipv6", SFY_S4_CONNECT, &ip6, NULL, 1, -EAFNOSUPPORT, NULL },
		{ "0.0.0.7 looks like 4a", SFY_S4_CONNECT, &a4ip, NULL, 0, -EINVAL, NULL },
		{ "bad atyp", SFY_S4_CONNECT, &badtype, NULL, 1, -EINVAL, NULL },
		{ "cmd 3", 3, &ip4, NULL, 0, -EINVAL, NULL },
		{ "null dst", SFY_S4_CONNECT, NULL, NULL, 0, -EINVAL, NULL },
	};
	uint8_t buf[SFY_S4_REQ_MAX + 8];

	(void)state;
	memset(n255.name, 'n', 255);
	memset(n256.name, 'n', 256);
	memset(u255, 'u', 255); u255[255] = 0;
	memset(u256, 'u', 256); u256[256] = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		ssize_t n = sfy_s4_build_request(buf, sizeof buf, t[i].cmd, t[i].dst, t[i].user,
						 t[i].a4);

		EQ(n, t[i].ret, t[i].what);
		if (n < 0)
			continue;
		if (t[i].out)
			EQ(memcmp(buf, t[i].out, (size_t)n), 0, t[i].what);
		for (size_t cap = 0; cap < (size_t)n; cap++)
			EQ(sfy_s4_build_request(buf, cap, t[i].cmd, t[i].dst, t[i].user, t[i].a4),
			   -ENOSPC, t[i].what);
	}
	/* the biggest request: 0.0.0.1, user, NUL, name, NUL */
	EQ(sfy_s4_build_request(buf, sizeof buf, SFY_S4_CONNECT, &n255, u255, 1), 520, "max");
	EQ(buf[7], 1, "max dstip");
	EQ(buf[8 + 255], 0, "max user nul");
	EQ(buf[8 + 256], 'n', "max name");
	EQ(buf[519], 0, "max name nul");
}

static void test_reply(void **state)
{
	static const struct {
		const char *what;
		uint8_t r[8];
		enum sfy_parse want;
		size_t bad_at;      /* MALFORMED visible from this many bytes */
	} t[] = {
		{ "granted", { 0, 90, 0x04, 0x38, 10, 0, 0, 1 }, SFY_PARSE_COMPLETE, 0 },
		{ "granted vn 4", { 4, 90, 0, 0, 0, 0, 0, 0 }, SFY_PARSE_COMPLETE, 0 },
		{ "rejected", { 0, 91, 0, 0, 0, 0, 0, 0 }, SFY_PARSE_COMPLETE, 0 },
		{ "no identd", { 0, 92, 0, 0, 0, 0, 0, 0 }, SFY_PARSE_COMPLETE, 0 },
		{ "ident mismatch", { 0, 93, 0, 0, 0, 0, 0, 0 }, SFY_PARSE_COMPLETE, 0 },
		{ "vn 5", { 5, 90, 0, 0, 0, 0, 0, 0 }, SFY_PARSE_MALFORMED, 1 },
		{ "vn 1", { 1, 90, 0, 0, 0, 0, 0, 0 }, SFY_PARSE_MALFORMED, 1 },
		{ "socks5 method reply", { 5, 0, 0, 0, 0, 0, 0, 0 }, SFY_PARSE_MALFORMED, 1 },
		{ "code 0", { 0, 0, 0, 0, 0, 0, 0, 0 }, SFY_PARSE_MALFORMED, 2 },
		{ "code 89", { 0, 89, 0, 0, 0, 0, 0, 0 }, SFY_PARSE_MALFORMED, 2 },
		{ "code 94", { 0, 94, 0, 0, 0, 0, 0, 0 }, SFY_PARSE_MALFORMED, 2 },
		{ "http", { 'H', 'T', 'T', 'P', '/', '1', '.', '0' }, SFY_PARSE_MALFORMED, 1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		uint8_t buf[16];

		memcpy(buf, t[i].r, 8);
		memset(buf + 8, 0xee, 8);   /* tunnel data after the reply */
		for (size_t len = 0; len <= sizeof buf; len++) {
			struct sfy_s4_reply out;
			size_t need = 0;
			enum sfy_parse p;

			memset(&out, 0x5a, sizeof out);
			p = sfy_s4_parse_reply(buf, len, &need, &out);
			if (t[i].want == SFY_PARSE_MALFORMED) {
				EQ(p, len >= t[i].bad_at ? SFY_PARSE_MALFORMED : SFY_PARSE_NEED,
				   t[i].what);
				continue;
			}
			EQ(need, SFY_S4_REPLY_LEN, t[i].what);
			if (len < 8) {
				EQ(p, SFY_PARSE_NEED, t[i].what);
				continue;
			}
			EQ(p, SFY_PARSE_COMPLETE, t[i].what);
			EQ(out.code, t[i].r[1], t[i].what);
			EQ(out.bnd.type, SFY_ATYP_IPV4, t[i].what);
			EQ(out.bnd.port, t[i].r[2] << 8 | t[i].r[3], t[i].what);
			EQ(memcmp(out.bnd.ip, t[i].r + 4, 4), 0, t[i].what);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
