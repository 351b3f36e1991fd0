/* The pending set-ups of non-blocking connects without a network
 * (async_slot.c, async_view.c, the PENDING entries of fdreg.c): a slot's
 * life, the error handed out once, stale slots and sockets, the last
 * descriptor's close aborting, blocking I/O waiting, and a fork()ed child
 * seeing the parent's set-up (and a dead owner's).
 *
 * The driver and the chain are not linked: the test plays the driver's
 * part with sfy_aslot_end(). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "async.h"
#include "async_slot.h"
#include "fdreg.h"

static int tcp_socket(bool nonblock)
{
	int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
	assert_true(fd >= 0);
	return fd;
}

/* A socket marked pending, as connect() leaves it. */
static struct sfy_aslot *pend(int fd, uint32_t *gen)
{
	struct sfy_aslot *s = sfy_aslot_claim(fd, NULL, 0, gen);
	assert_non_null(s);
	assert_int_equal(sfy_fdreg_pending_set(fd, s, *gen), 0);
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(80),
				   .sin_addr.s_addr = htonl(0xc0000207) };
	assert_int_equal(sfy_fdreg_peer_set(fd, (struct sockaddr *)&dst, sizeof(dst)), 0);
	return s;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ life */

static void test_lifecycle_ok(void **state)
{
	(void)state;
	int before = atomic_load(&sfy_async_count);
	int fd = tcp_socket(true);
	uint32_t gen;
	struct sfy_aslot *s = pend(fd, &gen);
	assert_int_equal(atomic_load(&sfy_async_count), before + 1);
	assert_true(sfy_async_any());
	assert_true(sfy_async_pending(fd));
	assert_int_equal(sfy_aslot_state(s, gen), SFY_ASLOT_PENDING);

	/* While pending: what the kernel shows for a connect in progress. */
	int err = -1;
	assert_true(sfy_async_so_error(fd, &err));
	assert_int_equal(err, 0);
	assert_int_equal(sfy_async_io(fd, 0), -EAGAIN);
	assert_int_equal(sfy_async_reconnect(fd), -EALREADY);
	assert_int_equal(sfy_async_getpeername(fd), -ENOTCONN);

	sfy_aslot_end(s, gen, 0, false);
	assert_int_equal(sfy_aslot_state(s, gen), SFY_ASLOT_OK);
	assert_int_equal(atomic_load(&sfy_async_count), before);
	assert_false(sfy_async_pending(fd));
	/* Collected by the first look: the mark goes, the peer stays. */
	assert_int_equal(sfy_async_getpeername(fd), 0);
	assert_false(sfy_fdreg_has(fd, SFY_FDREG_PENDING));
	assert_true(sfy_fdreg_has(fd, SFY_FDREG_PEER));
	assert_int_equal(sfy_async_io(fd, 0), 0);
	assert_false(sfy_async_so_error(fd, &err));

	/* A succeeded slot is free at once; the old generation is stale. */
	uint32_t gen2;
	struct sfy_aslot *s2 = NULL;
	for (int i = 0; i < SFY_ASLOT_N && s2 != s; i++) {
		s2 = sfy_aslot_claim(fd, NULL, 0, &gen2);
		assert_non_null(s2);
		if (s2 != s)
			sfy_aslot_end(s2, gen2, 0, false);
	}
	assert_ptr_equal(s2, s);
	assert_int_not_equal(gen2, gen);
	assert_int_equal(sfy_aslot_state(s, gen), 0);
	sfy_aslot_end(s2, gen2, 0, false);
	sfy_fdreg_close(fd);
	close(fd);
}

