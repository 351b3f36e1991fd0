/* dnsfork: forks in a loop while other threads use DNS-over-TCP
 * connections answered by the in-library responder, to catch a lock a
 * forked child (or the fork itself) can never get: close() of such a
 * socket against fork()'s handlers, a connection's lock held by a thread
 * that is mid-answer at the fork.
 *
 *   dnsfork --ns IP [--forks N] [--limit-ms MS]
 *
 * Two threads each connect to IP:53, send a query, read the answer and
 * close, in a loop; a third writes queries on one long-lived connection
 * and reads the answers. Meanwhile the main thread forks N (200) children
 * one after the other; each writes a query on the long-lived connection
 * it inherited, closes it, makes one query of its own on a new connection
 * and exits 0 whatever the answers. A child still running after MS (5000)
 * is counted as hung and killed (three end the loop); a fork() that does not return within MS
 * ends the program (exit 3). Output: "children N hung H answered A";
 * exit 0 when H is 0. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in ns;
static atomic_bool stop;
static atomic_long forking_since;       /* 0: not in fork() */
static long limit = 5000;
static int shared = -1;

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* A framed query for far.sfy.test A. */
static size_t query(unsigned char *q)
{
	static const unsigned char body[] = {
		0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
		3, 'f', 'a', 'r', 3, 's', 'f', 'y', 4, 't', 'e', 's', 't', 0,
		0, 1, 0, 1,
	};
	q[0] = 0;
	q[1] = sizeof(body);
	memcpy(q + 2, body, sizeof(body));
	return sizeof(body) + 2;
}

/* Some answer bytes within ms: true. */
static bool read_some(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	unsigned char buf[4096];
	return poll(&p, 1, ms) == 1 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0;
}

static int open_ns(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&ns, sizeof(ns)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One query on a connection of its own: answered. */
static bool one_query(void)
{
	unsigned char q[64];
	int fd = open_ns();
	if (fd < 0)
		return false;
	bool ok = write(fd, q, query(q)) > 0 && read_some(fd, 3000);
	close(fd);
	return ok;
}

static void *worker(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		one_query();
	return NULL;
}

static void *shared_worker(void *arg)
{
	(void)arg;
	unsigned char q[64];
	size_t n = query(q);
	while (!atomic_load(&stop))
		if (write(shared, q, n) > 0)
			read_some(shared, 2000);
	return NULL;
}

/* Prints /proc/PID/task/TID/<name>, one line, prefixed. */
static void show_proc(const char *task, const char *name)
{
	char path[512], buf[2048];
	snprintf(path, sizeof(path), "%s/%s", task, name);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	for (char *c = buf; *c; c++)
		if (*c == '\n' && c[1])
			*c = '|';
	fprintf(stderr, "  %s %s: %s%s", task, name, buf, n && buf[n - 1] == '\n' ? "" : "\n");
}

/* Where a hung child waits: each thread's state, syscall and kernel
 * stack, then (when gdb is installed) the user stacks. */
static void show_stacks(pid_t pid)
{
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char task[384];
		snprintf(task, sizeof(task), "%s/%s", dir, e->d_name);
		show_proc(task, "stat");
		show_proc(task, "wchan");
		show_proc(task, "syscall");
		show_proc(task, "stack");
	}
	if (d)
		closedir(d);
	char cmd[320];
	snprintf(cmd, sizeof(cmd), "command -v gdb >/dev/null && timeout 20 gdb -p %d -batch -nx "
		 "-iex 'set debuginfod enabled off' -ex 'thread apply all bt' </dev/null 2>/dev/null "
		 "| grep '^#' >&2", (int)pid);
	fflush(stderr);
	/* Not under the preloads: a shell with the ASan runtime preloaded
	 * may itself hang (tests/run.sh). */
	unsetenv("LD_PRELOAD");
	if (system(cmd) < 0)
		fprintf(stderr, "dnsfork: no stacks\n");
}

/* fork() itself deadlocked: nothing else would notice. */
static void *watchdog(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		long t = atomic_load(&forking_since);
		if (t && now_ms() - t > limit) {
			printf("fork() hung\n");
			fflush(stdout);
			_exit(3);
		}
		usleep(100 * 1000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *host = NULL;
	int nforks = 200;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--ns"))
			host = argv[i + 1];
		else if (!strcmp(argv[i], "--forks"))
			nforks = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--limit-ms"))
			limit = atol(argv[i + 1]);
		else {
			fprintf(stderr, "dnsfork: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	ns.sin_family = AF_INET;
	ns.sin_port = htons(53);
	if (!host || inet_pton(AF_INET, host, &ns.sin_addr) != 1) {
		fprintf(stderr, "usage: dnsfork --ns IP [--forks N] [--limit-ms MS]\n");
		return 2;
	}
	if ((shared = open_ns()) < 0) {
		perror("dnsfork: connect");
		return 2;
	}
	pthread_t t[4];
	pthread_create(&t[0], NULL, worker, NULL);
	pthread_create(&t[1], NULL, worker, NULL);
	pthread_create(&t[2], NULL, shared_worker, NULL);
	pthread_create(&t[3], NULL, watchdog, NULL);
	int hung = 0, answered = 0;
	unsigned char q[64];
	size_t qn = query(q);
	int done = 0;
	for (; done < nforks && hung < 3; done++) {
		fflush(stdout);
		atomic_store(&forking_since, now_ms());
		pid_t pid = fork();
		if (pid == 0) {
			if (write(shared, q, qn) < 0)
				_exit(1);
			close(shared);
			_exit(one_query() ? 0 : 1);
		}
		atomic_store(&forking_since, 0);
		if (pid < 0)
			continue;
		long start = now_ms();
		int st;
		for (;;) {
			pid_t w = waitpid(pid, &st, WNOHANG);
			if (w == pid) {
				answered += WIFEXITED(st) && WEXITSTATUS(st) == 0;
				break;
			}
			if (now_ms() - start > limit) {
				fprintf(stderr, "dnsfork: child %d hung\n", (int)pid);
				show_stacks(pid);
				kill(pid, SIGKILL);
				waitpid(pid, &st, 0);
				hung++;
				break;
			}
			usleep(2000);
		}
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	printf("children %d hung %d answered %d\n", done, hung, answered);
	return hung ? 1 : 0;
}
