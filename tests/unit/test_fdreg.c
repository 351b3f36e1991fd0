/* fdreg.c: the per-fd registry. Entries against the socket's identity (a
 * number closed behind the hooks' back and reused), UDP session references,
 * control tags, dup sharing, close ranges, fork/vfork children, threads.
 *
 * The unit test links no hooks: close()/dup2() here are libc's, so they
 * play the part of a close the hooks did not see. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fdreg.h"
#include "udp_assoc.h"

/* Beyond the table: 1024 chunks of 1024. */
#define FD_LIMIT (1 << 20)

/* A fresh socket of type on descriptor number fd (replacing what was
 * there, as a program's open would reuse a free number). */
static int sock_at(int fd, int type)
{
	int s = socket(AF_INET, type, 0);
	assert_true(s >= 0);
	if (s != fd) {
		assert_int_equal(dup2(s, fd), fd);
		close(s);
	}
	return fd;
}

static struct sockaddr_in sin4(const char *ip, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static int refs(struct sfy_udp_sess *s)
{
	return atomic_load(&s->refs);
}

/* ------------------------------------------------------------ basics */

static void test_empty(void **state)
{
	(void)state;
	static const int fds[] = { -1, 0, 5, 1023, 1024, 1 << 19, FD_LIMIT - 1, FD_LIMIT, 1 << 30 };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		assert_false(sfy_fdreg_has(fds[i], SFY_FDREG_ANY));
		assert_null(sfy_fdreg_udp_get(fds[i]));
		assert_false(sfy_fdreg_peer_get(fds[i], (struct sockaddr *)&ss, &sl));
		assert_false(sfy_fdreg_close(fds[i]));
	}
}

static void test_peer(void **state)
{
	(void)state;
	int fd = sock_at(40, SOCK_STREAM);
	struct sockaddr_in a = sin4("192.0.2.7", 443);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	/* The length the program passed is not what getpeername() says. */
	assert_int_equal(sfy_fdreg_peer_set(fd, (struct sockaddr *)&a, sizeof(ss)), 0);
	assert_true(sfy_fdreg_has(fd, SFY_FDREG_PEER));
	assert_false(sfy_fdreg_has(fd, SFY_FDREG_UDP | SFY_FDREG_CTL));
	assert_true(sfy_fdreg_peer_get(fd, (struct sockaddr *)&ss, &sl));
	assert_int_equal(sl, sizeof(a));
	assert_memory_equal(&ss, &a, sizeof(a));
	/* Truncated like getpeername(): the full length comes back. */
	struct sockaddr_in small = { 0 };
	sl = 4;
	assert_true(sfy_fdreg_peer_get(fd, (struct sockaddr *)&small, &sl));
	assert_int_equal(sl, sizeof(a));
	assert_memory_equal(&small, &a, 4);
	assert_int_equal(small.sin_addr.s_addr, 0);
	/* Only inet addresses of their full size. */
	struct sockaddr_un_like { sa_family_t f; char p[20]; } un = { AF_UNIX, "x" };
	assert_int_equal(sfy_fdreg_peer_set(fd, (struct sockaddr *)&un, sizeof(un)), -EAFNOSUPPORT);
	assert_int_equal(sfy_fdreg_peer_set(fd, (struct sockaddr *)&a, 8), -EAFNOSUPPORT);
	assert_true(sfy_fdreg_close(fd));
	assert_false(sfy_fdreg_has(fd, SFY_FDREG_ANY));
	sl = sizeof(ss);
	assert_false(sfy_fdreg_peer_get(fd, (struct sockaddr *)&ss, &sl));
	close(fd);
	/* Nothing is recorded for a number without a descriptor. */
	assert_int_equal(sfy_fdreg_peer_set(fd, (struct sockaddr *)&a, sizeof(a)), -EBADF);
	assert_false(sfy_fdreg_has(fd, SFY_FDREG_ANY));
}

