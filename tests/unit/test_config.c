/* YAML config, durations, words, finish() and the environment lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "io.h"
#include "sfy.h"
#include "configutil.h"

#ifndef SFY_SYSCONFDIR
#define SFY_SYSCONFDIR "/usr/local/etc"
#endif

static const struct bad {
	const char *yaml;
	const char *where;      /* "t.yaml:LINE: KEY:" prefix */
	const char *why;        /* substring of the reason */
} bads[] = {
	{ "proxies: [socks5://h]\nfoo: 1\n", "t.yaml:2: foo:", "unknown key" },
	{ "proxies:\n  - socks5://h\nproxies:\n  - socks5://g\n", "t.yaml:3: proxies:", "duplicate" },
	{ "proxies: []\n", "t.yaml:1: proxies:", "empty list" },
	{ "proxies: socks5://h\n", "t.yaml:1: proxies:", "expected a list" },
	{ "proxies:\n", "t.yaml:1: proxies:", "expected a list, got nothing" },
	{ "proxies:\n  - socks5://h\n  - socks9://g\n", "t.yaml:3: proxies[2]:", "unknown scheme" },
	{ "proxies:\n  - socks5://h:0\n", "t.yaml:2: proxies[1]:", "port" },
	{ "proxies:\n  - [a, b]\n", "t.yaml:2: proxies[1]:", "expected a value, got a list" },
	{ "proxies:\n  - socks5://a\n  - type: socks5\n    host: h\n    port: 99999\n",
	  "t.yaml:5: proxies[2].port:", "bad port" },
	{ "proxies:\n  - type: socks5\n    host: h\n    port: 1x\n", "t.yaml:4: proxies[1].port:", "bad port" },
	{ "proxies: [socks5://h]\n\"dns\\0x\": remote\n", "t.yaml:2: dns:", "NUL byte in a key" },
	/* Digit parsers that wrapped around once accepted these as 80 / 2. */
	{ "proxies:\n  - type: socks5\n    host: h\n    port: \"x81553255926290448464\"\n",
	  "t.yaml:4: proxies[1].port:", "bad port" },
	{ "proxies:\n  - type: socks5\n    host: h\n    port: 18446744073709551696\n",
	  "t.yaml:4: proxies[1].port:", "bad port" },
	{ "proxies: [socks5://h, socks5://g]\nchain: random\nchain_length: \"x18446744073709551618\"\n",
	  "t.yaml:3: chain_length:", "bad value" },
	{ "proxies: [socks5://h]\ntimeouts:\n  connect: 18446744073709551616ms\n",
	  "t.yaml:3: timeouts.connect:", "bad duration" },
	{ "proxies:\n  - type: socks7\n    host: h\n", "t.yaml:2: proxies[1].type:", "unknown type" },
	{ "proxies:\n  - host: h\n", "t.yaml:2: proxies[1]:", "missing type" },
	{ "proxies:\n  - type: socks5\n", "t.yaml:2: proxies[1]:", "missing host" },
	{ "proxies:\n  - type: socks5\n    host: \"bad host\"\n", "t.yaml:3: proxies[1].host:", "bad host" },
	{ "proxies:\n  - type: socks4\n    host: h\n    username: u\n    password: p\n",
	  "t.yaml:5: proxies[1].password:", "no password" },
	{ "proxies:\n  - url: socks5://h\n    host: g\n", "t.yaml:2: proxies[1]:", "either url" },
	{ "proxies:\n  - url: socks5://h\n    colour: red\n", "t.yaml:3: proxies[1].colour:", "unknown key" },
	{ "proxies:\n  - type: socks5\n    host: h\n    host: g\n", "t.yaml:4: proxies[1].host:", "duplicate" },
	{ "proxies:\n  - type: socks5\n    host: h\n    username: {a: 1}\n",
	  "t.yaml:4: proxies[1].username:", "expected a value, got a mapping" },
	{ "proxies: [socks5://h]\nchain: zigzag\n", "t.yaml:2: chain:", "bad value \"zigzag\"" },
	{ "proxies: [socks5://h]\nchain: [strict]\n", "t.yaml:2: chain:", "expected a value" },
	{ "proxies: [socks5://h]\nchain_length: 0\n", "t.yaml:2: chain_length:", "bad value" },
	{ "proxies: [socks5://h]\nchain_length: -1\n", "t.yaml:2: chain_length:", "bad value" },
	{ "proxies: [socks5://h]\nchain_length: two\n", "t.yaml:2: chain_length:", "bad value" },
	{ "proxies: [socks5://h, socks5://g]\nchain: random\nchain_length: 3\n", "t.yaml:3: chain_length:",
	  "more than the 2 proxies" },
	{ "chain_length: 3\nproxies: [socks5://h]\n", "t.yaml:1: chain_length:", "more than the 1 proxies" },
	{ "proxies: [socks5://h]\ndns: maybe\n", "t.yaml:2: dns:", "bad value" },
	{ "proxies: [socks5://h]\ndns:\n", "t.yaml:2: dns:", "missing value" },
	{ "proxies: [socks5://h]\nfake_ip_range: 10.0.0.0/33\n", "t.yaml:2: fake_ip_range:", "prefix" },
	{ "proxies: [socks5://h]\nfake_ip_range: \"fd00::/8\"\n", "t.yaml:2: fake_ip_range:", "IPv4" },
	{ "proxies: [socks5://h]\nfake_ip_range: 10.0.0.1/8\n", "t.yaml:2: fake_ip_range:", "host bits" },
	{ "proxies: [socks5://h]\nfake_ip_range: 10.0.0.0/30\n", "t.yaml:2: fake_ip_range:", "prefix length" },
	{ "proxies: [socks5://h]\nbypass:\n  - 10.0.0.0/8\n  - 10.0.0.0/99\n", "t.yaml:4: bypass[2]:", "prefix" },
	{ "proxies: [socks5://h]\nbypass: 10.0.0.0/8\n", "t.yaml:2: bypass:", "expected a list" },
	{ "proxies: [socks5://h]\nudp: tunnel\n", "t.yaml:2: udp:", "bad value" },
	{ "proxies: [socks5://h]\ntimeouts: 5s\n", "t.yaml:2: timeouts:", "expected a mapping" },
	{ "proxies: [socks5://h]\ntimeouts:\n  connect: 0\n", "t.yaml:3: timeouts.connect:", "bad duration" },
	{ "proxies: [socks5://h]\ntimeouts:\n  connect: 8s\n  handshake: -5s\n",
	  "t.yaml:4: timeouts.handshake:", "bad duration" },
	{ "proxies: [socks5://h]\ntimeouts:\n  handshake: 2h\n", "t.yaml:3: timeouts.handshake:", "bad duration" },
	{ "proxies: [socks5://h]\ntimeouts:\n  connect: 5 s\n", "t.yaml:3: timeouts.connect:", "bad duration" },
	{ "proxies: [socks5://h]\ntimeouts:\n  read: 5s\n", "t.yaml:3: timeouts.read:", "unknown key" },
	{ "proxies: [socks5://h]\nlog:\n  level: loud\n", "t.yaml:3: log.level:", "bad value" },
	{ "proxies: [socks5://h]\nlog:\n  file: [a]\n", "t.yaml:3: log.file:", "expected a value" },
	{ "proxies: [socks5://h]\nlog: debug\n", "t.yaml:2: log:", "expected a mapping" },
	{ "proxies: [socks5://h]\npipelining: sometimes\n", "t.yaml:2: pipelining:", "bad value" },
	{ "proxies: [socks5://h]\nio_uring: yes\n", "t.yaml:2: io_uring:", "bad value" },
	{ "proxies: [socks5://h]\nio_uring: [allow]\n", "t.yaml:2: io_uring:", "expected a value" },
	{ "proxies: [socks5://h]\nunproxyable: maybe\n", "t.yaml:2: unproxyable:", "bad value" },
	{ "proxies: [socks5://h]\nisolate: tree\n", "t.yaml:2: isolate:", "bad value" },
	{ "proxies: [socks5://h]\nisolate: [process]\n", "t.yaml:2: isolate:", "expected a value" },
	{ "proxies: [socks5://h]\nbind: on\n", "t.yaml:2: bind:", "bad value" },
	{ "proxies: [socks5://h]\nbind: [auto]\n", "t.yaml:2: bind:", "expected a value" },
	{ "- socks5://h\n", "t.yaml:1: (top level):", "expected a mapping" },
	{ "proxies: [socks5://h]\n[a]: 1\n", "t.yaml:2: (top level):", "keys must be words" },
	{ "proxies: [socks5://h\n", "t.yaml:2: yaml:", "" },
	{ "proxies:\n  - socks5://h\n bad: indent\n", "t.yaml:3: yaml:", "" },
	{ "proxies: [socks5://h]\n---\nchain: strict\n", "t.yaml:3: yaml:", "more than one document" },
	{ "proxies: [\"socks5://h\\0x\"]\n", "t.yaml:1: proxies[1]:", "NUL" },
};

