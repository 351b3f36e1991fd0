/* ready.c / ready_wait.c: readiness while a set-up is pending, on real
 * sockets (a connected loopback TCP pair) and real epoll sets.
 *
 * The test links the core only (no hooks): it calls what the hooks call --
 * sfy_ready_epoll_new() for epoll_create*, sfy_ready_epoll_ctl() for
 * epoll_ctl, sfy_ready_fd_closed()/sfy_ready_fd_dup() where the close/dup
 * hooks would, sfy_ready_ppoll()/sfy_ready_pselect() for the poll family's
 * slow paths -- and plays async.c's part: sfy_async_pending() and
 * sfy_async_count are defined here, over a table of socket identities in
 * shared memory (so a forked child sees the parent end a set-up), and the
 * test calls sfy_ready_hide()/sfy_ready_show() as connect() and the driver
 * would. epoll_wait() and close() are libc's. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "async.h"
#include "ready.h"
#include "testutil.h"

/* ------------------------------------------------------------ async.c's part */

#define NPEND 16
struct pend {
	dev_t dev;
	ino_t ino;
	int on;
};
static struct pend *pend;   /* MAP_SHARED: a forked child sees the parent's changes */

atomic_int sfy_async_count;

static bool id_of(int fd, dev_t *dev, ino_t *ino)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return false;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return true;
}

bool sfy_async_pending(int fd)
{
	dev_t dev = 0;
	ino_t ino = 0;
	if (!id_of(fd, &dev, &ino))
		return false;
	for (int i = 0; i < NPEND; i++)
		if (__atomic_load_n(&pend[i].on, __ATOMIC_ACQUIRE) && pend[i].dev == dev &&
		    pend[i].ino == ino)
			return true;
	return false;
}

/* The test's set-ups all belong to the process that started them. */
bool sfy_async_pending_here(int fd)
{
	return sfy_async_pending(fd);
}

/* connect() returning EINPROGRESS: marked pending, then hidden. */
static void start(int fd)
{
	dev_t dev = 0;
	ino_t ino = 0;
	assert_true(id_of(fd, &dev, &ino));
	for (int i = 0; i < NPEND; i++)
		if (!pend[i].on) {
			pend[i].dev = dev;
			pend[i].ino = ino;
			__atomic_store_n(&pend[i].on, 1, __ATOMIC_RELEASE);
			atomic_fetch_add(&sfy_async_count, 1);
			sfy_ready_hide(fd);
			return;
		}
	fail();
}

/* The set-up ends: marked so, then shown (the driver's order). show
 * false: only marked (a forked child's parent, which cannot reach the
 * child's waiters). */
static void end_setup(dev_t dev, ino_t ino, bool show)
{
	for (int i = 0; i < NPEND; i++)
		if (pend[i].on && pend[i].dev == dev && pend[i].ino == ino) {
			__atomic_store_n(&pend[i].on, 0, __ATOMIC_RELEASE);
			atomic_fetch_sub(&sfy_async_count, 1);
		}
	if (show)
		sfy_ready_show(dev, ino);
}

static void finish(int fd)
{
	dev_t dev = 0;
	ino_t ino = 0;
	assert_true(id_of(fd, &dev, &ino));
	end_setup(dev, ino, true);
}

/* ------------------------------------------------------------ fixtures */

struct pair {
	int c, s;       /* client (the socket being "set up"), server side */
};

static struct pair tcp_pair(void)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 4), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
	struct pair p;
	p.c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(p.c >= 0);
	int r = connect(p.c, (struct sockaddr *)&a, sizeof(a));
	assert_true(r == 0 || errno == EINPROGRESS);
	p.s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(p.s >= 0);
	close(l);
	struct pollfd w = { p.c, POLLOUT, 0 };
	assert_int_equal(poll(&w, 1, 2000), 1);     /* libc's: the test's own wait */
	return p;
}

/* The close hook's order: the table forgets, then the kernel closes. */
static void hclose(int fd)
{
	sfy_ready_fd_closed(fd);
	close(fd);
}

static void close_pair(struct pair p)
{
	hclose(p.c);
	hclose(p.s);
}

static int new_epoll(void)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	assert_true(ep >= 0);
	sfy_ready_epoll_new(ep);
	return ep;
}

