#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "peer.h"

/* Two levels, allocated on demand: 1024 chunks of 1024 entries cover fds up
 * to 1M (the kernel's default nr_open). Higher fds are not recorded, and
 * getpeername() then answers the first hop. */
#define CHUNK 1024
#define NCHUNK 1024

struct entry {
	dev_t dev;
	ino_t ino;
	socklen_t len;
	struct sockaddr_storage sa;
};

static _Atomic(struct entry *) chunks[NCHUNK];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static struct entry *slot(int fd, bool create)
{
	if (fd < 0 || fd >= CHUNK * NCHUNK)
		return NULL;
	_Atomic(struct entry *) *c = &chunks[fd / CHUNK];
	struct entry *e = atomic_load(c);
	if (!e && create) {
		struct entry *n = calloc(CHUNK, sizeof(*n));
		if (!n)
			return NULL;
		if (!atomic_compare_exchange_strong(c, &e, n))
			free(n);
		else
			e = n;
	}
	return e ? &e[fd % CHUNK] : NULL;
}

void sfy_peer_set(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct stat st;
	struct entry *e = slot(fd, true);
	if (!e || fstat(fd, &st) < 0 || len > sizeof(e->sa))
		return;
	pthread_mutex_lock(&lock);
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->len = len;
	memcpy(&e->sa, sa, len);
	pthread_mutex_unlock(&lock);
}

bool sfy_peer_get(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct stat st;
	struct entry *e = slot(fd, false);
	if (!e || fstat(fd, &st) < 0)
		return false;
	bool found = false;
	pthread_mutex_lock(&lock);
	if (e->len && e->ino == st.st_ino && e->dev == st.st_dev) {
		memcpy(sa, &e->sa, *len < e->len ? *len : e->len);
		*len = e->len;
		found = true;
	}
	pthread_mutex_unlock(&lock);
	return found;
}
