/* TEMPORARY (branch `ready`): stand-ins for async.c until it is merged --
 * nothing is ever pending. Weak, so async.c's definitions replace them;
 * the lead drops this file at merge time. */
#include "async.h"

__attribute__((weak)) atomic_int sfy_async_count;

__attribute__((weak)) bool sfy_async_pending(int fd)
{
	(void)fd;
	return false;
}
