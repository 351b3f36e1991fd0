/* Routing: the compiled matcher (route.c) against the semantics of
 * RULES-DESIGN.md, each answer also checked against the linear reference
 * (route_ref.c); a differential test on random rule sets; the name plan;
 * derived per-chain configurations; the dnsmem table and its use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "dnsmem.h"
#include "route.h"
#include "route_ref.h"
#include "sfy.h"
#include "shmfd.h"
#include "routeutil.h"
#include "testutil.h"

enum { TOP = SFY_VIA_TOP, DIRECT = SFY_VIA_DIRECT, BLOCK = SFY_VIA_BLOCK };

static struct sfy_routes *build(const struct sfy_config *c)
{
	char err[SFY_ERR_MAX];
	struct sfy_routes *rt = sfy_routes_build(c, err, sizeof(err));
	if (!rt)
		fail_msg("build: %s", err);
	return rt;
}

static struct sockaddr_storage sa_of(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	sa_text(&ss, ip, port);
	return ss;
}

/* The route for a name or (name NULL) an address; compiled and reference
 * must agree. */
static struct sfy_route route(const struct sfy_routes *rt, const char *name, const char *ip,
			      uint16_t port)
{
	struct sfy_route a, b;
	struct sockaddr_storage ss;
	const struct sockaddr *sa = NULL;
	if (ip) {
		ss = sa_of(ip, port);
		sa = (const struct sockaddr *)&ss;
	}
	sfy_route_match(rt, name, sa, port, &a);
	sfy_route_match_ref(rt, name, sa, port, &b);
	if (a.kind != b.kind || a.via != b.via || a.rule != b.rule || a.cfg != b.cfg)
		fail_msg("%s %s:%u: compiled via %d rule %d, reference via %d rule %d",
			 name ? name : "-", ip ? ip : "-", port, a.via, a.rule, b.via, b.rule);
	assert_non_null(a.cfg);
	return a;
}

/* via and rule (1-based effective index, 0 = default) of a destination. */
#define WANT(rt, name, ip, port, want_via, want_rule) do { \
	struct sfy_route r_ = route((rt), (name), (ip), (port)); \
	char what_[128]; \
	snprintf(what_, sizeof(what_), "%s %s:%u", (name) ? (name) : "-", (ip) ? (ip) : "-", \
		 (unsigned)(port)); \
	EQ(r_.via, (want_via), what_); \
	EQ(r_.rule + 1, (want_rule), what_); \
} while (0)

static enum sfy_name_plan plan(const struct sfy_routes *rt, const char *name, int port)
{
	enum sfy_name_plan a = sfy_route_name_plan(rt, name, port);
	enum sfy_name_plan b = sfy_route_name_plan_ref(rt, name, port);
	if (a != b)
		fail_msg("plan %s:%d: compiled %d, reference %d", name, port, a, b);
	return a;
}

static int setup(void **state)
{
	(void)state;
	sfy_dnsmem_detach(true);
	return 0;
}

/* -r first, then no_proxy, then bypass:, then rules: -- whatever order
 * they sit in cfg->rules. */
static void test_origin_order(void **state)
{
	(void)state;
	struct sfy_config *c = rb_new("socks5h://127.0.0.1:1080", SFY_DNS_REMOTE);
	int tor = rb_chain(c, "tor", "socks5h://127.0.0.1:9050", SFY_DNS_REMOTE, SFY_CHAIN_STRICT);
	assert_true(rb_rule(c, SFY_RO_FILE, "10.0.0.0/8", 0, 0, tor));           /* eff 4 */
	assert_true(rb_rule(c, SFY_RO_NOPROXY, "10.1.0.0/16", 0, 0, DIRECT));    /* eff 2 */
	assert_true(rb_rule(c, SFY_RO_CLI, "10.1.1.0/24", 0, 0, BLOCK));         /* eff 1 */
	assert_true(sfy_cidr_parse("10.0.0.0/8", &c->bypass[0], NULL, 0) == 0);   /* eff 3 */
	c->nbypass = 1;
	struct sfy_routes *rt = build(c);
	assert_true(sfy_routes_active(rt));
	WANT(rt, NULL, "10.1.1.1", 80, BLOCK, 1);
	WANT(rt, NULL, "10.1.2.1", 80, DIRECT, 2);
	WANT(rt, NULL, "10.2.0.1", 80, DIRECT, 3);      /* bypass before rules: */
	WANT(rt, NULL, "11.0.0.1", 80, TOP, 0);
	char d[256];
	struct sfy_route r = route(rt, NULL, "10.2.0.1", 80);
	sfy_route_describe(rt, &r, d, sizeof(d));
	assert_string_equal(d, "rule 3 (bypass 1: 10.0.0.0/8=direct)");
	r = route(rt, NULL, "10.1.1.1", 80);
	sfy_route_describe(rt, &r, d, sizeof(d));
	assert_string_equal(d, "rule 1 (-r 3: 10.1.1.0/24=block)");
	r = route(rt, NULL, "11.0.0.1", 80);
	sfy_route_describe(rt, &r, d, sizeof(d));
	assert_string_equal(d, "default (proxies)");
	sfy_routes_free(rt);
	rb_free(c);
}

static void test_globs_exact_suffix(void **state)
{
	(void)state;
	struct sfy_config *c = rb_new("socks5h://127.0.0.1:1080", SFY_DNS_REMOTE);
	int w = rb_chain(c, "work", "socks5://10.9.9.9:1080", SFY_DNS_REMOTE, SFY_CHAIN_STRICT);
	assert_true(rb_rule(c, SFY_RO_FILE, "*.example.com", 0, 0, w));        /* 1 */
	assert_true(rb_rule(c, SFY_RO_FILE, "example.com", 0, 0, BLOCK));      /* 2 */
	assert_true(rb_rule(c, SFY_RO_FILE, "Other.ORG", 0, 0, DIRECT));       /* 3 */
	assert_true(rb_rule(c, SFY_RO_FILE, "*.b.other.org", 0, 0, BLOCK));    /* 4 */
	struct sfy_routes *rt = build(c);
	WANT(rt, "a.example.com", NULL, 443, w, 1);
	WANT(rt, "x.y.z.example.com", NULL, 443, w, 1);
	WANT(rt, "A.Example.COM.", NULL, 443, w, 1);            /* case, trailing dot */
	WANT(rt, "example.com", NULL, 443, BLOCK, 2);           /* *. needs a label */
	WANT(rt, "EXAMPLE.com.", NULL, 443, BLOCK, 2);
	WANT(rt, "xexample.com", NULL, 443, TOP, 0);            /* not a label boundary */
	WANT(rt, ".example.com", NULL, 443, TOP, 0);
	WANT(rt, "example.com.evil", NULL, 443, TOP, 0);
	WANT(rt, "other.org", NULL, 80, DIRECT, 3);
	WANT(rt, "www.other.org", NULL, 80, TOP, 0);            /* exact is exact */
	WANT(rt, "a.b.other.org", NULL, 80, BLOCK, 4);
	WANT(rt, "b.other.org", NULL, 80, TOP, 0);
	WANT(rt, "example.com..", NULL, 80, TOP, 0);            /* one trailing dot only */
	/* Host rules never match an address, CIDR rules never a name. */
	WANT(rt, NULL, "93.184.216.34", 443, TOP, 0);
	sfy_routes_free(rt);
	rb_free(c);
}

