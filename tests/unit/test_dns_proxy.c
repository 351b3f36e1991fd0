/* dns: proxy (dns_proxy.h): the RESOLVE / RESOLVE_PTR codec, one hop's
 * RESOLVE over a socketpair keeping the reply code of a failure, the
 * reply-code -> EAI_* / h_errno mapping, and the cache (hits, expiry, keys,
 * bounds, least recently used out). */
#include <errno.h>
#include <netdb.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "dns_proxy.h"
#include "handshake.h"
#include "io.h"
#include "socks5.h"

#include "testutil.h"

static void test_codec(void **state)
{
	(void)state;
	uint8_t b[SFY_S5_REQ_MAX];
	struct sfy_addr name = { .type = SFY_ATYP_DOMAIN, .name = "ok.test", .port = 0 };
	ssize_t n = sfy_s5_build_request(b, sizeof(b), SFY_S5_RESOLVE, &name);
	static const uint8_t want[] = { 5, 0xF0, 0, 3, 7, 'o', 'k', '.', 't', 'e', 's', 't', 0, 0 };
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(b, want, sizeof(want));

	struct sfy_addr ip = { .type = SFY_ATYP_IPV4, .ip = { 10, 1, 2, 3 } };
	n = sfy_s5_build_request(b, sizeof(b), SFY_S5_RESOLVE_PTR, &ip);
	static const uint8_t wptr[] = { 5, 0xF1, 0, 1, 10, 1, 2, 3, 0, 0 };
	assert_int_equal(n, sizeof(wptr));
	assert_memory_equal(b, wptr, sizeof(wptr));
	/* commands outside the enum are refused */
	assert_int_equal(sfy_s5_build_request(b, sizeof(b), (enum sfy_s5_cmd)4, &ip), -EINVAL);
	assert_int_equal(sfy_s5_build_request(b, sizeof(b), (enum sfy_s5_cmd)0xF2, &ip), -EINVAL);

	/* RESOLVE_PTR's reply: BND is a name */
	static const uint8_t rep[] = { 5, 0, 0, 3, 9, 'b', 'a', 'c', 'k', '.', 't', 'e', 's', 't', 0, 0 };
	struct sfy_s5_reply r;
	size_t need = 0;
	assert_int_equal(sfy_s5_parse_reply(rep, sizeof(rep), &need, &r), SFY_PARSE_COMPLETE);
	assert_int_equal(r.bnd.type, SFY_ATYP_DOMAIN);
	assert_string_equal(r.bnd.name, "back.test");
}

/* One RESOLVE hop: the request on the wire, the reply's address, and a
 * failure's reply code kept for the resolver. */
static void hop_resolve(const uint8_t *reply, size_t rlen, int want_r, int want_rep,
			struct sfy_hop *h)
{
	int sv[2];
	static uint8_t in[SFY_HOP_IN_MAX];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct sfy_proxy p = { .proto = SFY_PROTO_SOCKS5, .port = 9050 };
	strcpy(p.host, "127.0.0.1");
	struct sfy_addr dst = { .type = SFY_ATYP_DOMAIN, .name = "x.test", .port = 0 };
	assert_int_equal(sfy_hop_init(h, &p, SFY_S5_RESOLVE, &dst, true, false,
				      sfy_now_ms() + 2000, NULL), 0);
	assert_int_equal(sfy_hop_step(h, sv[0], in), SFY_HOP_IN);
	uint8_t sent[64];
	ssize_t n = recv(sv[1], sent, sizeof(sent), MSG_DONTWAIT);
	assert_int_equal(n, 3 + 4 + 1 + 6 + 2);
	assert_int_equal(sent[4], 0xF0);        /* greeting 05 01 00, then 05 CMD */
	assert_int_equal(send(sv[1], "\x05\x00", 2, 0), 2);
	assert_int_equal(send(sv[1], reply, rlen, 0), (ssize_t)rlen);
	int r = sfy_hop_step(h, sv[0], in);
	EQ(r, want_r, "step");
	EQ(h->has_rep, 1, "has_rep");
	EQ(h->rep, want_rep, "rep");
	close(sv[0]);
	close(sv[1]);
}

