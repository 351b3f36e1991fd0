/* The configuration: defaults, then one YAML file (libyaml document API;
 * the key helpers and proxies: are in config_yaml.c), then SOCKSIFY_*
 * variables (config_env.c), then cross-field checks. Every error is one
 * line, "FILE:LINE: KEY: reason" for the file, naming the variable for the
 * environment. Nothing here logs or keeps memory past the call: the library
 * runs this inside the first hooked connect(). On error *c is left half
 * written and must not be used. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "config.h"
#include "config_yaml.h"
#include "real.h"
#include "sfy.h"

#ifndef SFY_SYSCONFDIR
#define SFY_SYSCONFDIR "/usr/local/etc"
#endif

/* Timeouts past an hour are a unit mistake ("8000" meant as ms), not a
 * wish; and they would overflow nothing below this bound. */
#define DURATION_MAX_MS 3600000L
/* A fake range needs room for a working set of names (a /24 holds 254) and
 * must not swallow the whole address space (/0). */
#define FAKE_PREFIX_MIN 1
#define FAKE_PREFIX_MAX 24

/* --- words and durations -------------------------------------------- */

static int word(const char *s, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] && !strcasecmp(s, names[i]))
			return (int)i;
	return -1;
}

static const char *const chain_names[] = {
	[SFY_CHAIN_STRICT] = "strict", [SFY_CHAIN_DYNAMIC] = "dynamic",
	[SFY_CHAIN_RANDOM] = "random", [SFY_CHAIN_ROUND_ROBIN] = "round_robin",
};
static const char *const dns_names[] = {
	[SFY_DNS_REMOTE] = "remote", [SFY_DNS_LOCAL] = "local", [SFY_DNS_PROXY] = "proxy",
};
static const char *const log_names[] = {
	[SFY_LOG_ERROR] = "error", [SFY_LOG_WARN] = "warn",
	[SFY_LOG_INFO] = "info", [SFY_LOG_DEBUG] = "debug",
};
static const char *const udp_names[] = {
	[SFY_UDP_ASSOCIATE] = "associate", [SFY_UDP_BLOCK] = "block",
	[SFY_UDP_DIRECT] = "direct",
};
static const char *const io_uring_names[] = {
	[SFY_IO_URING_REFUSE] = "refuse", [SFY_IO_URING_ALLOW] = "allow",
};
static const char *const unproxyable_names[] = {
	[SFY_UNPROXYABLE_REFUSE] = "refuse", [SFY_UNPROXYABLE_ALLOW] = "allow",
};
static const char *const isolate_names[] = {
	[SFY_ISOLATE_NONE] = "none", [SFY_ISOLATE_PROCESS] = "process",
	[SFY_ISOLATE_CONNECTION] = "connection",
};
static const char *const pipeline_names[] = {
	[SFY_PIPELINE_AUTO] = "auto", [SFY_PIPELINE_ON] = "on", [SFY_PIPELINE_OFF] = "off",
};

int sfy_chain_mode_parse(const char *s)
{
	if (!strcasecmp(s, "round-robin"))
		return SFY_CHAIN_ROUND_ROBIN;
	return word(s, chain_names, SFY_ARRAY_LEN(chain_names));
}

int sfy_dns_mode_parse(const char *s)
{
	return word(s, dns_names, SFY_ARRAY_LEN(dns_names));
}

int sfy_log_level_parse(const char *s)
{
	if (!strcasecmp(s, "warning"))
		return SFY_LOG_WARN;
	return word(s, log_names, SFY_ARRAY_LEN(log_names));
}

int sfy_unproxyable_parse(const char *s)
{
	return word(s, unproxyable_names, SFY_ARRAY_LEN(unproxyable_names));
}

int sfy_isolate_parse(const char *s)
{
	return word(s, isolate_names, SFY_ARRAY_LEN(isolate_names));
}

const char *sfy_log_level_name(enum sfy_log_level l)
{
	return (unsigned)l < SFY_ARRAY_LEN(log_names) ? log_names[l] : "?";
}

const char *sfy_chain_mode_name(enum sfy_chain_mode m)
{
	return (unsigned)m < SFY_ARRAY_LEN(chain_names) ? chain_names[m] : "?";
}

