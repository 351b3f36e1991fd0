/* The whole configuration as one immutable struct: built once from a YAML
 * file and/or SOCKSIFY_* variables, validated completely, then only read. */
#ifndef SFY_CONFIG_H
#define SFY_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bypass.h"
#include "proxy_url.h"

/* Longer chains add a round trip per hop and nothing else; 32 is far past
 * any real use and keeps the struct a fixed size (no allocation). */
#define SFY_MAX_PROXIES 32
#define SFY_MAX_BYPASS 128
#define SFY_ERR_MAX 512
/* Named chains (chains:) and their hops, all chains together. */
#define SFY_MAX_CHAINS 16
#define SFY_CHAIN_NAME_MAX 31           /* [A-Za-z0-9_-], not direct/block */
#define SFY_MAX_CHAIN_PROXIES SFY_MAX_PROXIES
/* Routing rules of all origins together (heap; ad-block sized lists fit). */
#define SFY_MAX_RULES 65536
/* A config is a few dozen lines; 1 MiB and 64 levels of nesting leave room
 * for any real one and bound what a hostile file can cost inside the
 * program's first connect(). */
#define SFY_CONFIG_SIZE_MAX (1 << 20)
#define SFY_CONFIG_DEPTH_MAX 64

enum sfy_chain_mode {
	SFY_CHAIN_STRICT,
	SFY_CHAIN_DYNAMIC,
	SFY_CHAIN_RANDOM,
	SFY_CHAIN_ROUND_ROBIN,
};

enum sfy_dns_mode {
	SFY_DNS_AUTO,           /* not set: remote if the last hop resolves names */
	SFY_DNS_REMOTE,
	SFY_DNS_LOCAL,
	/* Lookups ask the chain's last hop, through the chain, with SOCKS5
	 * RESOLVE / RESOLVE_PTR (Tor's extension) and return its real
	 * addresses (dns_proxy.h); a hop that has no RESOLVE, and .onion,
	 * .exit, .i2p names, get fake addresses as in remote mode. At
	 * connect() names go to the last hop by name like remote: the fake
	 * table is in use, nothing is resolved on this machine. */
	SFY_DNS_PROXY,
};

/* Does mode m hand out fake addresses and pass names to the last hop
 * (remote, and proxy for what RESOLVE does not answer)? */
static inline bool sfy_dns_fakes(enum sfy_dns_mode m)
{
	return m == SFY_DNS_REMOTE || m == SFY_DNS_PROXY;
}

enum sfy_udp_mode {
	SFY_UDP_ASSOCIATE,
	SFY_UDP_BLOCK,
	SFY_UDP_DIRECT,
};

enum sfy_log_level {
	SFY_LOG_ERROR,
	SFY_LOG_WARN,
	SFY_LOG_INFO,
	SFY_LOG_DEBUG,
};

/* How a SOCKS5 hop's messages are sent: all at once (one round trip) or one
 * message per reply. auto = pipelined, falling back per proxy when a server
 * drops early bytes. */
enum sfy_pipeline {
	SFY_PIPELINE_AUTO,
	SFY_PIPELINE_ON,
	SFY_PIPELINE_OFF,
};

/* io_uring submits connects, sends and epoll_ctl inside the kernel, past
 * every hook: refused (io_uring_setup through libc's syscall() fails with
 * ENOSYS, and libuv falls back to epoll) unless the file says allow. */
enum sfy_io_uring {
	SFY_IO_URING_REFUSE,
	SFY_IO_URING_ALLOW,
};

/* What to do with a program LD_PRELOAD cannot reach (static, set-ID, file
 * capabilities, Go, another architecture): refuse to run it (the launcher
 * exits 126, an exec in the tree fails with EACCES), or run it unproxied
 * with a warning. */
enum sfy_unproxyable {
	SFY_UNPROXYABLE_REFUSE,
	SFY_UNPROXYABLE_ALLOW,
};

/* isolate: SOCKS5 username/password credentials a hop without its own
 * gets (isolate.h), so that Tor (IsolateSOCKSAuth) keeps streams of
 * different process trees, or of different connections, on different
 * circuits. none sends no credentials. */
enum sfy_isolate {
	SFY_ISOLATE_NONE,
	SFY_ISOLATE_PROCESS,
	SFY_ISOLATE_CONNECTION,
};

/* Where a rule's verdict sends a connection: a named chain (index into
 * sfy_config.chains, >= 0) or one of these. */
enum {
	SFY_VIA_TOP = -1,               /* the top-level proxies: list */
	SFY_VIA_DIRECT = -2,
	SFY_VIA_BLOCK = -3,
};

/* One named chain: its hops are chain_proxies[first, first + n). */
struct sfy_chaindef {
	char name[SFY_CHAIN_NAME_MAX + 1];
	enum sfy_chain_mode chain;
	unsigned chain_length;          /* 0 = not set (1 for random/round_robin) */
	enum sfy_dns_mode dns;          /* AUTO until sfy_config_finish(): the
					   global dns: if given, else remote when
					   the last hop resolves names */
	uint8_t first, n;
	unsigned line;                  /* in source; 0 = not from a file */
};

