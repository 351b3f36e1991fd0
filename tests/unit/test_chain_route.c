/* chain.c for routes (route.h): a configuration without hops (a direct
 * route) connects the socket to the destination itself, resolving a name
 * locally -- never on the caller's thread for an asynchronous set-up -- with
 * the kernel's errors; a chain in local-DNS mode given a name resolves it
 * here and asks the last hop for the address (IPv4 for socks4), one in
 * remote-DNS mode passes the name on; the rule's note ends the log lines.
 *
 * Real loopback sockets: a listener for direct connects, and a one-shot
 * SOCKS5/SOCKS4 server thread that records what it was asked for. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chain.h"
#include "chainsm.h"
#include "config.h"
#include "log.h"
#include "real.h"
#include "udp_route.h"
#include "testutil.h"

/* A listener on 127.0.0.1 (IPv4 only: "localhost" resolves to it here). */
static int listener(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* A port nothing listens on (bound, never listening: refused). */
static uint16_t dead_port(int *keep)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	*keep = fd;
	return ntohs(a.sin_port);
}

static void direct_cfg(struct sfy_config *c)
{
	sfy_config_defaults(c);
	c->nproxies = 0;
	c->dns = SFY_DNS_LOCAL;
	c->connect_timeout_ms = 2000;
	c->handshake_timeout_ms = 3000;
}

static void named(struct sfy_addr *a, const char *name, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->type = SFY_ATYP_DOMAIN;
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->port = port;
}

static void ipv4(struct sfy_addr *a, uint32_t host_order, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->type = SFY_ATYP_IPV4;
	uint32_t be = htonl(host_order);
	memcpy(a->ip, &be, 4);
	a->port = port;
}

/* fd is connected to the listener lfd: accept it and compare the ends. */
static void assert_reached(int fd, int lfd)
{
	struct sockaddr_storage mine, theirs;
	socklen_t ml = sizeof(mine), tl = sizeof(theirs);
	int c = accept(lfd, (struct sockaddr *)&theirs, &tl);
	assert_true(c >= 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&mine, &ml), 0);
	/* The accepted connection's peer is fd's own end. */
	assert_int_equal(((struct sockaddr_in *)&mine)->sin_port,
			 ((struct sockaddr_in *)&theirs)->sin_port);
	assert_int_equal(write(fd, "x", 1), 1);
	char b;
	assert_int_equal(read(c, &b, 1), 1);
	close(c);
}

/* ------------------------------------------------------------ direct */

/* A direct route to a listener, by "localhost" (name) or 127.0.0.1: with
 * async, a non-blocking socket and the asynchronous set-up, driven to its
 * end by async; else sfy_chain_connect(), which fills rep. */
typedef int (*sm_run_fn)(struct sfy_chain_sm *sm);

static void direct_reach(bool by_name, sm_run_fn async, struct sfy_chain_report *rep)
{
	struct sfy_config c;
	direct_cfg(&c);
	uint16_t port;
	int lfd = listener(&port);
	int fd = socket(AF_INET, SOCK_STREAM | (async ? SOCK_NONBLOCK : 0), 0);
	struct sfy_addr dst;
	if (by_name)
		named(&dst, "localhost", port);
	else
		ipv4(&dst, INADDR_LOOPBACK, port);
	if (async) {
		struct sfy_chain_sm *sm = sfy_chain_sm_new(&c, fd, &dst, SFY_S5_CONNECT, true);
		assert_non_null(sm);
		EQ(async(sm), 0, "set-up");
		sfy_chain_sm_free(sm);
	} else {
		assert_int_equal(sfy_chain_connect(&c, fd, &dst, SFY_S5_CONNECT, rep), 0);
	}
	assert_reached(fd, lfd);
	close(fd);
	close(lfd);
}

static void test_direct_address(void **state)
{
	(void)state;
	struct sfy_chain_report rep;
	direct_reach(false, NULL, &rep);
	EQ(rep.nhops, 0, "no hops");
	assert_true(rep.last_addr_known);
}

static void test_direct_name_blocking(void **state)
{
	(void)state;
	direct_reach(true, NULL, NULL);
}

/* One blocking set-up over a direct route, on a fresh socket. */
static int direct_try(const struct sfy_addr *dst, enum sfy_s5_cmd cmd)
{
	struct sfy_config c;
	direct_cfg(&c);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int r = sfy_chain_connect(&c, fd, dst, cmd, NULL);
	close(fd);
	return r;
}