static void test_ports_and_first_match(void **state)
{
	(void)state;
	struct sfy_config *c = rb_new("socks5h://127.0.0.1:1080", SFY_DNS_REMOTE);
	assert_true(rb_rule(c, SFY_RO_FILE, "*", 25, 25, BLOCK));                 /* 1 */
	assert_true(rb_rule(c, SFY_RO_FILE, "*.example.com", 8000, 8999, DIRECT)); /* 2 */
	assert_true(rb_rule(c, SFY_RO_FILE, "*.example.com", 0, 0, BLOCK));        /* 3 */
	assert_true(rb_rule(c, SFY_RO_FILE, "a.example.com", 0, 0, DIRECT));       /* 4: shadowed */
	assert_true(rb_rule(c, SFY_RO_FILE, "192.168.0.0/16", 22, 22, DIRECT));    /* 5 */
	assert_true(rb_rule(c, SFY_RO_FILE, "*", 1, 1024, BLOCK));                 /* 6 */
	struct sfy_routes *rt = build(c);
	WANT(rt, "a.example.com", NULL, 25, BLOCK, 1);
	WANT(rt, NULL, "1.2.3.4", 25, BLOCK, 1);
	WANT(rt, "a.example.com", NULL, 8000, DIRECT, 2);
	WANT(rt, "a.example.com", NULL, 8999, DIRECT, 2);
	WANT(rt, "a.example.com", NULL, 9000, BLOCK, 3);
	WANT(rt, "a.example.com", NULL, 7999, BLOCK, 3);
	WANT(rt, NULL, "192.168.1.1", 22, DIRECT, 5);
	WANT(rt, NULL, "192.168.1.1", 23, BLOCK, 6);
	WANT(rt, NULL, "192.168.1.1", 1025, TOP, 0);
	WANT(rt, "x.org", NULL, 1024, BLOCK, 6);
	WANT(rt, "x.org", NULL, 65535, TOP, 0);
	WANT(rt, "x.org", NULL, 0, TOP, 0);                     /* port 0 is not a port */
	char d[256];
	struct sfy_route r = route(rt, "a.example.com", NULL, 8001);
	sfy_route_describe(rt, &r, d, sizeof(d));
	assert_string_equal(d, "rule 2 (config:2: *.example.com:8000-8999=direct)");
	r = route(rt, "a.example.com", NULL, 25);
	sfy_route_describe(rt, &r, d, sizeof(d));
	assert_string_equal(d, "rule 1 (config:1: *:25=block)");
	sfy_routes_free(rt);
	rb_free(c);
}

static void test_cidr_families(void **state)
{
	(void)state;
	struct sfy_config *c = rb_new("socks5://127.0.0.1:1080", SFY_DNS_LOCAL);
	assert_true(rb_rule(c, SFY_RO_FILE, "10.0.0.1", 0, 0, BLOCK));            /* 1 */
	assert_true(rb_rule(c, SFY_RO_FILE, "10.0.0.0/8", 0, 0, DIRECT));         /* 2 */
	assert_true(rb_rule(c, SFY_RO_FILE, "fd00::/8", 22, 22, DIRECT));         /* 3 */
	assert_true(rb_rule(c, SFY_RO_FILE, "fd00::1/128", 0, 0, BLOCK));         /* 4 */
	assert_true(rb_rule(c, SFY_RO_FILE, "::/0", 0, 0, BLOCK));                /* 5 */
	assert_true(rb_rule(c, SFY_RO_FILE, "0.0.0.0/0", 443, 443, DIRECT));      /* 6 */
	struct sfy_routes *rt = build(c);
	WANT(rt, NULL, "10.0.0.1", 80, BLOCK, 1);
	WANT(rt, NULL, "10.0.0.2", 80, DIRECT, 2);
	WANT(rt, NULL, "::ffff:10.0.0.1", 80, BLOCK, 1);        /* v4-mapped is v4 */
	WANT(rt, NULL, "::ffff:10.200.0.1", 80, DIRECT, 2);
	WANT(rt, NULL, "::ffff:11.0.0.1", 80, TOP, 0);          /* not ::/0 */
	WANT(rt, NULL, "::ffff:11.0.0.1", 443, DIRECT, 6);
	WANT(rt, NULL, "fd12:3456::1", 22, DIRECT, 3);
	WANT(rt, NULL, "fd00::1", 22, DIRECT, 3);
	WANT(rt, NULL, "fd00::1", 23, BLOCK, 4);
	WANT(rt, NULL, "fe00::1", 22, BLOCK, 5);
	WANT(rt, NULL, "8.8.8.8", 443, DIRECT, 6);
	WANT(rt, NULL, "8.8.8.8", 444, TOP, 0);
	sfy_routes_free(rt);
	rb_free(c);
}

/* default: absent -> the top-level chain; direct, block or a chain. */
static void test_default(void **state)
{
	(void)state;
	static const int vias[] = { TOP, DIRECT, BLOCK, 0 };
	for (size_t i = 0; i < 4; i++) {
		struct sfy_config *c = rb_new("socks5h://127.0.0.1:1080", SFY_DNS_REMOTE);
		rb_chain(c, "tor", "socks5h://127.0.0.1:9050", SFY_DNS_REMOTE, SFY_CHAIN_STRICT);
		c->default_via = (int16_t)vias[i];
		c->default_line = vias[i] != TOP ? 3 : 0;
		struct sfy_routes *rt = build(c);
		struct sfy_route r = route(rt, "x.org", NULL, 80);
		EQ(r.via, vias[i], "default");
		EQ(r.rule, SFY_RULE_DEFAULT, "default rule");
		EQ(r.kind, vias[i] == DIRECT ? SFY_ROUTE_DIRECT : vias[i] == BLOCK ? SFY_ROUTE_BLOCK
			 : SFY_ROUTE_CHAIN, "kind");
		if (vias[i] == TOP)
			assert_ptr_equal(r.cfg, c);
		if (vias[i] == DIRECT)
			EQ(r.cfg->nproxies, 0, "direct has no hops");
		if (vias[i] == 0) {
			EQ(r.cfg->nproxies, 1, "tor hops");
			EQ(r.cfg->proxies[0].port, 9050, "tor hop");
		}
		r = route(rt, NULL, "1.2.3.4", 80);
		EQ(r.via, vias[i], "default for an address");
		sfy_routes_free(rt);
		rb_free(c);
	}
	/* No top-level proxies and a rule or default naming them: blocked,
	 * never a chain of no hops. */
	struct sfy_config *c = rb_new(NULL, SFY_DNS_LOCAL);
	c->default_via = TOP;
	struct sfy_routes *rt = build(c);
	struct sfy_route r = route(rt, "x.org", NULL, 80);
	EQ(r.kind, SFY_ROUTE_BLOCK, "top without proxies");
	sfy_routes_free(rt);
	/* A chain whose hops are not a slice of chain_proxies, and a verdict
	 * naming no chain at all: blocked too. */
	int bad = rb_chain(c, "bad", "socks5://10.0.0.1:1", SFY_DNS_LOCAL, SFY_CHAIN_STRICT);
	c->chains[bad].first = 30;
	c->chains[bad].n = 5;
	assert_true(rb_rule(c, SFY_RO_FILE, "bad.x", 0, 0, bad));
	assert_true(rb_rule(c, SFY_RO_FILE, "none.x", 0, 0, 7));
	c->default_via = DIRECT;
	rt = build(c);
	r = route(rt, "bad.x", NULL, 80);
	EQ(r.kind, SFY_ROUTE_BLOCK, "chain of no hops");
	r = route(rt, "none.x", NULL, 80);
	EQ(r.kind, SFY_ROUTE_BLOCK, "no such chain");
	sfy_routes_free(rt);
	rb_free(c);
}

