/* Proxy URL parsing and formatting, table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proxy_url.h"
#include "sfy.h"

static const struct good {
	const char *url;
	enum sfy_proto proto;
	const char *host;
	uint16_t port;
	const char *user, *pass;        /* NULL = not given */
} goods[] = {
	{ "socks5://127.0.0.1:1080", SFY_PROTO_SOCKS5, "127.0.0.1", 1080, NULL, NULL },
	{ "socks5h://proxy.example", SFY_PROTO_SOCKS5H, "proxy.example", 1080, NULL, NULL },
	{ "socks4://10.0.0.1", SFY_PROTO_SOCKS4, "10.0.0.1", 1080, NULL, NULL },
	{ "socks4a://h:9050", SFY_PROTO_SOCKS4A, "h", 9050, NULL, NULL },
	{ "http://proxy:3128", SFY_PROTO_HTTP, "proxy", 3128, NULL, NULL },
	{ "http://proxy", SFY_PROTO_HTTP, "proxy", 8080, NULL, NULL },
	{ "SOCKS5H://Proxy.Example:1", SFY_PROTO_SOCKS5H, "Proxy.Example", 1, NULL, NULL },
	{ "Socks4A://x:65535", SFY_PROTO_SOCKS4A, "x", 65535, NULL, NULL },
	{ "socks5://[::1]:1080", SFY_PROTO_SOCKS5, "::1", 1080, NULL, NULL },
	{ "socks5://[2001:db8::1]", SFY_PROTO_SOCKS5, "2001:db8::1", 1080, NULL, NULL },
	{ "socks5://[::ffff:1.2.3.4]:99", SFY_PROTO_SOCKS5, "::ffff:1.2.3.4", 99, NULL, NULL },
	{ "socks5://alice:secret@proxy1.example:1080", SFY_PROTO_SOCKS5, "proxy1.example", 1080, "alice", "secret" },
	{ "socks5h://bob@h", SFY_PROTO_SOCKS5H, "h", 1080, "bob", NULL },
	{ "socks4://userid@h:1", SFY_PROTO_SOCKS4, "h", 1, "userid", NULL },
	{ "socks5://a%40b:p%3Aw%2Fd@h", SFY_PROTO_SOCKS5, "h", 1080, "a@b", "p:w/d" },
	{ "socks5://u%20x:%41%62@h", SFY_PROTO_SOCKS5, "h", 1080, "u x", "Ab" },
	{ "socks5://u:@h", SFY_PROTO_SOCKS5, "h", 1080, "u", "" },
	{ "socks5://u:p@ss@h:2", SFY_PROTO_SOCKS5, "h", 2, "u", "p@ss" },
	{ "socks5://u:p:q@h", SFY_PROTO_SOCKS5, "h", 1080, "u", "p:q" },
	{ "http://u:p@[::1]:8888", SFY_PROTO_HTTP, "::1", 8888, "u", "p" },
	{ "socks5://h:1080/", SFY_PROTO_SOCKS5, "h", 1080, NULL, NULL },
	{ "socks5://my_host-1.example.org", SFY_PROTO_SOCKS5, "my_host-1.example.org", 1080, NULL, NULL },
	{ "socks5://h:00080", SFY_PROTO_SOCKS5, "h", 80, NULL, NULL },
};

static const struct bad {
	const char *url;
	const char *why;                /* substring of the error */
} bads[] = {
	{ "127.0.0.1:1080", "missing scheme" },
	{ "://h:1", "missing scheme" },
	{ "socks6://h", "unknown scheme" },
	{ "https://h", "unknown scheme" },
	{ "socks5:/h", "missing scheme" },
	{ "socks5://", "empty host" },
	{ "http://a%3Ab:pw@h", "cannot contain ':'" },
	{ "socks5://:1080", "empty host" },
	{ "socks5://u:p@", "empty host" },
	{ "socks5://[]:1080", "empty host" },
	{ "socks5://h:0", "port" },
	{ "socks5://h:65536", "port" },
	{ "socks5://h:123456", "port" },
	{ "socks5://h:-1", "port" },
	{ "socks5://h:80a", "port" },
	{ "socks5://h:+80", "port" },
	{ "socks5://h:", "empty port" },
	{ "socks5://[::1", "unterminated" },
	{ "socks5://[::1]x", "after ']'" },
	{ "socks5://[nothex]:1", "bad IPv6" },
	{ "socks5://::1:1080", "brackets" },
	{ "socks5://h/path", "path" },
	{ "socks5://h:1/x", "path" },
	{ "socks5://h?q=1", "query" },
	{ "socks5://h#frag", "fragment" },
	{ "socks5://h :1", "spaces" },
	{ " socks5://h", "spaces" },
	{ "socks5://h\t", "spaces" },
	{ "socks5://u%zz:p@h", "percent-escape in user" },
	{ "socks5://u%4:p@h", "percent-escape in user" },
	{ "socks5://u:pw%@h", "percent-escape in password" },
	{ "socks5://u%00:p@h", "NUL" },
	{ "socks5://u:a%00b@h", "NUL" },
	{ "socks4://u:secretpw@h", "no password" },
	{ "socks4a://u:@h", "no password" },
	{ "socks5://@h", "empty user" },
	{ "socks5://:secretpw@h", "empty user" },
	{ "socks5://ho$t:1", "bad host" },
	{ "socks5://h_o!st", "bad host" },
};

