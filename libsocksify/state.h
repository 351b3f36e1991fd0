/* Process-wide state of the preloaded library: the configuration, loaded
 * once on first use (never in the constructor). */
#ifndef SFY_STATE_H
#define SFY_STATE_H

#include "config.h"

/* The configuration, or NULL if it could not be loaded (logged once). */
const struct sfy_config *sfy_config_get(void);
/* The configuration if it is already loaded, else NULL; never loads it
 * (safe where loading is not: vfork() children). */
const struct sfy_config *sfy_config_peek(void);

#endif
