/* A sealed memfd shared by the process tree: creating, finding and keeping
 * it (shmfd.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fdreg.h"
#include "log.h"
#include "real.h"
#include "shmfd.h"

#define SHM_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static _Atomic int guards[SFY_SHM_NGUARD] = { -1, -1, -1 };
static atomic_bool primed;

static const struct {
	const char *env, *name;
} kinds[SFY_SHM_NGUARD] = {
	[SFY_SHM_FAKEDNS] = { SFY_SHM_FAKEDNS_ENV, SFY_SHM_FAKEDNS_NAME },
	[SFY_SHM_PXSTATE] = { SFY_SHM_PXSTATE_ENV, SFY_SHM_PXSTATE_NAME },
	[SFY_SHM_DNSMEM] = { SFY_SHM_DNSMEM_ENV, SFY_SHM_DNSMEM_NAME },
};

bool sfy_shm_parse(const char *v, struct sfy_shm_ref *r)
{
	long fd, pid;
	unsigned long long id;
	char end;
	if (!v || sscanf(v, "%ld:%ld:%llx%c", &fd, &pid, &id, &end) != 3 || fd < 0 ||
	    fd > 1 << 24 || pid < 0 || !id)
		return false;
	r->fd = (int)fd;
	r->pid = pid;
	r->id = id;
	return true;
}

void sfy_shm_format(int fd, uint64_t id, char *buf, size_t n)
{
	snprintf(buf, n, "%d:%ld:%016llx", fd, (long)getpid(), (unsigned long long)id);
}

uint64_t sfy_shm_new_id(void)
{
	uint64_t id;
	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != (ssize_t)sizeof(id))
		id = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
	return id | 1;  /* 0 means "no id" */
}

/* fd at SFY_SHM_FD_MIN or above, without close-on-exec; the old number is
 * closed. Where that is impossible (a low RLIMIT_NOFILE), fd itself. */
static int fd_high(int fd)
{
	int hi = sfy_real()->fcntl(fd, F_DUPFD, SFY_SHM_FD_MIN);
	if (hi < 0) {
		int fl = sfy_real()->fcntl(fd, F_GETFD);
		if (fl >= 0)
			sfy_real()->fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
		return fd;
	}
	sfy_real()->close(fd);
	return hi;
}

int sfy_shm_memfd(const char *name)
{
	int fd = memfd_create(name, MFD_ALLOW_SEALING | MFD_CLOEXEC);
	return fd < 0 ? -errno : fd_high(fd);
}

int sfy_shm_create(const char *name, uint64_t size)
{
	int fd = sfy_shm_memfd(name);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, (off_t)size) < 0 || sfy_real()->fcntl(fd, F_ADD_SEALS, SHM_SEALS) < 0) {
		int e = errno;
		sfy_real()->close(fd);
		return -e;
	}
	return fd;
}

int64_t sfy_shm_sealed_size(int fd)
{
	struct stat st;
	int seals = sfy_real()->fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & SHM_SEALS) != SHM_SEALS || fstat(fd, &st) < 0 ||
	    !S_ISREG(st.st_mode))
		return -1;
	return st.st_size;
}

static void head_init(struct sfy_shm_head *h, const char magic[static 8])
{
	memcpy(h->magic, magic, 8);
	h->id = sfy_shm_new_id();
}

bool sfy_shm_head_is(int fd, uint64_t size, const char magic[static 8], uint64_t id)
{
	struct sfy_shm_head h;
	return sfy_shm_sealed_size(fd) == (int64_t)size &&
	       pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) && !memcmp(h.magic, magic, 8) &&
	       h.id == id;
}

int sfy_shm_head_create(const char *name, uint64_t size, const char magic[static 8])
{
	struct sfy_shm_head h;
	int fd = sfy_shm_create(name, size);
	if (fd < 0)
		return fd;
	/* The rest of a new memfd reads as zeros. */
	head_init(&h, magic);
	if (pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		sfy_real()->close(fd);
		return -EIO;
	}
	return fd;
}

void *sfy_shm_head_private(uint64_t size, const char magic[static 8], int flags)
{
	void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | flags,
			  -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	head_init(base, magic);
	return base;
}

static bool is_table(int fd, uint64_t id, sfy_shm_is_fn *is)
{
	return fd >= 0 && sfy_shm_sealed_size(fd) >= 0 && is(fd, id);
}

/* Another process's descriptor, opened here; -1 unless it is the table. */
static int reopen(long pid, long n, uint64_t id, sfy_shm_is_fn *is)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/fd/%ld", pid, n);
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	if (!is_table(fd, id, is)) {
		sfy_real()->close(fd);
		return -1;
	}
	return fd_high(fd);
}

/* The descriptors of pid (0: this process) that are memfds named name:
 * the first that is the table (opened here for another process). */
