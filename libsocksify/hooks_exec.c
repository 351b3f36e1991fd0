/* The exec family: glibc's execv, the execl family and execvp call its
 * internal __execve, which no preload can reach, so every entry point is
 * interposed here.
 * Each one checks the target (refused: -1/EACCES, or the posix_spawn error
 * number) and execs with the fixed environment (execguard.h) through the
 * real execve/execvpe/fexecve/execveat/posix_spawn. These run in vfork()
 * children: the argument and environment arrays live on this stack,
 * nothing is allocated. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "execguard.h"
#include "real.h"
#include "sfy.h"

static int do_execve(const char *path, char *const argv[], char *const envp[])
{
	if (sfy_exec_check_path(path, false) < 0) {
		errno = EACCES;
		return -1;
	}
	SFY_EXEC_ENV(envp, env);
	return sfy_real()->execve(path, argv, env);
}

static int do_execvpe(const char *file, char *const argv[], char *const envp[])
{
	if (sfy_exec_check_path(file, true) < 0) {
		errno = EACCES;
		return -1;
	}
	SFY_EXEC_ENV(envp, env);
	return sfy_real()->execvpe(file, argv, env);
}

SFY_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	return do_execve(path, argv, envp);
}

SFY_EXPORT int execv(const char *path, char *const argv[])
{
	return do_execve(path, argv, environ);
}

SFY_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	return do_execvpe(file, argv, envp);
}

SFY_EXPORT int execvp(const char *file, char *const argv[])
{
	return do_execvpe(file, argv, environ);
}

/* The execl* argument lists become an argv on this stack. */
#define LIST_ARGV(arg, last, argv, extra)                                    \
	size_t argv##_n = 1;                                                 \
	va_list argv##_ap;                                                   \
	va_start(argv##_ap, last);                                           \
	while (va_arg(argv##_ap, const char *))                              \
		argv##_n++;                                                  \
	va_end(argv##_ap);                                                   \
	char *argv[argv##_n + 1];                                            \
	argv[0] = (char *)(arg);                                             \
	va_start(argv##_ap, last);                                           \
	for (size_t i_ = 1; i_ <= argv##_n; i_++)                            \
		argv[i_] = i_ < argv##_n ? va_arg(argv##_ap, char *) : NULL; \
	(void)va_arg(argv##_ap, char *);                                     \
	extra;                                                               \
	va_end(argv##_ap)

SFY_EXPORT int execl(const char *path, const char *arg, ...)
{
	LIST_ARGV(arg, arg, argv, (void)0);
	return do_execve(path, argv, environ);
}

SFY_EXPORT int execlp(const char *file, const char *arg, ...)
{
	LIST_ARGV(arg, arg, argv, (void)0);
	return do_execvpe(file, argv, environ);
}

SFY_EXPORT int execle(const char *path, const char *arg, ...)
{
	char *const *envp;
	LIST_ARGV(arg, arg, argv, envp = va_arg(argv_ap, char *const *));
	return do_execve(path, argv, envp);
}

SFY_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	if (sfy_exec_check_fd(fd) < 0) {
		errno = EACCES;
		return -1;
	}
	SFY_EXEC_ENV(envp, env);
	return sfy_real()->fexecve(fd, argv, env);
}

SFY_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
			int flags)
{
	if (sfy_exec_check_at(dirfd, path, flags) < 0) {
		errno = EACCES;
		return -1;
	}
	SFY_EXEC_ENV(envp, env);
	if (sfy_real()->execveat)
		return sfy_real()->execveat(dirfd, path, argv, env, flags);
	return (int)sfy_real()->syscall(SYS_execveat, dirfd, path, argv, env, flags);
}

/* posix_spawn runs in the parent until the child has exec'd (CLONE_VFORK),
 * so the fixed environment on this stack outlives the child's use of it. */
SFY_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			   const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	if (sfy_exec_check_path(path, false) < 0)
		return EACCES;
	SFY_EXEC_ENV(envp, env);
	return sfy_real()->posix_spawn(pid, path, fa, attr, argv, env);
}

SFY_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	if (sfy_exec_check_path(file, true) < 0)
		return EACCES;
	SFY_EXEC_ENV(envp, env);
	return sfy_real()->posix_spawnp(pid, file, fa, attr, argv, env);
}
