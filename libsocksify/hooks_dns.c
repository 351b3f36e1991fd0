/* Resolver interposers: getaddrinfo/freeaddrinfo, gethostbyname(2)(_r),
 * gethostbyaddr(_r), getnameinfo.
 *
 * dns: local -> the real functions, untouched. dns: remote -> a name gets
 * a fake address (fakedns.c) without any network traffic, except names the
 * policy exempts (numeric, /etc/hosts, localhost, own hostname), which the
 * real functions answer from the file or we answer with the loopback
 * address. Reverse lookups of fake addresses give the name back (in every
 * mode: local-DNS mode hands them out too, for .onion names and names the
 * rules fake, and their PTR query must not leave); other reverse lookups
 * answer from /etc/hosts or numerically, never by PTR query.
 * Without a usable configuration, names that would be faked fail: a
 * direct lookup would leak, and no connection could be made anyway.
 *
 * dns: proxy (dns_proxy.h) is remote mode whose names, instead of a fake
 * address, get the real one the chain's last hop answers to RESOLVE (and
 * reverse lookups of real addresses its RESOLVE_PTR answer); the answers
 * are remembered like local ones (dnsmem.h), so name rules apply at
 * connect. .onion/.exit/.i2p names are never asked: fake addresses.
 *
 * Routing rules (dns_rules.h) decide per name before any of that: a name
 * they block fails with no packet, a name whose every route resolves
 * locally goes to the real functions and their answers are remembered
 * (dnsmem.h), the rest is faked. Remote mode is on when any route resolves
 * names remotely; with rules but no such route (every route local) the
 * real functions answer, except for blocked names. Numeric names and
 * localhost are never subject to the rules: connect() decides by address. */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include "dns_proxy.h"
#include "dns_rules.h"
#include "fakedns.h"
#include "log.h"
#include "real.h"
#include "route.h"
#include "sfy.h"
#include "state.h"

/* Room for a one-address hostent: 3 pointers, 16 address bytes, a name. */
#define HE_BUF_MAX (3 * sizeof(char *) + 16 + SFY_NAME_MAX + 1 + _Alignof(char *))
/* Returned by the *_remote helpers: let the real function answer; and
 * the same, remembering its answers for the rules (dnsmem.h). Both far
 * from every EAI_* code (negative, EAI_BADFLAGS is -1) and errno value
 * (positive) the helpers return otherwise. */
#define ASK_REAL (INT_MIN + 2)
#define ASK_LOCAL (INT_MIN + 1)

enum dns_mode {
	DNS_PASS,       /* local DNS, no rules: the real functions, untouched */
	DNS_REMOTE,     /* fake addresses (and the rules, if any) */
	DNS_BROKEN,     /* no usable configuration: fail closed */
	DNS_ROUTED,     /* local DNS with rules: blocked names fail, others
			   are looked up for real and remembered */
};

static enum dns_mode dns_mode(void)
{
	const struct sfy_config *c = sfy_config_get();
	if (!c)
		return DNS_BROKEN;
	const struct sfy_routes *rt = sfy_routes_get();
	bool remote = rt ? sfy_routes_remote(rt) : sfy_dns_fakes(c->dns);
	if (!remote)
		return rt && sfy_routes_active(rt) ? DNS_ROUTED : DNS_PASS;
	sfy_fakedns_configure(c->fake_net, c->fake_prefix);
	return DNS_REMOTE;
}

/* A .onion/.exit/.i2p name in local-DNS mode: never the real functions
 * (their query would tell the network the name). It takes the fake-address
 * path of remote mode -- the rules, if any, decide between a fake address
 * and EAI_NONAME there (route.h: FAKE only when a route carries the name)
 * -- so connect() hands the name to the last hop (chain.c). Without rules
 * the top-level chain must carry names, else the lookup fails here, as a
 * connect could not reach the name anyway. The mode to go on in, or
 * DNS_BROKEN for "fails". */
