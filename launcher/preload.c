/* Where libsocksify.so is, and how it goes into LD_PRELOAD. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "launcher.h"

#ifndef SFY_LIBDIR
#define SFY_LIBDIR "/usr/local/lib/socksify"
#endif
#define SFY_LIBNAME "libsocksify.so"
/* ld.so splits LD_PRELOAD at both (glibc rtld: strsep(" :")). */
#define SFY_PRELOAD_SEPS " :"

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

/* A preloaded ASan-instrumented library needs the ASan runtime loaded
 * before it ("ASan runtime does not come first in initial library list"). */
static int is_sanitizer_runtime(const char *entry, size_t len)
{
	const char *base = entry;

	for (size_t i = 0; i < len; i++)
		if (entry[i] == '/')
			base = entry + i + 1;
	len -= (size_t)(base - entry);
	return (len >= 7 && !strncmp(base, "libasan", 7)) ||
	       (len >= 16 && !strncmp(base, "libclang_rt.asan", 16));
}

static int append(char *out, size_t cap, size_t *pos, const char *s, size_t len)
{
	size_t sep = *pos ? 1 : 0;

	if (*pos + sep + len + 1 > cap)
		return -ENAMETOOLONG;
	if (sep)
		out[(*pos)++] = ':';
	memcpy(out + *pos, s, len);
	*pos += len;
	out[*pos] = '\0';
	return 0;
}

/* pass 0: sanitizer runtimes; pass 1: everything else but lib itself. */
static int append_entries(char *out, size_t cap, size_t *pos, const char *old,
			  const char *lib, int pass)
{
	const char *p = old;

	while (*p) {
		size_t len;
		int r = 0;

		p += strspn(p, SFY_PRELOAD_SEPS);
		len = strcspn(p, SFY_PRELOAD_SEPS);
		if (!len)
			break;
		if (pass == 0 && is_sanitizer_runtime(p, len))
			r = append(out, cap, pos, p, len);
		else if (pass == 1 && !is_sanitizer_runtime(p, len) &&
			 !(strlen(lib) == len && !strncmp(p, lib, len)))
			r = append(out, cap, pos, p, len);
		if (r)
			return r;
		p += len;
	}
	return 0;
}

int sfy_preload_compose(const char *old, const char *lib, char *out, size_t cap)
{
	size_t pos = 0;
	int r;

	if (!cap)
		return -ENAMETOOLONG;
	out[0] = '\0';
	if (!old)
		old = "";
	r = append_entries(out, cap, &pos, old, lib, 0);
	if (!r)
		r = append(out, cap, &pos, lib, strlen(lib));
	if (!r)
		r = append_entries(out, cap, &pos, old, lib, 1);
	return r;
}
