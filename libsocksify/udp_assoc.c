/* UDP ASSOCIATE sessions: their life, the datagram codec and setting up an
 * association through the chain; fdreg.c maps fds to sessions. The hooks
 * (hooks_udp.c) decide what to do with a call; this file holds the state
 * and the wire format. */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "fakedns.h"
#include "hop_addr.h"
#include "fdreg.h"
#include "io.h"
#include "log.h"
#include "real.h"
#include "sock.h"
#include "udp_assoc.h"

/* ------------------------------------------------------------ sessions */

/* Guards the connected destination of every session (peer, peer_sa,
 * peer_sa_len): held for a copy, never across I/O. */
static pthread_mutex_t peer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void lock_prepare(void) { pthread_mutex_lock(&peer_lock); }
static void lock_release(void) { pthread_mutex_unlock(&peer_lock); }

/* A fork() while another thread holds the lock must not leave the child
 * with a lock nobody will release. */
static void atfork_setup(void)
{
	pthread_atfork(lock_prepare, lock_release, lock_release);
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
	return s;
}

void sfy_udp_sess_put(struct sfy_udp_sess *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	int ctl = atomic_exchange(&s->ctl, -1);
	if (ctl >= 0 && sfy_fdreg_ctl_release(ctl, s)) {
		int saved = errno;
		sfy_real()->close(ctl);
		errno = saved;
	}
	free(s);
}

void sfy_udp_ctl_lost(struct sfy_udp_sess *s)
{
	atomic_store(&s->ctl, -1);
	atomic_store(&s->dead, true);
}

bool sfy_udp_peer_get(struct sfy_udp_sess *s, struct sfy_addr *dst,
		      struct sockaddr_storage *sa, socklen_t *salen)
{
	if (!atomic_load(&s->peer_set))
		return false;
	pthread_mutex_lock(&peer_lock);
	bool set = atomic_load(&s->peer_set);
	if (set && dst)
		*dst = s->peer;
	if (set && sa) {
		*sa = s->peer_sa;
		*salen = s->peer_sa_len;
	}
	pthread_mutex_unlock(&peer_lock);
	return set;
}

void sfy_udp_peer_set(struct sfy_udp_sess *s, const struct sfy_addr *dst,
		      const struct sockaddr *sa, socklen_t len)
{
	pthread_mutex_lock(&peer_lock);
	if (dst) {
		s->peer = *dst;
		s->peer_sa_len = len < sizeof(s->peer_sa) ? len : sizeof(s->peer_sa);
		memcpy(&s->peer_sa, sa, s->peer_sa_len);
	}
	atomic_store(&s->peer_set, dst != NULL);
	pthread_mutex_unlock(&peer_lock);
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
		 * the fake address it was given, and only in remote mode. A name
		 * the program never asked for allocates nothing: a hostile relay
		 * must not be able to fill the tree's table. */
		uint32_t ip;
		if (!remote || sfy_fakedns_find(a.name, &ip) < 0)
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
	if (!cfg->nproxies) {
		/* A route with no hops is direct: never associated (dest.h). */
		*why = "the route has no proxy";
		return -EPROTONOSUPPORT;
	}
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

/* A relay name resolved here, only where this machine may resolve names
 * at all (local DNS), and within the connect timeout. */
static int resolve(const struct sfy_config *cfg, const char *host, uint16_t port,
		   struct sfy_addr *out)
{
	return sfy_resolve_by(host, port, sfy_now_ms() + cfg->connect_timeout_ms, out);
}

/* Where datagrams go: BND of the reply. A relay that answers 0.0.0.0 (or ::)
 * means "the address you reached me at": the address of the hop that
 * answered (rep), when this machine knows it -- hop 1's connected address,
 * or an inner hop given as an IP literal. An inner hop given by name was
 * never resolved here; with remote DNS it is not resolved now either. A name
 * in BND is resolved here only with local DNS: in remote mode no name may
 * reach this machine's resolver, whoever sent it. */
static int relay_addr(const struct sfy_config *cfg, const struct sfy_chain_report *rep,
		      struct sfy_addr *out)
{
	const struct sfy_addr *bnd = &rep->bnd;
	*out = *bnd;
	if (bnd->type == SFY_ATYP_DOMAIN) {
		if (cfg->dns != SFY_DNS_REMOTE)
			return resolve(cfg, bnd->name, bnd->port, out);
		char txt[300];
		sfy_addr_format(bnd, txt, sizeof(txt));
		sfy_warn("udp: the proxy named its relay %s; DNS is remote, so it is not resolved "
			 "here and the association fails", txt);
		return -EHOSTUNREACH;
	}
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
	return resolve(cfg, p->host, bnd->port, out);
}

/* DST of the request: the address the client will send from, when the
 * program bound one (RFC 1928); else 0.0.0.0:0, "any of the client's". */
static void assoc_dst(int fd, struct sfy_addr *dst)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	memset(dst, 0, sizeof(*dst));
	dst->type = SFY_ATYP_IPV4;
	if (sfy_real()->getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
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
	if ((r = sfy_fdreg_ctl_tag(ctl, s)) < 0)
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
int sfy_udp_autobind(int fd, int family, struct sockaddr_storage *ss, socklen_t *sl)
{
	*sl = sizeof(*ss);
	if (sfy_real()->getsockname(fd, (struct sockaddr *)ss, sl) < 0)
		return -errno;
	if (sfy_sockaddr_port((struct sockaddr *)ss) != 0)
		return 0;
	struct sockaddr_storage any;
	memset(&any, 0, sizeof(any));
	any.ss_family = (sa_family_t)family;
	socklen_t al = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	/* EINVAL: another thread bound it meanwhile. */
	if (sfy_real()->bind(fd, (struct sockaddr *)&any, al) < 0 && errno != EINVAL)
		return -errno;
	*sl = sizeof(*ss);
	if (sfy_real()->getsockname(fd, (struct sockaddr *)ss, sl) < 0)
		return -errno;
	return 0;
}

struct sfy_udp_sess *sfy_udp_assoc_get(int fd)
{
	struct sfy_udp_sess *s = sfy_fdreg_udp_get(fd);
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
