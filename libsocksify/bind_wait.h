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
	struct sockaddr_storage asked;  /* AT_HANDED/AT_PROXIED: the address it
					   asked for (which connection the BIND
					   belongs to), port 0 */
	socklen_t asked_len;            /* by family, never bind()'s length */
	bool moved;                     /* AT_HANDED bound to the wildcard instead:
					   getsockname() shows asked until BIND */
	bool s4;                        /* the last hop is SOCKS4: 8-byte replies */
	/* Our descriptors (>= 100, close-on-exec; -1 when none). The program
	 * does not know them, so it may close or dup2() over their numbers:
	 * sfy_bind_evict() then moves them first, and the waiter, which polls
	 * them, takes the new numbers (gen/seen) before the old ones go. */
	int rfd;                        /* TRIGGERING: the request's socket */
	int bfd, cfd, wake;             /* BIND connection, connector, wake-up */
	unsigned gen, seen;             /* renumberings / the waiter's ack */
	bool thread;                    /* thr is to be joined */
	bool running;                   /* the waiter has not returned yet */
	bool stop;                      /* the waiter is to return */
	pthread_t thr;
	int cerr;                       /* the connector could not be made: -errno */
	struct sockaddr_storage cto;    /* where the connector connects */
	socklen_t cto_len;
	struct sockaddr_storage first;  /* the first reply, listener's family */
	socklen_t first_len;
	struct sockaddr_storage cloc;   /* the connector's own address */
	socklen_t cloc_len;
	struct sockaddr_storage peer;   /* getpeername() of the accepted socket */
	socklen_t peer_len;
	char what[960];                 /* "BIND for HOST:PORT via HOP" */
};

/* Guards every record's fields after refs (bind.c; re-made in a fork()ed
 * child); sfy_bind_cv: a record's state or gen/seen/running changed. Taken
 * through sfy_bind_lock()/sfy_bind_unlock(), which note that this thread
 * holds it (a signal handler's close() must not wait for it). */
extern pthread_mutex_t sfy_bind_mu;
extern pthread_cond_t sfy_bind_cv;
void sfy_bind_lock(void);
void sfy_bind_unlock(void);

/* bind.c */
/* Closes *fd if open (the real close) and sets it to -1. Under
 * sfy_bind_mu for a record's descriptor (the number is ours until then). */
void sfy_bind_close_priv(int *fd);
/* A name, or an all-zero address. */
bool sfy_bind_zero_ip(const struct sfy_addr *a);

/* bind_wait.c */
/* Listening for real at lsn (the real listener's address): makes the
 * connector (bound, not connected) and starts the waiter thread
 * (LISTENING). 0 or -errno. */
int sfy_bind_start_waiter(struct sfy_bind *b, const struct sockaddr_storage *lsn,
			  socklen_t lsn_len);
/* Ends the waiter (a wake-up, then a join) and closes the connector. Not
 * under sfy_bind_mu. */
void sfy_bind_stop_waiter(struct sfy_bind *b);

#endif