/* Remote DNS: a direct rule covers port 53 only when it names port 53. */
static void test_port53(void **state)
{
	(void)state;
	for (int remote = 0; remote < 2; remote++) {
		struct sfy_config *c = rb_new("socks5h://127.0.0.1:1080",
					      remote ? SFY_DNS_REMOTE : SFY_DNS_LOCAL);
		assert_true(rb_rule(c, SFY_RO_FILE, "127.0.0.53", 53, 53, DIRECT));   /* 1 */
		assert_true(rb_rule(c, SFY_RO_FILE, "127.0.0.0/8", 0, 0, DIRECT));    /* 2 */
		assert_true(rb_rule(c, SFY_RO_FILE, "*.lan", 0, 0, DIRECT));          /* 3 */
		assert_true(rb_rule(c, SFY_RO_FILE, "*", 50, 60, DIRECT));            /* 4 */
		struct sfy_routes *rt = build(c);
		EQ(sfy_routes_remote(rt), remote, "remote");
		WANT(rt, NULL, "127.0.0.53", 53, DIRECT, 1);
		WANT(rt, NULL, "127.0.0.1", 53, remote ? TOP : DIRECT, remote ? 0 : 2);
		WANT(rt, NULL, "127.0.0.1", 54, DIRECT, 2);
		WANT(rt, "ns.lan", NULL, 53, remote ? TOP : DIRECT, remote ? 0 : 3);
		WANT(rt, "ns.lan", NULL, 80, DIRECT, 3);
		WANT(rt, "x.org", NULL, 53, remote ? TOP : DIRECT, remote ? 0 : 4);
		WANT(rt, "x.org", NULL, 55, DIRECT, 4);
		sfy_routes_free(rt);
		rb_free(c);
	}
}

/* Review finding 3: a direct default: is no way around the port-53 rule
 * in remote-DNS mode -- a program's own query to a nameserver must not go
 * out directly unless a rule names port 53 itself. The lookup plan (a
 * service of 53/"domain") and the reference agree. */
static void test_port53_direct_default(void **state)
{
	(void)state;
	for (int remote = 0; remote < 2; remote++) {
		struct sfy_config *c = rb_new("socks5h://127.0.0.1:1080",
					      remote ? SFY_DNS_REMOTE : SFY_DNS_LOCAL);
		assert_true(rb_rule(c, SFY_RO_FILE, "10.53.0.1", 53, 53, DIRECT));  /* 1 */
		assert_true(rb_rule(c, SFY_RO_FILE, "ns.lan", 53, 53, DIRECT));     /* 2 */
		assert_true(rb_rule(c, SFY_RO_FILE, "*.lan", 0, 0, DIRECT));        /* 3 */
		c->default_via = DIRECT;
		c->default_line = 7;
		struct sfy_routes *rt = build(c);
		EQ(sfy_routes_remote(rt), remote, "remote");
		WANT(rt, NULL, "127.0.0.1", 53, remote ? BLOCK : DIRECT, 0);
		WANT(rt, NULL, "::1", 53, remote ? BLOCK : DIRECT, 0);
		WANT(rt, NULL, "127.0.0.1", 54, DIRECT, 0);
		WANT(rt, NULL, "10.53.0.1", 53, DIRECT, 1);             /* names port 53 */
		WANT(rt, "x.org", NULL, 53, remote ? BLOCK : DIRECT, 0);
		WANT(rt, "x.org", NULL, 443, DIRECT, 0);
		WANT(rt, "ns.lan", NULL, 53, DIRECT, 2);
		WANT(rt, "a.lan", NULL, 53, remote ? BLOCK : DIRECT, remote ? 0 : 3);
		EQ(plan(rt, "x.org", 53), remote ? SFY_PLAN_BLOCK : SFY_PLAN_LOCAL, "service 53");
		EQ(plan(rt, "x.org", 443), SFY_PLAN_LOCAL, "service 443");
		EQ(plan(rt, "x.org", -1), SFY_PLAN_LOCAL, "no service");
		EQ(plan(rt, "ns.lan", 53), SFY_PLAN_LOCAL, "a rule names 53");
		char d[256];
		struct sfy_route r = route(rt, NULL, "127.0.0.1", 53);
		sfy_route_describe(rt, &r, d, sizeof(d));
		assert_string_equal(d, remote ? "default (block)" : "default (direct)");
		sfy_routes_free(rt);
		rb_free(c);
	}
}

/* .onion/.exit/.i2p never go direct: the rule is skipped, a direct
 * default blocks them. */
static void test_special_tlds(void **state)
{
	(void)state;
	struct sfy_config *c = rb_new("socks5h://127.0.0.1:1080", SFY_DNS_REMOTE);
	int tor = rb_chain(c, "tor", "socks5h://127.0.0.1:9050", SFY_DNS_REMOTE, SFY_CHAIN_STRICT);
	assert_true(rb_rule(c, SFY_RO_FILE, "*.i2p", 0, 0, tor));          /* 1 */
	assert_true(rb_rule(c, SFY_RO_FILE, "*", 80, 80, DIRECT));         /* 2 */
	assert_true(rb_rule(c, SFY_RO_FILE, "*.onion", 0, 0, DIRECT));     /* 3: invalid in a file */
	c->default_via = DIRECT;
	c->default_line = 9;
	struct sfy_routes *rt = build(c);
	WANT(rt, "abc.onion", NULL, 80, BLOCK, 0);
	WANT(rt, "abc.ONION.", NULL, 443, BLOCK, 0);
	WANT(rt, "onion", NULL, 443, BLOCK, 0);
	WANT(rt, "x.exit", NULL, 80, BLOCK, 0);
	WANT(rt, "x.i2p", NULL, 80, tor, 1);
	WANT(rt, "xonion", NULL, 80, DIRECT, 2);
	WANT(rt, "x.org", NULL, 443, DIRECT, 0);
	EQ(plan(rt, "abc.onion", -1), SFY_PLAN_BLOCK, "onion plan");
	EQ(plan(rt, "x.i2p", -1), SFY_PLAN_FAKE, "i2p plan");
	sfy_routes_free(rt);
	rb_free(c);
}

