/* The configuration is loaded on first use, once, thread-safely -- never in
 * a constructor, so programs that do not touch the network pay nothing. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dnsresp.h"
#include "fakedns.h"
#include "log.h"
#include "real.h"
#include "route.h"
#include "state.h"

static struct sfy_config config;
static const struct sfy_config *config_ok;
static struct sfy_routes *routes;
static pthread_once_t config_once = PTHREAD_ONCE_INIT;

/* Before each fork(): the tables the hooks read lazily (/etc/hosts,
 * resolv.conf's nameservers) are loaded in the parent, so a child never
 * loads them -- with malloc and stdio, inside a write() or connect() it
 * may make between fork() and exec(), while an allocator lock another of
 * the parent's threads held at the fork stays held in its copy (seen:
 * a forked child of a threaded program hung answering DNS over TCP). */
static void warm_tables(void)
{
	sfy_hosts_warm();
	/* Only the responder's paths (all behind sfy_dnsresp_enabled) read
	 * resolv.conf: without it, nothing in a child ever does. */
	if (sfy_dnsresp_enabled(sfy_config_peek()))
		sfy_dnsresp_warm();
}

static void config_load(void)
{
	char err[SFY_ERR_MAX];
	const char *lvl = getenv("SOCKSIFY_LOG");
	int l = lvl ? sfy_log_level_parse(lvl) : -1;
	if (l >= 0)
		sfy_log_setup((enum sfy_log_level)l, NULL);

	sfy_config_defaults(&config);
	int r = sfy_config_import_fd(&config, err, sizeof(err));
	if (r < 0) {
		sfy_err("no usable configuration, every connection will fail: %s", err);
		return;
	}
	if (r == 0 && sfy_config_from_env(&config, NULL, err, sizeof(err)) < 0) {
		sfy_err("no usable configuration, every connection will fail: %s", err);
		return;
	}
	sfy_log_setup(config.log_level, config.log_file);
	/* Decided in real.c's constructor, told here: once, and only to a
	 * program that uses the network. */
	const char *why = sfy_real_refusal();
	if (why) {
		sfy_err("another library interposes the socket calls between socksify and "
			"libc (%s), every connection will fail", why);
		return;
	}
	const char *copy = sfy_real_other_copy();
	if (copy)
		sfy_warn("a second copy of the library is loaded (%s): this one calls libc "
			 "directly, that one stays idle", copy);
	/* The launcher has said it once for the tree; without it, say it here. */
	if (r == 0 && sfy_config_multihop(&config) && config.udp == SFY_UDP_ASSOCIATE)
		sfy_warn("udp: associate with a chain of 2+ hops: datagrams go straight to the "
			 "last hop's relay, which sees this machine's address");
	for (const char *w = config.warnings; r == 0 && *w;) {
		size_t n = strcspn(w, "\n");
		sfy_warn("%.*s", (int)n, w);
		w += n + (w[n] == '\n');
	}
	if (!(routes = sfy_routes_build(&config, err, sizeof(err)))) {
		sfy_err("no usable configuration, every connection will fail: %s", err);
		return;
	}
	pthread_atfork(warm_tables, NULL, NULL);
	__atomic_store_n(&config_ok, &config, __ATOMIC_RELEASE);
}

const struct sfy_config *sfy_config_get(void)
{
	pthread_once(&config_once, config_load);
	return config_ok;
}

const struct sfy_routes *sfy_routes_get(void)
{
	return sfy_config_get() ? routes : NULL;
}

const struct sfy_config *sfy_config_peek(void)
{
	return __atomic_load_n(&config_ok, __ATOMIC_ACQUIRE);
}
