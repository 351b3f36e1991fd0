/* Proxies found to drop bytes sent before their method reply, remembered so
 * later connections (in this process tree, and later runs) negotiate with
 * them step by step at once. */
#ifndef SFY_STEPWISE_H
#define SFY_STEPWISE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

bool sfy_stepwise_get(const struct sfy_config *cfg, size_t proxy_index);
void sfy_stepwise_set(const struct sfy_config *cfg, size_t proxy_index);

#endif
