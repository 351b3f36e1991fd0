/* glibc's dlsym()/dlvsym() and this library's own exports, found by reading
 * dynamic symbol tables in memory: this library interposes dlsym and dlvsym
 * (hooks_dl.c), so calling them by name from here would reach our own hook.
 * Nothing in this file calls a function another library may intercept:
 * it runs inside a sanitizer runtime's start-up, before our constructor. */
#ifndef SFY_DLREAL_H
#define SFY_DLREAL_H

typedef void *(*sfy_dlsym_fn)(void *, const char *);
typedef void *(*sfy_dlvsym_fn)(void *, const char *, const char *);

struct sfy_dl {
	/* glibc's own (libc since 2.34, libdl before): the library's lookups,
	 * RTLD_NEXT meaning "after this library". NULL only if glibc has none. */
	sfy_dlsym_fn dlsym;
	sfy_dlvsym_fn dlvsym;
	/* The next definitions after this library (glibc's, or another
	 * preloaded interposer's): where the program's calls go on to. Never
	 * NULL once loaded. */
	sfy_dlsym_fn next_dlsym;
	sfy_dlvsym_fn next_dlvsym;
};

/* Looked up on first use, thread-safely; any caller may be first. */
const struct sfy_dl *sfy_dl(void);

/* Where this library defines name as an exported function (one of its
 * interposers), NULL if it does not: read from its own dynamic symbol
 * table, so the answer is exactly what `nm -D --defined-only` lists. */
void *sfy_dl_own(const char *name);

/* The default-version definition of name (what dlsym() on the object
 * returns) in the object that holds the code at addr; NULL if none. */
void *sfy_dl_default_in(const void *addr, const char *name);

#endif
