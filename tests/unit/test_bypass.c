/* Bypass CIDR[:PORT] parsing and matching, table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <cmocka.h>

#include "testutil.h"

#include "bypass.h"
#include "sfy.h"

static const struct good {
	const char *rule;
	int family;
	const char *addr;       /* canonical network address */
	uint8_t prefix;
	uint16_t port;
} goods[] = {
	{ "10.0.0.0/8", AF_INET, "10.0.0.0", 8, 0 },
	{ "192.168.1.0/24:22", AF_INET, "192.168.1.0", 24, 22 },
	{ "10.1.2.3", AF_INET, "10.1.2.3", 32, 0 },
	{ "10.1.2.3:8080", AF_INET, "10.1.2.3", 32, 8080 },
	{ "0.0.0.0/0", AF_INET, "0.0.0.0", 0, 0 },
	{ "127.0.0.0/8:65535", AF_INET, "127.0.0.0", 8, 65535 },
	{ "::1/128", AF_INET6, "::1", 128, 0 },
	{ "::1", AF_INET6, "::1", 128, 0 },
	{ "[::1]/128:22", AF_INET6, "::1", 128, 22 },
	{ "[::1]:22", AF_INET6, "::1", 128, 22 },
	{ "[2001:db8::]/32:443", AF_INET6, "2001:db8::", 32, 443 },
	{ "2001:db8::/32", AF_INET6, "2001:db8::", 32, 0 },
	{ "2001:db8::/32:80", AF_INET6, "2001:db8::", 32, 80 },
	{ "fe80::/10", AF_INET6, "fe80::", 10, 0 },
	{ "::/0", AF_INET6, "::", 0, 0 },
	/* v4-mapped rules become IPv4 rules */
	{ "::ffff:10.0.0.0/104", AF_INET, "10.0.0.0", 8, 0 },
	{ "[::ffff:1.2.3.4]:5", AF_INET, "1.2.3.4", 32, 5 },
};

static const struct bad {
	const char *rule, *why;
} bads[] = {
	{ "", "bad address" },
	{ "10.0.0.0/33", "prefix" },
	{ "::/129", "prefix" },
	{ "10.0.0.0/", "prefix" },
	{ "10.0.0.0/-1", "prefix" },
	{ "10.0.0.0/8x", "prefix" },
	{ "10.1.2.3/8", "host bits" },
	{ "192.168.1.1/24:22", "host bits" },
	{ "2001:db8::1/32", "host bits" },
	{ "10.0.0.0/8:0", "port" },
	{ "10.0.0.0/8:65536", "port" },
	{ "10.0.0.0/8:", "port" },
	{ "10.0.0.0/8:x", "port" },
	{ "1.2.3.4:", "port" },
	{ "[::1", "unterminated" },
	{ "[::1]x", "after ']'" },
	{ "[1.2.3.4]", "brackets" },
	{ "example.com", "bad address" },
	{ "10.0.0/8", "bad address" },
	{ "256.0.0.0/8", "bad address" },
	{ "1.2.3.4.5", "bad address" },
	{ "::1:22x", "bad address" },
	{ "0123456789012345678901234567890123456789012345678901234567890123456789", "bad address" },
};

static void test_parse_good(void **state)
{
	char err[256], text[INET6_ADDRSTRLEN];
	(void)state;
	for (size_t i = 0; i < SFY_ARRAY_LEN(goods); i++) {
		struct sfy_cidr c;
		if (sfy_cidr_parse(goods[i].rule, &c, err, sizeof err))
			fail_msg("%s: %s", goods[i].rule, err);
		assert_int_equal(c.family, goods[i].family);
		assert_int_equal(c.prefix, goods[i].prefix);
		assert_int_equal(c.port, goods[i].port);
		assert_non_null(inet_ntop(c.family, c.addr, text, sizeof text));
		assert_string_equal(text, goods[i].addr);
	}
}

static void test_parse_bad(void **state)
{
	char err[256];
	(void)state;
	for (size_t i = 0; i < SFY_ARRAY_LEN(bads); i++) {
		struct sfy_cidr c;
		err[0] = '\0';
		if (sfy_cidr_parse(bads[i].rule, &c, err, sizeof err) != -1)
			fail_msg("%s: accepted", bads[i].rule);
		if (!strstr(err, bads[i].why))
			fail_msg("%s: \"%s\" lacks \"%s\"", bads[i].rule, err, bads[i].why);
	}
}

