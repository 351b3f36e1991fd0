/* SOCKS4 / SOCKS4a codec. Wire formats are drawn in socks4.h.
 *
 * Reply tolerance: the protocol says VN = 0, but some servers echo VN = 4,
 * so both are accepted. CD must be one of the four defined codes (90..93):
 * with only one fixed byte to check, the code range is what tells a SOCKS4
 * reply from some other protocol's bytes. DSTPORT/DSTIP are returned as they
 * are (most servers send zeros; they matter only for BIND). */
#include <errno.h>
#include <string.h>

#include "socks4.h"

#define S4_VERSION 4
/* VN + CD + DSTPORT + DSTIP */
#define S4_FIXED 8

ssize_t sfy_s4_build_request(uint8_t *buf, size_t cap, enum sfy_s4_cmd cmd,
			     const struct sfy_addr *dst, const char *userid, int a4)
{
	size_t ulen = 0, nlen = 0, total;

	if (!buf || !dst || (cmd != SFY_S4_CONNECT && cmd != SFY_S4_BIND))
		return -EINVAL;
	if (userid) {
		/* USERID has no wire bound; 255 keeps SFY_S4_REQ_MAX honest. */
		ulen = strnlen(userid, SFY_NAME_MAX + 1);
		if (ulen > SFY_NAME_MAX)
			return -EINVAL;
	}
	switch (dst->type) {
	case SFY_ATYP_IPV4:
		/* 0.0.0.x (x != 0) means "SOCKS4a, name follows" to a server. */
		if (!dst->ip[0] && !dst->ip[1] && !dst->ip[2] && dst->ip[3])
			return -EINVAL;
		break;
	case SFY_ATYP_DOMAIN:
		if (!a4)
			return -EINVAL;
		int nl = sfy_addr_name_len(dst);
		if (nl < 0)
			return nl;
		nlen = (size_t)nl;
		break;
	case SFY_ATYP_IPV6:
		return -EAFNOSUPPORT;
	default:
		return -EINVAL;
	}
	total = S4_FIXED + ulen + 1 + (nlen ? nlen + 1 : 0);
	if (total > cap)
		return -ENOSPC;

	buf[0] = S4_VERSION;
	buf[1] = (uint8_t)cmd;
	buf[2] = (uint8_t)(dst->port >> 8);
	buf[3] = (uint8_t)dst->port;
	if (nlen) {
		static const uint8_t a4_ip[4] = { 0, 0, 0, 1 };

		memcpy(buf + 4, a4_ip, 4);
	} else {
		memcpy(buf + 4, dst->ip, 4);
	}
	memcpy(buf + S4_FIXED, userid ? userid : "", ulen);
	buf[S4_FIXED + ulen] = 0;
	if (nlen) {
		memcpy(buf + S4_FIXED + ulen + 1, dst->name, nlen);
		buf[total - 1] = 0;
	}
	return (ssize_t)total;
}

enum sfy_parse sfy_s4_parse_reply(const uint8_t *buf, size_t len, size_t *need,
				  struct sfy_s4_reply *out)
{
	*need = SFY_S4_REPLY_LEN;
	/* Reject as soon as a wrong byte is visible. */
	if (len >= 1 && buf[0] != 0 && buf[0] != S4_VERSION)
		return SFY_PARSE_MALFORMED;
	if (len >= 2 && (buf[1] < SFY_S4_GRANTED || buf[1] > SFY_S4_IDENT_MISMATCH))
		return SFY_PARSE_MALFORMED;
	if (len < SFY_S4_REPLY_LEN)
		return SFY_PARSE_NEED;
	if (out) {
		memset(out, 0, sizeof *out);
		out->code = buf[1];
		out->bnd.type = SFY_ATYP_IPV4;
		out->bnd.port = (uint16_t)(buf[2] << 8 | buf[3]);
		memcpy(out->bnd.ip, buf + 4, 4);
	}
	return SFY_PARSE_COMPLETE;
}
