/* The exec guard (execguard.h): what a child must get back, taken once at
 * load, and the decision on each exec target.
 *
 * "Our settings" are every SOCKSIFY_* variable of the environment we were
 * loaded with (chain, DNS mode, log level, the descriptors of the
 * launcher's sealed configuration and of the shared tables, ...) and our
 * library's entry in LD_PRELOAD. A child whose environment lacks one gets
 * it back; one the program set itself (a nested socksify, say) is kept. A
 * descriptor variable is only put back while its descriptor is still the
 * file we were given: after a closefrom() the number may name anything. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "execguard.h"
#include "log.h"
#include "preload_list.h"
#include "reach.h"
#include "real.h"
#include "sfy.h"
#include "state.h"

#define PRELOAD_EQ "LD_PRELOAD="
#define PRELOAD_EQ_LEN (sizeof PRELOAD_EQ - 1)
/* More SOCKSIFY_* variables than socksify has ever defined; any beyond are
 * not ours to restore. */
#define SNAP_MAX 64
/* A warn line: the program's name, its interpreter, the reason. */
#define WARN_MAX 1024

enum { NOT_FD = -1, DEAD_FD = -2 };

struct var {
	char *entry;            /* "SOCKSIFY_NAME=value" */
	size_t namelen;
	int fd;                 /* a *_FD variable's descriptor, NOT_FD, DEAD_FD */
	dev_t dev;
	ino_t ino;
};

static struct {
	atomic_bool ready;
	char *lib;              /* our path, as LD_PRELOAD named it */
	bool preload;           /* we were loaded through LD_PRELOAD */
	char *preload_entry;    /* "LD_PRELOAD=[sanitizer runtimes:]lib" */
	struct var vars[SNAP_MAX];
	size_t nvars;
	int cfg_var;            /* index of SOCKSIFY_CONFIG_FD, or -1 */
	int env_mode;           /* SOCKSIFY_UNPROXYABLE, or -1 */
	atomic_int owner;       /* our pid; a vfork() child has another */
} g = { .cfg_var = -1, .env_mode = -1 };

static void at_child(void)
{
	atomic_store(&g.owner, (int)getpid());
}

static void snapshot_var(const char *e)
{
	struct var *v = &g.vars[g.nvars];
	const char *eq = strchr(e, '=');
	unsigned long fd;
	struct stat st;

	if (!eq || g.nvars == SNAP_MAX || !(v->entry = strdup(e)))
		return;
	v->namelen = (size_t)(eq - e);
	v->fd = NOT_FD;
	if (v->namelen > 3 && !memcmp(eq - 3, "_FD", 3) &&
	    !sfy_decimal(eq + 1, strlen(eq + 1), INT32_MAX, &fd)) {
		v->fd = DEAD_FD;
		if (fstat((int)fd, &st) == 0) {
			v->fd = (int)fd;
			v->dev = st.st_dev;
			v->ino = st.st_ino;
		}
	}
	if (v->namelen == sizeof SFY_CONFIG_FD_ENV - 1 && !memcmp(e, SFY_CONFIG_FD_ENV, v->namelen))
		g.cfg_var = (int)g.nvars;
	if (!strncmp(e, "SOCKSIFY_UNPROXYABLE=", 21))
		g.env_mode = sfy_unproxyable_parse(e + 21);
	g.nvars++;
}

/* At load, before the program runs: the only place that allocates. */
__attribute__((constructor)) static void guard_init(void)
{
	Dl_info di;
	char abs[PATH_MAX];
	const char *ldp = getenv("LD_PRELOAD"), *lvl = getenv("SOCKSIFY_LOG");
	int l = lvl ? sfy_log_level_parse(lvl) : -1;

	if (l >= 0)
		sfy_log_setup((enum sfy_log_level)l, NULL);
	sfy_reach_init();
	if (dladdr((void *)guard_init, &di) && di.dli_fname && *di.dli_fname)
		g.lib = strdup(di.dli_fname[0] == '/' || !realpath(di.dli_fname, abs)
			       ? di.dli_fname : abs);
	/* Loaded another way (/etc/ld.so.preload, linked in): children get
	 * us the same way, only the settings need restoring. */
	if (g.lib && ldp && sfy_preload_has(ldp, g.lib)) {
		size_t cap = PRELOAD_EQ_LEN + strlen(ldp) + strlen(g.lib) + 2;
		g.preload_entry = malloc(cap);
		if (g.preload_entry) {
			memcpy(g.preload_entry, PRELOAD_EQ, PRELOAD_EQ_LEN);
			g.preload = sfy_preload_compose(ldp, g.lib, true, g.preload_entry + PRELOAD_EQ_LEN,
							cap - PRELOAD_EQ_LEN) == 0;
		}
	}
	for (char **e = environ; e && *e; e++)
		if (!strncmp(*e, "SOCKSIFY_", 9))
			snapshot_var(*e);
	atomic_store(&g.owner, (int)getpid());
	pthread_atfork(NULL, NULL, at_child);
	atomic_store_explicit(&g.ready, true, memory_order_release);
}