/* Review finding 2: a .onion/.exit/.i2p name is never resolved locally,
 * whatever the DNS mode of the routes it can take: FAKE when some chain
 * can carry the name to its last hop (any protocol but socks4; then chain.c
 * hands it over by name even in local-DNS mode), BLOCK otherwise -- also
 * when no route is remote (issue 14: in any mode). */
static void test_special_never_local(void **state)
{
	(void)state;
	/* Remote routes exist (the top chain); the onion rule's chain is
	 * local-DNS with a socks5 last hop: it carries the name. */
	struct sfy_config *c = rb_new("socks5h://127.0.0.1:1080", SFY_DNS_REMOTE);
	int s5 = rb_chain(c, "s5", "socks5://10.0.0.1:1080", SFY_DNS_LOCAL, SFY_CHAIN_STRICT);
	int s4 = rb_chain(c, "s4", "socks5://10.0.0.1:1080 socks4://10.0.0.2:1080", SFY_DNS_LOCAL,
			  SFY_CHAIN_STRICT);
	int r4 = rb_chain(c, "r4", "socks4://10.0.0.1:1080 socks5://10.0.0.2:1080", SFY_DNS_LOCAL,
			  SFY_CHAIN_RANDOM);
	assert_true(rb_rule(c, SFY_RO_FILE, "*.onion", 0, 0, s5));         /* 1 */
	assert_true(rb_rule(c, SFY_RO_FILE, "*.exit", 0, 0, s4));          /* 2 */
	assert_true(rb_rule(c, SFY_RO_FILE, "*.i2p", 0, 0, r4));           /* 3 */
	assert_true(rb_rule(c, SFY_RO_FILE, "git.corp", 0, 0, s5));        /* 4 */
	struct sfy_routes *rt = build(c);
	EQ(plan(rt, "abc.onion", -1), SFY_PLAN_FAKE, "local-DNS chain, socks5 last hop");
	EQ(plan(rt, "abc.onion", 80), SFY_PLAN_FAKE, "with a port");
	EQ(plan(rt, "git.corp", -1), SFY_PLAN_LOCAL, "an ordinary name: local");
	EQ(plan(rt, "x.exit", -1), SFY_PLAN_BLOCK, "socks4 last hop: no way to carry it");
	EQ(plan(rt, "x.i2p", -1), SFY_PLAN_FAKE, "random: a socks5 hop may be last");
	sfy_routes_free(rt);
	rb_free(c);

	/* Only local routes, and a rule: the real resolver must not be asked. */
	c = rb_new("socks5://127.0.0.1:1080", SFY_DNS_LOCAL);
	assert_true(rb_rule(c, SFY_RO_FILE, "ads.example", 0, 0, BLOCK));
	rt = build(c);
	EQ(sfy_routes_remote(rt), 0, "not remote");
	EQ(plan(rt, "abcdef.onion", -1), SFY_PLAN_FAKE, "local mode: onion");
	EQ(plan(rt, "abcdef.onion", 443), SFY_PLAN_FAKE, "local mode: onion, port");
	EQ(plan(rt, "www.example", -1), SFY_PLAN_LOCAL, "local mode: others resolve");
	sfy_routes_free(rt);
	rb_free(c);

	/* Direct default, no chain at all. */
	c = rb_new(NULL, SFY_DNS_LOCAL);
	assert_true(rb_rule(c, SFY_RO_FILE, "ads.example", 0, 0, BLOCK));
	c->default_via = DIRECT;
	c->default_line = 1;
	rt = build(c);
	EQ(plan(rt, "x.onion", -1), SFY_PLAN_BLOCK, "direct only");
	WANT(rt, "x.onion", NULL, 80, BLOCK, 0);
	sfy_routes_free(rt);
	rb_free(c);
}

static void test_name_plan(void **state)
{
	(void)state;
	struct sfy_config *c = rb_new("socks5h://127.0.0.1:1080", SFY_DNS_REMOTE);
	int loc = rb_chain(c, "loc", "socks5://10.0.0.1:1080", SFY_DNS_AUTO, SFY_CHAIN_STRICT);
	int rem = rb_chain(c, "rem", "socks5h://10.0.0.2:1080", SFY_DNS_AUTO, SFY_CHAIN_STRICT);
	assert_true(rb_rule(c, SFY_RO_FILE, "ads.example", 0, 0, BLOCK));          /* 1 */
	assert_true(rb_rule(c, SFY_RO_FILE, "*.lan", 0, 0, DIRECT));              /* 2 */
	assert_true(rb_rule(c, SFY_RO_FILE, "*.corp", 0, 0, loc));                 /* 3 */
	assert_true(rb_rule(c, SFY_RO_FILE, "*.mixed", 443, 443, DIRECT));         /* 4 */
	assert_true(rb_rule(c, SFY_RO_FILE, "*.mixed", 0, 0, rem));                /* 5 */
	assert_true(rb_rule(c, SFY_RO_FILE, "*.ports", 25, 25, BLOCK));            /* 6 */
	assert_true(rb_rule(c, SFY_RO_FILE, "*.ports", 0, 0, BLOCK));              /* 7 */
	assert_true(rb_rule(c, SFY_RO_FILE, "*.half", 25, 25, BLOCK));             /* 8 */
	assert_true(rb_rule(c, SFY_RO_FILE, "10.0.0.0/8", 0, 0, BLOCK));           /* 9: no address yet */
	struct sfy_routes *rt = build(c);
	EQ(sfy_routes_remote(rt), 1, "remote");
	EQ(plan(rt, "ads.example", -1), SFY_PLAN_BLOCK, "blocked name");
	EQ(plan(rt, "ADS.example.", 80), SFY_PLAN_BLOCK, "blocked name, port");
	EQ(plan(rt, "www.ads.example", -1), SFY_PLAN_FAKE, "not the exact name");
	EQ(plan(rt, "nas.lan", -1), SFY_PLAN_LOCAL, "direct");
	EQ(plan(rt, "git.corp", -1), SFY_PLAN_LOCAL, "local-DNS chain");
	EQ(plan(rt, "a.mixed", -1), SFY_PLAN_FAKE, "direct on 443, remote chain else");
	EQ(plan(rt, "a.mixed", 443), SFY_PLAN_LOCAL, "with the port known");
	EQ(plan(rt, "a.mixed", 80), SFY_PLAN_FAKE, "port 80: remote chain");
	EQ(plan(rt, "a.ports", -1), SFY_PLAN_BLOCK, "blocked on every port");
	EQ(plan(rt, "a.half", -1), SFY_PLAN_FAKE, "blocked on one port only");
	EQ(plan(rt, "a.half", 25), SFY_PLAN_BLOCK, "that port");
	EQ(plan(rt, "x.org", -1), SFY_PLAN_FAKE, "default: the remote top chain");
	sfy_routes_free(rt);
	rb_free(c);

	/* Nothing remote at all: never FAKE. */
	c = rb_new("socks5://127.0.0.1:1080", SFY_DNS_LOCAL);
	assert_true(rb_rule(c, SFY_RO_FILE, "*.half", 25, 25, BLOCK));
	assert_true(rb_rule(c, SFY_RO_FILE, "ads.example", 0, 0, BLOCK));
	rt = build(c);
	EQ(sfy_routes_remote(rt), 0, "not remote");
	EQ(plan(rt, "a.half", -1), SFY_PLAN_LOCAL, "local only");
	/* Never to the real resolver: a fake address, the socks5 chain takes
	 * the name. */
	EQ(plan(rt, "x.onion", -1), SFY_PLAN_FAKE, "local only: an onion name goes by name");
	EQ(plan(rt, "x.exit", 80), SFY_PLAN_FAKE, "and an exit name");
	EQ(plan(rt, "ads.example", -1), SFY_PLAN_BLOCK, "blocked");
	sfy_routes_free(rt);
	rb_free(c);
}

