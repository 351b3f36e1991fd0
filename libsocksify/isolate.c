/* Isolation tokens (isolate.h). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "isolate.h"

static char tree[SFY_ISOLATE_TOKEN_LEN + 1];
static pthread_once_t tree_once = PTHREAD_ONCE_INIT;

bool sfy_isolate_token_ok(const char *s)
{
	if (!s || strlen(s) != SFY_ISOLATE_TOKEN_LEN)
		return false;
	return strspn(s, "0123456789abcdef") == SFY_ISOLATE_TOKEN_LEN;
}

/* n random bytes as 2n hex digits. getrandom() cannot fail for so few
 * bytes once the pool is up; before it is (early boot) the clock, the pid
 * and a counter still keep tokens apart, which is all isolation needs --
 * the token is no secret from anyone who can see the proxy traffic. */
static void random_hex(char *out, size_t n)
{
	static atomic_uint ctr;
	unsigned char b[16];
	if (n > sizeof(b))
		n = sizeof(b);
	if (getrandom(b, n, GRND_NONBLOCK) != (ssize_t)n) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		unsigned long long v = (unsigned long long)ts.tv_nsec ^
				       (unsigned long long)ts.tv_sec << 30 ^
				       (unsigned long long)getpid() << 40 ^ atomic_fetch_add(&ctr, 1);
		for (size_t i = 0; i < n; i++, v = v * 6364136223846793005ull + 1442695040888963407ull)
			b[i] = (unsigned char)(v >> 56);
	}
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static void tree_init(void)
{
	const char *v = getenv(SFY_ISOLATE_ENV);
	if (sfy_isolate_token_ok(v))
		memcpy(tree, v, sizeof(tree));
	else
		random_hex(tree, SFY_ISOLATE_TOKEN_LEN / 2);
}

const char *sfy_isolate_tree_token(void)
{
	pthread_once(&tree_once, tree_init);
	return tree;
}

int sfy_isolate_export(void)
{
	pthread_once(&tree_once, tree_init);
	random_hex(tree, SFY_ISOLATE_TOKEN_LEN / 2);
	return setenv(SFY_ISOLATE_ENV, tree, 1) < 0 ? -errno : 0;
}

const char *sfy_isolate_pass(enum sfy_isolate m, char buf[static SFY_ISOLATE_PASS_MAX])
{
	if (m != SFY_ISOLATE_PROCESS && m != SFY_ISOLATE_CONNECTION)
		return NULL;
	/* connection: fresh random bytes, nothing of the tree's token, so no
	 * two connections' passwords have anything in common. */
	if (m == SFY_ISOLATE_CONNECTION)
		random_hex(buf, SFY_ISOLATE_TOKEN_LEN / 2);
	else
		memcpy(buf, sfy_isolate_tree_token(), SFY_ISOLATE_TOKEN_LEN + 1);
	return buf;
}

/* At load, before the program runs (and before the exec guard's
 * constructor takes its snapshot of the SOCKSIFY_* variables: the
 * priority orders it first): the only moment setenv() cannot race the
 * program's threads. Outside the launcher's tree (no sealed configuration)
 * a process without a token whose configuration isolates makes the tree's
 * and exports it, so its fork()ed and exec'd children share it; with
 * isolate: none the environment gets nothing (it would only be a tag for
 * anyone who reads it). In the launcher's tree the launcher exported one
 * when the configuration isolates; none there means isolate: none, or a
 * program that dropped it: a private token then. */
__attribute__((constructor(150))) static void isolate_init(void)
{
	const char *v = getenv(SFY_ISOLATE_ENV);
	if (sfy_isolate_token_ok(v))
		return;
	const char *cfd = getenv(SFY_CONFIG_FD_ENV);
	if (cfd && *cfd)
		return;
	if (sfy_config_env_isolates())
		setenv(SFY_ISOLATE_ENV, sfy_isolate_tree_token(), 1);
}