/* ------------------------------------------------------------ environment */

static bool named(const char *entry, const char *name, size_t n)
{
	return !strncmp(entry, name, n) && entry[n] == '=';
}

static bool present(char *const envp[], const struct var *v)
{
	for (size_t i = 0; envp && envp[i]; i++)
		if (named(envp[i], v->entry, v->namelen))
			return true;
	return false;
}

/* Worth putting back: not a descriptor, or still the one we were given. */
static bool live(const struct var *v)
{
	struct stat st;

	if (v->fd == NOT_FD)
		return true;
	return v->fd >= 0 && fstat(v->fd, &st) == 0 && st.st_dev == v->dev &&
	       st.st_ino == v->ino;
}

/* The LD_PRELOAD value ld.so will use (the last one), NULL if none. */
static const char *preload_of(char *const envp[])
{
	const char *pre = NULL;

	for (size_t i = 0; envp && envp[i]; i++)
		if (named(envp[i], "LD_PRELOAD", PRELOAD_EQ_LEN - 1))
			pre = envp[i] + PRELOAD_EQ_LEN;
	return pre;
}

static bool preload_missing(const char *pre)
{
	return g.preload && (!pre || !sfy_preload_has(pre, g.lib));
}

size_t sfy_exec_env_slots(char *const envp[], size_t *buflen)
{
	size_t n = 0, missing = 0;
	const char *pre;
	int saved = errno;

	*buflen = 0;
	if (!atomic_load_explicit(&g.ready, memory_order_acquire))
		return 0;
	while (envp && envp[n])
		n++;
	for (size_t i = 0; i < g.nvars; i++)
		missing += !present(envp, &g.vars[i]) && live(&g.vars[i]);
	pre = preload_of(envp);
	errno = saved;
	if (!missing && !preload_missing(pre))
		return 0;
	if (preload_missing(pre) && pre)
		*buflen = PRELOAD_EQ_LEN + strlen(pre) + strlen(g.lib) + 2;
	return n + missing + 2;
}

char *const *sfy_exec_env_build(char *const envp[], char **out, size_t slots,
				char *buf, size_t buflen)
{
	const char *pre = preload_of(envp);
	bool fix = preload_missing(pre);
	size_t k = 0, room = slots - 1;     /* the last one is NULL */
	int saved = errno;

	for (size_t i = 0; envp && envp[i] && k < room; i++)
		if (!fix || !named(envp[i], "LD_PRELOAD", PRELOAD_EQ_LEN - 1))
			out[k++] = envp[i];
	for (size_t i = 0; i < g.nvars && k < room; i++)
		if (!present(envp, &g.vars[i]) && live(&g.vars[i]))
			out[k++] = g.vars[i].entry;
	if (fix && k < room) {
		/* Sanitizer runtimes first, ours, then the program's own. */
		if (pre && buflen > PRELOAD_EQ_LEN) {
			memcpy(buf, PRELOAD_EQ, PRELOAD_EQ_LEN);
			if (sfy_preload_compose(pre, g.lib, false, buf + PRELOAD_EQ_LEN,
						buflen - PRELOAD_EQ_LEN) == 0)
				out[k++] = buf;
			else
				out[k++] = g.preload_entry;
		} else {
			out[k++] = g.preload_entry;
		}
	}
	out[k] = NULL;
	errno = saved;
	return out;
}

/* ------------------------------------------------------------ targets */

/* unproxyable: as this process knows it, without loading anything in a
 * vfork() child: the loaded configuration, else the launcher's sealed copy
 * (one field read), else SOCKSIFY_UNPROXYABLE, else -- only outside a
 * vfork() child -- the configuration loaded now; else refuse. */
