/* execprobe MODE PROG [ARG...]: runs PROG through one exec entry point with
 * an environment that has lost socksify's settings, waits for it and exits
 * with its status (126 when the exec itself failed with EACCES, printing
 * the error). For the exec guard test (tests/integration/exec_guard.sh).
 *
 *   vfork      vfork() + execve() with an empty environment
 *   spawn      posix_spawn() with an empty environment
 *   spawnp     posix_spawnp() with an empty environment (PROG by name)
 *   execl      fork() + execle() with an empty environment (7 ARGs at most)
 *   fexecve    fork() + fexecve() of an O_RDONLY descriptor, empty env
 *   execveat   fork() + execveat(dirfd, relative name), empty env
 *   syscall    fork() + syscall(SYS_execve), empty env
 *   system     unsetenv LD_PRELOAD and every SOCKSIFY_*, then system(PROG)
 *   popen      the same, then popen(PROG, "r") and copy its output
 *   popen-w    the same, popen(PROG, "w") writing ARG to it
 *   bench N hook|libc PROG...
 *              N times vfork + execve(PROG) with the environment as it
 *              is, through the execve the program binds (socksify's hook
 *              when preloaded) or libc's own (dlopen'ed: no guard);
 *              prints the median microseconds per vfork+exec+wait;
 *              hook-fix: the same through the hook after unsetenv of
 *              every SOCKSIFY_* (the guard puts them back on each exec) */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
static char *empty[] = { NULL };

static int status_of(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int wait_for(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			perror("waitpid");
			return 1;
		}
	return status_of(st);
}

static void strip_env_keep_preload(void)
{
	/* unsetenv while walking environ skips entries: collect names first. */
	char names[64][128];
	int n = 0;
	for (char **e = environ; *e && n < 64; e++)
		if (!strncmp(*e, "SOCKSIFY_", 9)) {
			size_t len = strcspn(*e, "=");
			if (len < sizeof names[0]) {
				memcpy(names[n], *e, len);
				names[n++][len] = '\0';
			}
		}
	for (int i = 0; i < n; i++)
		unsetenv(names[i]);
}

static void strip_env(void)
{
	unsetenv("LD_PRELOAD");
	strip_env_keep_preload();
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

static int bench(int n, const char *how, char **argv)
{
	long *us = calloc((size_t)n, sizeof(*us));
	int (*volatile ex)(const char *, char *const[], char *const[]) = execve;
	if (!strcmp(how, "hook-fix"))
		strip_env_keep_preload();
	if (!strcmp(how, "libc")) {
		void *h = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
		ex = h ? (int (*)(const char *, char *const[], char *const[]))dlsym(h, "execve") : NULL;
		if (!ex) {
			fprintf(stderr, "bench: no libc execve\n");
			return 1;
		}
	}
	for (int i = 0; i < n; i++) {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		pid_t pid = vfork();
		if (pid == 0) {
			ex(argv[0], argv, environ);
			_exit(127);
		}
		if (wait_for(pid) != 0) {
			fprintf(stderr, "bench: %s failed\n", argv[0]);
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		us[i] = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
	}
	qsort(us, (size_t)n, sizeof(*us), cmp_long);
	printf("%ld\n", us[n / 2]);
	free(us);
	return 0;
}

int main(int argc, char **argv)
{
	pid_t pid;
	int r;

	if (argc < 3) {
		fprintf(stderr, "usage: execprobe MODE PROG [ARG...]\n");
		return 2;
	}
	const char *mode = argv[1];
	char **args = argv + 2;
	if (!strcmp(mode, "bench"))
		return argc < 5 ? 2 : bench(atoi(argv[2]), argv[3], argv + 4);
	if (!strcmp(mode, "vfork")) {
		pid = vfork();
		if (pid == 0) {
			execve(args[0], args, empty);
			_exit(errno == EACCES ? 126 : 127);
		}
		return wait_for(pid);
	}
	if (!strcmp(mode, "spawn") || !strcmp(mode, "spawnp")) {
		r = (mode[5] ? posix_spawnp : posix_spawn)(&pid, args[0], NULL, NULL, args, empty);
		if (r) {
			fprintf(stderr, "posix_spawn %s: %s\n", args[0], strerror(r));
			return r == EACCES ? 126 : 127;
		}
		return wait_for(pid);
	}
	if (!strcmp(mode, "system") || !strcmp(mode, "popen") || !strcmp(mode, "popen-w")) {
		strip_env();
		if (!strcmp(mode, "system")) {
			r = system(args[0]);
			return r < 0 ? 1 : status_of(r);
		}
		FILE *f = popen(args[0], mode[5] ? "w" : "r");
		if (!f) {
			perror("popen");
			return 1;
		}
		if (mode[5]) {
			fputs(args[1] ? args[1] : "", f);
		} else {
			char buf[4096];
			size_t n;
			while ((n = fread(buf, 1, sizeof buf, f)) > 0)
				fwrite(buf, 1, n, stdout);
		}
		r = pclose(f);
		return r < 0 ? 1 : status_of(r);
	}
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		if (!strcmp(mode, "execl")) {
			char *a[8] = { NULL };
			for (int i = 0; i < 7 && args[i + 1]; i++)
				a[i] = args[i + 1];
			execle(args[0], args[0], a[0], a[1], a[2], a[3], a[4], a[5], a[6],
			       (char *)NULL, empty);
		} else if (!strcmp(mode, "fexecve")) {
			int fd = open(args[0], O_RDONLY | O_CLOEXEC);
			fexecve(fd, args, empty);
		} else if (!strcmp(mode, "execveat")) {
			char *d = strdup(args[0]), *b = strdup(args[0]);
			int dfd = open(dirname(d), O_RDONLY | O_DIRECTORY);
			execveat(dfd, basename(b), args, empty, 0);
		} else if (!strcmp(mode, "syscall")) {
			syscall(SYS_execve, args[0], args, empty);
		} else {
			fprintf(stderr, "unknown mode %s\n", mode);
			_exit(2);
		}
		fprintf(stderr, "%s %s: %s\n", mode, args[0], strerror(errno));
		_exit(errno == EACCES ? 126 : 127);
	}
	return wait_for(pid);
}
