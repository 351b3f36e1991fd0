/* Things every file of the library shares. Everything is built with
 * -fvisibility=hidden; only libc interposers are marked SFY_EXPORT. */
#ifndef SFY_H
#define SFY_H

#define SFY_EXPORT __attribute__((visibility("default")))
#define SFY_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
