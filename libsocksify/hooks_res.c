/* The res_* query API (resolv.h): raw DNS queries a program builds itself
 * (MX, SRV, TXT lookups...). A SOCKS proxy cannot answer them, so in
 * remote mode (and without a usable configuration) they fail cleanly --
 * -1 and h_errno NO_RECOVERY, one log line -- and never send a packet.
 * dns: local passes them through.
 *
 * Routing rules (dns_rules.h) decide for the queries that name a domain
 * (res_query, res_search, res_querydomain and their res_n* forms): a name
 * the rules block fails with HOST_NOT_FOUND and no packet, in any mode; a
 * name whose every route resolves locally is queried for real even in
 * remote mode; res_search/res_nsearch are judged with every search-list
 * expansion of the name (dns_rules.h). res_send/res_nsend carry a ready
 * message: refused in remote mode; in local mode with rules the names in
 * its questions are judged like res_query's, and a blocked (or unreadable)
 * message fails as res_send does when no name server answers (-1, errno
 * ECONNREFUSED, h_errno HOST_NOT_FOUND) without a packet.
 *
 * glibc exports each function twice: res_query@@GLIBC_2.34 and the older
 * __res_query, which programs built against headers that #define res_query
 * __res_query still call. Both names are interposed. res_mkquery and
 * dn_expand only build or parse bytes and are left alone. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <stdio.h>
#include <netdb.h>
#include <arpa/nameser.h>
#include <resolv.h>

#include "dns_rules.h"
#include "fakedns.h"
#include "log.h"
#include "real.h"
#include "route.h"
#include "sfy.h"
#include "state.h"

/* Older headers map these names to __res_*: we define both explicitly. */
#undef res_query
#undef res_search
#undef res_querydomain
#undef res_send
#undef res_nquery
#undef res_nsearch
#undef res_nquerydomain
#undef res_nsend

static void res_fail(res_state statp, int herr)
{
	h_errno = herr;
	if (statp)
		statp->res_h_errno = herr;
}

/* "name.domain" for res_querydomain (glibc joins them the same way; a
 * too long result fails there too, before any packet). */
static const char *qd_join(const char *name, const char *domain,
			   char buf[static SFY_NAME_MAX + 2])
{
	if (!name || !domain)
		return name;
	int n = snprintf(buf, SFY_NAME_MAX + 2, "%s.%s", name, domain);
	return n > 0 && n <= SFY_NAME_MAX ? buf : name;
}

/* How a call names what it asks about. */
enum res_kind {
	RES_EXACT,      /* res_query, res_querydomain: the name as given */
	RES_SEARCH,     /* res_search: the name and its search-list expansions */
	RES_MSG,        /* res_send: a ready message, the name in its question */
};

/* The rules' plan for the names in a ready query message: the most
 * restrictive over its questions; BLOCK for a message we cannot read
 * (it must not go out unjudged). */
static enum sfy_name_plan msg_plan(const struct sfy_routes *rt, const unsigned char *msg,
				   int len)
{
	enum sfy_name_plan p = SFY_PLAN_LOCAL;
	char name[NS_MAXDNAME];
	if (!msg || len < HFIXEDSZ)
		return SFY_PLAN_BLOCK;
	unsigned qd = (unsigned)msg[4] << 8 | msg[5];
	const unsigned char *q = msg + HFIXEDSZ, *end = msg + len;
	if (!qd)
		return SFY_PLAN_BLOCK;
	for (unsigned i = 0; i < qd; i++) {
		int n = dn_expand(msg, end, q, name, sizeof(name));
		/* an escaped byte (a dot or a blank inside a label) matches no
		 * rule as written: such a name is not judged, so not sent */
		if (n < 0 || end - (q + n) < QFIXEDSZ || strchr(name, '\\'))
			return SFY_PLAN_BLOCK;
		q += n + QFIXEDSZ;
		/* the root or a numeric name has no rule of its own */
		if (!*name || sfy_dns_numeric(name))
			continue;
		enum sfy_name_plan one = sfy_dns_rules_plan(rt, name, -1);
		if (one == SFY_PLAN_BLOCK)
			return one;
		if (one == SFY_PLAN_FAKE)
			p = one;
	}
	return p;
}

/* dname: the domain the query asks about (kind RES_EXACT, RES_SEARCH), or
 * msg/msglen (RES_MSG). */
