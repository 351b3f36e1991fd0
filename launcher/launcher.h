/* The launcher's own pieces (not part of the library): finding the
 * library. Finding the command and refusing programs LD_PRELOAD cannot
 * reach are shared with the library's exec guard (reach.h), composing
 * LD_PRELOAD too (preload_list.h). Errors are negative errno; messages are
 * printed by main.c only. */
#ifndef SFY_LAUNCHER_H
#define SFY_LAUNCHER_H

#include <limits.h>
#include <stddef.h>

#include "reach.h"

/* The launcher's exit statuses (the env(1)/nohup(1) convention). */
#define SFY_EXIT_USAGE   125    /* launcher or configuration error */
#define SFY_EXIT_NOEXEC  126    /* found but cannot be executed */
#define SFY_EXIT_NOTFOUND 127   /* command not found */

/* preload.c: the absolute path of libsocksify.so beside /proc/self/exe,
 * else under SFY_LIBDIR. -ENOENT with both places in tried. */
int sfy_find_library(char out[static PATH_MAX], char *tried, size_t triedcap);

#endif