static void test_bad(void **state)
{
	struct sfy_config *c = *state;
	char err[SFY_ERR_MAX];

	for (size_t i = 0; i < SFY_ARRAY_LEN(bads); i++) {
		if (load(c, bads[i].yaml, err) != -1)
			fail_msg("case %zu accepted:\n%s", i, bads[i].yaml);
		if (strncmp(err, bads[i].where, strlen(bads[i].where)) || !strstr(err, bads[i].why))
			fail_msg("case %zu: got \"%s\", want \"%s ...%s...\"", i, err, bads[i].where, bads[i].why);
		if (strchr(err, '\n'))
			fail_msg("case %zu: multi-line error", i);
	}
}

static void test_full(void **state)
{
	static const char yaml[] =
		"# every key\n"
		"proxies:\n"
		"  - socks5h://alice:s%40cret@proxy1.example:1081\n"
		"  - url: socks4a://10.0.0.2\n"
		"  - type: SOCKS5\n"
		"    host: 2001:db8::1\n"
		"    port: 1082\n"
		"    username: bob\n"
		"    password: hunter2\n"
		"  - type: http\n"
		"    host: \"[::1]\"\n"
		"chain: round_robin\n"
		"chain_length: 2\n"
		"dns: local\n"
		"fake_ip_range: 198.18.0.0/15\n"
		"bypass:\n"
		"  - 127.0.0.0/8\n"
		"  - \"::1/128\"\n"
		"  - 192.168.1.0/24:22\n"
		"udp: block\n"
		"timeouts:\n"
		"  connect: 500ms\n"
		"  handshake: 1m\n"
		"log:\n"
		"  level: debug\n"
		"  file: /tmp/sfy.log\n"
		"pipelining: off\n"
		"io_uring: allow\n";
	struct sfy_config *c = *state;
	char err[SFY_ERR_MAX];

	if (load(c, yaml, err))
		fail_msg("%s", err);
	assert_int_equal(c->nproxies, 4);
	assert_int_equal(c->proxies[0].proto, SFY_PROTO_SOCKS5H);
	assert_string_equal(c->proxies[0].host, "proxy1.example");
	assert_int_equal(c->proxies[0].port, 1081);
	assert_string_equal(c->proxies[0].user, "alice");
	assert_string_equal(c->proxies[0].pass, "s@cret");
	assert_int_equal(c->proxies[1].proto, SFY_PROTO_SOCKS4A);
	assert_string_equal(c->proxies[1].host, "10.0.0.2");
	assert_int_equal(c->proxies[1].port, 1080);
	assert_false(c->proxies[1].has_user);
	assert_int_equal(c->proxies[2].proto, SFY_PROTO_SOCKS5);
	assert_string_equal(c->proxies[2].host, "2001:db8::1");
	assert_int_equal(c->proxies[2].port, 1082);
	assert_true(c->proxies[2].has_user && c->proxies[2].has_pass);
	assert_string_equal(c->proxies[2].user, "bob");
	assert_string_equal(c->proxies[2].pass, "hunter2");
	assert_int_equal(c->proxies[3].proto, SFY_PROTO_HTTP);
	assert_string_equal(c->proxies[3].host, "::1");
	assert_int_equal(c->proxies[3].port, 8080);
	assert_int_equal(c->chain, SFY_CHAIN_ROUND_ROBIN);
	assert_int_equal(c->chain_length, 2);
	assert_int_equal(c->dns, SFY_DNS_LOCAL);
	assert_int_equal(c->fake_net, 0xc6120000u);
	assert_int_equal(c->fake_prefix, 15);
	assert_int_equal(c->nbypass, 3);
	assert_int_equal(c->bypass[0].family, AF_INET);
	assert_int_equal(c->bypass[0].prefix, 8);
	assert_int_equal(c->bypass[1].family, AF_INET6);
	assert_int_equal(c->bypass[2].port, 22);
	assert_int_equal(c->udp, SFY_UDP_BLOCK);
	assert_int_equal(c->connect_timeout_ms, 500);
	assert_int_equal(c->handshake_timeout_ms, 60000);
	assert_int_equal(c->log_level, SFY_LOG_DEBUG);
	assert_string_equal(c->log_file, "/tmp/sfy.log");
	assert_int_equal(c->pipeline, SFY_PIPELINE_OFF);
	assert_int_equal(c->io_uring, SFY_IO_URING_ALLOW);
	assert_false(c->insecure_perms);        /* only files have permissions */
	assert_int_equal(sfy_config_finish(c, err, sizeof err), 0);
	assert_int_equal(c->dns, SFY_DNS_LOCAL);
}

