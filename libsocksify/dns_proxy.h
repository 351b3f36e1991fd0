/* dns: proxy -- lookups answered by the chain's LAST hop, asked through the
 * chain (hop 1 never sees the name unless it is the last hop), with Tor's
 * SOCKS5 extensions (tor-spec socks-extensions.txt): RESOLVE (0xF0, DST =
 * the name, BND = its address) and RESOLVE_PTR (0xF1, DST = an address,
 * BND = its name). The resolver hooks (hooks_dns.c) ask here for names
 * that remote mode would fake; what comes back is a real address.
 *
 * Reply codes -> EAI_* (sfy_dnsproxy_eai): 0x04 host unreachable and Tor's
 * F0 (onion descriptor not found) / F6 (invalid onion address) say the
 * name does not exist: EAI_NONAME, never a fake address. 0x07 (command
 * not supported: a server without RESOLVE) makes this and every later
 * name through that chain fall back to fake addresses, with one info line
 * per process. Transient failures (the chain is down, 0x01, 0x03, 0x06,
 * F2, F3, F7) are EAI_AGAIN; the rest EAI_FAIL.
 *
 * Answers (and "no such name") are cached per chain for 60 s (Tor sends
 * no TTL) in a bounded, process-local table: a hit costs no system call. */
#ifndef SFY_DNS_PROXY_H
#define SFY_DNS_PROXY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"
#include "config.h"

/* Not an EAI_* code (those are negative) nor 0: give the name a fake
 * address, as remote mode does. */
#define SFY_DNSPROXY_FAKE 1

#define SFY_DNSPROXY_TTL_MS 60000
#define SFY_DNSPROXY_SETS 64
#define SFY_DNSPROXY_WAYS 4             /* 256 entries in all */

/* The chain configuration a lookup of name (for port, -1: unknown) asks,
 * or NULL when that chain is not in proxy mode (the caller fakes as
 * before). Call only for names remote mode would fake (not numeric, not in
 * /etc/hosts, not blocked, not .onion/.exit/.i2p). */
const struct sfy_config *sfy_dnsproxy_chain_for(const char *name, int port);
/* The same for a reverse lookup of sa (a real address, not fake). */
const struct sfy_config *sfy_dnsproxy_chain_for_addr(const struct sockaddr *sa, socklen_t len);

/* RESOLVE name through chain: 0 with *out (SFY_ATYP_IPV4 or _IPV6, port 0),
 * SFY_DNSPROXY_FAKE, or an EAI_* code. */
int sfy_dnsproxy_resolve(const struct sfy_config *chain, const char *name, struct sfy_addr *out);

/* RESOLVE_PTR of addr (AF_INET: 4 bytes, AF_INET6: 16) through chain: 0
 * with the name in out, or an EAI_* code. */
int sfy_dnsproxy_reverse(const struct sfy_config *chain, int af, const void *addr,
			 char out[static SFY_NAME_MAX + 1]);

/* A name RESOLVE_PTR may hand a program: res_hnok()'s rule (letters,
 * digits, '-', and '_' too; dot-separated labels, none empty, at most 63
 * characters each; at most 253 characters; a trailing dot allowed).
 * Anything else is EAI_NONAME, cached like a name that does not exist. */
bool sfy_dnsproxy_hostname_ok(const char *s);
/* Addresses never sent as RESOLVE_PTR (af: 4 / 16 bytes, v4-mapped ones as
 * IPv4): loopback, 0/8, RFC 1918, link-local (169.254/16, fe80::/10),
 * CGNAT 100.64/10, ULA fc00::/7, ::1 and ::. */
bool sfy_dnsproxy_local_addr(int af, const void *addr);

/* A RESOLVE reply code -> 0, SFY_DNSPROXY_FAKE (0x07) or an EAI_* code. */
int sfy_dnsproxy_eai(uint8_t rep);

/* ---- the cache, for the resolver and for tests ---- */

struct sfy_dnsproxy_ans {
	int rc;                         /* 0 or an EAI_* code (negative answers) */
	struct sfy_addr addr;           /* forward: the address; reverse: .name */
};
enum sfy_dnsproxy_kind { SFY_DNSPROXY_FWD, SFY_DNSPROXY_PTR };
/* key: the normalized name (FWD) or the address bytes (PTR), klen <= 255.
 * now: sfy_now_ms() time. get: true on a live entry. */
bool sfy_dnsproxy_cache_get(const void *chain, enum sfy_dnsproxy_kind kind, const void *key,
			    size_t klen, int64_t now, struct sfy_dnsproxy_ans *out);
void sfy_dnsproxy_cache_put(const void *chain, enum sfy_dnsproxy_kind kind, const void *key,
			    size_t klen, int64_t now, const struct sfy_dnsproxy_ans *ans);
/* Forgets every entry and every chain's "no RESOLVE" mark (tests). */
void sfy_dnsproxy_reset(void);

#endif
