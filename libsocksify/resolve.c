/* Finding the command as execvp(3) would, but before exec: the launcher and
 * the exec guard inspect the very file that will run (static? setuid?), and
 * the launcher reports "not found" (127) apart from "cannot execute" (126).
 * Async-signal-safe: the guard runs it in vfork() children. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reach.h"

/* glibc's execvp uses this when PATH is unset (confstr _CS_PATH). */
#define SFY_DEFAULT_PATH "/bin:/usr/bin"

/* 0 if path is a regular file we may execute, else why execve would fail. */
static int executable(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EACCES;
	if (access(path, X_OK) < 0)
		return -errno;
	return 0;
}

static int copy_path(char out[static PATH_MAX], const char *s)
{
	size_t n = strlen(s);

	if (n >= PATH_MAX)
		return -ENAMETOOLONG;
	memcpy(out, s, n + 1);
	return 0;
}

int sfy_resolve_command(const char *cmd, char out[static PATH_MAX])
{
	const char *path, *p, *end;
	char cand[PATH_MAX];
	size_t clen = strlen(cmd);
	int r, saved = errno, denied = 0;

	if (!*cmd)
		return -ENOENT;
	if (strchr(cmd, '/')) {
		r = copy_path(out, cmd);
		r = r ? r : executable(cmd);
		errno = saved;
		return r;
	}
	path = getenv("PATH");
	if (!path)
		path = SFY_DEFAULT_PATH;
	for (p = path;; p = end + 1) {
		size_t dlen;

		end = strchr(p, ':');
		if (!end)
			end = p + strlen(p);
		dlen = (size_t)(end - p);
		/* An empty element means the current directory, as in execvp. */
		if (dlen + 1 + clen < sizeof cand) {
			memcpy(cand, p, dlen);
			if (dlen)
				cand[dlen++] = '/';
			memcpy(cand + dlen, cmd, clen + 1);
			r = executable(cand);
			if (r == 0) {
				errno = saved;
				return copy_path(out, cand);
			}
			/* Like execvp: a match we may not run is remembered, and
			 * the search goes on for a better one further along. */
			if (r != -ENOENT && r != -ENOTDIR && !denied) {
				denied = 1;
				copy_path(out, cand);
			}
		}
		if (!*end)
			break;
	}
	errno = saved;
	return denied ? -EACCES : -ENOENT;
}
