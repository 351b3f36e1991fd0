/* The res_* query API (resolv.h): raw DNS queries a program builds itself
 * (MX, SRV, TXT lookups...). In remote mode with the DNS responder on
 * (dnsresp.h) they are answered here, never sent: the query is built as
 * glibc builds it (res_mkquery / res_nmkquery) and answered by
 * sfy_dnsresp_answer -- fake addresses for A/AAAA, NODATA for the other
 * types (apt's SRV lookup gets its empty answer at once), NXDOMAIN for a
 * name the rules block. The reply is copied into the caller's buffer as
 * glibc's UDP path does (cut to the buffer, TC set when cut), and res_query
 * turns an answer without records into -1 with h_errno NO_DATA, NXDOMAIN
 * into HOST_NOT_FOUND, SERVFAIL into TRY_AGAIN, as glibc does. res_search
 * walks the search list as glibc does. With the responder off (or without
 * a usable configuration) they fail cleanly in remote mode -- -1 and
 * h_errno NO_RECOVERY, one log line -- and never send a packet.
 * dns: local passes them through.
 *
 * Routing rules (dns_rules.h) decide for the queries that name a domain
 * (res_query, res_search, res_querydomain and their res_n* forms): a name
 * the rules block fails with HOST_NOT_FOUND and no packet, in any mode; a
 * name whose every route resolves locally is queried for real even in
 * remote mode; res_search/res_nsearch are judged with every search-list
 * expansion of the name (dns_rules.h). res_send/res_nsend carry a ready
 * message: answered by the responder in remote mode (refused with it off);
 * in local mode with rules the names in its questions are judged like
 * res_query's, and a blocked (or unreadable) message fails as res_send
 * does when no name server answers (-1, errno ECONNREFUSED, h_errno
 * HOST_NOT_FOUND) without a packet.
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

#include "dns_msg.h"
#include "dns_rules.h"
#include "dns_search.h"
#include "dnsresp.h"
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
#undef res_mkquery
#undef res_nmkquery

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

/* Is name the reverse-lookup name (in-addr.arpa, ip6.arpa) of an address
 * in the range of this tree's fake-address table? Local-DNS mode hands
 * such addresses out for .onion names; their PTR query would tell the
 * network one is in use, and no server knows the name behind it. */
static bool fake_ptr_name(const char *name)
{
	char norm[SFY_NAME_MAX + 1];
	uint8_t ip[16];
	uint32_t v4;
	if (!sfy_fakedns_exists() || sfy_fakedns_normalize(name, norm) <= 0)
		return false;   /* no table (local mode, none in the tree) first: cheapest */
	if (sfy_dns_ptr_v4(norm, ip)) {
		memcpy(&v4, ip, 4);
	} else if (sfy_dns_ptr_v6(norm, ip)) {
		struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
		memcpy(&s6.sin6_addr, ip, 16);
		if (!sfy_fakedns_sockaddr_v4((struct sockaddr *)&s6, sizeof(s6), &v4))
			return false;
	} else {
		return false;
	}
	return sfy_fakedns_in_range(v4);
}

static bool special_name(const char *name)
{
	return sfy_route_special_tld(name) || fake_ptr_name(name);
}

/* Does the call ask about a .onion/.exit/.i2p name or a fake address's
 * PTR name (in a ready message: in any question; a message we cannot read
 * is judged elsewhere)? Such a query never leaves, in any mode: a
 * res_search's expansions would carry the name too. */
static bool special_query(enum res_kind kind, const char *dname, const unsigned char *msg,
			  int len)
{
	if (kind != RES_MSG)
		return dname && special_name(dname);
	char name[NS_MAXDNAME];
	if (!msg || len < HFIXEDSZ)
		return false;
	unsigned qd = (unsigned)msg[4] << 8 | msg[5];
	const unsigned char *q = msg + HFIXEDSZ, *end = msg + len;
	for (unsigned i = 0; i < qd; i++) {
		int n = dn_expand(msg, end, q, name, sizeof(name));
		if (n < 0 || end - (q + n) < QFIXEDSZ)
			return false;
		if (special_name(name))
			return true;
		q += n + QFIXEDSZ;
	}
	return false;
}

/* What a call does. */
enum res_way {
	RES_REAL,       /* the real function (local mode, a local name) */
	RES_FAIL,       /* -1, h_errno set */
	RES_ANSWER,     /* the responder answers */
};

/* dname: the domain the query asks about (kind RES_EXACT, RES_SEARCH), or
 * msg/msglen (RES_MSG). */