/* Per-chain configurations: hops, mode, dns, and the udp multihop rule
 * applied to each chain itself. */
static void test_derived(void **state)
{
	(void)state;
	struct sfy_config *c = rb_new("socks5h://127.0.0.1:1080 socks5h://127.0.0.1:1081",
				      SFY_DNS_REMOTE);
	c->udp = SFY_UDP_BLOCK;         /* what finish made of it for the 2-hop top chain */
	int one = rb_chain(c, "one", "socks5://10.0.0.1:1080", SFY_DNS_AUTO, SFY_CHAIN_STRICT);
	int two = rb_chain(c, "two", "socks5://10.0.0.1:1080 socks4a://10.0.0.2:1080",
			   SFY_DNS_AUTO, SFY_CHAIN_STRICT);
	int rnd = rb_chain(c, "rnd", "socks5://10.0.0.1:1080 socks5://10.0.0.3:1080",
			   SFY_DNS_LOCAL, SFY_CHAIN_RANDOM);
	assert_true(rb_rule(c, SFY_RO_FILE, "one.x", 0, 0, one));
	assert_true(rb_rule(c, SFY_RO_FILE, "two.x", 0, 0, two));
	assert_true(rb_rule(c, SFY_RO_FILE, "rnd.x", 0, 0, rnd));
	assert_true(rb_rule(c, SFY_RO_FILE, "dir.x", 0, 0, DIRECT));
	struct sfy_routes *rt = build(c);
	struct sfy_route r = route(rt, "one.x", NULL, 80);
	EQ(r.cfg->nproxies, 1, "one: hops");
	EQ(r.cfg->dns, SFY_DNS_LOCAL, "one: socks5 resolves nothing");
	EQ(r.cfg->udp, SFY_UDP_ASSOCIATE, "one hop: associate");
	r = route(rt, "two.x", NULL, 80);
	EQ(r.cfg->nproxies, 2, "two: hops");
	EQ(r.cfg->proxies[1].proto, SFY_PROTO_SOCKS4A, "two: hop 2");
	EQ(r.cfg->dns, SFY_DNS_REMOTE, "two: socks4a resolves");
	EQ(r.cfg->udp, SFY_UDP_BLOCK, "two hops: block");
	r = route(rt, "rnd.x", NULL, 80);
	EQ(r.cfg->chain, SFY_CHAIN_RANDOM, "rnd mode");
	EQ(r.cfg->chain_length, 1, "rnd length defaults to 1");
	EQ(r.cfg->udp, SFY_UDP_ASSOCIATE, "random of length 1: associate");
	r = route(rt, "dir.x", NULL, 80);
	EQ(r.kind, SFY_ROUTE_DIRECT, "direct");
	EQ(r.cfg->nproxies, 0, "direct: no hops");
	r = route(rt, "other.x", NULL, 80);
	assert_ptr_equal(r.cfg, c);
	sfy_routes_free(rt);
	/* udp: given in the file stays as given. */
	c->udp_explicit = true;
	c->udp = SFY_UDP_ASSOCIATE;
	rt = build(c);
	r = route(rt, "two.x", NULL, 80);
	EQ(r.cfg->udp, SFY_UDP_ASSOCIATE, "explicit udp kept");
	sfy_routes_free(rt);
	rb_free(c);
}

/* dns: proxy anywhere -- the top-level chain or a named one -- and only
 * then: the flag the lookups' chain_for checks first (dns_proxy.c). */
static void test_any_proxy(void **state)
{
	(void)state;
	static const struct {
		enum sfy_dns_mode top, chain;
		bool proxy;
	} cases[] = {
		{ SFY_DNS_REMOTE, SFY_DNS_LOCAL, false },
		{ SFY_DNS_PROXY, SFY_DNS_LOCAL, true },
		{ SFY_DNS_LOCAL, SFY_DNS_PROXY, true },
		{ SFY_DNS_LOCAL, SFY_DNS_AUTO, false },         /* socks5h: remote */
	};
	for (size_t i = 0; i < SFY_ARRAY_LEN(cases); i++) {
		struct sfy_config *c = rb_new("socks5h://127.0.0.1:1080", cases[i].top);
		struct sfy_routes *rt = build(c);
		EQ(sfy_routes_proxy(rt), cases[i].top == SFY_DNS_PROXY, "no chains");
		sfy_routes_free(rt);
		int t = rb_chain(c, "t", "socks5h://127.0.0.1:9050", cases[i].chain,
				 SFY_CHAIN_STRICT);
		assert_true(rb_rule(c, SFY_RO_FILE, "*.onion", 0, 0, t));
		rt = build(c);
		EQ(sfy_routes_proxy(rt), cases[i].proxy, "with a chain");
		sfy_routes_free(rt);
		rb_free(c);
	}
}

/* A real address with the names local DNS gave it: each name with the
 * address, the most restrictive verdict (block > chain > direct). */
