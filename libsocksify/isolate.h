/* isolate: (config.h) -- SOCKS5 username/password credentials for hops
 * that have none of their own, so that Tor, which by default keeps streams
 * with different credentials on different circuits (IsolateSOCKSAuth),
 * does not let one program's traffic be linked with another's.
 *
 * The username is "<torS0X>0": Tor (0.4.9+) and Arti read usernames that
 * start with <torS0X> as extended parameters (Tor proposal 351), format 0
 * meaning "the password is an isolation token"; older Tor compares the
 * pair as opaque bytes. The password is the token:
 *  - process: the process tree's token, 32 hex characters from 16 random
 *    bytes. The launcher makes a fresh one for its tree (a nested socksify
 *    is a new tree); without the launcher the library makes one at load
 *    and, when its configuration isolates, exports it to its children. It travels in SOCKSIFY_ISOLATE_TOKEN,
 *    which the exec guard restores into children whose environment lost it.
 *  - connection: 32 hex characters from 16 random bytes of their own per
 *    connection set-up (retries of one set-up keep them), nothing of the
 *    tree's token.
 * Only hop 1 gets them (chain.c): the hop this machine talks to directly,
 * where a local Tor SocksPort is; later hops are reached through it. */
#ifndef SFY_ISOLATE_H
#define SFY_ISOLATE_H

#include <stdbool.h>

#include "config.h"

#define SFY_ISOLATE_ENV "SOCKSIFY_ISOLATE_TOKEN"
#define SFY_ISOLATE_USER "<torS0X>0"
#define SFY_ISOLATE_TOKEN_LEN 32
/* a token, NUL */
#define SFY_ISOLATE_PASS_MAX (SFY_ISOLATE_TOKEN_LEN + 1)

/* Is s a token as this file makes them (32 lower-case hex digits)? */
bool sfy_isolate_token_ok(const char *s);

/* The tree's token: the environment's when it holds a good one, else one
 * made for this process (and exported to children only by the load-time
 * constructor of a process outside the launcher's tree). */
const char *sfy_isolate_tree_token(void);

/* For the launcher: a fresh token for the tree it starts, in the
 * environment. 0 or a negative errno. */
int sfy_isolate_export(void);

/* The password a connection set-up under mode m sends, written into buf,
 * or NULL for SFY_ISOLATE_NONE. */
const char *sfy_isolate_pass(enum sfy_isolate m, char buf[static SFY_ISOLATE_PASS_MAX]);

#endif
