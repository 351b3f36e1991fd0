/* sfy_dest_read(): every address form against every kind of socket, read
 * as the kernel reads it (each row was checked against Linux 6.x with a
 * direct call: tests/tools/addrforms.c shows the same forms on the wire). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <cmocka.h>

#include "dest.h"
#include "sfy.h"
#include "testutil.h"

enum fam { F4 = AF_INET, F6 = AF_INET6, FU = AF_UNSPEC, FX = 99 };

static const struct row {
	const char *what;
	enum sfy_sockproto proto;
	int sockfam;
	int v6only;
	enum sfy_op op;
	int flags;
	int fam;                /* the address's sa_family */
	const char *ip;         /* written as fam's address (FU: as IPv4) */
	unsigned port;
	socklen_t len;
	enum sfy_read want;
	const char *dest;       /* SFY_READ_DEST: the address read */
} rows[] = {
	/* TCP connect */
	{ "tcp4 plain", SFY_SOCK_TCP, F4, 0, SFY_OP_CONNECT, 0, F4, "10.1.2.3", 80, 16, SFY_READ_DEST, "10.1.2.3" },
	{ "tcp4 long", SFY_SOCK_TCP, F4, 0, SFY_OP_CONNECT, 0, F4, "10.1.2.3", 80, 128, SFY_READ_DEST, "10.1.2.3" },
	{ "tcp4 too long", SFY_SOCK_TCP, F4, 0, SFY_OP_CONNECT, 0, F4, "10.1.2.3", 80, 129, SFY_READ_KERNEL, NULL },
	{ "tcp4 short", SFY_SOCK_TCP, F4, 0, SFY_OP_CONNECT, 0, F4, "10.1.2.3", 80, 15, SFY_READ_KERNEL, NULL },
	{ "tcp4 AF_UNSPEC", SFY_SOCK_TCP, F4, 0, SFY_OP_CONNECT, 0, FU, "10.1.2.3", 80, 16, SFY_READ_DISCONNECT, NULL },
	{ "tcp4 AF_UNSPEC len 1", SFY_SOCK_TCP, F4, 0, SFY_OP_CONNECT, 0, FU, "10.1.2.3", 80, 1, SFY_READ_KERNEL, NULL },
	{ "tcp4 AF_INET6", SFY_SOCK_TCP, F4, 0, SFY_OP_CONNECT, 0, F6, "::ffff:10.1.2.3", 80, 28, SFY_READ_KERNEL, NULL },
	{ "tcp4 0.0.0.0", SFY_SOCK_TCP, F4, 0, SFY_OP_CONNECT, 0, F4, "0.0.0.0", 80, 16, SFY_READ_DEST, "127.0.0.1" },
	{ "tcp6 len 28", SFY_SOCK_TCP, F6, 0, SFY_OP_CONNECT, 0, F6, "2001:db8::1", 80, 28, SFY_READ_DEST, "2001:db8::1" },
	{ "tcp6 len 24", SFY_SOCK_TCP, F6, 0, SFY_OP_CONNECT, 0, F6, "2001:db8::1", 80, 24, SFY_READ_DEST, "2001:db8::1" },
	{ "tcp6 mapped len 24", SFY_SOCK_TCP, F6, 0, SFY_OP_CONNECT, 0, F6, "::ffff:10.1.2.3", 80, 24, SFY_READ_DEST, "::ffff:10.1.2.3" },
	{ "tcp6 len 23", SFY_SOCK_TCP, F6, 0, SFY_OP_CONNECT, 0, F6, "2001:db8::1", 80, 23, SFY_READ_KERNEL, NULL },
	{ "tcp6 mapped v6only", SFY_SOCK_TCP, F6, 1, SFY_OP_CONNECT, 0, F6, "::ffff:10.1.2.3", 80, 28, SFY_READ_KERNEL, NULL },
	{ "tcp6 AF_INET", SFY_SOCK_TCP, F6, 0, SFY_OP_CONNECT, 0, F4, "10.1.2.3", 80, 28, SFY_READ_KERNEL, NULL },
	{ "tcp6 ::", SFY_SOCK_TCP, F6, 0, SFY_OP_CONNECT, 0, F6, "::", 80, 28, SFY_READ_DEST, "::1" },
	{ "tcp6 AF_UNSPEC", SFY_SOCK_TCP, F6, 0, SFY_OP_CONNECT, 0, FU, "10.1.2.3", 80, 2, SFY_READ_DISCONNECT, NULL },
	/* TCP sends: the address counts only with MSG_FASTOPEN */
	{ "tcp4 sendto", SFY_SOCK_TCP, F4, 0, SFY_OP_SENDTO, 0, F4, "10.1.2.3", 80, 16, SFY_READ_KERNEL, NULL },
	{ "tcp4 sendto TFO", SFY_SOCK_TCP, F4, 0, SFY_OP_SENDTO, MSG_FASTOPEN, F4, "10.1.2.3", 80, 16, SFY_READ_DEST, "10.1.2.3" },
	{ "tcp4 sendto TFO AF_UNSPEC", SFY_SOCK_TCP, F4, 0, SFY_OP_SENDTO, MSG_FASTOPEN, FU, "10.1.2.3", 80, 16, SFY_READ_KERNEL, NULL },
	{ "tcp6 sendmsg TFO mapped 24", SFY_SOCK_TCP, F6, 0, SFY_OP_SENDMSG, MSG_FASTOPEN, F6, "::ffff:10.1.2.3", 80, 24, SFY_READ_DEST, "::ffff:10.1.2.3" },
	{ "tcp4 sendmsg TFO namelen 1000", SFY_SOCK_TCP, F4, 0, SFY_OP_SENDMSG, MSG_FASTOPEN, F4, "10.1.2.3", 80, 1000, SFY_READ_DEST, "10.1.2.3" },
	{ "tcp4 sendto TFO len 1000", SFY_SOCK_TCP, F4, 0, SFY_OP_SENDTO, MSG_FASTOPEN, F4, "10.1.2.3", 80, 1000, SFY_READ_KERNEL, NULL },
	/* UDP sends */
	{ "udp4 sendto", SFY_SOCK_UDP, F4, 0, SFY_OP_SENDTO, 0, F4, "10.1.2.3", 53, 16, SFY_READ_DEST, "10.1.2.3" },
	{ "udp4 sendto AF_UNSPEC", SFY_SOCK_UDP, F4, 0, SFY_OP_SENDTO, 0, FU, "10.1.2.3", 53, 16, SFY_READ_DEST, "10.1.2.3" },
	{ "udp4 sendto AF_UNSPEC short", SFY_SOCK_UDP, F4, 0, SFY_OP_SENDTO, 0, FU, "10.1.2.3", 53, 15, SFY_READ_KERNEL, NULL },
	{ "udp4 sendto port 0", SFY_SOCK_UDP, F4, 0, SFY_OP_SENDTO, 0, F4, "10.1.2.3", 0, 16, SFY_READ_KERNEL, NULL },
	{ "udp4 sendto AF_INET6", SFY_SOCK_UDP, F4, 0, SFY_OP_SENDTO, 0, F6, "::ffff:10.1.2.3", 53, 28, SFY_READ_KERNEL, NULL },
	{ "udp4 sendto family 99", SFY_SOCK_UDP, F4, 0, SFY_OP_SENDTO, 0, FX, "10.1.2.3", 53, 16, SFY_READ_KERNEL, NULL },
	{ "udp4 sendto NULL", SFY_SOCK_UDP, F4, 0, SFY_OP_SENDTO, 0, -1, NULL, 0, 0, SFY_READ_CONNECTED, NULL },
	{ "udp4 sendmsg namelen 0", SFY_SOCK_UDP, F4, 0, SFY_OP_SENDMSG, 0, F4, "10.1.2.3", 53, 0, SFY_READ_CONNECTED, NULL },
	{ "udp6 sendto AF_INET", SFY_SOCK_UDP, F6, 0, SFY_OP_SENDTO, 0, F4, "10.1.2.3", 53, 16, SFY_READ_DEST, "::ffff:10.1.2.3" },
	{ "udp6 sendto AF_INET v6only", SFY_SOCK_UDP, F6, 1, SFY_OP_SENDTO, 0, F4, "10.1.2.3", 53, 16, SFY_READ_KERNEL, NULL },
	{ "udp6 sendto AF_INET short", SFY_SOCK_UDP, F6, 0, SFY_OP_SENDTO, 0, F4, "10.1.2.3", 53, 15, SFY_READ_KERNEL, NULL },
	{ "udp6 sendto AF_UNSPEC", SFY_SOCK_UDP, F6, 0, SFY_OP_SENDTO, 0, FU, "10.1.2.3", 53, 16, SFY_READ_CONNECTED, NULL },
	{ "udp6 sendto len 24", SFY_SOCK_UDP, F6, 0, SFY_OP_SENDTO, 0, F6, "2001:db8::1", 53, 24, SFY_READ_DEST, "2001:db8::1" },
	{ "udp6 sendto mapped len 24", SFY_SOCK_UDP, F6, 0, SFY_OP_SENDTO, 0, F6, "::ffff:10.1.2.3", 53, 24, SFY_READ_DEST, "::ffff:10.1.2.3" },
	{ "udp6 sendto mapped v6only", SFY_SOCK_UDP, F6, 1, SFY_OP_SENDTO, 0, F6, "::ffff:10.1.2.3", 53, 28, SFY_READ_KERNEL, NULL },
	{ "udp6 sendto len 23", SFY_SOCK_UDP, F6, 0, SFY_OP_SENDTO, 0, F6, "2001:db8::1", 53, 23, SFY_READ_KERNEL, NULL },
	{ "udp6 sendto port 0", SFY_SOCK_UDP, F6, 0, SFY_OP_SENDTO, 0, F6, "2001:db8::1", 0, 28, SFY_READ_KERNEL, NULL },
	/* UDP connect */
	{ "udp4 connect", SFY_SOCK_UDP, F4, 0, SFY_OP_CONNECT, 0, F4, "10.1.2.3", 53, 16, SFY_READ_DEST, "10.1.2.3" },
	{ "udp4 connect port 0", SFY_SOCK_UDP, F4, 0, SFY_OP_CONNECT, 0, F4, "10.1.2.3", 0, 16, SFY_READ_DEST, "10.1.2.3" },
	{ "udp4 connect AF_UNSPEC", SFY_SOCK_UDP, F4, 0, SFY_OP_CONNECT, 0, FU, "10.1.2.3", 53, 2, SFY_READ_DISCONNECT, NULL },
	{ "udp6 connect AF_INET", SFY_SOCK_UDP, F6, 0, SFY_OP_CONNECT, 0, F4, "10.1.2.3", 53, 16, SFY_READ_DEST, "::ffff:10.1.2.3" },
	{ "udp6 connect AF_INET v6only", SFY_SOCK_UDP, F6, 1, SFY_OP_CONNECT, 0, F4, "10.1.2.3", 53, 16, SFY_READ_KERNEL, NULL },
	{ "udp6 connect mapped len 24", SFY_SOCK_UDP, F6, 0, SFY_OP_CONNECT, 0, F6, "::ffff:10.1.2.3", 53, 24, SFY_READ_DEST, "::ffff:10.1.2.3" },
	{ "udp6 connect AF_UNSPEC", SFY_SOCK_UDP, F6, 0, SFY_OP_CONNECT, 0, FU, "10.1.2.3", 53, 28, SFY_READ_DISCONNECT, NULL },
	/* other protocols: whatever could be an address is one */
	{ "raw4 sendto AF_UNSPEC", SFY_SOCK_OTHER, F4, 0, SFY_OP_SENDTO, 0, FU, "10.1.2.3", 0, 16, SFY_READ_DEST, "10.1.2.3" },
	{ "raw4 sendto AF_INET6", SFY_SOCK_OTHER, F4, 0, SFY_OP_SENDTO, 0, F6, "2001:db8::1", 0, 28, SFY_READ_DEST, "2001:db8::1" },
	{ "raw6 sendto AF_INET", SFY_SOCK_OTHER, F6, 0, SFY_OP_SENDTO, 0, F4, "10.1.2.3", 0, 16, SFY_READ_DEST, "::ffff:10.1.2.3" },
	{ "icmp connect", SFY_SOCK_OTHER, F4, 0, SFY_OP_CONNECT, 0, F4, "10.1.2.3", 0, 16, SFY_READ_DEST, "10.1.2.3" },
	{ "icmp connect AF_UNSPEC", SFY_SOCK_OTHER, F4, 0, SFY_OP_CONNECT, 0, FU, "10.1.2.3", 0, 16, SFY_READ_DISCONNECT, NULL },
	/* not an inet socket */
	{ "unix", SFY_SOCK_NONE, 0, 0, SFY_OP_CONNECT, 0, F4, "10.1.2.3", 80, 16, SFY_READ_KERNEL, NULL },
};

