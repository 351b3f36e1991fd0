/* One proxy hop and the cURL-style URL that describes it:
 *   SCHEME://[USER[:PASSWORD]@]HOST[:PORT]
 * Shared by the launcher (validation) and the library. */
#ifndef SFY_PROXY_URL_H
#define SFY_PROXY_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 1929 gives username and password one length byte each. */
#define SFY_CRED_MAX 255
/* A host name in a URL is at most a DNS name (or a bracketed IPv6 literal). */
#define SFY_HOST_MAX 255

enum sfy_proto {
	SFY_PROTO_SOCKS4 = 1,
	SFY_PROTO_SOCKS4A,
	SFY_PROTO_SOCKS5,
	SFY_PROTO_SOCKS5H,
	SFY_PROTO_HTTP,
};

struct sfy_proxy {
	enum sfy_proto proto;
	char host[SFY_HOST_MAX + 1];    /* without brackets */
	uint16_t port;
	bool has_user, has_pass;
	char user[SFY_CRED_MAX + 1];    /* percent-decoded */
	char pass[SFY_CRED_MAX + 1];
};

/* Parses url into *p. On error returns -1 and writes a one-line reason
 * (without the password) into err. */
int sfy_proxy_url_parse(const char *url, struct sfy_proxy *p, char *err, size_t errcap);
/* Checks a hop built field by field (YAML long form): same rules as URLs. */
int sfy_proxy_validate(const struct sfy_proxy *p, char *err, size_t errcap);
/* "socks5h://alice@proxy:1080" -- never the password. */
void sfy_proxy_format(const struct sfy_proxy *p, char *buf, size_t cap);
const char *sfy_proto_name(enum sfy_proto proto);
/* Scheme name -> proto; 0 if unknown. */
enum sfy_proto sfy_proto_from_name(const char *name);
uint16_t sfy_proto_default_port(enum sfy_proto proto);
/* True if destination names go to the proxy (socks4a, socks5h, http). */
bool sfy_proto_remote_dns(enum sfy_proto proto);

#endif