static void test_defaults(void **state)
{
	struct sfy_config *c = *state;
	char err[SFY_ERR_MAX];

	/* An empty document and one of comments only keep the defaults. */
	assert_int_equal(load(c, "", err), 0);
	assert_int_equal(load(c, "# nothing\n", err), 0);
	assert_int_equal(c->nproxies, 0);
	assert_int_equal(c->chain, SFY_CHAIN_STRICT);
	assert_int_equal(c->dns, SFY_DNS_AUTO);
	assert_int_equal(c->fake_net, 0xe0000000u);
	assert_int_equal(c->fake_prefix, 8);
	assert_int_equal(c->udp, SFY_UDP_ASSOCIATE);
	assert_int_equal(c->connect_timeout_ms, 8000);
	assert_int_equal(c->handshake_timeout_ms, 15000);
	assert_int_equal(c->log_level, SFY_LOG_WARN);
	assert_string_equal(c->log_file, "");
	assert_int_equal(c->pipeline, SFY_PIPELINE_AUTO);
	assert_int_equal(c->io_uring, SFY_IO_URING_REFUSE);
	assert_int_equal(c->nbypass, 0);
	/* ... and finish() then wants a chain. */
	assert_int_equal(sfy_config_finish(c, err, sizeof err), -1);
	assert_non_null(strstr(err, "no proxies"));
}

