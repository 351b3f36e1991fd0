/* The resolver's search list (dns_search.h), read the way glibc's
 * res_init.c reads it: lines starting with ';' or '#' are comments, the
 * last "domain X" or "search A B ..." line wins, LOCALDOMAIN replaces both,
 * and without any the hostname's domain (after its first dot) is used. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <netinet/in.h>
#include <resolv.h>

#include "dns_search.h"
#include "fakedns.h"
#include "log.h"

/* The file's list, and what the file looked like when it was read. */
static struct {
	bool valid;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	struct sfy_search s;
} cache;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *_Atomic conf_path = _PATH_RESCONF;

/* fork(): the child's copy of the lock may be held by a thread it lacks. */
static void cache_child(void)
{
	pthread_mutex_init(&cache_lock, NULL);
}

__attribute__((constructor)) static void search_init(void)
{
	pthread_atfork(NULL, NULL, cache_child);
}

void sfy_search_set_path(const char *path)
{
	pthread_mutex_lock(&cache_lock);
	atomic_store(&conf_path, path ? path : _PATH_RESCONF);
	cache.valid = false;
	pthread_mutex_unlock(&cache_lock);
}

bool sfy_search_applies(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	return n && name[n - 1] != '.';
}

bool sfy_search_join(const char *name, const char *dom, char out[static SFY_NAME_MAX + 1])
{
	size_t a = strlen(name), b = strlen(dom);
	/* 253: the longest name a query can carry, written without its dot */
	if (!a || !b || a + 1 + b > 253)
		return false;
	memcpy(out, name, a);
	out[a] = '.';
	memcpy(out + a + 1, dom, b + 1);
	return true;
}

/* Adds one domain (leading/trailing dots dropped, as glibc ends up asking
 * for "name.dom." either way); one that cannot be kept is said once. */
static void add(struct sfy_search *s, const char *dom, size_t len)
{
	static atomic_flag said = ATOMIC_FLAG_INIT;
	char buf[SFY_NAME_MAX + 2], norm[SFY_NAME_MAX + 1];
	while (len && *dom == '.')
		dom++, len--;
	while (len && dom[len - 1] == '.')
		len--;
	if (!len)
		return;
	if (len >= sizeof(buf) - 1 || s->n >= SFY_SEARCH_MAX) {
		if (!atomic_flag_test_and_set(&said))
			sfy_warn("resolver search list: more than %d domains (or a name too long); "
				 "routing rules judge only the first ones", SFY_SEARCH_MAX);
		return;
	}
	memcpy(buf, dom, len);
	buf[len] = '\0';
	if (sfy_fakedns_normalize(buf, norm) <= 0)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->dom[i], norm))
			return;
	memcpy(s->dom[s->n++], norm, strlen(norm) + 1);
}

/* The blank-separated words of list. */
static void add_words(struct sfy_search *s, const char *list)
{
	for (const char *p = list; *p;) {
		p += strspn(p, " \t\r\n");
		size_t n = strcspn(p, " \t\r\n");
		if (n)
			add(s, p, n);
		p += n;
	}
}

/* A keyword line of resolv.conf ("search a b"): the rest after it, or NULL. */
static const char *keyword(const char *line, const char *kw)
{
	size_t n = strlen(kw);
	return !strncmp(line, kw, n) && (line[n] == ' ' || line[n] == '\t') ? line + n : NULL;
}

static void parse_file(FILE *f, struct sfy_search *s)
{
	char *line = NULL;
	size_t cap = 0;
	const char *rest;
	memset(s, 0, sizeof(*s));
	while (getline(&line, &cap, f) >= 0) {
		if (*line == ';' || *line == '#')
			continue;
		if ((rest = keyword(line, "domain")) != NULL) {
			/* one word: the default domain, and the whole list */
			s->n = 0;
			rest += strspn(rest, " \t");
			add(s, rest, strcspn(rest, " \t\r\n"));
		} else if ((rest = keyword(line, "search")) != NULL) {
			s->n = 0;
			add_words(s, rest);
		}
	}
	free(line);
}

/* The file's list into s, read again when the file changed. */
static void file_list(struct sfy_search *s)
{
	struct stat st;
	pthread_mutex_lock(&cache_lock);
	const char *path = atomic_load(&conf_path);
	if (stat(path, &st) < 0) {
		cache.valid = false;
		s->n = 0;
		pthread_mutex_unlock(&cache_lock);
		return;
	}
	if (!cache.valid || cache.dev != st.st_dev || cache.ino != st.st_ino ||
	    cache.size != st.st_size || cache.mtime.tv_sec != st.st_mtim.tv_sec ||
	    cache.mtime.tv_nsec != st.st_mtim.tv_nsec || cache.ctime.tv_sec != st.st_ctim.tv_sec ||
	    cache.ctime.tv_nsec != st.st_ctim.tv_nsec) {
		FILE *f = fopen(path, "re");
		memset(&cache.s, 0, sizeof(cache.s));
		if (f) {
			parse_file(f, &cache.s);
			fclose(f);
		}
		cache.valid = f != NULL;
		cache.dev = st.st_dev;
		cache.ino = st.st_ino;
		cache.size = st.st_size;
		cache.mtime = st.st_mtim;
		cache.ctime = st.st_ctim;
	}
	*s = cache.s;
	pthread_mutex_unlock(&cache_lock);
}

void sfy_search_get(struct sfy_search *s, const struct __res_state *statp)
{
	/* LOCALDOMAIN replaces the file's lines (glibc skips them then). */
	const char *env = getenv("LOCALDOMAIN");
	if (env) {
		memset(s, 0, sizeof(*s));
		add_words(s, env);
	} else {
		file_list(s);
	}
	if (!s->n) {
		char host[SFY_NAME_MAX + 2];
		const char *dot;
		if (gethostname(host, sizeof(host)) == 0) {
			host[sizeof(host) - 1] = '\0';
			if ((dot = strchr(host, '.')) != NULL)
				add(s, dot + 1, strlen(dot + 1));
		}
	}
	/* A resolver state the program initialized (and maybe changed):
	 * glibc searches its list when it no longer matches the file. */
	if (!statp)
		statp = &_res;
	if (statp->options & RES_INIT)
		for (size_t i = 0; i < MAXDNSRCH && statp->dnsrch[i]; i++)
			add(s, statp->dnsrch[i], strnlen(statp->dnsrch[i], SFY_NAME_MAX + 1));
}
