/* The pipelining probe's race. A pipelined SOCKS5 hop that stays silent
 * after its method reply has either dropped our early bytes (microsocks) or
 * is waiting for a slow destination. Only evidence tells them apart: keep
 * waiting on the first connection while a fresh step-by-step connection to
 * the same hop (through the same hops before it, for the same target) is
 * built; whichever answers first wins. The target sees at most two
 * attempts, and a slow target is never taken for a dropping proxy. */
#ifndef SFY_PROBE_RACE_H
#define SFY_PROBE_RACE_H

#include <stdbool.h>
#include <stdint.h>

enum sfy_race_winner {
	SFY_RACE_NONE,          /* neither got through; *err says why */
	SFY_RACE_FIRST,         /* the pipelined connection answered */
	SFY_RACE_SECOND,        /* only the step-by-step one completed */
};

struct sfy_race {
	/* Reads the rest of the first connection's replies on fd: 0, a
	 * negative errno, or -SFY_ESTEPWISE (closed without a byte). */
	int (*finish_first)(void *arg, int fd, int64_t deadline);
	/* Builds the step-by-step connection on fd (a fresh socket made like
	 * the program's): 0 or a negative errno. Runs on its own thread; it
	 * must give up promptly when fd is shut down. */
	int (*second)(void *arg, int fd, int64_t deadline);
	void *arg;
	const struct sockaddr_storage *bound;   /* the program's, or NULL */
	int first_err, second_err;      /* the results, for the caller's log */
	bool first_closed;              /* the first closed without a byte */
	bool first_late;                /* the second won, but the first answered
					   within SFY_RACE_GRACE_MS after it: a slow
					   target, not a proxy that drops bytes */
};

/* After the step-by-step connection wins, how long the first may still
 * answer to show it was only slow. Both connections wait on the same slow
 * target (a late DNS answer, a slow accept), so their replies come close
 * together, in either order; a proxy that dropped the pipelined bytes
 * never answers at all. The grace ends at the hop's deadline at the
 * latest. */
#define SFY_RACE_GRACE_MS 500

/* fd is the program's descriptor, connected through the silent hop. On
 * return fd holds the winner's connection (the program's number, flags and
 * FD_CLOEXEC kept); the loser is closed. Returns the winner; with
 * SFY_RACE_NONE, fd holds the first connection. SFY_RACE_FIRST may carry
 * a failure in first_err (the proxy's error reply, or the deadline). */
enum sfy_race_winner sfy_probe_race(int fd, int64_t deadline, struct sfy_race *rc);

#endif