static enum res_way res_way(res_state statp, const char *what, enum res_kind kind,
			    const char *dname, const unsigned char *msg, int msglen)
{
	static atomic_flag logged = ATOMIC_FLAG_INIT;
	const struct sfy_config *c = sfy_config_get();
	const struct sfy_routes *rt = c ? sfy_routes_get() : NULL;
	bool remote = rt ? sfy_routes_remote(rt) : c && sfy_dns_fakes(c->dns);
	bool responder = remote && sfy_dnsresp_enabled(c);
	if (c && !remote && special_query(kind, dname, msg, msglen)) {
		/* remote mode's responder answers these from the fake table */
		sfy_debug("%s: a query for a .onion/.exit/.i2p name or a fake address is never "
			  "sent", what);
		res_fail(statp, HOST_NOT_FOUND);
		return RES_FAIL;
	}
	if (kind == RES_MSG && c && !remote && rt && sfy_routes_active(rt)) {
		/* local mode: what the message asks for decides, as for a name */
		if (msg_plan(rt, msg, msglen) != SFY_PLAN_BLOCK)
			return RES_REAL;
		sfy_debug("%s: a query the rules block (or cannot read) is not sent", what);
		res_fail(statp, HOST_NOT_FOUND);
		errno = ECONNREFUSED;   /* as res_send when no name server answered */
		return RES_FAIL;
	}
	if (kind != RES_MSG && dname && rt && sfy_routes_active(rt)) {
		/* a numeric name has no rule of its own: the mode decides */
		enum sfy_name_plan p =
			sfy_dns_numeric(dname) ? SFY_PLAN_FAKE
			: kind == RES_SEARCH ? sfy_dns_rules_plan_search(rt, dname, -1, statp)
					     : sfy_dns_rules_plan(rt, dname, -1);
		if (p == SFY_PLAN_BLOCK) {
			/* the responder says NXDOMAIN for it, into the buffer as
			 * a server's would be; a search is refused as a whole */
			if (responder && kind == RES_EXACT)
				return RES_ANSWER;
			res_fail(statp, HOST_NOT_FOUND);
			return RES_FAIL;
		}
		if (p == SFY_PLAN_LOCAL)
			return RES_REAL;
	}
	if (c && !remote)
		return RES_REAL;
	if (responder)
		return RES_ANSWER;
	if (!atomic_flag_test_and_set(&logged))
		sfy_warn("%s: raw DNS queries are not sent in remote DNS mode", what);
	else
		sfy_debug("%s: refused (remote DNS)", what);
	res_fail(statp, NO_RECOVERY);
	return RES_FAIL;
}

/* ---- answers from the responder ------------------------------------- */

/* Our answers are a few records: far below this, with any question. */
#define ANSWER_MAX 4096

/* The responder's reply to msg in ans, as res_send returns one: its
 * length, cut to anslen with TC set when longer (glibc's UDP path reads
 * what fits). rcodes: res_query's reading of the reply (false: res_send,
 * which returns any reply). */
static int answer_msg(res_state statp, const unsigned char *msg, int msglen, unsigned char *ans,
		      int anslen, bool rcodes)
{
	uint8_t out[ANSWER_MAX];
	if (!msg || msglen <= 0 || !ans || anslen <= 0) {
		errno = EINVAL;
		res_fail(statp, NO_RECOVERY);
		return -1;
	}
	ssize_t n = sfy_dnsresp_answer(msg, (size_t)msglen, true, out, sizeof(out));
	if (n <= 0) {
		/* a response or a fragment: no server would have answered */
		errno = n < 0 ? (int)-n : ETIMEDOUT;
		res_fail(statp, n < 0 ? NO_RECOVERY : TRY_AGAIN);
		return -1;
	}
	int len = n < anslen ? (int)n : anslen;
	memcpy(ans, out, (size_t)len);
	if (len < n && len >= 3)
		ans[2] |= 0x02;         /* TC */
	if (!rcodes)
		return len;
	unsigned rcode = out[3] & 15, ancount = (unsigned)out[6] << 8 | out[7];
	if (rcode == NOERROR && ancount)
		return len;
	res_fail(statp, rcode == NXDOMAIN ? HOST_NOT_FOUND
		 : rcode == SERVFAIL     ? TRY_AGAIN
		 : rcode == NOERROR      ? NO_DATA
					 : NO_RECOVERY);
	return -1;
}

/* res_query: the question built as glibc builds it, then answered. */
static int answer_query(res_state statp, const char *name, int class, int type,
			unsigned char *ans, int anslen)
{
	unsigned char q[HFIXEDSZ + NS_MAXCDNAME + QFIXEDSZ + 64];
	int n = statp ? res_nmkquery(statp, QUERY, name, class, type, NULL, 0, NULL, q, sizeof(q))
		      : res_mkquery(QUERY, name, class, type, NULL, 0, NULL, q, sizeof(q));
	if (n <= 0) {
		res_fail(statp, NO_RECOVERY);   /* as glibc: a name it cannot encode */
		return -1;
	}
	return answer_msg(statp, q, n, ans, anslen, true);
}

/* res_search as glibc's __res_context_search: the name as written first
 * when it has ndots dots (or a trailing one), then the search list
 * (RES_DEFNAMES for a name without dots, RES_DNSRCH with), then as written
 * if not tried yet; the h_errno of the most telling failure. */
