/* Remote-DNS fake addresses: name <-> address from fake_ip_range (IPv4) and
 * its IPv6 equivalent, in one table shared by the whole process tree
 * (MAP_SHARED memory that survives fork() and exec()). */
#ifndef SFY_FAKEDNS_H
#define SFY_FAKEDNS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"

/* Returns the fake IPv4 address (network byte order) for name, allocating one
 * if needed. Negative errno on failure (-ENAMETOOLONG, -ENOSPC, ...). */
int sfy_fakedns_ipv4(const char *name, uint32_t *addr_be);
/* The IPv6 equivalent of a fake IPv4 address. */
void sfy_fakedns_ipv6(uint32_t addr_be, uint8_t out[16]);
/* If sa is a fake address (v4, v4-mapped v6 or the v6 range), writes its
 * name into out (with sa's port) as an SFY_ATYP_DOMAIN address and returns
 * true. */
bool sfy_fakedns_reverse(const struct sockaddr *sa, socklen_t len, struct sfy_addr *out);

#endif
