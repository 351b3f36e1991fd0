/* gaiaprobe: looks names up with getaddrinfo_a() -- GAI_WAIT for the first
 * name, GAI_NOWAIT with a SIGEV_THREAD notification plus gai_suspend() and
 * gai_error() for the rest -- and prints "NAME ADDRESS" per name, then
 * "OK" when every lookup succeeded. Used by the DNS leak test: glibc runs
 * these lookups on its own threads, past the getaddrinfo() symbol. The
 * notification carries the program's own (joinable) thread attributes,
 * which must come back unchanged: "attr: joinable".
 *
 * gaiaprobe --nowait NAME: one GAI_NOWAIT lookup (no notification), for a
 * proxy that answers slowly: "nowait: N ms", how long getaddrinfo_a()
 * took to return; "error: inprogress" when gai_error() says so right
 * after (else "error: CODE"); "suspend: RC after N ms" for gai_suspend()
 * with a 10 s timeout; then "NAME ADDRESS" as above. */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_NAMES 16

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int notified;

static void on_done(union sigval v)
{
	(void)v;
	pthread_mutex_lock(&lock);
	notified = 1;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
}

static int show(const struct gaicb *r)
{
	char txt[INET6_ADDRSTRLEN] = "?";
	int e = gai_error((struct gaicb *)r);
	if (e != 0 || !r->ar_result) {
		printf("%s error %s\n", r->ar_name, gai_strerror(e));
		return 1;
	}
	const struct sockaddr *sa = r->ar_result->ai_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, txt, sizeof(txt));
	else
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, txt, sizeof(txt));
	printf("%s %s\n", r->ar_name, txt);
	freeaddrinfo(r->ar_result);
	return 0;
}

static long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000;
}

static int nowait(const char *name)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
	struct gaicb req = { .ar_name = name, .ar_request = &hints }, *list[] = { &req };
	long t0 = now_ms();
	int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	long took = now_ms() - t0;
	if (rc != 0) {
		printf("getaddrinfo_a(GAI_NOWAIT) failed: %s\n", gai_strerror(rc));
		return 1;
	}
	printf("nowait: %ld ms\n", took);
	int e = gai_error(&req);
	if (e == EAI_INPROGRESS)
		printf("error: inprogress\n");
	else
		printf("error: %d\n", e);
	struct timespec to = { .tv_sec = 10 };
	t0 = now_ms();
	rc = gai_suspend((const struct gaicb *const *)list, 1, &to);
	printf("suspend: %d after %ld ms\n", rc, now_ms() - t0);
	return show(&req);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--nowait") == 0)
		return nowait(argv[2]);
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
	struct gaicb reqs[MAX_NAMES], *list[MAX_NAMES];
	int n = argc - 1, bad = 0;
	if (n < 2 || n > MAX_NAMES) {
		fprintf(stderr, "usage: gaiaprobe NAME NAME [NAME...] | --nowait NAME\n");
		return 2;
	}
	memset(reqs, 0, sizeof(reqs));
	for (int i = 0; i < n; i++) {
		reqs[i].ar_name = argv[i + 1];
		reqs[i].ar_request = &hints;
		list[i] = &reqs[i];
	}
	if (getaddrinfo_a(GAI_WAIT, list, 1, NULL) != 0) {
		fprintf(stderr, "getaddrinfo_a(GAI_WAIT) failed\n");
		return 1;
	}
	bad += show(list[0]);

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_JOINABLE);
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD, .sigev_notify_function = on_done,
				.sigev_notify_attributes = &attr };
	if (getaddrinfo_a(GAI_NOWAIT, list + 1, n - 1, &sev) != 0) {
		fprintf(stderr, "getaddrinfo_a(GAI_NOWAIT) failed\n");
		return 1;
	}
	int ds = -1;
	pthread_attr_getdetachstate(&attr, &ds);
	if (ds == PTHREAD_CREATE_JOINABLE) {
		printf("attr: joinable\n");
	} else {
		printf("attr: changed to detached by getaddrinfo_a\n");
		bad++;
	}
	struct timespec to = { .tv_sec = 10 };
	for (int i = 1; i < n; i++)
		while (gai_error(list[i]) == EAI_INPROGRESS)
			if (gai_suspend((const struct gaicb *const *)(list + 1), n - 1, &to) == EAI_AGAIN)
				break;
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10;
	pthread_mutex_lock(&lock);
	while (!notified && pthread_cond_timedwait(&cond, &lock, &dl) == 0)
		;
	pthread_mutex_unlock(&lock);
	if (!notified) {
		printf("no completion notification\n");
		bad++;
	}
	for (int i = 1; i < n; i++)
		bad += show(list[i]);
	pthread_attr_destroy(&attr);
	printf(bad ? "FAILED: %d\n" : "OK\n", bad);
	return bad ? 1 : 0;
}
