/* The fake-address table and the remote-DNS name policy. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "fakedns.h"

static uint32_t ip(const char *s)
{
	struct in_addr a;
	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

/* Every test starts from a brand-new table of the given range. */
static void fresh(const char *net, uint8_t prefix)
{
	sfy_fakedns_detach(true);
	sfy_fakedns_configure(ntohl(ip(net)), prefix);
}

static int setup_default(void **state)
{
	(void)state;
	fresh("224.0.0.0", 8);
	return 0;
}

static void test_same_name_same_address(void **state)
{
	(void)state;
	static const char *const names[] = { "example.com", "a.b.c.d.e", "x", "www.debian.org" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		uint32_t a, b;
		assert_int_equal(sfy_fakedns_ipv4(names[i], &a), 0);
		assert_int_equal(sfy_fakedns_ipv4(names[i], &b), 0);
		assert_int_equal(a, b);
		assert_true((ntohl(a) >> 24) == 224);
		assert_true(ntohl(a) != 0xe0000000u);   /* never the network address */
	}
}

static void test_different_names_differ(void **state)
{
	(void)state;
	uint32_t seen[200];
	char name[32];
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "host%d.test", i);
		assert_int_equal(sfy_fakedns_ipv4(name, &seen[i]), 0);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(seen[i], seen[j]);
	}
}

static void test_normalization(void **state)
{
	(void)state;
	static const struct { const char *a, *b; } same[] = {
		{ "Example.COM", "example.com" },
		{ "example.com.", "example.com" },
		{ "EXAMPLE.com.", "example.com" },
	};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		uint32_t a, b;
		assert_int_equal(sfy_fakedns_ipv4(same[i].a, &a), 0);
		assert_int_equal(sfy_fakedns_ipv4(same[i].b, &b), 0);
		assert_int_equal(a, b);
	}
	char long_name[301], max_name[256];
	memset(long_name, 'a', 300);
	long_name[300] = '\0';
	memset(max_name, 'b', 255);
	max_name[255] = '\0';
	uint32_t a;
	static const struct { const char *name; int rc; } bad[] = {
		{ "", -EINVAL }, { ".", -EINVAL }, { "a b", -EINVAL }, { "a\tb", -EINVAL },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sfy_fakedns_ipv4(bad[i].name, &a), bad[i].rc);
	assert_int_equal(sfy_fakedns_ipv4(long_name, &a), -ENAMETOOLONG);
	assert_int_equal(sfy_fakedns_ipv4(max_name, &a), 0);
}

static void test_reverse(void **state)
{
	(void)state;
	uint32_t a;
	struct sfy_addr out;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(443) };
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(80) };
	char name[SFY_NAME_MAX + 1];

	assert_int_equal(sfy_fakedns_ipv4("Reverse.Example.", &a), 0);
	sin.sin_addr.s_addr = a;
	assert_true(sfy_fakedns_reverse((struct sockaddr *)&sin, sizeof(sin), &out));
	assert_int_equal(out.type, SFY_ATYP_DOMAIN);
	assert_string_equal(out.name, "reverse.example");
	assert_int_equal(out.port, 443);

	/* v6 equivalent and v4-mapped both map back */
	sfy_fakedns_ipv6(a, s6.sin6_addr.s6_addr);
	assert_true(sfy_fakedns_reverse((struct sockaddr *)&s6, sizeof(s6), &out));
	assert_string_equal(out.name, "reverse.example");
	assert_int_equal(out.port, 80);
	memset(s6.sin6_addr.s6_addr, 0, 10);
	memset(s6.sin6_addr.s6_addr + 10, 0xff, 2);
	memcpy(s6.sin6_addr.s6_addr + 12, &a, 4);
	assert_true(sfy_fakedns_reverse((struct sockaddr *)&s6, sizeof(s6), &out));

	/* not handed out / not fake / wrong length */
	static const char *const not_fake[] = { "224.255.255.254", "10.0.0.1", "127.0.0.1" };
	for (size_t i = 0; i < sizeof(not_fake) / sizeof(not_fake[0]); i++) {
		sin.sin_addr.s_addr = ip(not_fake[i]);
		assert_false(sfy_fakedns_reverse((struct sockaddr *)&sin, sizeof(sin), &out));
	}
	sin.sin_addr.s_addr = a;
	assert_false(sfy_fakedns_reverse((struct sockaddr *)&sin, 4, &out));
	assert_true(sfy_fakedns_in_range(ip("224.255.255.254")));
	assert_false(sfy_fakedns_in_range(ip("10.0.0.1")));
	assert_int_equal(sfy_fakedns_name(ip("224.255.255.254"), name), -ENOENT);
	assert_int_equal(sfy_fakedns_name(a, name), 0);
	assert_string_equal(name, "reverse.example");
}

