/* The one table from proxy reply codes to the errno connect() reports.
 *
 * Choices, so that a program sees the failure it would have seen directly:
 *  SOCKS5  1 general failure     ECONNREFUSED  the proxy would not connect us;
 *                                              no more specific cause given
 *          2 not allowed         EACCES        a ruleset, like a firewall REJECT
 *          3 net unreachable     ENETUNREACH
 *          4 host unreachable    EHOSTUNREACH
 *          5 refused             ECONNREFUSED
 *          6 TTL expired         ETIMEDOUT     the connect attempt timed out
 *          7 cmd not supported   EOPNOTSUPP
 *          8 atyp not supported  EAFNOSUPPORT
 *          Tor's extended errors (SocksPort ExtendedErrors, tor's
 *          socks-extensions.txt), all about onion services:
 *          F0 descriptor not found  EHOSTUNREACH  no such service (now)
 *          F1 descriptor invalid    EHOSTUNREACH  unreachable as published;
 *                                                 EPROTO would blame our
 *                                                 SOCKS framing, which is fine
 *          F2 introduction failed   ECONNREFUSED  the service did not take us
 *          F3 rendezvous failed     ECONNREFUSED
 *          F4 client auth missing   EACCES        credentials needed
 *          F5 client auth wrong     EACCES
 *          F6 invalid address       EHOSTUNREACH  as a name that does not
 *                                                 resolve (chain.c)
 *          F7 introduction timeout  ETIMEDOUT
 *          other                 ECONNREFUSED
 *  SOCKS4  91 rejected/failed    ECONNREFUSED
 *          92, 93 identd         EACCES        refused because of who we are
 *          other                 ECONNREFUSED
 *  HTTP    2xx                   0
 *          401, 403, 407         EACCES        forbidden / credentials needed
 *                                              (tinyproxy answers 401 where
 *                                              RFC 9110 says 407)
 *          502, 503              ECONNREFUSED  the proxy could not connect
 *                                              (squid, tinyproxy use these for
 *                                              refused and unresolvable)
 *          504                   ETIMEDOUT
 *          other                 ECONNREFUSED
 * The codec parsers decide what is malformed; this file only maps codes. */
#include <errno.h>
#include <stddef.h>

#include "errmap.h"
#include "sfy.h"

enum proto { P_S5, P_S4, P_HTTP };

static const struct {
	unsigned char proto;
	short code;
	int err;
	const char *str;
} table[] = {
	{ P_S5, 0, 0, "succeeded" },
	{ P_S5, 1, ECONNREFUSED, "general SOCKS server failure" },
	{ P_S5, 2, EACCES, "connection not allowed by ruleset" },
	{ P_S5, 3, ENETUNREACH, "network unreachable" },
	{ P_S5, 4, EHOSTUNREACH, "host unreachable" },
	{ P_S5, 5, ECONNREFUSED, "connection refused" },
	{ P_S5, 6, ETIMEDOUT, "TTL expired" },
	{ P_S5, 7, EOPNOTSUPP, "command not supported" },
	{ P_S5, 8, EAFNOSUPPORT, "address type not supported" },
	{ P_S5, 0xf0, EHOSTUNREACH, "Tor: onion service descriptor can not be found" },
	{ P_S5, 0xf1, EHOSTUNREACH, "Tor: onion service descriptor is invalid" },
	{ P_S5, 0xf2, ECONNREFUSED, "Tor: onion service introduction failed" },
	{ P_S5, 0xf3, ECONNREFUSED, "Tor: onion service rendezvous failed" },
	{ P_S5, 0xf4, EACCES, "Tor: onion service missing client authorization" },
	{ P_S5, 0xf5, EACCES, "Tor: onion service wrong client authorization" },
	{ P_S5, 0xf6, EHOSTUNREACH, "Tor: onion service invalid address" },
	{ P_S5, 0xf7, ETIMEDOUT, "Tor: onion service introduction timed out" },
	{ P_S4, 90, 0, "request granted" },
	{ P_S4, 91, ECONNREFUSED, "request rejected or failed" },
	{ P_S4, 92, EACCES, "rejected: proxy cannot reach client identd" },
	{ P_S4, 93, EACCES, "rejected: identd user-id mismatch" },
	{ P_HTTP, 401, EACCES, "unauthorized" },
	{ P_HTTP, 403, EACCES, "forbidden" },
	{ P_HTTP, 407, EACCES, "proxy authentication required" },
	{ P_HTTP, 502, ECONNREFUSED, "bad gateway" },
	{ P_HTTP, 503, ECONNREFUSED, "service unavailable" },
	{ P_HTTP, 504, ETIMEDOUT, "gateway timeout" },
};

/* Unknown codes of every protocol: refused, the generic "it did not work". */
#define DEFAULT_ERR ECONNREFUSED

static int find(enum proto p, int code)
{
	for (size_t i = 0; i < SFY_ARRAY_LEN(table); i++)
		if (table[i].proto == p && table[i].code == code)
			return (int)i;
	return -1;
}

static int err_of(enum proto p, int code)
{
	int i = find(p, code);

	return i < 0 ? DEFAULT_ERR : table[i].err;
}

static const char *str_of(enum proto p, int code, const char *dflt)
{
	int i = find(p, code);

	return i < 0 ? dflt : table[i].str;
}

int sfy_errno_from_s5(uint8_t rep)
{
	return err_of(P_S5, rep);
}

int sfy_errno_from_s4(uint8_t code)
{
	return err_of(P_S4, code);
}

int sfy_errno_from_http(int status)
{
	if (status >= 200 && status <= 299)
		return 0;
	return err_of(P_HTTP, status);
}

const char *sfy_s5_rep_str(uint8_t rep)
{
	return str_of(P_S5, rep, "unknown SOCKS5 reply code");
}

const char *sfy_s4_code_str(uint8_t code)
{
	return str_of(P_S4, code, "unknown SOCKS4 reply code");
}

const char *sfy_http_status_str(int status)
{
	if (status >= 200 && status <= 299)
		return "connection established";
	return str_of(P_HTTP, status, "unexpected HTTP status");
}
