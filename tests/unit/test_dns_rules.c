/* The resolver hooks' and UDP's side of the routing rules: the plan per
 * name (dns_rules.c on route.h), the service port, the once-per-key log
 * memory, and the local resolution of a direct-routed name for UDP
 * (udp_route.c). Configurations are built in C (rules and their names
 * pool), independent of the YAML parser. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "dest.h"
#include "dns_rules.h"
#include "dns_search.h"
#include "logonce.h"
#include "route.h"
#include "sfy.h"
#include "udp_route.h"
#include "routeutil.h"
#include "testutil.h"

struct mk {
	const char *match;      /* "*", "name", "*.suffix" */
	int via;
	int lo, hi;             /* port range; 0 = none */
};

/* A config with top-level dns top_dns and one chain "loc" in local-DNS
 * mode (index 0), rules from list (file origin), default def. */
static struct sfy_config *build(enum sfy_dns_mode top_dns, const struct mk *list, size_t n,
				int def)
{
	struct sfy_config *c = rb_new("socks5h://192.0.2.1:1080", top_dns);
	assert_int_equal(rb_chain(c, "loc", "socks5://192.0.2.2:1080", SFY_DNS_LOCAL,
				  SFY_CHAIN_STRICT), 0);
	for (size_t i = 0; i < n; i++)
		assert_true(rb_rule(c, SFY_RO_FILE, list[i].match, (unsigned)list[i].lo,
				    (unsigned)list[i].hi, list[i].via));
	c->default_via = (int16_t)def;
	c->default_line = def == SFY_VIA_TOP ? 0 : 99;
	return c;
}

static struct sfy_routes *routes_of(const struct sfy_config *c)
{
	char err[SFY_ERR_MAX];
	struct sfy_routes *rt = sfy_routes_build(c, err, sizeof(err));
	if (!rt)
		fail_msg("%s", err);
	return rt;
}

static const struct mk rules[] = {
	{ "blocked.example", SFY_VIA_BLOCK, 0, 0 },
	{ "*.lan", SFY_VIA_DIRECT, 0, 0 },
	{ "*", SFY_VIA_BLOCK, 25, 25 },
	{ "*.corp.example", 0, 0, 0 },
	{ "web.example", SFY_VIA_BLOCK, 443, 443 },
};

static void test_plan_remote(void **state)
{
	(void)state;
	struct sfy_config *c = build(SFY_DNS_REMOTE, rules, SFY_ARRAY_LEN(rules), SFY_VIA_TOP);
	struct sfy_routes *rt = routes_of(c);
	assert_true(sfy_dns_rules_remote(rt));
	static const struct {
		const char *name;
		int port;
		enum sfy_name_plan want;
	} rows[] = {
		{ "blocked.example", -1, SFY_PLAN_BLOCK },
		{ "Blocked.Example.", -1, SFY_PLAN_BLOCK },     /* case, trailing dot */
		{ "blocked.example", 80, SFY_PLAN_BLOCK },
		{ "x.blocked.example", -1, SFY_PLAN_FAKE },     /* exact only */
		{ "host.lan", -1, SFY_PLAN_LOCAL },
		{ "a.b.lan", 80, SFY_PLAN_LOCAL },
		/* remote DNS: a direct rule that does not name port 53 does
		 * not let a name's port-53 traffic out directly */
		{ "a.b.lan", 53, SFY_PLAN_FAKE },
		{ "lan", -1, SFY_PLAN_FAKE },                   /* *. needs a label */
		{ "other.example", 25, SFY_PLAN_BLOCK },        /* the service's port decides */
		{ "other.example", -1, SFY_PLAN_FAKE },         /* no port: connect decides */
		{ "other.example", 80, SFY_PLAN_FAKE },
		{ "db.corp.example", 80, SFY_PLAN_LOCAL },      /* local-DNS chain */
		{ "web.example", 443, SFY_PLAN_BLOCK },
		{ "web.example", 80, SFY_PLAN_FAKE },
		{ "web.example", -1, SFY_PLAN_FAKE },
	};
	for (size_t i = 0; i < SFY_ARRAY_LEN(rows); i++) {
		enum sfy_name_plan p = sfy_dns_rules_plan(rt, rows[i].name, rows[i].port);
		if (p != rows[i].want)
			print_error("row %zu: %s port %d\n", i, rows[i].name, rows[i].port);
		EQ(p, rows[i].want, rows[i].name);
	}
	sfy_routes_free(rt);
	rb_free(c);
}

/* Every route local (top-level local, the chain local): FAKE never comes
 * back, blocked names still block. */