static void test_words(void **state)
{
	static const struct {
		const char *yaml;
		int pipeline, chain, udp;
	} t[] = {
		{ "proxies: [socks5://h]\npipelining: auto\nchain: dynamic\nudp: direct\n",
		  SFY_PIPELINE_AUTO, SFY_CHAIN_DYNAMIC, SFY_UDP_DIRECT },
		{ "proxies: [socks5://h]\npipelining: on\nchain: random\nudp: associate\n",
		  SFY_PIPELINE_ON, SFY_CHAIN_RANDOM, SFY_UDP_ASSOCIATE },
		{ "proxies: [socks5://h]\npipelining: \"off\"\nchain: strict\nudp: block\n",
		  SFY_PIPELINE_OFF, SFY_CHAIN_STRICT, SFY_UDP_BLOCK },
		{ "proxies: [socks5://h]\npipelining: true\nchain: Round_Robin\n",
		  SFY_PIPELINE_ON, SFY_CHAIN_ROUND_ROBIN, SFY_UDP_ASSOCIATE },
	};
	struct sfy_config *c = *state;
	char err[SFY_ERR_MAX];

	for (size_t i = 0; i < SFY_ARRAY_LEN(t); i++) {
		if (load(c, t[i].yaml, err))
			fail_msg("%zu: %s", i, err);
		assert_int_equal(c->pipeline, t[i].pipeline);
		assert_int_equal(c->chain, t[i].chain);
		assert_int_equal(c->udp, t[i].udp);
	}
	assert_int_equal(sfy_chain_mode_parse("round-robin"), SFY_CHAIN_ROUND_ROBIN);
	assert_int_equal(sfy_chain_mode_parse("fast"), -1);
	assert_int_equal(sfy_dns_mode_parse("remote"), SFY_DNS_REMOTE);
	assert_int_equal(sfy_dns_mode_parse("LOCAL"), SFY_DNS_LOCAL);
	assert_int_equal(sfy_dns_mode_parse("auto"), -1);
	assert_int_equal(sfy_dns_mode_parse("proxy"), SFY_DNS_PROXY);
	assert_int_equal(sfy_dns_mode_parse("Proxy"), SFY_DNS_PROXY);
	assert_int_equal(sfy_log_level_parse("error"), SFY_LOG_ERROR);
	assert_int_equal(sfy_log_level_parse("warning"), SFY_LOG_WARN);
	assert_int_equal(sfy_log_level_parse("trace"), -1);
	assert_int_equal(sfy_unproxyable_parse("refuse"), SFY_UNPROXYABLE_REFUSE);
	assert_int_equal(sfy_unproxyable_parse("Allow"), SFY_UNPROXYABLE_ALLOW);
	assert_int_equal(sfy_unproxyable_parse("warn"), -1);
	if (load(c, "proxies: [socks5://h]\nunproxyable: allow\n", err))
		fail_msg("%s", err);
	assert_int_equal(c->unproxyable, SFY_UNPROXYABLE_ALLOW);
	if (load(c, "proxies: [socks5://h]\n", err))
		fail_msg("%s", err);
	assert_int_equal(c->unproxyable, SFY_UNPROXYABLE_REFUSE);
	/* isolate: none by default (a zeroed configuration sends no
	 * credentials), any case. */
	assert_int_equal(c->isolate, SFY_ISOLATE_NONE);
	assert_int_equal(SFY_ISOLATE_NONE, 0);
	assert_int_equal(sfy_isolate_parse("none"), SFY_ISOLATE_NONE);
	assert_int_equal(sfy_isolate_parse("Process"), SFY_ISOLATE_PROCESS);
	assert_int_equal(sfy_isolate_parse("connection"), SFY_ISOLATE_CONNECTION);
	assert_int_equal(sfy_isolate_parse("stream"), -1);
	if (load(c, "proxies: [socks5://h]\nisolate: process\n", err))
		fail_msg("%s", err);
	assert_int_equal(c->isolate, SFY_ISOLATE_PROCESS);
	if (load(c, "proxies: [socks5://h]\nisolate: connection\n", err))
		fail_msg("%s", err);
	assert_int_equal(c->isolate, SFY_ISOLATE_CONNECTION);
	assert_false(c->bind_off);              /* bind: auto by default */
	if (load(c, "proxies: [socks5://h]\nbind: off\n", err))
		fail_msg("%s", err);
	assert_true(c->bind_off);
	if (load(c, "proxies: [socks5://h]\nbind: AUTO\n", err))
		fail_msg("%s", err);
	assert_false(c->bind_off);
	assert_string_equal(sfy_chain_mode_name(SFY_CHAIN_ROUND_ROBIN), "round_robin");
	assert_string_equal(sfy_chain_mode_name(SFY_CHAIN_STRICT), "strict");
}

static void test_duration(void **state)
{
	static const struct {
		const char *s;
		long ms;
	} t[] = {
		{ "8s", 8000 }, { "500ms", 500 }, { "1m", 60000 }, { "2", 2000 }, { "1h", 3600000 },
		{ "3600", 3600000 }, { "60m", 3600000 }, { "3600000ms", 3600000 }, { "1ms", 1 },
		{ "0", -1 }, { "0s", -1 }, { "-1", -1 }, { "-5s", -1 }, { "3601", -1 }, { "61m", -1 },
		{ "2h", -1 }, { "3600001ms", -1 }, { "", -1 }, { "s", -1 }, { "5x", -1 }, { "5 s", -1 },
		{ " 5s", -1 }, { "1.5s", -1 }, { "99999999999999999999", -1 }, { "5sec", -1 },
	};
	(void)state;
	for (size_t i = 0; i < SFY_ARRAY_LEN(t); i++)
		if (sfy_duration_parse(t[i].s) != t[i].ms)
			fail_msg("\"%s\": got %ld, want %ld", t[i].s, sfy_duration_parse(t[i].s), t[i].ms);
}

