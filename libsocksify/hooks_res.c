/* The res_* query API (resolv.h): raw DNS queries a program builds itself
 * (MX, SRV, TXT lookups...). A SOCKS proxy cannot answer them, so in
 * remote mode (and without a usable configuration) they fail cleanly --
 * -1 and h_errno NO_RECOVERY, one log line -- and never send a packet.
 * dns: local passes them through.
 *
 * glibc exports each function twice: res_query@@GLIBC_2.34 and the older
 * __res_query, which programs built against headers that #define res_query
 * __res_query still call. Both names are interposed. res_mkquery and
 * dn_expand only build or parse bytes and are left alone. */
#include <stdatomic.h>
#include <netdb.h>
#include <resolv.h>

#include "log.h"
#include "real.h"
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

static bool res_blocked(res_state statp, const char *what)
{
	static atomic_flag logged = ATOMIC_FLAG_INIT;
	const struct sfy_config *c = sfy_config_get();
	if (c && c->dns != SFY_DNS_REMOTE)
		return false;
	if (!atomic_flag_test_and_set(&logged))
		sfy_warn("%s: raw DNS queries are not sent in remote DNS mode", what);
	else
		sfy_debug("%s: refused (remote DNS)", what);
	h_errno = NO_RECOVERY;
	if (statp)
		statp->res_h_errno = NO_RECOVERY;
	return true;
}

/* One interposer under both names; the real function is the same. */
#define RES_HOOK(name, params, args, statp)                                  \
	SFY_EXPORT int name params;                                          \
	SFY_EXPORT int __##name params;                                      \
	int name params                                                      \
	{                                                                    \
		const struct sfy_real *r = sfy_real();                       \
		if (res_blocked(statp, #name) || !r->name)                   \
			return -1;                                           \
		return r->name args;                                         \
	}                                                                    \
	int __##name params                                                  \
	{                                                                    \
		return name args;                                            \
	}

RES_HOOK(res_query, (const char *dname, int class, int type, unsigned char *ans, int anslen),
	 (dname, class, type, ans, anslen), NULL)
RES_HOOK(res_search, (const char *dname, int class, int type, unsigned char *ans, int anslen),
	 (dname, class, type, ans, anslen), NULL)
RES_HOOK(res_querydomain,
	 (const char *name, const char *domain, int class, int type, unsigned char *ans, int anslen),
	 (name, domain, class, type, ans, anslen), NULL)
RES_HOOK(res_send, (const unsigned char *msg, int msglen, unsigned char *ans, int anslen),
	 (msg, msglen, ans, anslen), NULL)
RES_HOOK(res_nquery,
	 (res_state statp, const char *dname, int class, int type, unsigned char *ans, int anslen),
	 (statp, dname, class, type, ans, anslen), statp)
RES_HOOK(res_nsearch,
	 (res_state statp, const char *dname, int class, int type, unsigned char *ans, int anslen),
	 (statp, dname, class, type, ans, anslen), statp)
RES_HOOK(res_nquerydomain,
	 (res_state statp, const char *name, const char *domain, int class, int type,
	  unsigned char *ans, int anslen),
	 (statp, name, domain, class, type, ans, anslen), statp)
RES_HOOK(res_nsend,
	 (res_state statp, const unsigned char *msg, int msglen, unsigned char *ans, int anslen),
	 (statp, msg, msglen, ans, anslen), statp)
