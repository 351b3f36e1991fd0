/* The launcher's validated configuration, handed to the whole process tree
 * as a sealed memfd whose number travels in SOCKSIFY_CONFIG_FD:
 *
 *   +----------------+---------------------+------------------+-------------+
 *   | header (16 B)  | struct sfy_config   | nrules x         | rule_names  |
 *   | magic, size    | exactly as checked  | struct sfy_rule  | (names_len) |
 *   +----------------+---------------------+------------------+-------------+
 *
 * (the struct's own rules/rule_names pointers are written as NULL and
 * rebuilt from the two sections on import.)
 *
 * No process of the tree parses the file again, so a program that drops
 * privileges (nginx workers as www-data, apt's methods as _apt) keeps its
 * proxies after it can no longer read a 0600 config, and an edit of the
 * file mid-run cannot split a tree between two configurations. The seals
 * (write, grow, shrink, and the seal on seals) mean no process of the tree
 * can change it; the import still checks every field, since whoever sets
 * the environment chooses the descriptor. */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_rules.h"
#include "real.h"
#include "sfy.h"
#include "shmfd.h"

#define CFG_MAGIC "SFYCONF1"
#define CFG_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

struct cfg_hdr {
	char magic[8];
	uint32_t size;          /* sizeof(struct sfy_config) of the writer */
	uint32_t pad;
};

static int write_all(int fd, const void *p, size_t n, off_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, off);
		if (w <= 0)
			return -1;
		p = (const char *)p + w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

int sfy_config_export_fd(const struct sfy_config *c)
{
	struct cfg_hdr h = { .size = sizeof(*c) };
	size_t rules = c->nrules * sizeof(*c->rules);
	struct sfy_config *copy = malloc(sizeof(*copy));
	int e = ENOMEM, hi = -1;

	memcpy(h.magic, CFG_MAGIC, sizeof(h.magic));
	if (!copy)
		return -ENOMEM;
	/* Addresses of this process mean nothing to the next one. */
	*copy = *c;
	copy->rules = NULL;
	copy->rule_names = NULL;
	hi = sfy_shm_memfd("socksify-config");
	if (hi < 0) {
		free(copy);
		return hi;
	}
	errno = 0;
	if (write_all(hi, &h, sizeof(h), 0) ||
	    write_all(hi, copy, sizeof(*copy), sizeof(h)) ||
	    (rules && write_all(hi, c->rules, rules, (off_t)(sizeof(h) + sizeof(*c)))) ||
	    (c->rule_names_len && write_all(hi, c->rule_names, c->rule_names_len,
					    (off_t)(sizeof(h) + sizeof(*c) + rules))) ||
	    sfy_real()->fcntl(hi, F_ADD_SEALS, CFG_SEALS) < 0) {
		e = errno ? errno : EIO;
		sfy_real()->close(hi);
		free(copy);
		return -e;
	}
	free(copy);
	return hi;
}

static bool bool_ok(const bool *b)
{
	unsigned char v;
	memcpy(&v, b, 1);
	return v <= 1;
}

static bool proxy_ok(const struct sfy_proxy *p)
{
	char why[SFY_ERR_MAX];
	return bool_ok(&p->has_user) && bool_ok(&p->has_pass) && !sfy_proxy_validate(p, why, sizeof why);
}

static bool cidr_ok(const struct sfy_cidr *r)
{
	unsigned bits = r->family == AF_INET ? 32 : r->family == AF_INET6 ? 128 : 0;
	if (!bits || r->prefix > bits)
		return false;
	for (unsigned i = r->prefix; i < bits; i++)
		if (r->addr[i / 8] & (0x80u >> (i % 8)))
			return false;
	return true;
}

/* The named chains: names as the parser takes them (unique, terminated),
 * each a non-empty slice of chain_proxies, and every field in range. */
static bool chains_ok(const struct sfy_config *c)
{
	if (c->nchains > SFY_MAX_CHAINS || c->nchain_proxies > SFY_MAX_CHAIN_PROXIES)
		return false;
	for (size_t i = 0; i < c->nchain_proxies; i++)
		if (!proxy_ok(&c->chain_proxies[i]))
			return false;
	for (size_t i = 0; i < c->nchains; i++) {
		const struct sfy_chaindef *d = &c->chains[i];
		if (!memchr(d->name, 0, sizeof(d->name)) || !sfy_chain_name_ok(d->name) ||
		    d->n < 1 || (size_t)d->first + d->n > c->nchain_proxies ||
		    (unsigned)d->chain > SFY_CHAIN_ROUND_ROBIN || d->chain_length > d->n ||
		    (d->dns != SFY_DNS_REMOTE && d->dns != SFY_DNS_LOCAL))
			return false;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(c->chains[j].name, d->name))
				return false;
	}
	return true;
}