/* Builds a sockaddr from "1.2.3.4" or "::1" text. */
static const struct sockaddr *sa_of(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	sa_text(ss, ip, port);
	return (const struct sockaddr *)ss;
}

static void test_match(void **state)
{
	static const struct {
		const char *rule, *ip;
		uint16_t port;
		bool match;
	} t[] = {
		{ "10.0.0.0/8", "10.255.1.2", 80, true },
		{ "10.0.0.0/8", "11.0.0.1", 80, false },
		{ "10.0.0.0/8", "::ffff:10.1.1.1", 80, true },          /* v4-mapped */
		{ "10.0.0.0/8", "::ffff:11.1.1.1", 80, false },
		{ "10.0.0.0/8", "::a01:101", 80, false },               /* not mapped */
		{ "192.168.1.0/24:22", "192.168.1.77", 22, true },
		{ "192.168.1.0/24:22", "192.168.1.77", 23, false },
		{ "192.168.1.0/24:22", "::ffff:192.168.1.77", 22, true },
		{ "192.168.1.0/24:22", "192.168.2.77", 22, false },
		{ "172.16.0.0/12", "172.31.255.255", 1, true },
		{ "172.16.0.0/12", "172.32.0.0", 1, false },
		{ "10.1.2.3", "10.1.2.3", 9, true },
		{ "10.1.2.3", "10.1.2.4", 9, false },
		{ "0.0.0.0/0", "8.8.8.8", 53, true },
		{ "0.0.0.0/0", "::1", 53, false },
		{ "::1/128", "::1", 1, true },
		{ "::1/128", "::2", 1, false },
		{ "::1/128", "127.0.0.1", 1, false },
		{ "[::1]/128:22", "::1", 22, true },
		{ "[::1]/128:22", "::1", 2222, false },
		{ "[2001:db8::]/32:443", "2001:db8:ffff::1", 443, true },
		{ "[2001:db8::]/32:443", "2001:db9::1", 443, false },
		{ "fe80::/10", "febf::1", 1, true },
		{ "fe80::/10", "fec0::1", 1, false },
		{ "::ffff:10.0.0.0/104", "10.9.9.9", 1, true },
		{ "::ffff:10.0.0.0/104", "::ffff:10.9.9.9", 1, true },
	};
	char err[256];
	(void)state;
	for (size_t i = 0; i < SFY_ARRAY_LEN(t); i++) {
		struct sfy_cidr c;
		struct sockaddr_storage ss;
		assert_int_equal(sfy_cidr_parse(t[i].rule, &c, err, sizeof err), 0);
		if (sfy_cidr_match(&c, sa_of(&ss, t[i].ip, t[i].port)) != t[i].match)
			fail_msg("%s vs %s port %u: expected %s", t[i].rule, t[i].ip, t[i].port,
				 t[i].match ? "match" : "no match");
	}
}

static void test_match_any(void **state)
{
	static const char *const rules[] = { "127.0.0.0/8", "::1/128", "192.168.1.0/24:22" };
	struct sfy_cidr c[3];
	struct sockaddr_storage ss;
	struct sockaddr_un_like { sa_family_t f; char path[20]; } un = { AF_UNIX, "x" };
	char err[256];
	(void)state;
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(sfy_cidr_parse(rules[i], &c[i], err, sizeof err), 0);
	assert_true(sfy_cidr_match_any(c, 3, sa_of(&ss, "127.0.0.53", 53)));
	assert_true(sfy_cidr_match_any(c, 3, sa_of(&ss, "::1", 80)));
	assert_true(sfy_cidr_match_any(c, 3, sa_of(&ss, "192.168.1.5", 22)));
	assert_false(sfy_cidr_match_any(c, 3, sa_of(&ss, "192.168.1.5", 80)));
	assert_false(sfy_cidr_match_any(c, 3, sa_of(&ss, "1.1.1.1", 80)));
	assert_false(sfy_cidr_match_any(c, 0, sa_of(&ss, "127.0.0.1", 80)));
	assert_false(sfy_cidr_match_any(c, 3, (const struct sockaddr *)&un));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_match_any),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