static void test_finish(void **state)
{
	static const struct {
		const char *yaml;
		int dns;                /* after finish, or -1 = error */
		unsigned chain_length;
		const char *why;
	} t[] = {
		{ "proxies: [socks5h://h]\n", SFY_DNS_REMOTE, 0, NULL },
		{ "proxies: [socks5://h]\n", SFY_DNS_LOCAL, 0, NULL },
		{ "proxies: [socks5://a, socks4a://h]\n", SFY_DNS_REMOTE, 0, NULL },
		{ "proxies: [socks5h://a, socks4://h]\n", SFY_DNS_LOCAL, 0, NULL },
		{ "proxies: [http://h]\n", SFY_DNS_REMOTE, 0, NULL },
		{ "proxies: [socks4://h]\ndns: remote\n", SFY_DNS_REMOTE, 0, NULL },
		{ "proxies: [socks5h://h]\ndns: local\n", SFY_DNS_LOCAL, 0, NULL },
		{ "proxies: [socks5://a, socks5://b]\nchain: random\n", SFY_DNS_LOCAL, 1, NULL },
		{ "proxies: [socks5://a, socks5://b]\nchain: round_robin\nchain_length: 2\n", SFY_DNS_LOCAL, 2, NULL },
		{ "dns: local\n", -1, 0, "no proxies" },
		/* A bypassed fake address would leave as itself, nameless. */
		{ "proxies: [socks5h://h]\nbypass: [0.0.0.0/0]\n", -1, 0, "rule 1 overlaps fake_ip_range" },
		{ "proxies: [socks5h://h]\nbypass: [10.0.0.0/8, 224.1.0.0/16:80]\n", -1, 0,
		  "rule 2 overlaps fake_ip_range 224.0.0.0/8" },
		{ "proxies: [socks5h://h]\nfake_ip_range: 10.64.0.0/10\nbypass: [10.0.0.0/8]\n", -1, 0,
		  "overlaps" },
		{ "proxies: [socks5h://h]\nbypass: [\"fd73:6f63:6b73::/48\"]\n", -1, 0, "overlaps" },
		{ "proxies: [socks5h://h]\nbypass: [\"::ffff:224.0.0.1\"]\n", -1, 0, "overlaps" },
		{ "proxies: [socks5h://h]\nbypass: [\"::/0\"]\n", -1, 0, "overlaps" },
		{ "proxies: [socks5h://h]\nbypass: [10.0.0.0/8, 225.0.0.0/8, \"fd00::/16\"]\n",
		  SFY_DNS_REMOTE, 0, NULL },
		{ "proxies: [socks5h://h]\ndns: local\nbypass: [0.0.0.0/0]\n", SFY_DNS_LOCAL, 0, NULL },
		/* A socks4 hop cannot pass the next hop's name on (remote DNS). */
		{ "proxies: [socks4://a, socks5h://b]\n", -1, 0,
		  "t.yaml:1: proxies[1]: socks4 cannot pass the name of proxy 2 (b)" },
		{ "proxies:\n  - socks5h://x\n  - socks4://a\n  - socks5h://b\n", -1, 0,
		  "t.yaml:3: proxies[2]: socks4 cannot" },
		{ "proxies: [socks4://a, socks5h://10.0.0.2]\n", SFY_DNS_REMOTE, 0, NULL },
		{ "proxies: [socks4://a, socks5h://b]\ndns: local\n", SFY_DNS_LOCAL, 0, NULL },
		{ "proxies: [socks4://a, socks5h://b]\nchain: random\n", SFY_DNS_REMOTE, 1, NULL },
		{ "proxies: [socks5h://b, socks4://a]\nchain: round_robin\nchain_length: 2\ndns: remote\n",
		  -1, 0,
		  "proxies[2]: socks4 cannot pass the name of proxy 1" },
		{ "proxies: [socks4://a, socks5h://b, socks5h://c]\nchain: dynamic\n", -1, 0,
		  "proxies[1]: socks4" },
		{ "proxies: [socks5h://b, socks4://a, http://1.2.3.4]\n", SFY_DNS_REMOTE, 0, NULL },
		/* dns: proxy asks the last hop with RESOLVE, a SOCKS5 command */
		{ "proxies: [socks5://h]\ndns: proxy\n", SFY_DNS_PROXY, 0, NULL },
		{ "proxies: [http://a, socks5h://h]\ndns: proxy\n", SFY_DNS_PROXY, 0, NULL },
		{ "proxies: [socks5://a, socks4a://h]\ndns: proxy\n", -1, 0,
		  "t.yaml:1: proxies: dns: proxy needs a socks5 last hop (it asks it with RESOLVE), "
		  "not socks4a://h" },
		{ "proxies:\n  - socks5://a\n  - http://h\ndns: proxy\n", -1, 0,
		  "t.yaml:3: proxies: dns: proxy needs a socks5 last hop" },
		{ "proxies: [socks4://a, socks5://b]\nchain: random\ndns: proxy\n", -1, 0,
		  "not socks4://a" },
		{ "proxies: [socks4://a, socks5://b]\nchain: dynamic\ndns: proxy\n", -1, 0,
		  "proxies[1]: socks4 cannot pass the name of proxy 2" },
		{ "proxies: [socks5://a, socks5://b]\nchain: round_robin\ndns: proxy\n",
		  SFY_DNS_PROXY, 1, NULL },
		{ "proxies: [socks5h://h]\ndns: proxy\nbypass: [0.0.0.0/0]\n", -1, 0, "overlaps" },
	};
	struct sfy_config *c = *state;
	char err[SFY_ERR_MAX];

	for (size_t i = 0; i < SFY_ARRAY_LEN(t); i++) {
		if (load(c, t[i].yaml, err))
			fail_msg("%zu: %s", i, err);
		int rc = sfy_config_finish(c, err, sizeof err);
		if (t[i].dns < 0) {
			if (rc != -1 || !strstr(err, t[i].why))
				fail_msg("%zu: got %d \"%s\", want \"%s\"", i, rc, err, t[i].why);
			continue;
		}
		if (rc)
			fail_msg("%zu: %s", i, err);
		assert_int_equal(c->dns, t[i].dns);
		assert_int_equal(c->chain_length, t[i].chain_length);
	}
}