static void test_error_once(void **state)
{
	(void)state;
	int fd = tcp_socket(true);
	int dupfd = dup(fd);
	uint32_t gen;
	struct sfy_aslot *s = pend(fd, &gen);
	sfy_fdreg_dup(fd, dupfd);
	assert_true(sfy_fdreg_has(dupfd, SFY_FDREG_PENDING));

	sfy_aslot_end(s, gen, ECONNREFUSED, false);
	/* A failure is not a connection, and getpeername() leaves the error
	 * for SO_ERROR. */
	assert_int_equal(sfy_async_getpeername(fd), -ENOTCONN);
	assert_int_equal(sfy_async_getpeername(dupfd), -ENOTCONN);
	int err = 0;
	assert_true(sfy_async_so_error(fd, &err));
	assert_int_equal(err, ECONNREFUSED);
	/* Once per socket: not again on fd, nor through its dup. */
	assert_false(sfy_async_so_error(fd, &err));
	assert_false(sfy_async_so_error(dupfd, &err));
	assert_int_equal(sfy_async_io(dupfd, 0), 0);
	/* connect() again: the kernel's ECONNABORTED once the error was
	 * read, and only then an unconnected socket. */
	assert_int_equal(sfy_async_reconnect(fd), -ECONNABORTED);
	assert_false(sfy_fdreg_has(fd, SFY_FDREG_PENDING | SFY_FDREG_PEER));
	assert_int_equal(sfy_async_reconnect(fd), 1);
	assert_int_equal(sfy_async_reconnect(dupfd), -ECONNABORTED);
	assert_false(sfy_fdreg_has(dupfd, SFY_FDREG_PENDING | SFY_FDREG_PEER));
	close(dupfd);
	close(fd);
}

static void test_error_via_io_and_connect(void **state)
{
	(void)state;
	int a = tcp_socket(true), b = tcp_socket(true);
	uint32_t ga, gb;
	struct sfy_aslot *sa = pend(a, &ga), *sb = pend(b, &gb);
	sfy_aslot_end(sa, ga, ETIMEDOUT, false);
	sfy_aslot_end(sb, gb, EHOSTUNREACH, false);
	assert_int_equal(sfy_async_io(a, MSG_DONTWAIT), -ETIMEDOUT);
	assert_int_equal(sfy_async_io(a, MSG_DONTWAIT), 0);
	assert_int_equal(sfy_async_reconnect(a), -ECONNABORTED);
	assert_int_equal(sfy_async_reconnect(b), -EHOSTUNREACH);
	assert_int_equal(sfy_async_reconnect(b), 1);
	/* Reported by connect() itself: never by SO_ERROR. */
	int c = tcp_socket(true);
	uint32_t gc;
	struct sfy_aslot *sc = pend(c, &gc);
	sfy_aslot_end(sc, gc, EACCES, true);
	int err;
	assert_false(sfy_async_so_error(c, &err));
	close(a);
	close(b);
	close(c);
}

/* ------------------------------------------------------------ identity */

static void test_identity_mismatch(void **state)
{
	(void)state;
	int fd = tcp_socket(true);
	uint32_t gen;
	struct sfy_aslot *s = pend(fd, &gen);
	/* Closed where no hook saw it, the number reused by another socket:
	 * that socket is not pending. */
	int other = tcp_socket(true);
	assert_int_equal(dup2(other, fd), fd);
	close(other);
	assert_false(sfy_async_pending(fd));
	assert_int_equal(sfy_async_io(fd, 0), 0);
	assert_false(sfy_fdreg_has(fd, SFY_FDREG_PENDING));
	/* The slot itself knows its socket. */
	assert_false(sfy_aslot_is(s, gen, 0, 0));
	sfy_aslot_end(s, gen, 0, false);
	close(fd);
}

static void test_stale_slot(void **state)
{
	(void)state;
	int fd = tcp_socket(true);
	uint32_t gen;
	struct sfy_aslot *s = pend(fd, &gen);
	int d = dup(fd);
	sfy_fdreg_dup(fd, d);
	sfy_aslot_end(s, gen, 0, false);
	/* fd collects; the slot is reused by another socket before d looks. */
	assert_int_equal(sfy_async_io(fd, 0), 0);
	int x = tcp_socket(true);
	uint32_t gx = 0;
	struct sfy_aslot *sx = NULL;
	for (int i = 0; i < SFY_ASLOT_N && sx != s; i++) {
		sx = sfy_aslot_claim(x, NULL, 0, &gx);
		if (sx != s)
			sfy_aslot_end(sx, gx, 0, false);
	}
	assert_ptr_equal(sx, s);
	/* d's reference is stale: not pending, and the kernel (not
	 * connected) says the peer record goes. */
	assert_false(sfy_async_pending(d));
	assert_int_equal(sfy_async_getpeername(d), 0);
	assert_false(sfy_fdreg_has(d, SFY_FDREG_PENDING | SFY_FDREG_PEER));
	sfy_aslot_end(sx, gx, 0, false);
	close(x);
	close(d);
	close(fd);
}

