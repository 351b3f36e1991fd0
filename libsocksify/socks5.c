/* SOCKS5 codec (RFC 1928) with username/password auth (RFC 1929).
 *
 * Reply tolerance, decided once for every parser here:
 *  - a wrong VER or an unknown ATYP is MALFORMED, reported as soon as the
 *    byte is visible -- except ATYP 0 in a failure reply (REP != 0), which
 *    is read as IPv4 0.0.0.0:0 (10 bytes): Tor answers a failed RESOLVE /
 *    RESOLVE_PTR so (it zeroes everything after REP), and a failure's
 *    BND is never used;
 *  - RSV is ignored (RFC 1928 only says "reserved"; refusing a working
 *    connection over it helps nobody);
 *  - a reply's domain BND.ADDR of length 0 is accepted (bnd.name = ""):
 *    the framing is still unambiguous and the address is informational.
 *    Bytes after an embedded NUL in a returned name are not kept;
 *  - REP values above 8 are returned as they are; errmap.c maps them.
 *  - RFC 1929 status replies carry VER 1; VER 5 is accepted too because
 *    some servers echo the SOCKS version there.
 */
#include <errno.h>
#include <string.h>

#include "socks5.h"

#define S5_VERSION 5
#define S5_AUTH_VERSION 1
/* VER REP/CMD RSV ATYP: the part of a request/reply before the address. */
#define S5_HEAD 4
/* RSV(2) FRAG ATYP: the part of a UDP header before the address. */
#define S5_UDP_HEAD 4

/* Bytes of ATYP's address + port starting at p (whose first byte is the
 * domain length if ATYP is domain), avail bytes of it present: 0 for an
 * unknown ATYP; for a domain whose length byte is not there yet, 1, so the
 * caller asks for exactly that byte next. */
static size_t addr_len(uint8_t atyp, const uint8_t *p, size_t avail)
{
	switch (atyp) {
	case SFY_ATYP_IPV4:
		return 4 + 2;
	case SFY_ATYP_IPV6:
		return 16 + 2;
	case SFY_ATYP_DOMAIN:
		return avail < 1 ? 1 : 1 + (size_t)p[0] + 2;
	default:
		return 0;
	}
}

/* Decodes a complete address + port (length from addr_len()). */
static void addr_get(struct sfy_addr *a, uint8_t atyp, const uint8_t *p)
{
	size_t n = 0;

	memset(a, 0, sizeof *a);
	a->type = (enum sfy_atyp)atyp;
	switch (atyp) {
	case SFY_ATYP_IPV4:
		memcpy(a->ip, p, n = 4);
		break;
	case SFY_ATYP_IPV6:
		memcpy(a->ip, p, n = 16);
		break;
	case SFY_ATYP_DOMAIN:
		n = p[0];
		memcpy(a->name, p + 1, n);   /* n <= 255 < sizeof a->name */
		a->name[n] = '\0';
		n++;
		break;
	}
	a->port = (uint16_t)(p[n] << 8 | p[n + 1]);
}

/* ATYP + address + port as a request or UDP header carries them:
 *   +------+----------+----------+
 *   | ATYP | DST.ADDR | DST.PORT |   DST.ADDR: 4, 16, or LEN + name
 *   +------+----------+----------+
 * Returns bytes needed (also when they do not fit in cap: the caller
 * compares) or a negative errno for an address that cannot be encoded. */
static ssize_t addr_size(const struct sfy_addr *a)
{
	int n;

	switch (a->type) {
	case SFY_ATYP_IPV4:
		return 1 + 4 + 2;
	case SFY_ATYP_IPV6:
		return 1 + 16 + 2;
	case SFY_ATYP_DOMAIN:
		n = sfy_addr_name_len(a);
		if (n < 0)
			return n;
		return (ssize_t)(1 + 1 + n + 2);
	default:
		return -EINVAL;
	}
}

