/* The in-library DNS responder (issue 13): in remote-DNS mode, queries a
 * program sends to the system's nameservers (resolv.conf, 127.0.0.53) are
 * answered here from the fake-DNS table and the routing rules, never sent
 * anywhere. This header is the core every transport uses: the decision
 * whether a destination is a system nameserver, and the answer to one
 * query message. The UDP transport is dnsresp_udp.c, the TCP one
 * dnsresp_tcp.c, libresolv's res_* calls hooks_res.c. */
#ifndef SFY_DNSRESP_H
#define SFY_DNSRESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"

/* Is the responder on for this configuration (some route resolves names
 * remotely, and dns_responder is not off)? */
bool sfy_dnsresp_enabled(const struct sfy_config *cfg);

/* Is sa (AF_INET/AF_INET6, v4-mapped counts as v4) port 53 of a system
 * nameserver: a nameserver line of /etc/resolv.conf (re-read when the file
 * changes) or 127.0.0.53? *idx, when not NULL, gets a small stable number
 * for it (0 = 127.0.0.53, 1.. in file order, < SFY_DNSRESP_NS_MAX), which
 * the transports use to tell nameservers apart. False whenever the
 * responder is off. */
#define SFY_DNSRESP_NS_MAX 8
bool sfy_dnsresp_is_ns(const struct sockaddr *sa, socklen_t len, int *idx);
/* Reads resolv.conf's nameservers now if not yet (or changed): before a
 * fork(), like sfy_hosts_warm(). */
void sfy_dnsresp_warm(void);

/* The nameserver address with number idx (port 53), for what the program
 * sees as the source of answers and as getpeername(). False if none. */
bool sfy_dnsresp_ns_addr(int idx, int family, struct sockaddr_storage *out, socklen_t *len);

/* For tests: read path instead of /etc/resolv.conf (checked again at the
 * next use). path must stay valid. */
void sfy_dnsresp_set_resolv_path(const char *path);

/* Answers one DNS message q of qlen bytes. tcp: the limit is the TCP one,
 * else the UDP limit the query allows (512, or its EDNS size). Writes the
 * reply into out (cap bytes: SFY_DNS_TCP_MAX is always enough, 4096 for
 * UDP) and returns its length; 0: send nothing (a response, not a query;
 * a message too short for a header); -errno on a failure to build. May
 * block for a bounded time (handshake timeout) only for a name every
 * route of which resolves locally. */
ssize_t sfy_dnsresp_answer(const uint8_t *q, size_t qlen, bool tcp, uint8_t *out, size_t cap);

#endif
