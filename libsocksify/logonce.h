/* "Once per destination" for warn lines that a program can trigger in a
 * loop (a blocked name looked up again and again, a blocked UDP peer sent
 * to per datagram): a bounded memory of what was already said. When more
 * than SFY_LOGONCE_MAX different keys were logged the oldest are forgotten
 * and may be logged again; a repeated line is the worst that follows. */
#ifndef SFY_LOGONCE_H
#define SFY_LOGONCE_H

#include <stdbool.h>

#define SFY_LOGONCE_MAX 256

/* True the first time (kind, key) is seen (then remembered), false after.
 * kind separates the callers ("dns-block", "udp-block", ...). */
bool sfy_logonce_first(const char *kind, const char *key);

#endif
