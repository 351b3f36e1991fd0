/* GLib/GIO: N concurrent g_socket_client_connect_to_host_async + async write
 * and read of an echo, on one GMainLoop (poll), timed against one. HOST may
 * be a name: GIO resolves it in its resolver thread (getaddrinfo).
 *   gio_echo HOST PORT N     -> "one_ms=A all_ms=B n=N", "ok N echoes" */
#include <gio/gio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conn {
	GSocketConnection *sc;
	char msg[64], got[64];
};

static GMainLoop *loop;
static int left, failures;

static void done(struct conn *c, const char *what, GError *err)
{
	if (err) {
		fprintf(stderr, "gio: %s: %s\n", what, err->message);
		g_error_free(err);
		failures++;
	}
	if (c->sc)
		g_object_unref(c->sc);
	g_free(c);
	if (--left == 0)
		g_main_loop_quit(loop);
}

static void on_read(GObject *src, GAsyncResult *res, gpointer data)
{
	struct conn *c = data;
	GError *err = NULL;
	gsize n = 0;
	if (!g_input_stream_read_all_finish(G_INPUT_STREAM(src), res, &n, &err))
		return done(c, "read", err);
	if (n != strlen(c->msg) || memcmp(c->got, c->msg, n)) {
		fprintf(stderr, "gio: echo mismatch\n");
		failures++;
	}
	done(c, NULL, NULL);
}

static void on_write(GObject *src, GAsyncResult *res, gpointer data)
{
	struct conn *c = data;
	GError *err = NULL;
	if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(src), res, NULL, &err))
		return done(c, "write", err);
	g_input_stream_read_all_async(g_io_stream_get_input_stream(G_IO_STREAM(c->sc)), c->got,
				      strlen(c->msg), G_PRIORITY_DEFAULT, NULL, on_read, c);
}

static void on_connect(GObject *src, GAsyncResult *res, gpointer data)
{
	struct conn *c = data;
	GError *err = NULL;
	c->sc = g_socket_client_connect_to_host_finish(G_SOCKET_CLIENT(src), res, &err);
	if (!c->sc)
		return done(c, "connect", err);
	g_output_stream_write_all_async(g_io_stream_get_output_stream(G_IO_STREAM(c->sc)), c->msg,
					strlen(c->msg), G_PRIORITY_DEFAULT, NULL, on_write, c);
}

static gboolean on_timeout(gpointer data)
{
	(void)data;
	fprintf(stderr, "gio: timeout, %d left\n", left);
	exit(1);
}

static double run(const char *host, guint16 port, int n, const char *tag)
{
	GSocketClient *cl = g_socket_client_new();
	gint64 t0 = g_get_monotonic_time();
	/* No system proxy settings: socksify is the only proxy here. */
	g_socket_client_set_enable_proxy(cl, FALSE);
	left = n;
	for (int i = 0; i < n; i++) {
		struct conn *c = g_new0(struct conn, 1);
		snprintf(c->msg, sizeof(c->msg), "gio %s%d\n", tag, i);
		g_socket_client_connect_to_host_async(cl, host, port, NULL, on_connect, c);
	}
	guint t = g_timeout_add_seconds(20, on_timeout, NULL);
	g_main_loop_run(loop);
	g_source_remove(t);
	g_object_unref(cl);
	return (double)(g_get_monotonic_time() - t0) / 1000.0;
}

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	guint16 port = (guint16)atoi(argv[2]);
	int n = atoi(argv[3]);
	loop = g_main_loop_new(NULL, FALSE);
	run(argv[1], port, 1, "warm-up");
	double one = run(argv[1], port, 1, "single");
	double all = run(argv[1], port, n, "");
	if (failures)
		return 1;
	printf("one_ms=%.0f all_ms=%.0f n=%d\nok %d echoes\n", one, all, n, n);
	return 0;
}
