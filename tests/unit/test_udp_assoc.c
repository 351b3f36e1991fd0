/* udp_assoc.c: sessions (control tags, the last reference, the connected
 * destination, a dead control connection) and the datagram codec (header
 * encode/decode, size limits, FRAG, malformed headers, families). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "fakedns.h"
#include "fdreg.h"
#include "udp_assoc.h"

/* ------------------------------------------------------------ sessions */

/* A control fd: the program closing it marks the session dead and our last
 * reference never touches the number again. (The registry itself, identity
 * checks included, is tested in test_fdreg.c.) */
static void test_ctl_tag(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sfy_udp_sess *s = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
	assert_ptr_equal(sfy_fdreg_udp_install(fd, s), s);
	assert_int_equal(sfy_fdreg_ctl_tag(p[0], s), 0);
	atomic_store(&s->ctl, p[0]);
	assert_true(sfy_fdreg_has(p[0], SFY_FDREG_CTL));
	assert_null(sfy_fdreg_udp_get(p[0]));
	assert_true(sfy_fdreg_close(p[0]));     /* the program closes it */
	assert_true(atomic_load(&s->dead));
	assert_int_equal(atomic_load(&s->ctl), -1);
	assert_false(sfy_udp_alive(s));
	assert_true(sfy_fdreg_close(fd));
	sfy_udp_sess_put(s);                    /* must not close p[0] */
	assert_int_equal(close(p[0]), 0);
	close(p[1]);
	close(fd);
}

/* The last reference closes the control fd and removes its tag. */
static void test_last_put_closes_ctl(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sfy_udp_sess *s = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
	assert_ptr_equal(sfy_fdreg_udp_install(fd, s), s);
	assert_int_equal(sfy_fdreg_ctl_tag(p[0], s), 0);
	atomic_store(&s->ctl, p[0]);
	sfy_udp_sess_put(s);                    /* the registry still holds it */
	assert_true(sfy_udp_alive(s));          /* open, nothing to read */
	assert_true(sfy_fdreg_close(fd));       /* close() of the UDP socket */
	assert_false(sfy_fdreg_has(p[0], SFY_FDREG_ANY));
	assert_int_equal(close(p[0]), -1);      /* already closed */
	assert_int_equal(errno, EBADF);
	close(p[1]);
	close(fd);
}

/* The proxy closing the control connection is seen at the next check. */
static void test_alive_eof(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
	struct sfy_udp_sess *s = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
	assert_int_equal(sfy_fdreg_ctl_tag(p[0], s), 0);
	atomic_store(&s->ctl, p[0]);
	assert_true(sfy_udp_alive(s));
	close(p[1]);
	assert_true(sfy_udp_alive(s));          /* within SFY_UDP_CTL_CHECK_MS: not asked */
	atomic_store(&s->ctl_checked_ms, 0);
	assert_false(sfy_udp_alive(s));
	assert_true(atomic_load(&s->dead));
	assert_false(sfy_udp_alive(s));         /* stays dead */
	sfy_udp_sess_put(s);                    /* closes p[0] */
	assert_int_equal(close(p[0]), -1);
}

/* The connected destination: set, read back, cleared. */
static void test_peer(void **state)
{
	(void)state;
	struct sfy_udp_sess *s = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
	struct sfy_addr dst;
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	assert_false(sfy_udp_peer_get(s, &dst, &ss, &sl));
	struct sfy_addr want = { .type = SFY_ATYP_DOMAIN, .port = 53 };
	strcpy(want.name, "example.test");
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(53) };
	inet_pton(AF_INET, "198.18.0.1", &sa.sin_addr);
	sfy_udp_peer_set(s, &want, (struct sockaddr *)&sa, sizeof(sa));
	assert_true(sfy_udp_peer_get(s, &dst, &ss, &sl));
	assert_int_equal(dst.type, SFY_ATYP_DOMAIN);
	assert_string_equal(dst.name, "example.test");
	assert_int_equal(sl, sizeof(sa));
	assert_memory_equal(&ss, &sa, sizeof(sa));
	assert_true(sfy_udp_peer_get(s, NULL, NULL, NULL));
	sfy_udp_peer_set(s, NULL, NULL, 0);
	assert_false(sfy_udp_peer_get(s, &dst, NULL, NULL));
	sfy_udp_sess_put(s);
}

/* ------------------------------------------------------------ codec */

