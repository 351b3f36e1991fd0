/* sfy_addr: host strings, sockaddr conversions, formatting. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <cmocka.h>

#include "addr.h"

#include "testutil.h"

static void test_set_host(void **state)
{
	char n255[256], n256[257];
	const struct {
		const char *host;
		int ret;
		enum sfy_atyp type;
		const char *ip;    /* inet_pton text of the expected address */
	} t[] = {
		{ "1.2.3.4", 0, SFY_ATYP_IPV4, "1.2.3.4" },
		{ "255.255.255.255", 0, SFY_ATYP_IPV4, "255.255.255.255" },
		{ "::1", 0, SFY_ATYP_IPV6, "::1" },
		{ "[2001:db8::5]", 0, SFY_ATYP_IPV6, "2001:db8::5" },
		{ "::ffff:10.0.0.1", 0, SFY_ATYP_IPV4, "10.0.0.1" },
		{ "[::ffff:10.0.0.2]", 0, SFY_ATYP_IPV4, "10.0.0.2" },
		{ "example.org", 0, SFY_ATYP_DOMAIN, NULL },
		{ "1.2.3", 0, SFY_ATYP_DOMAIN, NULL },        /* not a dotted quad */
		{ "1.2.3.256", 0, SFY_ATYP_DOMAIN, NULL },
		{ "[]", 0, SFY_ATYP_DOMAIN, NULL },
		{ "[example]", 0, SFY_ATYP_DOMAIN, NULL },
		{ n255, 0, SFY_ATYP_DOMAIN, NULL },
		{ n256, -ENAMETOOLONG, 0, NULL },
		{ "", -EINVAL, 0, NULL },
		{ NULL, -EINVAL, 0, NULL },
	};

	(void)state;
	memset(n255, 'a', 255); n255[255] = 0;
	memset(n256, 'b', 256); n256[256] = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		const char *what = t[i].host ? t[i].host : "(null)";
		struct sfy_addr a;
		uint8_t ip[16];

		EQ(sfy_addr_set_host(&a, t[i].host, 8080), t[i].ret, what);
		if (t[i].ret)
			continue;
		EQ(a.type, t[i].type, what);
		EQ(a.port, 8080, what);
		if (t[i].type == SFY_ATYP_DOMAIN) {
			assert_string_equal(a.name, t[i].host);
		} else {
			int v6 = t[i].type == SFY_ATYP_IPV6;

			EQ(inet_pton(v6 ? AF_INET6 : AF_INET, t[i].ip, ip), 1, what);
			EQ(memcmp(a.ip, ip, v6 ? 16 : 4), 0, what);
		}
	}
}

