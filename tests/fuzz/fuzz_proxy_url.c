/* libFuzzer target: the proxy URL parser and its formatter.
 * Input: the URL text (cut at the first NUL, as a C string would be).
 * Invariants (trap on violation):
 *   - a parse error fills err with one NUL-terminated message;
 *   - a parsed proxy passes sfy_proxy_validate();
 *   - format -> parse gives the same proxy back, without the password
 *     (format never writes it), and the same text when formatted again. */
#include <stdint.h>
#include <string.h>

#include "proxy_url.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* format's worst case: scheme, 255 user bytes as %XX, [host], port */
	char url[4096], out[1024], out2[1024], err[256];
	struct sfy_proxy p, q;

	if (size >= sizeof url)
		return 0;
	memcpy(url, data, size);
	url[size] = 0;

	memset(err, 0x55, sizeof err);
	if (sfy_proxy_url_parse(url, &p, err, sizeof err) < 0) {
		CHECK(memchr(err, 0, sizeof err) && err[0]);
		return 0;
	}
	CHECK(sfy_proxy_validate(&p, err, sizeof err) == 0);
	CHECK(p.port != 0 && sfy_proto_default_port(p.proto) != 0);

	sfy_proxy_format(&p, out, sizeof out);
	CHECK(strlen(out) < sizeof out - 1);    /* never truncated */
	CHECK(sfy_proxy_url_parse(out, &q, err, sizeof err) == 0);
	CHECK(q.proto == p.proto && q.port == p.port && !strcmp(q.host, p.host));
	CHECK(q.has_user == p.has_user && !strcmp(q.user, p.user));
	CHECK(!q.has_pass && !q.pass[0]);
	sfy_proxy_format(&q, out2, sizeof out2);
	CHECK(!strcmp(out, out2));
	return 0;
}
