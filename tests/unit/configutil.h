/* Shared by the configuration tests (test_config.c, test_config_rules.c;
 * include after <cmocka.h>): a loader from a string, a file writer, and
 * the group set-up that keeps the configuration off the stack. */
#ifndef SFY_CONFIGUTIL_H
#define SFY_CONFIGUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "sfy.h"

/* c as the defaults plus yaml ("t.yaml" in messages); err holds SFY_ERR_MAX. */
static inline int load(struct sfy_config *c, const char *yaml, char *err)
{
	sfy_config_free(c);
	sfy_config_defaults(c);
	err[0] = '\0';
	return sfy_config_load_string(c, yaml, strlen(yaml), "t.yaml", err, SFY_ERR_MAX);
}

/* The loader checks a file's mode: the tests set it. */
static inline void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
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
