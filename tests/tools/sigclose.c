/* sigclose: close() and dup() from a signal handler while the interrupted
 * thread is inside epoll_ctl(), for 2 s. Both are async-signal-safe; under
 * the library their hooks must not wait for a lock the interrupted hook
 * holds (a program with an epoll set would deadlock on itself). Prints
 * one line and exits 0 when it got through; a deadlock hangs (the test
 * runs it under timeout). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t hits;
static int sock = -1;

static void on_alarm(int sig)
{
	(void)sig;
	int e = errno;
	int d = dup(sock);
	if (d >= 0)
		close(d);
	close(-1);
	errno = e;
	hits++;
}

static long ms_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000;
}

int main(void)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ep < 0 || sock < 0) {
		perror("sigclose");
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 200 }, { 0, 200 } };
	setitimer(ITIMER_REAL, &it, NULL);
	struct epoll_event ev = { .events = EPOLLIN };
	long t0 = ms_now(), calls = 0;
	while (ms_now() - t0 < 2000) {
		epoll_ctl(ep, EPOLL_CTL_ADD, sock, &ev);
		epoll_ctl(ep, EPOLL_CTL_DEL, sock, &ev);
		calls += 2;
	}
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	printf("sigclose: %ld epoll_ctl calls, %d signal handlers with dup()+close(): no deadlock\n",
	       calls, (int)hits);
	return hits > 0 ? 0 : 1;
}