static void test_good(void **state)
{
	char err[256];
	(void)state;
	for (size_t i = 0; i < SFY_ARRAY_LEN(goods); i++) {
		const struct good *g = &goods[i];
		struct sfy_proxy p;
		err[0] = '\0';
		if (sfy_proxy_url_parse(g->url, &p, err, sizeof err))
			fail_msg("%s: unexpected error: %s", g->url, err);
		assert_int_equal(p.proto, g->proto);
		assert_string_equal(p.host, g->host);
		assert_int_equal(p.port, g->port);
		assert_int_equal(p.has_user, g->user != NULL);
		assert_int_equal(p.has_pass, g->pass != NULL);
		assert_string_equal(p.user, g->user ? g->user : "");
		assert_string_equal(p.pass, g->pass ? g->pass : "");
		assert_int_equal(sfy_proxy_validate(&p, err, sizeof err), 0);
	}
}

static void test_bad(void **state)
{
	char err[256];
	(void)state;
	for (size_t i = 0; i < SFY_ARRAY_LEN(bads); i++) {
		struct sfy_proxy p;
		err[0] = '\0';
		if (sfy_proxy_url_parse(bads[i].url, &p, err, sizeof err) != -1)
			fail_msg("%s: accepted", bads[i].url);
		if (!strstr(err, bads[i].why))
			fail_msg("%s: error \"%s\" does not mention \"%s\"", bads[i].url, err, bads[i].why);
		if (strchr(err, '\n'))
			fail_msg("%s: multi-line error", bads[i].url);
		if (strstr(err, "secretpw"))
			fail_msg("%s: error shows the password: %s", bads[i].url, err);
	}
}

/* Lengths are counted after decoding: 255 bytes fit, 256 do not. */
static void test_cred_lengths(void **state)
{
	char url[1200], err[256], a255[256], a256[257], enc[800];
	struct sfy_proxy p;
	(void)state;
	memset(a255, 'a', 255); a255[255] = '\0';
	memset(a256, 'a', 256); a256[256] = '\0';
	enc[0] = '\0';
	for (int i = 0; i < 255; i++)
		strcat(enc, "%41");

	snprintf(url, sizeof url, "socks5://%s:%s@h", a255, a255);
	assert_int_equal(sfy_proxy_url_parse(url, &p, err, sizeof err), 0);
	assert_int_equal(strlen(p.user), 255);
	assert_int_equal(strlen(p.pass), 255);

	snprintf(url, sizeof url, "socks5://%s:x@h", enc);
	assert_int_equal(sfy_proxy_url_parse(url, &p, err, sizeof err), 0);
	assert_int_equal(strlen(p.user), 255);
	assert_int_equal(p.user[254], 'A');

	snprintf(url, sizeof url, "socks5://%s@h", a256);
	assert_int_equal(sfy_proxy_url_parse(url, &p, err, sizeof err), -1);
	assert_non_null(strstr(err, "user name longer than 255"));

	snprintf(url, sizeof url, "socks5://u:%s@h", a256);
	assert_int_equal(sfy_proxy_url_parse(url, &p, err, sizeof err), -1);
	assert_non_null(strstr(err, "password longer than 255"));
	assert_null(strstr(err, "aaaa"));

	snprintf(url, sizeof url, "socks5://u:p@%s", a256);
	assert_int_equal(sfy_proxy_url_parse(url, &p, err, sizeof err), -1);
	assert_non_null(strstr(err, "host longer"));
}

