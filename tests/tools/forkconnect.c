/* forkconnect: forks in a loop while other threads connect(), to catch a
 * lock held across a blocking call (a child forked while another thread of
 * the parent holds it waits for an owner it does not have).
 *
 *   forkconnect --host IP --port P [--threads T] [--forks N] [--limit-ms MS]
 *
 * T threads (4) connect to IP:P in a loop; meanwhile the main thread forks
 * N children (20), one every 50 ms. Each child does one connect() to IP:P
 * and exits 0 whatever connect() returned; a child still running after
 * MS (8000) is counted as hung and killed. Output: "children N hung H
 * connected C" on stdout; exit 0 when H is 0. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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

static struct sockaddr_in dst;
static atomic_bool stop;

static int one_connect(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -errno;
	int r = connect(fd, (struct sockaddr *)&dst, sizeof(dst)) == 0 ? 0 : -errno;
	close(fd);
	return r;
}

static void *worker(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		one_connect();
	return NULL;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int port = 0, nthreads = 4, nforks = 20;
	long limit = 8000;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--host"))
			host = argv[i + 1];
		else if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--threads"))
			nthreads = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--forks"))
			nforks = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--limit-ms"))
			limit = atol(argv[i + 1]);
		else {
			fprintf(stderr, "forkconnect: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)port);
	if (!port || inet_pton(AF_INET, host, &dst.sin_addr) != 1) {
		fprintf(stderr, "usage: forkconnect --host IP --port P [...]\n");
		return 2;
	}
	pthread_t t[64];
	if (nthreads > 64)
		nthreads = 64;
	for (int i = 0; i < nthreads; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	pid_t kids[256];
	long started[256];
	if (nforks > 256)
		nforks = 256;
	for (int i = 0; i < nforks; i++) {
		struct timespec gap = { 0, 50 * 1000000L };
		nanosleep(&gap, NULL);
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0)
			_exit(one_connect() == 0 ? 0 : 1);
		kids[i] = pid;
		started[i] = now_ms();
	}
	int hung = 0, connected = 0;
	for (int i = 0; i < nforks; i++) {
		if (kids[i] < 0)
			continue;
		int st;
		for (;;) {
			pid_t w = waitpid(kids[i], &st, WNOHANG);
			if (w == kids[i]) {
				connected += WIFEXITED(st) && WEXITSTATUS(st) == 0;
				break;
			}
			if (now_ms() - started[i] > limit) {
				fprintf(stderr, "forkconnect: child %d hung\n", (int)kids[i]);
				kill(kids[i], SIGKILL);
				waitpid(kids[i], &st, 0);
				hung++;
				break;
			}
			struct timespec tick = { 0, 20 * 1000000L };
			nanosleep(&tick, NULL);
		}
	}
	atomic_store(&stop, true);
	for (int i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	printf("children %d hung %d connected %d\n", nforks, hung, connected);
	return hung ? 1 : 0;
}
