/* What is remembered about proxies: the tree's shared table (keyed by host,
 * port and protocol, expiring, robust against garbage written into it) and
 * the file cache (owner and mode checks, expiry, newest line wins). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "proxystate.h"
#include "stepcache.h"
#include "stepwise.h"
#include "testutil.h"

extern char **environ;

#define T0 1764460000   /* an arbitrary "now" */
#define DAY SFY_STEPWISE_TTL

static int64_t fake_now = T0;
static int64_t clk(void)
{
	return fake_now;
}

static char tmpdir[64];
static char cachefile[128];
static struct sfy_config cfg;

static void add_proxy(const char *url)
{
	char err[256];
	assert_int_equal(sfy_proxy_url_parse(url, &cfg.proxies[cfg.nproxies], err, sizeof(err)),
			 0);
	cfg.nproxies++;
}

/* A fresh cache directory, no table, the fake clock at T0 and a config of
 * the proxies the tests use. */
static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sfy-stepwise.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	assert_int_equal(chmod(tmpdir, 0700), 0);
	snprintf(cachefile, sizeof(cachefile), "%s/socksify/stepwise", tmpdir);
	setenv("XDG_CACHE_HOME", tmpdir, 1);
	unsetenv(SFY_PROXYSTATE_ENV);
	sfy_stepwise_reset(true);
	fake_now = T0;
	sfy_stepwise_set_clock(clk);
	sfy_config_defaults(&cfg);
	add_proxy("socks5://proxy.example:1080");
	add_proxy("socks5://proxy.example:1081");
	add_proxy("socks5h://proxy.example:1080");
	add_proxy("socks5://127.0.0.1:1080");
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	sfy_stepwise_reset(true);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static enum sfy_pipe_known get(size_t i)
{
	return sfy_stepwise_get(&cfg, &cfg.proxies[i]);
}

static void write_cache(const char *text)
{
	char dir[96];
	snprintf(dir, sizeof(dir), "%s/socksify", tmpdir);
	mkdir(dir, 0700);
	FILE *f = fopen(cachefile, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(cachefile, 0600), 0);
}