static enum dns_mode special_mode(enum dns_mode m, const char *name)
{
	if ((m != DNS_PASS && m != DNS_ROUTED) || !name || !sfy_route_special_tld(name))
		return m;
	const struct sfy_config *c = sfy_config_get();
	if (m == DNS_PASS && !sfy_route_carries_names(c)) {
		sfy_debug("%s: never resolved locally, and the chain's last hop cannot take "
			  "a name", name);
		return DNS_BROKEN;
	}
	sfy_fakedns_configure(c->fake_net, c->fake_prefix);
	return DNS_REMOTE;
}

/* Reverse lookups are the real functions' unless fake addresses exist. */
static bool reverse_real(enum dns_mode m)
{
	return m == DNS_PASS || m == DNS_ROUTED;
}

/* The rules' plan (enum sfy_name_plan) for a name looked up for port (-1:
 * none), or -1 when there are no rules. Every lookup here may go through
 * the search list, so its expansions are judged too. */
static int rules_plan(const char *name, int port)
{
	const struct sfy_routes *rt = sfy_routes_get();
	if (!rt || !sfy_routes_active(rt))
		return -1;
	return (int)sfy_dns_rules_plan_search(rt, name, port, NULL);
}

/* A name the real functions would answer (from /etc/hosts, numerically,
 * or -- in local mode -- from DNS): ASK_REAL, ASK_LOCAL (remember the
 * answer), or 1 when the rules block it. cls: sfy_dns_classify()'s. */
static int real_plan(enum sfy_dns_class cls, const char *name, int port)
{
	if (cls == SFY_DNS_LOOPBACK || cls == SFY_DNS_INVALID ||
	    (cls == SFY_DNS_REAL && sfy_dns_numeric(name)))
		return ASK_REAL;
	int p = rules_plan(name, port);
	return p < 0 ? ASK_REAL : p == SFY_PLAN_BLOCK ? 1 : ASK_LOCAL;
}

/* Fake address for name, as an EAI_* code (0 = ok); one log line for a
 * full range, then debug lines. */
static int fake_v4(enum dns_mode m, const char *name, uint32_t *v4)
{
	static atomic_flag full_logged = ATOMIC_FLAG_INIT;
	if (m == DNS_BROKEN)
		return EAI_FAIL;
	int rc = sfy_fakedns_ipv4(name, v4);
	if (rc == -ENOSPC) {
		if (!atomic_flag_test_and_set(&full_logged))
			sfy_warn("fake_ip_range is exhausted: new names fail with EAI_AGAIN "
				 "(use a larger range)");
		else
			sfy_debug("fake_ip_range exhausted, %s not resolved", name);
		return EAI_AGAIN;
	}
	if (rc == -ENOMEM)
		return EAI_MEMORY;
	if (rc == -EAGAIN)      /* the tree's table is out of reach (logged once) */
		return EAI_AGAIN;
	return rc < 0 ? EAI_NONAME : 0;
}

/* ---- getaddrinfo ---------------------------------------------------- */

/* The socket types glibc returns for an address, in its order. Raw comes
 * with socktype 0 unless a protocol or a named service rules it out. */
static const struct gai_type {
	int socktype, protocol;
	const char *proto;
} gai_types[] = {
	{ SOCK_STREAM, IPPROTO_TCP, "tcp" },
	{ SOCK_DGRAM, IPPROTO_UDP, "udp" },
	{ SOCK_RAW, 0, NULL },
};

#define GAI_KNOWN_FLAGS (AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_V4MAPPED | AI_ALL | \
			 AI_ADDRCONFIG | AI_IDN | AI_CANONIDN | 0x0100 | 0x0200 | AI_NUMERICSERV)

