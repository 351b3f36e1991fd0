/* socksify --check: test the configured chains hop by hop. */
#ifndef SFY_CHECK_H
#define SFY_CHECK_H

#include "config.h"

/* Checks every chain routes can use (the top-level proxies, then each
 * named chain under a "== NAME" heading): one line per hop (status and
 * time) on stdout; returns the exit status: 0 if every chain is usable, 1
 * if one is not. */
int sfy_check(const struct sfy_config *cfg);

#endif
