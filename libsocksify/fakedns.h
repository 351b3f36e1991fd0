/* Remote-DNS fake addresses: name <-> address from fake_ip_range (IPv4) and
 * its IPv6 equivalent, in one table shared by the whole process tree
 * (MAP_SHARED memory that survives fork() and exec()), plus the policy of
 * which names are never faked (numeric, localhost, own hostname, /etc/hosts).
 *
 * The table lives in a memfd whose number travels across exec() in
 * SOCKSIFY_FAKEDNS_FD. The launcher creates it before exec (so the whole
 * tree shares one table from the start); without the launcher the library
 * creates it on first use and sets the variable for its own children. */
#ifndef SFY_FAKEDNS_H
#define SFY_FAKEDNS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"
#include "shmfd.h"

#define SFY_FAKEDNS_ENV SFY_SHM_FAKEDNS_ENV

/* The IPv6 equivalent of fake a.b.c.d is fd73:6f63:6b73::a.b.c.d: a ULA
 * /96 ("socks" in the 40-bit global ID) that no real network routes to us. */
#define SFY_FAKEDNS_V6_PREFIX { 0xfd, 0x73, 0x6f, 0x63, 0x6b, 0x73, 0, 0, 0, 0, 0, 0 }

/* The range a table created by this process uses (host byte order; the
 * default is 224.0.0.0/8). A table inherited from a parent keeps its own. */
void sfy_fakedns_configure(uint32_t net, uint8_t prefix);

/* Creates (or attaches) the table now and sets SOCKSIFY_FAKEDNS_FD; for the
 * launcher, before exec. Returns the fd or a negative errno. */
int sfy_fakedns_export_fd(void);

/* Returns the fake IPv4 address (network byte order) for name, allocating one
 * if needed. Negative errno on failure: -ENAMETOOLONG (> 255 bytes), -EINVAL
 * (empty, control characters), -ENOSPC (range exhausted: never a reused or
 * wrong mapping), -ENOMEM. */
int sfy_fakedns_ipv4(const char *name, uint32_t *addr_be);
/* The fake address already handed out for name; never allocates (for
 * names that arrive from peers): 0, or -ENOENT. */
int sfy_fakedns_find(const char *name, uint32_t *addr_be);
/* The IPv6 equivalent of a fake IPv4 address. */
void sfy_fakedns_ipv6(uint32_t addr_be, uint8_t out[16]);
/* If sa is a fake address (v4, v4-mapped v6 or the v6 range), writes its
 * name into out (with sa's port) as an SFY_ATYP_DOMAIN address and returns
 * true. */
bool sfy_fakedns_reverse(const struct sockaddr *sa, socklen_t len, struct sfy_addr *out);
/* The name behind a fake IPv4 address: 0, or -ENOENT (not handed out). */
int sfy_fakedns_name(uint32_t addr_be, char out[static SFY_NAME_MAX + 1]);
/* The IPv4 address a fake candidate stands for: AF_INET, ::ffff:a.b.c.d or
 * the fd73:6f63:6b73::/96 range. False for anything else. */
bool sfy_fakedns_sockaddr_v4(const struct sockaddr *sa, socklen_t len, uint32_t *addr_be);
/* Is addr_be inside the range of the table (or, with no table yet, of the
 * configured range)? Such an address never reaches the network as itself. */
bool sfy_fakedns_in_range(uint32_t addr_be);
/* Does this process tree hand out fake addresses: a table is attached, or
 * the environment names one (reachable or not)? In local-DNS mode only
 * .onion/.exit/.i2p names (and names the rules fake) make one. Never
 * creates a table. */
bool sfy_fakedns_exists(void);
/* sa (v4, v4-mapped or the v6 range) is inside the fake range, whether or
 * not a name stands behind it. */
bool sfy_fakedns_is_fake(const struct sockaddr *sa, socklen_t len);

/* Lower-case, one trailing dot dropped. Returns the length, -EINVAL or
 * -ENAMETOOLONG. */
int sfy_fakedns_normalize(const char *name, char out[static SFY_NAME_MAX + 1]);

/* Forgets this process's mapping (the next call attaches again from the
 * environment); close_fd also closes the table's fd and unsets the variable.
 * For tests. */
void sfy_fakedns_detach(bool close_fd);

/* What remote-mode resolution does with a name. */
enum sfy_dns_class {
	SFY_DNS_FAKE,           /* hand out a fake address */
	SFY_DNS_REAL,           /* numeric or in /etc/hosts: the real function answers
				   without the network */
	SFY_DNS_LOOPBACK,       /* localhost, *.localhost, own hostname not in
				   /etc/hosts: answer with the loopback address */
	SFY_DNS_NODATA,         /* in /etc/hosts, but not with this family */
	SFY_DNS_INVALID,        /* not a usable name: fail, never ask the network */
};
/* family: AF_UNSPEC, AF_INET, AF_INET6; v4mapped: AF_INET6 caller accepts
 * ::ffff:a.b.c.d. */
enum sfy_dns_class sfy_dns_classify(const char *name, int family, bool v4mapped);
/* Is name an address (any inet_aton() form, an IPv6 literal with an
 * optional %scope), which resolvers answer without a lookup? */
bool sfy_dns_numeric(const char *name);
/* Is this address listed in /etc/hosts (so the real reverse lookup answers
 * from the file)? family AF_INET (4 bytes) or AF_INET6 (16 bytes). */
bool sfy_hosts_has_addr(int family, const void *addr);
/* The addresses /etc/hosts lists for name (any case) with family, in file
 * order (AF_INET: the first 4 bytes of each), up to max (8 are kept per
 * family): how many. For answers built without the real resolver. */
size_t sfy_hosts_addrs(const char *name, int family, unsigned char out[][16], size_t max);
/* The name a reverse lookup of addr answers from /etc/hosts (the first
 * name of the first line with that address, normalized): true. */
bool sfy_hosts_name(int family, const void *addr, char out[static SFY_NAME_MAX + 1]);
/* Replaces the cached /etc/hosts with the contents of path (for tests; the
 * library loads /etc/hosts once, on first use). Returns 0 or -errno. */
int sfy_hosts_load(const char *path);
/* Reads /etc/hosts now unless already read: before a fork(), so that a
 * child (which may only make async-signal-safe calls, and whose copy of a
 * lock another thread held stays held) never loads it itself. */
void sfy_hosts_warm(void);

#endif
