/* Private to the configuration (config*.c, the launcher, tests and fuzz
 * harnesses): the MATCH parser, name checks and the rule storage behind
 * config.h's sfy_config_add_rule_text(). */
#ifndef SFY_CONFIG_RULES_H
#define SFY_CONFIG_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "config.h"

/* The longest MATCH text: a bracketed IPv6 address with an embedded IPv4
 * (47), "/128" and ":65535-65535" -- or "*." and a 253-byte name with a
 * trailing dot and a port range: 280 bounds both. */
#define SFY_MATCH_TEXT_MAX 280
/* "MATCH=VIA": the match, '=', a chain name. */
#define SFY_RULE_TEXT_MAX (SFY_MATCH_TEXT_MAX + 1 + SFY_CHAIN_NAME_MAX)
/* A DNS name in text form (RFC 1035 2.3.4 without the trailing dot). */
#define SFY_RULE_NAME_MAX 253

/* MATCH (s[0..len), need not be NUL-terminated) -> r's kind, port_lo/hi,
 * has_port and cidr; for NAME/SUFFIX the normalized name (lower case, no
 * trailing dot, no "*.") goes to name with its length in *name_len. Other
 * fields of r are left alone. A pure function: no allocation, no globals.
 * 0, or -1 with a one-line reason in err. */
int sfy_rule_parse_match(const char *s, size_t len, struct sfy_rule *r,
			 char name[static SFY_RULE_NAME_MAX + 1], size_t *name_len,
			 char *err, size_t errcap);

/* s[0..n) is a normalized rule name: 1..253 bytes, labels of 1..63 of
 * [a-z0-9_-], no empty label. */
bool sfy_rule_name_ok(const char *s, size_t n);
/* A chain name: [A-Za-z0-9_-]{1,31}, not direct or block (any case). */
bool sfy_chain_name_ok(const char *s);
/* Is the (normalized) name .onion, .exit or .i2p, or under one of them? */
bool sfy_rule_name_special(const char *s, size_t n);

/* Appends r (with name[0..name_len) for NAME/SUFFIX) to c's rules,
 * growing the heap arrays. -1 with err past SFY_MAX_RULES or out of
 * memory. */
int sfy_config_push_rule(struct sfy_config *c, const struct sfy_rule *r, const char *name,
			 size_t name_len, char *err, size_t errcap);

/* "unknown chain "x" (a, b, direct or block)" into err; -1. */
int sfy_rule_via_error(const struct sfy_config *c, const char *v, char *err, size_t errcap);
/* "MATCH=VIA" as it would be written, normalized ("*.example.com:443=tor"). */
void sfy_rule_format(const struct sfy_config *c, const struct sfy_rule *r, char *buf, size_t cap);

/* The variable name NO_PROXY entries are read from: no_proxy if set and
 * not empty, else NO_PROXY; NULL when neither is. */
const char *sfy_no_proxy_var(void);
/* NO_PROXY convention -> direct rules of origin SFY_RO_NOPROXY ("name"
 * and ".name" match the domain and its subdomains, an IP or CIDR as such,
 * ":port" kept, "*" everything). var names the variable in errors. */
int sfy_config_add_no_proxy(struct sfy_config *c, const char *var, const char *list,
			    char *err, size_t errcap);

#endif
