/* socksify --check: test the configured chain hop by hop. */
#ifndef SFY_CHECK_H
#define SFY_CHECK_H

#include "config.h"

/* Prints one line per hop (status and time) to stdout; returns the exit
 * status: 0 if the chain is usable, 1 if not. */
int sfy_check(const struct sfy_config *cfg);

#endif
