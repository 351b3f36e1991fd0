/* Leveled logging to stderr or the configured file, one line per event,
 * written with a single write() so lines from threads do not interleave.
 * Never given a password: callers format proxies with sfy_proxy_format(). */
#ifndef SFY_LOG_H
#define SFY_LOG_H

#include <stddef.h>

#include "config.h"

void sfy_log_setup(enum sfy_log_level level, const char *file);
enum sfy_log_level sfy_log_level_get(void);
void sfy_log(enum sfy_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The same line from a finished message, without printf: no allocation,
 * no locks -- for the exec hooks, which may run in vfork() children. */
void sfy_log_text(enum sfy_log_level level, const char *msg, size_t mlen);

/* Copies n bytes of in to out (cap bytes, NUL-terminated), printable ASCII
 * as is, a backslash doubled, every other byte as \xHH; stops before a
 * sequence that would not fit. Returns the length written. */
size_t sfy_log_escape(char *out, size_t cap, const char *in, size_t n);

#define sfy_err(...)   sfy_log(SFY_LOG_ERROR, __VA_ARGS__)
#define sfy_warn(...)  sfy_log(SFY_LOG_WARN, __VA_ARGS__)
#define sfy_info(...)  sfy_log(SFY_LOG_INFO, __VA_ARGS__)
#define sfy_debug(...) sfy_log(SFY_LOG_DEBUG, __VA_ARGS__)

#endif
