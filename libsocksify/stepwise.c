/* Proxies that drop bytes sent before their method reply (microsocks), found
 * by the pipelining probe, are remembered so no later connection pays the
 * probe again:
 *  - for the process tree, as one bit per proxy index in SOCKSIFY_STEPWISE
 *    (the config, and so the indexes, are the same for the whole tree; the
 *    launcher pre-creates the variable so setenv() replaces a value in place
 *    instead of growing environ under other threads);
 *  - across runs, as "host port" lines in $XDG_CACHE_HOME/socksify/stepwise
 *    (~/.cache/socksify/stepwise), read once per process. A stale line only
 *    costs one round trip per connection to that proxy. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "real.h"
#include "stepwise.h"

/* The cache is a hint: a few hundred proxies at most are worth reading. */
#define CACHE_MAX 16384

static _Atomic unsigned long mask;
static pthread_once_t mask_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t env_lock = PTHREAD_MUTEX_INITIALIZER;
/* Passes cfg into the pthread_once routine, which runs in the calling thread. */
static _Thread_local const struct sfy_config *mask_cfg;

_Static_assert(SFY_MAX_PROXIES <= 32, "stepwise mask holds 32 proxies");

/* dir = the cache directory; returns false when there is no home for it. */
static bool cache_dir(char dir[static PATH_MAX])
{
	const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
	int n;
	if (x && *x == '/')
		n = snprintf(dir, PATH_MAX, "%s/socksify", x);
	else if (h && *h == '/')
		n = snprintf(dir, PATH_MAX, "%s/.cache/socksify", h);
	else
		return false;
	return n > 0 && n < PATH_MAX - 16;
}

static void line_of(const struct sfy_proxy *p, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s %u\n", p->host, (unsigned)p->port);
}

static void cache_load(const struct sfy_config *cfg)
{
	char dir[PATH_MAX], path[PATH_MAX + 16], line[SFY_HOST_MAX + 16];
	static char buf[CACHE_MAX + 1];
	if (!cache_dir(dir))
		return;
	snprintf(path, sizeof(path), "%s/stepwise", dir);
	/* Raw syscalls: the program's read()/close() hooks must not see these. */
	int fd = (int)sfy_real()->syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = sfy_real()->syscall(SYS_read, fd, buf, CACHE_MAX);
	sfy_real()->syscall(SYS_close, fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	for (size_t i = 0; i < cfg->nproxies; i++) {
		line_of(&cfg->proxies[i], line, sizeof(line));
		size_t l = strlen(line);
		for (const char *s = buf; (s = strstr(s, line)); s += l)
			if (s == buf || s[-1] == '\n') {
				atomic_fetch_or(&mask, 1UL << i);
				break;
			}
	}
}

static void cache_add(const struct sfy_proxy *p)
{
	char dir[PATH_MAX], path[PATH_MAX + 16], line[SFY_HOST_MAX + 16];
	if (!cache_dir(dir))
		return;
	/* ~/.cache may not exist yet; only the last level is ours to make. */
	char *slash = strrchr(dir, '/');
	*slash = 0;
	(void)sfy_real()->syscall(SYS_mkdirat, AT_FDCWD, dir, 0700);
	*slash = '/';
	(void)sfy_real()->syscall(SYS_mkdirat, AT_FDCWD, dir, 0700);
	snprintf(path, sizeof(path), "%s/stepwise", dir);
	int fd = (int)sfy_real()->syscall(SYS_openat, AT_FDCWD, path,
			      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	line_of(p, line, sizeof(line));
	(void)sfy_real()->syscall(SYS_write, fd, line, strlen(line));
	sfy_real()->syscall(SYS_close, fd);
}

static void mask_load(void)
{
	const char *s = getenv("SOCKSIFY_STEPWISE");
	if (s && *s)
		atomic_fetch_or(&mask, strtoul(s, NULL, 16));
	cache_load(mask_cfg);
}

static void load(const struct sfy_config *cfg)
{
	mask_cfg = cfg;
	pthread_once(&mask_once, mask_load);
}

enum sfy_pipe_known sfy_stepwise_get(const struct sfy_config *cfg, const struct sfy_proxy *p)
{
	load(cfg);
	size_t i = (size_t)(p - cfg->proxies);
	return (atomic_load(&mask) >> i) & 1 ? SFY_PIPE_STEPWISE : SFY_PIPE_UNKNOWN;
}

void sfy_stepwise_set(const struct sfy_config *cfg, const struct sfy_proxy *p,
		      enum sfy_pipe_known v)
{
	if (v != SFY_PIPE_STEPWISE)
		return;
	load(cfg);
	size_t i = (size_t)(p - cfg->proxies);
	unsigned long old = atomic_fetch_or(&mask, 1UL << i);
	if (old & (1UL << i))
		return;
	char hex[20];
	snprintf(hex, sizeof(hex), "%lx", old | (1UL << i));
	pthread_mutex_lock(&env_lock);
	setenv("SOCKSIFY_STEPWISE", hex, 1);
	pthread_mutex_unlock(&env_lock);
	cache_add(&cfg->proxies[i]);
}
