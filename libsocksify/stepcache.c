/* The file cache of proxy verdicts (format in stepcache.h). Called from
 * hooks: no stdio, no setenv, the program's hooked read/write/close are
 * bypassed through sfy_real(), and no lock is held (two processes appending
 * at once each write one whole line with one O_APPEND write). */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "real.h"
#include "stepcache.h"

#define FILE_NAME "stepwise"
/* A rewrite keeps one line per key; more distinct live proxies than this
 * in one cache is not a real setup, and the oldest are dropped. */
#define COMPACT_KEYS 256
/* "socks5h " + host + " 65535 stepwise " + 19 digits + "\n" */
#define LINE_MAX_LEN (8 + SFY_HOST_MAX + 16 + 20 + 1)

/* dir = .../socksify, parent = the cache directory it lives in
 * ($XDG_CACHE_HOME or ~/.cache), above = the directory above that (where
 * the cache directory may be created). False without an absolute
 * XDG_CACHE_HOME or HOME. */
/* The two variables, copied once: learning happens on the library's own
 * threads too (the background driver, the race's second side), where
 * getenv() would race a program's setenv() -- glibc's getenv is not safe
 * against it. Read at load (the constructor runs before the program's
 * threads) and by the first call if that came earlier. */
static char env_xdg[PATH_MAX], env_home[PATH_MAX];
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void env_read(void)
{
	const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
	snprintf(env_xdg, sizeof(env_xdg), "%s", x ? x : "");
	snprintf(env_home, sizeof(env_home), "%s", h ? h : "");
}

void sfy_stepcache_reread_env(void)
{
	pthread_once(&env_once, env_read);
	env_read();
}

__attribute__((constructor)) static void stepcache_init(void)
{
	pthread_once(&env_once, env_read);
}

static bool cache_paths(char dir[static PATH_MAX], char parent[static PATH_MAX],
			char above[static PATH_MAX])
{
	pthread_once(&env_once, env_read);
	const char *x = env_xdg, *h = env_home;
	int n;
	if (x && *x == '/')
		n = snprintf(parent, PATH_MAX, "%s", x);
	else if (h && *h == '/')
		n = snprintf(parent, PATH_MAX, "%s/.cache", h);
	else
		return false;
	if (n <= 0 || n >= PATH_MAX - 16)
		return false;
	memcpy(dir, parent, (size_t)n);
	memcpy(dir + n, "/socksify", sizeof("/socksify"));
	memcpy(above, parent, (size_t)n + 1);
	while (n > 1 && above[n - 1] == '/')
		above[--n] = 0;
	char *slash = strrchr(above, '/');
	slash[slash == above] = 0;      /* "/x" -> "/" */
	return true;
}

/* Ours: owned by the effective user and writable by nobody else. */
static bool st_ours(const struct stat *st)
{
	return st->st_uid == geteuid() && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

static bool path_ours(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode) && st_ours(&st);
}

/* The cache directory, checked; with create, made first when the directory
 * it goes in is ours (root under sudo with the user's HOME must not leave
 * root-owned directories in the user's home). Returns an fd or -errno. */
static int dir_open(bool create)
{
	char dir[PATH_MAX], parent[PATH_MAX], above[PATH_MAX];
	struct stat st;
	if (!cache_paths(dir, parent, above))
		return -ENOENT;
	if (create) {
		if (path_ours(above))
			(void)mkdir(parent, 0700);
		if (path_ours(parent))
			(void)mkdir(dir, 0700);
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode) || !st_ours(&st)) {
		sfy_real()->close(fd);
		return -EPERM;
	}
	return fd;
}

/* The cache file in dfd, checked (O_NONBLOCK: a FIFO planted there must
 * not block the program's connect). Returns an fd or -errno. */
static int file_open(int dfd, int flags, struct stat *st)
{
	int fd = openat(dfd, FILE_NAME, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || !st_ours(st)) {
		sfy_real()->close(fd);
		return -EPERM;
	}
	return fd;
}

/* Digits only, at most max_digits, value <= max. */
static bool parse_uint(const char *s, size_t n, size_t max_digits, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > max_digits)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* One line (without its newline) into a key and state; false for any other
 * shape. */