static int pipeline_parse(const char *s)
{
	/* YAML 1.1 readers take on/off as booleans; accept their spellings. */
	if (!strcasecmp(s, "true") || !strcasecmp(s, "yes"))
		return SFY_PIPELINE_ON;
	if (!strcasecmp(s, "false") || !strcasecmp(s, "no"))
		return SFY_PIPELINE_OFF;
	return word(s, pipeline_names, SFY_ARRAY_LEN(pipeline_names));
}

long sfy_duration_parse(const char *s)
{
	long mult;
	unsigned long v;
	const char *p = s + strspn(s, "0123456789");

	if (sfy_decimal(s, (size_t)(p - s), DURATION_MAX_MS, &v))
		return -1;
	if (!*p || !strcmp(p, "s"))
		mult = 1000;
	else if (!strcmp(p, "ms"))
		mult = 1;
	else if (!strcmp(p, "m"))
		mult = 60 * 1000;
	else if (!strcmp(p, "h"))
		mult = 3600 * 1000;
	else
		return -1;
	if (v == 0 || v > (unsigned long)(DURATION_MAX_MS / mult))
		return -1;
	return (long)v * mult;
}

void sfy_config_defaults(struct sfy_config *c)
{
	memset(c, 0, sizeof *c);
	c->chain = SFY_CHAIN_STRICT;
	c->dns = SFY_DNS_AUTO;
	c->fake_net = 0xe0000000u;      /* 224.0.0.0/8 */
	c->fake_prefix = 8;
	c->udp = SFY_UDP_ASSOCIATE;
	c->connect_timeout_ms = 8000;
	c->handshake_timeout_ms = 15000;
	c->log_level = SFY_LOG_WARN;
	c->pipeline = SFY_PIPELINE_AUTO;
	c->io_uring = SFY_IO_URING_REFUSE;
	c->default_via = SFY_VIA_TOP;
}

/* --- the other keys ------------------------------------------------- */

static int k_chain(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	int m;

	(void)arg;
	if (sfy_cfg_enum_value(l, v, path, sfy_chain_mode_parse, "strict, dynamic, random, round_robin", &m))
		return -1;
	l->c->chain = (enum sfy_chain_mode)m;
	return 0;
}

static int k_chain_length(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	unsigned long n;

	(void)arg;
	if (sfy_cfg_number(l, v, path, "value", SFY_MAX_PROXIES, &n))
		return -1;
	l->c->chain_length = (unsigned)n;
	l->chain_length = v;
	return 0;
}

static int k_dns(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	int m;

	(void)arg;
	if (sfy_cfg_enum_value(l, v, path, sfy_dns_mode_parse, "remote, local, proxy", &m))
		return -1;
	l->c->dns = (enum sfy_dns_mode)m;
	return 0;
}

static int k_fake(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	struct sfy_cidr r;
	char why[SFY_ERR_MAX];
	const char *s;

	(void)arg;
	if (sfy_cfg_scalar(l, v, path, &s))
		return -1;
	if (sfy_cidr_parse(s, &r, why, sizeof why))
		return sfy_cfg_kerr(l, v, path, "%s", why);
	if (r.family != AF_INET || r.port)
		return sfy_cfg_kerr(l, v, path, "expected an IPv4 network like 224.0.0.0/8");
	if (r.prefix < FAKE_PREFIX_MIN || r.prefix > FAKE_PREFIX_MAX)
		return sfy_cfg_kerr(l, v, path, "prefix length must be %d..%d", FAKE_PREFIX_MIN, FAKE_PREFIX_MAX);
	l->c->fake_net = (uint32_t)r.addr[0] << 24 | (uint32_t)r.addr[1] << 16
		       | (uint32_t)r.addr[2] << 8 | r.addr[3];
	l->c->fake_prefix = r.prefix;
	return 0;
}

