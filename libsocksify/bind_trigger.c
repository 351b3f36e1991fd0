/* The BIND trigger as pure functions (bind.h): which listening sockets get
 * a SOCKS BIND and which stay local. */
#include <netinet/in.h>
#include <string.h>

#include "addr.h"
#include "bind.h"
#include "sock.h"

/* The IPv4 address inside sa (AF_INET, or v4-mapped AF_INET6) into v4;
 * false for a real IPv6 address. */
static bool v4_of(const struct sockaddr *sa, uint8_t v4[4])
{
	if (sa->sa_family == AF_INET) {
		memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	if (memcmp(a, sfy_v4mapped_prefix, 12))
		return false;
	memcpy(v4, a + 12, 4);
	return true;
}

/* The same IP (ports aside), across families for v4-mapped addresses. */
static bool same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
	uint8_t x[4], y[4];
	bool xa = v4_of(a, x), yb = v4_of(b, y);
	if (xa || yb)
		return xa && yb && !memcmp(x, y, 4);
	return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		       &((const struct sockaddr_in6 *)b)->sin6_addr, 16);
}

/* Is sa's IP one of the n addresses in list? */
static bool in_list(const struct sockaddr *sa, const struct sockaddr_storage *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (sfy_sockaddr_is_inet((const struct sockaddr *)&list[i], sizeof(list[i])) &&
		    same_ip(sa, (const struct sockaddr *)&list[i]))
			return true;
	return false;
}

bool sfy_bind_same_ip(const struct sockaddr *a, socklen_t alen, const struct sockaddr *b,
		      socklen_t blen)
{
	return sfy_sockaddr_is_inet(a, alen) && sfy_sockaddr_is_inet(b, blen) && same_ip(a, b);
}

enum sfy_bind_at sfy_bind_at_of(const struct sockaddr *sa, socklen_t len,
				const struct sockaddr_storage *handed, size_t nhanded,
				const struct sockaddr_storage *locals, size_t nlocals)
{
	if (!sfy_sockaddr_is_inet(sa, len))
		return SFY_BIND_AT_OTHER;
	uint8_t v4[4];
	if (v4_of(sa, v4)) {
		static const uint8_t zero[4];
		if (!memcmp(v4, zero, 4))
			return SFY_BIND_AT_WILDCARD;
		if (v4[0] == 127)
			return SFY_BIND_AT_LOOPBACK;
	} else {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_UNSPECIFIED(a))
			return SFY_BIND_AT_WILDCARD;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return SFY_BIND_AT_LOOPBACK;
	}
	if (in_list(sa, handed, nhanded))
		return SFY_BIND_AT_HANDED;
	/* curl -P - binds getsockname() of its control connection; when the
	 * proxy gave no BND to show (an HTTP hop, an all-zero reply) that is
	 * this machine's own address, which must never be advertised. */
	if (in_list(sa, locals, nlocals))
		return SFY_BIND_AT_PROXIED;
	return SFY_BIND_AT_OTHER;
}

bool sfy_bind_triggers(const struct sfy_bind_ask *a)
{
	if (a->off || !a->have_proxied || a->connected)
		return false;
	switch (a->at) {
	case SFY_BIND_AT_NONE:
		/* getsockname() of a socket never bound says 0.0.0.0:0 -- nothing
		 * a program could advertise; only listen() autobinds it. */
		return a->listen_call;
	case SFY_BIND_AT_WILDCARD:
	case SFY_BIND_AT_HANDED:
	case SFY_BIND_AT_PROXIED:
		return a->port == 0;
	case SFY_BIND_AT_LOOPBACK:
	case SFY_BIND_AT_OTHER:
		return false;
	}
	return false;
}