static struct sfy_addr ip4(const char *ip, uint16_t port)
{
	struct sfy_addr a = { .type = SFY_ATYP_IPV4, .port = port };
	inet_pton(AF_INET, ip, a.ip);
	return a;
}

static void test_encode(void **state)
{
	(void)state;
	struct sfy_addr v4 = ip4("10.1.2.3", 53), v6 = { .type = SFY_ATYP_IPV6, .port = 443 };
	struct sfy_addr name = { .type = SFY_ATYP_DOMAIN, .port = 7 };
	strcpy(name.name, "echo.example");
	struct sfy_addr longname = { .type = SFY_ATYP_DOMAIN, .port = 7 };
	memset(longname.name, 'a', 255);
	struct sfy_addr toolong = { .type = SFY_ATYP_DOMAIN, .port = 7 };
	memset(toolong.name, 'a', 256);
	struct sfy_addr empty = { .type = SFY_ATYP_DOMAIN, .port = 7 };
	inet_pton(AF_INET6, "2001:db8::1", v6.ip);
	static const uint8_t want4[] = { 0, 0, 0, 1, 10, 1, 2, 3, 0, 53 };
	const struct {
		const struct sfy_addr *dst;
		size_t payload, max;
		ssize_t want;
	} cases[] = {
		{ &v4, 0, SFY_UDP_MAX_V4, 10 },
		{ &v4, 100, SFY_UDP_MAX_V4, 10 },
		{ &v4, SFY_UDP_MAX_V4 - 10, SFY_UDP_MAX_V4, 10 },        /* exactly full */
		{ &v4, SFY_UDP_MAX_V4 - 9, SFY_UDP_MAX_V4, -EMSGSIZE },
		{ &v4, SIZE_MAX, SFY_UDP_MAX_V4, -EMSGSIZE },            /* no overflow */
		{ &v6, 100, SFY_UDP_MAX_V6, 22 },
		{ &v6, SFY_UDP_MAX_V6 - 22, SFY_UDP_MAX_V6, 22 },
		{ &v6, SFY_UDP_MAX_V6 - 21, SFY_UDP_MAX_V6, -EMSGSIZE },
		{ &name, 1, SFY_UDP_MAX_V4, 4 + 1 + 12 + 2 },
		{ &longname, 1, SFY_UDP_MAX_V4, 4 + 1 + 255 + 2 },
		{ &toolong, 1, SFY_UDP_MAX_V4, -ENAMETOOLONG },
		{ &empty, 1, SFY_UDP_MAX_V4, -EINVAL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t hdr[SFY_S5_UDP_HDR_MAX];
		assert_int_equal(sfy_udp_encode(hdr, cases[i].dst, cases[i].payload, cases[i].max),
				 cases[i].want);
		if (i == 0)
			assert_memory_equal(hdr, want4, sizeof(want4));
	}
}

static void test_decode(void **state)
{
	(void)state;
	static const uint8_t v4[] = { 0, 0, 0, 1, 10, 1, 2, 3, 0x1f, 0x90, 'h', 'i' };
	static const uint8_t v4_empty[] = { 0, 0, 0, 1, 10, 1, 2, 3, 0, 7 };
	static const uint8_t frag[] = { 0, 0, 1, 1, 10, 1, 2, 3, 0, 7, 'x' };
	static const uint8_t frag_last[] = { 0, 0, 0x81, 1, 10, 1, 2, 3, 0, 7, 'x' };
	static const uint8_t short_hdr[] = { 0, 0, 0, 1, 10, 1, 2 };
	static const uint8_t tiny[] = { 0, 0, 0 };
	static const uint8_t bad_atyp[] = { 0, 0, 0, 9, 10, 1, 2, 3, 0, 7 };
	static const uint8_t v6[] = { 0, 0, 0, 4, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0,
				      0, 0, 0, 1, 0, 53, 'd' };
	static const uint8_t dom_short[] = { 0, 0, 0, 3, 5, 'a', 'b', 0, 7 };
	static const uint8_t dom_empty[] = { 0, 0, 0, 3, 0, 0, 7 };
	const struct {
		const uint8_t *buf;
		size_t len;
		int family;
		enum sfy_udp_verdict want;
		size_t off;
		const char *src;        /* expected source text, for DELIVER */
		uint16_t port;
	} cases[] = {
		{ v4, sizeof(v4), AF_INET, SFY_UDP_DELIVER, 10, "10.1.2.3", 8080 },
		{ v4, sizeof(v4), AF_INET6, SFY_UDP_DELIVER, 10, "::ffff:10.1.2.3", 8080 },
		{ v4_empty, sizeof(v4_empty), AF_INET, SFY_UDP_DELIVER, 10, "10.1.2.3", 7 },
		{ frag, sizeof(frag), AF_INET, SFY_UDP_DROP_FRAG, 0, NULL, 0 },
		{ frag_last, sizeof(frag_last), AF_INET, SFY_UDP_DROP_FRAG, 0, NULL, 0 },
		{ short_hdr, sizeof(short_hdr), AF_INET, SFY_UDP_DROP_MALFORMED, 0, NULL, 0 },
		{ tiny, sizeof(tiny), AF_INET, SFY_UDP_DROP_MALFORMED, 0, NULL, 0 },
		{ tiny, 0, AF_INET, SFY_UDP_DROP_MALFORMED, 0, NULL, 0 },
		{ bad_atyp, sizeof(bad_atyp), AF_INET, SFY_UDP_DROP_MALFORMED, 0, NULL, 0 },
		{ v6, sizeof(v6), AF_INET6, SFY_UDP_DELIVER, 22, "2001:db8::1", 53 },
		{ v6, sizeof(v6), AF_INET, SFY_UDP_DROP_FAMILY, 0, NULL, 0 },
		{ dom_short, sizeof(dom_short), AF_INET, SFY_UDP_DROP_MALFORMED, 0, NULL, 0 },
		/* local DNS mode: a named source has no address the program knows */
		{ dom_empty, sizeof(dom_empty), AF_INET, SFY_UDP_DROP_FAMILY, 0, NULL, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage src;
		socklen_t sl = 0;
		size_t off = 0;
		enum sfy_udp_verdict v = sfy_udp_decode(cases[i].buf, cases[i].len,
							cases[i].family, false, &off, &src, &sl);
		assert_int_equal(v, cases[i].want);
		if (v != SFY_UDP_DELIVER)
			continue;
		assert_int_equal(off, cases[i].off);
		char txt[INET6_ADDRSTRLEN];
		if (cases[i].family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&src;
			assert_int_equal(sl, sizeof(*s4));
			inet_ntop(AF_INET, &s4->sin_addr, txt, sizeof(txt));
			assert_int_equal(ntohs(s4->sin_port), cases[i].port);
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&src;
			assert_int_equal(sl, sizeof(*s6));
			inet_ntop(AF_INET6, &s6->sin6_addr, txt, sizeof(txt));
			assert_int_equal(ntohs(s6->sin6_port), cases[i].port);
		}
		assert_string_equal(txt, cases[i].src);
	}
}

/* Remote mode: a named source maps to the fake address the program was
 * given; names it never asked for are dropped and allocate nothing (a
 * hostile relay used to exhaust the tree's table this way). */
static void test_decode_name_no_alloc(void **state)
{
	(void)state;
	uint32_t known;
	assert_int_equal(sfy_fakedns_ipv4("known.example", &known), 0);
	for (int i = 0; i < 300; i++) {
		uint8_t buf[64] = { 0, 0, 0, 3 };
		int n = snprintf((char *)buf + 5, 40, "hostile-%d.example", i);
		buf[4] = (uint8_t)n;
		buf[5 + n] = 0;
		buf[6 + n] = 7;
		struct sockaddr_storage src;
		socklen_t sl = 0;
		size_t off = 0;
		assert_int_equal(sfy_udp_decode(buf, (size_t)n + 8, AF_INET, true, &off, &src, &sl),
				 SFY_UDP_DROP_FAMILY);
	}
	/* Addresses are handed out in order: had a hostile name been given
	 * one, the address after known's would carry a name. */
	char name[SFY_NAME_MAX + 1];
	assert_int_equal(sfy_fakedns_name(htonl(ntohl(known) + 1), name), -ENOENT);
	static const uint8_t named[] = { 0, 0, 0, 3, 13, 'k', 'n', 'o', 'w', 'n', '.', 'e', 'x',
					 'a', 'm', 'p', 'l', 'e', 0, 7, 'x' };
	struct sockaddr_storage src;
	socklen_t sl = 0;
	size_t off = 0;
	assert_int_equal(sfy_udp_decode(named, sizeof(named), AF_INET, true, &off, &src, &sl),
			 SFY_UDP_DELIVER);
	assert_int_equal(off, sizeof(named) - 1);
	assert_memory_equal(&((struct sockaddr_in *)&src)->sin_addr, &known, 4);
}

/* encode -> decode gives back the address for every IP type. */
static void test_roundtrip(void **state)
{
	(void)state;
	struct sfy_addr a = ip4("192.0.2.200", 65535);
	uint8_t buf[SFY_S5_UDP_HDR_MAX + 4];
	ssize_t h = sfy_udp_encode(buf, &a, 4, SFY_UDP_MAX_V4);
	assert_int_equal(h, 10);
	memcpy(buf + h, "data", 4);
	struct sockaddr_storage src;
	socklen_t sl;
	size_t off;
	assert_int_equal(sfy_udp_decode(buf, (size_t)h + 4, AF_INET, false, &off, &src, &sl),
			 SFY_UDP_DELIVER);
	assert_int_equal(off, 10);
	assert_memory_equal(buf + off, "data", 4);
	struct sockaddr_in *s4 = (struct sockaddr_in *)&src;
	assert_int_equal(ntohs(s4->sin_port), 65535);
	assert_memory_equal(&s4->sin_addr, a.ip, 4);
}

static void test_from_relay(void **state)
{
	(void)state;
	struct sfy_udp_sess *s = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
	struct sockaddr_in *r = (struct sockaddr_in *)&s->relay;
	r->sin_family = AF_INET;
	r->sin_port = htons(4000);
	inet_pton(AF_INET, "10.0.0.1", &r->sin_addr);
	s->relay_len = sizeof(*r);
	struct sockaddr_in same = *r, port = *r, addr = *r;
	port.sin_port = htons(4001);
	inet_pton(AF_INET, "10.0.0.2", &addr.sin_addr);
	struct sockaddr_in6 six = { .sin6_family = AF_INET6, .sin6_port = htons(4000) };
	assert_true(sfy_udp_from_relay(s, (struct sockaddr *)&same, sizeof(same)));
	assert_false(sfy_udp_from_relay(s, (struct sockaddr *)&port, sizeof(port)));
	assert_false(sfy_udp_from_relay(s, (struct sockaddr *)&addr, sizeof(addr)));
	assert_false(sfy_udp_from_relay(s, (struct sockaddr *)&six, sizeof(six)));
	assert_false(sfy_udp_from_relay(s, (struct sockaddr *)&same, 4));
	sfy_udp_sess_put(s);
}

static void test_chain_ok(void **state)
{
	(void)state;
	static struct sfy_config c;
	const char *why = NULL;
	const struct {
		enum sfy_chain_mode mode;
		enum sfy_proto p[3];
		int want;
	} cases[] = {
		{ SFY_CHAIN_STRICT, { SFY_PROTO_SOCKS5, SFY_PROTO_SOCKS5, SFY_PROTO_SOCKS5 }, 0 },
		{ SFY_CHAIN_STRICT, { SFY_PROTO_SOCKS4, SFY_PROTO_HTTP, SFY_PROTO_SOCKS5H }, 0 },
		{ SFY_CHAIN_STRICT, { SFY_PROTO_SOCKS5, SFY_PROTO_SOCKS5, SFY_PROTO_SOCKS4A },
		  -EPROTONOSUPPORT },
		{ SFY_CHAIN_DYNAMIC, { SFY_PROTO_SOCKS5, SFY_PROTO_SOCKS5, SFY_PROTO_HTTP },
		  -EPROTONOSUPPORT },
		{ SFY_CHAIN_RANDOM, { SFY_PROTO_SOCKS5, SFY_PROTO_SOCKS5H, SFY_PROTO_SOCKS5 }, 0 },
		{ SFY_CHAIN_ROUND_ROBIN, { SFY_PROTO_SOCKS4, SFY_PROTO_SOCKS5, SFY_PROTO_SOCKS5 },
		  -EPROTONOSUPPORT },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sfy_config_defaults(&c);
		c.chain = cases[i].mode;
		c.nproxies = 3;
		for (int k = 0; k < 3; k++)
			c.proxies[k].proto = cases[i].p[k];
		why = NULL;
		assert_int_equal(sfy_udp_chain_ok(&c, &why), cases[i].want);
		if (cases[i].want)
			assert_non_null(why);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ctl_tag),
		cmocka_unit_test(test_last_put_closes_ctl),
		cmocka_unit_test(test_alive_eof),
		cmocka_unit_test(test_peer),
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_decode_name_no_alloc),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_from_relay),
		cmocka_unit_test(test_chain_ok),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