static void test_out_of_range(void **state)
{
	(void)state;
	struct sfy_udp_sess *s = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
	struct sockaddr_in a = sin4("192.0.2.1", 1);
	assert_null(sfy_fdreg_udp_install(-1, s));
	assert_null(sfy_fdreg_udp_install(FD_LIMIT, s));
	assert_int_equal(sfy_fdreg_ctl_tag(FD_LIMIT, s), -EMFILE);
	assert_int_equal(sfy_fdreg_peer_set(FD_LIMIT, (struct sockaddr *)&a, sizeof(a)), -EBADF);
	assert_int_equal(refs(s), 1);
	sfy_udp_sess_put(s);
}

/* ------------------------------------------------------------ UDP, refcounts */

static void test_udp_install_get_close(void **state)
{
	(void)state;
	static const int fds[] = { 7, 1023, 1024, 5000 };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		int fd = sock_at(fds[i], SOCK_DGRAM);
		struct sfy_udp_sess *s = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
		assert_ptr_equal(sfy_fdreg_udp_install(fd, s), s);
		assert_int_equal(refs(s), 2);           /* ours + the entry's */
		assert_true(sfy_fdreg_has(fd, SFY_FDREG_UDP));
		assert_false(sfy_fdreg_has(fd + 1, SFY_FDREG_ANY));
		struct sfy_udp_sess *g = sfy_fdreg_udp_get(fd);
		assert_ptr_equal(g, s);
		assert_int_equal(refs(s), 3);
		sfy_udp_sess_put(g);
		assert_true(sfy_fdreg_close(fd));
		assert_false(sfy_fdreg_has(fd, SFY_FDREG_ANY));
		assert_null(sfy_fdreg_udp_get(fd));
		assert_int_equal(refs(s), 1);           /* still ours */
		sfy_udp_sess_put(s);
		close(fd);
	}
}

/* The loser of an install race gets the winner, with a reference; remove()
 * takes out only the session it names. */
static void test_udp_install_existing_remove(void **state)
{
	(void)state;
	int fd = sock_at(41, SOCK_DGRAM);
	struct sfy_udp_sess *a = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
	struct sfy_udp_sess *b = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET6);
	assert_ptr_equal(sfy_fdreg_udp_install(fd, a), a);
	assert_ptr_equal(sfy_fdreg_udp_install(fd, b), a);
	assert_int_equal(refs(a), 3);
	assert_int_equal(refs(b), 1);
	sfy_udp_sess_put(a);
	sfy_fdreg_udp_remove(fd, b);                    /* not fd's: nothing */
	assert_int_equal(refs(a), 2);
	sfy_fdreg_udp_remove(fd, a);
	assert_int_equal(refs(a), 1);
	assert_false(sfy_fdreg_has(fd, SFY_FDREG_ANY));
	assert_ptr_equal(sfy_fdreg_udp_install(fd, b), b);     /* a retry */
	assert_true(sfy_fdreg_close(fd));
	sfy_udp_sess_put(a);
	sfy_udp_sess_put(b);
	close(fd);
}

/* ------------------------------------------------------------ identity */

/* The bug this registry fixes: a UDP socket closed where no hook saw it,
 * its number reused by a TCP socket, which inherited the session. */
static void test_stale_udp_dropped(void **state)
{
	(void)state;
	int fd = sock_at(42, SOCK_DGRAM);
	struct sfy_udp_sess *s = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
	assert_ptr_equal(sfy_fdreg_udp_install(fd, s), s);
	close(fd);                                      /* behind the registry's back */
	sock_at(fd, SOCK_STREAM);
	assert_true(sfy_fdreg_has(fd, SFY_FDREG_UDP));  /* the hint may be stale... */
	assert_null(sfy_fdreg_udp_get(fd));             /* ...the lookup is not */
	assert_false(sfy_fdreg_has(fd, SFY_FDREG_ANY)); /* and it was dropped */
	assert_int_equal(refs(s), 1);                   /* with its reference */
	sfy_udp_sess_put(s);
	close(fd);
}