static void test_dup_before_connect(void **state)
{
	(void)state;
	/* A descriptor the registry never saw (dup()ed before connect())
	 * is found by the socket's identity, and adopted. */
	int fd = tcp_socket(true);
	int d = dup(fd);
	uint32_t gen;
	struct sfy_aslot *s = sfy_aslot_claim(fd, NULL, 0, &gen);
	assert_non_null(s);
	assert_int_equal(sfy_fdreg_pending_set(fd, s, gen), 0);
	assert_false(sfy_fdreg_has(d, SFY_FDREG_ANY));
	assert_true(sfy_async_pending(d));
	assert_false(sfy_fdreg_has(d, SFY_FDREG_ANY));   /* looked, not adopted */
	assert_int_equal(sfy_async_io(d, 0), -EAGAIN);
	assert_true(sfy_fdreg_has(d, SFY_FDREG_PENDING));
	/* Another socket is not mistaken for it. */
	int other = tcp_socket(true);
	assert_false(sfy_async_pending(other));
	assert_int_equal(sfy_async_io(other, 0), 0);
	/* Still found after the end: the error goes out once, on either. */
	int e = tcp_socket(true);
	int ed = dup(e);
	uint32_t ge;
	struct sfy_aslot *se = sfy_aslot_claim(e, NULL, 0, &ge);
	assert_int_equal(sfy_fdreg_pending_set(e, se, ge), 0);
	sfy_aslot_end(se, ge, EHOSTUNREACH, false);
	int err = 0;
	assert_true(sfy_async_so_error(ed, &err));
	assert_int_equal(err, EHOSTUNREACH);
	assert_false(sfy_async_so_error(e, &err));
	sfy_aslot_end(s, gen, 0, false);
	sfy_fdreg_close(fd);
	sfy_fdreg_close(d);
	sfy_fdreg_close(e);
	close(fd);
	close(d);
	close(e);
	close(ed);
	close(other);
}

/* ------------------------------------------------------------ abort */

static void test_last_close_aborts(void **state)
{
	(void)state;
	int fd = tcp_socket(true);
	uint32_t gen;
	struct sfy_aslot *s = pend(fd, &gen);
	int d = dup(fd);
	sfy_fdreg_dup(fd, d);
	assert_true(sfy_fdreg_close(fd));
	assert_false(sfy_aslot_aborted(s, gen));
	assert_false(sfy_aslot_orphan(s, gen));
	assert_true(sfy_async_pending(d));
	assert_true(sfy_fdreg_close(d));
	assert_true(sfy_aslot_aborted(s, gen));
	assert_true(sfy_aslot_orphan(s, gen));
	sfy_aslot_end(s, gen, ECONNRESET, true);
	close(d);
	close(fd);
}

/* ------------------------------------------------------------ blocking I/O */

struct waiter {
	int fd;
	int r;
	_Atomic bool done;
};

static void *wait_io(void *arg)
{
	struct waiter *w = arg;
	w->r = sfy_async_io(w->fd, 0);
	atomic_store(&w->done, true);
	return NULL;
}