static void test_direct_refused(void **state)
{
	(void)state;
	int keep;
	uint16_t port = dead_port(&keep);
	struct sfy_addr dst;
	named(&dst, "localhost", port);
	assert_int_equal(direct_try(&dst, SFY_S5_CONNECT), -ECONNREFUSED);
	ipv4(&dst, INADDR_LOOPBACK, port);
	assert_int_equal(direct_try(&dst, SFY_S5_CONNECT), -ECONNREFUSED);
	close(keep);
}

/* A name no resolver knows: EHOSTUNREACH, what a SOCKS5 proxy's "host
 * unreachable" gives through a chain. (.invalid is reserved, RFC 6761;
 * a resolver that cannot be reached at all fails it as fast.) */
static void test_direct_unresolvable(void **state)
{
	(void)state;
	struct sfy_addr dst;
	named(&dst, "no-such-host.invalid", 80);
	int r = direct_try(&dst, SFY_S5_CONNECT);
	assert_true(r == -EHOSTUNREACH || r == -ETIMEDOUT);
}

/* A direct route carries no UDP relay. */
static void test_direct_no_udp(void **state)
{
	(void)state;
	struct sfy_addr dst;
	ipv4(&dst, 0, 0);
	assert_int_equal(direct_try(&dst, SFY_S5_UDP_ASSOCIATE), -EOPNOTSUPP);
}

/* The asynchronous set-up: the first step (the program's thread) never
 * resolves -- it asks for a thread that may block; the next steps resolve
 * there and connect without blocking. */
static int steps_by_name(struct sfy_chain_sm *sm)
{
	assert_int_equal(sfy_chain_sm_fit(sm), 0);
	EQ(sfy_chain_sm_step(sm), SFY_SM_RUN, "first step");
	int r, steps = 0;
	while ((r = sfy_chain_sm_step(sm)) > 0 && steps++ < 1000) {  /* 10 s */
		assert_true(r == SFY_SM_OUT || r == SFY_SM_RUN);
		usleep(10000);
	}
	return r;
}

static void test_direct_name_async(void **state)
{
	(void)state;
	direct_reach(true, steps_by_name, NULL);
}

/* An address needs no thread at all: the first step connects. */
static int steps_by_address(struct sfy_chain_sm *sm)
{
	int r = sfy_chain_sm_step(sm);
	assert_true(r == 0 || r == SFY_SM_OUT);
	for (int i = 0; r > 0 && i < 100; i++) {
		assert_true(r != SFY_SM_RUN);
		usleep(10000);
		r = sfy_chain_sm_step(sm);
	}
	return r;
}

static void test_direct_address_async(void **state)
{
	(void)state;
	direct_reach(false, steps_by_address, NULL);
}

/* ------------------------------------------------- a one-shot proxy */

struct proxy {
	int lfd;
	uint16_t port;
	bool socks4;
	pthread_t t;
	uint8_t req[600];               /* the request, as received */
	size_t reqlen;
};

static ssize_t read_some(int fd, uint8_t *b, size_t n)
{
	ssize_t r = read(fd, b, n);
	return r < 0 ? 0 : r;
}

static void *proxy_run(void *arg)
{
	struct proxy *p = arg;
	int c = accept(p->lfd, NULL, NULL);
	if (c < 0)
		return NULL;
	uint8_t b[600];
	if (p->socks4) {
		/* VN CD PORT IP USERID\0 [HOST\0]: one read is enough on loopback. */
		p->reqlen = (size_t)read_some(c, p->req, sizeof(p->req));
		static const uint8_t ok[8] = { 0, 0x5a };
		(void)!write(c, ok, sizeof(ok));
	} else {
		/* greeting (possibly pipelined with the request) */
		size_t n = (size_t)read_some(c, b, sizeof(b));
		static const uint8_t method[2] = { 5, 0 };
		(void)!write(c, method, sizeof(method));
		size_t glen = n >= 2 ? 2 + (size_t)b[1] : n;
		if (n > glen) {
			memcpy(p->req, b + glen, n - glen);
			p->reqlen = n - glen;
		} else {
			p->reqlen = (size_t)read_some(c, p->req, sizeof(p->req));
		}
		static const uint8_t ok[10] = { 5, 0, 0, 1, 127, 0, 0, 1, 0, 80 };
		(void)!write(c, ok, sizeof(ok));
	}
	/* Hold the connection until the client closes it. */
	while (read(c, b, sizeof(b)) > 0)
		;
	close(c);
	return NULL;
}

