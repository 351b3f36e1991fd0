/* libevent: N concurrent bufferevent_socket_connect + echo on one event_base
 * (epoll backend), timed against one.
 *   ev_echo IP PORT N        -> "one_ms=A all_ms=B n=N", "ok N echoes" */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct conn {
	char msg[64];
	size_t len;
};

static struct event_base *base;
static int left, failures;

static void done(struct bufferevent *bev, struct conn *c)
{
	bufferevent_free(bev);
	free(c);
	if (--left == 0)
		event_base_loopexit(base, NULL);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char got[64];
	if (evbuffer_get_length(in) < c->len)
		return;
	evbuffer_remove(in, got, c->len);
	if (memcmp(got, c->msg, c->len)) {
		fprintf(stderr, "libevent: echo mismatch\n");
		failures++;
	}
	done(bev, c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	if (what & BEV_EVENT_CONNECTED) {
		bufferevent_write(bev, c->msg, c->len);
		return;
	}
	fprintf(stderr, "libevent: event 0x%x%s\n", what,
		what & BEV_EVENT_ERROR ? " (error)" : what & BEV_EVENT_EOF ? " (EOF)" : "");
	failures++;
	done(bev, c);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double run(const struct sockaddr_in *sin, int n, const char *tag)
{
	double t0 = now_ms();
	struct timeval tmo = { 20, 0 };
	/* A base per run: a loopexit timer left from an earlier run cannot end
	 * this one early. */
	base = event_base_new();
	if (!base)
		exit(1);
	left = n;
	for (int i = 0; i < n; i++) {
		struct conn *c = calloc(1, sizeof(*c));
		struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
		if (!c || !bev)
			exit(1);
		c->len = (size_t)snprintf(c->msg, sizeof(c->msg), "libevent %s%d\n", tag, i);
		bufferevent_setcb(bev, on_read, NULL, on_event, c);
		bufferevent_enable(bev, EV_READ | EV_WRITE);
		if (bufferevent_socket_connect(bev, (const struct sockaddr *)sin, sizeof(*sin)) < 0) {
			fprintf(stderr, "libevent: connect failed at once\n");
			exit(1);
		}
	}
	event_base_loopexit(base, &tmo);
	event_base_dispatch(base);
	if (left) {
		fprintf(stderr, "libevent: timeout, %d left\n", left);
		exit(1);
	}
	event_base_free(base);
	return now_ms() - t0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	if (argc != 4 || inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1)
		return 2;
	sin.sin_port = htons((unsigned short)atoi(argv[2]));
	int n = atoi(argv[3]);
	base = event_base_new();
	printf("backend %s\n", event_base_get_method(base));
	event_base_free(base);
	run(&sin, 1, "warm-up");
	double one = run(&sin, 1, "single");
	double all = run(&sin, n, "");
	if (failures)
		return 1;
	printf("one_ms=%.0f all_ms=%.0f n=%d\nok %d echoes\n", one, all, n, n);
	return 0;
}
