/* The step-by-step set is one bit per proxy index (the config, and so the
 * indexes, are the same for the whole process tree). It lives in the
 * environment variable SOCKSIFY_STEPWISE so that children and exec'd programs
 * start with what their parent learnt. The launcher pre-creates the variable
 * so that setenv() later replaces a value in place instead of growing
 * environ under other threads. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "stepwise.h"

static _Atomic unsigned long mask;
static pthread_once_t mask_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t env_lock = PTHREAD_MUTEX_INITIALIZER;

_Static_assert(SFY_MAX_PROXIES <= 32, "stepwise mask holds 32 proxies");

static void mask_load(void)
{
	const char *s = getenv("SOCKSIFY_STEPWISE");
	if (s && *s)
		atomic_store(&mask, strtoul(s, NULL, 16));
}

bool sfy_stepwise_get(size_t i)
{
	pthread_once(&mask_once, mask_load);
	return (atomic_load(&mask) >> i) & 1;
}

void sfy_stepwise_set(size_t i)
{
	pthread_once(&mask_once, mask_load);
	unsigned long m = atomic_fetch_or(&mask, 1UL << i) | (1UL << i);
	char v[20];
	snprintf(v, sizeof(v), "%lx", m);
	pthread_mutex_lock(&env_lock);
	setenv("SOCKSIFY_STEPWISE", v, 1);
	pthread_mutex_unlock(&env_lock);
}