static int mode(void)
{
	const struct sfy_config *c = sfy_config_peek();
	int v;

	if (c)
		return (int)c->unproxyable;
	if (g.cfg_var >= 0 && live(&g.vars[g.cfg_var]) &&
	    (v = sfy_config_fd_unproxyable(g.vars[g.cfg_var].fd)) >= 0)
		return v;
	if (g.env_mode >= 0)
		return g.env_mode;
	if ((int)getpid() == atomic_load(&g.owner) && (c = sfy_config_get()))
		return (int)c->unproxyable;
	return SFY_UNPROXYABLE_REFUSE;
}

static void cat(char *buf, size_t *n, const char *s)
{
	size_t len = strlen(s);

	if (len > WARN_MAX - 1 - *n)
		len = WARN_MAX - 1 - *n;
	memcpy(buf + *n, s, len);
	*n += len;
}

static int judge(const struct sfy_reach_result *r, const char *shown)
{
	char msg[WARN_MAX];
	size_t n = 0;
	bool allow;

	if (r->why == SFY_REACH_OK)
		return 0;
	allow = mode() == SFY_UNPROXYABLE_ALLOW;
	cat(msg, &n, shown);
	cat(msg, &n, ": ");
	if (r->by_interp) {
		cat(msg, &n, "its interpreter ");
		cat(msg, &n, r->interp);
		cat(msg, &n, " is ");
	}
	cat(msg, &n, sfy_reach_reason(r->why));
	cat(msg, &n, allow ? "; running it UNPROXIED (unproxyable: allow)"
			   : "; exec refused (EACCES), its traffic would NOT be proxied "
			     "(unproxyable: allow runs it)");
	sfy_log_text(SFY_LOG_WARN, msg, n);
	return allow ? 0 : -EACCES;
}

int sfy_exec_check_path(const char *cmd, bool path_search)
{
	struct sfy_reach_result r;
	char path[PATH_MAX];

	if (!cmd || !*cmd)
		return 0;
	if (path_search && !strchr(cmd, '/')) {
		if (sfy_resolve_command(cmd, path) < 0)
			return 0;       /* exec fails the same way */
		sfy_reach_check(path, &r);
	} else {
		sfy_reach_check(cmd, &r);
	}
	return judge(&r, cmd);
}

/* fd -> the name /proc gives it, for the warn line. */
static void fd_name(int fd, char out[static PATH_MAX])
{
	static const char pre[] = "/proc/self/fd/";
	char p[sizeof pre + 12], d[12];
	size_t n = sizeof pre - 1, k = 0;
	ssize_t len;
	int saved = errno;

	memcpy(p, pre, n);
	do
		d[k++] = (char)('0' + fd % 10);
	while ((fd /= 10) > 0 && k < sizeof d);
	while (k)
		p[n++] = d[--k];
	p[n] = '\0';
	len = readlink(p, out, PATH_MAX - 1);
	if (len <= 0)
		memcpy(out, p, n + 1);
	else
		out[len] = '\0';
	errno = saved;
}

int sfy_exec_check_fd(int fd)
{
	struct sfy_reach_result r;
	char name[PATH_MAX];

	sfy_reach_check_fd(fd, &r);
	if (r.why == SFY_REACH_OK)
		return 0;
	fd_name(fd, name);
	return judge(&r, name);
}

int sfy_exec_check_at(int dirfd, const char *path, int flags)
{
	struct sfy_reach_result r;
	int fd, saved = errno;

	if (!path)
		return 0;
	if ((flags & AT_EMPTY_PATH) && !*path)
		return sfy_exec_check_fd(dirfd);
	if (path[0] == '/' || dirfd == AT_FDCWD)
		return sfy_exec_check_path(path, false);
	/* O_PATH: a program we may execute but not read is still judged by
	 * its mode bits (reach.c reopens it through /proc if it can). */
	fd = openat(dirfd, path, O_PATH | O_CLOEXEC |
		    (flags & AT_SYMLINK_NOFOLLOW ? O_NOFOLLOW : 0));
	errno = saved;
	if (fd < 0)
		return 0;
	sfy_reach_check_fd(fd, &r);
	sfy_real()->close(fd);
	errno = saved;
	return judge(&r, path);
}
