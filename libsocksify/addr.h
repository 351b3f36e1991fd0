/* A destination as SOCKS carries it: IPv4, IPv6 or a domain name, plus port.
 * The type values are the SOCKS5 ATYP wire values (RFC 1928 section 4). */
#ifndef SFY_ADDR_H
#define SFY_ADDR_H

#include <stdint.h>
#include <stddef.h>
#include <sys/socket.h>

/* RFC 1928 encodes a domain name with a one-byte length: 255 is the bound. */
#define SFY_NAME_MAX 255

/* ::ffff:0:0/96, the IPv4-mapped IPv6 prefix (RFC 4291 2.5.5.2). */
extern const uint8_t sfy_v4mapped_prefix[12];

enum sfy_atyp {
	SFY_ATYP_IPV4 = 1,
	SFY_ATYP_DOMAIN = 3,
	SFY_ATYP_IPV6 = 4,
};

struct sfy_addr {
	enum sfy_atyp type;
	uint8_t ip[16];                 /* 4 bytes used for IPv4 */
	char name[SFY_NAME_MAX + 1];    /* NUL-terminated, for SFY_ATYP_DOMAIN */
	uint16_t port;                  /* host byte order */
};

/* The length of a's domain name, checked as every codec needs it: 1..255
 * bytes (RFC 1928's one-byte length), else -EINVAL (empty) or
 * -ENAMETOOLONG. */
int sfy_addr_name_len(const struct sfy_addr *a);
/* sockaddr (AF_INET, AF_INET6; v4-mapped v6 becomes IPv4) -> sfy_addr.
 * Returns 0 or -EAFNOSUPPORT. */
int sfy_addr_from_sockaddr(struct sfy_addr *a, const struct sockaddr *sa, socklen_t len);
/* sfy_addr (IP types only) -> sockaddr of the given family (AF_INET6 maps
 * IPv4 to ::ffff:a.b.c.d). Returns the length used, or -EAFNOSUPPORT. */
int sfy_addr_to_sockaddr(const struct sfy_addr *a, int family, struct sockaddr_storage *ss);
/* "1.2.3.4:80", "[::1]:443", "name:80" for logs. Always NUL-terminates. */
void sfy_addr_format(const struct sfy_addr *a, char *buf, size_t cap);
/* Fills a from a name or numeric string: numeric strings become IP types. */
int sfy_addr_set_host(struct sfy_addr *a, const char *host, uint16_t port);

#endif
