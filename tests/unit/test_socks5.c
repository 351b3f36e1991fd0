/* SOCKS5 codec: table-driven byte vectors (RFC 1928, RFC 1929). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "socks5.h"

#include "testutil.h"

#define BYTES(...) (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ })

static struct sfy_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
	struct sfy_addr x = { .type = SFY_ATYP_IPV4, .port = port };

	x.ip[0] = a; x.ip[1] = b; x.ip[2] = c; x.ip[3] = d;
	return x;
}

static struct sfy_addr name_of_len(size_t n, uint16_t port)
{
	struct sfy_addr x = { .type = SFY_ATYP_DOMAIN, .port = port };

	memset(x.name, 'a', n < sizeof x.name ? n : sizeof x.name);
	return x;
}

static void test_greeting(void **state)
{
	static const struct {
		const char *what;
		bool none, up;
		ssize_t ret;
		uint8_t out[4];
	} t[] = {
		{ "none", true, false, 3, { 5, 1, 0 } },
		{ "userpass", false, true, 3, { 5, 1, 2 } },
		{ "both", true, true, 4, { 5, 2, 0, 2 } },
		{ "neither", false, false, -EINVAL, { 0 } },
	};
	uint8_t buf[8];

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		EQ(sfy_s5_build_greeting(buf, sizeof buf, t[i].none, t[i].up), t[i].ret, t[i].what);
		if (t[i].ret < 0)
			continue;
		EQ(memcmp(buf, t[i].out, (size_t)t[i].ret), 0, t[i].what);
		for (size_t cap = 0; cap < (size_t)t[i].ret; cap++)
			EQ(sfy_s5_build_greeting(buf, cap, t[i].none, t[i].up), -ENOSPC, t[i].what);
	}
}

/* Two-byte replies: method choice and RFC 1929 status. */
static void test_two_byte_replies(void **state)
{
	static const struct {
		const char *what;
		int auth;          /* 0: method reply, 1: auth status reply */
		uint8_t in[2];
		enum sfy_parse want;
		uint8_t value;
	} t[] = {
		{ "method none", 0, { 5, 0 }, SFY_PARSE_COMPLETE, 0 },
		{ "method userpass", 0, { 5, 2 }, SFY_PARSE_COMPLETE, 2 },
		{ "method no acceptable", 0, { 5, 0xff }, SFY_PARSE_COMPLETE, 0xff },
		{ "method ver 4", 0, { 4, 0 }, SFY_PARSE_MALFORMED, 0 },
		{ "method ver 0", 0, { 0, 0 }, SFY_PARSE_MALFORMED, 0 },
		{ "method http", 0, { 'H', 'T' }, SFY_PARSE_MALFORMED, 0 },
		{ "auth ok", 1, { 1, 0 }, SFY_PARSE_COMPLETE, 0 },
		{ "auth fail", 1, { 1, 1 }, SFY_PARSE_COMPLETE, 1 },
		{ "auth ver 5 tolerated", 1, { 5, 0 }, SFY_PARSE_COMPLETE, 0 },
		{ "auth ver 2", 1, { 2, 0 }, SFY_PARSE_MALFORMED, 0 },
		{ "auth ver 0", 1, { 0, 0 }, SFY_PARSE_MALFORMED, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		for (size_t len = 0; len <= 2; len++) {
			size_t need = 99;
			uint8_t v = 0x55;
			enum sfy_parse r = t[i].auth ? sfy_s5_parse_auth(t[i].in, len, &need, &v)
						     : sfy_s5_parse_method(t[i].in, len, &need, &v);
			enum sfy_parse want = t[i].want;

			if (len == 0 || (len == 1 && want == SFY_PARSE_COMPLETE))
				want = SFY_PARSE_NEED;
			EQ(r, want, t[i].what);
			if (r != SFY_PARSE_MALFORMED)
				EQ(need, 2, t[i].what);
			if (r == SFY_PARSE_COMPLETE)
				EQ(v, t[i].value, t[i].what);
			else
				EQ(v, 0x55, t[i].what);
		}
	}
}

static void test_auth_build(void **state)
{
	char u255[256], p255[256], u256[257];
	uint8_t buf[SFY_S5_AUTH_MAX + 8];
	static const uint8_t alice[] = { 1, 5, 'a', 'l', 'i', 'c', 'e', 6,
					 's', 'e', 'c', 'r', 'e', 't' };
	static const struct {
		const char *what, *user, *pass;
		ssize_t ret;
	} bad[] = {
		{ "empty user", "", "x", -EINVAL },
		{ "null user", NULL, "x", -EINVAL },
		{ "null pass", "x", NULL, -EINVAL },
	};

	(void)state;
	memset(u255, 'u', 255); u255[255] = 0;
	memset(p255, 'p', 255); p255[255] = 0;
	memset(u256, 'v', 256); u256[256] = 0;

	EQ(sfy_s5_build_auth(buf, sizeof buf, "alice", "secret"), sizeof alice, "alice");
	EQ(memcmp(buf, alice, sizeof alice), 0, "alice bytes");
	/* empty password: PLEN 0, as curl sends for socks5://user@host */
	EQ(sfy_s5_build_auth(buf, sizeof buf, "x", ""), 4, "empty pass");
	EQ(buf[3], 0, "empty pass plen");
	for (size_t cap = 0; cap < sizeof alice; cap++)
		EQ(sfy_s5_build_auth(buf, cap, "alice", "secret"), -ENOSPC, "alice short cap");

	EQ(sfy_s5_build_auth(buf, sizeof buf, u255, p255), SFY_S5_AUTH_MAX, "255/255");
	EQ(buf[0], 1, "255 ver");
	EQ(buf[1], 255, "255 ulen");
	EQ(buf[2 + 255], 255, "255 plen");
	EQ(buf[2], 'u', "255 user");
	EQ(buf[SFY_S5_AUTH_MAX - 1], 'p', "255 pass end");
	EQ(sfy_s5_build_auth(buf, SFY_S5_AUTH_MAX - 1, u255, p255), -ENOSPC, "255 cap-1");

	EQ(sfy_s5_build_auth(buf, sizeof buf, u256, "x"), -EINVAL, "user 256");
	EQ(sfy_s5_build_auth(buf, sizeof buf, "x", u256), -EINVAL, "pass 256");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		EQ(sfy_s5_build_auth(buf, sizeof buf, bad[i].user, bad[i].pass), bad[i].ret,
		   bad[i].what);
}

static void test_request_build(void **state)
{
	struct sfy_addr ip4 = v4(127, 0, 0, 1, 80), ip6 = { .type = SFY_ATYP_IPV6, .port = 443 };
	struct sfy_addr dom = { .type = SFY_ATYP_DOMAIN, .port = 0x1234 };
	struct sfy_addr n255 = name_of_len(255, 1), n256 = name_of_len(256, 1);
	struct sfy_addr empty = name_of_len(0, 1), badtype = { .type = 2 };
	uint8_t buf[SFY_S5_REQ_MAX + 8];
	static const uint8_t want_v4[] = { 5, 1, 0, 1, 127, 0, 0, 1, 0, 80 };
	static const uint8_t want_v6[] = { 5, 3, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
					   0, 0, 0, 0, 0, 0, 0, 1, 0x01, 0xbb };
	static const uint8_t want_dom[] = { 5, 2, 0, 3, 11, 'e', 'x', 'a', 'm', 'p', 'l',
					    'e', '.', 'o', 'r', 'g', 0x12, 0x34 };
	const struct {
		const char *what;
		enum sfy_s5_cmd cmd;
		const struct sfy_addr *dst;
		ssize_t ret;
		const uint8_t *out;
	} t[] = {
		{ "ipv4 connect", SFY_S5_CONNECT, &ip4, sizeof want_v4, want_v4 },
		{ "ipv6 udp", SFY_S5_UDP_ASSOCIATE, &ip6, sizeof want_v6, want_v6 },
		{ "domain bind", SFY_S5_BIND, &dom, sizeof want_dom, want_dom },
		{ "domain 255", SFY_S5_CONNECT, &n255, SFY_S5_REQ_MAX, NULL },
		{ "domain 256", SFY_S5_CONNECT, &n256, -ENAMETOOLONG, NULL },
		{ "domain empty", SFY_S5_CONNECT, &empty, -EINVAL, NULL },
		{ "bad atyp", SFY_S5_CONNECT, &badtype, -EINVAL, NULL },
		{ "cmd 0", 0, &ip4, -EINVAL, NULL },
		{ "cmd 4", 4, &ip4, -EINVAL, NULL },
		{ "null dst", SFY_S5_CONNECT, NULL, -EINVAL, NULL },
	};

	(void)state;
	memcpy(ip6.ip, want_v6 + 4, 16);
	strcpy(dom.name, "example.org");
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		EQ(sfy_s5_build_request(buf, sizeof buf, t[i].cmd, t[i].dst), t[i].ret, t[i].what);
		if (t[i].ret < 0)
			continue;
		if (t[i].out)
			EQ(memcmp(buf, t[i].out, (size_t)t[i].ret), 0, t[i].what);
		for (size_t cap = 0; cap < (size_t)t[i].ret; cap++)
			EQ(sfy_s5_build_request(buf, cap, t[i].cmd, t[i].dst), -ENOSPC, t[i].what);
	}
	/* 255-byte name on the wire: LEN 255, the name, the port */
	EQ(sfy_s5_build_request(buf, sizeof buf, SFY_S5_CONNECT, &n255), 262, "n255");
	EQ(buf[4], 255, "n255 len");
	EQ(buf[5 + 254], 'a', "n255 last");
	EQ(buf[5 + 255], 0, "n255 port hi");
	EQ(buf[5 + 256], 1, "n255 port lo");
}

