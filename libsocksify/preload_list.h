/* LD_PRELOAD values: which entries they hold, and how libsocksify goes in
 * (the launcher, and the exec guard putting it back). Pure string code:
 * no allocation, safe in vfork() children. */
#ifndef SFY_PRELOAD_LIST_H
#define SFY_PRELOAD_LIST_H

#include <stdbool.h>
#include <stddef.h>

/* The file name every build of the library has. */
#define SFY_LIBNAME "libsocksify.so"

/* New LD_PRELOAD value: sanitizer runtimes from old first, then lib, then
 * the rest of old in order (lib itself dropped from old; with
 * sanitizers_only, every other entry too). Entries may be separated by ':'
 * or blanks, as ld.so accepts; the result uses ':'. -ENAMETOOLONG if it
 * does not fit in cap bytes (NUL included). */
int sfy_preload_compose(const char *old, const char *lib, bool sanitizers_only,
			char *out, size_t cap);

/* Does the LD_PRELOAD value list hold lib, or any other libsocksify.so
 * (another install of socksify: adding ours would make two copies)? */
bool sfy_preload_has(const char *list, const char *lib);

#endif