/* Port of service for type t: 0 or an EAI_* code. */
static int gai_port(const char *service, const struct gai_type *t, int flags, int *port)
{
	char *end, buf[1024];
	struct servent se, *sp = NULL;
	*port = 0;
	if (!service)
		return 0;
	unsigned long v = strtoul(service, &end, 10);
	if (*service && !*end) {
		if (v > 65535)
			return EAI_SERVICE;
		*port = (int)v;
		return 0;
	}
	if (flags & AI_NUMERICSERV)
		return EAI_NONAME;
	if (!t->proto)
		return EAI_SERVICE;     /* raw sockets have no named services */
	/* nsswitch "services: files": a local file, no network. */
	if (getservbyname_r(service, t->proto, &se, buf, sizeof(buf), &sp) != 0 || !sp)
		return EAI_SERVICE;
	*port = ntohs((uint16_t)sp->s_port);
	return 0;
}

/* One node with its sockaddr in one block, as glibc allocates them, so the
 * program's freeaddrinfo() (ours or glibc's) frees it. */
static struct addrinfo *gai_node(int family, const void *addr, int socktype, int protocol,
				 int port)
{
	size_t sl = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	struct addrinfo *ai = calloc(1, sizeof(*ai) + sl);
	if (!ai)
		return NULL;
	ai->ai_family = family;
	ai->ai_socktype = socktype;
	ai->ai_protocol = protocol;
	ai->ai_addrlen = (socklen_t)sl;
	ai->ai_addr = (struct sockaddr *)(ai + 1);
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)ai->ai_addr;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		memcpy(&s6->sin6_addr, addr, 16);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)ai->ai_addr;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		memcpy(&s4->sin_addr, addr, 4);
	}
	return ai;
}

/* The answer for node at one address, with glibc's hints semantics. */
static int gai_build(const char *node, const char *service, const struct addrinfo *h,
		     int family, const void *addr, struct addrinfo **res)
{
	struct addrinfo *head = NULL, **tail = &head;
	bool type_ok = false;
	int err = EAI_SERVICE;

	for (size_t i = 0; i < SFY_ARRAY_LEN(gai_types); i++) {
		const struct gai_type *t = &gai_types[i];
		int port, rc;
		if (h->ai_socktype && h->ai_socktype != t->socktype)
			continue;
		/* a protocol picks its type; raw takes any protocol when asked for */
		if (h->ai_protocol && h->ai_protocol != t->protocol && (t->protocol || !h->ai_socktype))
			continue;
		type_ok = true;
		if ((rc = gai_port(service, t, h->ai_flags, &port)) != 0) {
			if (rc != EAI_SERVICE || h->ai_socktype) {
				err = rc;
				goto fail;
			}
			continue;       /* socktype 0: a named service may exist for tcp only */
		}
		*tail = gai_node(family, addr, t->socktype, t->protocol ? t->protocol : h->ai_protocol,
				 port);
		if (!*tail) {
			err = EAI_MEMORY;
			goto fail;
		}
		tail = &(*tail)->ai_next;
	}
	if (!type_ok) {
		err = EAI_SOCKTYPE;
		goto fail;
	}
	if (!head)
		goto fail;
	if ((h->ai_flags & AI_CANONNAME) && !(head->ai_canonname = strdup(node))) {
		err = EAI_MEMORY;
		goto fail;
	}
	*res = head;
	return 0;
fail:
	while (head) {
		struct addrinfo *next = head->ai_next;
		free(head->ai_canonname);
		free(head);
		head = next;
	}
	return err;
}

/* An address the proxy answered as (family, bytes) for a caller that asked
 * for want (AF_UNSPEC, AF_INET, AF_INET6; mapped: AI_V4MAPPED with
 * AF_INET6): false when it has none of that family, as libc. */
static bool proxy_fit(const struct sfy_addr *a, int want, bool mapped, int *fam, uint8_t out[16])
{
	if (a->type == SFY_ATYP_IPV6) {
		if (want == AF_INET)
			return false;
		*fam = AF_INET6;
		memcpy(out, a->ip, 16);
		return true;
	}
	if (want != AF_INET6) {
		*fam = AF_INET;
		memcpy(out, a->ip, 4);
		return true;
	}
	if (!mapped)
		return false;
	*fam = AF_INET6;                /* ::ffff:a.b.c.d */
	memset(out, 0, 10);
	memset(out + 10, 0xff, 2);
	memcpy(out + 12, a->ip, 4);
	return true;
}

