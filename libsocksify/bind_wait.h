/* Between bind.c (the request, the records, bind()/getsockname()/
 * listen()) and bind_wait.c (the wait for the second reply, the loopback
 * connector, accept()): a listening socket's BIND record and the helpers
 * both use. Internal to those two files. */
#ifndef SFY_BIND_WAIT_H
#define SFY_BIND_WAIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"
#include "bind.h"

enum bstate { B_ASKED, B_TRIGGERING, B_FAILED, B_BOUND, B_LISTENING, B_READY, B_BROKEN, B_DONE };

struct sfy_bind {
	struct sfy_bind *prev, *next;   /* every record of the process (fork) */
	atomic_int refs;
	/* The rest under sfy_bind_mu. */
	enum bstate st;
	int err;                        /* FAILED: listen()'s -errno */
	int family;                     /* the listening socket's */
	enum sfy_bind_at at;
	uint16_t port;                  /* the port the program asked for */
	struct sockaddr_storage asked;  /* AT_HANDED: the address it asked for */
	socklen_t asked_len;
	bool s4;                        /* the last hop is SOCKS4: 8-byte replies */
	int bfd, cfd, wake;             /* BIND connection, connector, wake-up; -1 */
	bool thread;
	pthread_t thr;
	struct sockaddr_storage lsn;    /* the real listener's address */
	socklen_t lsn_len;
	struct sockaddr_storage first;  /* the first reply, listener's family */
	socklen_t first_len;
	struct sockaddr_storage cloc;   /* the connector's own address */
	socklen_t cloc_len;
	struct sockaddr_storage peer;   /* getpeername() of the accepted socket */
	socklen_t peer_len;
	char what[960];                 /* "BIND for HOST:PORT via HOP" */
};

/* Guards every record's fields after refs (bind.c; re-made in a fork()ed
 * child). */
extern pthread_mutex_t sfy_bind_mu;

/* bind.c */
/* Closes *fd if open (the real close) and sets it to -1. */
void sfy_bind_close_priv(int *fd);
/* fd moved to a number >= 100, close-on-exec (the old one closed). */
int sfy_bind_private_fd(int fd);
/* a as a sockaddr of family (v4-mapped into AF_INET6); 0 when it cannot be. */
socklen_t sfy_bind_in_family(const struct sfy_addr *a, int family, struct sockaddr_storage *ss);
/* A name, or an all-zero address. */
bool sfy_bind_zero_ip(const struct sfy_addr *a);
/* ss (n bytes) into the caller's sa and len, truncated as getsockname() does. */
void sfy_bind_copy_out(const struct sockaddr_storage *ss, socklen_t n, struct sockaddr *sa,
		       socklen_t *len);

/* bind_wait.c */
/* Listening for real at lsn (the real listener's address): starts the
 * waiter thread (LISTENING). 0 or -errno. */
int sfy_bind_start_waiter(struct sfy_bind *b, const struct sockaddr_storage *lsn,
			  socklen_t lsn_len);
/* Ends the waiter (a wake-up, then a join) and closes the connector. Not
 * under sfy_bind_mu. */
void sfy_bind_stop_waiter(struct sfy_bind *b);

#endif
