/* socksify [OPTIONS] [--] COMMAND [ARG...]
 *
 * The launcher talks to the library only through the environment: options
 * become SOCKSIFY_* variables, the whole configuration is validated here
 * exactly as the library will load it (so a mistake is an exit 125 before
 * the program runs, not a failed connect() inside it), and the program is
 * exec'd with libsocksify.so in LD_PRELOAD -- unless the loader would not
 * honour LD_PRELOAD for it, in which case we refuse rather than let its
 * traffic go out unproxied. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fakedns.h"
#include "config.h"
#include "config_rules.h"
#include "dnsmem.h"
#include "explain.h"
#include "isolate.h"
#include "launcher.h"
#include "log.h"
#include "preload_list.h"
#include "proxy_url.h"
#include "route.h"
#include "stepwise.h"

#ifndef SFY_VERSION
#define SFY_VERSION "unknown"
#endif
#ifndef SFY_SYSCONFDIR
#define SFY_SYSCONFDIR "/usr/local/etc"
#endif

#define SFY_STR_(x) #x
#define SFY_STR(x) SFY_STR_(x)

/* SOCKSIFY_PROXY holds every hop; a URL is at most scheme, two
 * percent-encoded 255-byte credentials (x3) and a host: 2 KiB is ample. */
#define SFY_URL_MAX 2048
#define SFY_PROXY_ENV_MAX (SFY_MAX_PROXIES * SFY_URL_MAX)
/* LD_PRELOAD: a few paths at most; ld.so itself has no fixed limit. */
#define SFY_PRELOAD_MAX (8 * PATH_MAX)

enum { OPT_CHECK = 0x100, OPT_ALLOW_UNPROXYABLE, OPT_EXPLAIN };

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'f' },
	{ "proxy", required_argument, NULL, 'x' },
	{ "chain", required_argument, NULL, 'c' },
	{ "dns", required_argument, NULL, 'd' },
	{ "rule", required_argument, NULL, 'r' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "check", no_argument, NULL, OPT_CHECK },
	{ "explain", required_argument, NULL, OPT_EXPLAIN },
	{ "allow-unproxyable", no_argument, NULL, OPT_ALLOW_UNPROXYABLE },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

struct opts {
	const char *file;
	const char *proxies[SFY_MAX_PROXIES];
	size_t nproxies;
	const char *chain, *dns;
	const char **rules;     /* -r, in order (argv strings) */
	size_t nrules;
	int verbosity;          /* -1 quiet, 0 as configured, 1 info, 2+ debug */
	int check;
	const char *explain;    /* --explain HOST[:PORT] */
	int allow_unproxyable;
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: socksify [OPTIONS] [--] COMMAND [ARG...]\n"
"       socksify [OPTIONS] --check\n"
"       socksify [OPTIONS] --explain HOST[:PORT]\n"
"Run COMMAND with its TCP, UDP and DNS traffic sent through a chain of\n"
"SOCKS4/4a/5 or HTTP CONNECT proxies (via LD_PRELOAD of libsocksify.so).\n"
"\n"
"Options:\n"
"  -f, --config FILE   YAML config file (default: see search order below)\n"
"  -x, --proxy URL     proxy hop SCHEME://[USER[:PASS]@]HOST[:PORT], scheme\n"
"                      socks4, socks4a, socks5, socks5h or http; repeat for\n"
"                      a chain, in order; replaces the file's proxies\n"
"  -c, --chain MODE    strict (default), dynamic, random, round_robin\n"
"  -d, --dns MODE      remote, local or proxy (default: remote if the last\n"
"                      hop resolves names: socks5h, socks4a, http; proxy:\n"
"                      lookups ask a socks5 last hop, e.g. Tor, with RESOLVE)\n"
"  -r, --rule MATCH=VIA  a routing rule tried before SOCKSIFY_RULES, the\n"
"                      file's bypass: and rules:; repeat for more, in order.\n"
"                      MATCH: *, host, *.domain, IP or CIDR ([IPv6]), each\n"
"                      with an optional :PORT or :LO-HI; VIA: a chain of\n"
"                      the file's chains:, direct or block\n"
"  -q, --quiet         log errors only\n"
"  -v, --verbose       log more (info; twice: debug)\n"
"      --check         no command: test the chain hop by hop, exit 0 if usable\n"
"      --explain HOST[:PORT]  no command: print the rule, route and DNS mode\n"
"                      for that destination without resolving or connecting;\n"
"                      exit 0, or 1 if it is blocked (a name without a port:\n"
"                      blocked at lookup)\n"
"      --allow-unproxyable  run programs LD_PRELOAD cannot reach (static,\n"
"                      set-ID, file capabilities, Go, another architecture)\n"
"                      unproxied with a warning, here and in the whole tree,\n"
"                      instead of refusing them (config: unproxyable: allow)\n"
"  -h, --help          show this help\n"
"  -V, --version       show the version\n"
"\n"
"Environment:\n"
"  SOCKSIFY_CONFIG=FILE          config file to use (like -f)\n"
"  SOCKSIFY_PROXY=\"URL [URL...]\" the chain without a file (like -x)\n"
"  SOCKSIFY_CHAIN=MODE           like -c\n"
"  SOCKSIFY_DNS=MODE             like -d\n"
"  SOCKSIFY_RULES=\"RULE [RULE...]\" MATCH=VIA rules (like -r, after them)\n"
"  SOCKSIFY_LOG=LEVEL            error, warn, info or debug\n"
"  SOCKSIFY_UNPROXYABLE=MODE     refuse (default) or allow (like --allow-unproxyable)\n"
"\n"
"Config search order without -f, -x, SOCKSIFY_CONFIG or SOCKSIFY_PROXY:\n"
"  $XDG_CONFIG_HOME/socksify/config.yaml (default ~/.config/socksify/config.yaml)\n"
"  %s/socksify.yaml\n"
"  /etc/socksify.yaml\n"
"Never the current directory (-f ./socksify.yaml is explicit). A config that\n"
"is not a regular file, is group/world-writable or is owned by neither you\n"
"nor root is refused; -v names the file used.\n"
"\n"
"Exit status: COMMAND's own; 125 launcher or configuration error;\n"
"126 COMMAND cannot be executed (or could not be proxied); 127 not found.\n",
		SFY_SYSCONFDIR);
}

