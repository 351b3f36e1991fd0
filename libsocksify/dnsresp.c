/* The in-library DNS responder's core (dnsresp.h). STUB: off until the
 * issue 13 core lands. */
#include <errno.h>

#include "dnsresp.h"

bool sfy_dnsresp_enabled(const struct sfy_config *cfg)
{
	(void)cfg;
	return false;
}

bool sfy_dnsresp_is_ns(const struct sockaddr *sa, socklen_t len, int *idx)
{
	(void)sa, (void)len, (void)idx;
	return false;
}

bool sfy_dnsresp_ns_addr(int idx, int family, struct sockaddr_storage *out, socklen_t *len)
{
	(void)idx, (void)family, (void)out, (void)len;
	return false;
}

ssize_t sfy_dnsresp_answer(const uint8_t *q, size_t qlen, bool tcp, uint8_t *out, size_t cap)
{
	(void)q, (void)qlen, (void)tcp, (void)out, (void)cap;
	return -ENOSYS;
}
