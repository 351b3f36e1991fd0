/* One hop's resumable steps (handshake.h) over a socketpair: the messages
 * each protocol builds fit the hop's buffer, whatever their length, and a
 * hop answered in pieces completes with exactly its reply consumed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "handshake.h"
#include "io.h"
#include "isolate.h"

#include "testutil.h"

/* The hop with a guard behind it: nothing may be written past the hop. */
static struct {
	struct sfy_hop h;
	uint8_t guard[2048];
} g;

static void fill(char *s, size_t n, char c)
{
	memset(s, c, n);
	s[n] = 0;
}

/* socks5://alice:secret@127.0.0.1:1080 */
static struct sfy_proxy alice_proxy(void)
{
	struct sfy_proxy p = { .proto = SFY_PROTO_SOCKS5, .port = 1080, .has_user = true,
			       .has_pass = true };
	strcpy(p.host, "127.0.0.1");
	strcpy(p.user, "alice");
	strcpy(p.pass, "secret");
	return p;
}

/* The longest HTTP CONNECT: 255-byte name, 255-byte user and password. */
static void test_longest_connect_fits(void **state)
{
	(void)state;
	struct sfy_proxy p = { .proto = SFY_PROTO_HTTP, .port = 3128, .has_user = true,
			       .has_pass = true };
	strcpy(p.host, "127.0.0.1");
	fill(p.user, 255, 'u');
	fill(p.pass, 255, 'p');
	struct sfy_addr dst = { .type = SFY_ATYP_DOMAIN, .port = 65535 };
	fill(dst.name, 255, 'n');
	memset(g.guard, 0xa5, sizeof(g.guard));
	assert_int_equal(sfy_hop_init(&g.h, &p, SFY_S5_CONNECT, &dst, true, false,
				      sfy_now_ms() + 1000, NULL), 0);
	assert_true(g.h.out_len > 1000);
	assert_true(g.h.out_len <= sizeof(g.h.out));
	for (size_t i = 0; i < sizeof(g.guard); i++)
		assert_int_equal(g.guard[i], 0xa5);
	assert_memory_equal(g.h.out, "CONNECT ", 8);
}

/* SOCKS5 with auth, pipelined: all three messages go at once; the replies,
 * sent one byte at a time, are read exactly, and the byte after them stays
 * in the socket for the program. */
static void test_socks5_in_pieces(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct sfy_proxy p = alice_proxy();
	struct sfy_addr dst = { .type = SFY_ATYP_DOMAIN, .name = "example.org", .port = 443 };
	static uint8_t in[SFY_HOP_IN_MAX];
	assert_int_equal(sfy_hop_init(&g.h, &p, SFY_S5_CONNECT, &dst, true, false,
				      sfy_now_ms() + 2000, NULL), 0);
	static const uint8_t replies[] = { 5, 2, 1, 0, 5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90, 'X' };
	int r = sfy_hop_step(&g.h, sv[0], in);
	assert_int_equal(r, SFY_HOP_IN);
	uint8_t sent[SFY_HOP_OUT_MAX];
	ssize_t n = recv(sv[1], sent, sizeof(sent), MSG_DONTWAIT);
	assert_int_equal(n, (ssize_t)g.h.out_len);      /* one flight */
	for (size_t i = 0; i + 1 < sizeof(replies); i++) {
		assert_int_equal(send(sv[1], &replies[i], 1, 0), 1);
		r = sfy_hop_step(&g.h, sv[0], in);
		if (i + 2 < sizeof(replies))
			assert_int_equal(r, SFY_HOP_IN);
	}
	assert_int_equal(r, 0);
	assert_int_equal(g.h.bnd.type, SFY_ATYP_IPV4);
	assert_int_equal(g.h.bnd.port, 8080);
	assert_int_equal(send(sv[1], "X", 1, 0), 1);
	char c;
	assert_int_equal(recv(sv[0], &c, 1, 0), 1);
	assert_int_equal(c, 'X');
	close(sv[0]);
	close(sv[1]);
}