static size_t count_lines(void)
{
	FILE *f = fopen(cachefile, "r");
	size_t n = 0;
	int c;
	if (!f)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* ---- the table ---------------------------------------------------------- */

static void test_keyed_by_host_port_proto(void **state)
{
	(void)state;
	struct sfy_proxy upper;
	assert_int_equal(get(0), SFY_PIPE_UNKNOWN);
	sfy_stepwise_set(&cfg, &cfg.proxies[0], SFY_PIPE_STEPWISE);
	EQ(get(0), SFY_PIPE_STEPWISE, "the proxy learned");
	EQ(get(1), SFY_PIPE_UNKNOWN, "same host, other port");
	EQ(get(2), SFY_PIPE_UNKNOWN, "same host and port, socks5h");
	EQ(get(3), SFY_PIPE_UNKNOWN, "other host");
	/* Not an index: a proxy struct outside the config, same key. */
	upper = cfg.proxies[0];
	strcpy(upper.host, "PROXY.Example");
	EQ(sfy_stepwise_get(&cfg, &upper), SFY_PIPE_STEPWISE, "host names are case-blind");
	sfy_stepwise_set(&cfg, &cfg.proxies[2], SFY_PIPE_OK);
	EQ(get(2), SFY_PIPE_OK, "socks5h learned separately");
	EQ(get(0), SFY_PIPE_STEPWISE, "socks5 unchanged");
}

static void test_expiry(void **state)
{
	(void)state;
	sfy_stepwise_set(&cfg, &cfg.proxies[0], SFY_PIPE_STEPWISE);
	sfy_stepwise_reset(false);      /* forget the table: the file alone */
	fake_now = T0 + DAY - 1;
	EQ(get(0), SFY_PIPE_STEPWISE, "file: a day minus a second");
	fake_now = T0 + DAY;
	sfy_stepwise_reset(false);
	EQ(get(0), SFY_PIPE_UNKNOWN, "file: a day old, expired");

	sfy_stepwise_reset(false);
	unlink(cachefile);
	fake_now = T0;
	sfy_stepwise_set(&cfg, &cfg.proxies[0], SFY_PIPE_STEPWISE);
	fake_now = T0 + DAY - 1;
	EQ(get(0), SFY_PIPE_STEPWISE, "table: a day minus a second");
	fake_now = T0 + DAY;
	EQ(get(0), SFY_PIPE_UNKNOWN, "table: a day old, expired (re-probe)");
	/* Learned again after expiry: remembered again. */
	sfy_stepwise_set(&cfg, &cfg.proxies[0], SFY_PIPE_OK);
	EQ(get(0), SFY_PIPE_OK, "re-learned");
}

static void test_newer_ok_overrides(void **state)
{
	(void)state;
	sfy_stepwise_set(&cfg, &cfg.proxies[0], SFY_PIPE_STEPWISE);
	fake_now = T0 + 10;
	sfy_stepwise_set(&cfg, &cfg.proxies[0], SFY_PIPE_OK);
	EQ(get(0), SFY_PIPE_OK, "table: newer OK wins");
	sfy_stepwise_reset(false);
	EQ(get(0), SFY_PIPE_OK, "file: newer OK wins");
	EQ(count_lines(), 2, "both verdicts in the file");
	/* The same verdict again soon after: no new line. */
	fake_now = T0 + 20;
	sfy_stepwise_set(&cfg, &cfg.proxies[0], SFY_PIPE_OK);
	EQ(count_lines(), 2, "a repeated verdict is not appended");
	/* An older verdict merged later (another process's stale file line)
	 * does not override a newer one. */
	struct sfy_pxkey k;
	assert_true(sfy_pxkey_of(&cfg.proxies[0], &k));
	assert_int_equal(sfy_pxtab_put(&k, SFY_PIPE_STEPWISE, T0 - 100, fake_now), 0);
	EQ(get(0), SFY_PIPE_OK, "older put ignored");
}

/* The launcher's table reaches exec'd processes through the variable, and
 * fork()ed children through the mapping. */
static void test_shared_through_env(void **state)
{
	(void)state;
	int fd = sfy_stepwise_export(&cfg);
	assert_true(fd >= 100);
	assert_non_null(getenv(SFY_PROXYSTATE_ENV));
	assert_true(sfy_pxtab_shared());
	sfy_stepwise_set(&cfg, &cfg.proxies[1], SFY_PIPE_STEPWISE);
	unlink(cachefile);      /* only the table can tell now */
	/* What an exec'd process does: attach from the variable. */
	sfy_stepwise_reset(false);
	EQ(get(1), SFY_PIPE_STEPWISE, "re-attached from the variable");
	assert_true(sfy_pxtab_shared());

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		sfy_stepwise_set(&cfg, &cfg.proxies[3], SFY_PIPE_STEPWISE);
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	unlink(cachefile);
	EQ(get(3), SFY_PIPE_STEPWISE, "learned by a child");

	/* A closed fd (Python's subprocess closes them) is reopened through
	 * the process named in the variable, while it lives. */
	char saved[128], v[160];
	snprintf(saved, sizeof(saved), "%s", getenv(SFY_PROXYSTATE_ENV));
	int sync[2];
	assert_int_equal(pipe(sync), 0);
	pid_t holder = fork();
	assert_true(holder >= 0);
	if (holder == 0) {
		char c;
		close(sync[1]);
		(void)!read(sync[0], &c, 1);
		_exit(0);
	}
	close(sync[0]);
	sfy_stepwise_reset(false);
	close(fd);
	snprintf(v, sizeof(v), "%d:%ld:%s", fd, (long)holder, strrchr(saved, ':') + 1);
	setenv(SFY_PROXYSTATE_ENV, v, 1);
	EQ(get(3), SFY_PIPE_STEPWISE, "reopened through /proc/PID/fd");
	assert_true(sfy_pxtab_shared());
	/* The reopened fd is inherited by our own children, which find it
	 * by the table's id (shmfd.h); here it goes too. */
	int reopened = sfy_shm_guard_get(SFY_SHM_PXSTATE);
	assert_true(reopened >= 0);
	close(sync[1]);
	assert_int_equal(waitpid(holder, &st, 0), holder);
	sfy_stepwise_reset(false);
	close(reopened);
	EQ(get(3), SFY_PIPE_UNKNOWN, "holder gone: a private table");
	assert_false(sfy_pxtab_shared());
}

/* Seals: nobody can shrink the memfd under the mappings or unseal it. */
static void test_sealed(void **state)
{
	(void)state;
	int fd = sfy_stepwise_export(&cfg);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);   /* survives exec */
	int seals = fcntl(fd, F_GET_SEALS);
	assert_true(seals & F_SEAL_SHRINK);
	assert_true(seals & F_SEAL_GROW);
	assert_true(seals & F_SEAL_SEAL);
	assert_int_equal(ftruncate(fd, 0), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
}

/* Tables the library must not attach: unsealed, wrong size or id, bad
 * variables. Each falls back to a private table. */
static void test_attach_refuses(void **state)
{
	(void)state;
	static const char *bad[] = { "", "x", "-1:1:1", "3", "99999999:1:1", "0:0:0",
				     "1:0:ffffffffffffffff", "2:-5:1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv(SFY_PROXYSTATE_ENV, bad[i], 1);
		sfy_stepwise_reset(false);
		EQ(get(0), SFY_PIPE_UNKNOWN, bad[i]);
		assert_false(sfy_pxtab_shared());
	}
	/* A copy of a real table in an unsealed memfd (truncatable: a SIGBUS
	 * waiting to happen) is refused. */
	int fd = sfy_stepwise_export(&cfg);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	char *copy = malloc((size_t)st.st_size);
	assert_int_equal(pread(fd, copy, (size_t)st.st_size, 0), st.st_size);
	char v[128], saved[128];
	snprintf(saved, sizeof(saved), "%s", getenv(SFY_PROXYSTATE_ENV));
	sfy_stepwise_reset(true);       /* only the copy carries the id now */
	int u = memfd_create("unsealed", 0);
	assert_int_equal(write(u, copy, (size_t)st.st_size), st.st_size);
	free(copy);
	snprintf(v, sizeof(v), "%d:0:%s", u, strrchr(saved, ':') + 1);
	setenv(SFY_PROXYSTATE_ENV, v, 1);
	sfy_stepwise_reset(false);
	get(0);
	assert_false(sfy_pxtab_shared());
	close(u);
	sfy_stepwise_reset(false);
	setenv(SFY_PROXYSTATE_ENV, saved, 1);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Whatever a hostile child writes into the table, lookups and updates stay
 * in bounds and answer UNKNOWN for what they cannot trust. */
static void test_garbage_table(void **state)
{
	(void)state;
	int fd = sfy_stepwise_export(&cfg);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	size_t size = (size_t)st.st_size;
	unsigned char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	unlink(cachefile);

	for (int round = 0; round < 6; round++) {
		if (round == 0)
			memset(m, 0xff, size);   /* every slot taken, every length max */
		else if (round == 1)
			memset(m, 0x01, size);
		else
			for (size_t i = 0; i < size; i += 8) {
				uint64_t r = xorshift();
				memcpy(m + i, &r, size - i < 8 ? size - i : 8);
			}
		for (size_t i = 0; i < cfg.nproxies; i++) {
			EQ(get(i), SFY_PIPE_UNKNOWN, "garbage table");
			sfy_stepwise_set(&cfg, &cfg.proxies[i], SFY_PIPE_STEPWISE);
		}
		/* A set may or may not find room, but never answers wrongly. */
		for (size_t i = 0; i < cfg.nproxies; i++) {
			enum sfy_pipe_known v = get(i);
			assert_true(v == SFY_PIPE_UNKNOWN || v == SFY_PIPE_STEPWISE);
		}
	}

	/* A well-formed entry whose state is garbage: unknown verdict, far
	 * future time (would never expire). Entry layout: tag, state, ready,
	 * port, proto, hostlen, host -- the state is 16 bytes before the host. */
	memset(m, 0, size);
	sfy_stepwise_set(&cfg, &cfg.proxies[0], SFY_PIPE_STEPWISE);
	unlink(cachefile);
	unsigned char *h = memmem(m, size, "proxy.example", 14);
	assert_non_null(h);
	uint64_t bad_states[] = { (uint64_t)T0 << 2 | 3, (uint64_t)T0 << 2 | 0,
				  (uint64_t)(T0 + 10 * DAY) << 2 | 2, ~0ull };
	for (size_t i = 0; i < sizeof(bad_states) / sizeof(bad_states[0]); i++) {
		memcpy(h - 16, &bad_states[i], 8);
		EQ(get(0), SFY_PIPE_UNKNOWN, "garbage state");
	}
	/* ...and a real verdict replaces it. */
	sfy_stepwise_set(&cfg, &cfg.proxies[0], SFY_PIPE_OK);
	EQ(get(0), SFY_PIPE_OK, "garbage state overwritten");
	/* A key whose length byte lies (longer than the name) never matches. */
	h[-1] = 200;
	EQ(get(0), SFY_PIPE_UNKNOWN, "hostlen garbage");
	munmap(m, size);
}

/* ---- the file ----------------------------------------------------------- */

static void test_file_format_and_expiry(void **state)
{
	(void)state;
	char text[512];
	snprintf(text, sizeof(text),
		 "proxy.example 1080\n"                                  /* old format */
		 "socks5 proxy.example 1081 stepwise %d\n"               /* expired */
		 "socks5h proxy.example 1080 stepwise %d\n"              /* other proto */
		 "socks5 127.0.0.1 1080 stepwise %d\n"                   /* future */
		 "socks5  proxy.example 1080 stepwise %d\n"              /* bad shape */
		 "socks5 proxy.example 1080 maybe %d\n",
		 T0 - DAY, T0 - 5, T0 + DAY, T0 - 5, T0 - 5);
	write_cache(text);
	EQ(get(0), SFY_PIPE_UNKNOWN, "old-format and malformed lines ignored");
	EQ(get(1), SFY_PIPE_UNKNOWN, "expired line ignored");
	EQ(get(2), SFY_PIPE_STEPWISE, "socks5h line for the socks5h proxy");
	EQ(get(3), SFY_PIPE_UNKNOWN, "a line from the future ignored");
}

/* A port that once served microsocks and now serves danted: the old
 * verdict expires, or a newer OK overrides it. */
static void test_file_microsocks_then_danted(void **state)
{
	(void)state;
	char text[512];
	snprintf(text, sizeof(text), "socks5 proxy.example 1080 ok %d\n"
		 "socks5 proxy.example 1080 stepwise %d\n"
		 "socks5 proxy.example 1081 stepwise %d\n"
		 "socks5 proxy.example 1081 ok %d\n",
		 T0 - 10, T0 - 1000, T0 - 1000, T0 - 2000);
	write_cache(text);
	EQ(get(0), SFY_PIPE_OK, "newer OK wins whatever the line order");
	EQ(get(1), SFY_PIPE_STEPWISE, "newer STEPWISE wins over an older OK");
	fake_now = T0 - 1000 + DAY;
	sfy_stepwise_reset(false);
	EQ(get(1), SFY_PIPE_UNKNOWN, "a day later: re-probed");
}

static void test_file_owner_and_mode(void **state)
{
	(void)state;
	char text[128], dir[96], link[160];
	snprintf(text, sizeof(text), "socks5 proxy.example 1080 stepwise %d\n", T0 - 5);
	snprintf(dir, sizeof(dir), "%s/socksify", tmpdir);
	write_cache(text);
	EQ(get(0), SFY_PIPE_STEPWISE, "0600 file in a 0700 dir");

	struct { const char *what; const char *path; mode_t mode; uid_t uid; } cases[] = {
		{ "group-writable file", cachefile, 0620, 0 },
		{ "world-writable file", cachefile, 0602, 0 },
		{ "world-writable dir", dir, 0777, 0 },
		{ "group-writable dir", dir, 0770, 0 },
		{ "file of another user", cachefile, 0600, 65534 },
		{ "dir of another user", dir, 0700, 65534 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uid_t me = geteuid();
		assert_int_equal(chmod(cases[i].path, cases[i].mode), 0);
		if (cases[i].uid)
			assert_int_equal(chown(cases[i].path, me ? me + 1 : cases[i].uid, (gid_t)-1),
					 me ? -1 : 0);
		if (cases[i].uid && me)
			continue;       /* only root can give a file away */
		sfy_stepwise_reset(false);
		EQ(get(0), SFY_PIPE_UNKNOWN, cases[i].what);
		/* ...and nothing is written there either. */
		size_t before = count_lines();
		sfy_stepwise_set(&cfg, &cfg.proxies[1], SFY_PIPE_STEPWISE);
		EQ(count_lines(), before, cases[i].what);
		assert_int_equal(chmod(cachefile, 0600), 0);
		assert_int_equal(chmod(dir, 0700), 0);
		assert_int_equal(chown(cachefile, me, (gid_t)-1), 0);
		assert_int_equal(chown(dir, me, (gid_t)-1), 0);
		write_cache(text);
		sfy_stepwise_reset(false);
		EQ(get(0), SFY_PIPE_STEPWISE, "restored");
	}

	/* A symlink in place of the file, or of the directory, is not followed. */
	char real[160];
	snprintf(real, sizeof(real), "%s/elsewhere", tmpdir);
	assert_int_equal(rename(cachefile, real), 0);
	assert_int_equal(symlink(real, cachefile), 0);
	sfy_stepwise_reset(false);
	EQ(get(0), SFY_PIPE_UNKNOWN, "file symlink");
	unlink(cachefile);
	assert_int_equal(rmdir(dir), 0);
	snprintf(link, sizeof(link), "%s/d", tmpdir);
	assert_int_equal(mkdir(link, 0700), 0);
	char f2[200];
	snprintf(f2, sizeof(f2), "%s/stepwise", link);
	FILE *f = fopen(f2, "w");
	fputs(text, f);
	fclose(f);
	chmod(f2, 0600);
	assert_int_equal(symlink(link, dir), 0);
	sfy_stepwise_reset(false);
	EQ(get(0), SFY_PIPE_UNKNOWN, "directory symlink");

	/* A FIFO in place of the file must not block. */
	unlink(dir);
	mkdir(dir, 0700);
	assert_int_equal(mkfifo(cachefile, 0600), 0);
	sfy_stepwise_reset(false);
	EQ(get(0), SFY_PIPE_UNKNOWN, "FIFO");
	sfy_stepwise_set(&cfg, &cfg.proxies[0], SFY_PIPE_STEPWISE);
}

/* Writes lines with protocol and time; the directory is created 0700. */
static void test_file_written(void **state)
{
	(void)state;
	char want[256], got[256] = "";
	sfy_stepwise_set(&cfg, &cfg.proxies[2], SFY_PIPE_STEPWISE);
	FILE *f = fopen(cachefile, "r");
	assert_non_null(f);
	assert_non_null(fgets(got, sizeof(got), f));
	fclose(f);
	snprintf(want, sizeof(want), "socks5h proxy.example 1080 stepwise %d\n", T0);
	assert_string_equal(got, want);
	struct stat st;
	assert_int_equal(stat(cachefile, &st), 0);
	EQ(st.st_mode & 0777, 0600, "file mode");
	char dir[96];
	snprintf(dir, sizeof(dir), "%s/socksify", tmpdir);
	assert_int_equal(stat(dir, &st), 0);
	EQ(st.st_mode & 0777, 0700, "dir mode");
}

/* The file stays bounded: past the limit it is rewritten with one line per
 * live key, and only its end is ever read. */
static void test_file_bounded(void **state)
{
	(void)state;
	FILE *f;
	char dir[96];
	snprintf(dir, sizeof(dir), "%s/socksify", tmpdir);
	mkdir(dir, 0700);
	f = fopen(cachefile, "w");
	assert_non_null(f);
	for (int i = 0; i < 2000; i++)
		fprintf(f, "socks5 10.0.%d.%d 1080 stepwise %d\n", i / 250, i % 250,
			i % 2 ? T0 - 2 * DAY : T0 - 100);
	fprintf(f, "socks5 proxy.example 1081 stepwise %d\n", T0 - 50);
	fclose(f);
	chmod(cachefile, 0600);
	struct stat st;
	assert_int_equal(stat(cachefile, &st), 0);
	assert_true(st.st_size > SFY_STEPCACHE_COMPACT);
	sfy_stepwise_set(&cfg, &cfg.proxies[0], SFY_PIPE_STEPWISE);
	assert_int_equal(stat(cachefile, &st), 0);
	assert_true(st.st_size <= SFY_STEPCACHE_COMPACT);
	sfy_stepwise_reset(false);
	EQ(get(0), SFY_PIPE_STEPWISE, "the new line survives compaction");
	EQ(get(1), SFY_PIPE_STEPWISE, "a live line survives compaction");
	EQ(count_lines(), 257, "the newest 256 live keys kept, plus the new line");

	/* A huge file: only the tail is read, the newest line is found. */
	f = fopen(cachefile, "w");
	for (int i = 0; i < 100000; i++)
		fputs("garbage garbage garbage garbage\n", f);
	fprintf(f, "socks5 127.0.0.1 1080 ok %d\n", T0 - 5);
	fclose(f);
	chmod(cachefile, 0600);
	sfy_stepwise_reset(false);
	EQ(get(3), SFY_PIPE_OK, "newest line of a huge file");
}

/* The library never touches the environment: no setenv() from a hook. */
static void test_no_setenv(void **state)
{
	(void)state;
	char **before = environ;
	size_t n = 0, m = 0;
	while (environ[n])
		n++;
	unsetenv("SOCKSIFY_STEPWISE");
	sfy_stepwise_set(&cfg, &cfg.proxies[0], SFY_PIPE_STEPWISE);
	sfy_stepwise_set(&cfg, &cfg.proxies[1], SFY_PIPE_OK);
	get(2);
	while (environ[m])
		m++;
	assert_ptr_equal(environ, before);
	EQ(m, n, "variables");
	assert_null(getenv("SOCKSIFY_STEPWISE"));
	assert_null(getenv(SFY_PROXYSTATE_ENV));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_keyed_by_host_port_proto),
		T(test_expiry),
		T(test_newer_ok_overrides),
		T(test_shared_through_env),
		T(test_sealed),
		T(test_attach_refuses),
		T(test_garbage_table),
		T(test_file_format_and_expiry),
		T(test_file_microsocks_then_danted),
		T(test_file_owner_and_mode),
		T(test_file_written),
		T(test_file_bounded),
		T(test_no_setenv),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
