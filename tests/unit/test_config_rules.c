/* Routing rules in the configuration: the MATCH grammar, chains:, rules:,
 * default:, no_proxy:, -r/SOCKSIFY_RULES, the finish checks (every config
 * error of the rules issue), per-chain DNS, warnings, and the sealed memfd
 * carrying the rules -- a forged one rejected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "config.h"
#include "config_rules.h"
#include "sfy.h"
#include "configutil.h"

static int load_finish(struct sfy_config *c, const char *yaml, char *err)
{
	if (load(c, yaml, err))
		return -1;
	return sfy_config_finish(c, err, SFY_ERR_MAX);
}

static const char *rname(const struct sfy_config *c, size_t i)
{
	return c->rule_names + c->rules[i].name_off;
}

/* yaml, then the command-line rules on top (both must parse): what
 * finish() says of them. */
static int with_cli_rules(struct sfy_config *c, const char *yaml, const char *rules, char *err)
{
	if (load(c, yaml, err))
		fail_msg("%s", err);
	assert_int_equal(sfy_config_set_rules(c, rules, err, SFY_ERR_MAX), 0);
	return sfy_config_finish(c, err, SFY_ERR_MAX);
}

/* --- the MATCH grammar ---------------------------------------------- */

static void test_match_parse(void **state)
{
	static const struct {
		const char *s;
		int kind;               /* -1: error */
		const char *name;       /* NAME/SUFFIX; CIDR: the network as text; error: reason */
		int prefix;
		int lo, hi;             /* 0, 65535 without a port */
	} t[] = {
		{ "*", SFY_RM_ANY, "", 0, 0, 65535 },
		{ "*:25", SFY_RM_ANY, "", 0, 25, 25 },
		{ "*:1-1024", SFY_RM_ANY, "", 0, 1, 1024 },
		{ "*:65535", SFY_RM_ANY, "", 0, 65535, 65535 },
		{ "example.com", SFY_RM_NAME, "example.com", 0, 0, 65535 },
		{ "Example.COM.", SFY_RM_NAME, "example.com", 0, 0, 65535 },
		{ "ads.example.com:443", SFY_RM_NAME, "ads.example.com", 0, 443, 443 },
		{ "*.onion", SFY_RM_SUFFIX, "onion", 0, 0, 65535 },
		{ "*.Corp.Example.:8000-8080", SFY_RM_SUFFIX, "corp.example", 0, 8000, 8080 },
		{ "localhost", SFY_RM_NAME, "localhost", 0, 0, 65535 },
		{ "_srv.x-y.example", SFY_RM_NAME, "_srv.x-y.example", 0, 0, 65535 },
		{ "10.0.0.0/8", SFY_RM_CIDR, "10.0.0.0", 8, 0, 65535 },
		{ "10.0.0.0/8:22", SFY_RM_CIDR, "10.0.0.0", 8, 22, 22 },
		{ "10.1.2.3", SFY_RM_CIDR, "10.1.2.3", 32, 0, 65535 },
		{ "10.1.2.3:80-90", SFY_RM_CIDR, "10.1.2.3", 32, 80, 90 },
		{ "0.0.0.0/0", SFY_RM_CIDR, "0.0.0.0", 0, 0, 65535 },
		{ "[fd00::1]:443", SFY_RM_CIDR, "fd00::1", 128, 443, 443 },
		{ "[fd00::]/8:22", SFY_RM_CIDR, "fd00::", 8, 22, 22 },
		{ "[fd00::]/8", SFY_RM_CIDR, "fd00::", 8, 0, 65535 },
		{ "[::1]", SFY_RM_CIDR, "::1", 128, 0, 65535 },
		{ "::1/128", SFY_RM_CIDR, "::1", 128, 0, 65535 },
		{ "fd00::/8", SFY_RM_CIDR, "fd00::", 8, 0, 65535 },
		{ "2001:db8::1", SFY_RM_CIDR, "2001:db8::1", 128, 0, 65535 },
		/* v4-mapped is IPv4, as in bypass: one rule for both families. */
		{ "[::ffff:10.0.0.0]/104:5", SFY_RM_CIDR, "10.0.0.0", 8, 5, 5 },
		{ "", -1, "empty", 0, 0, 0 },
		{ "*:0", -1, "port 0", 0, 0, 0 },
		{ "*:65536", -1, "bad port", 0, 0, 0 },
		{ "*:10-5", -1, "LO <= HI", 0, 0, 0 },
		{ "*:0-5", -1, "port 0", 0, 0, 0 },
		{ "*:", -1, "bad port", 0, 0, 0 },
		{ "*:8-", -1, "bad port", 0, 0, 0 },
		{ "*:-8", -1, "bad port", 0, 0, 0 },
		{ "*:+8", -1, "bad port", 0, 0, 0 },
		{ "x.com:80:90", -1, "", 0, 0, 0 },
		{ "*/8", -1, "prefix", 0, 0, 0 },
		{ "*example.com", -1, "'*' only", 0, 0, 0 },
		{ "a.*.com", -1, "'*' only", 0, 0, 0 },
		{ "*.*.com", -1, "'*' only", 0, 0, 0 },
		{ "**", -1, "'*' only", 0, 0, 0 },
		{ "*.", -1, "bad host name", 0, 0, 0 },
		{ "x..com", -1, "bad host name", 0, 0, 0 },
		{ ".x.com", -1, "bad host name", 0, 0, 0 },
		{ "x.com..", -1, "bad host name", 0, 0, 0 },
		{ "bad_host!.com", -1, "bad host name", 0, 0, 0 },
		{ "a b", -1, "blank", 0, 0, 0 },
		{ "10.1.2", -1, "bad address", 0, 0, 0 },
		{ "1.2.3.4.5", -1, "bad address", 0, 0, 0 },
		{ "10.1.2.3/8", -1, "host bits", 0, 0, 0 },
		{ "10.0.0.0/33", -1, "prefix", 0, 0, 0 },
		{ "example.com/8", -1, "bad address", 0, 0, 0 },
		{ "fd00::/8:22", -1, "needs brackets", 0, 0, 0 },
		{ "[10.0.0.1]:80", -1, "brackets are for IPv6", 0, 0, 0 },
		{ "[fd00::1", -1, "unterminated", 0, 0, 0 },
		{ "[fd00::1]x", -1, "unexpected text", 0, 0, 0 },
		{ "[fd00::1]/129", -1, "prefix", 0, 0, 0 },
		{ "fe80::1%eth0", -1, "bad address", 0, 0, 0 },
	};
	struct sfy_rule r;
	char name[SFY_RULE_NAME_MAX + 1], err[SFY_ERR_MAX], a[64];
	size_t nlen;

	(void)state;
	for (size_t i = 0; i < SFY_ARRAY_LEN(t); i++) {
		memset(&r, 0x5a, sizeof r);
		err[0] = '\0';
		int rc = sfy_rule_parse_match(t[i].s, strlen(t[i].s), &r, name, &nlen, err, sizeof err);
		if (t[i].kind < 0) {
			if (rc != -1 || !strstr(err, t[i].name))
				fail_msg("\"%s\": got %d \"%s\", want an error with \"%s\"", t[i].s, rc,
					 err, t[i].name);
			continue;
		}
		if (rc)
			fail_msg("\"%s\": %s", t[i].s, err);
		if (r.kind != t[i].kind || r.port_lo != t[i].lo || r.port_hi != t[i].hi ||
		    r.has_port != !(t[i].lo == 0 && t[i].hi == 65535))
			fail_msg("\"%s\": kind %d ports %u-%u has_port %d", t[i].s, r.kind, r.port_lo,
				 r.port_hi, r.has_port);
		if (r.kind == SFY_RM_NAME || r.kind == SFY_RM_SUFFIX) {
			assert_string_equal(name, t[i].name);
			assert_int_equal(nlen, strlen(t[i].name));
		} else if (r.kind == SFY_RM_CIDR) {
			inet_ntop(r.cidr.family, r.cidr.addr, a, sizeof a);
			if (strcmp(a, t[i].name) || r.cidr.prefix != t[i].prefix || r.cidr.port)
				fail_msg("\"%s\": %s/%u", t[i].s, a, r.cidr.prefix);
		}
	}
	/* Length limits: a 253-byte name is one, 254 is not; 64-byte labels
	 * are not labels. */
	char big[400];
	memset(big, 'a', sizeof big);
	for (int k = 63; k < 253; k += 64)
		big[k] = '.';
	assert_int_equal(sfy_rule_parse_match(big, 253, &r, name, &nlen, err, sizeof err), 0);
	assert_int_equal(nlen, 253);
	assert_int_equal(sfy_rule_parse_match(big, 254, &r, name, &nlen, err, sizeof err), -1);
	memset(big, 'a', 64);
	assert_int_equal(sfy_rule_parse_match(big, 64, &r, name, &nlen, err, sizeof err), -1);
	assert_int_equal(sfy_rule_parse_match(big, 63, &r, name, &nlen, err, sizeof err), 0);
	assert_int_equal(sfy_rule_parse_match(big, sizeof big, &r, name, &nlen, err, sizeof err), -1);
	/* Not NUL-terminated: only len bytes count. */
	assert_int_equal(sfy_rule_parse_match("a.com=tor", 5, &r, name, &nlen, err, sizeof err), 0);
	assert_string_equal(name, "a.com");
	assert_int_equal(sfy_rule_parse_match("a\0b", 3, &r, name, &nlen, err, sizeof err), -1);

	assert_true(sfy_chain_name_ok("tor"));
	assert_true(sfy_chain_name_ok("Work_2-b"));
	assert_true(sfy_chain_name_ok("abcdefghijklmnopqrstuvwxyz01234"));
	assert_false(sfy_chain_name_ok("abcdefghijklmnopqrstuvwxyz012345"));
	assert_false(sfy_chain_name_ok(""));
	assert_false(sfy_chain_name_ok("direct"));
	assert_false(sfy_chain_name_ok("BLOCK"));
	assert_false(sfy_chain_name_ok("a.b"));
	assert_true(sfy_rule_name_special("onion", 5));
	assert_true(sfy_rule_name_special("x.y.i2p", 7));
	assert_false(sfy_rule_name_special("xonion", 6));
	assert_false(sfy_rule_name_special("exit.com", 8));
}

