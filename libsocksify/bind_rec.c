/* The proxied connections, keyed by socket identity (bind_rec.h): what
 * getsockname() of one answers (its BND), which addresses bind() accepts
 * as handed out, and which connection a BIND is sent for. A ring of
 * SFY_BIND_REC_N; entries are checked, never trusted: a connection is
 * alive only while its descriptor still holds the same socket with a
 * recorded peer (fdreg.h). */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>

#include "bind.h"
#include "bind_rec.h"
#include "fdreg.h"
#include "real.h"
#include "state.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct sfy_bind_proxied ring[SFY_BIND_REC_N];
static uint64_t seq_of[SFY_BIND_REC_N];        /* 0: empty */
static uint64_t next_seq;
static atomic_bool any;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void at_prepare(void) { pthread_mutex_lock(&mu); }
static void at_parent(void) { pthread_mutex_unlock(&mu); }
/* The child's copy is its own: its descriptors are the same numbers. */
static void at_child(void) { pthread_mutex_init(&mu, NULL); }

static void setup(void)
{
	pthread_atfork(at_prepare, at_parent, at_child);
}

static bool identity(int fd, dev_t *dev, ino_t *ino)
{
	struct stat st;
	int e = errno;
	bool ok = fstat(fd, &st) == 0;
	errno = e;
	if (ok) {
		*dev = st.st_dev;
		*ino = st.st_ino;
	}
	return ok;
}

bool sfy_bind_any_proxied(void)
{
	return atomic_load_explicit(&any, memory_order_relaxed);
}

void sfy_bind_note_proxied(int fd, int idfd, const struct sfy_config *cfg,
			   const struct sockaddr *peer, socklen_t peer_len,
			   const struct sfy_chain_report *rep)
{
	if (!rep || !rep->nhops || rep->nhops > SFY_MAX_PROXIES || !sfy_fdreg_owner())
		return;
	/* bind: off: every reader refuses anyway; the any gate stays closed. */
	const struct sfy_config *top = sfy_config_peek();
	if (!top || top->bind_off)
		return;
	struct sfy_bind_proxied p = { .fd = fd, .cfg = cfg, .nhops = rep->nhops, .dst = rep->dst,
				      .last_known = rep->last_addr_known,
				      .last_addr = rep->last_addr };
	if (!identity(idfd, &p.dev, &p.ino))
		return;
	memcpy(p.hops, rep->hops, rep->nhops * sizeof(rep->hops[0]));
	if (peer && peer_len <= sizeof(p.peer)) {
		memcpy(&p.peer, peer, peer_len);
		p.peer_len = peer_len;
	}
	/* An all-zero BND (microsocks says 0.0.0.0:0) says nothing; a socket
	 * the program bound itself keeps the address it chose. */
	static const uint8_t zero[16];
	size_t n = rep->bnd.type == SFY_ATYP_IPV4 ? 4 : rep->bnd.type == SFY_ATYP_IPV6 ? 16 : 0;
	if (n && memcmp(rep->bnd.ip, zero, n) && !rep->bound) {
		int l = sfy_addr_to_sockaddr(&rep->bnd, n == 4 ? AF_INET : AF_INET6, &p.bnd);
		p.bnd_len = l > 0 ? (socklen_t)l : 0;
	}
	socklen_t ll = sizeof(p.loc);
	int e = errno;
	if (sfy_real()->getsockname(idfd, (struct sockaddr *)&p.loc, &ll) == 0 &&
	    ll <= sizeof(p.loc))
		p.loc_len = ll;
	errno = e;
	pthread_once(&once, setup);
	pthread_mutex_lock(&mu);
	/* The same socket again (a reconnect of one descriptor): its slot. */
	size_t at = 0;
	uint64_t oldest = UINT64_MAX;
	for (size_t i = 0; i < SFY_BIND_REC_N; i++) {
		if (seq_of[i] && ring[i].dev == p.dev && ring[i].ino == p.ino) {
			at = i;
			break;
		}
		if (seq_of[i] < oldest) {
			oldest = seq_of[i];
			at = i;
		}
	}
	ring[at] = p;
	seq_of[at] = ++next_seq;
	pthread_mutex_unlock(&mu);
	atomic_store(&any, true);
}

/* A copy of the entry of socket (dev, ino), if remembered. */
static bool find(dev_t dev, ino_t ino, struct sfy_bind_proxied *out)
{
	bool found = false;
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < SFY_BIND_REC_N && !found; i++)
		if (seq_of[i] && ring[i].dev == dev && ring[i].ino == ino) {
			*out = ring[i];
			found = true;
		}
	pthread_mutex_unlock(&mu);
	return found;
}