static void test_plan_local(void **state)
{
	(void)state;
	struct sfy_config *c = build(SFY_DNS_LOCAL, rules, SFY_ARRAY_LEN(rules), SFY_VIA_TOP);
	struct sfy_routes *rt = routes_of(c);
	assert_false(sfy_dns_rules_remote(rt));
	EQ(sfy_dns_rules_plan(rt, "blocked.example", -1), SFY_PLAN_BLOCK, "blocked");
	EQ(sfy_dns_rules_plan(rt, "other.example", 25), SFY_PLAN_BLOCK, "port 25");
	EQ(sfy_dns_rules_plan(rt, "other.example", -1), SFY_PLAN_LOCAL, "other");
	EQ(sfy_dns_rules_plan(rt, "web.example", -1), SFY_PLAN_LOCAL, "web");
	/* a name never resolved here: a fake address, the chain (socks5)
	 * takes it by name (issue 14: in every DNS mode) */
	EQ(sfy_dns_rules_plan(rt, "hidden.onion", -1), SFY_PLAN_FAKE, "onion");
	sfy_routes_free(rt);
	rb_free(c);
}

/* default: block -- an allow list. */
static void test_plan_allow_list(void **state)
{
	(void)state;
	static const struct mk allow[] = {
		{ "*.lan", SFY_VIA_DIRECT, 0, 0 },
		{ "api.example", SFY_VIA_TOP, 443, 443 },
	};
	struct sfy_config *c = build(SFY_DNS_REMOTE, allow, SFY_ARRAY_LEN(allow), SFY_VIA_BLOCK);
	struct sfy_routes *rt = routes_of(c);
	EQ(sfy_dns_rules_plan(rt, "x.lan", -1), SFY_PLAN_LOCAL, "lan");
	EQ(sfy_dns_rules_plan(rt, "api.example", 443), SFY_PLAN_FAKE, "api 443");
	EQ(sfy_dns_rules_plan(rt, "api.example", 80), SFY_PLAN_BLOCK, "api 80");
	EQ(sfy_dns_rules_plan(rt, "api.example", -1), SFY_PLAN_FAKE, "api any");
	EQ(sfy_dns_rules_plan(rt, "else.example", -1), SFY_PLAN_BLOCK, "else");
	sfy_routes_free(rt);
	rb_free(c);
}

/* No rules at all: the mode alone, as before rules existed. */
static void test_plan_no_rules(void **state)
{
	(void)state;
	for (int remote = 0; remote < 2; remote++) {
		struct sfy_config *c = build(remote ? SFY_DNS_REMOTE : SFY_DNS_LOCAL, NULL, 0,
					     SFY_VIA_TOP);
		c->nchains = 0;
		struct sfy_routes *rt = routes_of(c);
		assert_false(sfy_routes_active(rt));
		EQ(sfy_dns_rules_remote(rt), remote != 0, "remote");
		EQ(sfy_dns_rules_plan(rt, "blocked.example", 25),
		   remote ? SFY_PLAN_FAKE : SFY_PLAN_LOCAL, "plan");
		sfy_routes_free(rt);
		rb_free(c);
	}
	EQ(sfy_dns_rules_remote(NULL), 0, "no routes");
	EQ(sfy_dns_rules_plan(NULL, "x.example", -1), SFY_PLAN_LOCAL, "no routes");
}

static void test_service_port(void **state)
{
	(void)state;
	EQ(sfy_dns_service_port(NULL, 0, 0), -1, "NULL");
	EQ(sfy_dns_service_port("", 0, 0), -1, "empty");
	EQ(sfy_dns_service_port("443", 0, 0), 443, "443");
	EQ(sfy_dns_service_port("443", 0, AI_NUMERICSERV), 443, "443 numericserv");
	EQ(sfy_dns_service_port("0", 0, 0), -1, "0 is not a port");
	EQ(sfy_dns_service_port("65536", 0, 0), -1, "65536");
	EQ(sfy_dns_service_port("http", SOCK_STREAM, 0), 80, "http");
	EQ(sfy_dns_service_port("http", 0, AI_NUMERICSERV), -1, "http numericserv");
	EQ(sfy_dns_service_port("domain", SOCK_DGRAM, 0), 53, "domain/udp");
	EQ(sfy_dns_service_port("no-such-service-here", 0, 0), -1, "unknown");
}

