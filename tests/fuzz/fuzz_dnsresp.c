/* libFuzzer target: the DNS responder's answers (dnsresp.h) -- any bytes
 * through sfy_dnsresp_answer, as UDP and as TCP, with a remote-DNS
 * configuration that has rules (a blocked name, a suffix through a named
 * remote chain), a small fake range (so exhaustion is reached) and a hosts
 * file. No rule resolves locally: that path waits on the real resolver.
 * Invariants (trap on violation): nothing past cap; 0 exactly for a
 * message without a header or with QR set; a reply carries the query's ID
 * and QR; a reply to a parsed question carries it byte for byte; a
 * 12-byte buffer is refused, never overrun; no leak. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns_msg.h"
#include "dnsresp.h"
#include "fakedns.h"
#include "state.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/sfy-fuzz-dnsresp-XXXXXX";
	char path[128];
	FILE *f;
	(void)argc, (void)argv;
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/hosts", dir);
	if (!(f = fopen(path, "w")))
		abort();
	fputs("10.1.2.3 host.test alias.test\nfd00::1 host.test six.test\n", f);
	fclose(f);
	sfy_hosts_load(path);
	snprintf(path, sizeof(path), "%s/socksify.yaml", dir);
	if (!(f = fopen(path, "w")))
		abort();
	fputs("proxies: [socks5h://192.0.2.1:1080]\n"
	      "fake_ip_range: 198.18.0.0/22\n"
	      "chains:\n  tor: [socks5h://192.0.2.2:9050]\n"
	      "rules:\n"
	      "  - { match: blocked.test, via: block }\n"
	      "  - { match: \"*.ads.test\", via: block }\n"
	      "  - { match: \"*.onion\", via: tor }\n",
	      f);
	fclose(f);
	setenv("SOCKSIFY_CONFIG", path, 1);
	unsetenv("SOCKSIFY_PROXY");
	unsetenv("SOCKSIFY_RULES");
	unsetenv(SFY_FAKEDNS_ENV);
	setenv("SOCKSIFY_LOG", "error", 1);
	if (!sfy_config_get() || !sfy_dnsresp_enabled(sfy_config_get()))
		abort();
	return 0;
}

static void one(const uint8_t *data, size_t size, bool tcp)
{
	static uint8_t out[SFY_DNS_TCP_MAX + 64];
	size_t cap = tcp ? SFY_DNS_TCP_MAX : 4096;
	memset(out + cap, 0xa5, 64);
	ssize_t n = sfy_dnsresp_answer(data, size, tcp, out, cap);
	for (size_t i = 0; i < 64; i++)
		CHECK(out[cap + i] == 0xa5);
	bool drop = size < SFY_DNS_HEADER || (data[2] & 0x80);
	CHECK(drop == (n == 0));
	if (n <= 0) {
		CHECK(n == 0);  /* the buffer always suffices */
		return;
	}
	CHECK((size_t)n <= cap && n >= SFY_DNS_HEADER);
	CHECK(!memcmp(out, data, 2));
	CHECK(out[2] & 0x80);
	struct sfy_dns_query q;
	if (sfy_dns_parse_query(data, size, &q) != SFY_DNS_DROP && q.qlen) {
		CHECK((size_t)n >= SFY_DNS_HEADER + q.qlen);
		CHECK(!memcmp(out + SFY_DNS_HEADER, q.question, q.qlen));
	}
	if (!tcp && !q.edns)
		CHECK((size_t)n <= SFY_DNS_UDP_MIN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t small[SFY_DNS_HEADER];
	one(data, size, false);
	one(data, size, true);
	/* too small a buffer: an error, nothing written past it */
	ssize_t n = sfy_dnsresp_answer(data, size, false, small, sizeof(small));
	CHECK(n <= 0 || (size_t)n <= sizeof(small));
	/* This process's record of the names it handed out lives in an
	 * anonymous mapping LeakSanitizer does not scan: let it go (the next
	 * input attaches the shared table again), so every other leak shows. */
	sfy_fakedns_detach(false);
	return 0;
}
