/* libFuzzer target: the HTTP CONNECT reply parser (the whole input, then a
 * bounded set of its prefixes: re-parsing every prefix would make each run
 * quadratic in the input) and the request builder with fuzzed names and
 * credentials, which must never produce a request with an extra line.
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *   -Ilibsocksify tests/fuzz/fuzz_http.c libsocksify/http_connect.c \
 *   libsocksify/addr.c -o build/fuzz_http */
#include <stdint.h>
#include <string.h>

#include "http_connect.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* How many prefixes of a complete head are re-parsed, beyond the short
 * ones and those around the terminator. */
#define SAMPLES 8

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; (s = strstr(s, "\r\n")); s += 2)
		n++;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t need, need2, len;
	enum sfy_parse p;
	int st;

	p = sfy_http_parse_reply(data, size, &need, &st);
	if (p == SFY_PARSE_NEED)
		CHECK(need == size + 1 && size < SFY_HTTP_REPLY_MAX);
	if (p == SFY_PARSE_COMPLETE) {
		CHECK(need <= size && need <= SFY_HTTP_REPLY_MAX && st >= 100 && st <= 599);
		CHECK(need >= 4 && !memcmp(data + need - 4, "\r\n\r\n", 4));
		/* No proper prefix is complete: the short ones, those that
		 * cut the final CRLFCRLF, and a few spread by the input. */
		uint32_t h = 2166136261u;
		for (size_t i = 0; i < need; i++)
			h = (h ^ data[i]) * 16777619u;
		for (int k = 0; k < 16 + 4 + SAMPLES; k++) {
			if (k < 16)
				len = (size_t)k;
			else if (k < 20)
				len = need - 1 - (size_t)(k - 16);
			else
				len = (h = h * 1103515245u + 12345u) % need;
			if (len >= need)
				continue;
			CHECK(sfy_http_parse_reply(data, len, &need2, NULL) == SFY_PARSE_NEED);
			CHECK(need2 == len + 1);
		}
	}

	/* data = "name\0user\0pass": build, then check line structure */
	{
		char tmp[1024], out[SFY_HTTP_REQ_MAX];
		const char *f[3] = { "", "", "" };
		struct sfy_addr dst;
		size_t k = 0;
		ssize_t n;

		if (size >= sizeof tmp)
			return 0;
		memcpy(tmp, data, size);
		tmp[size] = 0;
		for (size_t i = 0; i <= size && k < 3; i++) {
			if (i == 0 || tmp[i - 1] == 0)
				f[k++] = tmp + i;
		}
		if (sfy_addr_set_host(&dst, f[0][0] ? f[0] : "h", 443) < 0)
			return 0;
		n = sfy_http_build_connect(out, sizeof out, &dst, k > 1 ? f[1] : NULL, f[2]);
		if (n >= 0) {
			CHECK((size_t)n < sizeof out && strlen(out) == (size_t)n);
			CHECK(count_lines(out) == (k > 1 ? 4u : 3u));
			CHECK(!memcmp(out + n - 4, "\r\n\r\n", 4));
		}
	}
	return 0;
}
