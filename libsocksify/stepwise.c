/* Proxy verdicts: the tree's table first, the user's file cache behind it.
 *
 * The file is read once per process, for the configured proxies, into the
 * table -- unless the launcher already did so for the whole tree (the table
 * is then marked seeded), which also lets children that dropped privileges
 * and cannot read the user's cache use it. The first read is lock-free:
 * threads racing it each merge the same lines (newest wins), so a fork()
 * at any moment leaves nothing held. */
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "proxystate.h"
#include "stepcache.h"
#include "stepwise.h"

/* Writing the same verdict again within this many seconds only refreshes
 * the table: the file is not rewritten by every thread that learns it. */
#define FILE_REFRESH (3600)

static int64_t realtime_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

static _Atomic(int64_t (*)(void)) clock_fn = realtime_now;
static atomic_bool file_loaded;

void sfy_stepwise_set_clock(int64_t (*now)(void))
{
	atomic_store(&clock_fn, now ? now : realtime_now);
}

static int64_t now_s(void)
{
	return atomic_load(&clock_fn)();
}

static bool key_of(const struct sfy_proxy *p, bool fwd, struct sfy_pxkey *k);

/* Merges the file's verdicts about cfg's proxies (both facts) into the
 * table. */
static void seed(const struct sfy_config *cfg, int64_t now)
{
	struct sfy_pxkey keys[2 * SFY_MAX_PROXIES];
	struct sfy_pxstate st[2 * SFY_MAX_PROXIES];
	size_t n = 0;
	for (size_t i = 0; i < cfg->nproxies && i < SFY_MAX_PROXIES; i++) {
		if (key_of(&cfg->proxies[i], false, &keys[n]))
			n++;
		if (key_of(&cfg->proxies[i], true, &keys[n]))
			n++;
	}
	if (n == 0 || sfy_stepcache_read(keys, n, st, now, SFY_STEPWISE_TTL) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (st[i].v)
			(void)sfy_pxtab_put(&keys[i], st[i].v, st[i].when, now);
}

static void load(const struct sfy_config *cfg, int64_t now)
{
	if (atomic_load_explicit(&file_loaded, memory_order_acquire))
		return;
	if (!sfy_pxtab_seeded())
		seed(cfg, now);
	atomic_store_explicit(&file_loaded, true, memory_order_release);
}

static enum sfy_pipe_known get_key(const struct sfy_config *cfg, const struct sfy_pxkey *k)
{
	int64_t now = now_s();
	load(cfg, now);
	int v = sfy_pxtab_get(k, now, SFY_STEPWISE_TTL).v;
	return v == SFY_PIPE_OK || v == SFY_PIPE_STEPWISE ? (enum sfy_pipe_known)v
							  : SFY_PIPE_UNKNOWN;
}

static void set_key(const struct sfy_config *cfg, const struct sfy_pxkey *k,
		    enum sfy_pipe_known v)
{
	int64_t now = now_s();
	if (v != SFY_PIPE_OK && v != SFY_PIPE_STEPWISE)
		return;
	load(cfg, now);
	struct sfy_pxstate old = sfy_pxtab_get(k, now, SFY_STEPWISE_TTL);
	(void)sfy_pxtab_put(k, (int)v, now, now);
	if (old.v == (int)v && now - old.when < FILE_REFRESH)
		return;
	(void)sfy_stepcache_append(k, (int)v, now, now, SFY_STEPWISE_TTL);
}

/* The forwarding fact's key is the proxy's with a host suffix no host name
 * can have, so both facts share the table and the file cache. */
#define FWD_SUFFIX "#fwd"

static bool key_of(const struct sfy_proxy *p, bool fwd, struct sfy_pxkey *k)
{
	size_t sl = sizeof(FWD_SUFFIX) - 1;
	if (!sfy_pxkey_of(p, k))
		return false;
	if (!fwd)
		return true;
	if (k->hostlen + sl > SFY_HOST_MAX)
		return false;
	memcpy(k->host + k->hostlen, FWD_SUFFIX, sl + 1);
	k->hostlen = (uint8_t)(k->hostlen + sl);
	return true;
}

static enum sfy_pipe_known get_fact(const struct sfy_config *cfg, const struct sfy_proxy *p,
				    bool fwd)
{
	struct sfy_pxkey k;
	return key_of(p, fwd, &k) ? get_key(cfg, &k) : SFY_PIPE_UNKNOWN;
}

static void set_fact(const struct sfy_config *cfg, const struct sfy_proxy *p, bool fwd,
		     enum sfy_pipe_known v)
{
	struct sfy_pxkey k;
	if (key_of(p, fwd, &k))
		set_key(cfg, &k, v);
}

enum sfy_pipe_known sfy_stepwise_get(const struct sfy_config *cfg, const struct sfy_proxy *p)
{
	return get_fact(cfg, p, false);
}

void sfy_stepwise_set(const struct sfy_config *cfg, const struct sfy_proxy *p,
		      enum sfy_pipe_known v)
{
	set_fact(cfg, p, false, v);
}

enum sfy_pipe_known sfy_forward_get(const struct sfy_config *cfg, const struct sfy_proxy *p)
{
	return get_fact(cfg, p, true);
}

void sfy_forward_set(const struct sfy_config *cfg, const struct sfy_proxy *p,
		     enum sfy_pipe_known v)
{
	set_fact(cfg, p, true, v);
}

void sfy_stepwise_warm(const struct sfy_config *cfg)
{
	if (atomic_load_explicit(&file_loaded, memory_order_acquire))
		return;
	struct sfy_pxkey none = { 0 };
	int64_t now = now_s();
	(void)sfy_pxtab_get(&none, now, SFY_STEPWISE_TTL);     /* attaches the table */
	load(cfg, now);
}

int sfy_stepwise_export(const struct sfy_config *cfg)
{
	int fd = sfy_pxtab_export_fd();
	if (fd < 0)
		return fd;
	seed(cfg, now_s());
	sfy_pxtab_set_seeded();
	atomic_store(&file_loaded, true);
	return fd;
}

void sfy_stepwise_reset(bool close_fd)
{
	sfy_stepcache_reread_env();
	sfy_pxtab_detach(close_fd);
	atomic_store(&file_loaded, false);
}