static void test_sockaddr(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(80) };
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(443),
				   .sin6_scope_id = 3 };
	struct sockaddr_in6 m6 = { .sin6_family = AF_INET6, .sin6_port = htons(53) };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct sfy_addr a;
	struct sockaddr_storage ss;

	(void)state;
	inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
	inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
	inet_pton(AF_INET6, "::ffff:198.51.100.7", &m6.sin6_addr);

	EQ(sfy_addr_from_sockaddr(&a, (struct sockaddr *)&sin, sizeof sin), 0, "sin");
	EQ(a.type, SFY_ATYP_IPV4, "sin");
	EQ(a.port, 80, "sin");
	EQ(memcmp(a.ip, &sin.sin_addr, 4), 0, "sin");
	/* back to AF_INET and to a v4-mapped AF_INET6 */
	EQ(sfy_addr_to_sockaddr(&a, AF_INET, &ss), sizeof sin, "sin back");
	EQ(memcmp(&ss, &sin, sizeof sin), 0, "sin back");
	EQ(sfy_addr_to_sockaddr(&a, AF_INET6, &ss), sizeof s6, "sin mapped");
	{
		struct sockaddr_in6 *o = (struct sockaddr_in6 *)&ss;
		uint8_t want[16] = { [10] = 0xff, [11] = 0xff, 192, 0, 2, 1 };

		EQ(o->sin6_family, AF_INET6, "mapped family");
		EQ(ntohs(o->sin6_port), 80, "mapped port");
		EQ(memcmp(o->sin6_addr.s6_addr, want, 16), 0, "mapped addr");
	}

	EQ(sfy_addr_from_sockaddr(&a, (struct sockaddr *)&s6, sizeof s6), 0, "sin6");
	EQ(a.type, SFY_ATYP_IPV6, "sin6");
	EQ(a.port, 443, "sin6");
	EQ(memcmp(a.ip, &s6.sin6_addr, 16), 0, "sin6");
	EQ(sfy_addr_to_sockaddr(&a, AF_INET, &ss), -EAFNOSUPPORT, "v6 to AF_INET");
	EQ(sfy_addr_to_sockaddr(&a, AF_INET6, &ss), sizeof s6, "sin6 back");
	EQ(memcmp(&((struct sockaddr_in6 *)&ss)->sin6_addr, &s6.sin6_addr, 16), 0, "sin6 back");
	EQ(((struct sockaddr_in6 *)&ss)->sin6_scope_id, 0, "scope dropped");

	EQ(sfy_addr_from_sockaddr(&a, (struct sockaddr *)&m6, sizeof m6), 0, "mapped");
	EQ(a.type, SFY_ATYP_IPV4, "mapped becomes v4");
	EQ(a.port, 53, "mapped");
	EQ(a.ip[0], 198, "mapped ip");
	EQ(a.ip[3], 7, "mapped ip");

	EQ(sfy_addr_from_sockaddr(&a, (struct sockaddr *)&sun, sizeof sun), -EAFNOSUPPORT,
	   "unix");
	EQ(sfy_addr_from_sockaddr(&a, (struct sockaddr *)&sin, sizeof sin - 1), -EINVAL, "short");
	EQ(sfy_addr_from_sockaddr(&a, (struct sockaddr *)&s6, sizeof sin), -EINVAL, "short6");
	EQ(sfy_addr_from_sockaddr(&a, NULL, 16), -EINVAL, "null");

	sfy_addr_set_host(&a, "example.org", 1);
	EQ(sfy_addr_to_sockaddr(&a, AF_INET, &ss), -EAFNOSUPPORT, "domain");
	EQ(sfy_addr_to_sockaddr(&a, AF_INET6, &ss), -EAFNOSUPPORT, "domain6");
	sfy_addr_set_host(&a, "1.2.3.4", 1);
	EQ(sfy_addr_to_sockaddr(&a, AF_UNIX, &ss), -EAFNOSUPPORT, "family unix");
	/* a hand-built v4-mapped IPv6 still converts to AF_INET */
	a.type = SFY_ATYP_IPV6;
	memset(a.ip, 0, 10); a.ip[10] = a.ip[11] = 0xff;
	a.ip[12] = 9; a.ip[13] = 8; a.ip[14] = 7; a.ip[15] = 6;
	EQ(sfy_addr_to_sockaddr(&a, AF_INET, &ss), sizeof sin, "hand mapped");
	EQ(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), 0x09080706, "hand mapped ip");
}

static void test_format(void **state)
{
	const struct {
		const char *host;
		uint16_t port;
		const char *out;
	} t[] = {
		{ "1.2.3.4", 80, "1.2.3.4:80" },
		{ "::1", 443, "[::1]:443" },
		{ "2001:db8::a:b", 0, "[2001:db8::a:b]:0" },
		{ "example.org", 65535, "example.org:65535" },
	};
	char buf[300];
	struct sfy_addr a;

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		EQ(sfy_addr_set_host(&a, t[i].host, t[i].port), 0, t[i].host);
		sfy_addr_format(&a, buf, sizeof buf);
		assert_string_equal(buf, t[i].out);
		/* a short buffer is cut, always NUL-terminated */
		memset(buf, 'x', sizeof buf);
		sfy_addr_format(&a, buf, 5);
		EQ(strlen(buf), 4, t[i].host);
		EQ(memcmp(buf, t[i].out, 4), 0, t[i].host);
	}
	buf[0] = 'x';
	sfy_addr_format(&a, buf, 0);
	EQ(buf[0], 'x', "cap 0 writes nothing");
	/* an unterminated 256-byte name is printed as its first 255 bytes */
	a.type = SFY_ATYP_DOMAIN;
	memset(a.name, 'n', sizeof a.name);
	a.port = 1;
	sfy_addr_format(&a, buf, sizeof buf);
	EQ(strlen(buf), 255 + 2, "unterminated name");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_host),
		cmocka_unit_test(test_sockaddr),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
