/* fcntl(): the descriptor-making and descriptor-flag commands keep the
 * per-fd registry and the tree's shared tables as true as dup() and
 * close() do. F_DUPFD / F_DUPFD_CLOEXEC give the copy the original's entry
 * (getpeername, UDP session); F_SETFD with FD_CLOEXEC on a shared table's
 * descriptor first moves the table to a descriptor that stays open across
 * exec, so the program's flag applies to its number and the tree keeps the
 * table. Every other command goes straight through. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>

#include "fdreg.h"
#include "hooks.h"
#include "ready.h"
#include "real.h"
#include "sfy.h"
#include "shmfd.h"

typedef int fcntl_fn(int, int, ...);

static int hooked(fcntl_fn *real, int fd, int cmd, void *arg)
{
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	if (cmd == F_SETFD && ((long)arg & FD_CLOEXEC))
		sfy_shm_evict(fd);
	int r = real(fd, cmd, arg);
	if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		sfy_fd_duped(fd, r);
	return r;
}

SFY_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return hooked(sfy_real()->fcntl, fd, cmd, arg);
}

SFY_EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return hooked(sfy_real()->fcntl64 ? sfy_real()->fcntl64 : sfy_real()->fcntl, fd, cmd, arg);
}