static int scan(long pid, const char *name, uint64_t id, sfy_shm_is_fn *is)
{
	char dir[48], want[80], path[80], target[96];
	int found = -1;
	if (pid)
		snprintf(dir, sizeof(dir), "/proc/%ld/fd", pid);
	else
		snprintf(dir, sizeof(dir), "/proc/self/fd");
	snprintf(want, sizeof(want), "/memfd:%s (deleted)", name);
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *e;
	while (found < 0 && (e = readdir(d))) {
		char *end;
		long n = strtol(e->d_name, &end, 10);
		if (e->d_name[0] < '0' || e->d_name[0] > '9' || *end || n > 1 << 24)
			continue;
		snprintf(path, sizeof(path), "%s/%ld", dir, n);
		ssize_t len = readlink(path, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = '\0';
		if (strcmp(target, want))
			continue;
		if (!pid)
			found = is_table((int)n, id, is) ? (int)n : -1;
		else
			found = reopen(pid, n, id, is);
	}
	closedir(d);
	return found;
}

int sfy_shm_find(const struct sfy_shm_ref *r, const char *name, sfy_shm_is_fn *is, bool *own)
{
	int fd;
	*own = false;
	if (is_table(r->fd, r->id, is))
		return r->fd;
	/* Moved away from the number the variable gives: still inherited. */
	if ((fd = scan(0, name, r->id, is)) >= 0)
		return fd;
	/* Closed here where no hook saw it: the named process, else our parent
	 * (which held it when it started us), while they run and let us in. */
	long self = (long)getpid(), pids[2] = { r->pid, (long)getppid() };
	for (int i = 0; i < 2; i++) {
		if (pids[i] <= 1 || pids[i] == self || (i == 1 && pids[1] == pids[0]))
			continue;
		if ((fd = reopen(pids[i], r->fd, r->id, is)) >= 0 ||
		    (fd = scan(pids[i], name, r->id, is)) >= 0) {
			*own = true;
			return fd;
		}
	}
	return -1;
}

int sfy_shm_attach(int which, sfy_shm_is_fn *is, bool *own, bool *named)
{
	struct sfy_shm_ref r;
	*own = *named = false;
	if (which < 0 || which >= SFY_SHM_NGUARD || !sfy_shm_parse(getenv(kinds[which].env), &r))
		return -1;
	*named = true;
	return sfy_shm_find(&r, kinds[which].name, is, own);
}

bool sfy_shm_export(int which, uint64_t id)
{
	char buf[80];
	int fd = sfy_shm_guard_get(which);
	if (fd < 0)
		return false;
	sfy_shm_format(fd, id, buf, sizeof(buf));
	return setenv(kinds[which].env, buf, 1) == 0;
}

/* Is fd of this process a sealed memfd called name? */
static bool is_named(int fd, const char *name)
{
	char path[48], want[80], target[96];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	snprintf(want, sizeof(want), "/memfd:%s (deleted)", name);
	ssize_t len = readlink(path, target, sizeof(target) - 1);
	if (len < 0)
		return false;
	target[len] = '\0';
	return !strcmp(target, want) && sfy_shm_sealed_size(fd) >= 0;
}

/* Once per process (fork() children inherit the result): the tables the
 * environment names, at their numbers, before this process has looked at
 * them. Not in a vfork() child, whose stores would land in the parent. */
static void prime(void)
{
	struct sfy_shm_ref r;
	if (atomic_load_explicit(&primed, memory_order_acquire) || !sfy_fdreg_owner() ||
	    atomic_exchange(&primed, true))
		return;
	int saved = errno;
	for (int i = 0; i < SFY_SHM_NGUARD; i++) {
		int none = -1;
		if (sfy_shm_parse(getenv(kinds[i].env), &r) && is_named(r.fd, kinds[i].name))
			atomic_compare_exchange_strong(&guards[i], &none, r.fd);
	}
	errno = saved;
}

void sfy_shm_guard_set(int which, int fd)
{
	if (which >= 0 && which < SFY_SHM_NGUARD)
		atomic_store(&guards[which], fd);
}

int sfy_shm_guard_get(int which)
{
	return which >= 0 && which < SFY_SHM_NGUARD ? atomic_load(&guards[which]) : -1;
}

/* Is guard i's fd still the table? Closed behind our back (syscall(SYS_close),
 * io_uring) and its number reused by the program, it is the program's
 * file: a copy would keep it open, skipping it would never close it. The
 * stale record is dropped. */
static bool still_table(int i, int fd)
{
	if (is_named(fd, kinds[i].name))
		return true;
	if (sfy_fdreg_owner())
		atomic_compare_exchange_strong(&guards[i], &fd, -1);
	return false;
}

void sfy_shm_evict(int fd)
{
	prime();
	for (int i = 0; i < SFY_SHM_NGUARD; i++) {
		int at = atomic_load_explicit(&guards[i], memory_order_relaxed);
		if (fd < 0 || at != fd)
			continue;
		int saved = errno;
		if (still_table(i, fd)) {
			int hi = sfy_real()->fcntl(fd, F_DUPFD, SFY_SHM_FD_MIN);
			if (hi < 0)
				sfy_warn("cannot keep the tree's shared table from close(%d) (%s): "
					 "processes started from here will not find it", fd,
					 strerror(errno));
			/* A vfork() child shares our memory but not our
			 * descriptors: the copy is its own (its exec'd program
			 * finds it by id), the record stays the parent's. */
			else if (sfy_fdreg_owner())
				atomic_compare_exchange_strong(&guards[i], &at, hi);
		}
		errno = saved;
	}
}

int sfy_shm_guarded_in(unsigned first, unsigned last, int out[], int max)
{
	int n = 0, saved = errno;
	prime();
	for (int i = 0; i < SFY_SHM_NGUARD && n < max; i++) {
		int fd = atomic_load_explicit(&guards[i], memory_order_relaxed);
		if (fd < 0 || (unsigned)fd < first || (unsigned)fd > last || !still_table(i, fd))
			continue;
		int j = n++;
		for (; j > 0 && out[j - 1] > fd; j--)
			out[j] = out[j - 1];
		out[j] = fd;
	}
	errno = saved;
	return n;
}