static void test_hop(void **state)
{
	(void)state;
	static struct sfy_hop h;
	static const uint8_t ok[] = { 5, 0, 0, 1, 10, 1, 2, 3, 0, 0 };
	hop_resolve(ok, sizeof(ok), 0, 0, &h);
	assert_int_equal(h.bnd.type, SFY_ATYP_IPV4);
	assert_memory_equal(h.bnd.ip, "\x0a\x01\x02\x03", 4);
	static const uint8_t nx[] = { 5, 4, 0, 1, 0, 0, 0, 0, 0, 0 };
	hop_resolve(nx, sizeof(nx), -EHOSTUNREACH, 4, &h);
	static const uint8_t f6[] = { 5, 0xF6, 0, 1, 0, 0, 0, 0, 0, 0 };
	hop_resolve(f6, sizeof(f6), -EHOSTUNREACH, 0xF6, &h);  /* errmap: Tor F6 */
	static const uint8_t no[] = { 5, 7, 0, 1, 0, 0, 0, 0, 0, 0 };
	hop_resolve(no, sizeof(no), -EOPNOTSUPP, 7, &h);

	/* RESOLVE is a SOCKS5 command: other hops refuse it before any byte */
	struct sfy_proxy p4 = { .proto = SFY_PROTO_SOCKS4A, .port = 1080 };
	strcpy(p4.host, "127.0.0.1");
	struct sfy_addr dst = { .type = SFY_ATYP_DOMAIN, .name = "x.test" };
	assert_int_equal(sfy_hop_init(&h, &p4, SFY_S5_RESOLVE, &dst, false, false, 0, NULL), -EOPNOTSUPP);
	p4.proto = SFY_PROTO_HTTP;
	assert_int_equal(sfy_hop_init(&h, &p4, SFY_S5_RESOLVE_PTR, &dst, false, false, 0, NULL),
			 -EOPNOTSUPP);
}

static void test_mapping(void **state)
{
	(void)state;
	static const struct { uint8_t rep; int eai; } t[] = {
		{ 0, 0 },
		{ 1, EAI_AGAIN }, { 2, EAI_FAIL }, { 3, EAI_AGAIN }, { 4, EAI_NONAME },
		{ 5, EAI_FAIL }, { 6, EAI_AGAIN }, { 7, SFY_DNSPROXY_FAKE }, { 8, EAI_FAIL },
		{ 9, EAI_FAIL },
		{ 0xF0, EAI_NONAME }, { 0xF1, EAI_FAIL }, { 0xF2, EAI_AGAIN }, { 0xF3, EAI_AGAIN },
		{ 0xF4, EAI_FAIL }, { 0xF5, EAI_FAIL }, { 0xF6, EAI_NONAME }, { 0xF7, EAI_AGAIN },
		{ 0xF8, EAI_FAIL }, { 0xFF, EAI_FAIL },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char what[32];
		snprintf(what, sizeof(what), "rep 0x%02x", t[i].rep);
		EQ(sfy_dnsproxy_eai(t[i].rep), t[i].eai, what);
	}
	assert_true(SFY_DNSPROXY_FAKE > 0 && EAI_NONAME < 0);   /* never confused */
}

static struct sfy_dnsproxy_ans ans4(uint8_t last)
{
	struct sfy_dnsproxy_ans a = { .rc = 0, .addr = { .type = SFY_ATYP_IPV4,
							 .ip = { 10, 0, 0, last } } };
	return a;
}