static void test_dnsmem_most_restrictive(void **state)
{
	(void)state;
	struct sfy_config *c = rb_new("socks5://127.0.0.1:1080", SFY_DNS_LOCAL);
	int w = rb_chain(c, "work", "socks5://10.0.0.1:1080", SFY_DNS_LOCAL, SFY_CHAIN_STRICT);
	assert_true(rb_rule(c, SFY_RO_FILE, "*.cdn.example", 0, 0, DIRECT));   /* 1 */
	assert_true(rb_rule(c, SFY_RO_FILE, "work.example", 0, 0, w));         /* 2 */
	assert_true(rb_rule(c, SFY_RO_FILE, "ads.example", 25, 25, BLOCK));    /* 3 */
	assert_true(rb_rule(c, SFY_RO_FILE, "203.0.113.0/24", 0, 0, DIRECT));  /* 4 */
	c->default_via = DIRECT;
	c->default_line = 1;
	struct sfy_routes *rt = build(c);
	struct sockaddr_storage a = sa_of("198.51.100.7", 0), b = sa_of("203.0.113.9", 0);
	socklen_t l4 = sizeof(struct sockaddr_in);
	WANT(rt, NULL, "198.51.100.7", 443, DIRECT, 0);
	sfy_dnsmem_add("img.cdn.example", (struct sockaddr *)&a, l4, 0);
	WANT(rt, NULL, "198.51.100.7", 443, DIRECT, 1);
	sfy_dnsmem_add("work.example", (struct sockaddr *)&a, l4, 1);
	WANT(rt, NULL, "198.51.100.7", 443, w, 2);               /* chain > direct */
	WANT(rt, NULL, "::ffff:198.51.100.7", 443, w, 2);         /* v4-mapped */
	sfy_dnsmem_add("ADS.example.", (struct sockaddr *)&a, l4, 2);
	WANT(rt, NULL, "198.51.100.7", 25, BLOCK, 3);             /* block > chain */
	WANT(rt, NULL, "198.51.100.7", 443, w, 2);
	/* The address rule counts with each name. */
	sfy_dnsmem_add("img.cdn.example", (struct sockaddr *)&b, l4, 0);
	WANT(rt, NULL, "203.0.113.9", 80, DIRECT, 1);
	sfy_routes_free(rt);
	rb_free(c);
}

/* ---- differential: compiled vs reference on random rule sets ---------- */

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? (uint32_t)(rng % n) : 0;
}

static const char *const labels[] = { "a", "b", "c", "example", "com", "onion", "lan", "x-y", "B" };

static void rand_name(char *out, size_t cap)
{
	size_t o = 0;
	unsigned n = 1 + rnd(4);
	for (unsigned i = 0; i < n && o + 16 < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "." : "",
				      labels[rnd(SFY_ARRAY_LEN(labels))]);
	if (rnd(8) == 0)
		snprintf(out + o, cap - o, ".");
}

static void rand_ip(char *out, size_t cap, bool v6)
{
	if (v6)
		snprintf(out, cap, "fd%02x:%x::%x", rnd(3), rnd(3), rnd(4));
	else if (rnd(4) == 0)
		snprintf(out, cap, "::ffff:10.%u.%u.%u", rnd(3), rnd(3), rnd(4));
	else
		snprintf(out, cap, "10.%u.%u.%u", rnd(3), rnd(3), rnd(4));
}

static void test_differential(void **state)
{
	(void)state;
	for (int round = 0; round < 300; round++) {
		struct sfy_config *c = rb_new("socks5h://127.0.0.1:1080",
					      rnd(2) ? SFY_DNS_REMOTE : SFY_DNS_LOCAL);
		int nch = (int)rnd(3);
		for (int i = 0; i < nch; i++) {
			char nm[8];
			snprintf(nm, sizeof(nm), "c%d", i);
			rb_chain(c, nm, rnd(2) ? "socks5://10.0.0.1:1" : "socks5h://10.0.0.1:1",
				 SFY_DNS_AUTO, SFY_CHAIN_STRICT);
		}
		unsigned nrules = rnd(round < 200 ? 30 : 400);
		for (unsigned i = 0; i < nrules; i++) {
			char m[300], ip[64];
			unsigned k = rnd(10), lo = 0, hi = 0;
			if (k == 0) {
				snprintf(m, sizeof(m), "*");
			} else if (k < 4) {
				rand_name(m + 2, sizeof(m) - 2);
				m[0] = '*';
				m[1] = '.';
				size_t l = strlen(m);
				if (m[l - 1] == '.')
					m[l - 1] = '\0';
			} else if (k < 6) {
				rand_name(m, sizeof(m));
				size_t l = strlen(m);
				if (m[l - 1] == '.')
					m[l - 1] = '\0';
			} else {
				bool v6 = rnd(3) == 0;
				rand_ip(ip, sizeof(ip), v6);
				unsigned p = v6 ? 128 - rnd(3) * 8 - rnd(2) * 60 - rnd(2) * 5
						: 32 - rnd(4) * 8 + (rnd(2) ? 0 : 0) - rnd(2) * 3;
				/* host bits must be clear: parse, then rebuild */
				struct sfy_cidr cd;
				char full[96];
				snprintf(full, sizeof(full), "%s", ip);
				if (sfy_cidr_parse(full, &cd, NULL, 0))
					fail_msg("%s", full);
				unsigned maxp = cd.family == AF_INET ? 32 : 128;
				if (p > maxp)
					p = maxp;
				char txt[INET6_ADDRSTRLEN];
				uint8_t net[16] = { 0 };
				for (unsigned b = 0; b < p; b++)
					net[b / 8] |= cd.addr[b / 8] & (0x80 >> (b % 8));
				inet_ntop(cd.family, net, txt, sizeof(txt));
				snprintf(m, sizeof(m), "%s/%u", txt, p);
			}
			if (rnd(3) == 0) {
				static const unsigned ports[] = { 53, 80, 443, 25 };
				lo = ports[rnd(4)];
				hi = rnd(2) ? lo : lo + rnd(500);
			}
			int via = (int)rnd((unsigned)nch + 3) - 3;
			if (via == SFY_VIA_TOP)
				via = SFY_VIA_DIRECT;
			static const uint8_t origins[] = { SFY_RO_CLI, SFY_RO_NOPROXY, SFY_RO_FILE };
			if (!rb_rule(c, origins[rnd(3)], m, lo, hi, via))
				fail_msg("rule %s", m);
		}
		if (rnd(3) == 0) {
			sfy_cidr_parse(rnd(2) ? "10.1.0.0/16" : "[fd01::]/16:53", &c->bypass[0], NULL, 0);
			c->nbypass = 1;
		}
		c->default_via = (int16_t)((int)rnd((unsigned)nch + 3) - 3);
		struct sfy_routes *rt = build(c);
		for (int q = 0; q < 200; q++) {
			char name[300], ip[64];
			static const uint16_t qports[] = { 53, 80, 443, 25, 300, 0 };
			uint16_t port = qports[rnd(6)];
			if (rnd(2)) {
				rand_name(name, sizeof(name));
				route(rt, name, NULL, port);
				plan(rt, name, rnd(2) ? -1 : port);
			} else {
				rand_ip(ip, sizeof(ip), rnd(3) == 0);
				route(rt, NULL, ip, port);
			}
		}
		sfy_routes_free(rt);
		rb_free(c);
	}
}