/* --- YAML ----------------------------------------------------------- */

static void test_rules_yaml(void **state)
{
	static const char yaml[] =
		"proxies: [socks5h://127.0.0.1:1080]\n"
		"rules:                       # first match wins\n"
		"  - { match: \"*.onion\",            via: tor }\n"
		"  - { match: \"*.corp.example\",     via: work }\n"
		"  - { match: \"10.0.0.0/8\",         via: direct }\n"
		"  - { match: \"[fd00::]/8\",         via: direct }\n"
		"  - { match: \"*:25\",               via: block }\n"
		"  - match: ads.example.com:443\n"
		"    via: Block\n"
		"chains:\n"
		"  tor:  [socks5h://127.0.0.1:9050]\n"
		"  work: { chain: dynamic, proxies: [socks5h://p1.corp:1080, http://p2.corp:3128] }\n"
		"  rr:\n"
		"    chain: round_robin\n"
		"    chain_length: 2\n"
		"    dns: local\n"
		"    proxies:\n"
		"      - socks5://a\n"
		"      - type: socks4\n"
		"        host: 10.0.0.9\n"
		"default: tor\n"
		"no_proxy: env\n";
	struct sfy_config *c = *state;
	char err[SFY_ERR_MAX];

	if (load(c, yaml, err))
		fail_msg("%s", err);
	/* Chains, in file order, with their slices of chain_proxies. */
	assert_int_equal(c->nchains, 3);
	assert_string_equal(c->chains[0].name, "tor");
	assert_int_equal(c->chains[0].first, 0);
	assert_int_equal(c->chains[0].n, 1);
	assert_int_equal(c->chains[0].line, 11);
	assert_string_equal(c->chains[1].name, "work");
	assert_int_equal(c->chains[1].chain, SFY_CHAIN_DYNAMIC);
	assert_int_equal(c->chains[1].first, 1);
	assert_int_equal(c->chains[1].n, 2);
	assert_string_equal(c->chain_proxies[2].host, "p2.corp");
	assert_int_equal(c->chain_proxies[2].proto, SFY_PROTO_HTTP);
	assert_int_equal(c->chains[2].chain, SFY_CHAIN_ROUND_ROBIN);
	assert_int_equal(c->chains[2].chain_length, 2);
	assert_int_equal(c->chains[2].dns, SFY_DNS_LOCAL);
	assert_int_equal(c->chains[2].first, 3);
	assert_int_equal(c->chain_proxies[4].proto, SFY_PROTO_SOCKS4);
	assert_int_equal(c->chain_proxy_line[4], 19);
	assert_int_equal(c->nchain_proxies, 5);
	/* Rules name chains defined further down: resolved after the walk. */
	assert_int_equal(c->nrules, 6);
	assert_int_equal(c->rules[0].kind, SFY_RM_SUFFIX);
	assert_string_equal(rname(c, 0), "onion");
	assert_int_equal(c->rules[0].via, 0);
	assert_int_equal(c->rules[0].origin, SFY_RO_FILE);
	assert_int_equal(c->rules[0].line, 3);
	assert_int_equal(c->rules[1].via, 1);
	assert_int_equal(c->rules[2].via, SFY_VIA_DIRECT);
	assert_int_equal(c->rules[2].kind, SFY_RM_CIDR);
	assert_int_equal(c->rules[3].cidr.family, AF_INET6);
	assert_int_equal(c->rules[4].kind, SFY_RM_ANY);
	assert_int_equal(c->rules[4].port_lo, 25);
	assert_int_equal(c->rules[4].via, SFY_VIA_BLOCK);
	assert_int_equal(c->rules[5].kind, SFY_RM_NAME);
	assert_int_equal(c->rules[5].line, 8);
	assert_string_equal(rname(c, 5), "ads.example.com");
	assert_int_equal(c->default_via, 0);
	assert_int_equal(c->default_line, 21);
	assert_true(c->no_proxy_env);
	unsetenv("NO_PROXY");
	unsetenv("no_proxy");
	if (sfy_config_finish(c, err, sizeof err))
		fail_msg("%s", err);
	assert_string_equal(c->warnings, "");

	/* The example, without top-level proxies: default: decides. */
	static const char *const no_top[] = {
		"chains:\n  tor: [socks5h://127.0.0.1:9050]\ndefault: tor\n",
		"default: direct\n",
		"default: block\nrules:\n  - {match: 10.0.0.0/8, via: direct}\n",
	};
	for (size_t i = 0; i < SFY_ARRAY_LEN(no_top); i++) {
		if (load_finish(c, no_top[i], err))
			fail_msg("%zu: %s", i, err);
		assert_int_equal(c->nproxies, 0);
		assert_int_equal(c->chain_length, 0);
	}
	assert_int_equal(c->default_via, SFY_VIA_BLOCK);
	assert_int_equal(c->dns, SFY_DNS_LOCAL);
	/* Without rules, chains or default: exactly as before. */
	if (load_finish(c, "proxies: [socks5://a]\nrules: []\n", err))
		fail_msg("%s", err);
	assert_int_equal(c->nrules, 0);
	assert_int_equal(c->default_via, SFY_VIA_TOP);
	assert_int_equal(c->default_line, 0);
}