/* What a rule matches. */
enum sfy_rule_kind {
	SFY_RM_ANY,                     /* "*" or "*:PORT": every destination */
	SFY_RM_NAME,                    /* "host.example": exactly that name */
	SFY_RM_SUFFIX,                  /* "*.example": one or more labels left of it */
	SFY_RM_CIDR,                    /* an address or network, v4 or v6 */
};

/* Where a rule came from; also the order they are tried in (stable within
 * one origin): -r/SOCKSIFY_RULES, then no_proxy: env, then bypass:, then
 * the file's rules:. default: comes after all of them. */
enum sfy_rule_origin {
	SFY_RO_CLI,                     /* -r (launcher) or SOCKSIFY_RULES */
	SFY_RO_NOPROXY,                 /* no_proxy: env -> NO_PROXY entries */
	SFY_RO_BYPASS,                  /* bypass: (cfg->bypass, compiled as direct) */
	SFY_RO_FILE,                    /* rules: */
};

struct sfy_rule {
	uint8_t kind;                   /* enum sfy_rule_kind */
	uint8_t origin;                 /* enum sfy_rule_origin */
	int16_t via;                    /* chain index or SFY_VIA_* */
	uint16_t port_lo, port_hi;      /* inclusive; 0..65535 without a port */
	bool has_port;                  /* the rule named a port or range */
	uint32_t line;                  /* FILE: line in cfg->source; CLI: the
					   entry's position (1-based); NOPROXY:
					   the entry's position */
	uint32_t name_off;              /* NAME/SUFFIX: lower case, no trailing
					   dot, no "*." -- in rule_names */
	uint16_t name_len;
	struct sfy_cidr cidr;           /* CIDR (its port field unused: 0) */
};

struct sfy_config {
	struct sfy_proxy proxies[SFY_MAX_PROXIES];
	size_t nproxies;
	enum sfy_chain_mode chain;
	unsigned chain_length;          /* random / round_robin; 0 = not set (1) */
	enum sfy_dns_mode dns;          /* never AUTO after sfy_config_finish() */
	uint32_t fake_net;              /* IPv4 fake range, host byte order */
	uint8_t fake_prefix;
	struct sfy_cidr bypass[SFY_MAX_BYPASS];
	size_t nbypass;
	enum sfy_udp_mode udp;
	bool udp_explicit;              /* udp: given in the file */
	unsigned connect_timeout_ms;
	unsigned handshake_timeout_ms;
	enum sfy_log_level log_level;
	char log_file[PATH_MAX];        /* "" = stderr */
	enum sfy_pipeline pipeline;
	enum sfy_io_uring io_uring;
	enum sfy_unproxyable unproxyable;
	/* dns_responder: off -- remote mode leaves programs' own queries to
	 * the system nameservers to the chain as before (dnsresp.h). false,
	 * the default, means on: a zeroed configuration answers them. */
	bool dns_responder_off;
	char source[PATH_MAX];          /* config file used, "" if none */
	/* Where the proxies were written, for errors found across fields:
	 * the file and the line of each proxies: entry; "" / 0 when they came
	 * from SOCKSIFY_PROXY (or -x). */
	char proxies_file[PATH_MAX];
	unsigned proxy_line[SFY_MAX_PROXIES];
	bool insecure_perms;            /* file holds a password and is g/o-readable */

	/* chains: -- the hops of all named chains, chains[i] names a slice. */
	struct sfy_chaindef chains[SFY_MAX_CHAINS];
	size_t nchains;
	struct sfy_proxy chain_proxies[SFY_MAX_CHAIN_PROXIES];
	unsigned chain_proxy_line[SFY_MAX_CHAIN_PROXIES];
	size_t nchain_proxies;
	/* Rules of every origin in one array, on the heap (sfy_config_free);
	 * the names they match in one pool. NULL/0 when there are none. */
	struct sfy_rule *rules;
	size_t nrules;
	char *rule_names;
	size_t rule_names_len;
	/* default: -- SFY_VIA_TOP when not given (the top-level proxies). */
	int16_t default_via;
	unsigned default_line;          /* 0 = not given */
	bool no_proxy_env;              /* no_proxy: env */
	/* Warnings found by sfy_config_finish() (a command-line `*` rule
	 * shadowing the file's rules, NO_PROXY=*): one per line, without a
	 * prefix. Configuration code never logs; the launcher prints them
	 * once for the tree (the library only when run without it). */
	char warnings[SFY_ERR_MAX];
	/* isolate: -- none (zero) by default. */
	enum sfy_isolate isolate;
	/* bind: off -- no SOCKS BIND for programs' listening sockets, and
	 * getsockname() of a proxied socket is the kernel's (bind.h). false,
	 * the default, means auto: a zeroed configuration binds. */
	bool bind_off;
};

