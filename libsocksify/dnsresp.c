/* The in-library DNS responder's answers (dnsresp.h): one query message
 * in, one reply out, every byte through the codec (dns_msg.h). What a
 * name gets is what getaddrinfo() gives the program in the same mode
 * (hooks_dns.c), so a program with its own DNS client connects exactly as
 * one using libc would:
 *  - class other than IN: NOTIMP (we implement the Internet class only;
 *    REFUSED would read as a policy and make some clients try elsewhere);
 *  - a name no host can have (name_ok false): NXDOMAIN;
 *  - PTR of an in-addr.arpa/ip6.arpa name: the fake address's name, else
 *    the /etc/hosts name, else NXDOMAIN -- never a query out;
 *  - numeric names: their own address (A for an inet_aton() form, AAAA
 *    for an IPv6 literal), localhost and the own hostname: loopback --
 *    no rule applies to them, as in the resolver hooks;
 *  - a name the rules block: NXDOMAIN, whatever the type;
 *  - /etc/hosts names: the file's addresses (NODATA without the family);
 *  - a name every route of which resolves locally: the real resolver's
 *    answer within the handshake timeout, remembered for the rules
 *    (dnsmem.h); NXDOMAIN when it has none, SERVFAIL at the deadline;
 *  - any other name: its fake address (AAAA: the IPv6 twin);
 *  - every other type (SRV, TXT, MX, HTTPS, ANY, NS, SOA...): NODATA.
 * Answers carry TTL 10: short enough that a changed rule or configuration
 * shows soon, long enough to spare a resolver cache repeated queries. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "dns_msg.h"
#include "dns_rules.h"
#include "dnsresp.h"
#include "fakedns.h"
#include "hop_addr.h"
#include "io.h"
#include "route.h"
#include "sfy.h"
#include "state.h"

#define ANSWER_TTL 10
/* Addresses per answer: /etc/hosts keeps 8 per family and name. */
#define ANSWERS_MAX 8

bool sfy_dnsresp_enabled(const struct sfy_config *cfg)
{
	if (!cfg || cfg->dns_responder_off)
		return false;
	const struct sfy_routes *rt = cfg == sfy_config_peek() ? sfy_routes_get() : NULL;
	return rt ? sfy_routes_remote(rt) : sfy_dns_fakes(cfg->dns);
}

struct result {
	uint8_t rcode;
	size_t n;
	struct sfy_dns_answer an[ANSWERS_MAX];
	char ptr[SFY_NAME_MAX + 1];
};

