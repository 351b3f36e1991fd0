/* The one decimal parser behind every number in configs and URLs (ports,
 * CIDR prefixes, chain_length, durations): digits only, no sign, no
 * spaces, and a bound checked before each step, so no input can wrap. */
#include "sfy.h"

int sfy_decimal(const char *s, size_t n, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (!n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}