/* dns: proxy for a name remote mode would fake: the answer (remembered for
 * the rules), an EAI_* code, or SFY_DNSPROXY_FAKE to fake it after all. */
static int gai_proxy(const char *node, const char *service, const struct addrinfo *h, int port,
		     struct addrinfo **res)
{
	const struct sfy_config *chain;
	struct sfy_addr a;
	uint8_t ip[16];
	int fam, rc;
	if (sfy_route_special_tld(node) || !(chain = sfy_dnsproxy_chain_for(node, port)))
		return SFY_DNSPROXY_FAKE;
	if ((rc = sfy_dnsproxy_resolve(chain, node, &a)) != 0)
		return rc;
	if (!proxy_fit(&a, h->ai_family, h->ai_family == AF_INET6 && (h->ai_flags & AI_V4MAPPED),
		       &fam, ip))
		return EAI_NONAME;
	if ((rc = gai_build(node, service, h, fam, ip, res)) == 0)
		sfy_dns_remember_ai(node, *res);
	return rc;
}

static int gai_remote(enum dns_mode m, const char *node, const char *service,
		      const struct addrinfo *h, struct addrinfo **res)
{
	static const uint8_t lo6[16] = { [15] = 1 };
	uint32_t v4, lo4 = htonl(INADDR_LOOPBACK);
	uint8_t v6[16];
	int rc;

	if (h->ai_flags & ~GAI_KNOWN_FLAGS)
		return EAI_BADFLAGS;
	if (h->ai_family != AF_UNSPEC && h->ai_family != AF_INET && h->ai_family != AF_INET6)
		return EAI_FAMILY;
	bool v6out = h->ai_family == AF_INET6, mapped = v6out && (h->ai_flags & AI_V4MAPPED);

	int port = sfy_dns_service_port(service, h->ai_socktype, h->ai_flags);
	switch (sfy_dns_classify(node, h->ai_family, mapped)) {
	case SFY_DNS_REAL:
		rc = real_plan(SFY_DNS_REAL, node, port);
		return rc == 1 ? EAI_NONAME : rc;
	case SFY_DNS_LOOPBACK:
		return gai_build(node, service, h, v6out ? AF_INET6 : AF_INET, v6out ? lo6 : (void *)&lo4,
				 res);
	case SFY_DNS_NODATA:
	case SFY_DNS_INVALID:
		return EAI_NONAME;
	case SFY_DNS_FAKE:
		break;
	}
	switch (rules_plan(node, port)) {
	case SFY_PLAN_BLOCK:
		return EAI_NONAME;
	case SFY_PLAN_LOCAL:
		return ASK_LOCAL;
	default:
		break;
	}
	if ((rc = gai_proxy(node, service, h, port, res)) != SFY_DNSPROXY_FAKE)
		return rc;
	if ((rc = fake_v4(m, node, &v4)) != 0)
		return rc;
	if (!v6out)
		return gai_build(node, service, h, AF_INET, &v4, res);
	if (mapped) {           /* ::ffff:a.b.c.d */
		memset(v6, 0, 10);
		memset(v6 + 10, 0xff, 2);
		memcpy(v6 + 12, &v4, 4);
	} else {
		sfy_fakedns_ipv6(v4, v6);
	}
	return gai_build(node, service, h, AF_INET6, v6, res);
}

SFY_EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
			   struct addrinfo **res)
{
	const struct sfy_real *r = sfy_real();
	/* glibc's defaults for NULL hints */
	const struct addrinfo dflt = { .ai_flags = AI_V4MAPPED | AI_ADDRCONFIG };
	enum dns_mode m;