static const struct bad {
	const char *yaml;
	const char *where;      /* prefix of the message */
	const char *why;        /* substring of the reason */
} bads[] = {
	/* While loading. */
	{ "proxies: [socks5://h]\nrules:\n  - {match: x.com, via: nowhere}\n",
	  "t.yaml:3: rules[1].via:", "unknown chain \"nowhere\" (direct or block)" },
	{ "chains:\n  tor: [socks5h://t]\nproxies: [socks5://h]\nrules:\n  - {match: x.com, via: tor}\n"
	  "  - {match: y.com, via: Tor}\n",
	  "t.yaml:6: rules[2].via:", "unknown chain \"Tor\" (tor, direct or block)" },
	{ "proxies: [socks5://h]\nrules:\n  - {match: \"a.*.com\", via: direct}\n",
	  "t.yaml:3: rules[1].match:", "'*' only" },
	{ "proxies: [socks5://h]\nrules:\n  - {match: \"*:0\", via: block}\n",
	  "t.yaml:3: rules[1].match:", "port 0" },
	{ "proxies: [socks5://h]\nrules:\n  - {match: \"x.com:9-8\", via: block}\n",
	  "t.yaml:3: rules[1].match:", "LO <= HI" },
	{ "proxies: [socks5://h]\nrules:\n  - {match: \"10.1.0.0/8\", via: block}\n",
	  "t.yaml:3: rules[1].match:", "host bits" },
	{ "proxies: [socks5://h]\nrules:\n  - {via: block}\n", "t.yaml:3: rules[1]:", "missing match" },
	{ "proxies: [socks5://h]\nrules:\n  - {match: x.com}\n", "t.yaml:3: rules[1]:", "missing via" },
	{ "proxies: [socks5://h]\nrules:\n  - {match: x.com, via: block, port: 3}\n",
	  "t.yaml:3: rules[1].port:", "unknown key" },
	{ "proxies: [socks5://h]\nrules:\n  - x.com=block\n", "t.yaml:3: rules[1]:", "expected a mapping" },
	{ "proxies: [socks5://h]\nrules: {match: x.com, via: block}\n", "t.yaml:2: rules:", "expected a list" },
	{ "proxies: [socks5://h]\nrules:\n  - {match: [x.com], via: block}\n",
	  "t.yaml:3: rules[1].match:", "expected a value" },
	{ "proxies: [socks5://h]\ndefault: nowhere\n", "t.yaml:2: default:", "unknown chain" },
	{ "proxies: [socks5://h]\ndefault: [tor]\n", "t.yaml:2: default:", "expected a value" },
	{ "proxies: [socks5://h]\nno_proxy: yes\n", "t.yaml:2: no_proxy:", "bad value" },
	{ "proxies: [socks5://h]\nchains: [a]\n", "t.yaml:2: chains:", "expected a mapping" },
	{ "proxies: [socks5://h]\nchains:\n  direct: [socks5://a]\n", "t.yaml:3: chains.direct:",
	  "bad chain name" },
	{ "proxies: [socks5://h]\nchains:\n  a.b: [socks5://a]\n", "t.yaml:3: chains.a.b:", "bad chain name" },
	{ "proxies: [socks5://h]\nchains:\n  abcdefghijklmnopqrstuvwxyz0123456: [socks5://a]\n",
	  "t.yaml:3: chains.abcdefghijklmnopqrstuvwxyz0123456:", "bad chain name" },
	{ "proxies: [socks5://h]\nchains:\n  a: [socks5://a]\n  a: [socks5://b]\n", "t.yaml:4: chains.a:",
	  "duplicate chain name (first on line 3)" },
	{ "proxies: [socks5://h]\nchains:\n  a: []\n", "t.yaml:3: chains.a:", "empty chain" },
	{ "proxies: [socks5://h]\nchains:\n  a:\n", "t.yaml:3: chains.a:", "expected a list of proxies" },
	{ "proxies: [socks5://h]\nchains:\n  a: {chain: dynamic}\n", "t.yaml:3: chains.a:", "missing proxies" },
	{ "proxies: [socks5://h]\nchains:\n  a: {proxies: [socks5://a], colour: red}\n",
	  "t.yaml:3: chains.a.colour:", "unknown key" },
	{ "proxies: [socks5://h]\nchains:\n  work:\n    proxies:\n      - socks5://a\n      - socks9://b\n",
	  "t.yaml:6: chains.work.proxies[2]:", "unknown scheme" },
	{ "proxies: [socks5://h]\nchains:\n  tor: [socks5h://t, \"socks5://x:0\"]\n", "t.yaml:3: chains.tor[2]:",
	  "port" },
	{ "proxies: [socks5://h]\nchains:\n  a:\n    proxies: [socks5://a]\n    chain: random\n"
	  "    chain_length: 2\n", "t.yaml:6: chains.a.chain_length:", "more than the 1 proxies" },
	{ "proxies: [socks5://h]\nchains:\n  a: {proxies: [socks5://a], dns: maybe}\n", "t.yaml:3: chains.a.dns:",
	  "bad value" },
	{ "proxies: [socks5://h]\nchains:\n  a: {proxies: [socks5://a, http://b], dns: proxy}\n",
	  "t.yaml:3: chains.a:", "dns: proxy needs a socks5 last hop (it asks it with RESOLVE), not http://b" },
	{ "proxies: [socks5://h]\ndns: proxy\nchains:\n  a:\n    - socks5://a\n    - socks4a://b\n",
	  "t.yaml:6: chains.a:", "dns: proxy needs a socks5 last hop" },
	{ "proxies: [socks5://h]\nchains:\n  a: {proxies: [socks5://a], chain: zigzag}\n",
	  "t.yaml:3: chains.a.chain:", "bad value" },
	{ "proxies: [socks5://h]\nchains:\n  c1: [socks5://a]\n  c2: [socks5://a]\n  c3: [socks5://a]\n"
	  "  c4: [socks5://a]\n  c5: [socks5://a]\n  c6: [socks5://a]\n  c7: [socks5://a]\n"
	  "  c8: [socks5://a]\n  c9: [socks5://a]\n  c10: [socks5://a]\n  c11: [socks5://a]\n"
	  "  c12: [socks5://a]\n  c13: [socks5://a]\n  c14: [socks5://a]\n  c15: [socks5://a]\n"
	  "  c16: [socks5://a]\n  c17: [socks5://a]\n", "t.yaml:19: chains.c17:", "more than 16 chains" },
	/* Found by finish(). */
	{ "rules:\n  - {match: x.com, via: direct}\n", "no proxies configured", "default:" },
	{ "proxies: [socks5://h]\nrules:\n  - {match: \"*\", via: direct}\n  - {match: x.com, via: block}\n",
	  "t.yaml:4: rules[2].match:", "never matches: rule at line 3 matches everything first" },
	{ "proxies: [socks5://h]\nrules:\n  - {match: \"*\", via: block}\n  - {match: \"*:53\", via: direct}\n",
	  "t.yaml:4: rules[2].match:", "never matches" },
	{ "proxies: [socks5h://h]\nrules:\n  - {match: \"*\", via: direct}\n  - {match: \"*:80\", via: block}\n"
	  "  - {match: \"x.com:80\", via: block}\n",
	  "t.yaml:5: rules[3].match:", "never matches: rule at line 3" },
	{ "proxies: [socks5://h]\nrules:\n  - {match: \"*.onion\", via: direct}\n",
	  "t.yaml:3: rules[1].via:", ".onion, .exit and .i2p names cannot go direct" },
	{ "proxies: [socks5://h]\nrules:\n  - {match: \"a.b.i2p:80\", via: direct}\n",
	  "t.yaml:3: rules[1].via:", "cannot go direct" },
	{ "proxies: [socks5://h]\nrules:\n  - {match: \"exit\", via: direct}\n",
	  "t.yaml:3: rules[1].via:", "cannot go direct" },
	{ "proxies: [socks5h://h]\nrules:\n  - {match: x.com, via: block}\n  - {match: \"224.1.0.0/16\", via: direct}\n",
	  "t.yaml:4: rules[2].match:", "overlaps fake_ip_range 224.0.0.0/8" },
	{ "proxies: [socks5h://h]\nrules:\n  - {match: \"0.0.0.0/0:80\", via: direct}\n",
	  "t.yaml:3: rules[1].match:", "overlaps fake_ip_range" },
	{ "proxies: [socks5://h]\nchains:\n  tor: [socks5h://t]\nrules:\n  - {match: \"224.0.0.0/4\", via: direct}\n",
	  "t.yaml:5: rules[1].match:", "overlaps fake_ip_range" },
	{ "default: direct\nchains:\n  tor: [socks5h://t]\nfake_ip_range: 10.64.0.0/10\n"
	  "rules:\n  - {match: \"10.0.0.0/8\", via: direct}\n", "t.yaml:6: rules[1].match:", "overlaps" },
	{ "proxies: [socks5://h]\nchains:\n  t: [socks4://a, socks5h://b]\n",
	  "t.yaml:3: chains.t[1]:", "socks4 cannot pass the name of proxy 2 (b)" },
	{ "proxies: [socks5://h]\ndns: remote\nchains:\n  t:\n    chain: dynamic\n    proxies:\n"
	  "      - socks4://a\n      - socks5://b\n", "t.yaml:7: chains.t[1]:", "socks4 cannot pass" },
};

