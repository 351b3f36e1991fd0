/* HTTP CONNECT codec: requests and reply heads, split at every byte. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "http_connect.h"

#include "testutil.h"

static void test_request(void **state)
{
	struct sfy_addr dom = { .type = SFY_ATYP_DOMAIN, .name = "example.org", .port = 443 };
	struct sfy_addr ip4 = { .type = SFY_ATYP_IPV4, .ip = { 10, 1, 2, 3 }, .port = 0 };
	struct sfy_addr ip6 = { .type = SFY_ATYP_IPV6,
				.ip = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 }, .port = 65535 };
	struct sfy_addr crlf = { .type = SFY_ATYP_DOMAIN, .name = "a\r\nX: y", .port = 1 };
	struct sfy_addr space = { .type = SFY_ATYP_DOMAIN, .name = "a b", .port = 1 };
	struct sfy_addr empty = { .type = SFY_ATYP_DOMAIN, .port = 1 };
	struct sfy_addr n256 = { .type = SFY_ATYP_DOMAIN, .port = 1 };
	char u256[257];
	const struct {
		const char *what;
		const struct sfy_addr *dst;
		const char *user, *pass;
		ssize_t ret;       /* 0: strlen(out) */
		const char *out;
	} t[] = {
		{ "domain", &dom, NULL, NULL, 0,
		  "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n" },
		{ "ipv4 port 0", &ip4, NULL, "ignored", 0,
		  "CONNECT 10.1.2.3:0 HTTP/1.1\r\nHost: 10.1.2.3:0\r\n\r\n" },
		{ "ipv6 brackets", &ip6, NULL, NULL, 0,
		  "CONNECT [2001:db8::1]:65535 HTTP/1.1\r\nHost: [2001:db8::1]:65535\r\n\r\n" },
		{ "auth rfc 7617 example", &dom, "Aladdin", "open sesame", 0,
		  "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n"
		  "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n" },
		{ "auth pad 2", &ip4, "a", "", 0,
		  "CONNECT 10.1.2.3:0 HTTP/1.1\r\nHost: 10.1.2.3:0\r\n"
		  "Proxy-Authorization: Basic YTo=\r\n\r\n" },
		{ "auth null pass", &ip4, "a", NULL, 0,
		  "CONNECT 10.1.2.3:0 HTTP/1.1\r\nHost: 10.1.2.3:0\r\n"
		  "Proxy-Authorization: Basic YTo=\r\n\r\n" },
		{ "auth pad 1", &ip4, "ab", "c", 0,
		  "CONNECT 10.1.2.3:0 HTTP/1.1\r\nHost: 10.1.2.3:0\r\n"
		  "Proxy-Authorization: Basic YWI6Yw==\r\n\r\n" },
		{ "auth pad 0, high bytes", &ip4, "\xff\xfe", "\xfd", 0,
		  "CONNECT 10.1.2.3:0 HTTP/1.1\r\nHost: 10.1.2.3:0\r\n"
		  "Proxy-Authorization: Basic //46/Q==\r\n\r\n" },
		{ "auth empty user", &ip4, "", "pw", 0,
		  "CONNECT 10.1.2.3:0 HTTP/1.1\r\nHost: 10.1.2.3:0\r\n"
		  "Proxy-Authorization: Basic OnB3\r\n\r\n" },
		{ "user with colon", &dom, "a:b", "c", -EINVAL, NULL },
		{ "user 256", &dom, u256, "c", -EINVAL, NULL },
		{ "pass 256", &dom, "a", u256, -EINVAL, NULL },
		{ "crlf in name", &crlf, NULL, NULL, -EINVAL, NULL },
		{ "space in name", &space, NULL, NULL, -EINVAL, NULL },
		{ "empty name", &empty, NULL, NULL, -EINVAL, NULL },
		{ "name 256", &n256, NULL, NULL, -ENAMETOOLONG, NULL },
		{ "null dst", NULL, NULL, NULL, -EINVAL, NULL },
	};
	char buf[SFY_HTTP_REQ_MAX + 8];

	(void)state;
	memset(u256, 'u', 256); u256[256] = 0;
	memset(n256.name, 'n', 256);
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		ssize_t want = t[i].out ? (ssize_t)strlen(t[i].out) : t[i].ret;
		ssize_t n = sfy_http_build_connect(buf, sizeof buf, t[i].dst, t[i].user, t[i].pass);

		EQ(n, want, t[i].what);
		if (n < 0)
			continue;
		assert_string_equal(buf, t[i].out);
		/* room for the NUL is required; anything less is ENOSPC */
		for (size_t cap = 0; cap <= (size_t)n; cap++)
			EQ(sfy_http_build_connect(buf, cap, t[i].dst, t[i].user, t[i].pass),
			   -ENOSPC, t[i].what);
		EQ(sfy_http_build_connect(buf, (size_t)n + 1, t[i].dst, t[i].user, t[i].pass),
		   n, t[i].what);
	}
}

