/* What is learned about how proxies handle pipelined SOCKS5 bytes,
 * remembered so later connections (in this process tree, and later runs)
 * need not probe again: in the tree's shared table (proxystate.h) and in
 * the user's file cache (stepcache.h). Remembered verdicts expire after
 * SFY_STEPWISE_TTL seconds and the proxy is then probed again. */
#ifndef SFY_STEPWISE_H
#define SFY_STEPWISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* A day: a proxy's software changes rarely, and a stale verdict costs at
 * most one extra round trip once it has expired. */
#define SFY_STEPWISE_TTL (24 * 3600)

/* What is known about a proxy's handling of pipelined SOCKS5 bytes, keyed
 * by the proxy's (host, port, protocol) -- never by its index in a chain. */
enum sfy_pipe_known {
	SFY_PIPE_UNKNOWN,       /* nothing learned (or expired): pipeline, probe */
	SFY_PIPE_OK,            /* answered a pipelined request: pipeline, no probe */
	SFY_PIPE_STEPWISE,      /* proven to drop early bytes: step by step */
};

enum sfy_pipe_known sfy_stepwise_get(const struct sfy_config *cfg, const struct sfy_proxy *p);
/* Records evidence about p (SFY_PIPE_OK or SFY_PIPE_STEPWISE) for the tree
 * and, unless the same verdict is already remembered and recent, in the
 * file cache. */
void sfy_stepwise_set(const struct sfy_config *cfg, const struct sfy_proxy *p,
		      enum sfy_pipe_known v);

/* The second fact, separate from the first: whether p passes bytes that
 * arrive before its reply on to what it connects to (needed to send the
 * next hop's messages through it early: whole-chain pipelining).
 * SFY_PIPE_OK = forwards, SFY_PIPE_STEPWISE = drops them. Remembered like
 * the first fact, under a key of its own. */
enum sfy_pipe_known sfy_forward_get(const struct sfy_config *cfg, const struct sfy_proxy *p);
void sfy_forward_set(const struct sfy_config *cfg, const struct sfy_proxy *p,
		     enum sfy_pipe_known v);

/* In the program's thread, before a set-up: attaches the tree's table and
 * reads the file cache (getenv(), file I/O), so that the library's own
 * threads (the background driver, the race's second side) only read and
 * write shared memory. Cheap once done. */
void sfy_stepwise_warm(const struct sfy_config *cfg);

/* For the launcher, before exec: creates the tree's shared table (or joins
 * an outer socksify's), fills it from the file cache for cfg's proxies and
 * exports it in SOCKSIFY_PROXYSTATE_FD. Returns the fd or a negative errno
 * (the tree's processes then keep private tables). */
int sfy_stepwise_export(const struct sfy_config *cfg);

/* Tests: the clock (CLOCK_REALTIME seconds; NULL restores it), and
 * forgetting this process's table and file read (close_fd as in
 * sfy_pxtab_detach). */
void sfy_stepwise_set_clock(int64_t (*now)(void));
void sfy_stepwise_reset(bool close_fd);

#endif
