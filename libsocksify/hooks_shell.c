/* system() and popen(): glibc starts their shell through its internal
 * posix_spawn, past every hook, with the program's environ. While environ
 * carries our settings the shell is proxied (and its own execs guarded),
 * so the real functions run. Only when the program removed them do we run
 * the shell ourselves, with glibc's semantics and the fixed environment:
 *  - system(): SIGINT and SIGQUIT ignored and SIGCHLD blocked in the caller
 *    while it waits (counted, so concurrent calls restore them once), the
 *    child with the caller's mask and those two signals back to default,
 *    cancellation kills and reaps the child, system(NULL) asks the real one;
 *  - popen(): a pipe to the shell's stdin or stdout, "e" for close-on-exec,
 *    the other popen() streams closed in the child; pclose() knows which
 *    streams are ours and waits for their shell, and hands every other
 *    stream to the real pclose(). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "execguard.h"
#include "real.h"
#include "sfy.h"

#define SHELL_PATH "/bin/sh"

static bool settings_missing(void)
{
	size_t buflen;
	return sfy_exec_env_slots(environ, &buflen) != 0;
}

/* ------------------------------------------------------------ system */

static pthread_mutex_t sys_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned sys_refs;
static struct sigaction sys_intr, sys_quit;

static void signals_restore(void)
{
	pthread_mutex_lock(&sys_lock);
	if (--sys_refs == 0) {
		sigaction(SIGINT, &sys_intr, NULL);
		sigaction(SIGQUIT, &sys_quit, NULL);
	}
	pthread_mutex_unlock(&sys_lock);
}

struct sys_wait {
	pid_t pid;
	sigset_t omask;
};

/* Cancelled while waiting: the child dies with the call, as in glibc. */
static void sys_cancel(void *arg)
{
	struct sys_wait *w = arg;
	kill(w->pid, SIGKILL);
	while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
		;
	signals_restore();
	sigprocmask(SIG_SETMASK, &w->omask, NULL);
}

static int own_system(const char *cmd)
{
	struct sigaction ign = { .sa_handler = SIG_IGN };
	struct sys_wait w;
	sigset_t chld, reset;
	posix_spawnattr_t attr;
	char *argv[] = { (char *)"sh", (char *)"-c", (char *)"--", (char *)cmd, NULL };
	int status = -1, r, saved;

	sigemptyset(&ign.sa_mask);
	pthread_mutex_lock(&sys_lock);
	if (sys_refs++ == 0) {
		sigaction(SIGINT, &ign, &sys_intr);
		sigaction(SIGQUIT, &ign, &sys_quit);
	}
	pthread_mutex_unlock(&sys_lock);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &w.omask);
	sigemptyset(&reset);
	if (sys_intr.sa_handler != SIG_IGN)
		sigaddset(&reset, SIGINT);
	if (sys_quit.sa_handler != SIG_IGN)
		sigaddset(&reset, SIGQUIT);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &w.omask);
	posix_spawnattr_setsigdefault(&attr, &reset);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	{
		SFY_EXEC_ENV(environ, env);
		r = sfy_real()->posix_spawn(&w.pid, SHELL_PATH, NULL, &attr, argv, env);
	}
	posix_spawnattr_destroy(&attr);
	if (r == 0) {
		int old;
		pthread_cleanup_push(sys_cancel, &w);
		pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &old);
		while (waitpid(w.pid, &status, 0) < 0) {
			if (errno != EINTR) {
				status = -1;
				break;
			}
			pthread_testcancel();
		}
		pthread_cleanup_pop(0);
	} else {
		status = 127 << 8;      /* as if the shell exited 127 */
	}
	saved = errno;
	signals_restore();
	sigprocmask(SIG_SETMASK, &w.omask, NULL);
	errno = r ? r : saved;
	return status;
}

SFY_EXPORT int system(const char *cmd)
{
	if (!cmd || !settings_missing())
		return sfy_real()->system(cmd);
	pthread_testcancel();
	return own_system(cmd);
}

/* ------------------------------------------------------------ popen */

struct stream {
	FILE *f;
	int fd;
	pid_t pid;
	struct stream *next;
};

static pthread_mutex_t pop_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stream *streams;

static FILE *own_popen(const char *cmd, const char *mode)
{
	bool reading = mode[0] == 'r', cloexec = strchr(mode + 1, 'e') != NULL;
	char *argv[] = { (char *)"sh", (char *)"-c", (char *)"--", (char *)cmd, NULL };
	posix_spawn_file_actions_t fa;
	struct stream *s;
	int p[2], mine, theirs, target = reading ? 1 : 0, r;

	if ((mode[0] != 'r' && mode[0] != 'w') || strspn(mode + 1, "e") != strlen(mode + 1)) {
		errno = EINVAL;
		return NULL;
	}
	if (!(s = malloc(sizeof(*s))))
		return NULL;
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(s);
		return NULL;
	}
	mine = reading ? p[0] : p[1];
	theirs = reading ? p[1] : p[0];
	posix_spawn_file_actions_init(&fa);
	/* dup2 onto itself would keep close-on-exec: move it away first. */
	if (theirs == target) {
		int t = fcntl(theirs, F_DUPFD_CLOEXEC, 3);
		sfy_real()->close(theirs);
		theirs = t;
	}
	r = theirs < 0 ? errno : posix_spawn_file_actions_adddup2(&fa, theirs, target);
	pthread_mutex_lock(&pop_lock);
	/* POSIX: the streams of earlier popen() calls are closed in the child. */
	for (struct stream *o = streams; o && !r; o = o->next)
		if (o->fd != target)
			r = posix_spawn_file_actions_addclose(&fa, o->fd);
	if (!r) {
		SFY_EXEC_ENV(environ, env);
		r = sfy_real()->posix_spawn(&s->pid, SHELL_PATH, &fa, NULL, argv, env);
	}
	posix_spawn_file_actions_destroy(&fa);
	if (theirs >= 0)
		sfy_real()->close(theirs);
	if (!r && !cloexec)
		fcntl(mine, F_SETFD, 0);
	if (!r && !(s->f = fdopen(mine, reading ? "r" : "w"))) {
		r = errno;
		kill(s->pid, SIGKILL);
		while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (r) {
		pthread_mutex_unlock(&pop_lock);
		sfy_real()->close(mine);
		free(s);
		errno = r;
		return NULL;
	}
	s->fd = mine;
	s->next = streams;
	streams = s;
	pthread_mutex_unlock(&pop_lock);
	return s->f;
}

SFY_EXPORT FILE *popen(const char *cmd, const char *mode)
{
	if (!cmd || !mode || !settings_missing())
		return sfy_real()->popen(cmd, mode);
	return own_popen(cmd, mode);
}

SFY_EXPORT int pclose(FILE *f)
{
	struct stream *s = NULL;
	int status;

	pthread_mutex_lock(&pop_lock);
	for (struct stream **p = &streams; *p; p = &(*p)->next)
		if ((*p)->f == f) {
			s = *p;
			*p = s->next;
			break;
		}
	pthread_mutex_unlock(&pop_lock);
	if (!s)
		return sfy_real()->pclose(f);
	fclose(f);
	while (waitpid(s->pid, &status, 0) < 0)
		if (errno != EINTR) {
			status = -1;
			break;
		}
	free(s);
	return status;
}
