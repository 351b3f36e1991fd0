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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "fakedns.h"
#include "shmfd.h"

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
 * fd) reopens the table from the exporting process and sees its names; its
 * own children inherit the reopened descriptor and find it by the table's
 * id, at whatever number it got. */
static void test_reopen_closed_fd(void **state)
{
	(void)state;
	uint32_t a;
	assert_int_equal(sfy_fakedns_ipv4("parent.example", &a), 0);
	int fd = atoi(getenv(SFY_FAKEDNS_ENV));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint32_t b = 0, c = 0;
		char name[SFY_NAME_MAX + 1];
		sfy_fakedns_detach(false);
		close(fd);
		int ok = sfy_fakedns_ipv4("parent.example", &b) == 0 && b == a &&
			 sfy_fakedns_name(a, name) == 0 && !strcmp(name, "parent.example");
		pid_t gc = fork();
		if (gc == 0) {
			/* As after exec: no mapping, the variable naming a number
			 * this process does not have and a process that is gone. */
			char v[64];
			sfy_fakedns_detach(false);
			snprintf(v, sizeof(v), "%d:%d:%s", fd, (int)getppid() + 1000000,
				 strrchr(getenv(SFY_FAKEDNS_ENV), ':') + 1);
			setenv(SFY_FAKEDNS_ENV, v, 1);
			_exit(sfy_fakedns_ipv4("parent.example", &c) == 0 && c == a ? 0 : 1);
		}
		int st;
		ok = ok && gc > 0 && waitpid(gc, &st, 0) == gc && WIFEXITED(st) &&
		     WEXITSTATUS(st) == 0;
		_exit(ok ? 0 : 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Moved by the close/dup hooks (or by anyone) to another number: this
 * process still holds it, and finds it by its id -- not a new table. */
static void test_found_after_move(void **state)
{
	(void)state;
	uint32_t a, b;
	char v[64];
	assert_int_equal(sfy_fakedns_ipv4("first.example", &a), 0);
	assert_int_equal(sfy_fakedns_ipv4("moved.example", &a), 0);
	int fd = atoi(getenv(SFY_FAKEDNS_ENV));
	assert_int_equal(sfy_shm_guard_get(SFY_SHM_FAKEDNS), fd);
	sfy_shm_evict(fd);                      /* what close(fd) does first */
	int moved = sfy_shm_guard_get(SFY_SHM_FAKEDNS);
	assert_true(moved >= SFY_SHM_FD_MIN && moved != fd);
	assert_int_equal(fcntl(moved, F_GETFD) & FD_CLOEXEC, 0);    /* inherited by exec */
	int keep[SFY_SHM_NGUARD];
	assert_int_equal(sfy_shm_guarded_in(0, ~0u, keep, SFY_SHM_NGUARD), 1);
	assert_int_equal(keep[0], moved);
	assert_int_equal(sfy_shm_guarded_in(0, (unsigned)moved - 1, keep, SFY_SHM_NGUARD), 0);
	close(fd);
	/* An exec'd child: the variable's number is gone, its process too. */
	sfy_fakedns_detach(false);
	snprintf(v, sizeof(v), "%d:%d:%s", fd, 999999999, strrchr(getenv(SFY_FAKEDNS_ENV), ':') + 1);
	setenv(SFY_FAKEDNS_ENV, v, 1);
	assert_int_equal(sfy_fakedns_ipv4("moved.example", &b), 0);
	assert_int_equal(a, b);
	close(moved);
}

/* The table's number closed where no hook saw it and reused by the
 * program: its file is neither copied (kept open) nor skipped by a range
 * close; the stale record goes. */
static void test_stale_guard(void **state)
{
	(void)state;
	uint32_t a;
	int p[2];
	assert_int_equal(sfy_fakedns_ipv4("stale.example", &a), 0);
	int fd = sfy_shm_guard_get(SFY_SHM_FAKEDNS);
	assert_true(fd >= 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(dup2(p[0], fd), fd);   /* libc's, not a hook: out of sight */
	int probe = fcntl(0, F_DUPFD, SFY_SHM_FD_MIN);
	close(probe);
	int keep[SFY_SHM_NGUARD];
	assert_int_equal(sfy_shm_guarded_in(0, ~0u, keep, SFY_SHM_NGUARD), 0);
	sfy_shm_evict(fd);
	assert_int_equal(sfy_shm_guard_get(SFY_SHM_FAKEDNS), -1);
	int after = fcntl(0, F_DUPFD, SFY_SHM_FD_MIN);
	assert_int_equal(after, probe);         /* no copy of the pipe was made */
	close(after);
	close(fd);
	close(p[0]);
	close(p[1]);
	sfy_fakedns_detach(false);
}

/* The variable names a table nobody can reach: an ancestor hands out
 * addresses from it, so new ones here would mean other names there. */
static void test_unreachable_fails_closed(void **state)
{
	(void)state;
	uint32_t a;
	char name[SFY_NAME_MAX + 1];
	sfy_fakedns_detach(true);
	setenv(SFY_FAKEDNS_ENV, "4000:999999999:5eed5eed5eed5eed", 1);
	assert_int_equal(sfy_fakedns_ipv4("lost.example", &a), -EAGAIN);
	assert_int_equal(sfy_fakedns_ipv4("lost.example", &a), -EAGAIN);
	assert_int_equal(sfy_fakedns_name(htonl(0xe0000001u), name), -ENOENT);
	assert_string_equal(getenv(SFY_FAKEDNS_ENV), "4000:999999999:5eed5eed5eed5eed");
	sfy_fakedns_detach(true);
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

/* ---- a hostile process of the tree ----------------------------------- */

/* The table's layout as fakedns.c writes it: what a hostile process of the
 * tree, which can map the memfd, can rewrite. */
struct raw_hdr {
	char magic[8];
	uint32_t first, net, prefix, capacity, nslots, pad;
	uint64_t heap_size, total, id, next, heap_used;
};

struct raw_ent {
	uint32_t off1, hash, len;
};

struct raw {
	char *base;
	size_t total;
	struct raw_hdr *h;
	uint32_t *slots;
	struct raw_ent *ents;
	char *heap;
	uint32_t capacity, nslots;
	uint64_t heap_size;
};

/* Maps the table the variable names, as another process would. */
static int raw_map(struct raw *r)
{
	struct stat st;
	int fd = atoi(getenv(SFY_FAKEDNS_ENV));
	if (fstat(fd, &st) < 0)
		return -1;
	r->total = (size_t)st.st_size;
	r->base = mmap(NULL, r->total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r->base == MAP_FAILED)
		return -1;
	r->h = (struct raw_hdr *)r->base;
	r->capacity = r->h->capacity;
	r->nslots = r->h->nslots;
	r->heap_size = r->h->heap_size;
	r->slots = (uint32_t *)(r->base + 4096);
	size_t eo = (4096 + (size_t)r->nslots * 4 + 7) / 8 * 8;
	r->ents = (struct raw_ent *)(r->base + eo);
	r->heap = r->base + eo + (size_t)r->capacity * sizeof(struct raw_ent);
	return fd;
}

static uint32_t raw_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Entry idx now says name, hash, slot chain and all: an edit that passes
 * every check but the private record. */
static void raw_rename(struct raw *r, uint32_t idx, const char *name, bool good_hash)
{
	size_t n = strlen(name);
	uint64_t off = r->h->heap_used;
	memcpy(r->heap + off, name, n + 1);
	r->h->heap_used = off + n + 1;
	r->ents[idx].hash = good_hash ? raw_hash(name) : raw_hash(name) ^ 1;
	r->ents[idx].len = (uint32_t)n;
	r->ents[idx].off1 = (uint32_t)off + 1;
	for (uint32_t s = raw_hash(name) & (r->nslots - 1);; s = (s + 1) & (r->nslots - 1))
		if (r->slots[s] == 0 || r->slots[s] == idx + 1) {
			r->slots[s] = idx + 1;
			break;
		}
}

/* Runs fn in a forked child; its exit status. */
static int in_child(int (*fn)(void))
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(fn());
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static uint32_t victim;         /* the parent's address for victim.example */

static void parent_resolves(void)
{
	uint32_t a;
	fresh("10.99.0.0", 24);
	assert_int_equal(sfy_fakedns_ipv4("first.example", &a), 0);
	assert_int_equal(sfy_fakedns_ipv4("victim.example", &victim), 0);
	assert_int_equal(sfy_fakedns_ipv4("third.example", &a), 0);
}

/* What the parent must still say about its own address. */
static void parent_unmoved(void)
{
	char name[SFY_NAME_MAX + 1];
	uint32_t a;
	struct sfy_addr out;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(80) };
	sin.sin_addr.s_addr = victim;
	assert_int_equal(sfy_fakedns_name(victim, name), 0);
	assert_string_equal(name, "victim.example");
	assert_true(sfy_fakedns_reverse((struct sockaddr *)&sin, sizeof(sin), &out));
	assert_string_equal(out.name, "victim.example");
	assert_int_equal(sfy_fakedns_ipv4("victim.example", &a), 0);
	assert_int_equal(a, victim);
}

static int reattach_finds_nothing(void)
{
	char name[SFY_NAME_MAX + 1];
	uint32_t a;
	sfy_fakedns_detach(false);
	if (sfy_fakedns_name(victim, name) != -ENOENT)
		return 1;
	/* Garbage sizes in the header: no table to attach, so it fails
	 * closed rather than start another. */
	int rc = sfy_fakedns_find("victim.example", &a);
	if (rc != -ENOENT && rc != -EAGAIN)
		return 2;
	return 0;
}

static int child_sees_victim(void)
{
	char name[SFY_NAME_MAX + 1];
	uint32_t a;
	return sfy_fakedns_name(victim, name) == 0 && !strcmp(name, "victim.example") &&
	       sfy_fakedns_ipv4("victim.example", &a) == 0 && a == victim ? 0 : 1;
}

/* Seals: no size change (SIGBUS in every process that maps it), no new
 * seals (a write seal would lock the others out). */
static int hostile_truncate(void)
{
	struct raw r;
	int fd = raw_map(&r), bad = 0;
	if (fd < 0)
		return 10;
	if (ftruncate(fd, 4096) == 0 || errno != EPERM)
		bad |= 1;
	if (ftruncate(fd, (off_t)r.total * 2) == 0 || errno != EPERM)
		bad |= 2;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) == 0 || errno != EPERM)
		bad |= 4;
	return bad;
}

static void test_hostile_truncate(void **state)
{
	(void)state;
	uint32_t a, b;
	parent_resolves();
	assert_int_equal(in_child(hostile_truncate), 0);
	parent_unmoved();
	assert_int_equal(sfy_fakedns_ipv4("after.example", &a), 0);
	assert_int_equal(sfy_fakedns_ipv4("after.example", &b), 0);
	assert_int_equal(a, b);
	fresh("224.0.0.0", 8);
}

/* Header sizes, counters, slots and entries rewritten to garbage. */
static int hostile_garbage(void)
{
	struct raw r;
	if (raw_map(&r) < 0)
		return 10;
	uint32_t nslots = r.nslots, capacity = r.capacity;
	r.h->capacity = 0xffffffffu;
	r.h->nslots = 3;
	r.h->first = 0;
	r.h->prefix = 77;
	r.h->heap_size = ~0ull;
	r.h->total = 1;
	r.h->next = 0;                          /* rewound: indexes handed out again */
	r.h->heap_used = ~0ull - 3;
	for (uint32_t i = 0; i < nslots; i++)
		r.slots[i] = i & 1 ? 0x7fffffffu : 0xffffffffu;
	for (uint32_t i = 0; i < capacity; i++) {
		r.ents[i].off1 = 0xfffffff0u - i;
		r.ents[i].len = i & 1 ? 0xffffffffu : 3;
	}
	return 0;
}

static void test_hostile_garbage(void **state)
{
	(void)state;
	char name[SFY_NAME_MAX + 1];
	uint32_t a;
	parent_resolves();
	assert_int_equal(in_child(hostile_garbage), 0);
	parent_unmoved();
	/* New names: an error, or an address of their own. */
	int rc = sfy_fakedns_ipv4("new.example", &a);
	assert_true(rc == 0 || rc == -ENOSPC);
	if (rc == 0) {
		assert_int_not_equal(a, victim);
		assert_int_equal(sfy_fakedns_name(a, name), 0);
		assert_string_equal(name, "new.example");
	}
	assert_int_equal(sfy_fakedns_name(htonl(ntohl(victim) + 7), name), -ENOENT);
	/* A process that did not hand them out (as after exec) trusts none of it. */
	assert_int_equal(in_child(reattach_finds_nothing), 0);
	fresh("224.0.0.0", 8);
}

static int hostile_rename(void)
{
	struct raw r;
	if (raw_map(&r) < 0)
		return 10;
	raw_rename(&r, ntohl(victim) - r.h->first, "evil.example", true);
	return 0;
}

/* Another process renames the parent's entry, so well that it passes every
 * check: the parent believes its own record. */
static void test_hostile_rename(void **state)
{
	(void)state;
	parent_resolves();
	assert_int_equal(in_child(hostile_rename), 0);
	parent_unmoved();
	/* A fork()ed child inherits the record. */
	assert_int_equal(in_child(child_sees_victim), 0);
	fresh("224.0.0.0", 8);
}

/* Renames that fail a check (hash, case, spaces, offset, index) are not
 * believed by a process that learns the address from elsewhere. */
static int hostile_bad_renames(void)
{
	struct raw r;
	if (raw_map(&r) < 0)
		return 10;
	uint32_t v = ntohl(victim) - r.h->first;
	raw_rename(&r, v, "evil.example", false);       /* wrong hash */
	raw_rename(&r, v - 1, "Evil.example", true);    /* not normalized */
	raw_rename(&r, v + 1, "evil example", true);    /* a space */
	r.ents[v + 2].off1 = (uint32_t)r.heap_size;     /* past the heap */
	r.ents[v + 2].len = 200;
	r.slots[raw_hash("x.example") & (r.nslots - 1)] = r.capacity + 1;  /* index out of range */
	return 0;
}

static int reattach_sees_none(void)
{
	char name[SFY_NAME_MAX + 1];
	uint32_t a;
	sfy_fakedns_detach(false);
	for (int i = -1; i <= 2; i++)
		if (sfy_fakedns_name(htonl(ntohl(victim) + (uint32_t)i), name) != -ENOENT)
			return 1 + i + 1;
	if (sfy_fakedns_find("x.example", &a) != -ENOENT)
		return 5;
	return 0;
}

static void test_hostile_bad_renames(void **state)
{
	(void)state;
	parent_resolves();
	assert_int_equal(in_child(hostile_bad_renames), 0);
	parent_unmoved();
	assert_int_equal(in_child(reattach_sees_none), 0);
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
		cmocka_unit_test_setup(test_found_after_move, setup_default),
		cmocka_unit_test_setup(test_stale_guard, setup_default),
		cmocka_unit_test_setup(test_unreachable_fails_closed, setup_default),
		cmocka_unit_test_setup(test_attach_invalid_fd, setup_default),
		cmocka_unit_test_setup(test_exhaustion, setup_default),
		cmocka_unit_test(test_hostile_truncate),
		cmocka_unit_test(test_hostile_garbage),
		cmocka_unit_test(test_hostile_rename),
		cmocka_unit_test(test_hostile_bad_renames),
		cmocka_unit_test(test_classify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