static bool via_ok(const struct sfy_config *c, int via)
{
	return via == SFY_VIA_DIRECT || via == SFY_VIA_BLOCK || (via >= 0 && (size_t)via < c->nchains);
}

/* Each rule as the parser would have made it: a forged one must not reach
 * a name outside the pool, a chain that is not there, or a matcher with a
 * network it cannot hash. */
static bool rules_ok(const struct sfy_config *c)
{
	for (size_t i = 0; i < c->nrules; i++) {
		const struct sfy_rule *r = &c->rules[i];
		bool named = r->kind == SFY_RM_NAME || r->kind == SFY_RM_SUFFIX;
		if (r->kind > SFY_RM_CIDR || !bool_ok(&r->has_port) ||
		    (r->origin != SFY_RO_CLI && r->origin != SFY_RO_NOPROXY && r->origin != SFY_RO_FILE) ||
		    !via_ok(c, r->via))
			return false;
		if (r->has_port ? r->port_lo < 1 || r->port_lo > r->port_hi
				: r->port_lo != 0 || r->port_hi != 65535)
			return false;
		if (named) {
			if ((size_t)r->name_off + r->name_len >= c->rule_names_len ||
			    c->rule_names[r->name_off + r->name_len] != '\0' ||
			    !sfy_rule_name_ok(c->rule_names + r->name_off, r->name_len))
				return false;
		} else if (r->name_off || r->name_len) {
			return false;
		}
		if (r->kind == SFY_RM_CIDR ? !cidr_ok(&r->cidr) || r->cidr.port : false)
			return false;
	}
	return true;
}

/* Every field an importer acts on, as the parsers would have left it. */
static bool fields_ok(const struct sfy_config *c)
{
	unsigned char b[3];

	if (c->nproxies > SFY_MAX_PROXIES || c->nbypass > SFY_MAX_BYPASS ||
	    !chains_ok(c) || (c->default_via != SFY_VIA_TOP && !via_ok(c, c->default_via)) ||
	    (c->nproxies < 1 && c->default_via == SFY_VIA_TOP) ||
	    !bool_ok(&c->no_proxy_env) || !bool_ok(&c->dns_responder_off) ||
	    !bool_ok(&c->bind_off) ||
	    !memchr(c->warnings, 0, sizeof(c->warnings)))
		return false;
	for (size_t i = 0; i < c->nproxies; i++)
		if (!proxy_ok(&c->proxies[i]))
			return false;
	for (size_t i = 0; i < c->nbypass; i++)
		if (!cidr_ok(&c->bypass[i]))
			return false;
	memcpy(&b[2], &c->insecure_perms, 1);
	unsigned char ue;
	memcpy(&ue, &c->udp_explicit, 1);
	if (ue > 1)
		return false;
	return (unsigned)c->chain <= SFY_CHAIN_ROUND_ROBIN &&
	       c->chain_length <= c->nproxies &&
	       (c->dns == SFY_DNS_REMOTE || c->dns == SFY_DNS_LOCAL) &&
	       c->fake_prefix <= 32 && (unsigned)c->udp <= SFY_UDP_DIRECT &&
	       c->connect_timeout_ms > 0 && c->handshake_timeout_ms > 0 &&
	       (unsigned)c->log_level <= SFY_LOG_DEBUG && (unsigned)c->pipeline <= SFY_PIPELINE_OFF &&
	       (unsigned)c->io_uring <= SFY_IO_URING_ALLOW &&
	       (unsigned)c->unproxyable <= SFY_UNPROXYABLE_ALLOW &&
	       memchr(c->log_file, 0, sizeof(c->log_file)) && memchr(c->source, 0, sizeof(c->source)) &&
	       memchr(c->proxies_file, 0, sizeof(c->proxies_file)) &&
	       b[2] <= 1;
}

/* Capacity the rule storage grows from (config_rules.c): the smallest
 * power of two >= n and >= min. */
