/* SOCKS4 and SOCKS4a codec: pure functions, no I/O.
 *
 * Request:  +----+----+----+----+----+----+----+----+----+----+...+----+
 *           | VN | CD | DSTPORT |      DSTIP        | USERID      |NULL|
 *           +----+----+----+----+----+----+----+----+----+----+...+----+
 *              1    1      2              4           variable       1
 * SOCKS4a: DSTIP = 0.0.0.x (x != 0) and the host name follows, NUL-ended.
 * Reply:    | VN=0 | CD | DSTPORT | DSTIP |   (8 bytes)
 */
#ifndef SFY_SOCKS4_H
#define SFY_SOCKS4_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "addr.h"
#include "parse.h"

enum sfy_s4_cmd { SFY_S4_CONNECT = 1, SFY_S4_BIND = 2 };
enum sfy_s4_code {
	SFY_S4_GRANTED = 90,
	SFY_S4_REJECTED = 91,
	SFY_S4_NO_IDENTD = 92,
	SFY_S4_IDENT_MISMATCH = 93,
};
#define SFY_S4_REPLY_LEN 8
/* 8 fixed + USERID (<=255) + NUL + name (<=255) + NUL */
#define SFY_S4_REQ_MAX (8 + 256 + 256)

/* Builds a request. dst IPv4 -> SOCKS4; dst domain -> SOCKS4a (a4 must be
 * true, else -EINVAL); IPv6 -> -EAFNOSUPPORT. userid may be NULL. Returns
 * the length written or a negative errno (-ENOSPC, -EINVAL, -ENAMETOOLONG). */
ssize_t sfy_s4_build_request(uint8_t *buf, size_t cap, enum sfy_s4_cmd cmd,
			     const struct sfy_addr *dst, const char *userid, int a4);

struct sfy_s4_reply {
	uint8_t code;
	struct sfy_addr bnd;            /* IPv4 + port */
};
enum sfy_parse sfy_s4_parse_reply(const uint8_t *buf, size_t len, size_t *need,
				  struct sfy_s4_reply *out);

#endif
