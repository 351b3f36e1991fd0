/* Proxy URLs in the cURL convention:
 *
 *   SCHEME://[USER[:PASSWORD]@]HOST[:PORT][/]
 *
 *   SCHEME   socks4 | socks4a | socks5 | socks5h | http   (any case)
 *   USER     percent-encoded; SOCKS4 USERID or RFC 1929 UNAME
 *   PASSWORD percent-encoded; RFC 1929 PASSWD or HTTP Basic (not SOCKS4)
 *   HOST     DNS name | IPv4 literal | [IPv6 literal]
 *   PORT     1..65535, default 1080 (http 8080)
 *
 * Errors are one line and never contain the password: they are logged and
 * shown on terminals. No allocation: the library parses inside connect(). */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxy_url.h"
#include "sfy.h"

static const struct {
	const char *name;
	enum sfy_proto proto;
	uint16_t port;
	bool remote_dns;
} protos[] = {
	{ "socks4", SFY_PROTO_SOCKS4, 1080, false },
	{ "socks4a", SFY_PROTO_SOCKS4A, 1080, true },
	{ "socks5", SFY_PROTO_SOCKS5, 1080, false },
	{ "socks5h", SFY_PROTO_SOCKS5H, 1080, true },
	{ "http", SFY_PROTO_HTTP, 8080, true },
};

const char *sfy_proto_name(enum sfy_proto proto)
{
	for (size_t i = 0; i < SFY_ARRAY_LEN(protos); i++)
		if (protos[i].proto == proto)
			return protos[i].name;
	return "?";
}

enum sfy_proto sfy_proto_from_name(const char *name)
{
	for (size_t i = 0; i < SFY_ARRAY_LEN(protos); i++)
		if (!strcasecmp(protos[i].name, name))
			return protos[i].proto;
	return 0;
}

uint16_t sfy_proto_default_port(enum sfy_proto proto)
{
	for (size_t i = 0; i < SFY_ARRAY_LEN(protos); i++)
		if (protos[i].proto == proto)
			return protos[i].port;
	return 0;
}

bool sfy_proto_remote_dns(enum sfy_proto proto)
{
	for (size_t i = 0; i < SFY_ARRAY_LEN(protos); i++)
		if (protos[i].proto == proto)
			return protos[i].remote_dns;
	return false;
}


static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes s[0..n) into out (SFY_CRED_MAX + 1 bytes). what names the field
 * in errors; the bytes themselves are never echoed (they may be a secret). */