/* Writes what addr_size() measured; the caller has checked the room. */
static void addr_put(uint8_t *p, const struct sfy_addr *a)
{
	size_t n;

	*p++ = (uint8_t)a->type;
	switch (a->type) {
	case SFY_ATYP_IPV4:
		memcpy(p, a->ip, 4);
		p += 4;
		break;
	case SFY_ATYP_IPV6:
		memcpy(p, a->ip, 16);
		p += 16;
		break;
	case SFY_ATYP_DOMAIN:
		n = strnlen(a->name, sizeof a->name);
		*p++ = (uint8_t)n;
		memcpy(p, a->name, n);
		p += n;
		break;
	}
	p[0] = (uint8_t)(a->port >> 8);
	p[1] = (uint8_t)a->port;
}

/*   +-----+----------+----------+
 *   | VER | NMETHODS | METHODS  |
 *   +-----+----------+----------+
 *      1       1       1 to 255                                          */
ssize_t sfy_s5_build_greeting(uint8_t *buf, size_t cap, bool none, bool userpass)
{
	size_t n = 2;

	if (!buf || (!none && !userpass))
		return -EINVAL;
	if (cap < 2 + (size_t)none + (size_t)userpass)
		return -ENOSPC;
	buf[0] = S5_VERSION;
	if (none)
		buf[n++] = SFY_S5_AUTH_NONE;
	if (userpass)
		buf[n++] = SFY_S5_AUTH_USERPASS;
	buf[1] = (uint8_t)(n - 2);
	return (ssize_t)n;
}

/*   +-----+--------+
 *   | VER | METHOD |   the caller checks METHOD is one it offered
 *   +-----+--------+                                                    */
enum sfy_parse sfy_s5_parse_method(const uint8_t *buf, size_t len, size_t *need,
				   uint8_t *method)
{
	*need = 2;
	if (len >= 1 && buf[0] != S5_VERSION)
		return SFY_PARSE_MALFORMED;
	if (len < 2)
		return SFY_PARSE_NEED;
	if (method)
		*method = buf[1];
	return SFY_PARSE_COMPLETE;
}

/*   +-----+------+----------+------+----------+
 *   | VER | ULEN |  UNAME   | PLEN |  PASSWD  |   VER = 1 (RFC 1929)
 *   +-----+------+----------+------+----------+
 *      1     1     1 to 255    1     0 to 255
 * RFC 1929 says PLEN 1..255, but "socks5://user@host" means an empty
 * password, which curl sends as PLEN 0 and servers accept; so do we.      */
ssize_t sfy_s5_build_auth(uint8_t *buf, size_t cap, const char *user, const char *pass)
{
	size_t ul, pl;

	if (!buf || !user || !pass)
		return -EINVAL;
	ul = strnlen(user, SFY_NAME_MAX + 1);
	pl = strnlen(pass, SFY_NAME_MAX + 1);
	if (!ul || ul > SFY_NAME_MAX || pl > SFY_NAME_MAX)
		return -EINVAL;
	if (cap < 3 + ul + pl)
		return -ENOSPC;
	buf[0] = S5_AUTH_VERSION;
	buf[1] = (uint8_t)ul;
	memcpy(buf + 2, user, ul);
	buf[2 + ul] = (uint8_t)pl;
	memcpy(buf + 3 + ul, pass, pl);
	return (ssize_t)(3 + ul + pl);
}

/*   +-----+--------+
 *   | VER | STATUS |   STATUS 0 = success
 *   +-----+--------+                                                    */
enum sfy_parse sfy_s5_parse_auth(const uint8_t *buf, size_t len, size_t *need,
				 uint8_t *status)
{
	*need = 2;
	if (len >= 1 && buf[0] != S5_AUTH_VERSION && buf[0] != S5_VERSION)
		return SFY_PARSE_MALFORMED;
	if (len < 2)
		return SFY_PARSE_NEED;
	if (status)
		*status = buf[1];
	return SFY_PARSE_COMPLETE;
}

/* Both the request and the UDP header are three bytes, then ATYP, address
 * and port: the total length, or -errno before anything is written. */
