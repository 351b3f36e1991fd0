/* What the process tree has learned about each proxy, in one small table of
 * shared memory keyed by the proxy's (host, port, protocol).
 *
 * The launcher creates the table (a sealed memfd whose number travels in
 * SOCKSIFY_PROXYSTATE_FD, like the fake-DNS table) so every process of the
 * tree, exec'd or not, sees what any of them learned. Without the launcher a
 * process keeps a private table (anonymous shared memory: its fork()ed
 * children share it, exec'd ones start empty and fall back to the file
 * cache); the library never exports one itself, because that would need
 * setenv() inside a hook, racing other threads that read environ.
 *
 * The table is lock-free (a process killed at any instant leaves nothing
 * locked) and every field is checked when read: any process of the tree
 * can write garbage into it, which may cost a re-probe but never a crash. */
#ifndef SFY_PROXYSTATE_H
#define SFY_PROXYSTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy_url.h"
#include "shmfd.h"

#define SFY_PROXYSTATE_ENV SFY_SHM_PXSTATE_ENV

/* A proxy as the table and the file cache name it. */
struct sfy_pxkey {
	uint8_t proto;                  /* enum sfy_proto */
	uint8_t hostlen;                /* 1..SFY_HOST_MAX */
	uint16_t port;
	char host[SFY_HOST_MAX + 1];    /* lower-case, NUL-terminated */
};

/* A remembered verdict: v is an enum sfy_pipe_known (0 = nothing), when is
 * CLOCK_REALTIME seconds (shared with the file cache across runs). */
struct sfy_pxstate {
	int v;
	int64_t when;
};

/* Builds p's key; false when the host cannot be a key (empty, too long,
 * spaces or control bytes, which the cache file could not hold). */
bool sfy_pxkey_of(const struct sfy_proxy *p, struct sfy_pxkey *k);
bool sfy_pxkey_eq(const struct sfy_pxkey *a, const struct sfy_pxkey *b);

/* Clocks of one machine agree; a time further ahead than this was written
 * by a broken or hostile process and would otherwise never expire. */
#define SFY_PX_FUTURE_SLACK 300

/* The newest entry for k whose time lies in (now - max_age, now + slack];
 * v = 0 when there is none. */
struct sfy_pxstate sfy_pxtab_get(const struct sfy_pxkey *k, int64_t now, int64_t max_age);
/* Stores (v, when) for k unless a newer entry is there. Returns 0, or
 * -ENOSPC (table full) / -ENOMEM (no table). */
int sfy_pxtab_put(const struct sfy_pxkey *k, int v, int64_t when, int64_t now);

/* For the launcher: attaches the inherited table (a nested socksify shares
 * its parent's: keys are absolute) or creates one, and sets the variable.
 * Returns the fd or a negative errno. */
int sfy_pxtab_export_fd(void);
/* Whether the table has been filled from the file cache (by the launcher),
 * so processes need not read the file themselves. */
bool sfy_pxtab_seeded(void);
void sfy_pxtab_set_seeded(void);
/* True when this process uses a table shared through the variable. */
bool sfy_pxtab_shared(void);

/* Forgets this process's table (the next call attaches or creates again);
 * close_fd also closes an exported fd and unsets the variable. For tests. */
void sfy_pxtab_detach(bool close_fd);

#endif