	if (!node || (hints && (hints->ai_flags & AI_NUMERICHOST)))
		return r->getaddrinfo(node, service, hints, res);
	m = dns_mode();
	enum dns_mode sm = special_mode(m, node);
	if (sm != m) {
		if (sm == DNS_BROKEN)
			return EAI_NONAME;
		m = sm;
	}
	if (m == DNS_PASS)
		return r->getaddrinfo(node, service, hints, res);
	const struct addrinfo *h = hints ? hints : &dflt;
	int rc;
	if (m == DNS_ROUTED) {
		rc = real_plan(sfy_dns_classify(node, AF_UNSPEC, false), node,
			       sfy_dns_service_port(service, h->ai_socktype, h->ai_flags));
		if (rc == 1)
			return EAI_NONAME;
	} else {
		rc = gai_remote(m, node, service, h, res);
	}
	if (rc == ASK_REAL)
		return r->getaddrinfo(node, service, hints, res);
	if (rc == ASK_LOCAL && (rc = r->getaddrinfo(node, service, hints, res)) == 0)
		sfy_dns_remember_ai(node, *res);
	return rc;
}

/* Our nodes are laid out like glibc's, so the real function frees both. */
SFY_EXPORT void freeaddrinfo(struct addrinfo *ai)
{
	sfy_real()->freeaddrinfo(ai);
}

/* ---- gethostbyname family ------------------------------------------- */

/* Lays out a one-address hostent in buf: ERANGE if it does not fit. */
static int he_fill(struct hostent *he, char *buf, size_t buflen, const char *name, int af,
		   const void *addr)
{
	size_t alen = af == AF_INET6 ? 16 : 4, nlen = strlen(name) + 1;
	size_t pad = (_Alignof(char *) - (uintptr_t)buf % _Alignof(char *)) % _Alignof(char *);
	if (buflen < pad + 3 * sizeof(char *) + 16 + nlen)
		return ERANGE;
	char **ptrs = (char **)(void *)(buf + pad);     /* addr_list[2], aliases[1] */
	char *abuf = (char *)(ptrs + 3), *nbuf = abuf + 16;
	memcpy(abuf, addr, alen);
	memcpy(nbuf, name, nlen);
	ptrs[0] = abuf;
	ptrs[1] = NULL;
	ptrs[2] = NULL;
	he->h_name = nbuf;
	he->h_aliases = ptrs + 2;
	he->h_addrtype = af;
	he->h_length = (int)alen;
	he->h_addr_list = ptrs;
	return 0;
}

static int he_result(int rc, struct hostent *he, struct hostent **result, int *herr)
{
	if (rc == ERANGE) {
		*herr = NETDB_INTERNAL;
		errno = ERANGE;
		return ERANGE;
	}
	*result = he;
	*herr = NETDB_SUCCESS;
	return 0;
}

/* A failed lookup's EAI_* code as gethostbyname*'s and gethostbyaddr*'s
 * answer: *herr its h_errno, the errno returned. */
static int eai_herr(int eai, int *herr)
{
	switch (eai) {
	case EAI_NONAME:
		*herr = HOST_NOT_FOUND;
		return ENOENT;
	case EAI_AGAIN:
		*herr = TRY_AGAIN;
		return EAGAIN;
	default:
		*herr = NO_RECOVERY;
		return ENOENT;
	}
}

/* dns: proxy for gethostbyname*: 0 (filled), an errno with *herr, or
 * SFY_DNSPROXY_FAKE. */
