/* epoll_create, epoll_create1, epoll_ctl: every registration goes through
 * the shadow table (ready.h), which hides a socket's registrations while
 * its set-up is pending. epoll_wait and its forms are not interposed. */
#include <errno.h>
#include <sys/epoll.h>

#include "ready.h"
#include "real.h"
#include "sfy.h"

static int created(int r)
{
	if (r >= 0)
		sfy_ready_epoll_new(r);
	return r;
}

SFY_EXPORT int epoll_create(int size)
{
	return created(sfy_real()->epoll_create(size));
}

SFY_EXPORT int epoll_create1(int flags)
{
	return created(sfy_real()->epoll_create1(flags));
}

SFY_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	return sfy_ready_epoll_ctl(epfd, op, fd, ev);
}