/* The largest request fits SFY_HTTP_REQ_MAX. */
static void test_request_max(void **state)
{
	struct sfy_addr n255 = { .type = SFY_ATYP_DOMAIN, .port = 65535 };
	char u[256], p[256], buf[SFY_HTTP_REQ_MAX];
	ssize_t n;

	(void)state;
	memset(n255.name, 'n', 255);
	memset(u, 'u', 255); u[255] = 0;
	memset(p, 'p', 255); p[255] = 0;
	n = sfy_http_build_connect(buf, sizeof buf, &n255, u, p);
	EQ(n, 1264, "max");
	EQ(strlen(buf), 1264, "max nul");
	assert_true(n < SFY_HTTP_REQ_MAX);
}

/* Feeds r one more byte at a time, with tunnel bytes after the head. */
static void check_reply(const char *what, const char *r, enum sfy_parse want, int status)
{
	size_t n = strlen(r), first_bad = 0;
	uint8_t buf[256];

	assert_true(n + 8 <= sizeof buf);
	memcpy(buf, r, n);
	memcpy(buf + n, "SSH-2.0-", 8);
	for (size_t len = 0; len <= n + 8; len++) {
		size_t need = 0;
		int st = -7;
		enum sfy_parse p = sfy_http_parse_reply(buf, len, &need, &st);

		if (want == SFY_PARSE_MALFORMED) {
			if (p == SFY_PARSE_COMPLETE)
				EQ(p, SFY_PARSE_MALFORMED, what);
			if (p == SFY_PARSE_MALFORMED && !first_bad)
				first_bad = len;
			if (first_bad)   /* once malformed, always malformed */
				EQ(p, SFY_PARSE_MALFORMED, what);
			if (p == SFY_PARSE_NEED)
				EQ(need, len + 1, what);
			continue;
		}
		if (len < n) {
			EQ(p, SFY_PARSE_NEED, what);
			EQ(need, len + 1, what);
			EQ(st, -7, what);
		} else {
			EQ(p, SFY_PARSE_COMPLETE, what);
			EQ(need, n, what);
			EQ(st, status, what);
		}
	}
	if (want == SFY_PARSE_MALFORMED)
		assert_true(first_bad > 0 && first_bad <= n);
}