static int answer_search(res_state statp, const char *name, int class, int type,
			 unsigned char *ans, int anslen)
{
	if (!name) {
		res_fail(statp, NO_RECOVERY);
		return -1;
	}
	struct __res_state *st = statp;
	if (!st) {
		st = &_res;
		if (!(st->options & RES_INIT) && res_init() < 0) {
			res_fail(statp, NETDB_INTERNAL);
			return -1;
		}
	}
	unsigned dots = 0;
	for (const char *p = name; *p; p++)
		dots += *p == '.';
	size_t len = strlen(name);
	bool trailing = len && name[len - 1] == '.';
	int saved = -1, r;
	bool tried = false, nodata = false, servfail = false;
	if (dots >= st->ndots || trailing) {
		if ((r = answer_query(statp, name, class, type, ans, anslen)) > 0 || trailing)
			return r;
		saved = h_errno;
		tried = true;
	}
	if ((!dots && (st->options & RES_DEFNAMES)) || (dots && (st->options & RES_DNSRCH))) {
		struct sfy_search s;
		char full[SFY_NAME_MAX + 1];
		sfy_search_get(&s, statp);
		for (size_t i = 0; i < s.n; i++) {
			if (!sfy_search_join(name, s.dom[i], full))
				continue;
			if ((r = answer_query(statp, full, class, type, ans, anslen)) > 0)
				return r;
			if (h_errno == NO_DATA)
				nodata = true;
			else if (h_errno == TRY_AGAIN)
				servfail = true;
			else if (h_errno != HOST_NOT_FOUND)
				break;          /* glibc stops on any other failure */
			if (!(st->options & RES_DNSRCH))
				break;
		}
	}
	if (!tried && (r = answer_query(statp, name, class, type, ans, anslen)) > 0)
		return r;
	if (saved != -1)
		res_fail(statp, saved);
	else if (nodata)
		res_fail(statp, NO_DATA);
	else if (servfail)
		res_fail(statp, TRY_AGAIN);
	return -1;
}

/* One interposer under both names; the real function is the same.
 * answer: the expression that answers from the responder. */
#define RES_HOOK(fn, params, args, statp, kind, dname, msg, msglen, answer)  \
	SFY_EXPORT int fn params;                                            \
	SFY_EXPORT int __##fn params;                                        \
	int fn params                                                        \
	{                                                                    \
		const struct sfy_real *r = sfy_real();                       \
		char qd[SFY_NAME_MAX + 2];                                   \
		(void)qd;                                                    \
		switch (res_way(statp, #fn, kind, dname, msg, msglen)) {     \
		case RES_FAIL:                                               \
			return -1;                                           \
		case RES_ANSWER:                                             \
			return answer;                                       \
		case RES_REAL:                                               \
			break;                                               \
		}                                                            \
		return r->fn ? r->fn args : -1;                              \
	}                                                                    \
	int __##fn params                                                    \
	{                                                                    \
		return fn args;                                              \
	}

RES_HOOK(res_query, (const char *dname, int class, int type, unsigned char *ans, int anslen),
	 (dname, class, type, ans, anslen), NULL, RES_EXACT, dname, NULL, 0,
	 answer_query(NULL, dname, class, type, ans, anslen))
RES_HOOK(res_search, (const char *dname, int class, int type, unsigned char *ans, int anslen),
	 (dname, class, type, ans, anslen), NULL, RES_SEARCH, dname, NULL, 0,
	 answer_search(NULL, dname, class, type, ans, anslen))
RES_HOOK(res_querydomain,
	 (const char *name, const char *domain, int class, int type, unsigned char *ans, int anslen),
	 (name, domain, class, type, ans, anslen), NULL, RES_EXACT, qd_join(name, domain, qd), NULL,
	 0, answer_query(NULL, qd_join(name, domain, qd), class, type, ans, anslen))
RES_HOOK(res_send, (const unsigned char *msg, int msglen, unsigned char *ans, int anslen),
	 (msg, msglen, ans, anslen), NULL, RES_MSG, NULL, msg, msglen,
	 answer_msg(NULL, msg, msglen, ans, anslen, false))
RES_HOOK(res_nquery,
	 (res_state statp, const char *dname, int class, int type, unsigned char *ans, int anslen),
	 (statp, dname, class, type, ans, anslen), statp, RES_EXACT, dname, NULL, 0,
	 answer_query(statp, dname, class, type, ans, anslen))
RES_HOOK(res_nsearch,
	 (res_state statp, const char *dname, int class, int type, unsigned char *ans, int anslen),
	 (statp, dname, class, type, ans, anslen), statp, RES_SEARCH, dname, NULL, 0,
	 answer_search(statp, dname, class, type, ans, anslen))
RES_HOOK(res_nquerydomain,
	 (res_state statp, const char *name, const char *domain, int class, int type,
	  unsigned char *ans, int anslen),
	 (statp, name, domain, class, type, ans, anslen), statp, RES_EXACT,
	 qd_join(name, domain, qd), NULL, 0,
	 answer_query(statp, qd_join(name, domain, qd), class, type, ans, anslen))
RES_HOOK(res_nsend,
	 (res_state statp, const unsigned char *msg, int msglen, unsigned char *ans, int anslen),
	 (statp, msg, msglen, ans, anslen), statp, RES_MSG, NULL, msg, msglen,
	 answer_msg(statp, msg, msglen, ans, anslen, false))