static int ghbn_proxy(const char *name, int af, struct hostent *he, char *buf, size_t buflen,
		      struct hostent **result, int *herr)
{
	const struct sfy_config *chain;
	struct sfy_addr a;
	uint8_t ip[16];
	int fam, rc;
	if (sfy_route_special_tld(name) || !(chain = sfy_dnsproxy_chain_for(name, -1)))
		return SFY_DNSPROXY_FAKE;
	if ((rc = sfy_dnsproxy_resolve(chain, name, &a)) == SFY_DNSPROXY_FAKE)
		return rc;
	if (rc == 0 && !proxy_fit(&a, af, false, &fam, ip)) {
		*herr = NO_DATA;
		return ENOENT;
	}
	if (rc != 0)
		return eai_herr(rc, herr);
	if ((rc = he_fill(he, buf, buflen, name, fam, ip)) == 0)
		sfy_dns_remember_he(name, he);
	return he_result(rc, he, result, herr);
}

/* gethostbyname2_r in remote mode, or ASK_REAL. */
static int ghbn_remote(const char *name, int af, struct hostent *he, char *buf, size_t buflen,
		       struct hostent **result, int *herr)
{
	static const uint8_t lo6[16] = { [15] = 1 };
	uint32_t v4, lo4 = htonl(INADDR_LOOPBACK);
	uint8_t v6[16];
	enum dns_mode m = dns_mode(), sm = special_mode(m, name);

	*result = NULL;
	if (sm != m) {
		if (sm == DNS_BROKEN) {
			*herr = HOST_NOT_FOUND;
			return ENOENT;
		}
		m = sm;
	}
	if (m == DNS_PASS)
		return ASK_REAL;
	if (m == DNS_ROUTED) {
		int p = real_plan(sfy_dns_classify(name, AF_UNSPEC, false), name, -1);
		if (p != 1)
			return p;
		*herr = HOST_NOT_FOUND;
		return ENOENT;
	}
	if (af != AF_INET && af != AF_INET6) {
		*herr = NETDB_INTERNAL;
		errno = EAFNOSUPPORT;
		return EAFNOSUPPORT;
	}
	int p;
	switch (sfy_dns_classify(name, af, false)) {
	case SFY_DNS_REAL:
		if ((p = real_plan(SFY_DNS_REAL, name, -1)) != 1)
			return p;
		*herr = HOST_NOT_FOUND;
		return ENOENT;
	case SFY_DNS_LOOPBACK:
		return he_result(he_fill(he, buf, buflen, name, af, af == AF_INET6 ? lo6 : (void *)&lo4),
				 he, result, herr);
	case SFY_DNS_NODATA:
		*herr = NO_DATA;
		return ENOENT;
	case SFY_DNS_INVALID:
		*herr = HOST_NOT_FOUND;
		return ENOENT;
	case SFY_DNS_FAKE:
		break;
	}
	switch (rules_plan(name, -1)) {
	case SFY_PLAN_BLOCK:
		*herr = HOST_NOT_FOUND;
		return ENOENT;
	case SFY_PLAN_LOCAL:
		return ASK_LOCAL;
	default:
		break;
	}
	if ((p = ghbn_proxy(name, af, he, buf, buflen, result, herr)) != SFY_DNSPROXY_FAKE)
		return p;
	if ((p = fake_v4(m, name, &v4)) != 0)
		return eai_herr(p, herr);
	if (af == AF_INET6)
		sfy_fakedns_ipv6(v4, v6);
	return he_result(he_fill(he, buf, buflen, name, af, af == AF_INET6 ? (void *)v6 : &v4), he,
			 result, herr);
}

/* glibc's *_r functions also leave their h_errno in the global one (perl's
 * gethostbyname reads it from there): ours do the same. */
static int answered_r(int rc, const int *herr)
{
	h_errno = *herr;
	return rc;
}

SFY_EXPORT int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf,
				size_t buflen, struct hostent **result, int *h_errnop)
{
	int rc = ghbn_remote(name, af, ret, buf, buflen, result, h_errnop);
	if (rc != ASK_REAL && rc != ASK_LOCAL)
		return answered_r(rc, h_errnop);
	int r = sfy_real()->gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop);
	if (rc == ASK_LOCAL && r == 0 && *result)
		sfy_dns_remember_he(name, *result);
	return r;
}

