/* SOCKS BIND (bind.h): which sockets trigger a BIND (the pure predicate and
 * the address classes), and the hop messages a BIND sends -- SOCKS4 CD=2,
 * SOCKS5 CMD=2, none for HTTP. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "bind.h"
#include "handshake.h"
#include "io.h"

#include "testutil.h"

static void test_address_kinds(void **state)
{
	(void)state;
	struct sockaddr_storage handed[2], locals[3], a;
	sa_text(&handed[0], "10.9.2.1", 34567);      /* a CONNECT reply's BND */
	sa_text(&handed[1], "fd00::1", 1);
	/* The kernel's local addresses of proxied connections: an HTTP hop's
	 * or microsocks' (no BND to show), and a local proxy's (loopback). */
	sa_text(&locals[0], "10.9.1.1", 40000);
	sa_text(&locals[1], "fd00::7", 40001);
	sa_text(&locals[2], "127.0.0.1", 40002);
	socklen_t l;
	static const struct {
		const char *ip;
		enum sfy_bind_at want;
	} t[] = {
		{ "0.0.0.0", SFY_BIND_AT_WILDCARD },
		{ "::", SFY_BIND_AT_WILDCARD },
		{ "::ffff:0.0.0.0", SFY_BIND_AT_WILDCARD },
		{ "127.0.0.1", SFY_BIND_AT_LOOPBACK },
		{ "127.5.6.7", SFY_BIND_AT_LOOPBACK },
		{ "::1", SFY_BIND_AT_LOOPBACK },
		{ "::ffff:127.0.0.1", SFY_BIND_AT_LOOPBACK },
		{ "10.9.2.1", SFY_BIND_AT_HANDED },          /* any port */
		{ "::ffff:10.9.2.1", SFY_BIND_AT_HANDED },    /* v4-mapped */
		{ "fd00::1", SFY_BIND_AT_HANDED },
		{ "10.9.1.1", SFY_BIND_AT_PROXIED },         /* curl -P - via HTTP */
		{ "::ffff:10.9.1.1", SFY_BIND_AT_PROXIED },
		{ "fd00::7", SFY_BIND_AT_PROXIED },
		{ "10.9.1.2", SFY_BIND_AT_OTHER },           /* a local address */
		{ "fd00::2", SFY_BIND_AT_OTHER },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		l = sa_text(&a, t[i].ip, 0);
		enum sfy_bind_at got = sfy_bind_at_of((struct sockaddr *)&a, l, handed, 2, locals, 3);
		if (got != t[i].want)
			fail_msg("%s: got %d, want %d", t[i].ip, got, t[i].want);
	}
	/* Nothing handed out: the proxy's address is just another address. */
	l = sa_text(&a, "10.9.2.1", 0);
	assert_int_equal(sfy_bind_at_of((struct sockaddr *)&a, l, NULL, 0, NULL, 0),
			 SFY_BIND_AT_OTHER);
	/* No proxied connection alive: its local address is just local. */
	l = sa_text(&a, "10.9.1.1", 0);
	assert_int_equal(sfy_bind_at_of((struct sockaddr *)&a, l, handed, 2, NULL, 0),
			 SFY_BIND_AT_OTHER);
	/* An address both handed out and local counts as handed out (bind()
	 * then binds the wildcard). */
	assert_int_equal(sfy_bind_at_of((struct sockaddr *)&a, l, locals, 1, locals, 1),
			 SFY_BIND_AT_HANDED);
	/* A loopback BND (ssh -D, Tor on 127.0.0.1) stays loopback, and so
	 * does a local proxy's connection's own loopback address. */
	struct sockaddr_storage lo;
	sa_text(&lo, "127.0.0.1", 9050);
	l = sa_text(&a, "127.0.0.1", 0);
	assert_int_equal(sfy_bind_at_of((struct sockaddr *)&a, l, &lo, 1, NULL, 0),
			 SFY_BIND_AT_LOOPBACK);
	assert_int_equal(sfy_bind_at_of((struct sockaddr *)&a, l, NULL, 0, locals, 3),
			 SFY_BIND_AT_LOOPBACK);
	l = sa_text(&a, "::1", 0);
	assert_int_equal(sfy_bind_at_of((struct sockaddr *)&a, l, NULL, 0, &lo, 1),
			 SFY_BIND_AT_LOOPBACK);
	/* Short or foreign addresses are never ours. */
	assert_int_equal(sfy_bind_at_of((struct sockaddr *)&a, 4, handed, 2, locals, 3),
			 SFY_BIND_AT_OTHER);
	struct sockaddr un = { .sa_family = AF_UNIX };
	assert_int_equal(sfy_bind_at_of(&un, sizeof(un), handed, 2, locals, 3),
			 SFY_BIND_AT_OTHER);
}

