/* Proxies found to drop bytes sent before their method reply, remembered so
 * later connections (in this process tree, and later runs) negotiate with
 * them step by step at once. */
#ifndef SFY_STEPWISE_H
#define SFY_STEPWISE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* What is known about a proxy's handling of pipelined SOCKS5 bytes, keyed
 * by the proxy's (host, port, protocol) -- never by its index in a chain. */
enum sfy_pipe_known {
	SFY_PIPE_UNKNOWN,       /* nothing learned (or expired): pipeline, probe */
	SFY_PIPE_OK,            /* answered a pipelined request: pipeline, no probe */
	SFY_PIPE_STEPWISE,      /* proven to drop early bytes: step by step */
};

enum sfy_pipe_known sfy_stepwise_get(const struct sfy_config *cfg, const struct sfy_proxy *p);
/* Records evidence about p. Only SFY_PIPE_STEPWISE is persisted today. */
void sfy_stepwise_set(const struct sfy_config *cfg, const struct sfy_proxy *p,
		      enum sfy_pipe_known v);

#endif
