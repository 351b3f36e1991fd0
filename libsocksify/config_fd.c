/* The launcher's validated configuration, handed to the whole process tree
 * as a sealed memfd whose number travels in SOCKSIFY_CONFIG_FD:
 *
 *   +----------------+---------------------+
 *   | header (16 B)  | struct sfy_config   |
 *   | magic, size    | exactly as checked  |
 *   +----------------+---------------------+
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

int sfy_config_export_fd(const struct sfy_config *c)
{
	struct cfg_hdr h = { .size = sizeof(*c) };
	memcpy(h.magic, CFG_MAGIC, sizeof(h.magic));
	int hi = sfy_shm_memfd("socksify-config");
	if (hi < 0)
		return hi;
	if (pwrite(hi, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    pwrite(hi, c, sizeof(*c), sizeof(h)) != (ssize_t)sizeof(*c) ||
	    sfy_real()->fcntl(hi, F_ADD_SEALS, CFG_SEALS) < 0) {
		int e = errno ? errno : EIO;
		sfy_real()->close(hi);
		return -e;
	}
	return hi;
}

/* Every field an importer acts on, as the parsers would have left it. */
static bool fields_ok(const struct sfy_config *c)
{
	char why[SFY_ERR_MAX];
	unsigned char b[3];

	if (c->nproxies < 1 || c->nproxies > SFY_MAX_PROXIES || c->nbypass > SFY_MAX_BYPASS)
		return false;
	for (size_t i = 0; i < c->nproxies; i++) {
		const struct sfy_proxy *p = &c->proxies[i];
		memcpy(&b[0], &p->has_user, 1);
		memcpy(&b[1], &p->has_pass, 1);
		if (b[0] > 1 || b[1] > 1 || sfy_proxy_validate(p, why, sizeof why))
			return false;
	}
	for (size_t i = 0; i < c->nbypass; i++) {
		const struct sfy_cidr *r = &c->bypass[i];
		if (!(r->family == AF_INET && r->prefix <= 32) &&
		    !(r->family == AF_INET6 && r->prefix <= 128))
			return false;
	}
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
	    st.st_size != (off_t)(sizeof(h) + sizeof(*c)))
		return sfy_errf(err, errcap, "%s=%lu: not a sealed socksify configuration",
				SFY_CONFIG_FD_ENV, fd);
	if (pread((int)fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h.magic, CFG_MAGIC, sizeof(h.magic)) || h.size != sizeof(*c) ||
	    pread((int)fd, c, sizeof(*c), sizeof(h)) != (ssize_t)sizeof(*c))
		return sfy_errf(err, errcap, "%s=%lu: corrupt or from another socksify version",
				SFY_CONFIG_FD_ENV, fd);
	/* The writer's pointers mean nothing here (rules travel after the
	 * struct once they exist). */
	c->rules = NULL;
	c->rule_names = NULL;
	c->nrules = c->rule_names_len = 0;
	if (!fields_ok(c))
		return sfy_errf(err, errcap, "%s=%lu: corrupt or from another socksify version",
				SFY_CONFIG_FD_ENV, fd);
	return 1;
}

int sfy_config_fd_unproxyable(int fd)
{
	struct stat st;
	struct cfg_hdr h;
	int v;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size != (off_t)(sizeof(h) + sizeof(struct sfy_config)))
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