static int bypass_item(struct load *l, yaml_node_t *it, const char *ip, size_t i, void *arg)
{
	char why[SFY_ERR_MAX];
	const char *s;

	(void)arg;
	if (sfy_cfg_scalar(l, it, ip, &s))
		return -1;
	if (sfy_cidr_parse(s, &l->c->bypass[i], why, sizeof why))
		return sfy_cfg_kerr(l, it, ip, "%s", why);
	l->c->nbypass = i + 1;
	return 0;
}

static int k_bypass(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	(void)arg;
	l->c->nbypass = 0;
	return sfy_cfg_each(l, v, path, SFY_MAX_BYPASS, "rules", bypass_item, NULL);
}

static int udp_parse(const char *s)
{
	return word(s, udp_names, SFY_ARRAY_LEN(udp_names));
}

static int k_udp(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	int m;

	(void)arg;
	if (sfy_cfg_enum_value(l, v, path, udp_parse, "associate, block, direct", &m))
		return -1;
	l->c->udp = (enum sfy_udp_mode)m;
	l->c->udp_explicit = true;
	return 0;
}

static int duration(struct load *l, yaml_node_t *v, const char *path, unsigned *ms)
{
	const char *s;
	long d;

	if (sfy_cfg_scalar(l, v, path, &s))
		return -1;
	if ((d = sfy_duration_parse(s)) < 0)
		return sfy_cfg_kerr(l, v, path, "bad duration \"%.20s\" (like 8s, 500ms, 1m; more than 0, at most 1h)", s);
	*ms = (unsigned)d;
	return 0;
}

static int k_t_connect(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	(void)arg;
	return duration(l, v, path, &l->c->connect_timeout_ms);
}

static int k_t_handshake(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	(void)arg;
	return duration(l, v, path, &l->c->handshake_timeout_ms);
}

static const struct key_def timeout_keys[] = {
	{ "connect", k_t_connect }, { "handshake", k_t_handshake },
};

static int k_timeouts(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	(void)arg;
	return sfy_cfg_walk(l, v, path, timeout_keys, SFY_ARRAY_LEN(timeout_keys), NULL);
}

static int k_log_level(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	int m;

	(void)arg;
	if (sfy_cfg_enum_value(l, v, path, sfy_log_level_parse, "error, warn, info, debug", &m))
		return -1;
	l->c->log_level = (enum sfy_log_level)m;
	return 0;
}

static int k_log_file(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	const char *s;

	(void)arg;
	if (sfy_cfg_scalar(l, v, path, &s))
		return -1;
	if (strlen(s) >= sizeof l->c->log_file)
		return sfy_cfg_kerr(l, v, path, "path too long");
	strcpy(l->c->log_file, s);
	return 0;
}

static const struct key_def log_keys[] = {
	{ "level", k_log_level }, { "file", k_log_file },
};

static int k_log(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	(void)arg;
	return sfy_cfg_walk(l, v, path, log_keys, SFY_ARRAY_LEN(log_keys), NULL);
}

static int k_pipelining(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	int m;

	(void)arg;
	if (sfy_cfg_enum_value(l, v, path, pipeline_parse, "auto, on, off", &m))
		return -1;
	l->c->pipeline = (enum sfy_pipeline)m;
	return 0;
}

static int io_uring_parse(const char *s)
{
	return word(s, io_uring_names, SFY_ARRAY_LEN(io_uring_names));
}

static int k_io_uring(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	int m;

	(void)arg;
	if (sfy_cfg_enum_value(l, v, path, io_uring_parse, "refuse, allow", &m))
		return -1;
	l->c->io_uring = (enum sfy_io_uring)m;
	return 0;
}

static int k_unproxyable(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	int m;

	(void)arg;
	if (sfy_cfg_enum_value(l, v, path, sfy_unproxyable_parse, "refuse, allow", &m))
		return -1;
	l->c->unproxyable = (enum sfy_unproxyable)m;
	return 0;
}

/* on | off, and YAML 1.1's boolean spellings, as pipelining takes them. */
static int on_off_parse(const char *s)
{
	if (!strcasecmp(s, "on") || !strcasecmp(s, "true") || !strcasecmp(s, "yes"))
		return 1;
	if (!strcasecmp(s, "off") || !strcasecmp(s, "false") || !strcasecmp(s, "no"))
		return 0;
	return -1;
}

