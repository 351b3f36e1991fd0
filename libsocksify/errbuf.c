/* The one formatter of error messages (configuration, URLs, rules). A
 * message is one line whatever it quotes: a value from a file or the
 * environment may hold newlines or other control bytes, which become '?'
 * here, so no caller has to remember to clean what it quotes. */
#include <stdarg.h>
#include <stdio.h>

#include "sfy.h"

int sfy_errf(char *err, size_t errcap, const char *fmt, ...)
{
	va_list ap;

	if (errcap) {
		va_start(ap, fmt);
		vsnprintf(err, errcap, fmt, ap);
		va_end(ap);
		for (char *p = err; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
	}
	return -1;
}