static int add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	return sfy_ready_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static int mod(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	return sfy_ready_epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static int del(int ep, int fd)
{
	return sfy_ready_epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
}

/* epoll_wait(timeout 0): how many events, the first one in *ev. */
static int ready(int ep, struct epoll_event *ev)
{
	struct epoll_event evs[8], dummy;
	int n = epoll_wait(ep, evs, 8, 0);
	assert_true(n >= 0);
	if (!ev)
		ev = &dummy;
	if (n > 0)
		*ev = evs[0];
	return n;
}

static void peer_sends(struct pair p)
{
	assert_int_equal(write(p.s, "x", 1), 1);
	usleep(10000);  /* loopback: in the client's queue by now */
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static int setup_group(void **state)
{
	(void)state;
	pend = mmap(NULL, sizeof(*pend) * NPEND, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return pend == MAP_FAILED ? -1 : 0;
}

/* Each test leaves nothing pending and no epoll set behind. */
static int check_clean(void **state)
{
	(void)state;
	if (atomic_load(&sfy_async_count) != 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------ epoll */

static void test_lt(void **state)
{
	(void)state;
	struct pair p = tcp_pair();
	int ep = new_epoll();
	struct epoll_event ev = { 0 };
	assert_int_equal(add(ep, p.c, EPOLLIN | EPOLLOUT, 42), 0);
	assert_int_equal(ready(ep, NULL), 1);
	start(p.c);
	assert_int_equal(ready(ep, NULL), 0);
	peer_sends(p);
	assert_int_equal(ready(ep, NULL), 0);
	/* Not even HUP/ERR, which epoll reports whatever the mask. */
	shutdown(p.s, SHUT_RDWR);
	usleep(10000);
	assert_int_equal(ready(ep, NULL), 0);
	finish(p.c);
	assert_int_equal(ready(ep, &ev), 1);
	assert_int_equal(ev.data.u64, 42);
	assert_true(ev.events & EPOLLOUT);
	assert_true(ev.events & EPOLLIN);
	assert_int_equal(ready(ep, NULL), 1);   /* level: again */
	hclose(ep);
	close_pair(p);
}

static void test_et_one_wake(void **state)
{
	(void)state;
	struct pair p = tcp_pair();
	int ep = new_epoll();
	struct epoll_event ev = { 0 };
	assert_int_equal(add(ep, p.c, EPOLLIN | EPOLLOUT | EPOLLET, 7), 0);
	assert_int_equal(ready(ep, NULL), 1);
	assert_int_equal(ready(ep, NULL), 0);   /* the edge is spent */
	start(p.c);
	peer_sends(p);
	assert_int_equal(ready(ep, NULL), 0);
	finish(p.c);
	assert_int_equal(ready(ep, &ev), 1);
	assert_int_equal(ev.data.u64, 7);
	assert_true(ev.events & EPOLLOUT);
	assert_int_equal(ready(ep, NULL), 0);   /* exactly one */
	hclose(ep);
	close_pair(p);
}

static void test_oneshot(void **state)
{
	(void)state;
	struct pair p = tcp_pair();
	int ep = new_epoll();
	/* Others first, so that the kernel's list of the set's registrations
	 * (/proc/self/fdinfo, where a fired one shows) runs to many pages. */
	int others[120];
	for (int i = 0; i < 120; i++) {
		others[i] = eventfd(0, EFD_CLOEXEC);
		assert_int_equal(add(ep, others[i], EPOLLIN | EPOLLONESHOT, 100 + (uint64_t)i), 0);
	}
	/* Armed (nothing to read yet) when hidden: one event after show. */
	assert_int_equal(add(ep, p.c, EPOLLIN | EPOLLONESHOT, 1), 0);
	assert_int_equal(ready(ep, NULL), 0);
	start(p.c);
	peer_sends(p);
	assert_int_equal(ready(ep, NULL), 0);
	finish(p.c);
	assert_int_equal(ready(ep, NULL), 1);
	assert_int_equal(ready(ep, NULL), 0);
	/* Fired before it was hidden: show() must not arm it again... */
	start(p.c);
	finish(p.c);
	assert_int_equal(ready(ep, NULL), 0);
	/* ...but a MOD while pending does, once the set-up ends. */
	start(p.c);
	assert_int_equal(mod(ep, p.c, EPOLLIN | EPOLLONESHOT, 2), 0);
	assert_int_equal(ready(ep, NULL), 0);
	finish(p.c);
	struct epoll_event ev = { 0 };
	assert_int_equal(ready(ep, &ev), 1);
	assert_int_equal(ev.data.u64, 2);
	assert_int_equal(ready(ep, NULL), 0);
	for (int i = 0; i < 120; i++)
		hclose(others[i]);
	hclose(ep);
	close_pair(p);
}

static void test_exclusive(void **state)
{
	(void)state;
	struct pair p = tcp_pair();
	int ep = new_epoll();
	assert_int_equal(add(ep, p.c, EPOLLOUT | EPOLLEXCLUSIVE, 3), 0);
	assert_int_equal(ready(ep, NULL), 1);
	start(p.c);
	assert_int_equal(ready(ep, NULL), 0);
	/* The kernel refuses MOD of an exclusive registration. */
	errno = 0;
	assert_int_equal(mod(ep, p.c, EPOLLOUT, 4), -1);
	assert_int_equal(errno, EINVAL);
	finish(p.c);
	struct epoll_event ev = { 0 };
	assert_int_equal(ready(ep, &ev), 1);
	assert_int_equal(ev.data.u64, 3);
	hclose(ep);
	close_pair(p);
}

static void test_two_sets_and_dup(void **state)
{
	(void)state;
	struct pair p = tcp_pair();
	int ep1 = new_epoll(), ep2 = new_epoll();
	int d = dup(p.c);
	assert_int_equal(add(ep1, p.c, EPOLLOUT, 11), 0);
	assert_int_equal(add(ep2, d, EPOLLOUT | EPOLLET, 22), 0);
	assert_int_equal(add(ep2, p.c, EPOLLOUT, 23), 0);
	assert_int_equal(ready(ep1, NULL), 1);
	assert_int_equal(epoll_wait(ep2, (struct epoll_event[4]){ 0 }, 4, 0), 2);
	start(p.c);
	assert_int_equal(ready(ep1, NULL), 0);
	assert_int_equal(ready(ep2, NULL), 0);
	finish(p.c);
	struct epoll_event ev = { 0 }, evs[4];
	assert_int_equal(ready(ep1, &ev), 1);
	assert_int_equal(ev.data.u64, 11);
	int n = epoll_wait(ep2, evs, 4, 0);
	assert_int_equal(n, 2);
	assert_true((evs[0].data.u64 == 22 && evs[1].data.u64 == 23) ||
		    (evs[0].data.u64 == 23 && evs[1].data.u64 == 22));
	/* The ET one woke once, the LT one goes on. */
	assert_int_equal(ready(ep2, &ev), 1);
	assert_int_equal(ev.data.u64, 23);
	hclose(ep1);
	hclose(ep2);
	hclose(d);
	close_pair(p);
}

static void test_changes_while_hidden(void **state)
{
	(void)state;
	struct pair p = tcp_pair();
	int ep = new_epoll();
	assert_int_equal(add(ep, p.c, EPOLLOUT, 1), 0);
	start(p.c);
	errno = 0;
	assert_int_equal(add(ep, p.c, EPOLLOUT, 2), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(mod(ep, p.c, EPOLLOUT | EPOLLIN, 3), 0);
	assert_int_equal(ready(ep, NULL), 0);
	finish(p.c);
	struct epoll_event ev = { 0 };
	assert_int_equal(ready(ep, &ev), 1);
	assert_int_equal(ev.data.u64, 3);

	start(p.c);
	assert_int_equal(del(ep, p.c), 0);
	errno = 0;
	assert_int_equal(del(ep, p.c), -1);
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_int_equal(mod(ep, p.c, EPOLLOUT, 4), -1);
	assert_int_equal(errno, ENOENT);
	finish(p.c);
	assert_int_equal(ready(ep, NULL), 0);
	/* Really gone: the kernel has none either. */
	errno = 0;
	assert_int_equal(epoll_ctl(ep, EPOLL_CTL_DEL, p.c, NULL), -1);
	assert_int_equal(errno, ENOENT);
	hclose(ep);
	close_pair(p);
}

static void test_add_while_pending(void **state)
{
	(void)state;
	struct pair p = tcp_pair();
	int ep = new_epoll();
	start(p.c);
	assert_int_equal(add(ep, p.c, EPOLLOUT | EPOLLET, 5), 0);
	assert_int_equal(ready(ep, NULL), 0);
	/* The kernel's errors, without reaching it. */
	errno = 0;
	assert_int_equal(add(ep, p.c, EPOLLOUT, 5), -1);
	assert_int_equal(errno, EEXIST);
	int bad = open("/dev/null", O_RDONLY);
	close(bad);
	errno = 0;
	assert_int_equal(add(bad, p.c, EPOLLOUT, 5), -1);
	assert_int_equal(errno, EBADF);
	errno = 0;
	assert_int_equal(add(p.s, p.c, EPOLLOUT, 5), -1);      /* not an epoll set */
	assert_int_equal(errno, EINVAL);
	int ep2 = new_epoll();
	errno = 0;
	assert_int_equal(add(ep2, p.c, EPOLLOUT | EPOLLEXCLUSIVE | EPOLLONESHOT, 5), -1);
	assert_int_equal(errno, EINVAL);
	finish(p.c);
	struct epoll_event ev = { 0 };
	assert_int_equal(ready(ep, &ev), 1);
	assert_int_equal(ev.data.u64, 5);
	assert_int_equal(ready(ep, NULL), 0);
	assert_int_equal(ready(ep2, NULL), 0);
	hclose(ep);
	hclose(ep2);
	close_pair(p);
}

/* connect() again after a failure starts a new set-up before the old
 * one's show() ran: that show() leaves the socket hidden. */
static void test_show_after_new_setup(void **state)
{
	(void)state;
	struct pair p = tcp_pair();
	int ep = new_epoll();
	assert_int_equal(add(ep, p.c, EPOLLOUT, 1), 0);
	dev_t dev = 0;
	ino_t ino = 0;
	assert_true(id_of(p.c, &dev, &ino));
	start(p.c);
	end_setup(dev, ino, false);     /* ended, not shown yet */
	start(p.c);                     /* the next one */
	sfy_ready_show(dev, ino);       /* the first one's show, late */
	assert_int_equal(ready(ep, NULL), 0);
	finish(p.c);
	assert_int_equal(ready(ep, NULL), 1);
	hclose(ep);
	close_pair(p);
}

/* A set known by another number (dup of the epoll fd), the original number
 * closed: the set and its registrations live on; the last close forgets. */
static void test_epoll_dup_close(void **state)
{
	(void)state;
	int base = atomic_load(&sfy_ready_watch);
	struct pair p = tcp_pair();
	int ep = new_epoll();
	int ep2 = dup(ep);
	sfy_ready_fd_dup(ep, ep2);
	assert_int_equal(add(ep, p.c, EPOLLOUT, 9), 0);
	hclose(ep);
	start(p.c);
	assert_int_equal(ready(ep2, NULL), 0);
	finish(p.c);
	assert_int_equal(ready(ep2, NULL), 1);
	/* A registered number closed and reused by another socket: the old
	 * registration is not the new socket's. */
	struct pair q = tcp_pair();
	int num = p.c;
	hclose(p.c);
	assert_int_equal(dup2(q.c, num), num);
	start(num);
	finish(num);
	assert_int_equal(ready(ep2, NULL), 0);
	hclose(num);
	hclose(ep2);
	hclose(p.s);
	close_pair(q);
	EQ(atomic_load(&sfy_ready_watch), base, "watch count back");
}

/* A show() racing an ADD of a socket whose set-up ends: the registration
 * is in the kernel afterwards, every time. */
struct race {
	int ep, fd;
	pthread_barrier_t go;
};

static void *race_add(void *arg)
{
	struct race *r = arg;
	pthread_barrier_wait(&r->go);
	assert_int_equal(add(r->ep, r->fd, EPOLLOUT, 1), 0);
	return NULL;
}

static void test_race_add_show(void **state)
{
	(void)state;
	struct pair p = tcp_pair();
	int ep = new_epoll();
	struct race r = { .ep = ep, .fd = p.c };
	for (int i = 0; i < 500; i++) {
		pthread_barrier_init(&r.go, NULL, 2);
		start(p.c);
		pthread_t t;
		pthread_create(&t, NULL, race_add, &r);
		pthread_barrier_wait(&r.go);
		finish(p.c);
		pthread_join(t, NULL);
		pthread_barrier_destroy(&r.go);
		if (ready(ep, NULL) != 1) {
			print_error("iteration %d: registration lost\n", i);
			fail();
		}
		assert_int_equal(del(ep, p.c), 0);
	}
	hclose(ep);
	close_pair(p);
}

/* ------------------------------------------------------------ poll family */

struct later {
	int fd;
	int ms;
	pthread_t t;
};

static void *finish_later(void *arg)
{
	struct later *l = arg;
	usleep((useconds_t)l->ms * 1000);
	finish(l->fd);
	return NULL;
}

static void finish_in(struct later *l, int fd, int ms)
{
	l->fd = fd;
	l->ms = ms;
	assert_int_equal(pthread_create(&l->t, NULL, finish_later, l), 0);
}

static void test_poll_hides(void **state)
{
	(void)state;
	struct pair p = tcp_pair();
	start(p.c);
	peer_sends(p);
	struct pollfd f[2] = { { p.c, POLLIN | POLLOUT, 0 }, { p.s, POLLOUT, 0 } };
	/* The other fd is reported, the pending one not. */
	assert_int_equal(sfy_ready_ppoll(f, 2, &(struct timespec){ 0, 0 }, NULL, NULL), 1);
	assert_int_equal(f[0].revents, 0);
	assert_true(f[1].revents & POLLOUT);
	/* Alone: the timeout is honoured. */
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	f[0].revents = 77;
	assert_int_equal(sfy_ready_ppoll(f, 1, &(struct timespec){ 0, 150000000 }, NULL, NULL),
			 0);
	long ms = ms_since(&t0);
	assert_true(ms >= 145 && ms < 2000);
	assert_int_equal(f[0].revents, 0);
	/* Woken by show() from another thread, long before the timeout. */
	struct later l;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	finish_in(&l, p.c, 100);
	assert_int_equal(sfy_ready_ppoll(f, 1, &(struct timespec){ 3, 0 }, NULL, NULL), 1);
	ms = ms_since(&t0);
	pthread_join(l.t, NULL);
	assert_true(f[0].revents & POLLIN);
	assert_true(f[0].revents & POLLOUT);
	assert_true(ms >= 95 && ms < 1000);
	close_pair(p);
}

/* The waiter's eventfd: made at a number >= 100, close-on-exec, closed at
 * the thread's exit; a program that closes it gets its number back and the
 * waits still wake. */
static int count_eventfds(int *low)
{
	int n = 0;
	*low = 1 << 30;
	for (int fd = 0; fd < 4096; fd++) {
		char path[64], link[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		ssize_t k = readlink(path, link, sizeof(link) - 1);
		if (k < 0)
			continue;
		link[k] = 0;
		if (strcmp(link, "anon_inode:[eventfd]") == 0) {
			n++;
			if (fd < *low)
				*low = fd;
			assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		}
	}
	return n;
}

static void *one_slow_wait(void *arg)
{
	int fd = *(int *)arg;
	struct pollfd f = { fd, POLLOUT, 0 };
	int low;
	assert_int_equal(sfy_ready_ppoll(&f, 1, &(struct timespec){ 0, 1000000 }, NULL, NULL),
			 0);
	assert_int_equal(count_eventfds(&low), 1);
	assert_true(low >= 100);
	return NULL;
}

static void test_waiter_eventfd(void **state)
{
	(void)state;
	struct pair p = tcp_pair();
	int low;
	/* An earlier test's wait left this thread one: the program closes it. */
	if (count_eventfds(&low) == 1)
		hclose(low);
	assert_int_equal(count_eventfds(&low), 0);
	start(p.c);
	pthread_t t;
	pthread_create(&t, NULL, one_slow_wait, &p.c);
	pthread_join(t, NULL);
	assert_int_equal(count_eventfds(&low), 0);      /* closed at the thread's exit */

	/* This thread's: the program closes it; the next wait makes another. */
	struct pollfd f = { p.c, POLLOUT, 0 };
	assert_int_equal(sfy_ready_ppoll(&f, 1, &(struct timespec){ 0, 1000000 }, NULL, NULL),
			 0);
	assert_int_equal(count_eventfds(&low), 1);
	int mine = low;
	hclose(mine);
	assert_int_equal(count_eventfds(&low), 0);
	int theirs = open("/dev/null", O_RDONLY);
	assert_int_equal(dup2(theirs, mine), mine);      /* the number is the program's now */
	struct later l;
	finish_in(&l, p.c, 50);
	assert_int_equal(sfy_ready_ppoll(&f, 1, &(struct timespec){ 5, 0 }, NULL, NULL), 1);
	pthread_join(l.t, NULL);
	assert_true(f.revents & POLLOUT);
	char c;
	assert_int_equal(read(mine, &c, 1), 0);  /* /dev/null untouched, still there */
	close(mine);
	close(theirs);
	/* Leave no eventfd behind for the counts of the other tests. */
	assert_int_equal(count_eventfds(&low), 1);
	hclose(low);
	close_pair(p);
}

static volatile sig_atomic_t got_sig;
static void on_sig(int sig)
{
	(void)sig;
	got_sig = 1;
}

struct kill_later {
	pthread_t target;
	int ms;
};

static void *kill_later(void *arg)
{
	struct kill_later *k = arg;
	usleep((useconds_t)k->ms * 1000);
	pthread_kill(k->target, SIGUSR1);
	return NULL;
}

/* ppoll's and pselect's mask is honoured (the signal it unblocks
 * interrupts, EINTR comes back); without one a blocked signal does not. */
static void test_sigmask_eintr(void **state)
{
	(void)state;
	struct pair p = tcp_pair();
	start(p.c);
	struct sigaction sa = { .sa_handler = on_sig };     /* no SA_RESTART */
	sigaction(SIGUSR1, &sa, NULL);
	sigset_t block, old, open_mask;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	open_mask = old;
	sigdelset(&open_mask, SIGUSR1);
	struct pollfd f = { p.c, POLLOUT, 0 };
	struct kill_later k = { pthread_self(), 50 };
	pthread_t t;

	/* Blocked, no mask: the wait runs to its timeout. */
	got_sig = 0;
	pthread_create(&t, NULL, kill_later, &k);
	assert_int_equal(sfy_ready_ppoll(&f, 1, &(struct timespec){ 0, 200000000 }, NULL, NULL),
			 0);
	pthread_join(t, NULL);
	assert_int_equal(got_sig, 0);
	/* The mask unblocks the pending one at once. */
	errno = 0;
	assert_int_equal(sfy_ready_ppoll(&f, 1, &(struct timespec){ 2, 0 }, &open_mask, NULL), -1);
	assert_int_equal(errno, EINTR);
	assert_int_equal(got_sig, 1);
	/* One that arrives during the wait. */
	got_sig = 0;
	pthread_create(&t, NULL, kill_later, &k);
	errno = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(sfy_ready_ppoll(&f, 1, &(struct timespec){ 2, 0 }, &open_mask, NULL), -1);
	assert_int_equal(errno, EINTR);
	assert_true(ms_since(&t0) < 1500);
	pthread_join(t, NULL);
	/* pselect the same. */
	got_sig = 0;
	pthread_create(&t, NULL, kill_later, &k);
	fd_set wr;
	FD_ZERO(&wr);
	FD_SET(p.c, &wr);
	errno = 0;
	assert_int_equal(sfy_ready_pselect(p.c + 1, NULL, &wr, NULL, &(struct timespec){ 2, 0 },
					   &open_mask, NULL), -1);
	assert_int_equal(errno, EINTR);
	assert_int_equal(got_sig, 1);
	pthread_join(t, NULL);
	/* poll() without a mask, signal not blocked: EINTR passed through. */
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	got_sig = 0;
	pthread_create(&t, NULL, kill_later, &k);
	errno = 0;
	assert_int_equal(sfy_ready_ppoll(&f, 1, NULL, NULL, NULL), -1);
	assert_int_equal(errno, EINTR);
	pthread_join(t, NULL);
	signal(SIGUSR1, SIG_DFL);
	finish(p.c);
	close_pair(p);
}

static void test_select(void **state)
{
	(void)state;
	struct pair p = tcp_pair();
	start(p.c);
	peer_sends(p);
	fd_set rd, wr;
	FD_ZERO(&rd);
	FD_ZERO(&wr);
	FD_SET(p.c, &rd);
	FD_SET(p.c, &wr);
	FD_SET(p.s, &wr);
	struct timespec left;
	/* The other fd only. */
	assert_int_equal(sfy_ready_pselect(FD_SETSIZE, &rd, &wr, NULL, &(struct timespec){ 0, 0 },
					   NULL, &left), 1);
	assert_false(FD_ISSET(p.c, &rd));
	assert_false(FD_ISSET(p.c, &wr));
	assert_true(FD_ISSET(p.s, &wr));
	/* Alone: timeout honoured, sets emptied, the time left reported. */
	FD_ZERO(&wr);
	FD_SET(p.c, &rd);
	FD_SET(p.c, &wr);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(sfy_ready_pselect(p.c + 1, &rd, &wr, NULL,
					   &(struct timespec){ 0, 120000000 }, NULL, &left), 0);
	long ms = ms_since(&t0);
	assert_true(ms >= 115 && ms < 2000);
	assert_false(FD_ISSET(p.c, &rd));
	assert_false(FD_ISSET(p.c, &wr));
	assert_true(left.tv_sec == 0 && left.tv_nsec == 0);
	/* Woken by show(): both readable and writable, count 2. */
	FD_SET(p.c, &rd);
	FD_SET(p.c, &wr);
	struct later l;
	finish_in(&l, p.c, 80);
	assert_int_equal(sfy_ready_pselect(p.c + 1, &rd, &wr, NULL, &(struct timespec){ 5, 0 },
					   NULL, &left), 2);
	pthread_join(l.t, NULL);
	assert_true(FD_ISSET(p.c, &rd) && FD_ISSET(p.c, &wr));
	assert_true(left.tv_sec >= 4);
	/* A closed fd in a set while something is pending: EBADF. */
	start(p.c);
	int bad = open("/dev/null", O_RDONLY);
	close(bad);
	FD_ZERO(&rd);
	FD_SET(p.c, &rd);
	FD_SET(bad, &rd);
	errno = 0;
	assert_int_equal(sfy_ready_pselect(bad > p.c ? bad + 1 : p.c + 1, &rd, NULL, NULL,
					   &(struct timespec){ 0, 0 }, NULL, NULL), -1);
	assert_int_equal(errno, EBADF);
	finish(p.c);
	close_pair(p);
}

/* A forked child: the parent's driver ends the set-up and cannot signal
 * the child's waiters; the child sees it within its 10 ms slices. */
static void test_forked_child_slices(void **state)
{
	(void)state;
	struct pair p = tcp_pair();
	/* The waiter machinery exists before the fork (its handlers too). */
	start(p.c);
	struct pollfd f = { p.c, POLLOUT, 0 };
	assert_int_equal(sfy_ready_ppoll(&f, 1, &(struct timespec){ 0, 0 }, NULL, NULL), 0);
	dev_t dev = 0;
	ino_t ino = 0;
	assert_true(id_of(p.c, &dev, &ino));
	/* Set by the parent just before the set-up ends: a wake in the child
	 * before it would be a false readiness (not a clock: the child may be
	 * scheduled late). */
	atomic_int *ended = mmap(NULL, sizeof *ended, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(ended != MAP_FAILED);
	atomic_store(ended, 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int r = sfy_ready_ppoll(&f, 1, &(struct timespec){ 5, 0 }, NULL, NULL);
		long ms = ms_since(&t0);
		_exit(r == 1 && (f.revents & POLLOUT) && atomic_load(ended) && ms < 2500 ? 0 : 1);
	}
	usleep(100000);
	atomic_store(ended, 1);
	end_setup(dev, ino, false);     /* no show(): nothing reaches the child */
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	EQ(WEXITSTATUS(st), 0, "child woke in a slice");
	munmap(ended, sizeof *ended);
	sfy_ready_show(dev, ino);
	close_pair(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_lt, check_clean),
		cmocka_unit_test_teardown(test_et_one_wake, check_clean),
		cmocka_unit_test_teardown(test_oneshot, check_clean),
		cmocka_unit_test_teardown(test_exclusive, check_clean),
		cmocka_unit_test_teardown(test_two_sets_and_dup, check_clean),
		cmocka_unit_test_teardown(test_changes_while_hidden, check_clean),
		cmocka_unit_test_teardown(test_add_while_pending, check_clean),
		cmocka_unit_test_teardown(test_show_after_new_setup, check_clean),
		cmocka_unit_test_teardown(test_epoll_dup_close, check_clean),
		cmocka_unit_test_teardown(test_race_add_show, check_clean),
		cmocka_unit_test_teardown(test_poll_hides, check_clean),
		cmocka_unit_test_teardown(test_waiter_eventfd, check_clean),
		cmocka_unit_test_teardown(test_sigmask_eintr, check_clean),
		cmocka_unit_test_teardown(test_select, check_clean),
		cmocka_unit_test_teardown(test_forked_child_slices, check_clean),
	};
	return cmocka_run_group_tests(tests, setup_group, NULL);
}