static bool parse_line(const char *s, size_t len, struct sfy_pxkey *k, struct sfy_pxstate *st)
{
	const char *f[5];
	size_t fl[5], nf = 0, start = 0;
	char name[16];
	uint64_t port, when;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != ' ')
			continue;
		if (nf == 5 || i == start)
			return false;   /* too many fields, or an empty one */
		f[nf] = s + start;
		fl[nf++] = i - start;
		start = i + 1;
	}
	if (nf != 5 || fl[0] >= sizeof(name) || fl[1] > SFY_HOST_MAX)
		return false;
	memcpy(name, f[0], fl[0]);
	name[fl[0]] = 0;
	struct sfy_proxy p = { .proto = sfy_proto_from_name(name) };
	if (!p.proto || !parse_uint(f[2], fl[2], 5, 65535, &port) || port == 0 ||
	    !parse_uint(f[4], fl[4], 19, (uint64_t)INT64_MAX >> 2, &when))
		return false;
	if (fl[3] == 2 && !memcmp(f[3], "ok", 2))
		st->v = 1;
	else if (fl[3] == 8 && !memcmp(f[3], "stepwise", 8))
		st->v = 2;
	else
		return false;
	memcpy(p.host, f[1], fl[1]);
	p.host[fl[1]] = 0;
	p.port = (uint16_t)port;
	st->when = (int64_t)when;
	return sfy_pxkey_of(&p, k);
}

static bool fresh(const struct sfy_pxstate *s, int64_t now, int64_t max_age)
{
	return s->when > now - max_age && s->when <= now + SFY_PX_FUTURE_SLACK;
}

/* Reads the file's last SFY_STEPCACHE_READ_MAX bytes into buf (NUL-ended),
 * starting at a line boundary. Returns the length or -errno. */
