/* UDP ASSOCIATE sessions: the per-fd table, the datagram codec and setting
 * up an association through the chain. The hooks (hooks_udp.c) decide what
 * to do with a call; this file holds the state and the wire format. */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "fakedns.h"
#include "io.h"
#include "log.h"
#include "real.h"
#include "udp_assoc.h"

/* ------------------------------------------------------------ the table */

/* Two levels, allocated on demand like peer.c: 1024 chunks of 1024 slots
 * cover fds up to 1M (the kernel's default nr_open). A UDP socket above that
 * cannot get a session, so its sends fail closed (see hooks_udp.c). */
#define CHUNK 1024
#define NCHUNK 1024
/* Low bit of a slot: the fd is a control connection of the session the rest
 * of the slot points to (sessions are malloc()ed, so the bit is free). */
#define TAG_CTL ((uintptr_t)1)

typedef _Atomic(uintptr_t) slot_t;

static _Atomic(slot_t *) chunks[NCHUNK];
/* Guards slot changes and reference taking; held only for a few loads and
 * stores, never across I/O or a real close(). */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void lock_prepare(void) { pthread_mutex_lock(&table_lock); }
static void lock_release(void) { pthread_mutex_unlock(&table_lock); }

/* A fork() while another thread holds the lock must not leave the child
 * with a lock nobody will release. */
static void atfork_setup(void)
{
	pthread_atfork(lock_prepare, lock_release, lock_release);
}

static slot_t *slot(int fd, bool create)
{
	if (fd < 0 || fd >= CHUNK * NCHUNK)
		return NULL;
	_Atomic(slot_t *) *c = &chunks[fd / CHUNK];
	slot_t *e = atomic_load_explicit(c, memory_order_acquire);
	if (!e && create) {
		slot_t *n = calloc(CHUNK, sizeof(*n));
		if (!n)
			return NULL;
		if (atomic_compare_exchange_strong(c, &e, n))
			e = n;
		else
			free(n);
	}
	return e ? &e[fd % CHUNK] : NULL;
}

bool sfy_udp_maybe(int fd)
{
	slot_t *e = slot(fd, false);
	return e && atomic_load_explicit(e, memory_order_relaxed) != 0;
}

