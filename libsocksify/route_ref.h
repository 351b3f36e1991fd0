/* The linear reference matcher (route_ref.c): the semantics of route.h
 * walked rule by rule over the effective order. For the differential
 * tests and the fuzzer only; the library uses the compiled index. */
#ifndef SFY_ROUTE_REF_H
#define SFY_ROUTE_REF_H

#include "route.h"

void sfy_route_match_ref(const struct sfy_routes *rt, const char *name, const struct sockaddr *sa,
			 uint16_t port, struct sfy_route *out);
enum sfy_name_plan sfy_route_name_plan_ref(const struct sfy_routes *rt, const char *name,
					   int port);
int sfy_route_name_restrictive_ref(const struct sfy_routes *rt, const char *name,
				   const struct sockaddr *sa);

#endif