/* Defaults: strict, udp associate, connect 8s, handshake 15s, warn,
 * fake range 224.0.0.0/8, pipeline auto, dns auto, io_uring refuse. */
void sfy_config_defaults(struct sfy_config *c);

/* Frees what a configuration holds on the heap (its rules); c stays
 * usable as a configuration without rules. */
void sfy_config_free(struct sfy_config *c);

/* Reads one YAML file over *c (call sfy_config_defaults first).
 * Errors: -1 and err = "FILE:LINE: KEY: reason". */
int sfy_config_load_file(struct sfy_config *c, const char *path, char *err, size_t errcap);

/* Same, from a YAML document in memory (for tests); name is used in errors. */
int sfy_config_load_string(struct sfy_config *c, const char *yaml, size_t len,
			   const char *name, char *err, size_t errcap);

/* Replaces the chain with the URLs in list (separated by spaces or commas). */
int sfy_config_set_proxies(struct sfy_config *c, const char *list, char *err, size_t errcap);

/* One rule in the -r / SOCKSIFY_RULES spelling "MATCH=VIA" (VIA a chain
 * name already in c->chains, direct or block), appended with origin and
 * line. -1 with a one-line reason in err. */
int sfy_config_add_rule_text(struct sfy_config *c, const char *text, enum sfy_rule_origin origin,
			     uint32_t line, char *err, size_t errcap);
/* SOCKSIFY_RULES: rules separated by commas, spaces or newlines. */
int sfy_config_set_rules(struct sfy_config *c, const char *list, char *err, size_t errcap);
/* "tor" -> chain index, "direct"/"block" -> SFY_VIA_*; -4 if unknown. */
int sfy_config_via_parse(const struct sfy_config *c, const char *s);
/* Chain name, "direct", "block" or "proxies" (SFY_VIA_TOP). */
const char *sfy_config_via_name(const struct sfy_config *c, int via);

/* Word -> enum helpers shared with the launcher's -c/-d/-q/-v. -1 if bad. */
int sfy_chain_mode_parse(const char *s);
int sfy_dns_mode_parse(const char *s);
int sfy_log_level_parse(const char *s);
int sfy_unproxyable_parse(const char *s);
int sfy_isolate_parse(const char *s);
const char *sfy_chain_mode_name(enum sfy_chain_mode m);
const char *sfy_log_level_name(enum sfy_log_level l);
/* "8s", "500ms", "1m", "2" (seconds) -> milliseconds. -1 if bad. */
long sfy_duration_parse(const char *s);

/* Cross-field checks and derived values (dns AUTO -> REMOTE/LOCAL, a chain
 * is required, chain_length <= nproxies, with remote DNS no socks4 hop that
 * would have to pass the next hop's name on...). */
int sfy_config_finish(struct sfy_config *c, char *err, size_t errcap);
/* Can one connection use 2+ hops (strict/dynamic with 2+ proxies,
 * random/round_robin with chain_length 2+)? UDP then goes from this machine
 * straight to the last hop's relay, which learns the client's address: it
 * is blocked unless the file says udp: associate (a warning says so). */
bool sfy_config_multihop(const struct sfy_config *c);

/* The whole lookup both launcher and library do, from the environment:
 * SOCKSIFY_CONFIG, SOCKSIFY_PROXY (replaces the file's proxies),
 * SOCKSIFY_CHAIN, SOCKSIFY_DNS, SOCKSIFY_LOG, SOCKSIFY_UNPROXYABLE, else the search order of
 * INTERFACE.md. explicit_file overrides SOCKSIFY_CONFIG when not NULL. On
 * "no config anywhere" err names every place looked at. c must hold no
 * rules (new, or sfy_config_free'd); on error it holds none either. */
int sfy_config_from_env(struct sfy_config *c, const char *explicit_file,
			char *err, size_t errcap);
/* Whether the configuration sfy_config_from_env() would load sets
 * isolate: process or connection (false on any error). Reads the file only
 * when it has the word "isolate" at all. */
bool sfy_config_env_isolates(void);

/* The launcher's validated configuration as a sealed memfd (config_fd.c):
 * the number travels in this variable to the whole process tree. */
#define SFY_CONFIG_FD_ENV "SOCKSIFY_CONFIG_FD"
/* Writes c into a new sealed memfd (inherited across exec, fd >= 100);
 * returns the fd or a negative errno. */
int sfy_config_export_fd(const struct sfy_config *c);
/* 1 with *c filled from SOCKSIFY_CONFIG_FD, 0 when there is none (unset,
 * or the descriptor was closed), -1 with err when it is set but not a
 * sealed, well-formed configuration. */
int sfy_config_import_fd(struct sfy_config *c, char *err, size_t errcap);
/* Only the unproxyable: setting of the sealed configuration in fd, or -1:
 * a few reads, no allocation (the exec guard asks in vfork() children). */
int sfy_config_fd_unproxyable(int fd);

#endif
