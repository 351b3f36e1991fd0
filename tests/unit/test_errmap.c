/* errmap: every table entry, the defaults, and the log strings. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "errmap.h"

#include "testutil.h"

static void test_s5(void **state)
{
	static const struct { uint8_t rep; int err; const char *str; } t[] = {
		{ 0, 0, "succeeded" },
		{ 1, ECONNREFUSED, "general SOCKS server failure" },
		{ 2, EACCES, "connection not allowed by ruleset" },
		{ 3, ENETUNREACH, "network unreachable" },
		{ 4, EHOSTUNREACH, "host unreachable" },
		{ 5, ECONNREFUSED, "connection refused" },
		{ 6, ETIMEDOUT, "TTL expired" },
		{ 7, EOPNOTSUPP, "command not supported" },
		{ 8, EAFNOSUPPORT, "address type not supported" },
		{ 9, ECONNREFUSED, "unknown SOCKS5 reply code" },
		{ 90, ECONNREFUSED, "unknown SOCKS5 reply code" },
		/* Tor's ExtendedErrors */
		{ 0xef, ECONNREFUSED, "unknown SOCKS5 reply code" },
		{ 0xf0, EHOSTUNREACH, "Tor: onion service descriptor can not be found" },
		{ 0xf1, EHOSTUNREACH, "Tor: onion service descriptor is invalid" },
		{ 0xf2, ECONNREFUSED, "Tor: onion service introduction failed" },
		{ 0xf3, ECONNREFUSED, "Tor: onion service rendezvous failed" },
		{ 0xf4, EACCES, "Tor: onion service missing client authorization" },
		{ 0xf5, EACCES, "Tor: onion service wrong client authorization" },
		{ 0xf6, EHOSTUNREACH, "Tor: onion service invalid address" },
		{ 0xf7, ETIMEDOUT, "Tor: onion service introduction timed out" },
		{ 0xf8, ECONNREFUSED, "unknown SOCKS5 reply code" },
		{ 255, ECONNREFUSED, "unknown SOCKS5 reply code" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		EQ(sfy_errno_from_s5(t[i].rep), t[i].err, t[i].str);
		assert_string_equal(sfy_s5_rep_str(t[i].rep), t[i].str);
	}
}

static void test_s4(void **state)
{
	static const struct { uint8_t code; int err; const char *str; } t[] = {
		{ 90, 0, "request granted" },
		{ 91, ECONNREFUSED, "request rejected or failed" },
		{ 92, EACCES, "rejected: proxy cannot reach client identd" },
		{ 93, EACCES, "rejected: identd user-id mismatch" },
		{ 0, ECONNREFUSED, "unknown SOCKS4 reply code" },
		{ 5, ECONNREFUSED, "unknown SOCKS4 reply code" },
		{ 94, ECONNREFUSED, "unknown SOCKS4 reply code" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		EQ(sfy_errno_from_s4(t[i].code), t[i].err, t[i].str);
		assert_string_equal(sfy_s4_code_str(t[i].code), t[i].str);
	}
}

static void test_http(void **state)
{
	static const struct { int status; int err; const char *str; } t[] = {
		{ 200, 0, "connection established" },
		{ 204, 0, "connection established" },
		{ 299, 0, "connection established" },
		{ 403, EACCES, "forbidden" },
		{ 407, EACCES, "proxy authentication required" },
		{ 401, EACCES, "unauthorized" },
		{ 502, ECONNREFUSED, "bad gateway" },
		{ 503, ECONNREFUSED, "service unavailable" },
		{ 504, ETIMEDOUT, "gateway timeout" },
		{ 100, ECONNREFUSED, "unexpected HTTP status" },
		{ 301, ECONNREFUSED, "unexpected HTTP status" },
		{ 400, ECONNREFUSED, "unexpected HTTP status" },
		{ 404, ECONNREFUSED, "unexpected HTTP status" },
		{ 500, ECONNREFUSED, "unexpected HTTP status" },
		{ -1, ECONNREFUSED, "unexpected HTTP status" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		EQ(sfy_errno_from_http(t[i].status), t[i].err, t[i].str);
		assert_string_equal(sfy_http_status_str(t[i].status), t[i].str);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_s5),
		cmocka_unit_test(test_s4),
		cmocka_unit_test(test_http),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
