/* What the program sees of a socket whose chain is being set up in the
 * background: what the kernel shows for a slow direct connect (async.h).
 *
 * Each descriptor's registry entry is collected lazily, by the first hook
 * that finds its set-up ended: the mark goes (and the recorded peer with
 * it after a failure), and a failure's error is handed out exactly once,
 * by whichever comes first of SO_ERROR, I/O and connect() -- the calls
 * that consume the kernel's sk_err. Handing it out also consumes the
 * kernel's own pending error (the driver's disconnect leaves ECONNRESET
 * there), so the next SO_ERROR reads 0, as after a direct failure. */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "async.h"
#include "async_slot.h"
#include "fdreg.h"
#include "real.h"

/* A descriptor the registry does not know: a set-up of its socket that
 * this process counts (the socket was dup()ed before connect(), or the
 * copy came from elsewhere). */
static bool find(int fd, struct sfy_aslot **s, uint32_t *gen)
{
	if (!sfy_async_any())
		return false;
	struct stat st;
	int e = errno;
	bool sock = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
	errno = e;
	return sock && sfy_aslot_find(st.st_dev, st.st_ino, s, gen);
}

/* fd's set-up: -1 none; else its state, 0 when the slot no longer tells
 * (*s NULL or a stale generation: the set-up ended long ago). A descriptor
 * found by identity is adopted (registered like a dup()) when adopt, so
 * that its close() counts and its next look is the fast one. */
/* A set-up's state as this process may rely on it: one whose owner is
 * gone is ended here (sfy_aslot_reap). */
static int state_of(int fd, struct sfy_aslot *s, uint32_t gen)
{
	int st = sfy_aslot_state(s, gen);
	if (st == SFY_ASLOT_PENDING && !sfy_aslot_mine(s)) {
		sfy_aslot_reap(s, gen);
		st = sfy_aslot_state(s, gen);
		if (st == SFY_ASLOT_FAILED) {
			/* Mid-handshake with hop 1: as after any failure, no
			 * byte of the program's may reach it. */
			struct sockaddr sa = { .sa_family = AF_UNSPEC };
			int e = errno;
			(void)sfy_real()->connect(fd, &sa, sizeof(sa));
			errno = e;
		}
	}
	return st;
}

static int look_as(int fd, struct sfy_aslot **s, uint32_t *gen, bool adopt)
{
	if (sfy_fdreg_pending_get(fd, s, gen))
		return *s ? state_of(fd, *s, *gen) : 0;
	if (!find(fd, s, gen))
		return -1;
	int st = state_of(fd, *s, *gen);
	if (adopt && st == SFY_ASLOT_PENDING && sfy_fdreg_pending_set(fd, *s, *gen) == 0) {
		struct sockaddr_in6 peer;
		unsigned n = sfy_aslot_peer(*s, (struct sockaddr *)&peer, sizeof(peer));
		if (n)
			sfy_fdreg_peer_set(fd, (struct sockaddr *)&peer, n);
	}
	return st;
}

static int look(int fd, struct sfy_aslot **s, uint32_t *gen)
{
	return look_as(fd, s, gen, true);
}

static void consume_kernel_error(int fd)
{
	int e = errno, v;
	socklen_t l = sizeof(v);
	(void)sfy_real()->getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &l);
	errno = e;
}

/* An ended set-up, seen through fd: collected. Returns the failure's
 * -errno when this call is the one to report it, else 0. A failed one
 * stays marked until connect() is called again (connect()), which the
 * kernel answers with the error, or ECONNABORTED once it was read: only
 * then is the socket an unconnected one again. */
static int collect(int fd, struct sfy_aslot *s, uint32_t gen, int st, bool connect)
{
	if (s)
		sfy_aslot_seen_end(s, gen);
	if (st == SFY_ASLOT_OK) {
		sfy_fdreg_pending_drop(fd, true);
		return 0;
	}
	if (st == SFY_ASLOT_FAILED) {
		int err = sfy_aslot_take_error(s, gen);
		if (err)
			consume_kernel_error(fd);
		if (connect) {
			sfy_fdreg_pending_drop(fd, false);
			return -(err ? err : ECONNABORTED);
		}
		return -err;
	}
	/* Stale: connected or not, the kernel knows. */
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int e = errno;
	bool up = sfy_real()->getpeername(fd, (struct sockaddr *)&ss, &sl) == 0;
	errno = e;
	sfy_fdreg_pending_drop(fd, up);
	return 0;
}

static bool nonblocking(int fd)
{
	int e = errno;
	int fl = sfy_real()->fcntl(fd, F_GETFL);
	errno = e;
	return fl >= 0 && (fl & O_NONBLOCK);
}

/* Here, with sfy_async_pending(), the two names the readiness layer
 * knows (its unit test stands in for both). */
atomic_int sfy_async_count;

bool sfy_async_pending(int fd)
{
	struct sfy_aslot *s;
	uint32_t gen;
	return look_as(fd, &s, &gen, false) == SFY_ASLOT_PENDING;
}

bool sfy_async_pending_here(int fd)
{
	struct sfy_aslot *s;
	uint32_t gen;
	return look_as(fd, &s, &gen, false) == SFY_ASLOT_PENDING && sfy_aslot_mine(s);
}

int sfy_async_io(int fd, int msgflags)
{
	for (;;) {
		struct sfy_aslot *s;
		uint32_t gen;
		int st = look(fd, &s, &gen);
		if (st < 0)
			return 0;
		if (st != SFY_ASLOT_PENDING)
			return collect(fd, s, gen, st, false);
		/* The program cleared O_NONBLOCK: its I/O waits for the end,
		 * as the kernel's would for a connect in progress. */
		if ((msgflags & MSG_DONTWAIT) || nonblocking(fd))
			return -EAGAIN;
		sfy_aslot_wait(s, gen);
	}
}

bool sfy_async_so_error(int fd, int *err)
{
	struct sfy_aslot *s;
	uint32_t gen;
	int st = look(fd, &s, &gen);
	if (st < 0)
		return false;
	if (st == SFY_ASLOT_PENDING) {
		/* The kernel's own error belongs to the driver's steps now. */
		*err = 0;
		return true;
	}
	*err = -collect(fd, s, gen, st, false);
	return *err != 0;
}

int sfy_async_reconnect(int fd)
{
	struct sfy_aslot *s;
	uint32_t gen;
	int st = look(fd, &s, &gen);
	if (st < 0)
		return 1;
	if (st == SFY_ASLOT_PENDING)
		return -EALREADY;
	int r = collect(fd, s, gen, st, true);
	return r < 0 ? r : 1;
}

int sfy_async_getpeername(int fd)
{
	struct sfy_aslot *s;
	uint32_t gen;
	int st = look(fd, &s, &gen);
	if (st == SFY_ASLOT_PENDING || st == SFY_ASLOT_FAILED)
		return -ENOTCONN;       /* a failure stays for SO_ERROR to report */
	if (st >= 0)
		collect(fd, s, gen, st, false);
	return 0;
}

bool sfy_async_shutdown(int fd)
{
	struct sfy_aslot *s;
	uint32_t gen;
	if (look(fd, &s, &gen) != SFY_ASLOT_PENDING)
		return false;
	/* The kernel disconnects a connecting socket on shutdown(): the
	 * driver does, and we return only once it no longer touches the
	 * socket, so the program may connect it again at once. */
	sfy_aslot_abort(s, gen);
	sfy_aslot_wait(s, gen);
	return true;
}