static void build(const struct row *r, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (!r->ip)
		return;
	if (r->fam == F6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(r->port);
		s6->sin6_scope_id = 7;  /* beyond a 24-byte length: must not be read */
		assert_int_equal(inet_pton(AF_INET6, r->ip, &s6->sin6_addr), 1);
		return;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = (sa_family_t)r->fam;
	s4->sin_port = htons(r->port);
	assert_int_equal(inet_pton(AF_INET, r->ip, &s4->sin_addr), 1);
}

static void test_read(void **state)
{
	(void)state;
	for (size_t i = 0; i < SFY_ARRAY_LEN(rows); i++) {
		const struct row *r = &rows[i];
		/* the program's buffer: 1000 bytes, so long lengths stay in it */
		union { struct sockaddr_storage ss; char b[1000]; } buf;
		memset(&buf, 0, sizeof(buf));
		build(r, &buf.ss);
		struct sfy_dest d;
		memset(&d, 0xa5, sizeof(d));
		d.si = (struct sfy_sockinfo){ .family = r->sockfam, .proto = r->proto,
					      .v6only = r->v6only };
		enum sfy_read got = sfy_dest_read(-1, r->op, r->flags,
						  r->ip ? (struct sockaddr *)&buf : NULL, r->len, &d);
		EQ(got, r->want, r->what);
		if (got != SFY_READ_DEST)
			continue;
		char txt[INET6_ADDRSTRLEN] = "";
		/* the socket's family, but for an IPv6 address on another
		 * protocol's AF_INET socket (read only to be refused) */
		int fam = strchr(r->dest, ':') ? AF_INET6 : AF_INET;
		EQ(d.sa.ss_family, fam, r->what);
		if (fam == AF_INET) {
			const struct sockaddr_in *o = (const struct sockaddr_in *)&d.sa;
			EQ(d.len, sizeof(*o), r->what);
			inet_ntop(AF_INET, &o->sin_addr, txt, sizeof(txt));
			EQ(ntohs(o->sin_port), r->port, r->what);
		} else {
			const struct sockaddr_in6 *o = (const struct sockaddr_in6 *)&d.sa;
			EQ(d.len, sizeof(*o), r->what);
			inet_ntop(AF_INET6, &o->sin6_addr, txt, sizeof(txt));
			EQ(ntohs(o->sin6_port), r->port, r->what);
			EQ(o->sin6_scope_id, r->fam == F6 && r->len >= 28 ? 7 : 0, r->what);
		}
		if (strcmp(txt, r->dest)) {
			print_error("%s: read %s, want %s\n", r->what, txt, r->dest);
			fail();
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
