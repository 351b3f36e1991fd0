/* Reverse-lookup names -> addresses, for PTR queries about fake addresses.
 * Strict on purpose: only the one canonical spelling of a full address is
 * an address (no leading zeros, no partial or classless names), so two
 * different names never mean the same address. Case-insensitive, as DNS
 * names are (RFC 4343); no trailing dot (the parser's normalized form). */
#include <strings.h>

#include "dns_msg.h"

/* "4.3.2.1.in-addr.arpa" -> 1.2.3.4 (RFC 1035 3.5: octets reversed). */
bool sfy_dns_ptr_v4(const char *name, uint8_t ip[static 4])
{
	uint8_t out[4];
	const char *p = name;

	for (int i = 3; i >= 0; i--) {
		unsigned v = 0, digits = 0;
		for (; *p >= '0' && *p <= '9'; p++, digits++) {
			if (digits && v == 0)
				return false;        /* "01": a leading zero */
			v = v * 10 + (unsigned)(*p - '0');
			if (v > 255)
				return false;
		}
		if (!digits || *p++ != '.')
			return false;
		out[i] = (uint8_t)v;
	}
	if (strcasecmp(p, "in-addr.arpa"))
		return false;
	for (int i = 0; i < 4; i++)
		ip[i] = out[i];
	return true;
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "b.a.9.8.7.6.5.4.3.2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.
 * 2.ip6.arpa" -> 2001:db8::567:89ab (RFC 3596 2.5: 32 nibbles, the least
 * significant first). */
bool sfy_dns_ptr_v6(const char *name, uint8_t ip[static 16])
{
	uint8_t out[16] = { 0 };
	const char *p = name;

	for (int i = 0; i < 32; i++) {
		int v = hex_nibble(p[0]);
		if (v < 0 || p[1] != '.')
			return false;
		out[15 - i / 2] |= (uint8_t)(i % 2 ? v << 4 : v);
		p += 2;
	}
	if (strcasecmp(p, "ip6.arpa"))
		return false;
	for (int i = 0; i < 16; i++)
		ip[i] = out[i];
	return true;
}
