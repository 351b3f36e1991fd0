/* TEMPORARY (branch async): empty weak stand-ins for the readiness layer
 * (ready.h, branch `ready`) so this branch builds and runs on its own.
 * Drop this file when `ready` is merged: its definitions are strong. */
#include "ready.h"

__attribute__((weak)) void sfy_ready_hide(int fd)
{
	(void)fd;
}

__attribute__((weak)) void sfy_ready_show(dev_t dev, ino_t ino)
{
	(void)dev;
	(void)ino;
}
