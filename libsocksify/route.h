/* Destination -> direct or through the chain (the rules issue will grow
 * this into named chains and block rules). */
#ifndef SFY_ROUTE_H
#define SFY_ROUTE_H

#include <stdbool.h>
#include <sys/socket.h>

#include "config.h"

/* Does a bypass rule send sa (AF_INET/AF_INET6) directly? */
bool sfy_route_bypass(const struct sfy_config *cfg, const struct sockaddr *sa);

#endif
