/* Shared by the configuration tests (test_config.c, test_config_rules.c;
 * include after <cmocka.h>): a loader from a string and the group set-up
 * that keeps the configuration off the stack. */
#ifndef SFY_CONFIGUTIL_H
#define SFY_CONFIGUTIL_H

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "sfy.h"
#include "testutil.h"

/* c as the defaults plus yaml ("t.yaml" in messages); err holds SFY_ERR_MAX. */
static inline int load(struct sfy_config *c, const char *yaml, char *err)
{
	sfy_config_free(c);
	sfy_config_defaults(c);
	err[0] = '\0';
	return sfy_config_load_string(c, yaml, strlen(yaml), "t.yaml", err, SFY_ERR_MAX);
}

static inline int group_setup(void **state)
{
	/* The struct is large (tens of KiB): keep it off the stack. */
	*state = calloc(1, sizeof(struct sfy_config));
	return *state ? 0 : -1;
}

static inline int group_teardown(void **state)
{
	sfy_config_free(*state);
	free(*state);
	return 0;
}

#endif
