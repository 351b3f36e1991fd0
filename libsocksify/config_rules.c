/* Named chains and routing rules in the configuration: the MATCH=VIA
 * spelling of -r and SOCKSIFY_RULES, chain names, and the rule storage.
 * STUB: the rules issue's config work fills this in. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "sfy.h"

void sfy_config_free(struct sfy_config *c)
{
	free(c->rules);
	free(c->rule_names);
	c->rules = NULL;
	c->rule_names = NULL;
	c->nrules = c->rule_names_len = 0;
}

int sfy_config_via_parse(const struct sfy_config *c, const char *s)
{
	if (!strcasecmp(s, "direct"))
		return SFY_VIA_DIRECT;
	if (!strcasecmp(s, "block"))
		return SFY_VIA_BLOCK;
	for (size_t i = 0; i < c->nchains; i++)
		if (!strcmp(c->chains[i].name, s))
			return (int)i;
	return -4;
}

const char *sfy_config_via_name(const struct sfy_config *c, int via)
{
	if (via >= 0 && (size_t)via < c->nchains)
		return c->chains[via].name;
	return via == SFY_VIA_DIRECT ? "direct" : via == SFY_VIA_BLOCK ? "block" : "proxies";
}

int sfy_config_add_rule_text(struct sfy_config *c, const char *text, enum sfy_rule_origin origin,
			     uint32_t line, char *err, size_t errcap)
{
	(void)c, (void)text, (void)origin, (void)line;
	return sfy_errf(err, errcap, "rules are not implemented yet");
}

int sfy_config_set_rules(struct sfy_config *c, const char *list, char *err, size_t errcap)
{
	(void)c, (void)list;
	return sfy_errf(err, errcap, "rules are not implemented yet");
}
