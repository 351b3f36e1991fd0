/* The destination a program asked for, per tunnelled socket, so that
 * getpeername() answers it instead of the first hop. Entries are keyed by fd
 * and checked against the socket's inode, so a stale entry of a closed and
 * reused descriptor number is never returned (no close() hook needed). */
#ifndef SFY_PEER_H
#define SFY_PEER_H

#include <stdbool.h>
#include <sys/socket.h>

void sfy_peer_set(int fd, const struct sockaddr *sa, socklen_t len);
/* Copies the stored address like getpeername() does (truncating to *len and
 * setting *len to the full length). False if fd has no entry. */
bool sfy_peer_get(int fd, struct sockaddr *sa, socklen_t *len);

#endif
