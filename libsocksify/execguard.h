/* The exec guard: a proxied program's children stay proxied. Every exec the
 * program makes (hooks_exec.c, hooks_shell.c) goes through here twice:
 *  - the target is checked like the launcher checks its command (reach.h):
 *    a program LD_PRELOAD cannot reach fails with EACCES and one warn line
 *    (or runs with the warning under unproxyable: allow);
 *  - the new environment gets back what the program dropped: our library
 *    in LD_PRELOAD (sanitizer runtimes first, one copy) and every SOCKSIFY_*
 *    variable as it was when the library was loaded.
 * Both run in vfork() children and after fork() in threaded programs: the
 * strings are made at load, the hook only fills a pointer array on its own
 * stack (SFY_EXEC_ENV); nothing allocates, locks or uses stdio. */
#ifndef SFY_EXECGUARD_H
#define SFY_EXECGUARD_H

#include <stdbool.h>
#include <stddef.h>

/* 0 to go ahead, -EACCES when the target is refused (the warn line is
 * written). path_search: cmd is looked up along PATH as execvp would. */
int sfy_exec_check_path(const char *cmd, bool path_search);
/* The same for fexecve(fd) and execveat(dirfd, path, flags). */
int sfy_exec_check_fd(int fd);
int sfy_exec_check_at(int dirfd, const char *path, int flags);

/* How many pointers (NULL included) the fixed environment of envp needs,
 * and in *buflen how many bytes for a composed LD_PRELOAD entry; 0 when
 * envp already carries everything and is used as is. */
size_t sfy_exec_env_slots(char *const envp[], size_t *buflen);
/* Fills out (slots pointers) and buf (buflen bytes) with the fixed
 * environment and returns out. */
char *const *sfy_exec_env_build(char *const envp[], char **out, size_t slots,
				char *buf, size_t buflen);

/* Declares NAME: envp, or a fixed copy of it on this stack frame. */
#define SFY_EXEC_ENV(envp, name)                                                   \
	size_t name##_len = 0, name##_n = sfy_exec_env_slots((envp), &name##_len); \
	char *name##_arr[name##_n ? name##_n : 1];                                 \
	char name##_buf[name##_len ? name##_len : 1];                              \
	char *const *name = name##_n ? sfy_exec_env_build((envp), name##_arr, name##_n, \
							  name##_buf, name##_len) : (envp)

#endif
