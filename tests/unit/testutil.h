/* Shared by the cmocka unit tests (include after <cmocka.h>). */
#ifndef SFY_TESTUTIL_H
#define SFY_TESTUTIL_H

#include <stdio.h>
#include <sys/stat.h>

/* Integer equality with a label, printing both values: table-driven tests
 * say which row failed. */
#define EQ(a, b, what) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ != b_) { \
		print_error("%s: %s = %lld, want %lld\n", (what), #a, a_, b_); \
		fail(); \
	} \
} while (0)

/* path holds text, with mode (the config loader checks a file's mode). */
static inline void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

#endif
