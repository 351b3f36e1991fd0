/* How libsocksify.so goes into LD_PRELOAD: sanitizer runtimes first (a
 * preloaded ASan-instrumented library needs the ASan runtime loaded before
 * it: "ASan runtime does not come first in initial library list"), then
 * ours, then whatever else was there, never two copies of ours. */
#include <errno.h>
#include <string.h>

#include "preload_list.h"

/* ld.so splits LD_PRELOAD at both (glibc rtld: strsep(" :")). */
#define SFY_PRELOAD_SEPS " :"

static const char *base(const char *entry, size_t *len)
{
	const char *b = entry;

	for (size_t i = 0; i < *len; i++)
		if (entry[i] == '/')
			b = entry + i + 1;
	*len -= (size_t)(b - entry);
	return b;
}

static bool is_sanitizer_runtime(const char *entry, size_t len)
{
	const char *b = base(entry, &len);

	return (len >= 7 && !strncmp(b, "libasan", 7)) ||
	       (len >= 16 && !strncmp(b, "libclang_rt.asan", 16));
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

int sfy_preload_compose(const char *old, const char *lib, bool sanitizers_only,
			char *out, size_t cap)
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
	if (!r && !sanitizers_only)
		r = append_entries(out, cap, &pos, old, lib, 1);
	return r;
}

bool sfy_preload_has(const char *list, const char *lib)
{
	size_t liblen = strlen(lib);

	for (const char *p = list; *p;) {
		size_t len, blen;
		const char *b;

		p += strspn(p, SFY_PRELOAD_SEPS);
		len = strcspn(p, SFY_PRELOAD_SEPS);
		if (!len)
			break;
		blen = len;
		b = base(p, &blen);
		if ((len == liblen && !strncmp(p, lib, len)) ||
		    (blen == sizeof SFY_LIBNAME - 1 && !strncmp(b, SFY_LIBNAME, blen)))
			return true;
		p += len;
	}
	return false;
}
