/* dnsprobe: calls every resolver entry point socksify interposes for one
 * name and prints what each returned, one line per call.
 *
 *   dnsprobe [-e fake|addr|any] [-r NET/PREFIX] [-a ADDR] [-R answer|refuse] NAME
 *
 * -e fake (default): every forward lookup must give the same address inside
 *    the fake range (-r, default 224.0.0.0/8) or its IPv6 forms
 *    (fd73:6f63:6b73::/96, ::ffff:a.b.c.d); reverse lookups of it must give
 *    NAME back; every res_* A query must be answered by the in-library
 *    DNS responder with an address inside the fake range (the same one
 *    for NAME itself), or -- with -R refuse (dns_responder: off) -- fail
 *    cleanly (-1, h_errno NO_RECOVERY or TRY_AGAIN).
 * -e addr: every IPv4 forward lookup must give ADDR (-a), e.g. for
 *    dns: local or an /etc/hosts name; res_* calls are not checked.
 * -e any: only print.
 * Exit 0 when every check held, 1 otherwise (each failure says why). */
#include <errno.h>
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *name, *expect = "fake", *res_expect = "answer";
static uint32_t net = 0xe0000000u, mask = 0xff000000u, want_addr;  /* host order */
static uint32_t first_fake;                                        /* network order */
static int failures;

static void bad(const char *what, const char *why)
{
	printf("FAIL %s: %s\n", what, why);
	failures++;
}

/* Checks one IPv4 result (network order). */
static void check_v4(const char *what, uint32_t a)
{
	char buf[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &a, buf, sizeof(buf));
	printf("%-40s %s\n", what, buf);
	if (!strcmp(expect, "fake")) {
		if ((ntohl(a) & mask) != net)
			bad(what, "not a fake address");
		else if (!first_fake)
			first_fake = a;
		else if (a != first_fake)
			bad(what, "a different fake address than before");
	} else if (!strcmp(expect, "addr") && ntohl(a) != want_addr) {
		bad(what, "not the expected address");
	}
}

static void check_v6(const char *what, const uint8_t *b)
{
	static const uint8_t fake6[12] = { 0xfd, 0x73, 0x6f, 0x63, 0x6b, 0x73 };
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	char buf[INET6_ADDRSTRLEN];
	uint32_t a;
	inet_ntop(AF_INET6, b, buf, sizeof(buf));
	if (memcmp(b, fake6, 12) && memcmp(b, mapped, 12)) {
		printf("%-40s %s\n", what, buf);
		if (!strcmp(expect, "fake"))
			bad(what, "not a fake IPv6 address");
		return;
	}
	memcpy(&a, b + 12, 4);
	printf("%-40s %s\n", what, buf);
	check_v4("    (its IPv4)", a);
}