/* Closed and not reused (EBADF): dropped the same way. */
static void test_stale_ebadf(void **state)
{
	(void)state;
	int fd = sock_at(43, SOCK_STREAM);
	struct sockaddr_in a = sin4("192.0.2.8", 80);
	assert_int_equal(sfy_fdreg_peer_set(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	assert_false(sfy_fdreg_peer_get(fd, (struct sockaddr *)&ss, &sl));
	assert_false(sfy_fdreg_has(fd, SFY_FDREG_ANY));
}

/* A stale peer entry does not answer for the next socket, and registering
 * the new socket replaces what the old one left (its session released). */
static void test_stale_replaced_on_register(void **state)
{
	(void)state;
	int fd = sock_at(44, SOCK_DGRAM);
	struct sfy_udp_sess *s = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
	assert_ptr_equal(sfy_fdreg_udp_install(fd, s), s);
	close(fd);
	sock_at(fd, SOCK_STREAM);
	struct sockaddr_in a = sin4("192.0.2.9", 22);
	assert_int_equal(sfy_fdreg_peer_set(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(refs(s), 1);
	assert_false(sfy_fdreg_has(fd, SFY_FDREG_UDP));
	assert_true(sfy_fdreg_has(fd, SFY_FDREG_PEER));
	/* And the other way round: a peer entry does not survive into a new
	 * socket's UDP session. */
	close(fd);
	sock_at(fd, SOCK_DGRAM);
	assert_ptr_equal(sfy_fdreg_udp_install(fd, s), s);
	assert_false(sfy_fdreg_has(fd, SFY_FDREG_PEER));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	assert_false(sfy_fdreg_peer_get(fd, (struct sockaddr *)&ss, &sl));
	assert_true(sfy_fdreg_close(fd));
	sfy_udp_sess_put(s);
	close(fd);
}

/* A control connection closed behind our back and its number reused: the
 * session is dead, and its last reference must not close the program's new
 * socket on that number. */
static void test_stale_ctl_not_closed(void **state)
{
	(void)state;
	int ctl = sock_at(45, SOCK_STREAM);
	struct sfy_udp_sess *s = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
	assert_int_equal(sfy_fdreg_ctl_tag(ctl, s), 0);
	atomic_store(&s->ctl, ctl);
	assert_true(sfy_fdreg_has(ctl, SFY_FDREG_CTL));
	assert_null(sfy_fdreg_udp_get(ctl));            /* a tag is no session */
	close(ctl);
	sock_at(ctl, SOCK_STREAM);                      /* the program's now */
	sfy_udp_sess_put(s);                            /* the last reference */
	assert_int_not_equal(fcntl(ctl, F_GETFD), -1);  /* still open */
	assert_false(sfy_fdreg_has(ctl, SFY_FDREG_ANY));
	close(ctl);
}

/* A UDP socket landing on a stale control number: the old session is
 * dead, the new one installed. */
static void test_stale_ctl_replaced(void **state)
{
	(void)state;
	int ctl = sock_at(46, SOCK_STREAM);
	struct sfy_udp_sess *s = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
	struct sfy_udp_sess *t = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
	assert_int_equal(sfy_fdreg_ctl_tag(ctl, s), 0);
	atomic_store(&s->ctl, ctl);
	close(ctl);
	int fd = sock_at(ctl, SOCK_DGRAM);
	assert_ptr_equal(sfy_fdreg_udp_install(fd, t), t);
	assert_true(atomic_load(&s->dead));
	assert_int_equal(atomic_load(&s->ctl), -1);
	assert_false(sfy_fdreg_has(fd, SFY_FDREG_CTL));
	assert_true(sfy_fdreg_close(fd));
	sfy_udp_sess_put(t);
	sfy_udp_sess_put(s);
	close(fd);
}

/* ------------------------------------------------------------ dup, ranges */

static void test_dup_shares(void **state)
{
	(void)state;
	int fd = sock_at(50, SOCK_DGRAM);
	struct sfy_udp_sess *s = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
	assert_ptr_equal(sfy_fdreg_udp_install(fd, s), s);
	int d = dup(fd);
	assert_true(d >= 0);
	sfy_fdreg_dup(fd, d);
	assert_int_equal(refs(s), 3);                   /* ours + two entries */
	struct sfy_udp_sess *g = sfy_fdreg_udp_get(d);
	assert_ptr_equal(g, s);
	sfy_udp_sess_put(g);
	sfy_fdreg_dup(51, 2001);                        /* no entry: nothing */
	assert_false(sfy_fdreg_has(2001, SFY_FDREG_ANY));
	assert_true(sfy_fdreg_close(fd));
	close(fd);
	assert_int_equal(refs(s), 2);
	g = sfy_fdreg_udp_get(d);                       /* still d's */
	assert_ptr_equal(g, s);
	sfy_udp_sess_put(g);
	assert_true(sfy_fdreg_close(d));
	close(d);
	assert_int_equal(refs(s), 1);
	sfy_udp_sess_put(s);

	/* The peer address is copied; a control tag is not. */
	int t = sock_at(52, SOCK_STREAM);
	struct sockaddr_in a = sin4("192.0.2.10", 8080);
	assert_int_equal(sfy_fdreg_peer_set(t, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(dup2(t, 2002), 2002);
	sfy_fdreg_dup(t, 2002);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	assert_true(sfy_fdreg_peer_get(2002, (struct sockaddr *)&ss, &sl));
	assert_memory_equal(&ss, &a, sizeof(a));
	assert_true(sfy_fdreg_close(t));
	close(t);
	sl = sizeof(ss);
	assert_true(sfy_fdreg_peer_get(2002, (struct sockaddr *)&ss, &sl));
	assert_true(sfy_fdreg_close(2002));
	close(2002);

	struct sfy_udp_sess *c = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
	int ctl = sock_at(53, SOCK_STREAM);
	assert_int_equal(sfy_fdreg_ctl_tag(ctl, c), 0);
	assert_int_equal(dup2(ctl, 2003), 2003);
	sfy_fdreg_dup(ctl, 2003);
	assert_false(sfy_fdreg_has(2003, SFY_FDREG_ANY));
	assert_true(sfy_fdreg_close(ctl));              /* the program closed it */
	assert_true(atomic_load(&c->dead));
	sfy_udp_sess_put(c);
	close(ctl);
	close(2003);
}

static void test_close_range(void **state)
{
	(void)state;
	static const int fds[] = { 60, 1500, 2000, 2500, 3000 };
	struct sfy_udp_sess *s = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		sock_at(fds[i], SOCK_DGRAM);
		assert_ptr_equal(sfy_fdreg_udp_install(fds[i], s), s);
	}
	assert_int_equal(refs(s), 6);
	sfy_fdreg_close_range(1501, 2500);
	assert_true(sfy_fdreg_has(1500, SFY_FDREG_UDP));
	assert_false(sfy_fdreg_has(2000, SFY_FDREG_ANY));
	assert_false(sfy_fdreg_has(2500, SFY_FDREG_ANY));
	assert_true(sfy_fdreg_has(3000, SFY_FDREG_UDP));
	assert_int_equal(refs(s), 4);
	sfy_fdreg_close_range(2999, 0xffffffffu);
	assert_false(sfy_fdreg_has(3000, SFY_FDREG_ANY));
	sfy_fdreg_close_range(0, 1500);
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		assert_false(sfy_fdreg_has(fds[i], SFY_FDREG_ANY));
		close(fds[i]);
	}
	assert_int_equal(refs(s), 1);
	sfy_udp_sess_put(s);
}

/* ------------------------------------------------------------ processes */

/* A vfork() child shares our memory: whatever it closes or dups over, the
 * parent's entries stay. */
static void test_vfork_child_changes_nothing(void **state)
{
	(void)state;
	int fd = sock_at(70, SOCK_DGRAM);
	int t = sock_at(71, SOCK_STREAM);
	struct sfy_udp_sess *s = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
	assert_ptr_equal(sfy_fdreg_udp_install(fd, s), s);
	struct sockaddr_in a = sin4("192.0.2.11", 53);
	assert_int_equal(sfy_fdreg_peer_set(t, (struct sockaddr *)&a, sizeof(a)), 0);
	pid_t pid = vfork();
	if (pid == 0) {
		/* What the close/dup hooks do, then what a stale lookup does. */
		sfy_fdreg_close(fd);
		sfy_fdreg_close_range(0, 0xffffffffu);
		sfy_fdreg_dup(t, 72);
		close(t);
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		bool seen = sfy_fdreg_peer_get(t, (struct sockaddr *)&ss, &sl);
		_exit(seen ? 1 : 0);   /* closed in the child: absent there */
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(refs(s), 2);
	assert_true(sfy_fdreg_has(fd, SFY_FDREG_UDP));
	assert_false(sfy_fdreg_has(72, SFY_FDREG_ANY));
	struct sfy_udp_sess *g = sfy_fdreg_udp_get(fd);
	assert_ptr_equal(g, s);
	sfy_udp_sess_put(g);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	assert_true(sfy_fdreg_peer_get(t, (struct sockaddr *)&ss, &sl));
	assert_true(sfy_fdreg_close(fd));
	assert_true(sfy_fdreg_close(t));
	sfy_udp_sess_put(s);
	close(fd);
	close(t);
}

/* A fork() child owns its copy: its close drops its entry, not ours. */
static void test_fork_child_owns_copy(void **state)
{
	(void)state;
	int fd = sock_at(73, SOCK_DGRAM);
	struct sfy_udp_sess *s = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
	assert_ptr_equal(sfy_fdreg_udp_install(fd, s), s);
	pid_t pid = fork();
	if (pid == 0) {
		bool ok = sfy_fdreg_close(fd) && !sfy_fdreg_has(fd, SFY_FDREG_ANY) &&
			  atomic_load(&s->refs) == 1;
		_exit(ok ? 0 : 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(refs(s), 2);
	assert_true(sfy_fdreg_close(fd));
	sfy_udp_sess_put(s);
	close(fd);
}

/* ------------------------------------------------------------ threads */

#define NTHREADS 8
#define ROUNDS 2000
static int churn_fds[2];

static void *churn(void *arg)
{
	int fd = churn_fds[(intptr_t)arg % 2];   /* two threads per fd contend */
	struct sockaddr_in a = sin4("192.0.2.12", 1);
	for (int i = 0; i < ROUNDS; i++) {
		struct sfy_udp_sess *s = sfy_udp_sess_new(SFY_UDP_SESS_ASSOC, AF_INET);
		struct sfy_udp_sess *g = sfy_fdreg_udp_install(fd, s);
		if (g != s)
			sfy_udp_sess_put(g);
		sfy_udp_sess_put(s);
		sfy_fdreg_peer_set(fd, (struct sockaddr *)&a, sizeof(a));
		struct sfy_udp_sess *x = sfy_fdreg_udp_get(fd);
		sfy_udp_sess_put(x);
		if (i % 3 == 0)
			sfy_fdreg_dup(fd, fd + 100);
		sfy_fdreg_close(fd + 100);
		sfy_fdreg_close(fd);
	}
	return NULL;
}

/* Under ASan this catches a session freed while another thread uses it. */
static void test_threads(void **state)
{
	(void)state;
	churn_fds[0] = sock_at(80, SOCK_DGRAM);
	churn_fds[1] = sock_at(81, SOCK_DGRAM);
	assert_int_equal(dup2(80, 180), 180);
	assert_int_equal(dup2(81, 181), 181);
	pthread_t t[NTHREADS];
	for (intptr_t i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, churn, (void *)i), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	static const int fds[] = { 80, 81, 180, 181 };
	for (size_t i = 0; i < 4; i++) {
		assert_false(sfy_fdreg_has(fds[i], SFY_FDREG_ANY));
		close(fds[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_peer),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_udp_install_get_close),
		cmocka_unit_test(test_udp_install_existing_remove),
		cmocka_unit_test(test_stale_udp_dropped),
		cmocka_unit_test(test_stale_ebadf),
		cmocka_unit_test(test_stale_replaced_on_register),
		cmocka_unit_test(test_stale_ctl_not_closed),
		cmocka_unit_test(test_stale_ctl_replaced),
		cmocka_unit_test(test_dup_shares),
		cmocka_unit_test(test_close_range),
		cmocka_unit_test(test_vfork_child_changes_nothing),
		cmocka_unit_test(test_fork_child_owns_copy),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