static void test_blocking_io_waits(void **state)
{
	(void)state;
	/* The program cleared O_NONBLOCK after connect(): I/O waits. */
	int fd = tcp_socket(true);
	uint32_t gen;
	struct sfy_aslot *s = pend(fd, &gen);
	assert_int_equal(fcntl(fd, F_SETFL, 0), 0);
	/* MSG_DONTWAIT still says EAGAIN. */
	assert_int_equal(sfy_async_io(fd, MSG_DONTWAIT), -EAGAIN);
	struct waiter w = { .fd = fd, .r = 1 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, wait_io, &w), 0);
	sleep_ms(100);
	assert_false(atomic_load(&w.done));
	sfy_aslot_end(s, gen, ECONNREFUSED, false);
	pthread_join(t, NULL);
	assert_int_equal(w.r, -ECONNREFUSED);
	close(fd);
}

/* ------------------------------------------------------------ fork */

static void test_fork_shares(void **state)
{
	(void)state;
	int fd = tcp_socket(true);
	uint32_t gen;
	struct sfy_aslot *s = pend(fd, &gen);
	int go[2];
	assert_int_equal(pipe(go), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The child sees the parent's set-up: EAGAIN, then (blocking)
		 * waits for the parent's end and gets its error. Its close of
		 * its copy aborts nothing. */
		int code = 0;
		if (!sfy_async_any() || !sfy_async_pending(fd))
			code |= 1;
		if (sfy_async_io(fd, 0) != -EAGAIN)
			code |= 2;
		fcntl(fd, F_SETFL, 0);
		if (write(go[1], "x", 1) != 1)
			code |= 4;
		if (sfy_async_io(fd, 0) != -ECONNREFUSED)
			code |= 8;
		if (sfy_async_any())
			code |= 16;
		_exit(code);
	}
	char c;
	assert_int_equal(read(go[0], &c, 1), 1);
	sleep_ms(50);
	assert_int_equal(sfy_aslot_state(s, gen), SFY_ASLOT_PENDING);
	sfy_aslot_end(s, gen, ECONNREFUSED, false);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* Once per socket, across processes: the child took it. */
	int err;
	assert_false(sfy_async_so_error(fd, &err));
	close(go[0]);
	close(go[1]);
	close(fd);
}

static void test_fork_child_close_no_abort(void **state)
{
	(void)state;
	int fd = tcp_socket(true);
	uint32_t gen;
	struct sfy_aslot *s = pend(fd, &gen);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		sfy_fdreg_close(fd);
		close(fd);
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_false(sfy_aslot_aborted(s, gen));
	assert_true(sfy_async_pending(fd));
	sfy_aslot_end(s, gen, 0, false);
	sfy_fdreg_close(fd);
	close(fd);
}

static void test_dead_owner(void **state)
{
	(void)state;
	int fd = tcp_socket(false);
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The owner starts a set-up and dies without ending it. */
		uint32_t g;
		struct sfy_aslot *cs = sfy_aslot_claim(fd, NULL, 0, &g);
		struct { struct sfy_aslot *s; uint32_t g; } m = { cs, g };
		_exit(cs && write(p[1], &m, sizeof(m)) == sizeof(m) ? 0 : 1);
	}
	struct { struct sfy_aslot *s; uint32_t g; } m;
	assert_int_equal(read(p[0], &m, sizeof(m)), sizeof(m));
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(sfy_aslot_state(m.s, m.g), SFY_ASLOT_PENDING);
	sfy_aslot_wait(m.s, m.g);
	assert_int_equal(sfy_aslot_state(m.s, m.g), SFY_ASLOT_FAILED);
	assert_int_equal(sfy_aslot_take_error(m.s, m.g), ECONNABORTED);
	close(p[0]);
	close(p[1]);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle_ok),
		cmocka_unit_test(test_error_once),
		cmocka_unit_test(test_error_via_io_and_connect),
		cmocka_unit_test(test_identity_mismatch),
		cmocka_unit_test(test_stale_slot),
		cmocka_unit_test(test_dup_before_connect),
		cmocka_unit_test(test_last_close_aborts),
		cmocka_unit_test(test_blocking_io_waits),
		cmocka_unit_test(test_fork_shares),
		cmocka_unit_test(test_fork_child_close_no_abort),
		cmocka_unit_test(test_dead_owner),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
