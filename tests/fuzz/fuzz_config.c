/* libFuzzer target: a YAML buffer loaded as a config file
 * (sfy_config_load_string over the defaults, then sfy_config_finish).
 * Invariants (trap on violation):
 *   - an error fills err with one NUL-terminated message;
 *   - a loaded config stays inside its fixed-size tables, and every proxy
 *     and bypass rule in it is one the parsers accept on their own;
 *   - after finish: at least one proxy (or a default: that needs none),
 *     chain_length <= proxies, dns not AUTO, enums in range;
 *   - the rules it holds on the heap are freed every time (leak checks). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_loaded(const struct sfy_config *c)
{
	char err[SFY_ERR_MAX];

	CHECK(c->nproxies <= SFY_MAX_PROXIES && c->nbypass <= SFY_MAX_BYPASS);
	for (size_t i = 0; i < c->nproxies; i++)
		CHECK(sfy_proxy_validate(&c->proxies[i], err, sizeof err) == 0);
	for (size_t i = 0; i < c->nbypass; i++) {
		const struct sfy_cidr *b = &c->bypass[i];
		CHECK((b->family == AF_INET && b->prefix <= 32)
		      || (b->family == AF_INET6 && b->prefix <= 128));
	}
	CHECK(c->chain <= SFY_CHAIN_ROUND_ROBIN && c->dns <= SFY_DNS_PROXY);
	CHECK(c->udp <= SFY_UDP_DIRECT && c->log_level <= SFY_LOG_DEBUG);
	CHECK(c->pipeline <= SFY_PIPELINE_OFF);
	CHECK(c->fake_prefix <= 32);
	CHECK(memchr(c->log_file, 0, sizeof c->log_file));
	CHECK(c->connect_timeout_ms > 0 && c->handshake_timeout_ms > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sfy_config c;
	char err[SFY_ERR_MAX];

	/* libyaml gets the buffer with its length; the config file reader
	 * does the same, so embedded NULs are part of the input. */
	sfy_config_defaults(&c);
	memset(err, 0x55, sizeof err);
	if (sfy_config_load_string(&c, (const char *)data, size, "fuzz.yaml", err,
				   sizeof err) < 0) {
		CHECK(memchr(err, 0, sizeof err) && err[0]);
		sfy_config_free(&c);
		return 0;
	}
	check_loaded(&c);
	memset(err, 0x55, sizeof err);
	if (sfy_config_finish(&c, err, sizeof err) < 0) {
		CHECK(memchr(err, 0, sizeof err) && err[0]);
		sfy_config_free(&c);
		return 0;
	}
	check_loaded(&c);
	CHECK((c.nproxies >= 1 || c.default_via != SFY_VIA_TOP) && c.chain_length <= c.nproxies &&
	      c.dns != SFY_DNS_AUTO);
	sfy_config_free(&c);
	return 0;
}