/* Reads what the hop has sent so far (nothing more will come). */
static size_t drain(int fd, uint8_t *buf, size_t cap)
{
	ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
	return n > 0 ? (size_t)n : 0;
}

/* Isolation on a hop without credentials (isolate.h): the greeting offers
 * NONE and USERPASS and goes alone; the server's choice decides whether
 * "<torS0X>0" and the token follow (pipelined with the request) or only the
 * request does. A hop with its own credentials keeps them. */
static void isolation_run(bool pipelined, uint8_t method)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct sfy_proxy p = { .proto = SFY_PROTO_SOCKS5H, .port = 9050 };
	strcpy(p.host, "127.0.0.1");
	struct sfy_addr dst = { .type = SFY_ATYP_DOMAIN, .name = "x.onion", .port = 80 };
	static uint8_t in[SFY_HOP_IN_MAX];
	const char *tok = "0123456789abcdef0123456789abcdef";
	assert_int_equal(sfy_hop_init(&g.h, &p, SFY_S5_CONNECT, &dst, pipelined, false,
				      sfy_now_ms() + 2000, tok), 0);
	assert_int_equal(sfy_hop_step(&g.h, sv[0], in), SFY_HOP_IN);
	uint8_t sent[SFY_HOP_OUT_MAX];
	static const uint8_t greeting[] = { 5, 2, 0, 2 };
	assert_int_equal(drain(sv[1], sent, sizeof(sent)), sizeof(greeting));
	assert_memory_equal(sent, greeting, sizeof(greeting));
	uint8_t choice[] = { 5, method };
	assert_int_equal(send(sv[1], choice, 2, 0), 2);
	int r = sfy_hop_step(&g.h, sv[0], in);
	static const uint8_t request[] = { 5, 1, 0, 3, 7, 'x', '.', 'o', 'n', 'i', 'o', 'n', 0, 80 };
	uint8_t auth[3 + 9 + 32];
	auth[0] = 1;
	auth[1] = 9;
	memcpy(auth + 2, SFY_ISOLATE_USER, 9);
	auth[11] = 32;
	memcpy(auth + 12, tok, 32);
	size_t n = drain(sv[1], sent, sizeof(sent));
	if (method == SFY_S5_AUTH_NONE) {
		/* no credentials ever: only the request follows */
		assert_int_equal(r, SFY_HOP_IN);
		assert_int_equal(n, sizeof(request));
		assert_memory_equal(sent, request, sizeof(request));
	} else {
		assert_int_equal(r, SFY_HOP_IN);
		assert_true(n >= sizeof(auth));
		assert_memory_equal(sent, auth, sizeof(auth));
		if (pipelined) {
			assert_int_equal(n, sizeof(auth) + sizeof(request));
			assert_memory_equal(sent + sizeof(auth), request, sizeof(request));
		} else {
			assert_int_equal(n, sizeof(auth));
		}
		assert_int_equal(send(sv[1], "\1\0", 2, 0), 2);
		r = sfy_hop_step(&g.h, sv[0], in);
		assert_int_equal(r, SFY_HOP_IN);
		n = drain(sv[1], sent, sizeof(sent));
		if (!pipelined) {
			assert_int_equal(n, sizeof(request));
			assert_memory_equal(sent, request, sizeof(request));
		} else {
			assert_int_equal(n, 0);
		}
	}
	static const uint8_t ok[] = { 5, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
	assert_int_equal(send(sv[1], ok, sizeof(ok), 0), (ssize_t)sizeof(ok));
	assert_int_equal(sfy_hop_step(&g.h, sv[0], in), 0);
	close(sv[0]);
	close(sv[1]);
}

static void test_isolation(void **state)
{
	(void)state;
	isolation_run(true, SFY_S5_AUTH_USERPASS);
	isolation_run(false, SFY_S5_AUTH_USERPASS);
	isolation_run(true, SFY_S5_AUTH_NONE);
	isolation_run(false, SFY_S5_AUTH_NONE);
}

