/* Shared by the cmocka unit tests (include after <cmocka.h>). */
#ifndef SFY_TESTUTIL_H
#define SFY_TESTUTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
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

/* *ss := the address in text ("10.0.0.1", "fd00::1") and port; its length. */
static inline socklen_t sa_text(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		return sizeof(*s4);
	}
	assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	return sizeof(*s6);
}

#endif