static void test_logonce(void **state)
{
	(void)state;
	assert_true(sfy_logonce_first("t1", "a.example"));
	assert_false(sfy_logonce_first("t1", "a.example"));
	assert_true(sfy_logonce_first("t2", "a.example"));   /* kinds apart */
	assert_true(sfy_logonce_first("t1", "b.example"));
	/* bounded: enough others push the first out, and it is said again */
	char k[32];
	for (int i = 0; i < SFY_LOGONCE_MAX; i++) {
		snprintf(k, sizeof(k), "n%d.example", i);
		assert_true(sfy_logonce_first("t1", k));
	}
	assert_true(sfy_logonce_first("t1", "a.example"));
}

/* After fork() in the middle of another thread's call the child's memory
 * still works: a key said once is not said again (a lock held by the
 * thread the child lacks would make every line repeat). */
static void *logonce_spin(void *arg)
{
	atomic_bool *stop = arg;
	char k[32];
	for (unsigned i = 0; !atomic_load(stop); i++) {
		snprintf(k, sizeof(k), "spin%u", i % 1000);
		(void)sfy_logonce_first("spin", k);
	}
	return NULL;
}

static void test_logonce_fork(void **state)
{
	(void)state;
	atomic_bool stop = false;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, logonce_spin, &stop), 0);
	int bad = 0;
	for (int i = 0; i < 200; i++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			char k[32];
			snprintf(k, sizeof(k), "child%d", i);
			bool first = sfy_logonce_first("fork", k);
			_exit(first && !sfy_logonce_first("fork", k) ? 0 : 1);
		}
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		bad += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	EQ(bad, 0, "children whose once-memory repeated a line");
}

/* An empty resolv.conf in path ("/tmp/sfy-resolv-XXXXXX") that the search
 * list is read from, LOCALDOMAIN unset. */
static void resolv_tmp(char *path)
{
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	unsetenv("LOCALDOMAIN");
	sfy_search_set_path(path);
}

static void resolv_write(const char *path, const char *text)
{
	write_file(path, text, 0600);
}

/* resolv.conf as glibc reads it: comments, the last search/domain line,
 * LOCALDOMAIN over the file, read again when the file changes. */
static void test_search_list(void **state)
{
	(void)state;
	char path[] = "/tmp/sfy-resolv-XXXXXX";
	resolv_tmp(path);
	struct sfy_search s;
	resolv_write(path, "# search no.example\n; search no2.example\nnameserver 192.0.2.1\n"
			 "search a.example\tB.Example.\nsearchx c.example\n");
	sfy_search_get(&s, NULL);
	EQ(s.n, 2, "search line");
	assert_string_equal(s.dom[0], "a.example");
	assert_string_equal(s.dom[1], "b.example");
	/* a later domain line replaces the list (and the file is read again) */
	resolv_write(path, "search a.example b.example\ndomain last.example extra\n");
	sfy_search_get(&s, NULL);
	EQ(s.n, 1, "domain line");
	assert_string_equal(s.dom[0], "last.example");
	setenv("LOCALDOMAIN", " env.example  env2.example ", 1);
	sfy_search_get(&s, NULL);
	EQ(s.n, 2, "LOCALDOMAIN");
	assert_string_equal(s.dom[0], "env.example");
	assert_string_equal(s.dom[1], "env2.example");
	unsetenv("LOCALDOMAIN");
	/* the program's own resolver state adds its domains */
	struct __res_state st;
	memset(&st, 0, sizeof(st));
	char own[] = "own.example";
	st.options = RES_INIT;
	st.dnsrch[0] = own;
	sfy_search_get(&s, &st);
	EQ(s.n, 2, "statp");
	assert_string_equal(s.dom[1], "own.example");

	char out[SFY_NAME_MAX + 1];
	assert_true(sfy_search_join("www", "a.example", out));
	assert_string_equal(out, "www.a.example");
	char longname[250];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_false(sfy_search_join(longname, "a.example", out));   /* > 253 */
	assert_true(sfy_search_applies("intranet"));
	assert_true(sfy_search_applies("a.b.c"));
	assert_false(sfy_search_applies("intranet."));
	assert_false(sfy_search_applies(""));
	unlink(path);
	sfy_search_set_path(NULL);
}

/* A name the resolver may extend is planned over every expansion: any
 * block blocks, else any fake fakes. */