static void test_rules_bad(void **state)
{
	struct sfy_config *c = *state;
	char err[SFY_ERR_MAX];

	for (size_t i = 0; i < SFY_ARRAY_LEN(bads); i++) {
		if (load_finish(c, bads[i].yaml, err) != -1)
			fail_msg("case %zu accepted:\n%s", i, bads[i].yaml);
		if (strncmp(err, bads[i].where, strlen(bads[i].where)) || !strstr(err, bads[i].why))
			fail_msg("case %zu: got \"%s\", want \"%s ...%s...\"", i, err, bads[i].where, bads[i].why);
		if (strchr(err, '\n'))
			fail_msg("case %zu: multi-line error", i);
	}
	/* What those checks must let through. */
	static const char *const good[] = {
		/* A direct "*" lets .onion names and (remote DNS) port 53 past. */
		"proxies: [socks5h://h]\nchains:\n  tor: [socks5h://t]\nrules:\n  - {match: \"*\", via: direct}\n"
		"  - {match: \"*.onion\", via: tor}\n  - {match: \"*:53\", via: tor}\n  - {match: \"*\", via: tor}\n",
		"proxies: [socks5h://h]\nrules:\n  - {match: \"*:80\", via: block}\n  - {match: \"x.com\", via: block}\n",
		/* IPv6 rules may cover the fake twin: only IPv4 fake addresses
		 * are ever matched by address. */
		"proxies: [socks5h://h]\nrules:\n  - {match: \"[fd00::]/8\", via: direct}\n",
		"proxies: [socks5h://h]\nrules:\n  - {match: \"224.0.0.0/8\", via: block}\n",
		"proxies: [socks5://h]\nrules:\n  - {match: \"224.0.0.0/8\", via: direct}\n",
		"proxies: [socks5://h]\nrules:\n  - {match: \"*.onion\", via: block}\ndefault: direct\n",
		"proxies: [socks5://h]\nchains:\n  t: {dns: local, proxies: [socks4://a, socks5h://b]}\n",
	};
	for (size_t i = 0; i < SFY_ARRAY_LEN(good); i++)
		if (load_finish(c, good[i], err))
			fail_msg("good %zu: %s", i, err);
	/* Bounds: SFY_MAX_CHAIN_PROXIES hops in all chains together. */
	char *y = malloc(64 * 1024);
	assert_non_null(y);
	strcpy(y, "proxies: [socks5://h]\nchains:\n  a: [");
	for (int i = 0; i < SFY_MAX_CHAIN_PROXIES; i++)
		strcat(y, i ? ", socks5://a" : "socks5://a");
	strcat(y, "]\n");
	assert_int_equal(load_finish(c, y, err), 0);
	strcat(y, "  b: [socks5://b]\n");
	assert_int_equal(load_finish(c, y, err), -1);
	assert_non_null(strstr(err, "t.yaml:4: chains.b[1]: more than 32 proxies in all chains together"));
	free(y);
}

