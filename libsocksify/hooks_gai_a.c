/* getaddrinfo_a(): glibc runs these lookups on its own threads through its
 * internal resolver, past our getaddrinfo() symbol, so in remote-DNS mode
 * they would query DNS directly. There (and with no usable config, to fail
 * closed) every request is answered at once by our getaddrinfo(): fake
 * addresses take no time, so GAI_NOWAIT completes before it returns, and the
 * notification is delivered as asked. gai_error() reads the answer from the
 * request itself and gai_suspend() returns at once for requests glibc never
 * queued. Local mode without routing rules: the real function, untouched.
 * Local mode with rules goes through our getaddrinfo() too, so that blocked
 * names fail and answers are remembered (dns_rules.h): a name the rules
 * resolve locally then makes GAI_NOWAIT wait for its lookup. */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "real.h"
#include "route.h"
#include "sfy.h"
#include "state.h"

struct notify {
	void (*fn)(union sigval);
	union sigval value;
};

static void *notify_thread(void *arg)
{
	struct notify n = *(struct notify *)arg;
	free(arg);
	n.fn(n.value);
	return NULL;
}

static void notify(const struct sigevent *sev)
{
	if (!sev)
		return;
	if (sev->sigev_notify == SIGEV_SIGNAL) {
		(void)sigqueue(getpid(), sev->sigev_signo, sev->sigev_value);
	} else if (sev->sigev_notify == SIGEV_THREAD && sev->sigev_notify_function) {
		struct notify *n = malloc(sizeof(*n));
		pthread_t t;
		pthread_attr_t own;
		const pthread_attr_t *attr = sev->sigev_notify_attributes;
		int detached = PTHREAD_CREATE_JOINABLE;
		if (!n)
			return;
		n->fn = sev->sigev_notify_function;
		n->value = sev->sigev_value;
		if (!attr) {
			pthread_attr_init(&own);
			pthread_attr_setdetachstate(&own, PTHREAD_CREATE_DETACHED);
			attr = &own;
		}
		/* The caller's attributes are theirs, maybe shared with other
		 * sigevents: used as they are, and a joinable thread (which no
		 * one can join: its id is never handed out) detached after. */
		(void)pthread_attr_getdetachstate(attr, &detached);
		if (pthread_create(&t, attr, notify_thread, n) != 0) {
			sfy_warn("getaddrinfo_a: cannot start the notification thread");
			free(n);
		} else if (detached != PTHREAD_CREATE_DETACHED) {
			pthread_detach(t);
		}
		if (attr == &own)
			pthread_attr_destroy(&own);
	}
}

SFY_EXPORT int getaddrinfo_a(int mode, struct gaicb *list[], int n, struct sigevent *sev)
{
	const struct sfy_config *cfg = sfy_config_get();
	const struct sfy_routes *rt = cfg ? sfy_routes_get() : NULL;
	/* Local DNS: the real function, unless a .onion/.exit/.i2p name is
	 * asked for, which only our getaddrinfo() keeps off the network. */
	bool special = false;
	for (int i = 0; list && i < n; i++)
		special |= list[i] && list[i]->ar_name && sfy_route_special_tld(list[i]->ar_name);
	if (cfg && !special && !(rt ? sfy_routes_remote(rt) || sfy_routes_active(rt)
				    : sfy_dns_fakes(cfg->dns))) {
		if (!sfy_real()->getaddrinfo_a)
			return EAI_SYSTEM;
		return sfy_real()->getaddrinfo_a(mode, list, n, sev);
	}
	if ((mode != GAI_WAIT && mode != GAI_NOWAIT) || n < 0) {
		errno = EINVAL;
		return EAI_SYSTEM;
	}
	for (int i = 0; i < n; i++)
		if (list[i])
			list[i]->__return = getaddrinfo(list[i]->ar_name, list[i]->ar_service,
							list[i]->ar_request, &list[i]->ar_result);
	if (mode == GAI_NOWAIT)
		notify(sev);
	return 0;
}
