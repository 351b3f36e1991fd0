/* One hop's resumable steps (handshake.h) over a socketpair: the messages
 * each protocol builds fit the hop's buffer, whatever their length, and a
 * hop answered in pieces completes with exactly its reply consumed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "handshake.h"
#include "io.h"

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
				      sfy_now_ms() + 1000), 0);
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
	struct sfy_proxy p = { .proto = SFY_PROTO_SOCKS5, .port = 1080, .has_user = true,
			       .has_pass = true };
	strcpy(p.host, "127.0.0.1");
	strcpy(p.user, "alice");
	strcpy(p.pass, "secret");
	struct sfy_addr dst = { .type = SFY_ATYP_DOMAIN, .name = "example.org", .port = 443 };
	static uint8_t in[SFY_HOP_IN_MAX];
	assert_int_equal(sfy_hop_init(&g.h, &p, SFY_S5_CONNECT, &dst, true, false,
				      sfy_now_ms() + 2000), 0);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_longest_connect_fits),
		cmocka_unit_test(test_socks5_in_pieces),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