/* "socksify: MSG\n" with control bytes from the command line or a config
 * file escaped, so they cannot drive the user's terminal. */
static void print_escaped(const char *msg)
{
	char esc[SFY_ERR_MAX * 8];

	sfy_log_escape(esc, sizeof esc, msg, strlen(msg));
	fprintf(stderr, "socksify: %s\n", esc);
}

__attribute__((format(printf, 1, 2)))
static _Noreturn void die_usage(const char *fmt, ...)
{
	va_list ap;
	char msg[SFY_ERR_MAX * 2];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	print_escaped(msg);
	fputs("Try 'socksify --help' for more information.\n", stderr);
	exit(SFY_EXIT_USAGE);
}

/* A hop is checked here for a message naming the option; the list is
 * checked again as SOCKSIFY_PROXY by sfy_config_from_env(). */
static void add_proxy(struct opts *o, const char *url)
{
	struct sfy_proxy p;
	char err[SFY_ERR_MAX];

	if (o->nproxies == SFY_MAX_PROXIES)
		die_usage("too many --proxy hops (at most %s)", SFY_STR(SFY_MAX_PROXIES));
	/* SOCKSIFY_PROXY separates hops with blanks or commas. */
	if (url[strcspn(url, " \t,")])
		die_usage("--proxy: %s", "a URL cannot hold blanks or commas "
			  "(percent-encode them in USER/PASSWORD: %20, %2C)");
	if (strlen(url) >= SFY_URL_MAX)
		die_usage("--proxy: %s", "URL too long");
	if (sfy_proxy_url_parse(url, &p, err, sizeof err) < 0)
		die_usage("--proxy: %s", err);
	o->proxies[o->nproxies++] = url;
}

/* The MATCH is checked here for a message naming the option; the VIA
 * (a chain of the file) once the file is read. */
static void add_rule(struct opts *o, const char *text)
{
	struct sfy_rule r;
	char name[SFY_RULE_NAME_MAX + 1], err[SFY_ERR_MAX];
	const char *eq = strrchr(text, '=');
	size_t nlen;

	/* SOCKSIFY_RULES separates rules with blanks or commas. */
	if (text[strcspn(text, " \t\n,")])
		die_usage("-r '%s': a rule cannot hold blanks or commas", text);
	if (strlen(text) > SFY_RULE_TEXT_MAX)
		die_usage("-r '%.40s...': longer than %d bytes", text, SFY_RULE_TEXT_MAX);
	if (!eq)
		die_usage("-r '%s': expected MATCH=VIA (VIA a chain name, direct or block)", text);
	if (sfy_rule_parse_match(text, (size_t)(eq - text), &r, name, &nlen, err, sizeof err))
		die_usage("-r '%s': %s", text, err);
	if (o->nrules == SFY_MAX_RULES)
		die_usage("more than %d rules", SFY_MAX_RULES);
	const char **nr = realloc(o->rules, (o->nrules + 1) * sizeof(*nr));
	if (!nr)
		die_usage("%s", "out of memory");
	o->rules = nr;
	o->rules[o->nrules++] = text;
}