static void check_sa(const char *what, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		check_v4(what, ((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr);
	else if (sa->sa_family == AF_INET6)
		check_v6(what, ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr);
	else
		bad(what, "unexpected family");
}

struct gai_case {
	const char *label, *service;
	int family, socktype, flags;
	int nwant;              /* entries expected, 0 = do not count */
	int port;
};

static void probe_getaddrinfo(void)
{
	static const struct gai_case cases[] = {
		{ "getaddrinfo(NULL hints)", NULL, -1, 0, 0, 3, 0 },
		{ "getaddrinfo(AF_UNSPEC)", NULL, AF_UNSPEC, 0, 0, 3, 0 },
		{ "getaddrinfo(AF_INET, STREAM, 80)", "80", AF_INET, SOCK_STREAM, 0, 1, 80 },
		{ "getaddrinfo(AF_INET6)", "443", AF_INET6, SOCK_STREAM, 0, 1, 443 },
		{ "getaddrinfo(AF_INET6, V4MAPPED)", NULL, AF_INET6, SOCK_STREAM, AI_V4MAPPED, 1, 0 },
		{ "getaddrinfo(AI_CANONNAME)", NULL, AF_UNSPEC, SOCK_STREAM, AI_CANONNAME, 1, 0 },
		{ "getaddrinfo(AI_ADDRCONFIG)", "80", AF_UNSPEC, 0, AI_ADDRCONFIG, 3, 80 },
		{ "getaddrinfo(AI_PASSIVE)", "8080", AF_INET, SOCK_STREAM, AI_PASSIVE, 1, 8080 },
		{ "getaddrinfo(service http)", "http", AF_INET, SOCK_STREAM, 0, 1, 80 },
		{ "getaddrinfo(AI_NUMERICSERV)", "22", AF_INET, 0, AI_NUMERICSERV, 3, 22 },
		{ "getaddrinfo(socktype 0, http)", "http", AF_INET, 0, 0, 1, 80 },
		{ "getaddrinfo(socktype 0, domain)", "domain", AF_INET, 0, 0, 2, 53 },
		{ "getaddrinfo(DGRAM, 53)", "53", AF_INET, SOCK_DGRAM, 0, 1, 53 },
		{ "getaddrinfo(socktype 0, 80)", "80", AF_INET, 0, 0, 3, 80 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct gai_case *c = &cases[i];
		struct addrinfo h = { .ai_family = c->family, .ai_socktype = c->socktype,
				      .ai_flags = c->flags }, *res, *ai;
		int rc = getaddrinfo(name, c->service, c->family < 0 ? NULL : &h, &res);
		if (rc) {
			printf("%-40s error %s\n", c->label, gai_strerror(rc));
			/* a real name may well lack IPv6: only fake mode insists */
			if (c->family != AF_INET6 || !strcmp(expect, "fake"))
				bad(c->label, "failed");
			continue;
		}
		int n = 0;
		for (ai = res; ai; ai = ai->ai_next, n++) {
			check_sa(c->label, ai->ai_addr);
			uint16_t port = ntohs(((struct sockaddr_in *)(void *)ai->ai_addr)->sin_port);
			if (port != c->port && strcmp(expect, "any"))
				bad(c->label, "wrong port");
		}
		if (c->nwant && n != c->nwant && strcmp(expect, "any"))
			bad(c->label, "wrong number of entries");
		if ((c->flags & AI_CANONNAME) && (!res->ai_canonname || !*res->ai_canonname))
			bad(c->label, "no canonical name");
		freeaddrinfo(res);
	}
	struct addrinfo h = { .ai_flags = AI_NUMERICHOST }, *res;
	int rc = getaddrinfo(name, NULL, &h, &res);
	printf("%-40s %s\n", "getaddrinfo(AI_NUMERICHOST)", rc ? gai_strerror(rc) : "ok");
	if (rc == 0)
		freeaddrinfo(res);
	if (rc != EAI_NONAME && strcmp(expect, "any"))
		bad("getaddrinfo(AI_NUMERICHOST)", "a name must give EAI_NONAME");
}

static void check_he(const char *what, const struct hostent *he, int herr)
{
	if (!he) {
		printf("%-40s error %s\n", what, hstrerror(herr));
		if (!strstr(what, "INET6") || !strcmp(expect, "fake"))
			bad(what, "failed");
		return;
	}
	if (he->h_addrtype == AF_INET)
		check_v4(what, *(uint32_t *)(void *)he->h_addr_list[0]);
	else
		check_v6(what, (uint8_t *)he->h_addr_list[0]);
}

static void probe_gethostbyname(void)
{
	struct hostent he, *res;
	char buf[1024];
	int herr, rc;

	check_he("gethostbyname", gethostbyname(name), h_errno);
	check_he("gethostbyname2(AF_INET)", gethostbyname2(name, AF_INET), h_errno);
	check_he("gethostbyname2(AF_INET6)", gethostbyname2(name, AF_INET6), h_errno);
	rc = gethostbyname_r(name, &he, buf, sizeof(buf), &res, &herr);
	check_he("gethostbyname_r", rc ? NULL : res, herr);
	rc = gethostbyname2_r(name, AF_INET, &he, buf, sizeof(buf), &res, &herr);
	check_he("gethostbyname2_r(AF_INET)", rc ? NULL : res, herr);
	rc = gethostbyname2_r(name, AF_INET6, &he, buf, sizeof(buf), &res, &herr);
	check_he("gethostbyname2_r(AF_INET6)", rc ? NULL : res, herr);
	rc = gethostbyname_r(name, &he, buf, 8, &res, &herr);
	printf("%-40s rc=%d\n", "gethostbyname_r(8-byte buffer)", rc);
	if (rc != ERANGE && strcmp(expect, "any"))
		bad("gethostbyname_r(8-byte buffer)", "must return ERANGE");
}

static void check_name(const char *what, const char *got, const char *want)
{
	printf("%-40s %s\n", what, got ? got : "(none)");
	if (!strcmp(expect, "fake") && (!got || strcasecmp(got, want)))
		bad(what, "does not map back to the name");
}

static void probe_reverse(void)
{
	struct hostent he, *res;
	char buf[1024], host[NI_MAXHOST], serv[NI_MAXSERV], want[300];
	int herr;
	uint32_t a = first_fake;

	if (!a || strcmp(expect, "fake"))
		return;
	snprintf(want, sizeof(want), "%s", name);
	if (*want && want[strlen(want) - 1] == '.')
		want[strlen(want) - 1] = '\0';
	struct hostent *r = gethostbyaddr(&a, 4, AF_INET);
	check_name("gethostbyaddr", r ? r->h_name : NULL, want);
	if (gethostbyaddr_r(&a, 4, AF_INET, &he, buf, sizeof(buf), &res, &herr) || !res)
		res = NULL;
	check_name("gethostbyaddr_r", res ? res->h_name : NULL, want);

	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(443), .sin_addr = { a } };
	int rc = getnameinfo((struct sockaddr *)&sin, sizeof(sin), host, sizeof(host), serv,
			     sizeof(serv), NI_NUMERICSERV);
	check_name("getnameinfo", rc ? NULL : host, want);
	rc = getnameinfo((struct sockaddr *)&sin, sizeof(sin), host, sizeof(host), NULL, 0,
			 NI_NAMEREQD);
	check_name("getnameinfo(NI_NAMEREQD)", rc ? NULL : host, want);
	rc = getnameinfo((struct sockaddr *)&sin, sizeof(sin), host, sizeof(host), serv,
			 sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
	inet_ntop(AF_INET, &a, buf, sizeof(buf));
	printf("%-40s %s port %s\n", "getnameinfo(NI_NUMERICHOST)", rc ? "error" : host, serv);
	if (rc || strcmp(host, buf) || strcmp(serv, "443"))
		bad("getnameinfo(NI_NUMERICHOST)", "must give the number");

	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(80) };
	static const uint8_t fake6[12] = { 0xfd, 0x73, 0x6f, 0x63, 0x6b, 0x73 };
	memcpy(s6.sin6_addr.s6_addr, fake6, 12);
	memcpy(s6.sin6_addr.s6_addr + 12, &a, 4);
	rc = getnameinfo((struct sockaddr *)&s6, sizeof(s6), host, sizeof(host), NULL, 0, 0);
	check_name("getnameinfo(IPv6 fake)", rc ? NULL : host, want);
	r = gethostbyaddr(s6.sin6_addr.s6_addr, 16, AF_INET6);
	check_name("gethostbyaddr(IPv6 fake)", r ? r->h_name : NULL, want);
}

typedef int (*q_fn)(const char *, int, int, unsigned char *, int);
typedef int (*qd_fn)(const char *, const char *, int, int, unsigned char *, int);
typedef int (*s_fn)(const unsigned char *, int, unsigned char *, int);
typedef int (*nq_fn)(res_state, const char *, int, int, unsigned char *, int);
typedef int (*nqd_fn)(res_state, const char *, const char *, int, int, unsigned char *, int);
typedef int (*ns_fn)(res_state, const unsigned char *, int, unsigned char *, int);

/* The first A record of a reply (network order), or 0. */
static uint32_t answer_a(const unsigned char *m, int len)
{
	const unsigned char *p = m + HFIXEDSZ, *end = m + len;
	int n;
	if (len < HFIXEDSZ || (m[4] << 8 | m[5]) != 1)
		return 0;
	if ((n = dn_skipname(p, end)) < 0)
		return 0;
	p += n + QFIXEDSZ;
	for (unsigned an = (unsigned)(m[6] << 8 | m[7]); an; an--) {
		if (p > end || (n = dn_skipname(p, end)) < 0 || end - (p + n) < RRFIXEDSZ)
			return 0;
		p += n;
		unsigned type = (unsigned)(p[0] << 8 | p[1]), rdlen = (unsigned)(p[8] << 8 | p[9]);
		p += RRFIXEDSZ;
		if ((size_t)(end - p) < rdlen)
			return 0;
		if (type == T_A && rdlen == 4) {
			uint32_t a;
			memcpy(&a, p, 4);
			return a;
		}
		p += rdlen;
	}
	return 0;
}

/* same: the query was for NAME itself (its fake address is known). */
static void res_result(const char *what, int rc, int herr, const unsigned char *ans, bool same)
{
	printf("%-40s rc=%d h_errno=%d\n", what, rc, herr);
	if (strcmp(expect, "fake"))
		return;
	if (!strcmp(res_expect, "refuse")) {
		if (rc != -1 || (herr != NO_RECOVERY && herr != TRY_AGAIN))
			bad(what, "must fail with NO_RECOVERY or TRY_AGAIN");
		return;
	}
	uint32_t a = rc > 0 ? answer_a(ans, rc) : 0;
	if (!a) {
		bad(what, "no A record in the answer");
		return;
	}
	if (same) {
		check_v4(what, a);
	} else if ((ntohl(a) & mask) != net) {
		bad(what, "not a fake address");
	}
}

/* One call of a res_* function found under sym; rc first, then h_errno
 * (argument evaluation order is unspecified). */
static void res_call(const char *sym, void *f, int kind, res_state st,
		     const unsigned char *msg, int mlen)
{
	unsigned char ans[512];
	int rc;
	h_errno = 0;
	memset(ans, 0, sizeof(ans));
	switch (kind) {
	case 0: rc = ((q_fn)f)(name, C_IN, T_A, ans, sizeof(ans)); break;
	case 1: rc = ((qd_fn)f)("www", name, C_IN, T_A, ans, sizeof(ans)); break;
	case 2: rc = ((s_fn)f)(msg, mlen, ans, sizeof(ans)); break;
	case 3: rc = ((nq_fn)f)(st, name, C_IN, T_A, ans, sizeof(ans)); break;
	case 4: rc = ((nqd_fn)f)(st, "www", name, C_IN, T_A, ans, sizeof(ans)); break;
	default: rc = ((ns_fn)f)(st, msg, mlen, ans, sizeof(ans)); break;
	}
	int herr = h_errno;
	res_result(sym, rc, herr, ans, kind != 1 && kind != 4);
}

/* Both spellings of each function, looked up at run time: the __res_*
 * names are compat symbols a new program cannot link against. */
static void probe_res(void)
{
	static const struct { const char *fn; int kind; } fns[] = {
		{ "res_query", 0 }, { "res_search", 0 }, { "res_querydomain", 1 },
		{ "res_send", 2 }, { "res_nquery", 3 }, { "res_nsearch", 3 },
		{ "res_nquerydomain", 4 }, { "res_nsend", 5 },
	};
	unsigned char msg[512];
	struct __res_state st;
	memset(&st, 0, sizeof(st));
	res_ninit(&st);
	int mlen = res_mkquery(QUERY, name, C_IN, T_A, NULL, 0, NULL, msg, sizeof(msg));

	for (int p = 0; p < 2; p++) {
		for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
			char sym[64];
			snprintf(sym, sizeof(sym), "%s%s", p ? "__" : "", fns[i].fn);
			void *f = dlsym(RTLD_DEFAULT, sym);
			if (!f || ((fns[i].kind == 2 || fns[i].kind == 5) && mlen <= 0))
				continue;
			res_call(sym, f, fns[i].kind, &st, msg, mlen);
		}
	}
	res_nclose(&st);
}

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "e:r:a:R:")) != -1) {
		char buf[64], *slash;
		struct in_addr ia;
		switch (opt) {
		case 'e':
			expect = optarg;
			break;
		case 'r':
			snprintf(buf, sizeof(buf), "%s", optarg);
			if (!(slash = strchr(buf, '/')) || (*slash = '\0', inet_pton(AF_INET, buf, &ia) != 1))
				return 2;
			int pfx = atoi(slash + 1);
			mask = pfx ? ~0u << (32 - pfx) : 0;
			net = ntohl(ia.s_addr) & mask;
			break;
		case 'R':
			res_expect = optarg;
			break;
		case 'a':
			if (inet_pton(AF_INET, optarg, &ia) != 1)
				return 2;
			want_addr = ntohl(ia.s_addr);
			break;
		default:
			fprintf(stderr, "usage: dnsprobe [-e fake|addr|any] [-r NET/PREFIX] [-a ADDR] [-R answer|refuse] NAME\n");
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: dnsprobe [-e fake|addr|any] [-r NET/PREFIX] [-a ADDR] NAME\n");
		return 2;
	}
	name = argv[optind];
	setvbuf(stdout, NULL, _IOLBF, 0);
	probe_gethostbyname();
	probe_getaddrinfo();
	probe_reverse();
	probe_res();
	printf("%s: %d failure(s)\n", failures ? "FAIL" : "OK", failures);
	return failures ? 1 : 0;
}
