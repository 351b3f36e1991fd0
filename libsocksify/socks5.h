/* SOCKS5 codec (RFC 1928, RFC 1929): pure functions, no I/O.
 * Build functions return the length written or a negative errno;
 * parse functions return enum sfy_parse (see parse.h). */
#ifndef SFY_SOCKS5_H
#define SFY_SOCKS5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "addr.h"
#include "parse.h"

enum sfy_s5_method {
	SFY_S5_AUTH_NONE = 0x00,
	SFY_S5_AUTH_GSSAPI = 0x01,
	SFY_S5_AUTH_USERPASS = 0x02,
	SFY_S5_AUTH_NO_ACCEPTABLE = 0xff,
};
enum sfy_s5_cmd {
	SFY_S5_CONNECT = 1,
	SFY_S5_BIND = 2,
	SFY_S5_UDP_ASSOCIATE = 3,
	/* Tor's extensions (tor-spec socks-extensions.txt): DST is a name
	 * (port 0), the reply's BND its address; DST an address, BND a name
	 * (ATYP 3). */
	SFY_S5_RESOLVE = 0xF0,
	SFY_S5_RESOLVE_PTR = 0xF1,
};
enum sfy_s5_rep {
	SFY_S5_SUCCEEDED = 0,
	SFY_S5_GENERAL_FAILURE = 1,
	SFY_S5_NOT_ALLOWED = 2,
	SFY_S5_NET_UNREACHABLE = 3,
	SFY_S5_HOST_UNREACHABLE = 4,
	SFY_S5_CONN_REFUSED = 5,
	SFY_S5_TTL_EXPIRED = 6,
	SFY_S5_CMD_NOT_SUPPORTED = 7,
	SFY_S5_ATYP_NOT_SUPPORTED = 8,
};

/* 4 fixed + 1 length + 255 name + 2 port */
#define SFY_S5_REQ_MAX 262
#define SFY_S5_REPLY_MAX 262
/* 1 version + 1 ulen + 255 + 1 plen + 255 */
#define SFY_S5_AUTH_MAX 513
/* RSV(2) FRAG(1) ATYP(1) + 1 + 255 + 2 */
#define SFY_S5_UDP_HDR_MAX 262

/* Greeting: VER=5 NMETHODS METHODS...; offers USERPASS only if userpass,
 * NONE only if none (at least one must be true). */
ssize_t sfy_s5_build_greeting(uint8_t *buf, size_t cap, bool none, bool userpass);
/* Method choice: VER=5 METHOD. 2 bytes. */
enum sfy_parse sfy_s5_parse_method(const uint8_t *buf, size_t len, size_t *need,
				   uint8_t *method);

/* RFC 1929: VER=1 ULEN UNAME PLEN PASSWD. Lengths 1..255, else -EINVAL. */
ssize_t sfy_s5_build_auth(uint8_t *buf, size_t cap, const char *user, const char *pass);
/* VER=1 STATUS (0 = success). */
enum sfy_parse sfy_s5_parse_auth(const uint8_t *buf, size_t len, size_t *need,
				 uint8_t *status);

/* Request: VER=5 CMD RSV=0 ATYP DST.ADDR DST.PORT. Name > 255 -> -ENAMETOOLONG,
 * empty name -> -EINVAL, a cmd not in enum sfy_s5_cmd -> -EINVAL. */
ssize_t sfy_s5_build_request(uint8_t *buf, size_t cap, enum sfy_s5_cmd cmd,
			     const struct sfy_addr *dst);

struct sfy_s5_reply {
	uint8_t rep;
	struct sfy_addr bnd;
};
/* Reply: VER=5 REP RSV ATYP BND.ADDR BND.PORT. Reads the fixed head first,
 * then asks for the length ATYP implies (domain: 5 bytes, then 7 + LEN).
 * Wrong VER or unknown ATYP: MALFORMED. Nonzero RSV, a zero-length
 * domain BND.ADDR and ATYP 0 in a failure reply (Tor's failed RESOLVE,
 * read as 0.0.0.0:0) are tolerated (see socks5.c). out may be NULL. */
enum sfy_parse sfy_s5_parse_reply(const uint8_t *buf, size_t len, size_t *need,
				  struct sfy_s5_reply *out);

/* UDP datagram header: RSV(2)=0 FRAG ATYP DST.ADDR DST.PORT. */
ssize_t sfy_s5_build_udp_header(uint8_t *buf, size_t cap, uint8_t frag,
				const struct sfy_addr *dst);
/* Parses a whole datagram: COMPLETE with *hdrlen = header length (payload
 * follows), or MALFORMED; never NEED: a datagram shorter than its header is
 * MALFORMED (UDP is not a stream). hdrlen, frag, src may be NULL. */
enum sfy_parse sfy_s5_parse_udp_header(const uint8_t *buf, size_t len, size_t *hdrlen,
				       uint8_t *frag, struct sfy_addr *src);

#endif
