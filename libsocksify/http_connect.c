/* HTTP CONNECT codec. The request names the destination the way RFC 9110
 * authority-form does: host:port, an IPv6 literal in brackets.
 *
 *   CONNECT example.org:443 HTTP/1.1\r\n
 *   Host: example.org:443\r\n
 *   Proxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n     (if user given)
 *   \r\n
 *
 * The reply head is read up to its blank line and no further: whatever
 * follows belongs to the tunnel. Accepted status line (RFC 9112 s.4):
 *   HTTP/1.<digit> SP <3 digits, first 1..5> [SP reason] CRLF
 * ("HTTP/1.1 200\r\n" without reason is seen in the wild and accepted).
 * Header lines are not interpreted. Only CRLF line ends are recognised. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "http_connect.h"

/* RFC 7617: the user-id of Basic credentials cannot contain ':'; the
 * lengths match the SOCKS credential bound that sizes SFY_HTTP_REQ_MAX. */
#define HTTP_CRED_MAX 255

struct out {
	char *p;
	size_t len, cap;
	bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || n > o->cap - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_base64(struct out *o, const uint8_t *s, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char q[4];

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		q[0] = tab[v >> 18 & 63];
		q[1] = tab[v >> 12 & 63];
		q[2] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		q[3] = i + 2 < n ? tab[v & 63] : '=';
		put(o, q, 4);
	}
}

/* Bytes that would split or smuggle a request line or header. */
static bool bad_name_char(unsigned char c)
{
	return c <= ' ' || c == 0x7f;
}

/* "host:port" or "[v6]:port" into o. */
static int put_authority(struct out *o, const struct sfy_addr *dst)
{
	char host[INET6_ADDRSTRLEN], port[1 + 5], rev[5];
	unsigned v = dst->port;
	size_t n;
	int i = 0;

	switch (dst->type) {
	case SFY_ATYP_IPV4:
		inet_ntop(AF_INET, dst->ip, host, sizeof host);
		put_str(o, host);
		break;
	case SFY_ATYP_IPV6:
		inet_ntop(AF_INET6, dst->ip, host, sizeof host);
		put_str(o, "[");
		put_str(o, host);
		put_str(o, "]");
		break;
	case SFY_ATYP_DOMAIN: {
		int nl = sfy_addr_name_len(dst);
		if (nl < 0)
			return nl;
		n = (size_t)nl;
		for (size_t k = 0; k < n; k++)
			if (bad_name_char((unsigned char)dst->name[k]))
				return -EINVAL;
		put(o, dst->name, n);
		break;
	}
	default:
		return -EINVAL;
	}
	/* the port's decimal digits, least significant first */
	do {
		rev[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	port[0] = ':';
	for (int k = 0; k < i; k++)
		port[1 + k] = rev[i - 1 - k];
	put(o, port, 1 + (size_t)i);
	return 0;
}

ssize_t sfy_http_build_connect(char *buf, size_t cap, const struct sfy_addr *dst,
			       const char *user, const char *pass)
{
	struct out o = { buf, 0, cap, false };
	size_t mark, alen, ul = 0, pl = 0;
	int r;

	if (!buf || !dst)
		return -EINVAL;
	if (user) {
		if (!pass)
			pass = "";
		ul = strnlen(user, HTTP_CRED_MAX + 1);
		pl = strnlen(pass, HTTP_CRED_MAX + 1);
		if (ul > HTTP_CRED_MAX || pl > HTTP_CRED_MAX || memchr(user, ':', ul))
			return -EINVAL;
	}
	put_str(&o, "CONNECT ");
	mark = o.len;
	r = put_authority(&o, dst);
	if (r < 0)
		return r;
	alen = o.len - mark;
	put_str(&o, " HTTP/1.1\r\nHost: ");
	if (!o.full)   /* the authority again, copied from the request line */
		put(&o, buf + mark, alen);
	put_str(&o, "\r\n");
	if (user) {
		uint8_t cred[2 * HTTP_CRED_MAX + 1];

		memcpy(cred, user, ul);
		cred[ul] = ':';
		memcpy(cred + ul + 1, pass, pl);
		put_str(&o, "Proxy-Authorization: Basic ");
		put_base64(&o, cred, ul + 1 + pl);
		explicit_bzero(cred, sizeof cred);
		put_str(&o, "\r\n");
	}
	put_str(&o, "\r\n");
	put(&o, "", 1);   /* NUL: the request can be logged as a string */
	if (o.full)
		return -ENOSPC;
	return (ssize_t)(o.len - 1);
}

/* Checks a complete status line (without its CRLF); returns the status or
 * -1. */
static int status_line(const uint8_t *s, size_t n)
{
	static const char pre[] = "HTTP/1.";
	int st = 0;

	if (n < 12 || memcmp(s, pre, 7) || s[7] < '0' || s[7] > '9' || s[8] != ' ')
		return -1;
	for (int i = 9; i < 12; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		st = st * 10 + (s[i] - '0');
	}
	if (s[9] < '1' || s[9] > '5')
		return -1;
	if (n > 12 && s[12] != ' ')
		return -1;
	return st;
}

enum sfy_parse sfy_http_parse_reply(const uint8_t *buf, size_t len, size_t *need,
				    int *status)
{
	static const char pre[] = "HTTP/1.";
	size_t n = len < SFY_HTTP_REPLY_MAX ? len : SFY_HTTP_REPLY_MAX;
	size_t eol = 0;   /* end of the status line, 0 while unseen */
	int st = -1;

	/* Not HTTP at all (e.g. a SOCKS server's binary reply): say so early. */
	if (n && memcmp(buf, pre, n < 7 ? n : 7))
		return SFY_PARSE_MALFORMED;
	for (size_t i = 1; i < n; i++) {
		if (buf[i] != '\n' || buf[i - 1] != '\r')
			continue;
		if (!eol) {
			eol = i + 1;
			st = status_line(buf, i - 1);
			if (st < 0)
				return SFY_PARSE_MALFORMED;
		} else if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
			*need = i + 1;
			if (status)
				*status = st;
			return SFY_PARSE_COMPLETE;
		}
	}
	/* A status line longer than any valid one cannot become valid. */
	if (len >= SFY_HTTP_REPLY_MAX)
		return SFY_PARSE_MALFORMED;
	*need = len + 1;
	return SFY_PARSE_NEED;
}