/* What a correct parser asks for after len bytes of reply r (whose ATYP
 * and domain length are known), computed independently of socks5.c. */
static size_t want_need(const uint8_t *r, size_t len)
{
	if (len < 4)
		return 4;
	switch (r[3]) {
	case 0: return r[1] ? 10 : 0;   /* a failure's ATYP 0 reads as IPv4 */
	case 1: return 10;
	case 4: return 22;
	default: return len < 5 ? 5 : 7 + (size_t)r[4];
	}
}

static void check_reply(const char *what, const uint8_t *r, size_t n, enum sfy_parse want,
			const struct sfy_s5_reply *wantr)
{
	uint8_t copy[SFY_S5_REPLY_MAX + 16];
	struct sfy_s5_reply out;
	size_t need;

	assert_true(n <= sizeof copy - 16);
	/* trailing bytes (tunnel data) must not change the outcome */
	memcpy(copy, r, n);
	memset(copy + n, 0xee, 16);
	for (size_t len = 0; len <= n + 16; len++) {
		enum sfy_parse p;

		need = 12345;
		memset(&out, 0x5a, sizeof out);
		p = sfy_s5_parse_reply(copy, len, &need, &out);
		if (want == SFY_PARSE_MALFORMED) {
			/* never COMPLETE; MALFORMED once the whole head is there */
			if (p == SFY_PARSE_COMPLETE)
				EQ(p, SFY_PARSE_MALFORMED, what);
			if (len >= 4)
				EQ(p, SFY_PARSE_MALFORMED, what);
			continue;
		}
		if (len < n) {
			EQ(p, SFY_PARSE_NEED, what);
			EQ(need, want_need(r, len), what);
			if (need <= len || need > n)
				EQ(need, -1, what);
			continue;
		}
		EQ(p, SFY_PARSE_COMPLETE, what);
		EQ(need, n, what);
		EQ(out.rep, wantr->rep, what);
		EQ(out.bnd.type, wantr->bnd.type, what);
		EQ(out.bnd.port, wantr->bnd.port, what);
		if (out.bnd.type == SFY_ATYP_DOMAIN)
			assert_string_equal(out.bnd.name, wantr->bnd.name);
		else
			EQ(memcmp(out.bnd.ip, wantr->bnd.ip, out.bnd.type == SFY_ATYP_IPV4 ? 4 : 16),
			   0, what);
	}
}