static int k_dns_responder(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	int m;

	(void)arg;
	if (sfy_cfg_enum_value(l, v, path, on_off_parse, "on, off", &m))
		return -1;
	l->c->dns_responder_off = m == 0;
	return 0;
}

/* auto | off. */
static int auto_off_parse(const char *s)
{
	if (!strcasecmp(s, "auto"))
		return 1;
	if (!strcasecmp(s, "off"))
		return 0;
	return -1;
}

static int k_bind(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	int m;

	(void)arg;
	if (sfy_cfg_enum_value(l, v, path, auto_off_parse, "auto, off", &m))
		return -1;
	l->c->bind_off = m == 0;
	return 0;
}

static int k_isolate(struct load *l, yaml_node_t *v, const char *path, void *arg)
{
	int m;

	(void)arg;
	if (sfy_cfg_enum_value(l, v, path, sfy_isolate_parse, "none, process, connection", &m))
		return -1;
	l->c->isolate = (enum sfy_isolate)m;
	return 0;
}

static const struct key_def top_keys[] = {
	{ "proxies", sfy_cfg_k_proxies }, { "chain", k_chain }, { "chain_length", k_chain_length },
	{ "dns", k_dns }, { "fake_ip_range", k_fake }, { "bypass", k_bypass },
	{ "udp", k_udp }, { "timeouts", k_timeouts }, { "log", k_log },
	{ "pipelining", k_pipelining }, { "io_uring", k_io_uring },
	{ "unproxyable", k_unproxyable }, { "chains", sfy_cfg_k_chains },
	{ "rules", sfy_cfg_k_rules }, { "default", sfy_cfg_k_default },
	{ "no_proxy", sfy_cfg_k_no_proxy }, { "dns_responder", k_dns_responder },
	{ "isolate", k_isolate },
	{ "bind", k_bind },
};

static int syntax_error(struct load *l, const yaml_parser_t *p)
{
	const char *why = p->problem ? p->problem : "syntax error";

	/* libyaml reports where it gave up (often the end of the file) and,
	 * for unclosed structures, where the structure began. */
	if (p->context)
		return sfy_errf(l->err, l->errcap, "%s:%zu: yaml: %s %s started on line %zu", l->name,
			    p->problem_mark.line + 1, why, p->context, p->context_mark.line + 1);
	return sfy_errf(l->err, l->errcap, "%s:%zu: yaml: %s", l->name, p->problem_mark.line + 1, why);
}

/* Loads the parser's first document over l->c; a second one is an error
 * (it would be silently ignored otherwise). */
static int load(struct load *l, yaml_parser_t *p)
{
	yaml_document_t doc, extra;
	yaml_node_t *root;
	int rc = -1;

	if (!yaml_parser_load(p, &doc))
		return syntax_error(l, p);
	l->doc = &doc;
	root = yaml_document_get_root_node(&doc);
	if (!root) {
		rc = 0;         /* an empty file: defaults only */
		goto out;
	}
	if (sfy_cfg_walk(l, root, "", top_keys, SFY_ARRAY_LEN(top_keys), NULL) ||
	    sfy_cfg_resolve_vias(l))
		goto out;
	if (!yaml_parser_load(p, &extra)) {
		syntax_error(l, p);
		goto out;
	}
	if ((root = yaml_document_get_root_node(&extra))) {
		sfy_errf(l->err, l->errcap, "%s:%u: yaml: more than one document", l->name, sfy_cfg_line(root));
		yaml_document_delete(&extra);
		goto out;
	}
	yaml_document_delete(&extra);
	if (l->chain_length && l->c->chain_length > l->c->nproxies && l->proxies)
		sfy_cfg_kerr(l, l->chain_length, "chain_length", "%u is more than the %zu proxies",
		     l->c->chain_length, l->c->nproxies);
	else
		rc = 0;
out:
	yaml_document_delete(&doc);
	return rc;
}

/* libyaml has no depth limit, and its loader slows down sharply on deep
 * nesting; no real config nests more than four levels. One pass over the
 * event stream (linear) refuses a deeper document before it is loaded. */
