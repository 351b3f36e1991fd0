/* Which names local DNS answers gave each address, so that host rules can
 * route a connection the program makes to an address (dns: local, a
 * direct route, a local-DNS chain). One bounded table shared by the whole
 * process tree like the fake-DNS table (a MAP_SHARED memfd found through
 * SOCKSIFY_DNSMEM_FD, shmfd.h), so a child connects by the names its
 * parent looked up. Entries are untrusted on read, like every shared
 * table; when the table is full the oldest of the least restrictive
 * entries go. */
#ifndef SFY_DNSMEM_H
#define SFY_DNSMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "addr.h"

#define SFY_DNSMEM_ENV "SOCKSIFY_DNSMEM_FD"
/* Names kept per address: a CDN address shared by more names than this
 * keeps the most restrictive, then the most recent ones. */
#define SFY_DNSMEM_NAMES_MAX 8

/* Creates (or attaches) the table now and sets SOCKSIFY_DNSMEM_FD; for the
 * launcher, before exec. fd or -errno. */
int sfy_dnsmem_export_fd(void);

/* Remembers that a local lookup of name answered sa (AF_INET/AF_INET6;
 * v4-mapped is stored as v4). sev: how restrictive the name's routes are,
 * sfy_route_name_restrictive(rt, name, sa) (0 all direct, 1 a chain, 2 a
 * block): the table never gives up a name for a less restrictive one, so
 * a name blocked on some port stays known however many direct names share
 * its address. Best effort: silently nothing on failure. */
void sfy_dnsmem_add(const char *name, const struct sockaddr *sa, socklen_t len, int sev);

/* The names remembered for sa (port ignored), the most restrictive first
 * and among equals the most recent, up to max; returns how many. Each is
 * NUL-terminated, normalized (lower case, no trailing dot). */
size_t sfy_dnsmem_names(const struct sockaddr *sa, socklen_t len,
			char names[][SFY_NAME_MAX + 1], size_t max);

/* For tests: forget the mapping (close_fd: also the descriptor and the
 * variable). */
void sfy_dnsmem_detach(bool close_fd);

#endif