static void test_reply(void **state)
{
	static const struct {
		const char *what, *r;
		enum sfy_parse want;
		int status;
	} t[] = {
		{ "1.1 200", "HTTP/1.1 200 Connection established\r\n\r\n", SFY_PARSE_COMPLETE, 200 },
		{ "1.0 200 hdr", "HTTP/1.0 200 OK\r\nProxy-agent: x/1\r\n\r\n", SFY_PARSE_COMPLETE, 200 },
		{ "no reason", "HTTP/1.1 200\r\n\r\n", SFY_PARSE_COMPLETE, 200 },
		{ "empty reason", "HTTP/1.1 200 \r\n\r\n", SFY_PARSE_COMPLETE, 200 },
		{ "407", "HTTP/1.1 407 Proxy Authentication Required\r\n"
			 "Proxy-Authenticate: Basic realm=\"p\"\r\nContent-Length: 0\r\n\r\n",
		  SFY_PARSE_COMPLETE, 407 },
		{ "502", "HTTP/1.1 502 Bad Gateway\r\n\r\n", SFY_PARSE_COMPLETE, 502 },
		{ "lone cr lf in header", "HTTP/1.1 403 F\r\nX: a\rb\nc\r\n\r\n", SFY_PARSE_COMPLETE, 403 },
		{ "http/2", "HTTP/2 200 OK\r\n\r\n", SFY_PARSE_MALFORMED, 0 },
		{ "http/1.x", "HTTP/1.x 200 OK\r\n\r\n", SFY_PARSE_MALFORMED, 0 },
		{ "two digits", "HTTP/1.1 20 OK\r\n\r\n", SFY_PARSE_MALFORMED, 0 },
		{ "four digits", "HTTP/1.1 2000 OK\r\n\r\n", SFY_PARSE_MALFORMED, 0 },
		{ "no space", "HTTP/1.1 200OK\r\n\r\n", SFY_PARSE_MALFORMED, 0 },
		{ "two spaces", "HTTP/1.1  200 OK\r\n\r\n", SFY_PARSE_MALFORMED, 0 },
		{ "status 600", "HTTP/1.1 600 X\r\n\r\n", SFY_PARSE_MALFORMED, 0 },
		{ "status 099", "HTTP/1.1 099 X\r\n\r\n", SFY_PARSE_MALFORMED, 0 },
		{ "lowercase", "http/1.1 200 OK\r\n\r\n", SFY_PARSE_MALFORMED, 0 },
		{ "icy", "ICY 200 OK\r\n\r\n", SFY_PARSE_MALFORMED, 0 },
		{ "blank first", "\r\n\r\n", SFY_PARSE_MALFORMED, 0 },
		{ "socks5", "\x05\x01", SFY_PARSE_MALFORMED, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		check_reply(t[i].what, t[i].r, t[i].want, t[i].status);
}

static void test_reply_oversize(void **state)
{
	static uint8_t buf[SFY_HTTP_REPLY_MAX + 2];
	static const char head[] = "HTTP/1.1 200 OK\r\nX: ";
	size_t need = 0;
	int st = 0;

	(void)state;
	/* a head of exactly SFY_HTTP_REPLY_MAX bytes is accepted */
	memset(buf, 'a', sizeof buf);
	memcpy(buf, head, strlen(head));
	memcpy(buf + SFY_HTTP_REPLY_MAX - 4, "\r\n\r\n", 4);
	EQ(sfy_http_parse_reply(buf, SFY_HTTP_REPLY_MAX - 1, &need, &st), SFY_PARSE_NEED, "max-1");
	EQ(need, SFY_HTTP_REPLY_MAX, "max-1 need");
	EQ(sfy_http_parse_reply(buf, SFY_HTTP_REPLY_MAX, &need, &st), SFY_PARSE_COMPLETE, "max");
	EQ(need, SFY_HTTP_REPLY_MAX, "max need");
	EQ(st, 200, "max status");
	/* one byte more is not */
	memset(buf + SFY_HTTP_REPLY_MAX - 4, 'a', 4);
	memcpy(buf + SFY_HTTP_REPLY_MAX - 3, "\r\n\r\n", 4);
	EQ(sfy_http_parse_reply(buf, SFY_HTTP_REPLY_MAX - 1, &need, &st), SFY_PARSE_NEED, "over-1");
	EQ(sfy_http_parse_reply(buf, SFY_HTTP_REPLY_MAX, &need, &st), SFY_PARSE_MALFORMED, "over");
	EQ(sfy_http_parse_reply(buf, SFY_HTTP_REPLY_MAX + 1, &need, &st), SFY_PARSE_MALFORMED,
	   "over+1");
	/* status may be NULL */
	EQ(sfy_http_parse_reply((const uint8_t *)"HTTP/1.1 200 OK\r\n\r\n", 19, &need, NULL),
	   SFY_PARSE_COMPLETE, "null status");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_request_max),
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_reply_oversize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
