/* A bounded set of logged keys (logonce.h): 64-bit hashes in a ring. */
#include <pthread.h>
#include <stdint.h>

#include "logonce.h"

static uint64_t seen[SFY_LOGONCE_MAX];
static unsigned next;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* FNV-1a over kind, a separator and key; 0 is "empty slot", so never 0. */
static uint64_t hash(const char *kind, const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const char *p = kind; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	h = (h ^ 0xff) * 0x100000001b3ULL;
	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	return h ? h : 1;
}

bool sfy_logonce_first(const char *kind, const char *key)
{
	uint64_t h = hash(kind, key);
	/* trylock: after a fork() in another thread's critical section the
	 * lock may stay taken; saying the line again is harmless. */
	if (pthread_mutex_trylock(&lock) != 0)
		return true;
	bool found = false;
	for (unsigned i = 0; i < SFY_LOGONCE_MAX && !found; i++)
		found = seen[i] == h;
	if (!found) {
		seen[next] = h;
		next = (next + 1) % SFY_LOGONCE_MAX;
	}
	pthread_mutex_unlock(&lock);
	return !found;
}
