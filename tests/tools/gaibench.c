/* gaibench: getaddrinfo() calls per second over distinct names, for the
 * remote-DNS benchmark (socksify socks5h vs proxychains4 proxy_dns). Run
 * without a resolver hook it would ask real DNS: only run it hooked.
 *
 *   gaibench [--names N] [--rounds R] [--suffix S] [--family 4|6|any]
 *
 * After one untimed warm-up lookup, round 1 looks up N distinct names "bNNNNN.SUFFIX" (first sight: the hook
 * must allocate a fake address each); rounds 2..R repeat them (table hits).
 * Prints
 *   RESULT first_per_sec=F repeat_per_sec=P names=N failures=0 sample=ADDR
 * Exit 1 when any lookup failed or two names got the same address. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* Well beyond what a benchmark needs; keeps the address array bounded. */
#define MAX_NAMES 1000000

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One lookup; the first result's IPv4 address (or the low 32 bits of an
 * IPv6 one) in *key so distinct names can be checked for distinct answers. */
static int lookup(const char *name, int family, uint32_t *key, char *txt, size_t txtlen)
{
	struct addrinfo hints = { .ai_family = family, .ai_socktype = SOCK_STREAM }, *res = NULL;
	int r = getaddrinfo(name, "443", &hints, &res);
	if (r)
		return r;
	if (!res)
		return EAI_NONAME;
	const void *a;
	if (res->ai_family == AF_INET) {
		a = &((struct sockaddr_in *)res->ai_addr)->sin_addr;
		memcpy(key, a, 4);
	} else {
		a = &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
		memcpy(key, (const char *)a + 12, 4);
	}
	if (txt)
		inet_ntop(res->ai_family, a, txt, (socklen_t)txtlen);
	freeaddrinfo(res);
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	long n = 10000, rounds = 3;
	const char *suffix = "bench.example";
	int family = AF_INET;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--names"))
			n = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--rounds"))
			rounds = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--suffix"))
			suffix = argv[i + 1];
		else if (!strcmp(argv[i], "--family"))
			family = !strcmp(argv[i + 1], "6") ? AF_INET6
				 : !strcmp(argv[i + 1], "any") ? AF_UNSPEC : AF_INET;
		else
			goto usage;
	}
	if (argc % 2 == 0 || n < 1 || n > MAX_NAMES || rounds < 1)
		goto usage;

	uint32_t *keys = calloc((size_t)n, sizeof(*keys));
	if (!keys)
		return 1;
	char name[300], sample[INET6_ADDRSTRLEN] = "";
	long failures = 0;
	double first = 0, repeat = 0;
	/* One untimed lookup of another name: loading the config and creating
	 * the fake-address table happen once per process, not per lookup. */
	uint32_t k0;
	snprintf(name, sizeof(name), "warmup.%s", suffix);
	lookup(name, family, &k0, NULL, 0);
	for (long r = 0; r < rounds; r++) {
		double t0 = now_s();
		for (long i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "b%06ld.%s", i, suffix);
			uint32_t k;
			int e = lookup(name, family, &k, i == 0 && r == 0 ? sample : NULL,
				       sizeof(sample));
			if (e) {
				if (failures++ < 3)
					fprintf(stderr, "gaibench: %s: %s\n", name, gai_strerror(e));
				continue;
			}
			if (r == 0)
				keys[i] = k;
			else if (keys[i] != k && failures++ < 3)
				fprintf(stderr, "gaibench: %s changed address\n", name);
		}
		double el = now_s() - t0;
		if (r == 0)
			first = (double)n / el;
		else
			repeat += (double)n / el / (double)(rounds - 1);
	}
	qsort(keys, (size_t)n, sizeof(*keys), cmp_u32);
	long dups = 0;
	for (long i = 1; i < n; i++)
		dups += keys[i] == keys[i - 1];
	if (dups && !failures)
		fprintf(stderr, "gaibench: %ld names share an address\n", dups);
	printf("RESULT first_per_sec=%.0f repeat_per_sec=%.0f names=%ld failures=%ld dups=%ld "
	       "sample=%s\n",
	       first, repeat, n, failures, dups, sample);
	free(keys);
	return failures || dups ? 1 : 0;
usage:
	fprintf(stderr, "usage: gaibench [--names N] [--rounds R] [--suffix S] [--family 4|6|any]\n");
	return 2;
}