static void parse_args(struct opts *o, int argc, char **argv)
{
	int c;

	opterr = 0;
	/* '+': stop at the first non-option, so "socksify curl -v" gives -v to
	 * curl; ':' first: report a missing argument as ':'. */
	while ((c = getopt_long(argc, argv, "+:f:x:c:d:r:qvhV", long_opts, NULL)) != -1) {
		switch (c) {
		case 'f': o->file = optarg; break;
		case 'x': add_proxy(o, optarg); break;
		case 'c':
			if (sfy_chain_mode_parse(optarg) < 0)
				die_usage("bad chain mode '%s' (strict, dynamic, random, "
					  "round_robin)", optarg);
			o->chain = optarg;
			break;
		case 'd':
			if (sfy_dns_mode_parse(optarg) < 0)
				die_usage("bad DNS mode '%s' (remote, local, proxy)", optarg);
			o->dns = optarg;
			break;
		case 'r': add_rule(o, optarg); break;
		case 'q': o->verbosity = -1; break;
		case 'v': o->verbosity = o->verbosity < 0 ? 1 : o->verbosity + 1; break;
		case OPT_CHECK: o->check = 1; break;
		case OPT_EXPLAIN: o->explain = optarg; break;
		case OPT_ALLOW_UNPROXYABLE: o->allow_unproxyable = 1; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("socksify %s\n", SFY_VERSION); exit(0);
		case ':': die_usage("option '%s' needs an argument", argv[optind - 1]);
		default:
			if (optopt) {
				char s[3] = { '-', (char)optopt, '\0' };
				die_usage("unknown option '%s'", s);
			}
			die_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (o->check && optind < argc)
		die_usage("--check takes no command (got '%s')", argv[optind]);
	if (o->explain && (optind < argc || o->check))
		die_usage("--explain takes no command (got '%s')",
			  optind < argc ? argv[optind] : "--check");
	if (!o->check && !o->explain && optind == argc)
		die_usage("%s", "no command given");
}

static void set_env(const char *name, const char *value)
{
	if (setenv(name, value, 1) < 0) {
		fprintf(stderr, "socksify: setenv %s: %s\n", name, strerror(errno));
		exit(SFY_EXIT_USAGE);
	}
}

/* Options -> SOCKSIFY_* before validation, so that what is validated is
 * exactly what the library will read. */
static void export_options(const struct opts *o)
{
	static char list[SFY_PROXY_ENV_MAX];
	size_t pos = 0;

	for (size_t i = 0; i < o->nproxies; i++)
		pos += (size_t)snprintf(list + pos, sizeof list - pos, "%s%s",
					i ? " " : "", o->proxies[i]);
	if (o->nproxies)
		set_env("SOCKSIFY_PROXY", list);
	if (o->chain)
		set_env("SOCKSIFY_CHAIN", o->chain);
	if (o->dns)
		set_env("SOCKSIFY_DNS", o->dns);
	if (o->allow_unproxyable)
		set_env("SOCKSIFY_UNPROXYABLE", "allow");
	/* -r rules first, then those already in SOCKSIFY_RULES: the command
	 * line is the most specific wish. */
	if (o->nrules) {
		const char *old = getenv("SOCKSIFY_RULES");
		size_t len = old ? strlen(old) + 1 : 0;
		for (size_t i = 0; i < o->nrules; i++)
			len += strlen(o->rules[i]) + 1;
		char *all = malloc(len + 1);
		if (!all)
			die_usage("%s", "out of memory");
		size_t at = 0;
		for (size_t i = 0; i < o->nrules; i++)
			at += (size_t)sprintf(all + at, "%s%s", i ? " " : "", o->rules[i]);
		if (old && *old)
			sprintf(all + at, " %s", old);
		set_env("SOCKSIFY_RULES", all);
		free(all);
	}
	/* An explicit SOCKSIFY_LOG is kept unless -q/-v says otherwise. */
	if (o->verbosity)
		set_env("SOCKSIFY_LOG", sfy_log_level_name(o->verbosity < 0 ? SFY_LOG_ERROR
							   : o->verbosity == 1 ? SFY_LOG_INFO
							   : SFY_LOG_DEBUG));
}

/* The library may run in another cwd (the program may chdir before its
 * first connect), so it gets the validated file by absolute path. */
static void export_config_path(const char *source)
{
	char abs[PATH_MAX], cwd[PATH_MAX];

	if (!*source)
		return;
	if (realpath(source, abs)) {
		set_env("SOCKSIFY_CONFIG", abs);
	} else if (source[0] == '/' || !getcwd(cwd, sizeof cwd)) {
		set_env("SOCKSIFY_CONFIG", source);
	} else if (snprintf(abs, sizeof abs, "%s/%s", cwd, source) < (int)sizeof abs) {
		set_env("SOCKSIFY_CONFIG", abs);
	} else {
		fprintf(stderr, "socksify: %s: %s\n", source, strerror(ENAMETOOLONG));
		exit(SFY_EXIT_USAGE);
	}
}

/* The configuration names SOCKSIFY_RULES entries; the first o->nrules of
 * them are this command line's -r rules, named as the user wrote them:
 * "SOCKSIFY_RULES entry 2 (TEXT)" -> "-r 'TEXT'". */
static void name_cli_rules(const struct opts *o, const char *in, char *out, size_t cap)
{
	static const char pre[] = "SOCKSIFY_RULES entry ";
	size_t w = 0;

	while (*in && w + 1 < cap) {
		unsigned long n;
		const char *p = in + sizeof pre - 1, *end;
		if (strncmp(in, pre, sizeof pre - 1) || (n = strtoul(p, (char **)&end, 10)) < 1 ||
		    n > o->nrules || end == p || strncmp(end, " (", 2)) {
			out[w++] = *in++;
			continue;
		}
		const char *t = o->rules[n - 1], *close;
		size_t tl = strlen(t);
		end += 2;
		/* As written, or as the configuration formats it. */
		if (!strncmp(end, t, tl) && end[tl] == ')')
			close = end + tl;
		else if (!(close = strchr(end, ')'))) {
			out[w++] = *in++;
			continue;
		}
		w += (size_t)snprintf(out + w, cap - w, "-r '%s'", t);
		if (w >= cap)
			w = cap - 1;
		in = close + 1;
	}
	out[w] = '\0';
}

static void load_config(struct sfy_config *cfg, const struct opts *o)
{
	char err[SFY_ERR_MAX], msg[SFY_ERR_MAX * 2];

	if (sfy_config_from_env(cfg, o->file, err, sizeof err) < 0) {
		name_cli_rules(o, err, msg, sizeof msg);
		print_escaped(msg);
		exit(SFY_EXIT_USAGE);
	}
	/* Found by the configuration, said once here for the whole tree. */
	for (const char *l = cfg->warnings; *l && cfg->log_level >= SFY_LOG_WARN;) {
		size_t n = strcspn(l, "\n");
		char line[SFY_ERR_MAX];
		snprintf(line, sizeof line, "%.*s", (int)n, l);
		name_cli_rules(o, line, msg, sizeof msg);
		char esc[SFY_ERR_MAX * 8];
		sfy_log_escape(esc, sizeof esc, msg, strlen(msg));
		fprintf(stderr, "socksify: warning: %s\n", esc);
		l += n + (l[n] == '\n');
	}
	if (cfg->insecure_perms && cfg->log_level >= SFY_LOG_WARN)
		fprintf(stderr, "socksify: warning: %s holds a password and is readable "
			"by group/others (chmod 600 %s)\n", cfg->source, cfg->source);
	if (sfy_config_multihop(cfg) && cfg->udp == SFY_UDP_ASSOCIATE && cfg->log_level >= SFY_LOG_WARN)
		fprintf(stderr, "socksify: warning: udp: associate with a chain of 2+ hops: "
			"datagrams go straight to the last hop's relay, which sees this "
			"machine's address\n");
	export_config_path(cfg->source);
	if (cfg->log_level >= SFY_LOG_INFO) {
		char hop[SFY_URL_MAX];

		fprintf(stderr, "socksify: config %s, chain %s:",
			*cfg->source ? cfg->source : "(environment)",
			sfy_chain_mode_name(cfg->chain));
		for (size_t i = 0; i < cfg->nproxies; i++) {
			sfy_proxy_format(&cfg->proxies[i], hop, sizeof hop);
			fprintf(stderr, " %s", hop);
		}
		fputc('\n', stderr);
	}
}

static void set_preload(void)
{
	static char value[SFY_PRELOAD_MAX];
	char lib[PATH_MAX], tried[2 * PATH_MAX + 8];

	if (sfy_find_library(lib, tried, sizeof tried) < 0) {
		fprintf(stderr, "socksify: cannot find libsocksify.so (looked for %s)\n", tried);
		exit(SFY_EXIT_USAGE);
	}
	if (sfy_preload_compose(getenv("LD_PRELOAD"), lib, false, value, sizeof value) < 0) {
		fprintf(stderr, "socksify: LD_PRELOAD too long\n");
		exit(SFY_EXIT_USAGE);
	}
	set_env("LD_PRELOAD", value);
}

/* The same words as the library's exec guard (execguard.c). Refused: exit
 * 126; allowed by unproxyable: allow: a warning, and the program runs. */
static void unproxyable(const struct sfy_config *cfg, const char *cmd,
			const struct sfy_reach_result *r)
{
	char via[PATH_MAX + 32] = "";
	bool allow = cfg->unproxyable == SFY_UNPROXYABLE_ALLOW;

	if (r->by_interp)
		snprintf(via, sizeof via, "its interpreter %s is ", r->interp);
	if (allow) {
		if (cfg->log_level >= SFY_LOG_WARN)
			fprintf(stderr, "socksify: warning: %s: %s%s; running it UNPROXIED "
				"(unproxyable: allow)\n", cmd, via, sfy_reach_reason(r->why));
		return;
	}
	fprintf(stderr, "socksify: %s: %s%s, its traffic would NOT be proxied "
		"(--allow-unproxyable runs it anyway)\n", cmd, via, sfy_reach_reason(r->why));
	exit(SFY_EXIT_NOEXEC);
}

static _Noreturn void run(const struct sfy_config *cfg, char **argv)
{
	char path[PATH_MAX];
	struct sfy_reach_result why;
	int r, e;

	r = sfy_resolve_command(argv[0], path);
	if (r == -ENOENT && !strchr(argv[0], '/')) {
		fprintf(stderr, "socksify: %s: command not found\n", argv[0]);
		exit(SFY_EXIT_NOTFOUND);
	}
	if (r < 0) {
		fprintf(stderr, "socksify: %s: %s\n", argv[0], strerror(-r));
		exit(r == -ENOENT || r == -ENOTDIR ? SFY_EXIT_NOTFOUND : SFY_EXIT_NOEXEC);
	}
	sfy_reach_init();
	sfy_reach_check(path, &why);
	if (why.why != SFY_REACH_OK)
		unproxyable(cfg, argv[0], &why);
	set_preload();
	execv(path, argv);
	e = errno;
	/* As execvp: a file without "#!" that the kernel will not run is a
	 * shell script -- unless it is ELF (wrong machine, say). */
	if (e == ENOEXEC) {
		FILE *f = fopen(path, "re");
		int elf = f && sfy_is_elf(fileno(f));

		if (f)
			fclose(f);
		if (!elf) {
			size_t n = 0;
			char **sh;

			while (argv[n])
				n++;
			sh = calloc(n + 2, sizeof *sh);
			if (sh) {
				sh[0] = (char *)"/bin/sh";
				sh[1] = path;
				memcpy(sh + 2, argv + 1, n * sizeof *sh);
				execv("/bin/sh", sh);
				free(sh);
			}
		}
	}
	fprintf(stderr, "socksify: %s: %s\n", argv[0], strerror(e));
	exit(e == ENOENT ? SFY_EXIT_NOTFOUND : SFY_EXIT_NOEXEC);
}

/* Can a name be resolved on this machine under the rules, so that the
 * names behind addresses matter (dnsmem.h)? When some rule matches names
 * and some route resolves locally: a direct rule or default, or a chain
 * (the top-level one included) in local-DNS mode. */
static bool names_resolved_locally(const struct sfy_config *cfg)
{
	/* dns: proxy answers with real addresses too (dns_proxy.h). */
	bool names = false, local = cfg->default_via == SFY_VIA_DIRECT || cfg->dns == SFY_DNS_LOCAL ||
				    cfg->dns == SFY_DNS_PROXY;
	for (size_t i = 0; i < cfg->nrules; i++) {
		names |= cfg->rules[i].kind == SFY_RM_NAME || cfg->rules[i].kind == SFY_RM_SUFFIX;
		local |= cfg->rules[i].via == SFY_VIA_DIRECT;
	}
	for (size_t i = 0; i < cfg->nchains; i++)
		local |= cfg->chains[i].dns == SFY_DNS_LOCAL || cfg->chains[i].dns == SFY_DNS_PROXY;
	return names && local;
}

/* The fake-DNS table when any route resolves names remotely, and the
 * table of names local DNS answers gave when rules route by name. */
static void prepare_dns_tables(const struct sfy_config *cfg)
{
	char err[SFY_ERR_MAX];
	struct sfy_routes *rt = sfy_routes_build(cfg, err, sizeof(err));
	bool remote = rt ? sfy_routes_remote(rt) : sfy_dns_fakes(cfg->dns);
	sfy_routes_free(rt);
	/* Local-DNS chains hand out fake addresses only for .onion/.exit/.i2p
	 * names: a process that looks one up makes its table then, and shares
	 * it with its children (fakedns.h), as without the launcher. */
	if (remote) {
		sfy_fakedns_configure(cfg->fake_net, cfg->fake_prefix);
		if (sfy_fakedns_export_fd() < 0)
			fprintf(stderr, "socksify: warning: cannot create the shared fake-DNS "
				"table; each process will have its own\n");
	}
	if (names_resolved_locally(cfg)) {
		/* Any failure: sfy_dnsmem_export_fd() says none apart (-ENOSYS). */
		if (sfy_dnsmem_export_fd() < 0)
			fprintf(stderr, "socksify: warning: cannot create the shared table of "
				"local DNS answers; each process will have its own\n");
	}
}

/* State the whole process tree shares, created here so that every process
 * of the tree inherits the same one: the remote-DNS table (a memfd whose
 * number travels in SOCKSIFY_FAKEDNS_FD) and what is known about the
 * proxies' handling of pipelined SOCKS5 (SOCKSIFY_PROXYSTATE_FD), filled
 * from the user's cache here, once for the tree. */
static void prepare_tree(const struct sfy_config *cfg)
{
	bool pipelining = false;

	/* The configuration exactly as validated, so that no process of the
	 * tree parses the file again (and a privilege drop cannot make it
	 * unreadable). Without it each process loads the file itself. */
	char num[16];
	int cfd = sfy_config_export_fd(cfg);
	if (cfd >= 0) {
		snprintf(num, sizeof num, "%d", cfd);
		set_env(SFY_CONFIG_FD_ENV, num);
	} else {
		unsetenv(SFY_CONFIG_FD_ENV);
		fprintf(stderr, "socksify: warning: cannot pass the configuration down (%s); "
			"each process will read it again\n", strerror(-cfd));
	}
	prepare_dns_tables(cfg);
	/* isolate: a fresh token: this tree's processes share it, and no
	 * other tree has it (a nested socksify is a tree of its own). */
	if (cfg->isolate != SFY_ISOLATE_NONE) {
		if (sfy_isolate_export() < 0)
			fprintf(stderr, "socksify: warning: cannot pass the isolation token down; "
				"each process will use its own\n");
	} else {
		unsetenv(SFY_ISOLATE_ENV);
	}
	/* Left by an older socksify around us: its bits indexed that config's
	 * proxies, and nothing reads it any more. */
	unsetenv("SOCKSIFY_STEPWISE");
	for (size_t i = 0; i < cfg->nproxies; i++)
		pipelining |= cfg->proxies[i].proto == SFY_PROTO_SOCKS5 ||
			      cfg->proxies[i].proto == SFY_PROTO_SOCKS5H;
	/* Without it each process learns for itself (and from the cache). */
	if (pipelining && cfg->pipeline == SFY_PIPELINE_AUTO)
		(void)sfy_stepwise_export(cfg);
}

int main(int argc, char **argv)
{
	static struct sfy_config cfg;       /* ~30 KiB: off the stack */
	struct opts o = { 0 };

	parse_args(&o, argc, argv);
	export_options(&o);
	load_config(&cfg, &o);
	if (o.check)
		return sfy_check(&cfg);
	if (o.explain)
		return sfy_explain(&cfg, o.explain);
	prepare_tree(&cfg);
	run(&cfg, argv + optind);
}