static void test_ipv6_equivalent(void **state)
{
	(void)state;
	uint8_t v6[16];
	char buf[INET6_ADDRSTRLEN];
	sfy_fakedns_ipv6(ip("224.1.2.3"), v6);
	inet_ntop(AF_INET6, v6, buf, sizeof(buf));
	assert_string_equal(buf, "fd73:6f63:6b73::e001:203");
}

#define NTHREADS 8
#define NNAMES 5000

struct worker {
	int id;
	uint32_t addr[NNAMES];
};

/* All threads resolve the same 5000 names in different orders. */
static void *worker_run(void *p)
{
	struct worker *w = p;
	char name[32];
	for (int k = 0; k < NNAMES; k++) {
		int i = (w->id & 1) ? NNAMES - 1 - k : (k * 7 + w->id * 613) % NNAMES;
		snprintf(name, sizeof(name), "t%d.example", i);
		if (sfy_fakedns_ipv4(name, &w->addr[i]) < 0)
			w->addr[i] = 0;
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	static struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	for (int t = 0; t < NTHREADS; t++) {
		w[t].id = t;
		assert_int_equal(pthread_create(&th[t], NULL, worker_run, &w[t]), 0);
	}
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	for (int i = 0; i < NNAMES; i++) {
		char name[32], back[SFY_NAME_MAX + 1];
		snprintf(name, sizeof(name), "t%d.example", i);
		assert_int_not_equal(w[0].addr[i], 0);
		for (int t = 1; t < NTHREADS; t++)
			assert_int_equal(w[t].addr[i], w[0].addr[i]);
		assert_int_equal(sfy_fakedns_name(w[0].addr[i], back), 0);
		assert_string_equal(back, name);
	}
}

static void test_fork_shares(void **state)
{
	(void)state;
	uint32_t before, child_addr, again;
	assert_int_equal(sfy_fakedns_ipv4("before.fork", &before), 0);
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint32_t a = 0, b = 0;
		int ok = sfy_fakedns_ipv4("child.only", &a) == 0 &&
			 sfy_fakedns_ipv4("before.fork", &b) == 0 && b == before;
		if (write(pfd[1], &a, 4) != 4)
			ok = 0;
		_exit(ok ? 0 : 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(read(pfd[0], &child_addr, 4), 4);
	close(pfd[0]);
	close(pfd[1]);
	char name[SFY_NAME_MAX + 1];
	assert_int_equal(sfy_fakedns_name(child_addr, name), 0);   /* parent sees it */
	assert_string_equal(name, "child.only");
	assert_int_equal(sfy_fakedns_ipv4("child.only", &again), 0);
	assert_int_equal(again, child_addr);
}

/* What an exec'd child does: attach through SOCKSIFY_FAKEDNS_FD. */
static void test_attach_from_env(void **state)
{
	(void)state;
	uint32_t a, b;
	assert_int_equal(sfy_fakedns_ipv4("exec.example", &a), 0);
	const char *fd = getenv(SFY_FAKEDNS_ENV);
	assert_non_null(fd);
	assert_true(atoi(fd) >= 100);
	sfy_fakedns_detach(false);                      /* keep the fd, drop the mapping */
	assert_int_equal(sfy_fakedns_ipv4("exec.example", &b), 0);
	assert_int_equal(a, b);

}

/* A child whose inherited fd was closed (Python's subprocess closes every
 * fd) reopens the table from the exporting process and sees its names. */
static void test_reopen_closed_fd(void **state)
{
	(void)state;
	uint32_t a;
	assert_int_equal(sfy_fakedns_ipv4("parent.example", &a), 0);
	int fd = atoi(getenv(SFY_FAKEDNS_ENV));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint32_t b = 0;
		char name[SFY_NAME_MAX + 1];
		sfy_fakedns_detach(false);
		close(fd);
		int ok = sfy_fakedns_ipv4("parent.example", &b) == 0 && b == a &&
			 sfy_fakedns_name(a, name) == 0 && !strcmp(name, "parent.example") &&
			 atoi(getenv(SFY_FAKEDNS_ENV)) >= 100 &&
			 strtol(strchr(getenv(SFY_FAKEDNS_ENV), ':') + 1, NULL, 10) == getpid();
		_exit(ok ? 0 : 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* An fd number that the program reused for something else is not a table:
 * it is left alone and a new table (and variable) replaces it. */
static void test_attach_invalid_fd(void **state)
{
	(void)state;
	static const char *const bogus[] = { "devnull", "zeros", "junk", "-1", "99999" };
	for (size_t i = 0; i < sizeof(bogus) / sizeof(bogus[0]); i++) {
		int fd = -1;
		char num[32];
		sfy_fakedns_detach(true);
		if (!strcmp(bogus[i], "devnull")) {
			fd = open("/dev/null", O_RDWR);
		} else if (!strcmp(bogus[i], "zeros")) {
			/* right size class, no magic */
			char path[] = "/tmp/sfy-fakeXXXXXX";
			fd = mkstemp(path);
			unlink(path);
			assert_int_equal(ftruncate(fd, 1 << 20), 0);
		}
		if (fd >= 0)
			snprintf(num, sizeof(num), "%d", fd);
		else
			snprintf(num, sizeof(num), "%s", bogus[i]);
		setenv(SFY_FAKEDNS_ENV, num, 1);
		uint32_t a;
		assert_int_equal(sfy_fakedns_ipv4("after.bogus", &a), 0);
		assert_string_not_equal(getenv(SFY_FAKEDNS_ENV), num);
		if (fd >= 0) {
			assert_true(fcntl(fd, F_GETFD) >= 0);   /* still open */
			close(fd);
		}
	}
}

static void test_exhaustion(void **state)
{
	(void)state;
	fresh("10.99.0.0", 30);                         /* .1 and .2 usable */
	uint32_t a, b, c;
	assert_int_equal(sfy_fakedns_ipv4("one", &a), 0);
	assert_int_equal(sfy_fakedns_ipv4("two", &b), 0);
	assert_int_equal(ntohl(a), 0x0a630001u);
	assert_int_equal(ntohl(b), 0x0a630002u);
	assert_int_equal(sfy_fakedns_ipv4("three", &c), -ENOSPC);
	assert_int_equal(sfy_fakedns_ipv4("four", &c), -ENOSPC);
	/* existing names keep working, mappings unchanged */
	assert_int_equal(sfy_fakedns_ipv4("ONE.", &c), 0);
	assert_int_equal(c, a);
	assert_int_equal(sfy_fakedns_ipv4("two", &c), 0);
	assert_int_equal(c, b);
	fresh("224.0.0.0", 8);
}

static void test_classify(void **state)
{
	(void)state;
	char path[] = "/tmp/sfy-hostsXXXXXX";
	int fd = mkstemp(path);
	static const char hosts[] =
		"# comment\n"
		"127.0.0.1\tlocalhost\n"
		"10.1.2.3  Intranet.Example intra # alias\n"
		"fd00::5   v6only.example\n"
		"192.0.2.7 both.example\n"
		"2001:db8::7 both.example\n"
		"garbage line\n";
	assert_int_equal(write(fd, hosts, sizeof(hosts) - 1), (ssize_t)sizeof(hosts) - 1);
	close(fd);
	assert_int_equal(sfy_hosts_load(path), 0);
	unlink(path);

	char me[256];
	assert_int_equal(gethostname(me, sizeof(me)), 0);
	static const struct {
		const char *name;
		int family;
		bool mapped;
		enum sfy_dns_class want;
	} cases[] = {
		{ "1.2.3.4", AF_UNSPEC, false, SFY_DNS_REAL },
		{ "127.1", AF_INET, false, SFY_DNS_REAL },
		{ "::1", AF_INET6, false, SFY_DNS_REAL },
		{ "fe80::1%eth0", AF_UNSPEC, false, SFY_DNS_REAL },
		{ "1.2.3.4 junk", AF_UNSPEC, false, SFY_DNS_INVALID },
		{ "not:an:address", AF_UNSPEC, false, SFY_DNS_INVALID },
		{ "", AF_UNSPEC, false, SFY_DNS_INVALID },
		{ "localhost", AF_INET, false, SFY_DNS_REAL },          /* in the file */
		{ "localhost", AF_INET6, false, SFY_DNS_NODATA },       /* file has no ::1 */
		{ "foo.localhost", AF_UNSPEC, false, SFY_DNS_LOOPBACK },
		{ "intranet.example", AF_INET, false, SFY_DNS_REAL },
		{ "INTRA.", AF_UNSPEC, false, SFY_DNS_REAL },
		{ "intra", AF_INET6, false, SFY_DNS_NODATA },
		{ "intra", AF_INET6, true, SFY_DNS_REAL },
		{ "v6only.example", AF_INET, false, SFY_DNS_NODATA },
		{ "v6only.example", AF_INET6, false, SFY_DNS_REAL },
		{ "both.example", AF_INET6, false, SFY_DNS_REAL },
		{ "both.example", AF_INET, false, SFY_DNS_REAL },
		{ "example.com", AF_UNSPEC, false, SFY_DNS_FAKE },
		{ "example.com", AF_INET6, true, SFY_DNS_FAKE },
		{ "garbage", AF_UNSPEC, false, SFY_DNS_FAKE },
		{ "line", AF_UNSPEC, false, SFY_DNS_FAKE },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum sfy_dns_class got = sfy_dns_classify(cases[i].name, cases[i].family, cases[i].mapped);
		if (got != cases[i].want)
			fail_msg("%s/%d: got %d want %d", cases[i].name, cases[i].family, got, cases[i].want);
	}
	/* own hostname: from the file if listed, else the loopback answer */
	enum sfy_dns_class own = sfy_dns_classify(me, AF_UNSPEC, false);
	assert_true(own == SFY_DNS_LOOPBACK);

	unsigned char a4[4] = { 10, 1, 2, 3 }, a6[16] = { 0xfd, 0 }, no[4] = { 10, 1, 2, 4 };
	a6[15] = 5;
	assert_true(sfy_hosts_has_addr(AF_INET, a4));
	assert_true(sfy_hosts_has_addr(AF_INET6, a6));
	assert_false(sfy_hosts_has_addr(AF_INET, no));
	static const unsigned char lo6[16] = { [15] = 1 };
	assert_false(sfy_hosts_has_addr(AF_INET6, lo6));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_same_name_same_address, setup_default),
		cmocka_unit_test_setup(test_different_names_differ, setup_default),
		cmocka_unit_test_setup(test_normalization, setup_default),
		cmocka_unit_test_setup(test_reverse, setup_default),
		cmocka_unit_test_setup(test_ipv6_equivalent, setup_default),
		cmocka_unit_test_setup(test_threads, setup_default),
		cmocka_unit_test_setup(test_fork_shares, setup_default),
		cmocka_unit_test_setup(test_attach_from_env, setup_default),
		cmocka_unit_test_setup(test_reopen_closed_fd, setup_default),
		cmocka_unit_test_setup(test_attach_invalid_fd, setup_default),
		cmocka_unit_test_setup(test_exhaustion, setup_default),
		cmocka_unit_test(test_classify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
