/* CIDR[:PORT] rules for destinations reached directly. */
#ifndef SFY_BYPASS_H
#define SFY_BYPASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct sfy_cidr {
	int family;             /* AF_INET or AF_INET6 */
	uint8_t addr[16];       /* network address, host bits cleared */
	uint8_t prefix;         /* 0..32 or 0..128 */
	uint16_t port;          /* 0 = any port */
};

/* "10.0.0.0/8", "192.168.1.0/24:22", "::1/128", "[::1]/128:22", "10.1.2.3"
 * (a bare address is a /32 or /128). Returns 0, or -1 with err filled. */
int sfy_cidr_parse(const char *s, struct sfy_cidr *c, char *err, size_t errcap);
/* Splits "[ADDR]", "[ADDR]:PORT", "[ADDR]/LEN" or "[ADDR]/LEN:PORT" in
 * place (buf starts with '['): *addr, and *prefix and *port or NULL.
 * -1: no ']'; -2: text after ']' other than "/..." or ":...". The callers
 * word the errors (bypass and routing rules quote differently). */
int sfy_split_bracketed(char *buf, char **addr, char **prefix, char **port);
/* Does sa (AF_INET/AF_INET6; v4-mapped IPv6 counts as IPv4) match c? */
bool sfy_cidr_match(const struct sfy_cidr *c, const struct sockaddr *sa);
bool sfy_cidr_match_any(const struct sfy_cidr *c, size_t n, const struct sockaddr *sa);

#endif