/* ---- dnsmem ------------------------------------------------------------ */

static size_t names_of(const char *ip, char out[][SFY_NAME_MAX + 1])
{
	struct sockaddr_storage ss = sa_of(ip, 0);
	return sfy_dnsmem_names((struct sockaddr *)&ss, ss.ss_family == AF_INET ?
				sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6),
				out, SFY_DNSMEM_NAMES_MAX);
}

static void add_sev(const char *name, const char *ip, int sev)
{
	struct sockaddr_storage ss = sa_of(ip, 0);
	sfy_dnsmem_add(name, (struct sockaddr *)&ss, ss.ss_family == AF_INET ?
		       sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6), sev);
}

static void add(const char *name, const char *ip)
{
	add_sev(name, ip, 0);
}

/* What the resolver hooks do with an answer (dns_rules.c): remember it
 * with its name's severity under rt. */
static void add_rt(const struct sfy_routes *rt, const char *name, const char *ip)
{
	struct sockaddr_storage ss = sa_of(ip, 0);
	add_sev(name, ip, sfy_route_name_restrictive(rt, name, (struct sockaddr *)&ss));
}

static void test_dnsmem_basic(void **state)
{
	(void)state;
	char n[SFY_DNSMEM_NAMES_MAX][SFY_NAME_MAX + 1];
	EQ(names_of("192.0.2.1", n), 0, "empty");
	add("One.Example.", "192.0.2.1");
	add("two.example", "192.0.2.1");
	add("two.example", "192.0.2.1");                /* once */
	add("v6.example", "2001:db8::1");
	add("mapped.example", "::ffff:192.0.2.2");      /* stored as v4 */
	EQ(names_of("192.0.2.1", n), 2, "two names");
	assert_string_equal(n[0], "two.example");       /* most recent first */
	assert_string_equal(n[1], "one.example");
	EQ(names_of("::ffff:192.0.2.1", n), 2, "v4-mapped asks v4");
	EQ(names_of("192.0.2.2", n), 1, "mapped added");
	assert_string_equal(n[0], "mapped.example");
	EQ(names_of("2001:db8::1", n), 1, "v6");
	assert_string_equal(n[0], "v6.example");
	EQ(names_of("2001:db8::2", n), 0, "other v6");
	/* A CDN address with more names than are kept: the most recent. */
	for (int i = 0; i < 3 * SFY_DNSMEM_NAMES_MAX; i++) {
		char nm[32];
		snprintf(nm, sizeof(nm), "n%d.cdn", i);
		add(nm, "192.0.2.9");
	}
	EQ(names_of("192.0.2.9", n), SFY_DNSMEM_NAMES_MAX, "capped");
	char want[32];
	snprintf(want, sizeof(want), "n%d.cdn", 3 * SFY_DNSMEM_NAMES_MAX - 1);
	assert_string_equal(n[0], want);
	/* Bad names are not stored. */
	add("", "192.0.2.3");
	add("bad name", "192.0.2.3");
	EQ(names_of("192.0.2.3", n), 0, "invalid names");
}

/* Bounded: many more entries than the table holds evict the oldest, the
 * newest stay findable. */
static void test_dnsmem_evicts(void **state)
{
	(void)state;
	char n[SFY_DNSMEM_NAMES_MAX][SFY_NAME_MAX + 1], ip[32], nm[32];
	for (int i = 0; i < 100000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
		snprintf(nm, sizeof(nm), "h%d.example", i);
		add(nm, ip);
	}
	EQ(names_of("10.0.0.0", n), 0, "oldest evicted");
	for (int i = 100000 - 100; i < 100000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
		snprintf(nm, sizeof(nm), "h%d.example", i);
		EQ(names_of(ip, n), 1, ip);
		assert_string_equal(n[0], nm);
	}
}

/* Review finding 4: a name blocked on one port must not be forgotten when
 * more names than are kept per address (and than a bucket holds) share
 * its address -- the connect to that port would then go direct. */
static void test_dnsmem_keeps_restrictive(void **state)
{
	(void)state;
	struct sfy_config *c = rb_new(NULL, SFY_DNS_LOCAL);
	int w = rb_chain(c, "work", "socks5://10.0.0.1:1080", SFY_DNS_LOCAL, SFY_CHAIN_STRICT);
	assert_true(rb_rule(c, SFY_RO_FILE, "ads.example.com", 8080, 8080, BLOCK));   /* 1 */
	assert_true(rb_rule(c, SFY_RO_FILE, "work.example", 0, 0, w));                /* 2 */
	assert_true(rb_rule(c, SFY_RO_FILE, "192.0.2.128/25", 0, 0, BLOCK));           /* 3 */
	c->default_via = DIRECT;
	c->default_line = 1;
	struct sfy_routes *rt = build(c);
	struct sockaddr_storage lo = sa_of("192.0.2.7", 0), hi = sa_of("192.0.2.200", 0);
	EQ(sfy_route_name_restrictive(rt, "ads.example.com", NULL), 2, "blocked on a port");
	EQ(sfy_route_name_restrictive(rt, "work.example", NULL), 1, "a chain");
	EQ(sfy_route_name_restrictive(rt, "cdn.example", NULL), 0, "direct everywhere");
	EQ(sfy_route_name_restrictive(rt, "cdn.example", (struct sockaddr *)&lo), 0, "addr direct");
	EQ(sfy_route_name_restrictive(rt, "cdn.example", (struct sockaddr *)&hi), 2,
	   "the address is blocked");
	EQ(sfy_route_name_restrictive(NULL, "ads.example.com", NULL), 0, "no routes");
	EQ(sfy_route_name_restrictive(rt, "ads.example.com", NULL),
	   sfy_route_name_restrictive_ref(rt, "ads.example.com", NULL), "reference");

	add_rt(rt, "ads.example.com", "198.51.100.20");
	WANT(rt, NULL, "198.51.100.20", 8080, BLOCK, 1);
	char nm[64];
	for (int i = 0; i < 4 * SFY_DNSMEM_NAMES_MAX; i++) {
		snprintf(nm, sizeof(nm), "img%d.cdn.example", i);
		add_rt(rt, nm, "198.51.100.20");
		WANT(rt, NULL, "198.51.100.20", 8080, BLOCK, 1);
	}
	WANT(rt, NULL, "198.51.100.20", 443, DIRECT, 0);
	/* A chain name and a block name on one address: the chain name
	 * survives direct names, the block name chain names. */
	add_rt(rt, "work.example", "198.51.100.21");
	for (int i = 0; i < 4 * SFY_DNSMEM_NAMES_MAX; i++) {
		snprintf(nm, sizeof(nm), "d%d.example", i);
		add_rt(rt, nm, "198.51.100.21");
	}
	WANT(rt, NULL, "198.51.100.21", 443, w, 2);
	sfy_routes_free(rt);
	rb_free(c);
}

