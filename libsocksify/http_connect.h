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

/* "CONNECT " 8 + authority 261 ("[v6]:port" <= 47, name 255 + ":65535")
 * + " HTTP/1.1\r\n" 11; "Host: " 6 + 261 + 2; "Proxy-Authorization: Basic "
 * 27 + base64(255 + 1 + 255 = 511 bytes) 684 + 2; "\r\n" 2; NUL 1 = 1265. */
#define SFY_HTTP_REQ_MAX 1280
/* A proxy's response head larger than this is refused (malformed). */
#define SFY_HTTP_REPLY_MAX 8192

/* user NULL: no Proxy-Authorization; pass NULL with a user means "".
 * user/pass <= 255 bytes, no ':' in user, no control bytes or spaces in a
 * domain name, else -EINVAL. Writes a NUL after the request (cap must hold
 * it) and returns the length without it, or -ENOSPC / -ENAMETOOLONG. */
ssize_t sfy_http_build_connect(char *buf, size_t cap, const struct sfy_addr *dst,
			       const char *user, const char *pass);
/* Parses the response head up to and including the blank line. Since the
 * head's length is unknown, NEED asks for one more byte (*need = len + 1)
 * until "\r\n\r\n" is seen; COMPLETE sets *status and *need = head length.
 * Not "HTTP/1.", a bad status line (reported once its CRLF arrives) or no
 * end within SFY_HTTP_REPLY_MAX bytes: MALFORMED. status may be NULL. */
enum sfy_parse sfy_http_parse_reply(const uint8_t *buf, size_t len, size_t *need,
				    int *status);

#endif