static void test_set_proxies(void **state)
{
	struct sfy_config *c = *state;
	char err[SFY_ERR_MAX], many[40 * 20] = "";

	sfy_config_defaults(c);
	assert_int_equal(sfy_config_set_proxies(c, "socks5://a:1 , socks5h://b,http://c\t socks4://d ", err,
						sizeof err), 0);
	assert_int_equal(c->nproxies, 4);
	assert_string_equal(c->proxies[0].host, "a");
	assert_int_equal(c->proxies[1].proto, SFY_PROTO_SOCKS5H);
	assert_string_equal(c->proxies[2].host, "c");
	assert_int_equal(c->proxies[3].proto, SFY_PROTO_SOCKS4);

	/* From the environment the error names the variable, not a file line. */
	assert_int_equal(load(c, "proxies: [socks5h://x]\n", err), 0);
	assert_int_equal(sfy_config_set_proxies(c, "socks4://a socks5h://b", err, sizeof err), 0);
	assert_int_equal(sfy_config_finish(c, err, sizeof err), -1);
	assert_non_null(strstr(err, "SOCKSIFY_PROXY: proxy 1: socks4 cannot"));
	sfy_config_defaults(c);

	assert_int_equal(sfy_config_set_proxies(c, "socks5://a socks5://b:0", err, sizeof err), -1);
	assert_non_null(strstr(err, "proxy 2:"));
	assert_non_null(strstr(err, "port"));
	assert_int_equal(sfy_config_set_proxies(c, "bogus", err, sizeof err), -1);
	assert_non_null(strstr(err, "proxy 1:"));
	assert_int_equal(sfy_config_set_proxies(c, " , ", err, sizeof err), -1);
	assert_non_null(strstr(err, "no proxy"));
	for (int i = 0; i < SFY_MAX_PROXIES + 1; i++)
		strcat(many, "socks5://h ");
	assert_int_equal(sfy_config_set_proxies(c, many, err, sizeof err), -1);
	assert_non_null(strstr(err, "more than"));
}

/* --- files and the environment -------------------------------------- */

static char tmpdir[PATH_MAX], oldcwd[PATH_MAX];

static int env_setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/sfy_cfg_XXXXXX");
	if (!mkdtemp(tmpdir) || !getcwd(oldcwd, sizeof oldcwd) || chdir(tmpdir))
		return -1;
	unsetenv("SOCKSIFY_CONFIG");
	unsetenv("SOCKSIFY_PROXY");
	unsetenv("SOCKSIFY_CHAIN");
	unsetenv("SOCKSIFY_DNS");
	unsetenv("SOCKSIFY_LOG");
	setenv("HOME", tmpdir, 1);
	unsetenv("XDG_CONFIG_HOME");
	return 0;
}

static int env_teardown(void **state)
{
	char cmd[PATH_MAX + 16];
	(void)state;
	if (chdir(oldcwd))
		return -1;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) ? -1 : 0;
}

static void test_perms(void **state)
{
	struct sfy_config *c = *state;
	char err[SFY_ERR_MAX], p[PATH_MAX + 32];
	static const struct {
		const char *yaml;
		mode_t mode;
		bool insecure;
	} t[] = {
		{ "proxies: [socks5://u:pw@h]\n", 0644, true },
		{ "proxies: [socks5://u:pw@h]\n", 0640, true },
		{ "proxies: [socks5://u:pw@h]\n", 0604, true },
		{ "proxies: [socks5://u:pw@h]\n", 0600, false },
		{ "proxies: [socks5://u@h]\n", 0644, false },
		{ "proxies:\n  - type: socks5\n    host: h\n    username: u\n    password: pw\n", 0644, true },
		{ "proxies:\n  - url: http://u:pw@h\n", 0644, true },
	};

	snprintf(p, sizeof p, "%s/perm.yaml", tmpdir);
	for (size_t i = 0; i < SFY_ARRAY_LEN(t); i++) {
		write_file(p, t[i].yaml, t[i].mode);
		sfy_config_defaults(c);
		if (sfy_config_load_file(c, p, err, sizeof err))
			fail_msg("%zu: %s", i, err);
		if (c->insecure_perms != t[i].insecure)
			fail_msg("%zu: mode %o: insecure_perms %d", i, (unsigned)t[i].mode, c->insecure_perms);
		assert_string_equal(c->source, p);
	}
	/* Errors from a file name the file. */
	write_file(p, "proxies: [socks5://h]\nchain: x\n", 0600);
	sfy_config_defaults(c);
	assert_int_equal(sfy_config_load_file(c, p, err, sizeof err), -1);
	assert_non_null(strstr(err, "perm.yaml:2: chain:"));
	assert_int_equal(sfy_config_load_file(c, "/nonexistent/x.yaml", err, sizeof err), -1);
	assert_non_null(strstr(err, "/nonexistent/x.yaml"));
}

