/* Shared by the cmocka unit tests (include after <cmocka.h>). */
#ifndef SFY_TESTUTIL_H
#define SFY_TESTUTIL_H

/* Integer equality with a label, printing both values: table-driven tests
 * say which row failed. */
#define EQ(a, b, what) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ != b_) { \
		print_error("%s: %s = %lld, want %lld\n", (what), #a, a_, b_); \
		fail(); \
	} \
} while (0)

#endif