static int pct_decode(const char *s, size_t n, char out[static SFY_CRED_MAX + 1],
		      const char *what, char *err, size_t errcap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			int hi = i + 1 < n ? hexval((unsigned char)s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return sfy_errf(err, errcap, "bad percent-escape in %s", what);
			c = hi * 16 + lo;
			if (c == 0)
				return sfy_errf(err, errcap, "%%00 (NUL) in %s", what);
			i += 2;
		}
		if (o == SFY_CRED_MAX)
			return sfy_errf(err, errcap, "%s longer than %d bytes", what, SFY_CRED_MAX);
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* A DNS-ish name: letters, digits, '-', '_', '.'; or an IPv4 literal. */
static bool host_name_ok(const char *h)
{
	if (!*h)
		return false;
	for (; *h; h++)
		if (!isalnum((unsigned char)*h) && !strchr("-._", *h))
			return false;
	return true;
}

static bool ipv6_ok(const char *h)
{
	struct in6_addr a;
	return inet_pton(AF_INET6, h, &a) == 1;
}

/* Shared by the URL parser and the YAML long form: the checks on a hop
 * whose fields are already split out. */
static int check_fields(const struct sfy_proxy *p, char *err, size_t errcap)
{
	const char *name = sfy_proto_name(p->proto);

	if (!sfy_proto_default_port(p->proto))
		return sfy_errf(err, errcap, "unknown proxy type");
	if (!p->host[0])
		return sfy_errf(err, errcap, "empty host");
	if (strchr(p->host, ':') ? !ipv6_ok(p->host) : !host_name_ok(p->host))
		return sfy_errf(err, errcap, "bad host \"%s\"", p->host);
	if (!p->port)
		return sfy_errf(err, errcap, "bad port 0 (1..65535)");
	if (p->has_user && !p->user[0])
		return sfy_errf(err, errcap, "empty user name");
	if (p->has_pass && !p->has_user)
		return sfy_errf(err, errcap, "a password without a user name");
	/* Basic auth sends "user:password": a colon in the user name would
	 * move the split (RFC 7617 section 2). */
	if (p->has_user && p->proto == SFY_PROTO_HTTP && strchr(p->user, ':'))
		return sfy_errf(err, errcap, "http user names cannot contain ':'");
	if (p->has_pass && (p->proto == SFY_PROTO_SOCKS4 || p->proto == SFY_PROTO_SOCKS4A))
		return sfy_errf(err, errcap, "%s has no password, only a user id", name);
	return 0;
}

int sfy_proxy_validate(const struct sfy_proxy *p, char *err, size_t errcap)
{
	if (strnlen(p->host, sizeof p->host) > SFY_HOST_MAX
	    || strnlen(p->user, sizeof p->user) > SFY_CRED_MAX
	    || strnlen(p->pass, sizeof p->pass) > SFY_CRED_MAX)
		return sfy_errf(err, errcap, "field not terminated");
	return check_fields(p, err, errcap);
}

static int parse_port(const char *s, size_t n, uint16_t *port, char *err, size_t errcap)
{
	unsigned long v;

	if (!n)
		return sfy_errf(err, errcap, "empty port after ':'");
	if (strspn(s, "0123456789") < n)
		return sfy_errf(err, errcap, "bad port \"%.*s\" (digits only)", (int)n, s);
	if (sfy_decimal(s, n, 65535, &v) || v < 1)
		return sfy_errf(err, errcap, "bad port \"%.*s\" (1..65535)", (int)n, s);
	*port = (uint16_t)v;
	return 0;
}

/* host[:port] or [v6][:port], a = start, n = length. */
static int parse_hostport(const char *a, size_t n, struct sfy_proxy *p, char *err, size_t errcap)
{
	const char *h = a, *port = NULL;
	size_t hn;

	if (n && a[0] == '[') {
		const char *close = memchr(a, ']', n);
		if (!close)
			return sfy_errf(err, errcap, "unterminated '[' in host");
		h = a + 1;
		hn = (size_t)(close - h);
		size_t rest = n - (size_t)(close + 1 - a);
		if (rest) {
			if (close[1] != ':')
				return sfy_errf(err, errcap, "unexpected text after ']'");
			port = close + 2;
		}
		if (!hn)
			return sfy_errf(err, errcap, "empty host");
	} else {
		const char *colon = memchr(a, ':', n);
		hn = colon ? (size_t)(colon - a) : n;
		if (colon) {
			if (memchr(colon + 1, ':', n - hn - 1))
				return sfy_errf(err, errcap, "IPv6 host must be in brackets: [addr]");
			port = colon + 1;
		}
		if (!hn)
			return sfy_errf(err, errcap, "empty host");
	}
	if (hn > SFY_HOST_MAX)
		return sfy_errf(err, errcap, "host longer than %d bytes", SFY_HOST_MAX);
	memcpy(p->host, h, hn);
	p->host[hn] = '\0';
	if (h != a && !ipv6_ok(p->host))
		return sfy_errf(err, errcap, "bad IPv6 address \"%s\"", p->host);
	if (port)
		return parse_port(port, n - (size_t)(port - a), &p->port, err, errcap);
	p->port = sfy_proto_default_port(p->proto);
	return 0;
}

int sfy_proxy_url_parse(const char *url, struct sfy_proxy *p, char *err, size_t errcap)
{
	const char *sep, *auth, *end, *at;
	char scheme[16];

	memset(p, 0, sizeof *p);
	for (const char *s = url; *s; s++)
		if (isspace((unsigned char)*s) || iscntrl((unsigned char)*s))
			return sfy_errf(err, errcap, "spaces or control characters in proxy URL");
	sep = strstr(url, "://");
	if (!sep)
		return sfy_errf(err, errcap, "missing scheme (socks4://, socks4a://, socks5://, socks5h:// or http://)");
	if (sep == url)
		return sfy_errf(err, errcap, "missing scheme before \"://\"");
	if ((size_t)(sep - url) >= sizeof scheme
	    || (snprintf(scheme, sizeof scheme, "%.*s", (int)(sep - url), url),
		!(p->proto = sfy_proto_from_name(scheme))))
		return sfy_errf(err, errcap, "unknown scheme \"%.*s\" (socks4, socks4a, socks5, socks5h, http)",
			    (int)(sep - url) > 32 ? 32 : (int)(sep - url), url);

	auth = sep + 3;
	end = auth + strcspn(auth, "/?#");
	if (*end && strcmp(end, "/"))
		return sfy_errf(err, errcap, "path, query or fragment after the host");

	/* The last '@' ends USERINFO: a raw '@' in a password is common enough
	 * to accept, and a host can never contain one. */
	at = NULL;
	for (const char *s = auth; s < end; s++)
		if (*s == '@')
			at = s;
	if (at) {
		const char *colon = memchr(auth, ':', (size_t)(at - auth));
		size_t un = colon ? (size_t)(colon - auth) : (size_t)(at - auth);
		if (pct_decode(auth, un, p->user, "user name", err, errcap))
			return -1;
		p->has_user = true;
		if (colon) {
			if (pct_decode(colon + 1, (size_t)(at - colon - 1), p->pass, "password", err, errcap))
				return -1;
			p->has_pass = true;
		}
		auth = at + 1;
	}
	if (parse_hostport(auth, (size_t)(end - auth), p, err, errcap))
		return -1;
	return check_fields(p, err, errcap);
}

/* Characters a URL's USERINFO may carry unescaped (RFC 3986 unreserved). */
static bool unreserved(int c)
{
	return isalnum(c) || strchr("-._~", c);
}

void sfy_proxy_format(const struct sfy_proxy *p, char *buf, size_t cap)
{
	char user[3 * SFY_CRED_MAX + 2] = "";
	size_t o = 0;

	if (!cap)
		return;
	if (p->has_user) {
		for (const unsigned char *s = (const unsigned char *)p->user; *s; s++)
			o += (size_t)(unreserved(*s) ? snprintf(user + o, sizeof user - o, "%c", *s)
					     : snprintf(user + o, sizeof user - o, "%%%02X", *s));
		user[o] = '@';
		user[o + 1] = '\0';
	}
	snprintf(buf, cap, strchr(p->host, ':') ? "%s://%s[%s]:%u" : "%s://%s%s:%u",
		 sfy_proto_name(p->proto), user, p->host, (unsigned)p->port);
}