/* Files a hostile party may have written, or that cost unbounded time. */
static void test_hostile_files(void **state)
{
	struct sfy_config *c = *state;
	char err[SFY_ERR_MAX], p[PATH_MAX + 32];

	snprintf(p, sizeof p, "%s/h.yaml", tmpdir);
	write_file(p, "proxies: [socks5://h]\n", 0620);
	assert_int_equal(sfy_config_load_file(c, p, err, sizeof err), -1);
	assert_non_null(strstr(err, "writable by group or others"));
	write_file(p, "proxies: [socks5://h]\n", 0602);
	assert_int_equal(sfy_config_load_file(c, p, err, sizeof err), -1);
	assert_non_null(strstr(err, "writable by group or others"));
	assert_int_equal(chown(p, 4242, 4242), 0);
	assert_int_equal(chmod(p, 0600), 0);
	if (geteuid() != 4242) {
		assert_int_equal(sfy_config_load_file(c, p, err, sizeof err), -1);
		assert_non_null(strstr(err, "neither you nor root"));
	}
	unlink(p);

	/* A FIFO: refused at once, never a wait for a writer. */
	assert_int_equal(mkfifo(p, 0600), 0);
	alarm(5);
	assert_int_equal(sfy_config_load_file(c, p, err, sizeof err), -1);
	alarm(0);
	assert_non_null(strstr(err, "not a regular file"));
	unlink(p);

	/* Above 1 MiB. */
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs("proxies: [socks5://h]\n", f);
	for (int i = 0; i < (1 << 20) / 16 + 1; i++)
		fputs("# padding.......\n", f);
	fclose(f);
	assert_int_equal(chmod(p, 0600), 0);
	assert_int_equal(sfy_config_load_file(c, p, err, sizeof err), -1);
	assert_non_null(strstr(err, "larger than"));

	/* 100,000 levels of nesting: refused quickly (it took 20+ s). */
	size_t depth = 100000;
	char *deep = malloc(2 * depth + 64);
	assert_non_null(deep);
	strcpy(deep, "proxies: [socks5://h]\nbypass: ");
	size_t o = strlen(deep);
	memset(deep + o, '[', depth);
	memset(deep + o + depth, ']', depth);
	deep[o + 2 * depth] = 0;
	write_file(p, deep, 0600);
	free(deep);
	int64_t t0 = sfy_now_ms();
	assert_int_equal(sfy_config_load_file(c, p, err, sizeof err), -1);
	assert_true(sfy_now_ms() - t0 < 10000);
	assert_non_null(strstr(err, "nested deeper than 64"));
}

/* UDP through 2+ hops shows the client's address to the last relay: off
 * unless the file asks for it. */
static void test_udp_multihop(void **state)
{
	static const struct {
		const char *yaml;
		enum sfy_udp_mode udp;
	} t[] = {
		{ "proxies: [socks5://a]\n", SFY_UDP_ASSOCIATE },
		{ "proxies: [socks5://a, socks5://b]\n", SFY_UDP_BLOCK },
		{ "proxies: [socks5://a, socks5://b]\nchain: dynamic\n", SFY_UDP_BLOCK },
		{ "proxies: [socks5://a, socks5://b]\nudp: associate\n", SFY_UDP_ASSOCIATE },
		{ "proxies: [socks5://a, socks5://b]\nudp: direct\n", SFY_UDP_DIRECT },
		{ "proxies: [socks5://a, socks5://b]\nchain: random\n", SFY_UDP_ASSOCIATE },
		{ "proxies: [socks5://a, socks5://b]\nchain: round_robin\nchain_length: 2\n",
		  SFY_UDP_BLOCK },
	};
	struct sfy_config *c = *state;
	char err[SFY_ERR_MAX];

	for (size_t i = 0; i < SFY_ARRAY_LEN(t); i++) {
		if (load(c, t[i].yaml, err) || sfy_config_finish(c, err, sizeof err))
			fail_msg("%zu: %s", i, err);
		if (c->udp != t[i].udp)
			fail_msg("%zu: udp %d, want %d", i, c->udp, t[i].udp);
	}
}