static void add_ip(struct result *r, uint16_t type, const void *ip)
{
	if (r->n >= ANSWERS_MAX)
		return;
	struct sfy_dns_answer *a = &r->an[r->n++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	memcpy(a->ip, ip, type == SFY_DNS_T_A ? 4 : 16);
}

static void set_ptr(struct result *r, const char *name)
{
	snprintf(r->ptr, sizeof(r->ptr), "%s", name);
	r->an[0] = (struct sfy_dns_answer){ .type = SFY_DNS_T_PTR, .ptr = r->ptr };
	r->n = 1;
}

/* PTR of an address: the name behind a fake one, else the hosts file's.
 * false: the name is not a reverse-lookup name at all. */
static bool ptr_answer(const char *name, struct result *r)
{
	uint8_t ip[16];
	uint32_t v4;
	int family;
	if (sfy_dns_ptr_v4(name, ip)) {
		family = AF_INET;
		memcpy(&v4, ip, 4);
	} else if (sfy_dns_ptr_v6(name, ip)) {
		struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
		memcpy(&s6.sin6_addr, ip, 16);
		family = AF_INET6;
		/* v4-mapped and the fake range's twin stand for an IPv4 address */
		if (sfy_fakedns_sockaddr_v4((struct sockaddr *)&s6, sizeof(s6), &v4)) {
			family = AF_INET;
			memcpy(ip, &v4, 4);
		}
	} else {
		return false;
	}
	char out[SFY_NAME_MAX + 1];
	r->rcode = SFY_DNS_NXDOMAIN;
	if (family == AF_INET && sfy_fakedns_in_range(v4)) {
		if (sfy_fakedns_name(v4, out) == 0) {
			r->rcode = SFY_DNS_NOERROR;
			set_ptr(r, out);
		}
		return true;
	}
	if (sfy_hosts_name(family, ip, out)) {
		r->rcode = SFY_DNS_NOERROR;
		set_ptr(r, out);
	}
	return true;
}

/* A numeric name answers with itself, for its own family only. */
static void numeric_answer(const char *name, uint16_t qtype, struct result *r)
{
	struct in_addr a4;
	uint8_t a6[16];
	char buf[INET6_ADDRSTRLEN + 1];
	if (qtype == SFY_DNS_T_A && !strchr(name, ':') && inet_aton(name, &a4)) {
		add_ip(r, SFY_DNS_T_A, &a4);
		return;
	}
	size_t n = strcspn(name, "%");
	if (qtype == SFY_DNS_T_AAAA && strchr(name, ':') && n < sizeof(buf)) {
		memcpy(buf, name, n);
		buf[n] = '\0';
		if (inet_pton(AF_INET6, buf, a6) == 1)
			add_ip(r, SFY_DNS_T_AAAA, a6);
	}
}

/* Remembers one address a local answer gave name (dns_rules.h), so a
 * connect() to it is routed by the name. */
static void remember(const char *name, int family, const uint8_t *ip)
{
	struct sockaddr_storage ss = { 0 };
	struct addrinfo ai = { .ai_family = family, .ai_addr = (struct sockaddr *)&ss };
	if (family == AF_INET) {
		struct sockaddr_in *in = (void *)&ss;
		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, ip, 4);
		ai.ai_addrlen = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (void *)&ss;
		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, ip, 16);
		ai.ai_addrlen = sizeof(*in6);
	}
	/* "name.": the question is a whole name, no search-list expansion of
	 * it can be what answered */
	char abs[SFY_NAME_MAX + 2];
	snprintf(abs, sizeof(abs), "%s.", name);
	sfy_dns_remember_ai(abs, &ai);
}

static void hosts_answer(const char *name, uint16_t qtype, bool rules, struct result *r)
{
	unsigned char ips[ANSWERS_MAX][16];
	int family = qtype == SFY_DNS_T_A ? AF_INET : AF_INET6;
	size_t n = sfy_hosts_addrs(name, family, ips, ANSWERS_MAX);
	for (size_t i = 0; i < n; i++) {
		add_ip(r, qtype, ips[i]);
		if (rules)
			remember(name, family, ips[i]);
	}
}

/* The real resolver, bounded by the handshake timeout. */
static void local_answer(const struct sfy_config *c, const char *name, uint16_t qtype,
			 struct result *r)
{
	char abs[SFY_NAME_MAX + 2];
	struct sfy_addr a;
	int family = qtype == SFY_DNS_T_A ? AF_INET : AF_INET6;
	snprintf(abs, sizeof(abs), "%s.", name);
	int e = sfy_resolve_fam(abs, 0, family, sfy_now_ms() + c->handshake_timeout_ms, &a);
	if (e == -ETIMEDOUT) {
		r->rcode = SFY_DNS_SERVFAIL;
		return;
	}
	bool ok = e == 0 && (family == AF_INET ? a.type == SFY_ATYP_IPV4 : a.type == SFY_ATYP_IPV6);
	if (!ok) {
		r->rcode = SFY_DNS_NXDOMAIN;
		return;
	}
	add_ip(r, qtype, a.ip);
	remember(name, family, a.ip);
}