static void test_trigger(void **state)
{
	(void)state;
	static const struct {
		const char *what;
		struct sfy_bind_ask a;
		bool want;
	} t[] = {
		{ "wildcard:0, getsockname", { SFY_BIND_AT_WILDCARD, 0, false, false, true, false }, true },
		{ "wildcard:0, listen", { SFY_BIND_AT_WILDCARD, 0, true, false, true, false }, true },
		{ "handed-out:0 (curl, lftp)", { SFY_BIND_AT_HANDED, 0, false, false, true, false }, true },
		{ "never bound, listen", { SFY_BIND_AT_NONE, 0, true, false, true, false }, true },
		{ "never bound, getsockname", { SFY_BIND_AT_NONE, 0, false, false, true, false }, false },
		{ "nginx listen 8089", { SFY_BIND_AT_WILDCARD, 8089, true, false, true, false }, false },
		{ "nginx 127.0.0.1:8089", { SFY_BIND_AT_LOOPBACK, 8089, true, false, true, false }, false },
		{ "OAuth 127.0.0.1:0", { SFY_BIND_AT_LOOPBACK, 0, true, false, true, false }, false },
		{ "other local addr:0", { SFY_BIND_AT_OTHER, 0, true, false, true, false }, false },
		{ "proxied conn's local addr:0, getsockname (curl via HTTP)",
		  { SFY_BIND_AT_PROXIED, 0, false, false, true, false }, true },
		{ "proxied conn's local addr:0, listen",
		  { SFY_BIND_AT_PROXIED, 0, true, false, true, false }, true },
		{ "proxied conn's local addr, fixed port",
		  { SFY_BIND_AT_PROXIED, 2121, true, false, true, false }, false },
		{ "proxied conn's local addr:0, bind: off",
		  { SFY_BIND_AT_PROXIED, 0, true, false, true, true }, false },
		{ "proxied conn's local addr:0, connected",
		  { SFY_BIND_AT_PROXIED, 0, false, true, true, false }, false },
		{ "handed-out fixed port", { SFY_BIND_AT_HANDED, 2121, true, false, true, false }, false },
		{ "no proxied connection", { SFY_BIND_AT_WILDCARD, 0, true, false, false, false }, false },
		{ "bind: off", { SFY_BIND_AT_WILDCARD, 0, true, false, true, true }, false },
		{ "connected socket", { SFY_BIND_AT_WILDCARD, 0, false, true, true, false }, false },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (sfy_bind_triggers(&t[i].a) != t[i].want)
			fail_msg("%s: want %d", t[i].what, t[i].want);
}

/* Which proxied connection a bound address belongs to (bind_rec.c picks
 * the connection whose BND or local address is the bound one). */
static void test_same_ip(void **state)
{
	(void)state;
	struct sockaddr_storage a, b;
	socklen_t al = sa_text(&a, "10.9.2.1", 0), bl = sa_text(&b, "10.9.2.1", 34567);
	assert_true(sfy_bind_same_ip((struct sockaddr *)&a, al, (struct sockaddr *)&b, bl));
	bl = sa_text(&b, "::ffff:10.9.2.1", 1);     /* v4-mapped is the same */
	assert_true(sfy_bind_same_ip((struct sockaddr *)&a, al, (struct sockaddr *)&b, bl));
	bl = sa_text(&b, "10.9.2.2", 0);
	assert_false(sfy_bind_same_ip((struct sockaddr *)&a, al, (struct sockaddr *)&b, bl));
	al = sa_text(&a, "fd00::1", 0);
	bl = sa_text(&b, "fd00::1", 9);
	assert_true(sfy_bind_same_ip((struct sockaddr *)&a, al, (struct sockaddr *)&b, bl));
	bl = sa_text(&b, "fd00::2", 0);
	assert_false(sfy_bind_same_ip((struct sockaddr *)&a, al, (struct sockaddr *)&b, bl));
	/* Short lengths never match (no read past them). */
	assert_false(sfy_bind_same_ip((struct sockaddr *)&a, 16, (struct sockaddr *)&a, al));
	assert_false(sfy_bind_same_ip((struct sockaddr *)&a, al, (struct sockaddr *)&a, 0));
}

/* The request bytes a hop sends for a BIND. */
static size_t bind_request(const struct sfy_proxy *p, const struct sfy_addr *dst, uint8_t *out,
			   int *err)
{
	static struct sfy_hop h;
	*err = sfy_hop_init(&h, p, SFY_S5_BIND, dst, false, false, sfy_now_ms() + 1000, NULL);
	if (*err)
		return 0;
	memcpy(out, h.out, h.out_len);
	return h.out_len;
}

static void test_hop_messages(void **state)
{
	(void)state;
	struct sfy_proxy p = { .proto = SFY_PROTO_SOCKS4, .port = 1080 };
	strcpy(p.host, "10.9.1.2");
	struct sfy_addr dst = { .type = SFY_ATYP_IPV4, .ip = { 10, 9, 2, 2 }, .port = 0 };
	uint8_t out[SFY_HOP_OUT_MAX];
	int err;
	/* SOCKS4: VN 4, CD 2, DSTPORT 0, DSTIP, empty USERID. */
	size_t n = bind_request(&p, &dst, out, &err);
	assert_int_equal(err, 0);
	static const uint8_t s4[] = { 4, 2, 0, 0, 10, 9, 2, 2, 0 };
	assert_int_equal(n, sizeof(s4));
	assert_memory_equal(out, s4, sizeof(s4));
	/* SOCKS5: greeting, then VER 5, CMD 2, RSV, ATYP 1, DST, port 0. */
	p.proto = SFY_PROTO_SOCKS5;
	n = bind_request(&p, &dst, out, &err);
	assert_int_equal(err, 0);
	static const uint8_t s5[] = { 5, 1, 0, 5, 2, 0, 1, 10, 9, 2, 2, 0, 0 };
	assert_int_equal(n, sizeof(s5));
	assert_memory_equal(out, s5, sizeof(s5));
	/* A name goes as a name (SOCKS5 ATYP 3). */
	struct sfy_addr name = { .type = SFY_ATYP_DOMAIN, .name = "ftp.example", .port = 0 };
	n = bind_request(&p, &name, out, &err);
	assert_int_equal(err, 0);
	assert_int_equal(out[4], 2);
	assert_int_equal(out[6], 3);
	/* HTTP has no BIND; SOCKS4 has no IPv6. */
	p.proto = SFY_PROTO_HTTP;
	bind_request(&p, &dst, out, &err);
	assert_int_equal(err, -EOPNOTSUPP);
	p.proto = SFY_PROTO_SOCKS4;
	struct sfy_addr six = { .type = SFY_ATYP_IPV6, .ip = { 0xfd }, .port = 0 };
	bind_request(&p, &six, out, &err);
	assert_int_equal(err, -EAFNOSUPPORT);
}

/* A SOCKS4 BIND's first reply carries the address the peer must reach;
 * read exactly, the second reply stays in the socket. */
static void test_s4_first_reply(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct sfy_proxy p = { .proto = SFY_PROTO_SOCKS4, .port = 1080 };
	strcpy(p.host, "10.9.1.2");
	struct sfy_addr dst = { .type = SFY_ATYP_IPV4, .ip = { 10, 9, 2, 2 }, .port = 0 };
	static struct sfy_hop h;
	static uint8_t in[SFY_HOP_IN_MAX];
	assert_int_equal(sfy_hop_init(&h, &p, SFY_S5_BIND, &dst, false, false,
				      sfy_now_ms() + 2000, NULL), 0);
	assert_int_equal(sfy_hop_step(&h, sv[0], in), SFY_HOP_IN);
	static const uint8_t replies[] = { 0, 90, 0x9c, 0x40, 10, 9, 2, 1,      /* first */
					   0, 90, 0x12, 0x34, 10, 9, 2, 2 };    /* second */
	assert_int_equal(send(sv[1], replies, sizeof(replies), 0), (ssize_t)sizeof(replies));
	assert_int_equal(sfy_hop_step(&h, sv[0], in), 0);
	assert_int_equal(h.bnd.type, SFY_ATYP_IPV4);
	assert_int_equal(h.bnd.port, 40000);
	assert_memory_equal(h.bnd.ip, ((uint8_t[]){ 10, 9, 2, 1 }), 4);
	uint8_t rest[16];
	assert_int_equal(recv(sv[0], rest, sizeof(rest), MSG_DONTWAIT), 8);
	assert_memory_equal(rest, replies + 8, 8);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_address_kinds),
		cmocka_unit_test(test_trigger),
		cmocka_unit_test(test_same_ip),
		cmocka_unit_test(test_hop_messages),
		cmocka_unit_test(test_s4_first_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
