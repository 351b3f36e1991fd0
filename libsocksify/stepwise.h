/* Proxies found to drop bytes sent before their method reply, remembered so
 * later connections negotiate with them step by step at once. */
#ifndef SFY_STEPWISE_H
#define SFY_STEPWISE_H

#include <stdbool.h>
#include <stddef.h>

bool sfy_stepwise_get(size_t proxy_index);
void sfy_stepwise_set(size_t proxy_index);

#endif