static void test_reply_every_rep(void **state)
{
	(void)state;
	for (unsigned rep = 0; rep <= 255; rep++) {
		uint8_t r[] = { 5, (uint8_t)rep, 0, 1, 10, 0, 0, 2, 0x04, 0x38 };
		struct sfy_s5_reply w = { .rep = (uint8_t)rep, .bnd = v4(10, 0, 0, 2, 1080) };
		char what[32];

		snprintf(what, sizeof what, "rep %u", rep);
		check_reply(what, r, sizeof r, SFY_PARSE_COMPLETE, &w);
	}
}

static void test_reply_atyps(void **state)
{
	uint8_t d255[7 + 255], d1[] = { 5, 0, 0, 3, 1, 'x', 0, 22 };
	uint8_t d0[] = { 5, 4, 0, 3, 0, 0x01, 0x00 };
	uint8_t ip6[] = { 5, 0, 0, 4, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
			  0xff, 0xfe };
	uint8_t rsv[] = { 5, 0, 0x7f, 1, 1, 2, 3, 4, 0, 0 };
	struct sfy_s5_reply w;

	(void)state;
	memset(&w, 0, sizeof w);
	w.bnd.type = SFY_ATYP_IPV6;
	w.bnd.port = 0xfffe;
	memcpy(w.bnd.ip, ip6 + 4, 16);
	check_reply("ipv6", ip6, sizeof ip6, SFY_PARSE_COMPLETE, &w);

	memset(&w, 0, sizeof w);
	w.bnd = name_of_len(1, 22);
	w.bnd.name[0] = 'x';
	check_reply("domain 1", d1, sizeof d1, SFY_PARSE_COMPLETE, &w);

	d255[0] = 5; d255[1] = 0; d255[2] = 0; d255[3] = 3; d255[4] = 255;
	memset(d255 + 5, 'a', 255);
	d255[260] = 0x12; d255[261] = 0x34;
	memset(&w, 0, sizeof w);
	w.bnd = name_of_len(255, 0x1234);
	check_reply("domain 255", d255, sizeof d255, SFY_PARSE_COMPLETE, &w);

	memset(&w, 0, sizeof w);
	w.rep = 4;
	w.bnd.type = SFY_ATYP_DOMAIN;
	w.bnd.port = 256;
	check_reply("domain 0 tolerated", d0, sizeof d0, SFY_PARSE_COMPLETE, &w);

	memset(&w, 0, sizeof w);
	w.bnd = v4(1, 2, 3, 4, 0);
	check_reply("nonzero rsv tolerated", rsv, sizeof rsv, SFY_PARSE_COMPLETE, &w);

	/* Tor's reply to a RESOLVE / RESOLVE_PTR it cannot answer: REP, then
	 * eight zero bytes (ATYP 0); read as 0.0.0.0:0 so the code counts */
	for (unsigned rep = 1; rep <= 255; rep++) {
		uint8_t tor[] = { 5, (uint8_t)rep, 0, 0, 0, 0, 0, 0, 0, 0 };
		char what[32];
		memset(&w, 0, sizeof w);
		w.rep = (uint8_t)rep;
		w.bnd = v4(0, 0, 0, 0, 0);
		snprintf(what, sizeof what, "atyp 0, rep %u", rep);
		check_reply(what, tor, sizeof tor, SFY_PARSE_COMPLETE, &w);
	}
}

