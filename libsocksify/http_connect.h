/* HTTP CONNECT codec (RFC 9110 section 9.3.6): pure functions, no I/O.
 *   CONNECT host:port HTTP/1.1\r\nHost: host:port\r\n
 *   [Proxy-Authorization: Basic base64(user:pass)\r\n]\r\n
 * Reply: "HTTP/1.x NNN reason\r\n" headers "\r\n". */
#ifndef SFY_HTTP_CONNECT_H
#define SFY_HTTP_CONNECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "addr.h"
#include "parse.h"

/* Request line + Host + auth (base64 of 511 bytes) + slack. */
#define SFY_HTTP_REQ_MAX 1200
/* A proxy's response head larger than this is refused (malformed). */
#define SFY_HTTP_REPLY_MAX 8192

/* user/pass may be NULL (no Proxy-Authorization). */
ssize_t sfy_http_build_connect(char *buf, size_t cap, const struct sfy_addr *dst,
			       const char *user, const char *pass);
/* Parses the response head up to and including the blank line. Since the
 * head's length is unknown, NEED asks for one more byte (*need = len + 1)
 * until "\r\n\r\n" is seen; COMPLETE sets *status and *need = head length. */
enum sfy_parse sfy_http_parse_reply(const uint8_t *buf, size_t len, size_t *need,
				    int *status);

#endif
