/* The launcher's own pieces (not part of the library): finding the command
 * the way execvp would, refusing programs LD_PRELOAD cannot reach, and
 * composing LD_PRELOAD. Errors are negative errno; messages are printed by
 * main.c only. */
#ifndef SFY_LAUNCHER_H
#define SFY_LAUNCHER_H

#include <limits.h>
#include <stddef.h>

/* The launcher's exit statuses (the env(1)/nohup(1) convention). */
#define SFY_EXIT_USAGE   125    /* launcher or configuration error */
#define SFY_EXIT_NOEXEC  126    /* found but cannot be executed */
#define SFY_EXIT_NOTFOUND 127   /* command not found */

/* resolve.c: cmd -> path as execvp(3) would pick it: a name with '/' as
 * is, else the first executable regular file along PATH (default
 * "/bin:/usr/bin", as glibc). 0 on success; -ENOENT not found; -EACCES,
 * -EISDIR, -ENAMETOOLONG ... found but not executable. */
int sfy_resolve_command(const char *cmd, char out[static PATH_MAX]);

/* elfcheck.c: why the dynamic loader would not preload us into path. */
enum sfy_reach {
	SFY_REACH_OK,           /* dynamically linked, or not ELF: let exec decide */
	SFY_REACH_STATIC,       /* ELF executable without PT_INTERP */
	SFY_REACH_STATIC_INTERP,/* "#!" script whose interpreter is static */
	SFY_REACH_SETID,        /* set-user/group-ID: secure-execution mode */
	SFY_REACH_FILECAPS,     /* file capabilities while not root */
};

/* Classifies path (already resolved). For SFY_REACH_STATIC_INTERP the
 * interpreter's path is written to interp. Never fails: what cannot be
 * read or parsed is SFY_REACH_OK and left for execve() to judge. */
enum sfy_reach sfy_reach_check(const char *path, char interp[static PATH_MAX]);

/* 1 if fd holds an ELF executable with no PT_INTERP, 0 if it has one, is
 * not ELF or is not an executable/shared object, -errno on read errors. */
int sfy_elf_is_static(int fd);
/* 1 if fd starts with "\x7fELF". */
int sfy_is_elf(int fd);

/* preload.c: the absolute path of libsocksify.so beside /proc/self/exe,
 * else under SFY_LIBDIR. -ENOENT with both places in tried. */
int sfy_find_library(char out[static PATH_MAX], char *tried, size_t triedcap);

/* New LD_PRELOAD value: sanitizer runtimes from old first, then lib, then
 * the rest of old in order (lib itself dropped from old). Entries may be
 * separated by ':' or blanks, as ld.so accepts; the result uses ':'.
 * -ENAMETOOLONG if it does not fit. */
int sfy_preload_compose(const char *old, const char *lib, char *out, size_t cap);

#endif