static void test_env(void **state)
{
	struct sfy_config *c = *state;
	char err[SFY_ERR_MAX], p[PATH_MAX + 64], xdg[PATH_MAX + 64];
	struct stat st;

	/* Nothing anywhere: the error names every place looked at. */
	if (stat("/etc/socksify.yaml", &st) == 0 || stat(SFY_SYSCONFDIR "/socksify.yaml", &st) == 0) {
		print_message("system config present: skipping the nothing-found case\n");
	} else {
		assert_int_equal(sfy_config_from_env(c, NULL, err, sizeof err), -1);
		snprintf(p, sizeof p, "%s/.config/socksify/config.yaml", tmpdir);
		assert_null(strstr(err, "./socksify.yaml"));
		assert_non_null(strstr(err, p));
		assert_non_null(strstr(err, "/etc/socksify.yaml"));
		assert_non_null(strstr(err, SFY_SYSCONFDIR "/socksify.yaml"));
	}

	/* ~/.config is found... */
	snprintf(p, sizeof p, "%s/.config", tmpdir);
	mkdir(p, 0700);
	snprintf(p, sizeof p, "%s/.config/socksify", tmpdir);
	mkdir(p, 0700);
	snprintf(p, sizeof p, "%s/.config/socksify/config.yaml", tmpdir);
	write_file(p, "proxies: [socks5://home]\n", 0600);
	assert_int_equal(sfy_config_from_env(c, NULL, err, sizeof err), 0);
	assert_string_equal(c->proxies[0].host, "home");
	assert_string_equal(c->source, p);

	/* ... unless XDG_CONFIG_HOME points elsewhere ... */
	snprintf(xdg, sizeof xdg, "%s/xdg", tmpdir);
	mkdir(xdg, 0700);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	snprintf(xdg, sizeof xdg, "%s/xdg/socksify", tmpdir);
	mkdir(xdg, 0700);
	snprintf(xdg, sizeof xdg, "%s/xdg/socksify/config.yaml", tmpdir);
	write_file(xdg, "proxies: [socks5://xdg]\n", 0600);
	assert_int_equal(sfy_config_from_env(c, NULL, err, sizeof err), 0);
	assert_string_equal(c->proxies[0].host, "xdg");

	/* ... and ./socksify.yaml is never searched: a cloned repository
	 * must not reroute traffic. */
	write_file("socksify.yaml", "proxies: [socks5h://cwd]\nchain: dynamic\n", 0600);
	assert_int_equal(sfy_config_from_env(c, NULL, err, sizeof err), 0);
	assert_string_equal(c->proxies[0].host, "xdg");

	/* SOCKSIFY_PROXY alone: no file at all. */
	setenv("SOCKSIFY_PROXY", "socks5://e1, socks5://e2", 1);
	assert_int_equal(sfy_config_from_env(c, NULL, err, sizeof err), 0);
	assert_int_equal(c->nproxies, 2);
	assert_string_equal(c->proxies[1].host, "e2");
	assert_int_equal(c->chain, SFY_CHAIN_STRICT);
	assert_string_equal(c->source, "");

	/* SOCKSIFY_CONFIG + SOCKSIFY_PROXY: the file's other keys, the env's chain. */
	write_file("other.yaml", "proxies: [socks5://f1, socks5://f2, socks5://f3]\nudp: block\n", 0600);
	setenv("SOCKSIFY_CONFIG", "other.yaml", 1);
	assert_int_equal(sfy_config_from_env(c, NULL, err, sizeof err), 0);
	assert_int_equal(c->nproxies, 2);
	assert_string_equal(c->proxies[0].host, "e1");
	assert_int_equal(c->udp, SFY_UDP_BLOCK);
	assert_non_null(strstr(c->source, "other.yaml"));

	/* explicit_file beats SOCKSIFY_CONFIG. */
	unsetenv("SOCKSIFY_PROXY");
	assert_int_equal(sfy_config_from_env(c, "socksify.yaml", err, sizeof err), 0);
	assert_string_equal(c->proxies[0].host, "cwd");

	/* A named file that does not exist is an error, not a search. */
	setenv("SOCKSIFY_CONFIG", "missing.yaml", 1);
	assert_int_equal(sfy_config_from_env(c, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "missing.yaml"));
	unsetenv("SOCKSIFY_CONFIG");

	/* Word overrides. */
	setenv("SOCKSIFY_CHAIN", "random", 1);
	setenv("SOCKSIFY_DNS", "local", 1);
	setenv("SOCKSIFY_LOG", "debug", 1);
	assert_int_equal(sfy_config_from_env(c, NULL, err, sizeof err), 0);
	assert_int_equal(c->chain, SFY_CHAIN_RANDOM);
	assert_int_equal(c->chain_length, 1);
	assert_int_equal(c->dns, SFY_DNS_LOCAL);
	assert_int_equal(c->log_level, SFY_LOG_DEBUG);
	setenv("SOCKSIFY_DNS", "sideways", 1);
	assert_int_equal(sfy_config_from_env(c, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "SOCKSIFY_DNS"));
	unsetenv("SOCKSIFY_DNS");
	setenv("SOCKSIFY_CHAIN", "x", 1);
	assert_int_equal(sfy_config_from_env(c, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "SOCKSIFY_CHAIN"));
	unsetenv("SOCKSIFY_CHAIN");
	setenv("SOCKSIFY_LOG", "x", 1);
	assert_int_equal(sfy_config_from_env(c, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "SOCKSIFY_LOG"));
	unsetenv("SOCKSIFY_LOG");

	/* A bad SOCKSIFY_PROXY names the variable and the position. */
	setenv("SOCKSIFY_PROXY", "socks5://ok socks5://bad:x", 1);
	assert_int_equal(sfy_config_from_env(c, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "SOCKSIFY_PROXY: proxy 2:"));
	unsetenv("SOCKSIFY_PROXY");

	/* chain_length beyond a SOCKSIFY_PROXY chain is caught by finish(). */
	write_file("rr.yaml", "proxies: [socks5://a, socks5://b]\nchain: random\nchain_length: 2\n", 0600);
	setenv("SOCKSIFY_PROXY", "socks5://only", 1);
	assert_int_equal(sfy_config_from_env(c, "rr.yaml", err, sizeof err), -1);
	assert_non_null(strstr(err, "chain_length 2"));
	unsetenv("SOCKSIFY_PROXY");
}

/* The example config that `make install` ships loads and finishes cleanly. */
static void test_example(void **state)
{
	struct sfy_config *c = *state;
	const char *top = getenv("SFY_TOP");
	char path[PATH_MAX + 32], err[SFY_ERR_MAX];

	snprintf(path, sizeof path, "%s/etc/socksify.yaml", top ? top : ".");
	sfy_config_defaults(c);
	if (sfy_config_load_file(c, path, err, sizeof err) || sfy_config_finish(c, err, sizeof err))
		fail_msg("%s", err);
	assert_true(c->nproxies >= 1);
	assert_int_equal(c->connect_timeout_ms, 8000);
	assert_int_equal(c->handshake_timeout_ms, 15000);
	assert_int_equal(c->nbypass, 0);        /* no default bypass */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_words),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_finish),
		cmocka_unit_test(test_set_proxies),
		cmocka_unit_test(test_example),
		cmocka_unit_test_setup_teardown(test_perms, env_setup, env_teardown),
		cmocka_unit_test(test_udp_multihop),
		cmocka_unit_test_setup_teardown(test_env, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_hostile_files, env_setup, env_teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