bool sfy_bind_proxied_sockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	if (!sfy_bind_any_proxied() || !sa || !len || !sfy_fdreg_has(fd, SFY_FDREG_PEER))
		return false;
	const struct sfy_config *top = sfy_config_peek();
	if (!top || top->bind_off)
		return false;
	struct sfy_bind_proxied p;
	dev_t dev;
	ino_t ino;
	if (!identity(fd, &dev, &ino) || !find(dev, ino, &p) || !p.bnd_len)
		return false;
	struct sockaddr_storage own;
	socklen_t ol = sizeof(own);
	if (sfy_real()->getsockname(fd, (struct sockaddr *)&own, &ol) < 0)
		return false;
	/* In the socket's family: v4-mapped for an AF_INET6 socket; an IPv6
	 * BND cannot be shown by an AF_INET one. */
	struct sfy_addr a;
	struct sockaddr_storage out;
	if (sfy_addr_from_sockaddr(&a, (struct sockaddr *)&p.bnd, p.bnd_len) < 0)
		return false;
	socklen_t n = sfy_bind_in_family(&a, own.ss_family, &out);
	if (!n)
		return false;
	sfy_bind_copy_out(&out, n, sa, len);
	return true;
}

/* Is p's connection still open on its descriptor? */
static bool alive(const struct sfy_bind_proxied *p)
{
	dev_t dev;
	ino_t ino;
	return sfy_fdreg_has(p->fd, SFY_FDREG_PEER) && identity(p->fd, &dev, &ino) &&
	       dev == p->dev && ino == p->ino;
}

/* Does p's connection hand out the address a program bound with at? */
static bool matches(const struct sfy_bind_proxied *p, enum sfy_bind_at at,
		    const struct sockaddr *asked, socklen_t asked_len)
{
	if (at == SFY_BIND_AT_HANDED)
		return p->bnd_len && sfy_bind_same_ip((const struct sockaddr *)&p->bnd, p->bnd_len,
						      asked, asked_len);
	return p->loc_len && sfy_bind_same_ip((const struct sockaddr *)&p->loc, p->loc_len,
					      asked, asked_len);
}

bool sfy_bind_rec_pick(enum sfy_bind_at at, const struct sockaddr *asked, socklen_t asked_len,
		       struct sfy_bind_proxied *out)
{
	if (!sfy_bind_any_proxied())
		return false;
	bool want = asked && asked_len && (at == SFY_BIND_AT_HANDED || at == SFY_BIND_AT_PROXIED);
	bool have_any = false;
	struct sfy_bind_proxied c;
	/* Newest first; the checks (fstat) run outside the lock. */
	for (uint64_t below = UINT64_MAX;;) {
		size_t best = SFY_BIND_REC_N;
		uint64_t bs = 0;
		pthread_mutex_lock(&mu);
		for (size_t i = 0; i < SFY_BIND_REC_N; i++)
			if (seq_of[i] && seq_of[i] < below && seq_of[i] > bs) {
				bs = seq_of[i];
				best = i;
			}
		if (best < SFY_BIND_REC_N)
			c = ring[best];
		pthread_mutex_unlock(&mu);
		if (best == SFY_BIND_REC_N)
			return have_any;
		below = bs;
		if (!alive(&c))
			continue;
		if (!want || matches(&c, at, asked, asked_len)) {
			*out = c;
			return true;
		}
		if (!have_any) {        /* the latest alive, should none match */
			*out = c;
			have_any = true;
		}
	}
}

size_t sfy_bind_rec_handed(struct sockaddr_storage *out, size_t cap)
{
	size_t n = 0;
	if (!sfy_bind_any_proxied())
		return 0;
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < SFY_BIND_REC_N && n < cap; i++)
		if (seq_of[i] && ring[i].bnd_len)
			out[n++] = ring[i].bnd;
	pthread_mutex_unlock(&mu);
	return n;
}

size_t sfy_bind_rec_locals(struct sockaddr_storage *out, size_t cap)
{
	if (!sfy_bind_any_proxied())
		return 0;
	/* Copies first: the liveness checks (fstat) run outside the lock. */
	struct sfy_bind_proxied c;
	size_t n = 0;
	for (size_t i = 0; i < SFY_BIND_REC_N && n < cap; i++) {
		pthread_mutex_lock(&mu);
		bool have = seq_of[i] && ring[i].loc_len;
		if (have)
			c = ring[i];
		pthread_mutex_unlock(&mu);
		if (have && alive(&c))
			out[n++] = c.loc;
	}
	return n;
}