/* However many less restrictive names come -- on the same address, in the
 * same bucket, or enough to wrap the whole ring several times -- a
 * restrictive name stays; equals still age out. */
static void test_dnsmem_pinned_survive_flood(void **state)
{
	(void)state;
	char n[SFY_DNSMEM_NAMES_MAX][SFY_NAME_MAX + 1], ip[32], nm[32];
	for (int i = 0; i < 50; i++) {
		snprintf(ip, sizeof(ip), "172.16.0.%d", i);
		snprintf(nm, sizeof(nm), "pin%d.example", i);
		add_sev(nm, ip, i % 2 ? 1 : 2);
	}
	add_sev("block.example", "172.16.1.1", 2);
	for (int i = 0; i < 3 * SFY_DNSMEM_NAMES_MAX; i++) {
		snprintf(nm, sizeof(nm), "chain%d.example", i);
		add_sev(nm, "172.16.1.1", 1);           /* chain names: less than block */
	}
	for (int i = 0; i < 100000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
		snprintf(nm, sizeof(nm), "h%d.example", i);
		add(nm, ip);
		if (i % 16 == 0) {                      /* and on the pinned addresses too */
			snprintf(ip, sizeof(ip), "172.16.0.%d", i / 16 % 50);
			add(nm, ip);
		}
	}
	for (int i = 0; i < 50; i++) {
		snprintf(ip, sizeof(ip), "172.16.0.%d", i);
		snprintf(nm, sizeof(nm), "pin%d.example", i);
		size_t k = names_of(ip, n);
		assert_true(k >= 1);
		assert_string_equal(n[0], nm);          /* the most restrictive first */
	}
	EQ(names_of("172.16.1.1", n), SFY_DNSMEM_NAMES_MAX, "block + chains");
	assert_string_equal(n[0], "block.example");
	/* Unpinned names still age out (the ring's oldest went). */
	EQ(names_of("10.0.0.1", n), 0, "oldest unpinned gone");
	EQ(names_of("10.1.134.159", n), 1, "newest unpinned kept");    /* i = 99999 */
	assert_string_equal(n[0], "h99999.example");
}

/* Shared across fork() both ways, and after exec through the variable:
 * a child that drops its mapping finds the table again. */
static void test_dnsmem_fork(void **state)
{
	(void)state;
	char n[SFY_DNSMEM_NAMES_MAX][SFY_NAME_MAX + 1];
	int fd = sfy_dnsmem_export_fd();
	assert_true(fd >= SFY_SHM_FD_MIN);
	assert_non_null(getenv(SFY_DNSMEM_ENV));
	add("parent.example", "192.0.2.50");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char m[SFY_DNSMEM_NAMES_MAX][SFY_NAME_MAX + 1];
		int ok = names_of("192.0.2.50", m) == 1 && !strcmp(m[0], "parent.example");
		add("child.example", "192.0.2.51");
		sfy_dnsmem_detach(false);       /* as after exec: from the variable */
		ok = ok && names_of("192.0.2.51", m) == 1 && !strcmp(m[0], "child.example");
		_exit(ok ? 0 : 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	EQ(names_of("192.0.2.51", n), 1, "the child's name");
	assert_string_equal(n[0], "child.example");
	/* close() on its number (what the program may do): the hooks move it
	 * first, the tree keeps it. */
	assert_int_equal(sfy_shm_guard_get(SFY_SHM_DNSMEM), fd);
	sfy_shm_evict(fd);
	int moved = sfy_shm_guard_get(SFY_SHM_DNSMEM);
	assert_true(moved >= SFY_SHM_FD_MIN && moved != fd);
	close(fd);
	sfy_dnsmem_detach(false);
	EQ(names_of("192.0.2.51", n), 1, "found again after the move");
	sfy_dnsmem_detach(true);
}

/* Another process of the tree may write anything into the table: reads
 * stay in bounds and give only well-formed names. */
static void test_dnsmem_scribbled(void **state)
{
	(void)state;
	char n[SFY_DNSMEM_NAMES_MAX][SFY_NAME_MAX + 1];
	int fd = sfy_dnsmem_export_fd();
	assert_true(fd >= 0);
	add("good.example", "192.0.2.60");
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t *buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	for (int round = 0; round < 4; round++) {
		/* Keep the header (the table stays the table), fill the rest. */
		for (off_t i = 0; i < st.st_size; i++)
			buf[i] = round == 0 ? 0xff : round == 1 ? (uint8_t)rnd(256)
			       : round == 2 ? (uint8_t)(i * 7) : 'a';
		assert_int_equal(pwrite(fd, buf + 64, (size_t)st.st_size - 64, 64),
				 st.st_size - 64);
		size_t k = names_of("192.0.2.60", n);
		for (size_t i = 0; i < k; i++) {
			size_t l = strlen(n[i]);
			assert_true(l > 0 && l <= SFY_NAME_MAX);
			for (size_t j = 0; j < l; j++)
				assert_true(n[i][j] > ' ' && n[i][j] < 0x7f &&
					    !(n[i][j] >= 'A' && n[i][j] <= 'Z'));
		}
		add("after.example", "192.0.2.61");     /* still usable */
	}
	free(buf);
	sfy_dnsmem_detach(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_origin_order, setup),
		cmocka_unit_test_setup(test_globs_exact_suffix, setup),
		cmocka_unit_test_setup(test_ports_and_first_match, setup),
		cmocka_unit_test_setup(test_cidr_families, setup),
		cmocka_unit_test_setup(test_default, setup),
		cmocka_unit_test_setup(test_port53, setup),
		cmocka_unit_test_setup(test_special_tlds, setup),
		cmocka_unit_test_setup(test_special_never_local, setup),
		cmocka_unit_test_setup(test_port53_direct_default, setup),
		cmocka_unit_test_setup(test_name_plan, setup),
		cmocka_unit_test_setup(test_derived, setup),
		cmocka_unit_test_setup(test_any_proxy, setup),
		cmocka_unit_test_setup(test_dnsmem_most_restrictive, setup),
		cmocka_unit_test_setup(test_differential, setup),
		cmocka_unit_test_setup(test_dnsmem_basic, setup),
		cmocka_unit_test_setup(test_dnsmem_evicts, setup),
		cmocka_unit_test_setup(test_dnsmem_keeps_restrictive, setup),
		cmocka_unit_test_setup(test_dnsmem_pinned_survive_flood, setup),
		cmocka_unit_test_setup(test_dnsmem_fork, setup),
		cmocka_unit_test_setup(test_dnsmem_scribbled, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
