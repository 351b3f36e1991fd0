/* A bounded set of logged keys (logonce.h): 64-bit hashes in a ring.
 * Lock-free, so that fork() (in another thread's call) leaves nothing
 * held in the child: two threads racing on one new key may both log it,
 * which is the same harmless worst case as an evicted key. */
#include <stdatomic.h>
#include <stdint.h>

#include "logonce.h"

static _Atomic uint64_t seen[SFY_LOGONCE_MAX];
static atomic_uint next;

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
	for (unsigned i = 0; i < SFY_LOGONCE_MAX; i++)
		if (atomic_load_explicit(&seen[i], memory_order_relaxed) == h)
			return false;
	unsigned slot = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed);
	atomic_store_explicit(&seen[slot % SFY_LOGONCE_MAX], h, memory_order_relaxed);
	return true;
}
