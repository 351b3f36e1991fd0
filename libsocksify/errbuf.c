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
	}
	return -1;
}