/* --- -r / SOCKSIFY_RULES -------------------------------------------- */

static void test_rules_text(void **state)
{
	struct sfy_config *c = *state;
	char err[SFY_ERR_MAX], t[SFY_RULE_TEXT_MAX + 1];

	if (load(c, "proxies: [socks5h://h]\nchains:\n  tor: [socks5h://t]\n"
		 "rules:\n  - {match: \"10.0.0.0/8\", via: direct}\n", err))
		fail_msg("%s", err);
	assert_int_equal(sfy_config_set_rules(c, " *.onion=tor,\n[fd00::1]:443=block\tX.Example.=DIRECT ,, ",
					      err, sizeof err), 0);
	assert_int_equal(c->nrules, 4);
	assert_int_equal(c->rules[1].origin, SFY_RO_CLI);
	assert_int_equal(c->rules[1].line, 1);
	assert_int_equal(c->rules[1].via, 0);
	assert_int_equal(c->rules[2].line, 2);
	assert_int_equal(c->rules[2].via, SFY_VIA_BLOCK);
	assert_int_equal(c->rules[3].line, 3);
	assert_int_equal(c->rules[3].via, SFY_VIA_DIRECT);
	assert_string_equal(rname(c, 3), "x.example");
	sfy_rule_format(c, &c->rules[1], t, sizeof t);
	assert_string_equal(t, "*.onion=tor");
	sfy_rule_format(c, &c->rules[2], t, sizeof t);
	assert_string_equal(t, "[fd00::1]/128:443=block");
	sfy_rule_format(c, &c->rules[0], t, sizeof t);
	assert_string_equal(t, "10.0.0.0/8=direct");
	if (sfy_config_finish(c, err, sizeof err))
		fail_msg("%s", err);

	static const struct {
		const char *list, *want;
	} bad[] = {
		{ "x.com=tor y.com", "SOCKSIFY_RULES entry 2 (y.com): expected MATCH=VIA" },
		{ "x.com=nope", "SOCKSIFY_RULES entry 1 (x.com=nope): unknown chain \"nope\" (tor, direct or block)" },
		{ "x.com=", "SOCKSIFY_RULES entry 1 (x.com=): unknown chain" },
		{ "=tor", "SOCKSIFY_RULES entry 1 (=tor): empty match" },
		{ "x=direct,*:0=block", "SOCKSIFY_RULES entry 2 (*:0=block): bad port" },
		{ "**=tor", "SOCKSIFY_RULES entry 1 (**=tor): bad match" },
	};
	for (size_t i = 0; i < SFY_ARRAY_LEN(bad); i++) {
		sfy_config_free(c);
		if (sfy_config_set_rules(c, bad[i].list, err, sizeof err) != -1 ||
		    strncmp(err, bad[i].want, strlen(bad[i].want)))
			fail_msg("%zu: got \"%s\", want \"%s\"", i, err, bad[i].want);
	}
	/* Errors of finish() about command-line rules name the entry. */
	assert_int_equal(with_cli_rules(c, "proxies: [socks5h://h]\nchains:\n  tor: [socks5h://t]\n"
					"rules:\n  - {match: a.com, via: tor}\n",
					"*=tor b.com=direct", err), -1);
	assert_string_equal(err, "SOCKSIFY_RULES entry 2 (b.com=direct): never matches: "
			    "SOCKSIFY_RULES entry 1 (*=tor) matches everything first");
	assert_int_equal(with_cli_rules(c, "proxies: [socks5h://h]\n", "*.ONION=direct", err), -1);
	assert_string_equal(err, "SOCKSIFY_RULES entry 1 (*.onion=direct): .onion, .exit and .i2p names "
			    "cannot go direct, only through a chain");
	assert_int_equal(with_cli_rules(c, "proxies: [socks5h://h]\n", "224.0.0.0/8:80=direct", err), -1);
	assert_non_null(strstr(err, "SOCKSIFY_RULES entry 1 (224.0.0.0/8:80=direct): direct network overlaps"));

	/* A command-line "*" in front of the file's rules only warns. */
	if (with_cli_rules(c, "proxies: [socks5h://h]\nchains:\n  tor: [socks5h://t]\n"
			   "bypass: [10.0.0.0/8]\nrules:\n  - {match: a.com, via: tor}\n"
			   "  - {match: b.com, via: block}\n", "*=tor", err))
		fail_msg("%s", err);
	assert_string_equal(c->warnings, "SOCKSIFY_RULES entry 1 (*=tor) matches everything first: "
			    "the 3 rules after it (NO_PROXY, bypass:, rules:) never match\n");
	/* ... and a "*:PORT" does not match everything. */
	if (with_cli_rules(c, "proxies: [socks5h://h]\nrules:\n  - {match: a.com, via: block}\n",
			   "*:80=block", err))
		fail_msg("%s", err);
	assert_string_equal(c->warnings, "");

	/* SFY_MAX_RULES: the storage grows to it and stops there. */
	sfy_config_free(c);
	sfy_config_defaults(c);
	struct sfy_rule r = { .kind = SFY_RM_NAME, .via = SFY_VIA_BLOCK, .port_hi = 65535 };
	for (size_t i = 0; i < SFY_MAX_RULES; i++) {
		char n[32];
		int l = snprintf(n, sizeof n, "h%zu.example", i);
		r.line = (uint32_t)i + 1;
		if (sfy_config_push_rule(c, &r, n, (size_t)l, err, sizeof err))
			fail_msg("%zu: %s", i, err);
	}
	assert_int_equal(sfy_config_push_rule(c, &r, "x", 1, err, sizeof err), -1);
	assert_non_null(strstr(err, "more than 65536 rules"));
	assert_string_equal(rname(c, 12345), "h12345.example");
	assert_string_equal(rname(c, SFY_MAX_RULES - 1), "h65535.example");
	sfy_config_free(c);
	assert_null(c->rules);
	assert_int_equal(c->nrules, 0);
}