static void test_cache_basics(void **state)
{
	(void)state;
	static int chain_a, chain_b;
	struct sfy_dnsproxy_ans a = ans4(1), got;
	sfy_dnsproxy_reset();
	int64_t t = 1000000;
	assert_false(sfy_dnsproxy_cache_get(&chain_a, SFY_DNSPROXY_FWD, "a.test", 6, t, &got));
	sfy_dnsproxy_cache_put(&chain_a, SFY_DNSPROXY_FWD, "a.test", 6, t, &a);
	assert_true(sfy_dnsproxy_cache_get(&chain_a, SFY_DNSPROXY_FWD, "a.test", 6, t + 1, &got));
	assert_int_equal(got.rc, 0);
	assert_memory_equal(got.addr.ip, a.addr.ip, 4);
	/* keyed by chain and kind, not only the bytes */
	assert_false(sfy_dnsproxy_cache_get(&chain_b, SFY_DNSPROXY_FWD, "a.test", 6, t, &got));
	assert_false(sfy_dnsproxy_cache_get(&chain_a, SFY_DNSPROXY_PTR, "a.test", 6, t, &got));
	assert_false(sfy_dnsproxy_cache_get(&chain_a, SFY_DNSPROXY_FWD, "a.tes", 5, t, &got));
	/* live until TTL, gone at it */
	assert_true(sfy_dnsproxy_cache_get(&chain_a, SFY_DNSPROXY_FWD, "a.test", 6,
					   t + SFY_DNSPROXY_TTL_MS - 1, &got));
	assert_false(sfy_dnsproxy_cache_get(&chain_a, SFY_DNSPROXY_FWD, "a.test", 6,
					    t + SFY_DNSPROXY_TTL_MS, &got));
	/* a negative answer is an answer */
	struct sfy_dnsproxy_ans neg = { .rc = EAI_NONAME };
	sfy_dnsproxy_cache_put(&chain_a, SFY_DNSPROXY_FWD, "nx.test", 7, t, &neg);
	assert_true(sfy_dnsproxy_cache_get(&chain_a, SFY_DNSPROXY_FWD, "nx.test", 7, t, &got));
	assert_int_equal(got.rc, EAI_NONAME);
	/* put over an existing key replaces it */
	struct sfy_dnsproxy_ans b = ans4(2);
	sfy_dnsproxy_cache_put(&chain_a, SFY_DNSPROXY_FWD, "nx.test", 7, t, &b);
	assert_true(sfy_dnsproxy_cache_get(&chain_a, SFY_DNSPROXY_FWD, "nx.test", 7, t, &got));
	assert_int_equal(got.rc, 0);
	assert_int_equal(got.addr.ip[3], 2);
	/* too long a key is never stored */
	char big[SFY_NAME_MAX + 2];
	memset(big, 'x', sizeof(big));
	sfy_dnsproxy_cache_put(&chain_a, SFY_DNSPROXY_FWD, big, sizeof(big), t, &a);
	assert_false(sfy_dnsproxy_cache_get(&chain_a, SFY_DNSPROXY_FWD, big, sizeof(big), t, &got));
}

/* 10000 names: at most SETS x WAYS are kept, and the most recent ones of
 * each set are: the last WAYS names put are all there. */
static void test_cache_bounds(void **state)
{
	(void)state;
	static int chain;
	struct sfy_dnsproxy_ans got;
	char key[32];
	const int n = 10000, cap = SFY_DNSPROXY_SETS * SFY_DNSPROXY_WAYS;
	int64_t t = 5000;
	sfy_dnsproxy_reset();
	for (int i = 0; i < n; i++) {
		struct sfy_dnsproxy_ans a = ans4((uint8_t)i);
		int l = snprintf(key, sizeof(key), "n%d.test", i);
		sfy_dnsproxy_cache_put(&chain, SFY_DNSPROXY_FWD, key, (size_t)l, t, &a);
	}
	int hits = 0;
	for (int i = 0; i < n; i++) {
		int l = snprintf(key, sizeof(key), "n%d.test", i);
		if (sfy_dnsproxy_cache_get(&chain, SFY_DNSPROXY_FWD, key, (size_t)l, t, &got)) {
			hits++;
			assert_int_equal(got.addr.ip[3], (uint8_t)i);
		}
	}
	assert_true(hits <= cap);
	assert_true(hits > cap / 2);            /* the table is used, not one set */
	for (int i = n - SFY_DNSPROXY_WAYS; i < n; i++) {
		int l = snprintf(key, sizeof(key), "n%d.test", i);
		assert_true(sfy_dnsproxy_cache_get(&chain, SFY_DNSPROXY_FWD, key, (size_t)l, t, &got));
	}
}

/* Least recently used out: a name looked up again survives names put after
 * it in its set; one not looked up does not. */
static void test_cache_lru(void **state)
{
	(void)state;
	static int chain;
	struct sfy_dnsproxy_ans a = ans4(9), got;
	char key[32];
	int64_t t = 9000;
	sfy_dnsproxy_reset();
	sfy_dnsproxy_cache_put(&chain, SFY_DNSPROXY_FWD, "keep.test", 9, t, &a);
	sfy_dnsproxy_cache_put(&chain, SFY_DNSPROXY_FWD, "drop.test", 9, t, &a);
	/* enough other names to evict each set several times, touching keep */
	for (int i = 0; i < 20 * SFY_DNSPROXY_SETS * SFY_DNSPROXY_WAYS; i++) {
		int l = snprintf(key, sizeof(key), "o%d.test", i);
		assert_true(sfy_dnsproxy_cache_get(&chain, SFY_DNSPROXY_FWD, "keep.test", 9, t, &got));
		sfy_dnsproxy_cache_put(&chain, SFY_DNSPROXY_FWD, key, (size_t)l, t, &a);
	}
	assert_true(sfy_dnsproxy_cache_get(&chain, SFY_DNSPROXY_FWD, "keep.test", 9, t, &got));
	assert_false(sfy_dnsproxy_cache_get(&chain, SFY_DNSPROXY_FWD, "drop.test", 9, t, &got));
}