static void proxy_start(struct proxy *p, bool socks4)
{
	memset(p, 0, sizeof(*p));
	p->socks4 = socks4;
	p->lfd = listener(&p->port);
	assert_int_equal(pthread_create(&p->t, NULL, proxy_run, p), 0);
}

static void proxy_end(struct proxy *p)
{
	pthread_join(p->t, NULL);
	close(p->lfd);
}

static void chain_cfg(struct sfy_config *c, const struct proxy *p, enum sfy_dns_mode dns)
{
	char url[64], err[SFY_ERR_MAX];
	sfy_config_defaults(c);
	snprintf(url, sizeof(url), "%s://127.0.0.1:%u", p->socks4 ? "socks4" : "socks5h",
		 p->port);
	assert_int_equal(sfy_config_set_proxies(c, url, err, sizeof(err)), 0);
	c->dns = dns;
	c->pipeline = SFY_PIPELINE_OFF;
	c->connect_timeout_ms = 2000;
	c->handshake_timeout_ms = 3000;
}

/* A connect by name through a one-hop chain that succeeds; p keeps the
 * request the hop saw. */
static void via_proxy(struct proxy *p, bool socks4, enum sfy_dns_mode dns, const char *name,
		      uint16_t port)
{
	proxy_start(p, socks4);
	struct sfy_config c;
	chain_cfg(&c, p, dns);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sfy_addr dst;
	named(&dst, name, port);
	assert_int_equal(sfy_chain_connect(&c, fd, &dst, SFY_S5_CONNECT, NULL), 0);
	close(fd);
	proxy_end(p);
}

static void assert_request(const struct proxy *p, const uint8_t *want, size_t n)
{
	EQ(p->reqlen, n, "request length");
	assert_memory_equal(p->req, want, n);
}

/* Local DNS: the last hop is asked for 127.0.0.1, not for the name. */
static void test_local_dns_chain_resolves(void **state)
{
	(void)state;
	struct proxy p;
	via_proxy(&p, false, SFY_DNS_LOCAL, "localhost", 8080);
	static const uint8_t want[] = { 5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90 };
	assert_request(&p, want, sizeof(want));
}

/* Remote DNS: the name goes to the last hop, as ever. */
static void test_remote_dns_chain_passes_name(void **state)
{
	(void)state;
	struct proxy p;
	via_proxy(&p, false, SFY_DNS_REMOTE, "localhost", 8080);
	static const uint8_t want[] = { 5, 1, 0, 3, 9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's',
					't', 0x1f, 0x90 };
	assert_request(&p, want, sizeof(want));
}

/* A socks4 last hop in local-DNS mode gets an IPv4 address (SOCKS4). */
static void test_local_dns_socks4(void **state)
{
	(void)state;
	struct proxy p;
	via_proxy(&p, true, SFY_DNS_LOCAL, "localhost", 8080);
	/* VN 4, CONNECT, port, 127.0.0.1 (not 0.0.0.x: no name follows) */
	assert_true(p.reqlen >= 9);
	static const uint8_t want[] = { 4, 1, 0x1f, 0x90, 127, 0, 0, 1 };
	assert_memory_equal(p.req, want, sizeof(want));
}

/* For a test in which nothing reached the proxy: one connection of our
 * own releases its thread, whose request is then one byte, "Z". */