/* --- per-chain DNS -------------------------------------------------- */

static void test_chain_dns(void **state)
{
	static const struct {
		const char *yaml;
		int top, a, b;          /* cfg->dns, chains a and b after finish */
	} t[] = {
		/* Each chain by its last hop... */
		{ "proxies: [socks5://h]\nchains:\n  a: [socks5h://x]\n  b: [socks5h://x, socks5://y]\n",
		  SFY_DNS_LOCAL, SFY_DNS_REMOTE, SFY_DNS_LOCAL },
		{ "proxies: [socks5h://h]\nchains:\n  a: [http://x]\n  b: [socks4a://x]\n",
		  SFY_DNS_REMOTE, SFY_DNS_REMOTE, SFY_DNS_REMOTE },
		/* ... unless the global dns: says otherwise ... */
		{ "proxies: [socks5h://h]\ndns: local\nchains:\n  a: [http://x]\n  b: [socks5://x]\n",
		  SFY_DNS_LOCAL, SFY_DNS_LOCAL, SFY_DNS_LOCAL },
		/* ... unless the chain's own does. */
		{ "proxies: [socks5h://h]\ndns: local\nchains:\n  a: {dns: remote, proxies: [socks5h://x]}\n"
		  "  b: [socks5://x]\n", SFY_DNS_LOCAL, SFY_DNS_REMOTE, SFY_DNS_LOCAL },
		/* Without top-level proxies: remote when any chain is. */
		{ "default: a\nchains:\n  a: [socks5://x]\n  b: [socks5h://x]\n",
		  SFY_DNS_REMOTE, SFY_DNS_LOCAL, SFY_DNS_REMOTE },
		{ "default: direct\nchains:\n  a: [socks5://x]\n  b: [socks4://x]\n",
		  SFY_DNS_LOCAL, SFY_DNS_LOCAL, SFY_DNS_LOCAL },
		/* dns: proxy, global or per chain */
		{ "proxies: [socks5://h]\ndns: proxy\nchains:\n  a: [socks5://x]\n"
		  "  b: {dns: remote, proxies: [http://x]}\n", SFY_DNS_PROXY, SFY_DNS_PROXY, SFY_DNS_REMOTE },
		{ "proxies: [socks5://h]\nchains:\n  a: {dns: proxy, proxies: [socks5://x]}\n"
		  "  b: [socks5://x]\n", SFY_DNS_LOCAL, SFY_DNS_PROXY, SFY_DNS_LOCAL },
		{ "default: a\nchains:\n  a: {dns: proxy, proxies: [socks5://x]}\n  b: [socks5://x]\n",
		  SFY_DNS_REMOTE, SFY_DNS_PROXY, SFY_DNS_LOCAL },
	};
	struct sfy_config *c = *state;
	char err[SFY_ERR_MAX];

	for (size_t i = 0; i < SFY_ARRAY_LEN(t); i++) {
		if (load_finish(c, t[i].yaml, err))
			fail_msg("%zu: %s", i, err);
		if ((int)c->dns != t[i].top || (int)c->chains[0].dns != t[i].a ||
		    (int)c->chains[1].dns != t[i].b)
			fail_msg("%zu: dns %d, a %d, b %d", i, c->dns, c->chains[0].dns, c->chains[1].dns);
	}
	/* random / round_robin chains default to one hop. */
	if (load_finish(c, "default: a\nchains:\n  a: {chain: random, proxies: [socks5://x, socks5://y]}\n", err))
		fail_msg("%s", err);
	assert_int_equal(c->chains[0].chain_length, 1);
}

/* --- the environment: SOCKSIFY_RULES and NO_PROXY -------------------- */

static char tmpdir[PATH_MAX];

static int env_setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/sfy_rules_XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	unsetenv("SOCKSIFY_CONFIG");
	unsetenv("SOCKSIFY_PROXY");
	unsetenv("SOCKSIFY_RULES");
	unsetenv("SOCKSIFY_DNS");
	unsetenv("NO_PROXY");
	unsetenv("no_proxy");
	return 0;
}

static int env_teardown(void **state)
{
	char cmd[PATH_MAX + 16];
	(void)state;
	unsetenv("SOCKSIFY_RULES");
	unsetenv("NO_PROXY");
	unsetenv("no_proxy");
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) ? -1 : 0;
}