static void test_reply_malformed(void **state)
{
	static const struct {
		const char *what;
		uint8_t r[10];
	} t[] = {
		{ "ver 4", { 4, 0, 0, 1, 1, 2, 3, 4, 0, 80 } },
		{ "ver 0", { 0, 0, 0, 1, 1, 2, 3, 4, 0, 80 } },
		{ "ver 1 (auth reply)", { 1, 0, 0, 1, 1, 2, 3, 4, 0, 80 } },
		{ "http", { 'H', 'T', 'T', 'P', '/', '1', '.', '1', ' ', '2' } },
		{ "atyp 0", { 5, 0, 0, 0, 1, 2, 3, 4, 0, 80 } },  /* only in a failure */
		{ "atyp 2", { 5, 0, 0, 2, 1, 2, 3, 4, 0, 80 } },
		{ "atyp 5", { 5, 0, 0, 5, 1, 2, 3, 4, 0, 80 } },
		{ "atyp 255", { 5, 0, 0, 255, 1, 2, 3, 4, 0, 80 } },
	};
	size_t need = 0;

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		check_reply(t[i].what, t[i].r, sizeof t[i].r, SFY_PARSE_MALFORMED, NULL);
	/* a wrong version is seen from the first byte */
	EQ(sfy_s5_parse_reply(BYTES(4), &need, NULL), SFY_PARSE_MALFORMED, "ver at 1 byte");
	/* out may be NULL */
	EQ(sfy_s5_parse_reply(BYTES(5, 0, 0, 1, 1, 2, 3, 4, 0, 80), &need, NULL),
	   SFY_PARSE_COMPLETE, "null out");
	EQ(need, 10, "null out need");
}