/* RESOLVE_PTR names: only host names (res_hnok's rule) reach a program. */
static void test_hostname_ok(void **state)
{
	(void)state;
	char big[300];
	assert_true(sfy_dnsproxy_hostname_ok("back.test"));
	assert_true(sfy_dnsproxy_hostname_ok("back.test."));
	assert_true(sfy_dnsproxy_hostname_ok("_srv-1.Example.ORG"));
	assert_true(sfy_dnsproxy_hostname_ok("localhost"));
	assert_false(sfy_dnsproxy_hostname_ok(""));
	assert_false(sfy_dnsproxy_hostname_ok("."));
	assert_false(sfy_dnsproxy_hostname_ok("a..b"));
	assert_false(sfy_dnsproxy_hostname_ok(".a"));
	assert_false(sfy_dnsproxy_hostname_ok("x$(id).evil;rm"));
	assert_false(sfy_dnsproxy_hostname_ok("a b.test"));
	assert_false(sfy_dnsproxy_hostname_ok("a/b.test"));
	assert_false(sfy_dnsproxy_hostname_ok("it's.test"));
	assert_false(sfy_dnsproxy_hostname_ok("caf\xc3\xa9.test"));
	assert_false(sfy_dnsproxy_hostname_ok("a\x1b[31m.test"));
	/* labels <= 63, names <= 253 */
	memset(big, 'a', 63);
	strcpy(big + 63, ".t");
	assert_true(sfy_dnsproxy_hostname_ok(big));
	memset(big, 'a', 64);
	strcpy(big + 64, ".t");
	assert_false(sfy_dnsproxy_hostname_ok(big));
	for (int i = 0; i < 4; i++) {
		memset(big + 50 * i, 'a', 49);
		big[50 * i + 49] = '.';
	}
	memset(big + 200, 'b', 53);
	big[253] = '\0';
	assert_true(sfy_dnsproxy_hostname_ok(big));
	big[253] = 'b';
	big[254] = '\0';
	assert_false(sfy_dnsproxy_hostname_ok(big));
}

static bool local4(const char *s)
{
	uint8_t a[4];
	assert_int_equal(inet_pton(AF_INET, s, a), 1);
	return sfy_dnsproxy_local_addr(AF_INET, a);
}

static bool local6(const char *s)
{
	uint8_t a[16];
	assert_int_equal(inet_pton(AF_INET6, s, a), 1);
	return sfy_dnsproxy_local_addr(AF_INET6, a);
}

/* Local addresses are never asked about (RESOLVE_PTR). */
static void test_local_addr(void **state)
{
	(void)state;
	const char *yes4[] = { "127.0.0.1", "127.9.9.9", "10.0.0.1", "172.16.0.1", "172.31.255.255",
			       "192.168.1.5", "169.254.1.1", "100.64.0.1", "100.127.255.255",
			       "0.0.0.0" };
	const char *no4[] = { "8.8.8.8", "172.15.255.255", "172.32.0.0", "192.169.0.1",
			      "100.63.255.255", "100.128.0.0", "198.51.100.3", "11.0.0.1" };
	const char *yes6[] = { "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1",
			       "::ffff:192.168.0.1", "::ffff:127.0.0.1" };
	const char *no6[] = { "2001:db8::5", "fec0::1", "::2", "::ffff:8.8.8.8", "2606:4700::1" };
	for (size_t i = 0; i < sizeof(yes4) / sizeof(*yes4); i++)
		assert_true(local4(yes4[i]));
	for (size_t i = 0; i < sizeof(no4) / sizeof(*no4); i++)
		assert_false(local4(no4[i]));
	for (size_t i = 0; i < sizeof(yes6) / sizeof(*yes6); i++)
		assert_true(local6(yes6[i]));
	for (size_t i = 0; i < sizeof(no6) / sizeof(*no6); i++)
		assert_false(local6(no6[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec),
		cmocka_unit_test(test_hop),
		cmocka_unit_test(test_mapping),
		cmocka_unit_test(test_cache_basics),
		cmocka_unit_test(test_cache_bounds),
		cmocka_unit_test(test_cache_lru),
		cmocka_unit_test(test_hostname_ok),
		cmocka_unit_test(test_local_addr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
