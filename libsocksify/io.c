#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "io.h"
#include "real.h"

int64_t sfy_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sfy_io_connect_start(int fd, const struct sockaddr *sa, socklen_t len, int64_t deadline)
{
	/* A blocking socket would block in the kernel for minutes; Linux bounds a
	 * blocking connect() by SO_SNDTIMEO, which we set for the call only and
	 * restore, so the program's own value survives. A non-blocking socket
	 * returns at once whatever it says. */
	struct timeval old, tv;
	socklen_t ol = sizeof(old);
	int have_old = sfy_real()->getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &old, &ol) == 0;
	int64_t left = deadline - sfy_now_ms();
	if (left <= 0)
		return -ETIMEDOUT;
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000;
	if (have_old)
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int r = sfy_real()->connect(fd, sa, len);
	int e = errno;
	if (have_old)
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &old, sizeof(old));
	if (r == 0)
		return 0;
	/* Non-blocking, interrupted or timed out in the kernel: the connect goes
	 * on in the background. */
	if (e == EINPROGRESS || e == EINTR || e == EALREADY || e == EAGAIN)
		return -EINPROGRESS;
	return -e;
}

int sfy_io_connect_done(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int n;
	while ((n = sfy_real()->poll(&p, 1, 0)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EINPROGRESS;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (sfy_real()->getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		return -errno;
	return soerr ? -soerr : 0;
}