SFY_EXPORT int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen,
			       struct hostent **result, int *h_errnop)
{
	int rc = ghbn_remote(name, AF_INET, ret, buf, buflen, result, h_errnop);
	if (rc != ASK_REAL && rc != ASK_LOCAL)
		return answered_r(rc, h_errnop);
	int r = sfy_real()->gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
	if (rc == ASK_LOCAL && r == 0 && *result)
		sfy_dns_remember_he(name, *result);
	return r;
}

/* glibc returns static storage; ours is per thread, which is only safer. */
static _Thread_local struct {
	struct hostent he;
	char buf[HE_BUF_MAX];
} he_tls;

SFY_EXPORT struct hostent *gethostbyname2(const char *name, int af)
{
	struct hostent *res;
	int herr;
	int rc = ghbn_remote(name, af, &he_tls.he, he_tls.buf, sizeof(he_tls.buf), &res, &herr);
	if (rc == ASK_REAL || rc == ASK_LOCAL) {
		res = sfy_real()->gethostbyname2(name, af);
		if (rc == ASK_LOCAL)
			sfy_dns_remember_he(name, res);
		return res;
	}
	h_errno = herr;
	return res;
}

SFY_EXPORT struct hostent *gethostbyname(const char *name)
{
	struct hostent *res;
	int herr;
	int rc = ghbn_remote(name, AF_INET, &he_tls.he, he_tls.buf, sizeof(he_tls.buf), &res, &herr);
	if (rc == ASK_REAL || rc == ASK_LOCAL) {
		res = sfy_real()->gethostbyname(name);
		if (rc == ASK_LOCAL)
			sfy_dns_remember_he(name, res);
		return res;
	}
	h_errno = herr;
	return res;
}

/* ---- reverse: gethostbyaddr, getnameinfo ---------------------------- */

/* Fake name of a v4 (4 bytes) or v6 (16 bytes) address: 1 found, 0 a fake
 * address not handed out, -1 not a fake address. */
static int fake_name_of(int af, const void *addr, char name[static SFY_NAME_MAX + 1])
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	uint32_t v4;
	if (af == AF_INET) {
		memcpy(&v4, addr, 4);
	} else {
		memcpy(&s6.sin6_addr, addr, 16);
		if (!sfy_fakedns_sockaddr_v4((struct sockaddr *)&s6, sizeof(s6), &v4))
			return -1;
	}
	if (!sfy_fakedns_in_range(v4))
		return -1;
	return sfy_fakedns_name(v4, name) == 0;
}

/* fake_name_of() for mode m. In local-DNS mode (the real functions answer
 * reverse lookups) only where this tree hands out fake addresses: without
 * a table nothing in the range is ours, and such an address may be a real
 * one the network knows a name for. */
static int fake_name_in(enum dns_mode m, int af, const void *addr,
			char name[static SFY_NAME_MAX + 1])
{
	if (reverse_real(m) && !sfy_fakedns_exists())
		return -1;
	return fake_name_of(af, addr, name);
}

/* dns: proxy: RESOLVE_PTR of a real address (af: 4 / 16 bytes) when its
 * route is a chain in proxy mode: 0 with name, or an EAI_* code
 * (EAI_NONAME when there is no such route). */
static int ptr_proxy(int af, const void *addr, char name[static SFY_NAME_MAX + 1])
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	if (af == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, addr, 4);
		len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, addr, 16);
		len = sizeof(*s6);
	}
	const struct sfy_config *chain = sfy_dnsproxy_chain_for_addr((struct sockaddr *)&ss, len);
	if (!chain)
		return EAI_NONAME;
	return sfy_dnsproxy_reverse(chain, af, addr, name);
}