static void proxy_release(struct proxy *p)
{
	int k = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(p->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	uint8_t m[8];
	assert_int_equal(connect(k, (struct sockaddr *)&a, sizeof(a)), 0);
	if (p->socks4) {
		assert_int_equal(write(k, "Z", 1), 1);
		assert_int_equal(read(k, m, 8), 8);
	} else {
		assert_int_equal(write(k, "\x05\x01\x00", 3), 3);
		assert_int_equal(read(k, m, 2), 2);
		assert_int_equal(write(k, "Z", 1), 1);
	}
	close(k);
	proxy_end(p);
	EQ(p->reqlen, 1, "the proxy saw only our own connection");
}

/* Local DNS and a name that does not resolve: no hop is blamed or
 * skipped, nothing reaches the proxy. */
static void test_local_dns_unresolvable(void **state)
{
	(void)state;
	struct proxy p;
	proxy_start(&p, false);
	struct sfy_config c;
	chain_cfg(&c, &p, SFY_DNS_LOCAL);
	c.chain = SFY_CHAIN_DYNAMIC;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sfy_addr dst;
	named(&dst, "no-such-host.invalid", 80);
	int r = sfy_chain_connect(&c, fd, &dst, SFY_S5_CONNECT, NULL);
	assert_true(r == -EHOSTUNREACH || r == -ETIMEDOUT);
	close(fd);
	proxy_release(&p);
}

/* ------------------------------------------------------------ notes */

static char logpath[] = "/tmp/sfy-chain-route-log.XXXXXX";

static bool log_has(const char *needle)
{
	FILE *f = fopen(logpath, "r");
	char line[1024];
	bool found = false;
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return found;
}

static void test_notes(void **state)
{
	(void)state;
	struct sfy_config c;
	direct_cfg(&c);
	uint16_t port;
	int lfd = listener(&port);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sfy_addr dst;
	named(&dst, "localhost", port);
	assert_int_equal(sfy_chain_connect_note(&c, fd, &dst, SFY_S5_CONNECT, NULL,
						"rule 7 (test: localhost=direct)"), 0);
	close(fd);
	char want[128];
	snprintf(want, sizeof(want), "localhost:%u: direct (127.0.0.1:%u), rule 7 (test: "
		 "localhost=direct)", port, port);
	assert_true(log_has(want));

	int keep;
	uint16_t dead = dead_port(&keep);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	named(&dst, "localhost", dead);
	assert_int_equal(sfy_chain_connect_note(&c, fd, &dst, SFY_S5_CONNECT, NULL,
						"rule 8 (x)"), -ECONNREFUSED);
	snprintf(want, sizeof(want), "connect to localhost:%u failed: direct to 127.0.0.1:%u: ",
		 dead, dead);
	assert_true(log_has(want));
	assert_true(log_has("(ECONNREFUSED), rule 8 (x)"));
	close(fd);
	close(keep);

	struct proxy p;
	proxy_start(&p, false);
	chain_cfg(&c, &p, SFY_DNS_LOCAL);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	named(&dst, "localhost", 8080);
	assert_int_equal(sfy_chain_connect_note(&c, fd, &dst, SFY_S5_CONNECT, NULL,
						"rule 2 (test: *=work)"), 0);
	close(fd);
	proxy_end(&p);
	assert_true(log_has("localhost:8080 via 1 hop (resolved here: 127.0.0.1:8080), "
			    "rule 2 (test: *=work)"));
	close(lfd);
}

/* ------------------------------------- .onion/.exit/.i2p (review 2) */

/* The library's own resolver calls (sfy_real()->getaddrinfo), watched:
 * a special name is counted and answered EAI_NONAME without asking DNS;
 * any other goes to libc. */
static int (*gai_libc)(const char *, const char *, const struct addrinfo *,
		       struct addrinfo **);
static atomic_int special_lookups;

static bool special(const char *n)
{
	static const char *const t[] = { ".onion", ".exit", ".i2p" };
	size_t l = n ? strlen(n) : 0;
	for (size_t i = 0; i < 3; i++)
		if (l >= strlen(t[i]) && !strcasecmp(n + l - strlen(t[i]), t[i]))
			return true;
	return false;
}

static int gai_spy(const char *node, const char *service, const struct addrinfo *hints,
		   struct addrinfo **res)
{
	if (special(node)) {
		atomic_fetch_add(&special_lookups, 1);
		return EAI_NONAME;
	}
	return gai_libc(node, service, hints, res);
}

static void spy_install(void)
{
	struct sfy_real *r = (struct sfy_real *)sfy_real();
	if (r->getaddrinfo != gai_spy) {
		gai_libc = r->getaddrinfo;
		r->getaddrinfo = gai_spy;
	}
	atomic_store(&special_lookups, 0);
}

/* A chain in local-DNS mode whose last hop takes names hands the name
 * over as it is: nothing asks this machine's resolver. */
static void test_special_local_chain_passes_name(void **state)
{
	(void)state;
	spy_install();
	struct proxy p;
	via_proxy(&p, false, SFY_DNS_LOCAL, "abc.onion", 80);
	EQ(atomic_load(&special_lookups), 0, "no local lookup");
	static const uint8_t want[] = { 5, 1, 0, 3, 9, 'a', 'b', 'c', '.', 'o', 'n', 'i', 'o',
					'n', 0, 80 };
	assert_request(&p, want, sizeof(want));
}

/* A socks4 last hop cannot take a name: EHOSTUNREACH with one line, no
 * lookup, and nothing reaches the proxy. */
static void test_special_socks4_fails(void **state)
{
	(void)state;
	spy_install();
	struct proxy p;
	proxy_start(&p, true);
	struct sfy_config c;
	chain_cfg(&c, &p, SFY_DNS_LOCAL);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sfy_addr dst;
	named(&dst, "x.exit", 80);
	EQ(sfy_chain_connect(&c, fd, &dst, SFY_S5_CONNECT, NULL), -EHOSTUNREACH, "socks4");
	close(fd);
	EQ(atomic_load(&special_lookups), 0, "no local lookup");
	assert_true(log_has("connect to x.exit:80 failed: resolving for the chain: "
			    ".onion/.exit/.i2p names are never resolved locally"));
	proxy_release(&p);
}

/* A direct route never resolves one either (the rules never route such a
 * name direct; this holds the line), and the asynchronous set-up fails
 * on its first step, on the program's thread, without a lookup. */
static void test_special_direct(void **state)
{
	(void)state;
	spy_install();
	struct sfy_addr dst;
	named(&dst, "abc.I2P", 80);
	EQ(direct_try(&dst, SFY_S5_CONNECT), -EHOSTUNREACH, "direct");
	struct sfy_config c;
	direct_cfg(&c);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	named(&dst, "abc.onion", 443);
	struct sfy_chain_sm *sm = sfy_chain_sm_new(&c, fd, &dst, SFY_S5_CONNECT, true);
	assert_non_null(sm);
	int r = sfy_chain_sm_step(sm);
	for (int i = 0; r == SFY_SM_RUN && i < 100; i++)
		r = sfy_chain_sm_step(sm);      /* the old code resolved here */
	EQ(r, -EHOSTUNREACH, "async");
	sfy_chain_sm_free(sm);
	close(fd);
	EQ(atomic_load(&special_lookups), 0, "no local lookup");
}

/* UDP's local resolution (a direct route by name, a local-DNS chain's
 * relay) refuses such a name too. */
static void test_special_udp_resolve(void **state)
{
	(void)state;
	spy_install();
	struct sfy_config c;
	direct_cfg(&c);
	struct sfy_addr a;
	EQ(sfy_udp_resolve(&c, "abc.onion", 53, AF_UNSPEC, &a), -EHOSTUNREACH, "onion");
	EQ(sfy_udp_resolve(&c, "Abc.Exit.", 53, AF_INET, &a), -EHOSTUNREACH, "exit");
	EQ(atomic_load(&special_lookups), 0, "no local lookup");
}

static int setup_log(void **state)
{
	(void)state;
	int fd = mkstemp(logpath);
	if (fd < 0)
		return -1;
	close(fd);
	sfy_log_setup(SFY_LOG_INFO, logpath);
	return 0;
}

static int teardown_log(void **state)
{
	(void)state;
	unlink(logpath);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_direct_address),
		cmocka_unit_test(test_direct_name_blocking),
		cmocka_unit_test(test_direct_refused),
		cmocka_unit_test(test_direct_unresolvable),
		cmocka_unit_test(test_direct_no_udp),
		cmocka_unit_test(test_direct_name_async),
		cmocka_unit_test(test_direct_address_async),
		cmocka_unit_test(test_local_dns_chain_resolves),
		cmocka_unit_test(test_remote_dns_chain_passes_name),
		cmocka_unit_test(test_local_dns_socks4),
		cmocka_unit_test(test_local_dns_unresolvable),
		cmocka_unit_test(test_notes),
		cmocka_unit_test(test_special_local_chain_passes_name),
		cmocka_unit_test(test_special_socks4_fails),
		cmocka_unit_test(test_special_direct),
		cmocka_unit_test(test_special_udp_resolve),
	};
	return cmocka_run_group_tests(tests, setup_log, teardown_log);
}