struct sfy_udp_sess *sfy_udp_sess_new(enum sfy_udp_kind kind, int family)
{
	pthread_once(&atfork_once, atfork_setup);
	struct sfy_udp_sess *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	atomic_init(&s->refs, 1);
	atomic_init(&s->ctl, -1);
	s->kind = kind;
	s->family = family;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void sfy_udp_sess_put(struct sfy_udp_sess *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	int ctl = atomic_exchange(&s->ctl, -1);
	if (ctl >= 0) {
		slot_t *e = slot(ctl, false);
		pthread_mutex_lock(&table_lock);
		uintptr_t want = (uintptr_t)s | TAG_CTL;
		if (e)
			atomic_compare_exchange_strong(e, &want, 0);
		pthread_mutex_unlock(&table_lock);
		int saved = errno;
		sfy_real()->close(ctl);
		errno = saved;
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

struct sfy_udp_sess *sfy_udp_get(int fd)
{
	slot_t *e = slot(fd, false);
	if (!e || !atomic_load_explicit(e, memory_order_relaxed))
		return NULL;
	struct sfy_udp_sess *s = NULL;
	pthread_mutex_lock(&table_lock);
	uintptr_t v = atomic_load(e);
	if (v && !(v & TAG_CTL)) {
		s = (struct sfy_udp_sess *)v;
		atomic_fetch_add(&s->refs, 1);
	}
	pthread_mutex_unlock(&table_lock);
	return s;
}

/* Under table_lock: a control tag found where the program now has a socket
 * of its own means the control fd was closed behind our back. */
static void ctl_lost_locked(uintptr_t v)
{
	struct sfy_udp_sess *s = (struct sfy_udp_sess *)(v & ~TAG_CTL);
	atomic_store(&s->ctl, -1);
	atomic_store(&s->dead, true);
}

struct sfy_udp_sess *sfy_udp_install(int fd, struct sfy_udp_sess *s)
{
	slot_t *e = slot(fd, true);
	if (!e)
		return NULL;
	struct sfy_udp_sess *got = s;
	pthread_mutex_lock(&table_lock);
	uintptr_t v = atomic_load(e);
	if (v && !(v & TAG_CTL)) {
		got = (struct sfy_udp_sess *)v;
		atomic_fetch_add(&got->refs, 1);
	} else {
		if (v)
			ctl_lost_locked(v);
		atomic_fetch_add(&s->refs, 1);
		atomic_store(e, (uintptr_t)s);
	}
	pthread_mutex_unlock(&table_lock);
	return got;
}

int sfy_udp_tag_ctl(int ctl, struct sfy_udp_sess *s)
{
	slot_t *e = slot(ctl, true);
	if (!e)
		return -EMFILE;
	pthread_mutex_lock(&table_lock);
	atomic_store(e, (uintptr_t)s | TAG_CTL);
	pthread_mutex_unlock(&table_lock);
	return 0;
}

bool sfy_udp_forget(int fd)
{
	slot_t *e = slot(fd, false);
	if (!e || !atomic_load_explicit(e, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&table_lock);
	uintptr_t v = atomic_exchange(e, 0);
	if (v & TAG_CTL)
		ctl_lost_locked(v);
	pthread_mutex_unlock(&table_lock);
	if (v && !(v & TAG_CTL))
		sfy_udp_sess_put((struct sfy_udp_sess *)v);
	return v != 0;
}

void sfy_udp_forget_range(unsigned first, unsigned last)
{
	for (unsigned c = first / CHUNK; c < NCHUNK && c <= last / CHUNK; c++) {
		slot_t *e = atomic_load_explicit(&chunks[c], memory_order_acquire);
		if (!e)
			continue;
		for (unsigned i = 0; i < CHUNK; i++) {
			unsigned fd = c * CHUNK + i;
			if (fd >= first && fd <= last && atomic_load_explicit(&e[i],
									memory_order_relaxed))
				sfy_udp_forget((int)fd);
		}
	}
}

void sfy_udp_dup(int oldfd, int newfd)
{
	struct sfy_udp_sess *s = sfy_udp_get(oldfd);
	if (!s)
		return;
	struct sfy_udp_sess *got = sfy_udp_install(newfd, s);
	if (got && got != s)
		sfy_udp_sess_put(got);
	sfy_udp_sess_put(s);
}

/* ------------------------------------------------------------ the codec */

/*   +----+------+------+----------+----------+----------+
 *   |RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |   RFC 1928 s.7
 *   +----+------+------+----------+----------+----------+
 *   | 2  |  1   |  1   | Variable |    2     | Variable |
 * The header travels inside the one UDP datagram, so it counts against the
 * datagram limit of the relay's address family. */
ssize_t sfy_udp_encode(uint8_t hdr[static SFY_S5_UDP_HDR_MAX], const struct sfy_addr *dst,
		       size_t payload, size_t max_dgram)
{
	ssize_t h = sfy_s5_build_udp_header(hdr, SFY_S5_UDP_HDR_MAX, 0, dst);
	if (h < 0)
		return h;
	if (payload > max_dgram || (size_t)h > max_dgram - payload)
		return -EMSGSIZE;
	return h;
}

enum sfy_udp_verdict sfy_udp_decode(const uint8_t *buf, size_t len, int family, bool remote,
				    size_t *off, struct sockaddr_storage *src,
				    socklen_t *srclen)
{
	size_t hl;
	uint8_t frag;
	struct sfy_addr a;
	if (sfy_s5_parse_udp_header(buf, len, &hl, &frag, &a) != SFY_PARSE_COMPLETE)
		return SFY_UDP_DROP_MALFORMED;
	if (frag != 0)
		return SFY_UDP_DROP_FRAG;
	if (a.type == SFY_ATYP_DOMAIN) {
		/* A relay naming the source: the program knows that name only by
		 * its fake address, and only in remote mode. */
		uint32_t ip;
		if (!remote || sfy_fakedns_ipv4(a.name, &ip) < 0)
			return SFY_UDP_DROP_FAMILY;
		a.type = SFY_ATYP_IPV4;
		memcpy(a.ip, &ip, 4);
	}
	int n = sfy_addr_to_sockaddr(&a, family, src);
	if (n < 0)
		return SFY_UDP_DROP_FAMILY;
	*srclen = (socklen_t)n;
	*off = hl;
	return SFY_UDP_DELIVER;
}

/* ------------------------------------------------------------ associations */

int sfy_udp_chain_ok(const struct sfy_config *cfg, const char **why)
{
	bool any_last = cfg->chain == SFY_CHAIN_RANDOM || cfg->chain == SFY_CHAIN_ROUND_ROBIN;
	for (size_t i = any_last ? 0 : cfg->nproxies - 1; i < cfg->nproxies; i++) {
		enum sfy_proto p = cfg->proxies[i].proto;
		if (p != SFY_PROTO_SOCKS5 && p != SFY_PROTO_SOCKS5H) {
			*why = any_last ? "every hop of a random/round_robin chain must be SOCKS5"
					: "the last hop must be SOCKS5";
			return -EPROTONOSUPPORT;
		}
	}
	return 0;
}

static bool ip_unspecified(const struct sfy_addr *a)
{
	static const uint8_t zero[16];
	return (a->type == SFY_ATYP_IPV4 && !memcmp(a->ip, zero, 4)) ||
	       (a->type == SFY_ATYP_IPV6 && !memcmp(a->ip, zero, 16));
}

static int resolve(const char *host, uint16_t port, struct sfy_addr *out)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	if (sfy_real()->getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
		return -EHOSTUNREACH;
	int r = sfy_addr_from_sockaddr(out, res->ai_addr, res->ai_addrlen);
	sfy_real()->freeaddrinfo(res);
	out->port = port;
	return r;
}

/* Where datagrams go: BND of the reply. A relay that answers 0.0.0.0 (or ::)
 * means "the address you reached me at": the address of the hop that
 * answered (rep), when this machine knows it -- hop 1's connected address,
 * or an inner hop given as an IP literal. An inner hop given by name was
 * never resolved here; with remote DNS it is not resolved now either. A name
 * in BND is resolved here, locally: it names the proxy, not a destination. */
static int relay_addr(const struct sfy_config *cfg, const struct sfy_chain_report *rep,
		      struct sfy_addr *out)
{
	const struct sfy_addr *bnd = &rep->bnd;
	*out = *bnd;
	if (bnd->type == SFY_ATYP_DOMAIN)
		return resolve(bnd->name, bnd->port, out);
	if (!ip_unspecified(bnd))
		return 0;
	if (rep->last_addr_known) {
		*out = rep->last_addr;
		out->port = bnd->port;
		return 0;
	}
	const struct sfy_proxy *p = &cfg->proxies[rep->last];
	if (cfg->dns == SFY_DNS_REMOTE) {
		char hop[600];
		sfy_proxy_format(p, hop, sizeof(hop));
		sfy_warn("udp: relay of %s answered 0.0.0.0 (\"where you reached me\"), but that hop "
			 "is known here only by name and DNS is remote; give it as an IP address",
			 hop);
		return -EHOSTUNREACH;
	}
	return resolve(p->host, bnd->port, out);
}

/* DST of the request: the address the client will send from, when the
 * program bound one (RFC 1928); else 0.0.0.0:0, "any of the client's". */
static void assoc_dst(int fd, struct sfy_addr *dst)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	memset(dst, 0, sizeof(*dst));
	dst->type = SFY_ATYP_IPV4;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	struct sfy_addr a;
	if (sfy_addr_from_sockaddr(&a, (struct sockaddr *)&ss, sl) == 0 && a.port &&
	    !ip_unspecified(&a))
		*dst = a;
}

int sfy_udp_associate(const struct sfy_config *cfg, int fd, struct sfy_udp_sess *s)
{
	char txt[300];
	int ctl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ctl < 0)
		return -errno;
	struct sfy_addr dst, relay;
	struct sfy_chain_report rep;
	assoc_dst(fd, &dst);
	int r = sfy_chain_connect(cfg, ctl, &dst, SFY_S5_UDP_ASSOCIATE, &rep);
	if (r < 0)
		goto fail;   /* the chain has logged it */
	r = relay_addr(cfg, &rep, &relay);
	int n = r < 0 ? r : sfy_addr_to_sockaddr(&relay, s->family, &s->relay);
	if (n < 0) {
		r = n;
		sfy_addr_format(&rep.bnd, txt, sizeof(txt));
		sfy_warn("udp: relay %s is unusable from this socket (%s)", txt,
			 strerrorname_np(-r));
		goto fail;
	}
	s->relay_len = (socklen_t)n;
	s->max_dgram = relay.type == SFY_ATYP_IPV6 ? SFY_UDP_MAX_V6 : SFY_UDP_MAX_V4;
	if ((r = sfy_udp_tag_ctl(ctl, s)) < 0)
		goto fail;
	atomic_store(&s->ctl, ctl);
	atomic_store(&s->ctl_checked_ms, sfy_now_ms());
	s->kind = SFY_UDP_SESS_ASSOC;
	if (sfy_log_level_get() >= SFY_LOG_INFO) {
		sfy_addr_format(&relay, txt, sizeof(txt));
		sfy_info("udp: associated, relay %s", txt);
	}
	return 0;
fail:
	sfy_real()->close(ctl);
	return r;
}

bool sfy_udp_alive(struct sfy_udp_sess *s)
{
	if (atomic_load_explicit(&s->dead, memory_order_relaxed))
		goto dead;
	int64_t now = sfy_now_ms();
	int64_t last = atomic_load_explicit(&s->ctl_checked_ms, memory_order_relaxed);
	if (now - last < SFY_UDP_CTL_CHECK_MS)
		return true;
	atomic_store_explicit(&s->ctl_checked_ms, now, memory_order_relaxed);
	int ctl = atomic_load(&s->ctl);
	if (ctl >= 0) {
		/* The proxy sends nothing on the control connection; EOF or an error
		 * means it ended the association. */
		int saved = errno;
		char b;
		ssize_t r = sfy_real()->recv(ctl, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		bool ok = r > 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
					     errno == EINTR));
		errno = saved;
		if (ok)
			return true;
	}
	atomic_store(&s->dead, true);
dead:
	if (!atomic_exchange(&s->dead_logged, true))
		sfy_warn("udp: the proxy's control connection is gone; the association ended "
			 "(sends fail with ECONNRESET, close the socket to start a new one)");
	return false;
}

bool sfy_udp_from_relay(const struct sfy_udp_sess *s, const struct sockaddr *sa,
			socklen_t len)
{
	if (sa->sa_family != s->relay.ss_family || len < s->relay_len)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa, *b = (const void *)&s->relay;
		return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *a = (const void *)sa, *b = (const void *)&s->relay;
	return a->sin6_port == b->sin6_port &&
	       !memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr));
}

/* A session with an association, with a reference, or NULL. */
struct sfy_udp_sess *sfy_udp_assoc_get(int fd)
{
	struct sfy_udp_sess *s = sfy_udp_get(fd);
	if (s && s->kind != SFY_UDP_SESS_ASSOC) {
		sfy_udp_sess_put(s);
		s = NULL;
	}
	return s;
}

ssize_t sfy_udp_ret(ssize_t r)
{
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}