static size_t pow2_at_least(size_t n, size_t min)
{
	size_t cap = min;
	while (cap < n)
		cap *= 2;
	return cap;
}

/* Reads the rules sections after the struct into heap arrays of their
 * own. The sizes were checked against the file size already. */
static int read_rules(struct sfy_config *c, int fd, size_t nrules, size_t names_len)
{
	off_t off = (off_t)(sizeof(struct cfg_hdr) + sizeof(*c));
	size_t rb = nrules * sizeof(*c->rules);

	if (nrules && !(c->rules = malloc(pow2_at_least(nrules, 16) * sizeof(*c->rules))))
		return -1;
	if (names_len && !(c->rule_names = malloc(pow2_at_least(names_len, 256))))
		return -1;
	if ((rb && pread(fd, c->rules, rb, off) != (ssize_t)rb) ||
	    (names_len && pread(fd, c->rule_names, names_len, off + (off_t)rb) != (ssize_t)names_len))
		return -1;
	c->nrules = nrules;
	c->rule_names_len = names_len;
	return 0;
}

int sfy_config_import_fd(struct sfy_config *c, char *err, size_t errcap)
{
	const char *v = getenv(SFY_CONFIG_FD_ENV);
	unsigned long fd;
	struct stat st;
	struct cfg_hdr h;

	if (!v || !*v)
		return 0;
	if (sfy_decimal(v, strlen(v), INT32_MAX, &fd))
		return sfy_errf(err, errcap, "%s=%s: not a descriptor number", SFY_CONFIG_FD_ENV, v);
	/* Closed by the program (closefrom, daemons): not ours any more. The
	 * caller falls back to the environment and files, as without the
	 * launcher. */
	if (fstat((int)fd, &st) < 0)
		return 0;
	int seals = sfy_real()->fcntl((int)fd, F_GET_SEALS);
	if (!S_ISREG(st.st_mode) || seals < 0 || (seals & CFG_SEALS) != CFG_SEALS ||
	    st.st_size < (off_t)(sizeof(h) + sizeof(*c)))
		return sfy_errf(err, errcap, "%s=%lu: not a sealed socksify configuration",
				SFY_CONFIG_FD_ENV, fd);
	if (pread((int)fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h.magic, CFG_MAGIC, sizeof(h.magic)) || h.size != sizeof(*c) ||
	    pread((int)fd, c, sizeof(*c), sizeof(h)) != (ssize_t)sizeof(*c))
		goto corrupt;
	/* The writer's pointers mean nothing here: the rules are the
	 * sections after the struct, and their sizes must add up to the
	 * file's exactly. */
	size_t nrules = c->nrules, names_len = c->rule_names_len;
	c->rules = NULL;
	c->rule_names = NULL;
	c->nrules = c->rule_names_len = 0;
	if (nrules > SFY_MAX_RULES || names_len > (size_t)SFY_MAX_RULES * (SFY_RULE_NAME_MAX + 1) ||
	    (uint64_t)st.st_size != sizeof(h) + sizeof(*c) + nrules * sizeof(*c->rules) + names_len ||
	    read_rules(c, (int)fd, nrules, names_len) || !fields_ok(c) || !rules_ok(c)) {
		sfy_config_free(c);
		goto corrupt;
	}
	return 1;
corrupt:
	/* Never a pointer from the file left behind. */
	c->rules = NULL;
	c->rule_names = NULL;
	c->nrules = c->rule_names_len = 0;
	return sfy_errf(err, errcap, "%s=%lu: corrupt or from another socksify version",
			SFY_CONFIG_FD_ENV, fd);
}

int sfy_config_fd_unproxyable(int fd)
{
	struct stat st;
	struct cfg_hdr h;
	int v;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size < (off_t)(sizeof(h) + sizeof(struct sfy_config)))
		return -1;
	int seals = sfy_real()->fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & CFG_SEALS) != CFG_SEALS ||
	    pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h.magic, CFG_MAGIC, sizeof(h.magic)) || h.size != sizeof(struct sfy_config) ||
	    pread(fd, &v, sizeof(v), (off_t)(sizeof(h) + offsetof(struct sfy_config, unproxyable)))
	    != (ssize_t)sizeof(v) || v < SFY_UNPROXYABLE_REFUSE || v > SFY_UNPROXYABLE_ALLOW)
		return -1;
	return v;
}
