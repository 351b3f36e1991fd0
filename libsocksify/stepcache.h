/* What was learned about proxies, kept across runs in
 * $XDG_CACHE_HOME/socksify/stepwise (default ~/.cache/socksify/stepwise),
 * one line per verdict:
 *
 *   PROTO HOST PORT VERDICT SECONDS\n      e.g. "socks5 10.0.0.1 1080 stepwise 1764460000"
 *
 * VERDICT is "ok" or "stepwise", SECONDS the CLOCK_REALTIME time it was
 * learned. For each key the newest line wins (a later "ok" corrects an
 * earlier "stepwise"); lines older than the caller's max age, from the
 * future or in any other shape (the old "HOST PORT" lines) are ignored, so
 * the proxy is probed again. The file is a hint: it is read only when it
 * and its directory belong to the effective user and are not group- or
 * world-writable (sudo may keep HOME), and kept small by rewriting it
 * (atomically, by rename) when it grows. */
#ifndef SFY_STEPCACHE_H
#define SFY_STEPCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "proxystate.h"

/* Past this the file is rewritten with one line per live key. */
#define SFY_STEPCACHE_COMPACT 16384
/* At most this much of the file (its end, where the newest lines are) is
 * read: a bound on the work a hostile or runaway file can cause. */
#define SFY_STEPCACHE_READ_MAX 65536

/* For each keys[i], the newest valid line not older than max_age seconds
 * into out[i] (v = 0 when there is none). Returns 0, or a negative errno
 * when the file is missing or refused (out[] all zero then). */
int sfy_stepcache_read(const struct sfy_pxkey *keys, size_t n, struct sfy_pxstate *out,
		       int64_t now, int64_t max_age);
/* Appends one line (creating the directory and file, 0700/0600, when their
 * parent is ours); rewrites the file first when it has grown past
 * SFY_STEPCACHE_COMPACT. Returns 0 or a negative errno. */
int sfy_stepcache_append(const struct sfy_pxkey *k, int v, int64_t when, int64_t now,
			 int64_t max_age);

/* XDG_CACHE_HOME and HOME are read once (the library's own threads must not
 * call getenv()); tests that change them read them again with this. */
void sfy_stepcache_reread_env(void);

#endif
