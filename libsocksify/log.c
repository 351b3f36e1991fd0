/* One line per event, "socksify[PID]: LEVEL: message\n", emitted with a
 * single write() so lines from concurrent threads never interleave. A log
 * file is opened per line: the program may close or reuse any descriptor
 * we kept (daemons close all fds), and logging is rare enough. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "real.h"

/* Long enough for a proxy URL, a 255-byte name and a reason. */
#define SFY_LOG_LINE_MAX 1024

static _Atomic int log_level = SFY_LOG_WARN;
static char log_path[PATH_MAX];


void sfy_log_setup(enum sfy_log_level level, const char *file)
{
	atomic_store(&log_level, (int)level);
	if (file)
		snprintf(log_path, sizeof(log_path), "%s", file);
}

enum sfy_log_level sfy_log_level_get(void)
{
	return (enum sfy_log_level)atomic_load(&log_level);
}

size_t sfy_log_escape(char *out, size_t cap, const char *in, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (!cap)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		bool plain = c >= 0x20 && c < 0x7f && c != '\\';
		size_t w = plain ? 1 : c == '\\' ? 2 : 4;
		if (o + w >= cap)
			break;
		if (plain) {
			out[o++] = (char)c;
		} else if (c == '\\') {
			out[o++] = '\\';
			out[o++] = '\\';
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = 0;
	return o;
}

/* "socksify[PID]: LEVEL: " without printf: also written from exec hooks
 * in vfork() children. */
static size_t prefix(char *line, enum sfy_log_level level)
{
	static const char head[] = "socksify[";
	char digits[24];
	size_t n = sizeof head - 1, k = 0;
	long pid = (long)getpid();
	const char *name = sfy_log_level_name(level);

	memcpy(line, head, n);
	do
		digits[k++] = (char)('0' + pid % 10);
	while ((pid /= 10) > 0 && k < sizeof digits);
	while (k)
		line[n++] = digits[--k];
	line[n++] = ']';
	line[n++] = ':';
	line[n++] = ' ';
	memcpy(line + n, name, strlen(name));
	n += strlen(name);
	line[n++] = ':';
	line[n++] = ' ';
	return n;
}

void sfy_log_text(enum sfy_log_level level, const char *msg, size_t mlen)
{
	if ((int)level > atomic_load(&log_level))
		return;
	int saved = errno;
	char line[SFY_LOG_LINE_MAX];
	size_t n = prefix(line, level);
	/* Names, proxy replies and config text reach this line: a terminal
	 * escape sequence or a newline in them must not reach stderr raw. */
	size_t len = n + sfy_log_escape(line + n, sizeof(line) - n - 1, msg, mlen);
	line[len++] = '\n';

	/* Raw syscalls: our own write()/open() interposers must not see these. */
	long (*sys)(long, ...) = sfy_real()->syscall;
	int fd = 2;
	if (log_path[0])
		fd = (int)sys(SYS_openat, AT_FDCWD, log_path,
			      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0) {
		(void)sys(SYS_write, fd, line, len);
		if (fd != 2)
			(void)sys(SYS_close, fd);
	}
	errno = saved;
}

void sfy_log(enum sfy_log_level level, const char *fmt, ...)
{
	if ((int)level > atomic_load(&log_level))
		return;
	int saved = errno;
	char msg[SFY_LOG_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	size_t mlen = m < 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
	sfy_log_text(level, msg, mlen);
	errno = saved;
}
