/* libFuzzer target: the SOCKS4 reply parser, and the request builder fed
 * with fuzzed user ids and names (lengths must be checked, never
 * truncated). Build: clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *   -D_GNU_SOURCE -Ilibsocksify tests/fuzz/fuzz_socks4.c \
 *   libsocksify/socks4.c libsocksify/addr.c -o build/fuzz_socks4 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "socks4.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sfy_s4_reply r;
	struct sfy_addr dst;
	uint8_t buf[SFY_S4_REQ_MAX];
	char user[600];
	size_t need, cut;
	enum sfy_parse p;
	ssize_t n;

	p = sfy_s4_parse_reply(data, size, &need, &r);
	if (p == SFY_PARSE_NEED)
		CHECK(need == SFY_S4_REPLY_LEN && size < need);
	if (p == SFY_PARSE_COMPLETE)
		CHECK(need == SFY_S4_REPLY_LEN && r.code >= 90 && r.code <= 93);

	/* data = cut byte, then "user\0host": build with every combination */
	if (size < 1)
		return 0;
	cut = data[0] % 4;
	data++, size--;
	if (size >= sizeof user)
		return 0;
	memcpy(user, data, size);
	user[size] = 0;
	{
		const char *host = user + strlen(user) + (strlen(user) < size ? 1 : 0);
		size_t ul = strlen(user), hl = strlen(host);
		int ret = sfy_addr_set_host(&dst, *host ? host : "h", 1);

		if (ret < 0) {
			CHECK(ret == -ENAMETOOLONG && hl > 255);
			return 0;
		}
		n = sfy_s4_build_request(buf, sizeof buf - cut, SFY_S4_CONNECT, &dst, user, 1);
		if (n >= 0) {
			CHECK((size_t)n <= sizeof buf - cut && ul <= 255);
			CHECK(buf[0] == 4 && buf[8 + ul] == 0 && buf[n - 1] == 0);
		} else {
			CHECK(n == -ENOSPC || n == -EINVAL || n == -EAFNOSUPPORT);
		}
	}
	return 0;
}