static int ghba_remote(const void *addr, socklen_t len, int type, struct hostent *he, char *buf,
		       size_t buflen, struct hostent **result, int *herr)
{
	char name[SFY_NAME_MAX + 1];
	enum dns_mode m = dns_mode();
	*result = NULL;
	if (!addr)
		return ASK_REAL;
	if (!((type == AF_INET && len == 4) || (type == AF_INET6 && len == 16)))
		return ASK_REAL;        /* glibc rejects these itself, without a query */
	switch (fake_name_in(m, type, addr, name)) {
	case 1:
		return he_result(he_fill(he, buf, buflen, name, type, addr), he, result, herr);
	case 0:
		*herr = HOST_NOT_FOUND;
		return ENOENT;
	}
	if (reverse_real(m) || sfy_hosts_has_addr(type, addr))
		return ASK_REAL;        /* answered from /etc/hosts */
	int rc = ptr_proxy(type, addr, name);
	if (rc == 0)
		return he_result(he_fill(he, buf, buflen, name, type, addr), he, result, herr);
	return eai_herr(rc, herr);      /* a PTR query would leave the machine */
}

SFY_EXPORT int gethostbyaddr_r(const void *addr, socklen_t len, int type, struct hostent *ret,
			       char *buf, size_t buflen, struct hostent **result, int *h_errnop)
{
	int rc = ghba_remote(addr, len, type, ret, buf, buflen, result, h_errnop);
	if (rc != ASK_REAL)
		return answered_r(rc, h_errnop);
	return sfy_real()->gethostbyaddr_r(addr, len, type, ret, buf, buflen, result, h_errnop);
}

SFY_EXPORT struct hostent *gethostbyaddr(const void *addr, socklen_t len, int type)
{
	struct hostent *res;
	int herr;
	int rc = ghba_remote(addr, len, type, &he_tls.he, he_tls.buf, sizeof(he_tls.buf), &res,
			     &herr);
	if (rc == ASK_REAL)
		return sfy_real()->gethostbyaddr(addr, len, type);
	h_errno = herr;
	return res;
}

/* getnameinfo()'s answer for an address whose name we know: the name as
 * the host part; the service part is a local file lookup (or a number). */
static int ni_named(const struct sockaddr *sa, socklen_t salen, const char *name, char *host,
		    socklen_t hostlen, char *serv, socklen_t servlen, int flags)
{
	int rc;
	if (serv && servlen &&
	    (rc = sfy_real()->getnameinfo(sa, salen, NULL, 0, serv, servlen, flags)) != 0)
		return rc;
	if (strlen(name) >= hostlen)
		return EAI_OVERFLOW;
	memcpy(host, name, strlen(name) + 1);
	return 0;
}

SFY_EXPORT int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
			   socklen_t hostlen, char *serv, socklen_t servlen, int flags)
{
	const struct sfy_real *r = sfy_real();
	char name[SFY_NAME_MAX + 1];
	const void *addr;
	int rc;

	if (!host || !hostlen || (flags & NI_NUMERICHOST) || !sa)
		return r->getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
	if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in))
		addr = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6))
		addr = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	else
		return r->getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);

	enum dns_mode m = dns_mode();
	int fk = fake_name_in(m, sa->sa_family, addr, name);
	if (fk < 0 && reverse_real(m))
		return r->getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
	switch (fk) {
	case 1:
		return ni_named(sa, salen, name, host, hostlen, serv, servlen, flags);
	case -1:
		if (sfy_hosts_has_addr(sa->sa_family, addr))
			return r->getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
		break;
	}
	/* no name we may look up: a PTR query would leave the machine --
	 * except through the chain (dns: proxy) */
	rc = fk < 0 ? ptr_proxy(sa->sa_family, addr, name) : EAI_NONAME;
	if (rc == 0)
		return ni_named(sa, salen, name, host, hostlen, serv, servlen, flags);
	if (flags & NI_NAMEREQD)
		return rc == EAI_AGAIN ? EAI_AGAIN : EAI_NONAME;
	return r->getnameinfo(sa, salen, host, hostlen, serv, servlen, flags | NI_NUMERICHOST);
}
