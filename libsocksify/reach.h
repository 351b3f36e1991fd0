/* Could LD_PRELOAD reach the program a path or descriptor would exec? Shared
 * by the launcher (exit 126 with the reason) and the library's exec guard
 * (EACCES and one warn line): the same programs are refused with the same
 * words. Everything here is async-signal-safe -- the guard runs it in
 * vfork() children and after fork() in threaded programs: no malloc, no
 * locks, no stdio, a few reads into stack buffers. */
#ifndef SFY_REACH_H
#define SFY_REACH_H

#include <limits.h>
#include <stdbool.h>

enum sfy_reach {
	SFY_REACH_OK,           /* dynamically linked for our loader, or not ELF:
				   let exec decide */
	SFY_REACH_STATIC,       /* ELF executable without PT_INTERP */
	SFY_REACH_SETID,        /* set-user/group-ID: secure-execution mode */
	SFY_REACH_FILECAPS,     /* file capabilities while not root */
	SFY_REACH_GO,           /* Go: makes its own system calls */
	SFY_REACH_FOREIGN,      /* another ELF class/byte order/machine, or an
				   ELF interpreter that is not our loader */
};

/* What the check found: why, and whether it was the "#!" interpreter
 * (named in interp) rather than the file itself. */
struct sfy_reach_result {
	enum sfy_reach why;
	bool by_interp;
	char interp[PATH_MAX];
};

/* Learns this process's own ELF class, byte order, machine and loader (the
 * main program's PT_INTERP). Call once before any check, outside any exec
 * path (it uses dl_iterate_phdr); without it the class/loader test is off. */
void sfy_reach_init(void);

/* Classifies path (already resolved). Never fails: what cannot be read or
 * parsed is SFY_REACH_OK and left for execve() to judge. One level of "#!"
 * is followed: the interpreter gets the same checks. */
void sfy_reach_check(const char *path, struct sfy_reach_result *r);
/* The same for an open descriptor (fexecve, execveat with AT_EMPTY_PATH);
 * an O_PATH descriptor is reopened through /proc/self/fd. */
void sfy_reach_check_fd(int fd, struct sfy_reach_result *r);

/* One phrase for the reason, "statically linked: LD_PRELOAD cannot reach
 * it" -- the launcher and the guard print the same. */
const char *sfy_reach_reason(enum sfy_reach why);

/* 1 if fd starts with "\x7fELF". */
int sfy_is_elf(int fd);

/* cmd -> path as execvp(3) would pick it: a name with '/' as is, else the
 * first executable regular file along PATH (default "/bin:/usr/bin", as
 * glibc). 0 on success; -ENOENT not found; -EACCES, -EISDIR,
 * -ENAMETOOLONG ... found but not executable. Async-signal-safe. */
int sfy_resolve_command(const char *cmd, char out[static PATH_MAX]);

#endif