static ssize_t read_tail(int fd, const struct stat *st, char *buf)
{
	off_t off = st->st_size > SFY_STEPCACHE_READ_MAX ? st->st_size - SFY_STEPCACHE_READ_MAX : 0;
	size_t n = 0;
	while (n < SFY_STEPCACHE_READ_MAX) {
		ssize_t r = pread(fd, buf + n, SFY_STEPCACHE_READ_MAX - n, off + (off_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	if (off > 0) {
		char *nl = memchr(buf, '\n', n);
		size_t skip = nl ? (size_t)(nl - buf) + 1 : n;
		memmove(buf, buf + skip, n - skip + 1);
		n -= skip;
	}
	return (ssize_t)n;
}

/* Calls fn for every valid, fresh line of buf, in file order. */
static void each_line(const char *buf, size_t n, int64_t now, int64_t max_age,
		      void (*fn)(const struct sfy_pxkey *, const struct sfy_pxstate *, void *),
		      void *arg)
{
	struct sfy_pxkey k;
	struct sfy_pxstate s;
	for (size_t i = 0; i < n;) {
		const char *nl = memchr(buf + i, '\n', n - i);
		size_t len = nl ? (size_t)(nl - (buf + i)) : n - i;
		/* A last line without its newline may be half written: skip it. */
		if (nl && parse_line(buf + i, len, &k, &s) && fresh(&s, now, max_age))
			fn(&k, &s, arg);
		i += len + 1;
	}
}

struct want {
	const struct sfy_pxkey *keys;
	size_t n;
	struct sfy_pxstate *out;
};

static void take_wanted(const struct sfy_pxkey *k, const struct sfy_pxstate *s, void *arg)
{
	struct want *w = arg;
	for (size_t i = 0; i < w->n; i++)
		if (sfy_pxkey_eq(k, &w->keys[i]) && (!w->out[i].v || s->when >= w->out[i].when))
			w->out[i] = *s;
}

int sfy_stepcache_read(const struct sfy_pxkey *keys, size_t n, struct sfy_pxstate *out,
		       int64_t now, int64_t max_age)
{
	struct stat st;
	struct want w = { keys, n, out };
	memset(out, 0, n * sizeof(*out));
	int dfd = dir_open(false);
	if (dfd < 0)
		return dfd;
	int fd = file_open(dfd, O_RDONLY, &st);
	sfy_real()->close(dfd);
	if (fd < 0)
		return fd;
	char *buf = malloc(SFY_STEPCACHE_READ_MAX + 1);
	ssize_t len = buf ? read_tail(fd, &st, buf) : -ENOMEM;
	sfy_real()->close(fd);
	if (len > 0)
		each_line(buf, (size_t)len, now, max_age, take_wanted, &w);
	free(buf);
	return len < 0 ? (int)len : 0;
}

static int format_line(char *buf, size_t cap, const struct sfy_pxkey *k, int v, int64_t when)
{
	int n = snprintf(buf, cap, "%s %.*s %u %s %lld\n", sfy_proto_name(k->proto),
			 (int)k->hostlen, k->host, (unsigned)k->port, v == 2 ? "stepwise" : "ok",
			 (long long)when);
	return n > 0 && (size_t)n < cap ? n : -ENOSPC;
}

static int write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = sfy_real()->write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

struct live {
	struct {
		struct sfy_pxkey k;
		struct sfy_pxstate s;
	} e[COMPACT_KEYS];
	size_t n;
};

static void keep_newest(const struct sfy_pxkey *k, const struct sfy_pxstate *s, void *arg)
{
	struct live *l = arg;
	size_t i, oldest = 0;
	for (i = 0; i < l->n; i++) {
		if (sfy_pxkey_eq(k, &l->e[i].k)) {
			if (s->when >= l->e[i].s.when)
				l->e[i].s = *s;
			return;
		}
		if (l->e[i].s.when < l->e[oldest].s.when)
			oldest = i;
	}
	if (l->n < COMPACT_KEYS)
		i = l->n++;
	else if (s->when > l->e[oldest].s.when)
		i = oldest;
	else
		return;
	l->e[i].k = *k;
	l->e[i].s = *s;
}

/* Rewrites the file (fd, open in dfd) with the newest live line per key,
 * through a temporary file renamed over it. Returns 0 or -errno. */
static int compact(int dfd, int fd, const struct stat *st, int64_t now, int64_t max_age)
{
	char tmp[64], line[LINE_MAX_LEN + 1];
	char *buf = malloc(SFY_STEPCACHE_READ_MAX + 1);
	struct live *l = calloc(1, sizeof(*l));
	int r = -ENOMEM, out = -1;
	ssize_t len;
	if (!buf || !l)
		goto done;
	if ((len = read_tail(fd, st, buf)) < 0) {
		r = (int)len;
		goto done;
	}
	each_line(buf, (size_t)len, now, max_age, keep_newest, l);
	snprintf(tmp, sizeof(tmp), "." FILE_NAME ".%ld.tmp", (long)getpid());
	(void)unlinkat(dfd, tmp, 0);
	out = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		r = -errno;
		goto done;
	}
	r = 0;
	for (size_t i = 0; i < l->n && r == 0; i++) {
		int n = format_line(line, sizeof(line), &l->e[i].k, l->e[i].s.v, l->e[i].s.when);
		r = n < 0 ? n : write_all(out, line, (size_t)n);
	}
	if (r == 0 && renameat(dfd, tmp, dfd, FILE_NAME) < 0)
		r = -errno;
	if (r < 0)
		(void)unlinkat(dfd, tmp, 0);
done:
	if (out >= 0)
		sfy_real()->close(out);
	free(buf);
	free(l);
	return r;
}

int sfy_stepcache_append(const struct sfy_pxkey *k, int v, int64_t when, int64_t now,
			 int64_t max_age)
{
	char line[LINE_MAX_LEN + 1];
	struct stat st;
	int n = format_line(line, sizeof(line), k, v, when);
	if (n < 0)
		return n;
	int dfd = dir_open(true);
	if (dfd < 0)
		return dfd;
	int fd = file_open(dfd, O_RDWR | O_APPEND | O_CREAT, &st);
	if (fd >= 0 && st.st_size > SFY_STEPCACHE_COMPACT &&
	    compact(dfd, fd, &st, now, max_age) == 0) {
		sfy_real()->close(fd);
		fd = file_open(dfd, O_RDWR | O_APPEND | O_CREAT, &st);
	}
	sfy_real()->close(dfd);
	if (fd < 0)
		return fd;
	int r = write_all(fd, line, (size_t)n);
	sfy_real()->close(fd);
	return r;
}
