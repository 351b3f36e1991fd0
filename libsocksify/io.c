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

/* Waits for events on fd until the deadline: 0 when ready, else -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - sfy_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = events };
		int r = sfy_real()->poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

int sfy_io_connect(int fd, const struct sockaddr *sa, socklen_t len, int64_t deadline)
{
	/* A blocking socket would block in the kernel for minutes; Linux bounds a
	 * blocking connect() by SO_SNDTIMEO, which we set for the call only and
	 * restore, so the program's own value survives. */
	struct timeval old, tv;
	socklen_t ol = sizeof(old);
	int have_old = getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &old, &ol) == 0;
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
	if (e != EINPROGRESS && e != EINTR && e != EALREADY && e != EAGAIN)
		return -e;
	/* Non-blocking, interrupted or timed out in the kernel: the connect goes
	 * on in the background; wait for it within our own deadline. */
	int w = wait_fd(fd, POLLOUT, deadline);
	if (w < 0)
		return w;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		return -errno;
	return soerr ? -soerr : 0;
}

int sfy_io_send_all(int fd, const void *buf, size_t len, int64_t deadline)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = sfy_real()->send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		int w = wait_fd(fd, POLLOUT, deadline);
		if (w < 0)
			return w;
	}
	return 0;
}

int sfy_io_recv_exact(int fd, void *buf, size_t len, int64_t deadline, size_t *got)
{
	char *p = buf;
	size_t have = 0;
	int ret = 0;
	while (have < len) {
		ssize_t n = sfy_real()->recv(fd, p + have, len - have, MSG_DONTWAIT);
		if (n > 0) {
			have += (size_t)n;
			continue;
		}
		if (n == 0) {
			ret = -ECONNRESET;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			ret = -errno;
			break;
		}
		ret = wait_fd(fd, POLLIN, deadline);
		if (ret < 0)
			break;
	}
	if (got)
		*got = have;
	return ret;
}

ssize_t sfy_io_peek(int fd, void *buf, size_t cap, int64_t deadline)
{
	if (cap == 0)
		return -ENOBUFS;
	for (;;) {
		ssize_t n = sfy_real()->recv(fd, buf, cap, MSG_PEEK | MSG_DONTWAIT);
		if (n > 0)
			return n;
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		int w = wait_fd(fd, POLLIN, deadline);
		if (w < 0)
			return w;
	}
}
