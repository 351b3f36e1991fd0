/* Where libsocksify.so is (preload_list.c puts it into LD_PRELOAD). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "launcher.h"
#include "preload_list.h"

#ifndef SFY_LIBDIR
#define SFY_LIBDIR "/usr/local/lib/socksify"
#endif

static int beside_self(char out[static PATH_MAX])
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	char *slash;

	if (n <= 0)
		return -errno;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	if (snprintf(out, PATH_MAX, "%s/%s", exe, SFY_LIBNAME) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int sfy_find_library(char out[static PATH_MAX], char *tried, size_t triedcap)
{
	char self[PATH_MAX] = "";

	/* An uninstalled build/socksify uses the build/libsocksify.so next to
	 * it; an installed one finds it in $(LIBDIR). */
	if (beside_self(self) == 0 && access(self, R_OK) == 0) {
		memcpy(out, self, strlen(self) + 1);
		return 0;
	}
	snprintf(out, PATH_MAX, "%s/%s", SFY_LIBDIR, SFY_LIBNAME);
	if (access(out, R_OK) == 0)
		return 0;
	snprintf(tried, triedcap, "%s%s%s", self, *self ? ", " : "", out);
	return -ENOENT;
}
