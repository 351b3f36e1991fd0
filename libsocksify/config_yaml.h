/* Private to config.c and config_yaml.c: one YAML load's state and the
 * helpers every key handler uses. Errors are "FILE:LINE: KEY: reason". */
#ifndef SFY_CONFIG_YAML_H
#define SFY_CONFIG_YAML_H

#include <stdbool.h>
#include <yaml.h>

#include "config.h"

/* Dotted key paths in messages: the longest real one is
 * "proxies[32].username"; unknown keys are cut to keep the line short. */
#define KEY_PATH_MAX 96

struct load {
	struct sfy_config *c;
	const char *name;
	char *err;
	size_t errcap;
	yaml_document_t *doc;
	bool has_pass;                  /* the file holds a password */
	yaml_node_t *proxies;           /* the proxies value, if given */
	yaml_node_t *chain_length;
	/* rules: and default: name chains that may come later in the file:
	 * their via values are resolved once the whole file is read. */
	yaml_node_t *rules;             /* the rules value, if given */
	size_t rules_first;             /* its first rule in c->rules */
	yaml_node_t *default_via;       /* the default value, if given */
};

typedef int key_fn(struct load *l, yaml_node_t *val, const char *path, void *arg);

struct key_def {
	const char *name;
	key_fn *fn;
};

unsigned sfy_cfg_line(const yaml_node_t *n);
int sfy_cfg_kerr(struct load *l, const yaml_node_t *n, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
const char *sfy_cfg_kind(const yaml_node_t *n);
bool sfy_cfg_is_null(const yaml_node_t *n);
/* A non-empty scalar without embedded NUL bytes. */
int sfy_cfg_scalar(struct load *l, yaml_node_t *n, const char *path, const char **out);
int sfy_cfg_expect(struct load *l, yaml_node_t *n, const char *path, yaml_node_type_t t);
/* Calls the handler of each key of map, in file order; unknown and
 * duplicate keys are errors. */
int sfy_cfg_walk(struct load *l, yaml_node_t *map, const char *prefix,
		 const struct key_def *defs, size_t ndefs, void *arg);
/* Calls item(l, node, "path[i]", i, arg) for each element of the list v,
 * in order; a list longer than max is an error naming `what`. */
typedef int item_fn(struct load *l, yaml_node_t *it, const char *ipath, size_t i, void *arg);
int sfy_cfg_each(struct load *l, yaml_node_t *v, const char *path, size_t max,
		 const char *what, item_fn *item, void *arg);
/* A scalar that must be one of a few words. */
int sfy_cfg_enum_value(struct load *l, yaml_node_t *v, const char *path,
		       int (*parse)(const char *), const char *choices, int *out);
/* A scalar that must be a whole number 1..max; the error calls it what. */
int sfy_cfg_number(struct load *l, yaml_node_t *v, const char *path, const char *what,
		   unsigned long max, unsigned long *out);
/* The proxies: key (a list of URLs or long-form mappings). */
int sfy_cfg_k_proxies(struct load *l, yaml_node_t *v, const char *path, void *arg);
/* One hop of such a list (a URL or the long form) into *p. */
int sfy_cfg_proxy(struct load *l, yaml_node_t *it, const char *ip, struct sfy_proxy *p);

/* config_chains.c: chains:, rules:, default:, no_proxy:, and the via
 * names resolved after the walk (-1 with the error). */
int sfy_cfg_k_chains(struct load *l, yaml_node_t *v, const char *path, void *arg);
int sfy_cfg_k_rules(struct load *l, yaml_node_t *v, const char *path, void *arg);
int sfy_cfg_k_default(struct load *l, yaml_node_t *v, const char *path, void *arg);
int sfy_cfg_k_no_proxy(struct load *l, yaml_node_t *v, const char *path, void *arg);
int sfy_cfg_resolve_vias(struct load *l);

#endif
