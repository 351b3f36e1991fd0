/* Which destinations the bypass rules send directly. The one exception to
 * "a matching rule means direct": in remote-DNS mode a DNS query (port 53,
 * TCP or UDP) leaves directly only when the rule names port 53 itself, so
 * that `bypass: [127.0.0.0/8]` does not let a program's own query to a
 * stub resolver (127.0.0.53) out of the machine. */
#include "route.h"
#include "sock.h"

bool sfy_route_bypass(const struct sfy_config *cfg, const struct sockaddr *sa)
{
	bool dns = cfg->dns == SFY_DNS_REMOTE && sfy_sockaddr_port(sa) == 53;
	for (size_t i = 0; i < cfg->nbypass; i++)
		if (sfy_cidr_match(&cfg->bypass[i], sa) && (!dns || cfg->bypass[i].port == 53))
			return true;
	return false;
}