static int depth_check(struct load *l, const char *yaml, size_t len)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int depth = 0, rc = 0;

	if (!yaml_parser_initialize(&p))
		return sfy_errf(l->err, l->errcap, "%s: out of memory", l->name);
	yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
	for (bool done = false; !done && !rc;) {
		if (!yaml_parser_parse(&p, &ev))
			break;          /* the loader reports the syntax error */
		switch (ev.type) {
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (++depth > SFY_CONFIG_DEPTH_MAX)
				rc = sfy_errf(l->err, l->errcap, "%s:%u: yaml: nested deeper than %d levels",
					      l->name, (unsigned)ev.start_mark.line + 1,
					      SFY_CONFIG_DEPTH_MAX);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return rc;
}

static int load_buf(struct sfy_config *c, const char *yaml, size_t len, const char *name,
		    char *err, size_t errcap, bool *has_pass)
{
	struct load l = { .c = c, .name = name, .err = err, .errcap = errcap };
	yaml_parser_t p;
	int rc;

	if (len > SFY_CONFIG_SIZE_MAX)
		return sfy_errf(err, errcap, "%s: larger than %d bytes", name, SFY_CONFIG_SIZE_MAX);
	if (depth_check(&l, yaml, len))
		return -1;
	if (!yaml_parser_initialize(&p))
		return sfy_errf(err, errcap, "%s: out of memory", name);
	yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
	rc = load(&l, &p);
	yaml_parser_delete(&p);
	*has_pass = l.has_pass;
	return rc;
}

int sfy_config_load_string(struct sfy_config *c, const char *yaml, size_t len,
			   const char *name, char *err, size_t errcap)
{
	bool has_pass;
	if (load_buf(c, yaml, len, name, err, errcap, &has_pass))
		return -1;
	/* What errors found later (finish) name the document by. */
	snprintf(c->source, sizeof c->source, "%s", name);
	return 0;
}

/* Who may have written a config decides where its traffic goes: like
 * ssh with ~/.ssh/config, only the user or root, and nobody else. */
static int file_trusted(const char *path, const struct stat *st, char *err, size_t errcap)
{
	if (!S_ISREG(st->st_mode))
		return sfy_errf(err, errcap, "%s: not a regular file", path);
	if (st->st_uid != geteuid() && st->st_uid != 0)
		return sfy_errf(err, errcap, "%s: owned by uid %u, neither you nor root",
				path, (unsigned)st->st_uid);
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return sfy_errf(err, errcap, "%s: writable by group or others (chmod go-w)", path);
	if (st->st_size > SFY_CONFIG_SIZE_MAX)
		return sfy_errf(err, errcap, "%s: larger than %d bytes", path, SFY_CONFIG_SIZE_MAX);
	return 0;
}

int sfy_config_load_file(struct sfy_config *c, const char *path, char *err, size_t errcap)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int rc = -1;
	bool has_pass = false;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return sfy_errf(err, errcap, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st))
		rc = sfy_errf(err, errcap, "%s: %s", path, strerror(errno));
	else if (file_trusted(path, &st, err, errcap))
		;
	else if (!(buf = malloc((size_t)st.st_size + 1)))
		rc = sfy_errf(err, errcap, "%s: out of memory", path);
	else {
		/* The size was checked; reading one byte more tells a file
		 * that grew since. */
		ssize_t n;
		while ((n = pread(fd, buf + len, (size_t)st.st_size + 1 - len, (off_t)len)) > 0 &&
		       len + (size_t)n <= (size_t)st.st_size)
			len += (size_t)n;
		if (n < 0)
			rc = sfy_errf(err, errcap, "%s: %s", path, strerror(errno));
		else if (n > 0)
			rc = sfy_errf(err, errcap, "%s: changed while being read", path);
		else
			rc = load_buf(c, buf, len, path, err, errcap, &has_pass);
	}
	free(buf);
	sfy_real()->close(fd);
	if (rc)
		return rc;
	c->insecure_perms = has_pass && (st.st_mode & (S_IRGRP | S_IROTH));
	if (strlen(path) < sizeof c->source)
		strcpy(c->source, path);
	return 0;
}