static bool res_blocked(res_state statp, const char *what, enum res_kind kind, const char *dname,
			const unsigned char *msg, int msglen)
{
	static atomic_flag logged = ATOMIC_FLAG_INIT;
	const struct sfy_config *c = sfy_config_get();
	const struct sfy_routes *rt = c ? sfy_routes_get() : NULL;
	bool remote = rt ? sfy_routes_remote(rt) : c && c->dns == SFY_DNS_REMOTE;
	if (kind == RES_MSG && c && !remote && rt && sfy_routes_active(rt)) {
		/* local mode: what the message asks for decides, as for a name */
		if (msg_plan(rt, msg, msglen) != SFY_PLAN_BLOCK)
			return false;
		sfy_debug("%s: a query the rules block (or cannot read) is not sent", what);
		res_fail(statp, HOST_NOT_FOUND);
		errno = ECONNREFUSED;   /* as res_send when no name server answered */
		return true;
	}
	if (kind != RES_MSG && dname && rt && sfy_routes_active(rt)) {
		/* a numeric name has no rule of its own: the mode decides */
		enum sfy_name_plan p =
			sfy_dns_numeric(dname) ? SFY_PLAN_FAKE
			: kind == RES_SEARCH ? sfy_dns_rules_plan_search(rt, dname, -1, statp)
					     : sfy_dns_rules_plan(rt, dname, -1);
		if (p == SFY_PLAN_BLOCK) {
			res_fail(statp, HOST_NOT_FOUND);
			return true;
		}
		if (p == SFY_PLAN_LOCAL)
			return false;
	}
	if (c && !remote)
		return false;
	if (!atomic_flag_test_and_set(&logged))
		sfy_warn("%s: raw DNS queries are not sent in remote DNS mode", what);
	else
		sfy_debug("%s: refused (remote DNS)", what);
	res_fail(statp, NO_RECOVERY);
	return true;
}

/* One interposer under both names; the real function is the same. */
#define RES_HOOK(fn, params, args, statp, kind, dname, msg, msglen)          \
	SFY_EXPORT int fn params;                                            \
	SFY_EXPORT int __##fn params;                                        \
	int fn params                                                        \
	{                                                                    \
		const struct sfy_real *r = sfy_real();                       \
		char qd[SFY_NAME_MAX + 2];                                   \
		(void)qd;                                                    \
		if (res_blocked(statp, #fn, kind, dname, msg, msglen) || !r->fn) \
			return -1;                                           \
		return r->fn args;                                           \
	}                                                                    \
	int __##fn params                                                    \
	{                                                                    \
		return fn args;                                              \
	}

RES_HOOK(res_query, (const char *dname, int class, int type, unsigned char *ans, int anslen),
	 (dname, class, type, ans, anslen), NULL, RES_EXACT, dname, NULL, 0)
RES_HOOK(res_search, (const char *dname, int class, int type, unsigned char *ans, int anslen),
	 (dname, class, type, ans, anslen), NULL, RES_SEARCH, dname, NULL, 0)
RES_HOOK(res_querydomain,
	 (const char *name, const char *domain, int class, int type, unsigned char *ans, int anslen),
	 (name, domain, class, type, ans, anslen), NULL, RES_EXACT, qd_join(name, domain, qd), NULL,
	 0)
RES_HOOK(res_send, (const unsigned char *msg, int msglen, unsigned char *ans, int anslen),
	 (msg, msglen, ans, anslen), NULL, RES_MSG, NULL, msg, msglen)
RES_HOOK(res_nquery,
	 (res_state statp, const char *dname, int class, int type, unsigned char *ans, int anslen),
	 (statp, dname, class, type, ans, anslen), statp, RES_EXACT, dname, NULL, 0)
RES_HOOK(res_nsearch,
	 (res_state statp, const char *dname, int class, int type, unsigned char *ans, int anslen),
	 (statp, dname, class, type, ans, anslen), statp, RES_SEARCH, dname, NULL, 0)
RES_HOOK(res_nquerydomain,
	 (res_state statp, const char *name, const char *domain, int class, int type,
	  unsigned char *ans, int anslen),
	 (statp, name, domain, class, type, ans, anslen), statp, RES_EXACT,
	 qd_join(name, domain, qd), NULL, 0)
RES_HOOK(res_nsend,
	 (res_state statp, const unsigned char *msg, int msglen, unsigned char *ans, int anslen),
	 (statp, msg, msglen, ans, anslen), statp, RES_MSG, NULL, msg, msglen)