static void fake_answer(const struct sfy_config *c, const char *name, uint16_t qtype,
			struct result *r)
{
	uint32_t v4;
	uint8_t v6[16];
	sfy_fakedns_configure(c->fake_net, c->fake_prefix);
	int e = sfy_fakedns_ipv4(name, &v4);
	if (e < 0) {
		/* a full range or an unreachable table: try again later */
		r->rcode = e == -EINVAL || e == -ENAMETOOLONG ? SFY_DNS_NXDOMAIN : SFY_DNS_SERVFAIL;
		return;
	}
	if (qtype == SFY_DNS_T_A) {
		add_ip(r, SFY_DNS_T_A, &v4);
		return;
	}
	sfy_fakedns_ipv6(v4, v6);
	add_ip(r, SFY_DNS_T_AAAA, v6);
}

static void decide(const struct sfy_dns_query *q, struct result *r)
{
	const char *name = q->name;
	uint16_t t = q->qtype;
	bool addr = t == SFY_DNS_T_A || t == SFY_DNS_T_AAAA;
	r->rcode = SFY_DNS_NOERROR;
	r->n = 0;
	if (q->qclass != SFY_DNS_CLASS_IN) {
		r->rcode = SFY_DNS_NOTIMP;
		return;
	}
	if (!q->name_ok) {
		r->rcode = SFY_DNS_NXDOMAIN;
		return;
	}
	if (!*name)
		return;         /* the root: no addresses */
	if (t == SFY_DNS_T_PTR && ptr_answer(name, r))
		return;
	if (sfy_dns_numeric(name)) {
		numeric_answer(name, t, r);
		return;
	}
	enum sfy_dns_class cls = sfy_dns_classify(name, t == SFY_DNS_T_A ? AF_INET
							: t == SFY_DNS_T_AAAA ? AF_INET6
									      : AF_UNSPEC,
						  false);
	if (cls == SFY_DNS_LOOPBACK) {
		static const uint8_t lo4[4] = { 127, 0, 0, 1 }, lo6[16] = { [15] = 1 };
		if (addr)
			add_ip(r, t, t == SFY_DNS_T_A ? lo4 : lo6);
		return;
	}
	if (cls == SFY_DNS_INVALID) {
		r->rcode = SFY_DNS_NXDOMAIN;
		return;
	}
	const struct sfy_config *c = sfy_config_get();
	const struct sfy_routes *rt = c ? sfy_routes_get() : NULL;
	if (!c) {
		r->rcode = SFY_DNS_SERVFAIL;    /* no configuration: nothing to say */
		return;
	}
	enum sfy_name_plan plan = sfy_dns_rules_plan(rt, name, -1);
	if (plan == SFY_PLAN_BLOCK) {
		r->rcode = SFY_DNS_NXDOMAIN;
		return;
	}
	if (!addr || cls == SFY_DNS_NODATA)
		return;
	if (cls == SFY_DNS_REAL)
		hosts_answer(name, t, rt && sfy_routes_active(rt), r);
	else if (plan == SFY_PLAN_LOCAL)
		local_answer(c, name, t, r);
	else
		fake_answer(c, name, t, r);
}

ssize_t sfy_dnsresp_answer(const uint8_t *msg, size_t len, bool tcp, uint8_t *out, size_t cap)
{
	struct sfy_dns_query q;
	struct result r = { .rcode = SFY_DNS_NOERROR };
	switch (sfy_dns_parse_query(msg, len, &q)) {
	case SFY_DNS_DROP:
		return 0;
	case SFY_DNS_REJECT:
		r.rcode = q.rcode;
		break;
	case SFY_DNS_ANSWER:
		decide(&q, &r);
		break;
	}
	struct sfy_dns_reply rep = {
		.rcode = r.rcode,
		.an = r.an,
		.n = r.rcode == SFY_DNS_NOERROR ? r.n : 0,
		.ttl = ANSWER_TTL,
		.tcp = tcp,
	};
	return sfy_dns_build_reply(out, cap, &q, &rep);
}
