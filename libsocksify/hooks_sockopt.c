/* getsockopt(SO_ERROR) and shutdown() of a socket whose chain is being set
 * up in the background (async.h): SO_ERROR reads 0 while pending and the
 * error once after a failure; shutdown() while pending aborts the set-up
 * and disconnects, as the kernel does for a connecting socket. Every other
 * socket and option goes straight through (two atomic loads). */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "async.h"
#include "dnsresp_tcp.h"
#include "fdreg.h"
#include "real.h"
#include "sfy.h"

SFY_EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	if (level == SOL_SOCKET && name == SO_ERROR && val && len &&
	    sfy_async_maybe(fd)) {
		int err;
		if (sfy_async_so_error(fd, &err)) {
			/* The kernel's own copy-out: at most an int, *len says
			 * how much (a negative length is its EINVAL). */
			if ((int)*len < 0) {
				errno = EINVAL;
				return -1;
			}
			socklen_t n = *len < sizeof(int) ? *len : sizeof(int);
			memcpy(val, &err, n);
			*len = n;
			return 0;
		}
	}
	return sfy_real()->getsockopt(fd, level, name, val, len);
}

SFY_EXPORT int shutdown(int fd, int how)
{
	if (sfy_async_maybe(fd) &&
	    (how == SHUT_RD || how == SHUT_WR || how == SHUT_RDWR) && sfy_async_shutdown(fd))
		return 0;
	int r = sfy_real()->shutdown(fd, how);
	if (r == 0 && sfy_fdreg_has(fd, SFY_FDREG_DNS))
		sfy_dnstcp_shutdown(fd, how);
	return r;
}