static void test_rules_env(void **state)
{
	struct sfy_config *c = *state;
	char err[SFY_ERR_MAX], p[PATH_MAX + 32];

	snprintf(p, sizeof p, "%s/r.yaml", tmpdir);
	write_file(p, "proxies: [socks5h://h]\nno_proxy: env\nbypass: [192.168.0.0/16]\n"
		   "rules:\n  - {match: \"*.corp\", via: work}\nchains:\n  work: [socks5h://w]\n",
		   0600);
	/* SOCKSIFY_RULES is read after the file: it names the file's chains. */
	setenv("SOCKSIFY_RULES", "x.example=work", 1);
	setenv("NO_PROXY", "localhost,.lan, 10.1.0.0/16 ,example.org:8080,[fd00::1]:22,*.internal", 1);
	sfy_config_free(c);
	if (sfy_config_from_env(c, p, err, sizeof err))
		fail_msg("%s", err);
	static const struct {
		int origin, kind;
		const char *name;
		unsigned line, lo, hi;
	} want[] = {
		{ SFY_RO_FILE, SFY_RM_SUFFIX, "corp", 5, 0, 65535 },
		{ SFY_RO_CLI, SFY_RM_NAME, "x.example", 1, 0, 65535 },
		{ SFY_RO_NOPROXY, SFY_RM_NAME, "localhost", 1, 0, 65535 },
		{ SFY_RO_NOPROXY, SFY_RM_SUFFIX, "localhost", 1, 0, 65535 },
		{ SFY_RO_NOPROXY, SFY_RM_NAME, "lan", 2, 0, 65535 },
		{ SFY_RO_NOPROXY, SFY_RM_SUFFIX, "lan", 2, 0, 65535 },
		{ SFY_RO_NOPROXY, SFY_RM_CIDR, NULL, 3, 0, 65535 },
		{ SFY_RO_NOPROXY, SFY_RM_NAME, "example.org", 4, 8080, 8080 },
		{ SFY_RO_NOPROXY, SFY_RM_SUFFIX, "example.org", 4, 8080, 8080 },
		{ SFY_RO_NOPROXY, SFY_RM_CIDR, NULL, 5, 22, 22 },
		{ SFY_RO_NOPROXY, SFY_RM_NAME, "internal", 6, 0, 65535 },
		{ SFY_RO_NOPROXY, SFY_RM_SUFFIX, "internal", 6, 0, 65535 },
	};
	assert_int_equal(c->nrules, SFY_ARRAY_LEN(want));
	for (size_t i = 0; i < SFY_ARRAY_LEN(want); i++) {
		const struct sfy_rule *r = &c->rules[i];
		if (r->origin != want[i].origin || r->kind != want[i].kind || r->line != want[i].line ||
		    r->port_lo != want[i].lo || r->port_hi != want[i].hi ||
		    (want[i].name && strcmp(rname(c, i), want[i].name)))
			fail_msg("rule %zu: origin %d kind %d line %u ports %u-%u", i, r->origin, r->kind,
				 r->line, r->port_lo, r->port_hi);
		if (r->origin == SFY_RO_NOPROXY && r->via != SFY_VIA_DIRECT)
			fail_msg("rule %zu: NO_PROXY rules are direct", i);
	}
	assert_int_equal(c->rules[1].via, 0);
	assert_string_equal(c->warnings, "");

	/* no_proxy (lower case) wins, as in curl; "*" warns. */
	setenv("no_proxy", "*", 1);
	sfy_config_free(c);
	if (sfy_config_from_env(c, p, err, sizeof err))
		fail_msg("%s", err);
	assert_int_equal(c->nrules, 3);
	assert_int_equal(c->rules[2].kind, SFY_RM_ANY);
	assert_string_equal(c->warnings, "no_proxy=* (no_proxy: env): every destination goes direct, unproxied\n");
	unsetenv("no_proxy");
	sfy_config_free(c);

	/* Errors name the variable and the entry; nothing is left allocated. */
	setenv("NO_PROXY", "localhost,169.254/16", 1);
	assert_int_equal(sfy_config_from_env(c, p, err, sizeof err), -1);
	assert_string_equal(err, "NO_PROXY entry 2 (169.254/16): bad address in \"169.254/16\"");
	assert_null(c->rules);
	setenv("NO_PROXY", "x.onion", 1);
	assert_int_equal(sfy_config_from_env(c, p, err, sizeof err), -1);
	assert_non_null(strstr(err, "NO_PROXY entry 1 (x.onion=direct): .onion"));
	unsetenv("NO_PROXY");
	setenv("SOCKSIFY_RULES", "x.example=play", 1);
	assert_int_equal(sfy_config_from_env(c, p, err, sizeof err), -1);
	assert_string_equal(err, "SOCKSIFY_RULES entry 1 (x.example=play): unknown chain \"play\" "
			    "(work, direct or block)");
	/* Without no_proxy: env, NO_PROXY means nothing here. */
	write_file(p, "proxies: [socks5h://h]\n", 0600);
	setenv("NO_PROXY", "localhost", 1);
	unsetenv("SOCKSIFY_RULES");
	if (sfy_config_from_env(c, p, err, sizeof err))
		fail_msg("%s", err);
	assert_int_equal(c->nrules, 0);
	sfy_config_free(c);
}

/* --- the sealed memfd ----------------------------------------------- */

static const char memfd_yaml[] =
	"proxies: [socks5h://h]\n"
	"chains:\n"
	"  tor: [socks5h://127.0.0.1:9050]\n"
	"  work: {chain: dynamic, dns: local, proxies: [socks5://p1:1080, socks5://p2]}\n"
	"rules:\n"
	"  - {match: \"*.onion\", via: tor}\n"
	"  - {match: \"Host.Example:443\", via: work}\n"
	"  - {match: \"10.0.0.0/8:1-1024\", via: direct}\n"
	"  - {match: \"[fd00::]/8\", via: direct}\n"
	"  - {match: \"*:25\", via: block}\n"
	"default: work\n";

static void fd_env(int fd)
{
	char num[16];
	snprintf(num, sizeof num, "%d", fd);
	setenv(SFY_CONFIG_FD_ENV, num, 1);
}

static void test_rules_memfd(void **state)
{
	struct sfy_config *c = *state;
	struct sfy_config *d = calloc(1, sizeof *d);
	char err[SFY_ERR_MAX];

	assert_non_null(d);
	if (load_finish(c, memfd_yaml, err))
		fail_msg("%s", err);
	assert_int_equal(sfy_config_set_rules(c, "a.b=tor", err, sizeof err), 0);
	int fd = sfy_config_export_fd(c);
	assert_true(fd >= 0);
	fd_env(fd);
	assert_int_equal(sfy_config_import_fd(d, err, sizeof err), 1);
	assert_int_equal(d->nrules, c->nrules);
	assert_int_equal(d->rule_names_len, c->rule_names_len);
	assert_ptr_not_equal(d->rules, c->rules);
	assert_memory_equal(d->rules, c->rules, c->nrules * sizeof *c->rules);
	assert_memory_equal(d->rule_names, c->rule_names, c->rule_names_len);
	assert_int_equal(d->nchains, 2);
	assert_string_equal(d->chains[1].name, "work");
	assert_int_equal(d->chains[1].dns, SFY_DNS_LOCAL);
	assert_int_equal(d->default_via, 1);
	assert_string_equal(d->chain_proxies[2].host, "p2");
	assert_int_equal(sfy_config_fd_unproxyable(fd), SFY_UNPROXYABLE_REFUSE);
	/* The imported copy grows like one built here. */
	assert_int_equal(sfy_config_set_rules(d, "c.d=block e.f=block", err, sizeof err), 0);
	assert_int_equal(d->nrules, c->nrules + 2);
	sfy_config_free(d);
	close(fd);

	/* No rules at all: the struct alone, as before. */
	if (load_finish(c, "proxies: [socks5://h]\n", err))
		fail_msg("%s", err);
	fd = sfy_config_export_fd(c);
	fd_env(fd);
	assert_int_equal(sfy_config_import_fd(d, err, sizeof err), 1);
	assert_null(d->rules);
	assert_null(d->rule_names);
	close(fd);
	unsetenv(SFY_CONFIG_FD_ENV);
	free(d);
}

/* A sealed memfd holding buf. */
static int sealed(const void *buf, size_t n)
{
	int fd = memfd_create("forged", MFD_ALLOW_SEALING);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE), 0);
	return fd;
}

#define HDR 16
#define CFG(field) (HDR + offsetof(struct sfy_config, field))
#define RULE(i, field) (HDR + sizeof(struct sfy_config) + (i) * sizeof(struct sfy_rule) + \
			offsetof(struct sfy_rule, field))

