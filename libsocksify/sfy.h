/* Things every file of the library shares. Everything is built with
 * -fvisibility=hidden; only libc interposers are marked SFY_EXPORT. */
#ifndef SFY_H
#define SFY_H

#define SFY_EXPORT __attribute__((visibility("default")))
#define SFY_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#include <stddef.h>

/* Writes a one-line message into err (errcap may be 0) and returns -1: the
 * error convention of the parsers that report text (URLs, CIDRs, config). */
int sfy_errf(char *err, size_t errcap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* s[0..n) as a decimal number 0..max: digits only. 0, or -1 (empty, any
 * other character, above max) with *out untouched. */
int sfy_decimal(const char *s, size_t n, unsigned long max, unsigned long *out);

#endif
