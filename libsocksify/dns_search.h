/* The resolver's search list: the domains glibc appends to a name written
 * without a trailing dot before (fewer dots than ndots) or after (its
 * lookup as written failed) asking for the name itself. The routing rules
 * must judge every name that may go out (dns_rules.h), so this is the
 * union of what glibc can use: resolv.conf's last search/domain line (or
 * LOCALDOMAIN, which replaces them), else the domain of the hostname, and
 * the domains of a resolver state the program set up itself (_res or the
 * res_n* statp, which glibc uses when the program changed them). The
 * file's list is cached and read again when the file changes. */
#ifndef SFY_DNS_SEARCH_H
#define SFY_DNS_SEARCH_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"

struct __res_state;

/* Domains kept; glibc itself used at most 6 until 2.26. Further ones are
 * not judged (said once at warn). */
#define SFY_SEARCH_MAX 16

struct sfy_search {
	size_t n;
	char dom[SFY_SEARCH_MAX][SFY_NAME_MAX + 1];     /* normalized, no dots around */
};

/* Would the resolver try name with search domains appended? (no trailing
 * dot, not empty) */
bool sfy_search_applies(const char *name);

/* The domains for a lookup: statp the program's resolver state (NULL:
 * this thread's _res). */
void sfy_search_get(struct sfy_search *s, const struct __res_state *statp);

/* name + "." + dom in out: false when it is longer than a DNS name can be
 * (glibc does not ask for those either). */
bool sfy_search_join(const char *name, const char *dom, char out[static SFY_NAME_MAX + 1]);

/* For tests: parse path instead of /etc/resolv.conf. */
void sfy_search_set_path(const char *path);

#endif