static ssize_t head_and_addr(uint8_t *buf, size_t cap, uint8_t b0, uint8_t b1, uint8_t b2,
			     const struct sfy_addr *dst)
{
	ssize_t an = addr_size(dst);
	if (an < 0)
		return an;
	if (cap < 3 + (size_t)an)
		return -ENOSPC;
	buf[0] = b0;
	buf[1] = b1;
	buf[2] = b2;
	addr_put(buf + 3, dst);
	return 3 + an;
}

/*   +-----+-----+-------+------+----------+----------+
 *   | VER | CMD |  RSV  | ATYP | DST.ADDR | DST.PORT |
 *   +-----+-----+-------+------+----------+----------+
 *      1     1   X'00'     1     Variable      2                        */
ssize_t sfy_s5_build_request(uint8_t *buf, size_t cap, enum sfy_s5_cmd cmd,
			     const struct sfy_addr *dst)
{
	if (!buf || !dst || ((cmd < SFY_S5_CONNECT || cmd > SFY_S5_UDP_ASSOCIATE) &&
			     cmd != SFY_S5_RESOLVE && cmd != SFY_S5_RESOLVE_PTR))
		return -EINVAL;
	return head_and_addr(buf, cap, S5_VERSION, (uint8_t)cmd, 0, dst);
}

/*   +-----+-----+-------+------+----------+----------+
 *   | VER | REP |  RSV  | ATYP | BND.ADDR | BND.PORT |
 *   +-----+-----+-------+------+----------+----------+
 *      1     1   X'00'     1     Variable      2
 * Asked for in steps: the 4-byte head; for a domain the length byte
 * (5 bytes); then the exact total. Never more than the reply holds. */
enum sfy_parse sfy_s5_parse_reply(const uint8_t *buf, size_t len, size_t *need,
				  struct sfy_s5_reply *out)
{
	size_t an;

	*need = S5_HEAD;
	if (len >= 1 && buf[0] != S5_VERSION)
		return SFY_PARSE_MALFORMED;
	if (len < S5_HEAD)
		return SFY_PARSE_NEED;
	uint8_t atyp = buf[3] == 0 && buf[1] != 0 ? SFY_ATYP_IPV4 : buf[3];
	an = addr_len(atyp, buf + S5_HEAD, len - S5_HEAD);
	if (!an)
		return SFY_PARSE_MALFORMED;
	*need = S5_HEAD + an;
	if (len < *need)
		return SFY_PARSE_NEED;
	if (out) {
		out->rep = buf[1];
		addr_get(&out->bnd, atyp, buf + S5_HEAD);
	}
	return SFY_PARSE_COMPLETE;
}

/*   +----+------+------+----------+----------+----------+
 *   |RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |   RFC 1928 s.7
 *   +----+------+------+----------+----------+----------+
 *   | 2  |  1   |  1   | Variable |    2     | Variable |               */
ssize_t sfy_s5_build_udp_header(uint8_t *buf, size_t cap, uint8_t frag,
				const struct sfy_addr *dst)
{
	if (!buf || !dst)
		return -EINVAL;
	return head_and_addr(buf, cap, 0, 0, frag, dst);
}

enum sfy_parse sfy_s5_parse_udp_header(const uint8_t *buf, size_t len, size_t *hdrlen,
				       uint8_t *frag, struct sfy_addr *src)
{
	size_t an;

	if (len < S5_UDP_HEAD)
		return SFY_PARSE_MALFORMED;
	an = addr_len(buf[3], buf + S5_UDP_HEAD, len - S5_UDP_HEAD);
	if (!an || len < S5_UDP_HEAD + an)
		return SFY_PARSE_MALFORMED;
	if (hdrlen)
		*hdrlen = S5_UDP_HEAD + an;
	if (frag)
		*frag = buf[2];
	if (src)
		addr_get(src, buf[3], buf + S5_UDP_HEAD);
	return SFY_PARSE_COMPLETE;
}