static void test_format(void **state)
{
	static const struct {
		const char *url, *out;
	} t[] = {
		{ "socks5h://alice:secret@proxy1.example:1080", "socks5h://alice@proxy1.example:1080" },
		{ "socks5://[::1]", "socks5://[::1]:1080" },
		{ "HTTP://h", "http://h:8080" },
		{ "socks4://id@1.2.3.4:9", "socks4://id@1.2.3.4:9" },
		{ "socks5://a%40b:p@h", "socks5://a%40b@h:1080" },
	};
	char buf[512], err[256];
	(void)state;
	for (size_t i = 0; i < SFY_ARRAY_LEN(t); i++) {
		struct sfy_proxy p, q;
		assert_int_equal(sfy_proxy_url_parse(t[i].url, &p, err, sizeof err), 0);
		sfy_proxy_format(&p, buf, sizeof buf);
		assert_string_equal(buf, t[i].out);
		/* The output parses back to the same hop, minus the password. */
		assert_int_equal(sfy_proxy_url_parse(buf, &q, err, sizeof err), 0);
		assert_string_equal(q.user, p.user);
		assert_string_equal(q.host, p.host);
		assert_int_equal(q.port, p.port);
		assert_false(q.has_pass);
	}
	/* Truncation still terminates. */
	struct sfy_proxy p;
	assert_int_equal(sfy_proxy_url_parse("socks5://longhostname:1", &p, err, sizeof err), 0);
	sfy_proxy_format(&p, buf, 8);
	assert_int_equal(strlen(buf), 7);
}

static void test_protos(void **state)
{
	(void)state;
	assert_int_equal(sfy_proto_from_name("SoCkS5h"), SFY_PROTO_SOCKS5H);
	assert_int_equal(sfy_proto_from_name("socks"), 0);
	assert_string_equal(sfy_proto_name(SFY_PROTO_SOCKS4A), "socks4a");
	assert_int_equal(sfy_proto_default_port(SFY_PROTO_HTTP), 8080);
	assert_int_equal(sfy_proto_default_port(SFY_PROTO_SOCKS4), 1080);
	assert_true(sfy_proto_remote_dns(SFY_PROTO_SOCKS4A));
	assert_true(sfy_proto_remote_dns(SFY_PROTO_SOCKS5H));
	assert_true(sfy_proto_remote_dns(SFY_PROTO_HTTP));
	assert_false(sfy_proto_remote_dns(SFY_PROTO_SOCKS5));
	assert_false(sfy_proto_remote_dns(SFY_PROTO_SOCKS4));
}

static void test_validate(void **state)
{
	static const struct {
		struct sfy_proxy p;
		const char *why;        /* NULL = valid */
	} t[] = {
		{ { .proto = SFY_PROTO_SOCKS5, .host = "2001:db8::1", .port = 1080 }, NULL },
		{ { .proto = SFY_PROTO_SOCKS5, .host = "h", .port = 1, .has_user = true, .user = "u",
		    .has_pass = true, .pass = "p" }, NULL },
		{ { .proto = 0, .host = "h", .port = 1 }, "unknown" },
		{ { .proto = SFY_PROTO_SOCKS5, .host = "", .port = 1 }, "empty host" },
		{ { .proto = SFY_PROTO_SOCKS5, .host = "h", .port = 0 }, "port" },
		{ { .proto = SFY_PROTO_SOCKS5, .host = "1::2::3", .port = 1 }, "bad host" },
		{ { .proto = SFY_PROTO_SOCKS4, .host = "h", .port = 1, .has_user = true, .user = "u",
		    .has_pass = true, .pass = "p" }, "no password" },
		{ { .proto = SFY_PROTO_SOCKS5, .host = "h", .port = 1, .has_pass = true, .pass = "p" },
		  "without a user name" },
		{ { .proto = SFY_PROTO_HTTP, .host = "h", .port = 1, .has_user = true, .user = "a:b",
		    .has_pass = true, .pass = "p" }, "cannot contain ':'" },
		{ { .proto = SFY_PROTO_SOCKS5, .host = "h", .port = 1, .has_user = true, .user = "a:b",
		    .has_pass = true, .pass = "p" }, NULL },
	};
	char err[256];
	(void)state;
	for (size_t i = 0; i < SFY_ARRAY_LEN(t); i++) {
		int rc = sfy_proxy_validate(&t[i].p, err, sizeof err);
		if (!t[i].why) {
			assert_int_equal(rc, 0);
		} else {
			assert_int_equal(rc, -1);
			if (!strstr(err, t[i].why))
				fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, t[i].why);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_cred_lengths),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_protos),
		cmocka_unit_test(test_validate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
