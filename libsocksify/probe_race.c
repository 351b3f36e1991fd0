/* The first connection is kept aside (a duplicate descriptor) while the
 * program's fd number gets a fresh socket (sfy_sock_replace) for the
 * step-by-step attempt, which runs on a short-lived thread so the first
 * can be waited on at the same time; the winner ends up under the
 * program's number. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handshake.h"
#include "io.h"
#include "probe_race.h"
#include "real.h"
#include "sock.h"
#include "thread.h"

struct runner {
	struct sfy_race *rc;
	int fd, efd;
	int64_t deadline;
};

static void *run_second(void *arg)
{
	struct runner *ru = arg;
	ru->rc->second_err = ru->rc->second(ru->rc->arg, ru->fd, ru->deadline);
	uint64_t one = 1;
	/* The waiter polls efd; a failed write only delays it to the deadline. */
	(void)!sfy_real()->write(ru->efd, &one, sizeof(one));
	return NULL;
}

/* Puts the connection kept in saved back under fd and closes saved. */
static void restore(int saved, int fd, int fdfl)
{
	sfy_real()->dup3(saved, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0);
	sfy_real()->close(saved);
}

static int64_t left_ms(int64_t deadline)
{
	int64_t l = deadline - sfy_now_ms();
	return l < 0 ? 0 : l > 60000 ? 60000 : l;
}

enum sfy_race_winner sfy_probe_race(int fd, int64_t deadline, struct sfy_race *rc)
{
	rc->first_err = rc->second_err = -ETIMEDOUT;
	rc->first_closed = false;
	int fdfl = sfy_real()->fcntl(fd, F_GETFD);
	int saved = sfy_real()->fcntl(fd, F_DUPFD_CLOEXEC, 0);
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fdfl < 0 || saved < 0 || efd < 0 ||
	    sfy_sock_replace(fd, sfy_sock_family(fd), rc->bound, false) < 0) {
		/* No second connection possible: wait for the first alone. */
		if (saved >= 0)
			sfy_real()->close(saved);
		if (efd >= 0)
			sfy_real()->close(efd);
		rc->first_err = rc->finish_first(rc->arg, fd, deadline);
		rc->first_closed = rc->first_err == -SFY_ESTEPWISE;
		return rc->first_closed ? SFY_RACE_NONE : SFY_RACE_FIRST;
	}
	struct runner ru = { rc, fd, efd, deadline };
	pthread_t t;
	bool started = sfy_thread_start(&t, NULL, run_second, &ru) == 0;
	if (!started)
		rc->second_err = -EAGAIN;

	enum sfy_race_winner w = SFY_RACE_NONE;
	bool first_done = false, second_done = !started;
	while (!(first_done && second_done) && w == SFY_RACE_NONE) {
		struct pollfd pf[2] = { { saved, POLLIN, 0 }, { efd, POLLIN, 0 } };
		struct pollfd *p = first_done ? &pf[1] : pf;
		nfds_t np = (first_done ? 0 : 1) + (second_done ? 0 : 1);
		int n = sfy_real()->poll(p, np, (int)left_ms(deadline));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;                  /* the deadline */
		if (!first_done && pf[0].revents) {
			first_done = true;
			rc->first_err = rc->finish_first(rc->arg, saved, deadline);
			rc->first_closed = rc->first_err == -SFY_ESTEPWISE;
			/* Any reply is the proxy answering the pipelined request. */
			if (!rc->first_closed)
				w = SFY_RACE_FIRST;
		}
		if (!second_done && pf[1].revents) {
			second_done = true;
			pthread_join(t, NULL);
			started = false;
			/* Both ready in one wake-up: the first wins. */
			if (rc->second_err == 0 && w == SFY_RACE_NONE)
				w = SFY_RACE_SECOND;
		}
	}
	rc->first_late = false;
	if (w == SFY_RACE_SECOND && !first_done) {
		struct pollfd pf = { saved, POLLIN, 0 };
		char b;
		int64_t until = sfy_now_ms() + SFY_RACE_GRACE_MS;
		if (until > deadline)
			until = deadline;   /* connect() never outlasts its timeout */
		int n;
		while ((n = sfy_real()->poll(&pf, 1, (int)left_ms(until))) < 0 && errno == EINTR)
			;
		rc->first_late = n > 0 &&
				 sfy_real()->recv(saved, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
	}
	if (started) {
		/* The loser (or both, at the deadline): make its I/O fail now. */
		sfy_real()->shutdown(fd, SHUT_RDWR);
		pthread_join(t, NULL);
	}
	sfy_real()->close(efd);
	if (w == SFY_RACE_SECOND) {
		sfy_real()->close(saved);
		return w;
	}
	restore(saved, fd, fdfl);
	return w;
}