static void test_plan_search(void **state)
{
	(void)state;
	char path[] = "/tmp/sfy-resolv-XXXXXX";
	resolv_tmp(path);
	resolv_write(path, "search example lan\n");
	struct sfy_config *c = build(SFY_DNS_REMOTE, rules, SFY_ARRAY_LEN(rules), SFY_VIA_DIRECT);
	struct sfy_routes *rt = routes_of(c);
	/* blocked.example through the search list */
	/* (port 80: in remote mode a direct default on port 53 is not sure) */
	EQ(sfy_dns_rules_plan(rt, "blocked", 80), SFY_PLAN_LOCAL, "as written");
	EQ(sfy_dns_rules_plan_search(rt, "blocked", -1, NULL), SFY_PLAN_BLOCK, "searched");
	EQ(sfy_dns_rules_plan_search(rt, "BLOCKED", 80, NULL), SFY_PLAN_BLOCK, "case");
	EQ(sfy_dns_rules_plan_search(rt, "blocked.", 80, NULL), SFY_PLAN_LOCAL, "trailing dot");
	/* web.example blocks on 443 only */
	EQ(sfy_dns_rules_plan_search(rt, "web", 443, NULL), SFY_PLAN_BLOCK, "web 443");
	EQ(sfy_dns_rules_plan_search(rt, "web", 80, NULL), SFY_PLAN_LOCAL, "web 80");
	/* a direct name whose expansion takes the remote top-level chain
	 * would leak it to the local server: faked */
	resolv_write(path, "search corp.example other.test\n");
	c->default_via = SFY_VIA_TOP;
	sfy_routes_free(rt);
	rt = routes_of(c);
	EQ(sfy_dns_rules_plan_search(rt, "x.lan", 80, NULL), SFY_PLAN_FAKE, "x.lan");
	EQ(sfy_dns_rules_plan(rt, "x.lan", 80), SFY_PLAN_LOCAL, "x.lan as written");
	resolv_write(path, "search corp.example\n");
	EQ(sfy_dns_rules_plan_search(rt, "x.lan", 80, NULL), SFY_PLAN_LOCAL, "x.lan, local chain");
	sfy_routes_free(rt);
	rb_free(c);
	unlink(path);
	sfy_search_set_path(NULL);
}

/* UDP's direct route for a name: resolved here (localhost: /etc/hosts,
 * no network), in the socket's family, with the destination's port. */
static void test_udp_direct_addr(void **state)
{
	(void)state;
	struct sfy_config c;
	sfy_config_defaults(&c);
	struct sfy_dest d;
	memset(&d, 0, sizeof(d));
	d.si.family = AF_INET;
	d.si.proto = SFY_SOCK_UDP;
	d.cfg = &c;
	d.route.kind = SFY_ROUTE_DIRECT;
	d.route.cfg = &c;
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	EQ(sfy_udp_direct_addr(&d, &ss, &sl), -EHOSTUNREACH, "not named");
	d.named = true;
	d.name.type = SFY_ATYP_DOMAIN;
	snprintf(d.name.name, sizeof(d.name.name), "localhost");
	d.name.port = 5353;
	sfy_udp_resolve_flush();
	EQ(sfy_udp_direct_addr(&d, &ss, &sl), 0, "localhost v4");
	EQ(sl, sizeof(struct sockaddr_in), "v4 len");
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
	EQ(s4->sin_family, AF_INET, "family");
	EQ(ntohs(s4->sin_port), 5353, "port");
	EQ(ntohl(s4->sin_addr.s_addr), INADDR_LOOPBACK, "127.0.0.1");
	/* the cached answer, with another port */
	d.name.port = 9;
	EQ(sfy_udp_direct_addr(&d, &ss, &sl), 0, "cached");
	EQ(ntohs(s4->sin_port), 9, "cached port");
	/* an AF_INET6 socket gets an AF_INET6 address (v4-mapped or ::1) */
	d.si.family = AF_INET6;
	EQ(sfy_udp_direct_addr(&d, &ss, &sl), 0, "localhost v6 socket");
	EQ(ss.ss_family, AF_INET6, "v6 family");
	EQ(sl, sizeof(struct sockaddr_in6), "v6 len");
	/* a name that cannot be resolved: an error, not a send anywhere */
	d.si.family = AF_INET;
	snprintf(d.name.name, sizeof(d.name.name), "no-such-name.invalid");
	c.handshake_timeout_ms = 2000;
	assert_true(sfy_udp_direct_addr(&d, &ss, &sl) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_remote),
		cmocka_unit_test(test_plan_local),
		cmocka_unit_test(test_plan_allow_list),
		cmocka_unit_test(test_plan_no_rules),
		cmocka_unit_test(test_service_port),
		cmocka_unit_test(test_logonce),
		cmocka_unit_test(test_logonce_fork),
		cmocka_unit_test(test_search_list),
		cmocka_unit_test(test_plan_search),
		cmocka_unit_test(test_udp_direct_addr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