static void test_udp_header(void **state)
{
	struct sfy_addr ip4 = v4(8, 8, 8, 8, 53), ip6 = { .type = SFY_ATYP_IPV6, .port = 5353 };
	struct sfy_addr dom = name_of_len(0, 443), n255 = name_of_len(255, 7);
	struct sfy_addr n256 = name_of_len(256, 7), empty = name_of_len(0, 7);
	static const uint8_t want_v4[] = { 0, 0, 0, 1, 8, 8, 8, 8, 0, 53 };
	const struct {
		const char *what;
		const struct sfy_addr *a;
		uint8_t frag;
		ssize_t ret;
	} t[] = {
		{ "ipv4", &ip4, 0, 10 },
		{ "ipv6", &ip6, 0, 22 },
		{ "domain", &dom, 0, 7 + 9 },
		{ "domain 255 frag 1", &n255, 1, SFY_S5_UDP_HDR_MAX },
		{ "domain 256", &n256, 0, -ENAMETOOLONG },
		{ "domain empty", &empty, 0, -EINVAL },
	};
	uint8_t buf[SFY_S5_UDP_HDR_MAX + 8];

	(void)state;
	memset(ip6.ip, 0x42, 16);
	strcpy(dom.name, "quic.test");
	EQ(sfy_s5_build_udp_header(buf, sizeof buf, 0, &ip4), sizeof want_v4, "v4 bytes");
	EQ(memcmp(buf, want_v4, sizeof want_v4), 0, "v4 bytes");

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct sfy_addr src;
		size_t hl = 0;
		uint8_t frag = 9;
		ssize_t n = sfy_s5_build_udp_header(buf, sizeof buf, t[i].frag, t[i].a);

		EQ(n, t[i].ret, t[i].what);
		if (n < 0)
			continue;
		for (size_t cap = 0; cap < (size_t)n; cap++)
			EQ(sfy_s5_build_udp_header(buf, cap, t[i].frag, t[i].a), -ENOSPC, t[i].what);
		/* round trip, with 5 bytes of payload after the header */
		memcpy(buf + n, "hello", 5);
		EQ(sfy_s5_parse_udp_header(buf, (size_t)n + 5, &hl, &frag, &src),
		   SFY_PARSE_COMPLETE, t[i].what);
		EQ(hl, n, t[i].what);
		EQ(frag, t[i].frag, t[i].what);
		EQ(src.type, t[i].a->type, t[i].what);
		EQ(src.port, t[i].a->port, t[i].what);
		if (src.type == SFY_ATYP_DOMAIN)
			assert_string_equal(src.name, t[i].a->name);
		else
			EQ(memcmp(src.ip, t[i].a->ip, src.type == SFY_ATYP_IPV4 ? 4 : 16), 0,
			   t[i].what);
		/* header with empty payload is fine; any truncation is malformed */
		EQ(sfy_s5_parse_udp_header(buf, (size_t)n, &hl, NULL, NULL),
		   SFY_PARSE_COMPLETE, t[i].what);
		for (size_t len = 0; len < (size_t)n; len++)
			EQ(sfy_s5_parse_udp_header(buf, len, &hl, &frag, &src),
			   SFY_PARSE_MALFORMED, t[i].what);
	}
	EQ(sfy_s5_parse_udp_header(BYTES(0, 0, 0, 2, 1, 2, 3, 4, 0, 1), NULL, NULL, NULL),
	   SFY_PARSE_MALFORMED, "udp atyp 2");
	EQ(sfy_s5_parse_udp_header(BYTES(0, 0, 0, 0, 1, 2, 3, 4, 0, 1), NULL, NULL, NULL),
	   SFY_PARSE_MALFORMED, "udp atyp 0");
	EQ(sfy_s5_parse_udp_header(BYTES(0, 0, 0, 3, 5, 'a', 'b'), NULL, NULL, NULL),
	   SFY_PARSE_MALFORMED, "udp short name");
	EQ(sfy_s5_build_udp_header(buf, sizeof buf, 0, NULL), -EINVAL, "udp null");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting),
		cmocka_unit_test(test_two_byte_replies),
		cmocka_unit_test(test_auth_build),
		cmocka_unit_test(test_request_build),
		cmocka_unit_test(test_reply_every_rep),
		cmocka_unit_test(test_reply_atyps),
		cmocka_unit_test(test_reply_malformed),
		cmocka_unit_test(test_udp_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