static void test_rules_memfd_forged(void **state)
{
	struct sfy_config *c = *state;
	struct sfy_config *d = calloc(1, sizeof *d);
	char err[SFY_ERR_MAX];
	struct stat st;

	assert_non_null(d);
	if (load_finish(c, memfd_yaml, err))
		fail_msg("%s", err);
	int good = sfy_config_export_fd(c);
	assert_true(good >= 0);
	assert_int_equal(fstat(good, &st), 0);
	size_t n = (size_t)st.st_size, names = HDR + sizeof(struct sfy_config) +
		   c->nrules * sizeof(struct sfy_rule);
	uint8_t *img = malloc(n + 8), *bad = malloc(n + 8);
	assert_non_null(img);
	assert_non_null(bad);
	assert_int_equal(pread(good, img, n, 0), (ssize_t)n);
	close(good);
	/* The control: the image as written imports. */
	int fd = sealed(img, n);
	fd_env(fd);
	assert_int_equal(sfy_config_import_fd(d, err, sizeof err), 1);
	sfy_config_free(d);
	close(fd);

	static const struct {
		size_t off;
		uint64_t val;
		unsigned width;         /* bytes */
		const char *what;
		bool pool;              /* off counts from the names pool */
	} t[] = {
		{ RULE(0, kind), 7, 1, "rule kind", false },
		{ RULE(0, origin), SFY_RO_BYPASS, 1, "rule origin bypass", false },
		{ RULE(0, origin), 9, 1, "rule origin", false },
		{ RULE(0, via), 2, 2, "via past the chains", false },
		{ RULE(0, via), (uint16_t)-1, 2, "via TOP in a rule", false },
		{ RULE(0, via), (uint16_t)-9, 2, "via negative", false },
		{ RULE(0, has_port), 2, 1, "has_port not a bool", false },
		{ RULE(0, port_hi), 100, 2, "no port, yet a range", false },
		{ RULE(1, port_lo), 0, 2, "port 0", false },
		{ RULE(2, port_lo), 2000, 2, "lo > hi", false },
		{ RULE(0, name_off), 100000, 4, "name outside the pool", false },
		{ RULE(0, name_len), 60000, 2, "name longer than the pool", false },
		{ RULE(1, name_len), 3, 2, "name not ending at its NUL", false },
		{ RULE(2, name_len), 1, 2, "a CIDR rule with a name", false },
		{ RULE(4, name_off), 1, 4, "an ANY rule with a name", false },
		{ RULE(2, cidr.family), 99, 4, "CIDR family", false },
		{ RULE(2, cidr.prefix), 33, 1, "IPv4 prefix > 32", false },
		{ RULE(3, cidr.prefix), 129, 1, "IPv6 prefix > 128", false },
		{ RULE(2, cidr.prefix), 4, 1, "host bits below the prefix", false },
		{ RULE(2, cidr.port), 80, 2, "CIDR with a port of its own", false },
		{ CFG(nrules), 6, 8, "nrules past the file", false },
		{ CFG(nrules), 4, 8, "nrules short of the file", false },
		{ CFG(nrules), 1u << 30, 8, "nrules huge", false },
		{ CFG(rule_names_len), 3, 8, "names length", false },
		{ CFG(nchains), 17, 8, "nchains", false },
		{ CFG(nchains), 3, 8, "a chain that is not there", false },
		{ CFG(nchain_proxies), 2, 8, "chain slice past the hops", false },
		{ CFG(chains[1].n), 0, 1, "empty chain", false },
		{ CFG(chains[1].first), 200, 1, "chain first", false },
		{ CFG(chains[1].chain_length), 3, 4, "chain_length > n", false },
		{ CFG(chains[0].dns), SFY_DNS_AUTO, 4, "chain dns AUTO", false },
		{ CFG(chains[0].chain), 9, 4, "chain mode", false },
		{ CFG(chains[0].name[0]), 0x746365726964, 8, "chain named direct", false },
		{ CFG(chains[0].name[0]), 'w' | 'o' << 8 | 'r' << 16 | 'k' << 24, 4, "duplicate chain name", false },
		{ CFG(chains[0].name[0]), 0, 1, "empty chain name", false },
		{ CFG(chains[0].name[0]), '.', 1, "chain name character", false },
		{ CFG(default_via), 5, 2, "default past the chains", false },
		{ CFG(nproxies), 0, 8, "no proxies without default", false },
		{ CFG(no_proxy_env), 3, 1, "no_proxy_env", false },
		{ CFG(isolate), 3, 4, "isolate past connection", false },
		{ 0, 'X', 1, "upper case in the pool", true },
		{ 5, '.', 1, "an empty label in the pool", true },
	};
	for (size_t i = 0; i < SFY_ARRAY_LEN(t); i++) {
		memcpy(bad, img, n);
		/* The whole field for the nproxies/default cases: the default
		 * of the forged one must be TOP for "no proxies". */
		if (t[i].off == CFG(nproxies)) {
			int16_t top = SFY_VIA_TOP;
			memcpy(bad + CFG(default_via), &top, sizeof top);
		}
		memcpy(bad + t[i].off + (t[i].pool ? names : 0), &t[i].val, t[i].width);
		fd = sealed(bad, n);
		fd_env(fd);
		memset(d, 0, sizeof *d);
		if (sfy_config_import_fd(d, err, sizeof err) != -1)
			fail_msg("forged %zu (%s) accepted", i, t[i].what);
		assert_null(d->rules);
		assert_null(d->rule_names);
		close(fd);
	}
	/* A chain name without its NUL. */
	memcpy(bad, img, n);
	memset(bad + CFG(chains[0].name), 'a', SFY_CHAIN_NAME_MAX + 1);
	fd = sealed(bad, n);
	fd_env(fd);
	assert_int_equal(sfy_config_import_fd(d, err, sizeof err), -1);
	close(fd);
	/* One byte more or less than the sections add up to. */
	memcpy(bad, img, n);
	bad[n] = 0;
	fd = sealed(bad, n + 1);
	fd_env(fd);
	assert_int_equal(sfy_config_import_fd(d, err, sizeof err), -1);
	close(fd);
	fd = sealed(bad, n - 1);
	fd_env(fd);
	assert_int_equal(sfy_config_import_fd(d, err, sizeof err), -1);
	close(fd);
	/* Without the seals it is not ours at all. */
	fd = memfd_create("unsealed", MFD_ALLOW_SEALING);
	assert_int_equal(write(fd, img, n), (ssize_t)n);
	fd_env(fd);
	assert_int_equal(sfy_config_import_fd(d, err, sizeof err), -1);
	assert_non_null(strstr(err, "not a sealed"));
	close(fd);
	unsetenv(SFY_CONFIG_FD_ENV);
	free(img);
	free(bad);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match_parse),
		cmocka_unit_test(test_rules_yaml),
		cmocka_unit_test(test_rules_bad),
		cmocka_unit_test(test_rules_text),
		cmocka_unit_test(test_chain_dns),
		cmocka_unit_test_setup_teardown(test_rules_env, env_setup, env_teardown),
		cmocka_unit_test(test_rules_memfd),
		cmocka_unit_test(test_rules_memfd_forged),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
