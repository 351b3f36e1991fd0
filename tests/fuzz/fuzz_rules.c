/* libFuzzer target: routing rules through the configuration.
 * The first byte picks the input's reading:
 *   even: the rest is a YAML document (chains:, rules:, default:, ...)
 *         loaded and finished;
 *   odd:  the rest is a SOCKSIFY_RULES list added to a config with the
 *         chains "tor" and "work", then finished.
 * Every path ends in sfy_config_free(): leak detection catches rule
 * storage left behind. Invariants (trap on violation), for a config that
 * loaded and finished:
 *   - every rule is one the parser would make: kind, origin, via naming a
 *     chain that exists (or direct/block), ports 0..65535 or 1<=lo<=hi,
 *     names inside the pool, normalized, NUL-terminated;
 *   - formatting a rule and parsing it back gives the same rule;
 *   - chains are non-empty slices of chain_proxies with a decided dns;
 *   - an error is one NUL-terminated line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_rules.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rules(const struct sfy_config *c)
{
	char t[SFY_RULE_TEXT_MAX + 64], name[SFY_RULE_NAME_MAX + 1], err[SFY_ERR_MAX];

	CHECK(c->nrules <= SFY_MAX_RULES && c->nchains <= SFY_MAX_CHAINS);
	CHECK(c->nchain_proxies <= SFY_MAX_CHAIN_PROXIES);
	for (size_t i = 0; i < c->nchains; i++) {
		const struct sfy_chaindef *d = &c->chains[i];
		CHECK(sfy_chain_name_ok(d->name) && d->n >= 1);
		CHECK((size_t)d->first + d->n <= c->nchain_proxies && d->chain_length <= d->n);
		CHECK(d->dns == SFY_DNS_REMOTE || d->dns == SFY_DNS_LOCAL || d->dns == SFY_DNS_PROXY);
	}
	CHECK(c->default_via == SFY_VIA_TOP || c->default_via == SFY_VIA_DIRECT ||
	      c->default_via == SFY_VIA_BLOCK || (c->default_via >= 0 && (size_t)c->default_via < c->nchains));
	CHECK(c->nproxies || c->default_via != SFY_VIA_TOP);
	for (size_t i = 0; i < c->nrules; i++) {
		const struct sfy_rule *r = &c->rules[i];
		CHECK(r->kind <= SFY_RM_CIDR && r->origin <= SFY_RO_FILE && r->origin != SFY_RO_BYPASS);
		CHECK(r->via == SFY_VIA_DIRECT || r->via == SFY_VIA_BLOCK ||
		      (r->via >= 0 && (size_t)r->via < c->nchains));
		CHECK(r->has_port ? r->port_lo >= 1 && r->port_lo <= r->port_hi
				  : r->port_lo == 0 && r->port_hi == 65535);
		if (r->kind == SFY_RM_NAME || r->kind == SFY_RM_SUFFIX) {
			CHECK((size_t)r->name_off + r->name_len < c->rule_names_len);
			CHECK(c->rule_names[r->name_off + r->name_len] == '\0');
			CHECK(sfy_rule_name_ok(c->rule_names + r->name_off, r->name_len));
		}
		/* Round trip: the formatted rule parses back to itself. */
		sfy_rule_format(c, r, t, sizeof t);
		char *eq = strrchr(t, '=');
		CHECK(eq);
		struct sfy_rule b = *r;
		size_t nlen;
		CHECK(sfy_rule_parse_match(t, (size_t)(eq - t), &b, name, &nlen, err, sizeof err) == 0);
		CHECK(b.kind == r->kind && b.port_lo == r->port_lo && b.port_hi == r->port_hi &&
		      b.has_port == r->has_port);
		if (r->kind == SFY_RM_CIDR)
			CHECK(!memcmp(&b.cidr, &r->cidr, sizeof b.cidr));
		else if (r->kind != SFY_RM_ANY)
			CHECK(nlen == r->name_len && !memcmp(name, c->rule_names + r->name_off, nlen));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sfy_config c;
	static const char chains[] =
		"proxies: [socks5h://127.0.0.1:1]\n"
		"chains:\n  tor: [socks5h://127.0.0.1:9050]\n  work: [socks5://10.0.0.1]\n";
	char err[SFY_ERR_MAX];
	int rc;

	if (size < 1)
		return 0;
	sfy_config_defaults(&c);
	memset(err, 0x55, sizeof err);
	if (!(data[0] & 1)) {
		rc = sfy_config_load_string(&c, (const char *)data + 1, size - 1, "fuzz.yaml", err, sizeof err);
	} else {
		char *list = malloc(size);
		if (!list)
			return 0;
		memcpy(list, data + 1, size - 1);
		list[size - 1] = '\0';
		CHECK(sfy_config_load_string(&c, chains, strlen(chains), "chains.yaml", err, sizeof err) == 0);
		rc = sfy_config_set_rules(&c, list, err, sizeof err);
		free(list);
	}
	if (rc == 0) {
		memset(err, 0x55, sizeof err);
		rc = sfy_config_finish(&c, err, sizeof err);
	}
	if (rc) {
		/* Terminated and not empty. Control bytes a message quotes are
		 * left in: every printer escapes them (the launcher's
		 * messages, log lines), so the user sees \x0a, \x1b ... */
		CHECK(memchr(err, 0, sizeof err) && err[0]);
	} else {
		check_rules(&c);
		CHECK(memchr(c.warnings, 0, sizeof c.warnings));
	}
	sfy_config_free(&c);
	CHECK(!c.rules && !c.rule_names && !c.nrules);
	return 0;
}