/* A method we did not offer is still refused; a hop with credentials of
 * its own sends them, not the token. */
static void test_isolation_own_credentials(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct sfy_proxy p = alice_proxy();
	struct sfy_addr dst = { .type = SFY_ATYP_IPV4, .ip = { 10, 0, 0, 1 }, .port = 80 };
	static uint8_t in[SFY_HOP_IN_MAX];
	assert_int_equal(sfy_hop_init(&g.h, &p, SFY_S5_CONNECT, &dst, true, false,
				      sfy_now_ms() + 2000, "0123456789abcdef0123456789abcdef"), 0);
	assert_int_equal(sfy_hop_step(&g.h, sv[0], in), SFY_HOP_IN);
	uint8_t sent[SFY_HOP_OUT_MAX];
	size_t n = drain(sv[1], sent, sizeof(sent));
	static const uint8_t head[] = { 5, 1, 2, 1, 5, 'a', 'l', 'i', 'c', 'e', 6 };
	assert_int_equal(n, g.h.out_len);               /* one flight, as before */
	assert_memory_equal(sent, head, sizeof(head));
	close(sv[0]);
	close(sv[1]);

	/* Isolation offered, the server picks GSSAPI: refused. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	p.has_user = p.has_pass = false;
	assert_int_equal(sfy_hop_init(&g.h, &p, SFY_S5_CONNECT, &dst, true, false,
				      sfy_now_ms() + 2000, "0123456789abcdef0123456789abcdef"), 0);
	assert_int_equal(sfy_hop_step(&g.h, sv[0], in), SFY_HOP_IN);
	assert_int_equal(send(sv[1], "\5\1", 2, 0), 2);
	assert_int_equal(sfy_hop_step(&g.h, sv[0], in), -EPROTO);
	close(sv[0]);
	close(sv[1]);
}

/* Tokens: 32 hex of the tree, the tree's from the environment when good;
 * connection passwords differ per call and share nothing with the tree's
 * token (a later hop must not link them). */
static void test_tokens(void **state)
{
	(void)state;
	char a[SFY_ISOLATE_PASS_MAX], b[SFY_ISOLATE_PASS_MAX];
	const char *t = sfy_isolate_tree_token();
	assert_true(sfy_isolate_token_ok(t));
	assert_null(sfy_isolate_pass(SFY_ISOLATE_NONE, a));
	assert_string_equal(sfy_isolate_pass(SFY_ISOLATE_PROCESS, a), t);
	assert_string_equal(sfy_isolate_pass(SFY_ISOLATE_PROCESS, b), t);
	assert_non_null(sfy_isolate_pass(SFY_ISOLATE_CONNECTION, a));
	assert_non_null(sfy_isolate_pass(SFY_ISOLATE_CONNECTION, b));
	assert_true(sfy_isolate_token_ok(a));
	assert_true(sfy_isolate_token_ok(b));
	assert_string_not_equal(a, t);
	assert_string_not_equal(b, t);
	assert_null(strstr(a, t));
	assert_string_not_equal(a, b);
	assert_false(sfy_isolate_token_ok("0123456789abcdef0123456789abcde"));
	assert_false(sfy_isolate_token_ok("0123456789abcdef0123456789abcdeF"));
	assert_false(sfy_isolate_token_ok(NULL));
	/* The launcher's fresh token replaces the tree's, in the environment. */
	char old[SFY_ISOLATE_TOKEN_LEN + 1];
	strcpy(old, t);
	assert_int_equal(sfy_isolate_export(), 0);
	assert_true(sfy_isolate_token_ok(getenv(SFY_ISOLATE_ENV)));
	assert_string_equal(getenv(SFY_ISOLATE_ENV), sfy_isolate_tree_token());
	assert_string_not_equal(old, sfy_isolate_tree_token());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_longest_connect_fits),
		cmocka_unit_test(test_socks5_in_pieces),
		cmocka_unit_test(test_isolation),
		cmocka_unit_test(test_isolation_own_credentials),
		cmocka_unit_test(test_tokens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
