/* The linear reference matcher (route_ref.h): every rule of the effective
 * order in turn, first match wins. Slow with many rules and obviously
 * right; the compiled index in route.c must give the same answers (the
 * differential tests and fuzz_route check it). */
#include <string.h>
#include <strings.h>

#include "bypass.h"
#include "route_int.h"
#include "route_ref.h"

/* name (normalized or not: compared case-insensitively, one trailing dot
 * ignored) against a NAME/SUFFIX rule. */
static bool name_match(const struct sfy_eff *e, const char *name)
{
	size_t n = strlen(name), rl = e->r.name_len;
	if (n && name[n - 1] == '.')
		n--;
	if (e->r.kind == SFY_RM_NAME)
		return n == rl && !strncasecmp(name, e->name, rl);
	return n > rl + 1 && name[n - rl - 1] == '.' && !strncasecmp(name + n - rl, e->name, rl);
}

static bool rule_match(const struct sfy_routes *rt, const struct sfy_eff *e, const char *name,
		       const struct sockaddr *sa, int port)
{
	switch (e->r.kind) {
	case SFY_RM_ANY:
		break;
	case SFY_RM_NAME:
	case SFY_RM_SUFFIX:
		if (!name || !name_match(e, name))
			return false;
		break;
	case SFY_RM_CIDR:
		if (!sa || !sfy_cidr_match(&e->r.cidr, sa))
			return false;
		break;
	default:
		return false;
	}
	return sfy_route_applies(rt, e, name && sfy_route_special_tld(name), port);
}

static void match_one(const struct sfy_routes *rt, const char *name, const struct sockaddr *sa,
		      int port, struct sfy_route *out)
{
	for (size_t i = 0; i < rt->neff; i++)
		if (rule_match(rt, &rt->eff[i], name, sa, port)) {
			sfy_route_set(rt, rt->eff[i].r.via, (int)i, out);
			return;
		}
	sfy_route_set(rt, sfy_route_default_via(rt, name && sfy_route_special_tld(name), port),
		      SFY_RULE_DEFAULT, out);
}

void sfy_route_match_ref(const struct sfy_routes *rt, const char *name, const struct sockaddr *sa,
			 uint16_t port, struct sfy_route *out)
{
	sfy_route_match_with(rt, match_one, name, sa, port, out);
}

enum sfy_name_plan sfy_route_name_plan_ref(const struct sfy_routes *rt, const char *name, int port)
{
	struct sfy_plan_acc acc = SFY_PLAN_ACC_INIT;
	for (size_t i = 0; i < rt->neff; i++) {
		const struct sfy_eff *e = &rt->eff[i];
		if (e->r.kind == SFY_RM_CIDR)
			continue;       /* the name's address is not known yet */
		if (!rule_match(rt, e, name, NULL, port))
			continue;
		sfy_route_plan_note(rt, e->r.via, &acc);
		if (port >= 0 || !e->r.has_port)
			return sfy_route_plan_end(rt, name, &acc);
	}
	sfy_route_plan_note(rt, sfy_route_default_via(rt, sfy_route_special_tld(name), port), &acc);
	return sfy_route_plan_end(rt, name, &acc);
}

int sfy_route_name_restrictive_ref(const struct sfy_routes *rt, const char *name,
				   const struct sockaddr *sa)
{
	struct sfy_route r;
	int sev = 0;
	if (!rt || !name)
		return 0;
	for (size_t i = 0; i < rt->neff; i++) {
		const struct sfy_eff *e = &rt->eff[i];
		if (!rule_match(rt, e, name, sa, -1))
			continue;
		sfy_route_set(rt, e->r.via, (int)i, &r);
		if (sfy_route_severity(&r) > sev)
			sev = sfy_route_severity(&r);
		if (!e->r.has_port)
			return sev;
	}
	sfy_route_set(rt, sfy_route_default_via(rt, sfy_route_special_tld(name), -1),
		      SFY_RULE_DEFAULT, &r);
	return sfy_route_severity(&r) > sev ? sfy_route_severity(&r) : sev;
}
