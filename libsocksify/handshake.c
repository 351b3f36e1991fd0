/* Per-hop handshakes. Each message is built by a pure codec, sent whole, and
 * each reply is read in the steps its parser asks for (SOCKS5: fixed head,
 * then the length ATYP implies), so no byte past the reply is consumed. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "errmap.h"
#include "handshake.h"
#include "http_connect.h"
#include "io.h"
#include "socks4.h"

typedef enum sfy_parse (*parse_fn)(const uint8_t *buf, size_t len, size_t *need, void *out);

static enum sfy_parse p_method(const uint8_t *b, size_t l, size_t *n, void *o)
{
	return sfy_s5_parse_method(b, l, n, o);
}
static enum sfy_parse p_auth(const uint8_t *b, size_t l, size_t *n, void *o)
{
	return sfy_s5_parse_auth(b, l, n, o);
}
static enum sfy_parse p_s5(const uint8_t *b, size_t l, size_t *n, void *o)
{
	return sfy_s5_parse_reply(b, l, n, o);
}
static enum sfy_parse p_s4(const uint8_t *b, size_t l, size_t *n, void *o)
{
	return sfy_s4_parse_reply(b, l, n, o);
}

__attribute__((format(printf, 4, 5)))
static int fail(struct sfy_hop_error *e, enum sfy_blame blame, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	e->blame = blame;
	vsnprintf(e->why, sizeof(e->why), fmt, ap);
	va_end(ap);
	return err;
}

static int io_fail(struct sfy_hop_error *e, int err, const char *what)
{
	if (err == -ECONNRESET)
		return fail(e, SFY_BLAME_HOP, -ECONNRESET, "proxy closed the connection %s", what);
	if (err == -ETIMEDOUT)
		return fail(e, SFY_BLAME_HOP, -ETIMEDOUT, "no reply %s within the timeout", what);
	fail(e, SFY_BLAME_HOP, err, "I/O error %s", what);
	snprintf(e->why + strlen(e->why), sizeof(e->why) - strlen(e->why), ": %s",
		 strerror(-err));
	return err;
}

/* Reads one reply into buf, exactly as long as the parser says. probe_until
 * bounds the wait for the first byte (0 = no probe). */
static int read_reply(int fd, uint8_t *buf, size_t cap, size_t first, parse_fn fn, void *out,
		      int64_t deadline, int64_t probe_until, const char *what,
		      struct sfy_hop_error *e)
{
	size_t len = 0, need = first;
	for (;;) {
		if (need > cap)
			return fail(e, SFY_BLAME_HOP, -EPROTO, "reply %s too long", what);
		size_t got = 0;
		int64_t dl = deadline;
		if (len == 0 && probe_until && probe_until < deadline)
			dl = probe_until;
		int r = sfy_io_recv_exact(fd, buf + len, need - len, dl, &got);
		if (r < 0 && len == 0 && got == 0 && probe_until) {
			/* Closed before a byte of the reply: it dropped what we
			 * sent early. Silent: not evidence yet, the caller races. */
			if (r == -ECONNRESET)
				return -SFY_ESTEPWISE;
			if (r == -ETIMEDOUT && dl < deadline)
				return -SFY_ESILENT;
		}
		if (r == -ETIMEDOUT && dl < deadline) {
			/* The probe only limits the first byte; the rest gets the
			 * full deadline. */
			len += got;
			probe_until = 0;
			continue;
		}
		if (r < 0)
			return io_fail(e, r, what);
		len = need;
		switch (fn(buf, len, &need, out)) {
		case SFY_PARSE_COMPLETE:
			return 0;
		case SFY_PARSE_MALFORMED:
			return fail(e, SFY_BLAME_HOP, -EPROTO, "malformed reply %s", what);
		case SFY_PARSE_NEED:
			break;
		}
	}
}

/* The SOCKS5 reply to the request (head, then the length ATYP implies),
 * mapped to an errno; BND into bnd. */
static int s5_final(int fd, uint8_t *in, size_t cap, int64_t deadline, int64_t probe_until,
		    struct sfy_addr *bnd, struct sfy_hop_error *e)
{
	struct sfy_s5_reply rep;
	int r = read_reply(fd, in, cap, 4, p_s5, &rep, deadline, probe_until, "to the request", e);
	if (r < 0)
		return r;
	if (rep.rep != SFY_S5_SUCCEEDED)
		return fail(e, SFY_BLAME_TARGET, -sfy_errno_from_s5(rep.rep), "%s",
			    sfy_s5_rep_str(rep.rep));
	if (bnd)
		*bnd = rep.bnd;
	return 0;
}

/* SOCKS5. Pipelined: greeting [+ auth] + request in one write, one round
 * trip; auth is pipelined only when it is the only method offered, so the
 * server cannot pick another and misread our auth bytes. */
static int hop_socks5(int fd, const struct sfy_proxy *p, enum sfy_s5_cmd cmd,
		      const struct sfy_addr *dst, bool pipelined, bool probe, int64_t deadline,
		      struct sfy_addr *bnd, struct sfy_hop_error *e)
{
	uint8_t out[8 + SFY_S5_AUTH_MAX + SFY_S5_REQ_MAX];
	uint8_t in[SFY_S5_REPLY_MAX];
	bool auth = p->has_user;
	ssize_t g = sfy_s5_build_greeting(out, sizeof(out), !auth, auth);
	if (g < 0)
		return fail(e, SFY_BLAME_HOP, (int)g, "cannot build greeting");
	size_t len = (size_t)g, auth_off = len;
	if (auth) {
		ssize_t a = sfy_s5_build_auth(out + len, sizeof(out) - len, p->user, p->pass);
		if (a < 0)
			return fail(e, SFY_BLAME_HOP, (int)a, "bad credentials");
		len += (size_t)a;
	}
	size_t req_off = len;
	ssize_t q = sfy_s5_build_request(out + len, sizeof(out) - len, cmd, dst);
	if (q < 0)
		return fail(e, SFY_BLAME_TARGET, (int)q, "cannot encode the destination");
	len += (size_t)q;

	int64_t t0 = sfy_now_ms();
	int r = sfy_io_send_all(fd, out, pipelined ? len : auth_off, deadline);
	if (r < 0)
		return io_fail(e, r, "to the greeting");
	uint8_t method;
	r = read_reply(fd, in, sizeof(in), 2, p_method, &method, deadline, 0,
		       "to the greeting", e);
	if (r < 0)
		return r;
	if (method == SFY_S5_AUTH_NO_ACCEPTABLE)
		return fail(e, SFY_BLAME_HOP, -EACCES, "proxy accepts none of our methods%s",
			    auth ? " (username/password)" : " (no authentication)");
	if (method != (auth ? SFY_S5_AUTH_USERPASS : SFY_S5_AUTH_NONE))
		return fail(e, SFY_BLAME_HOP, -EPROTO,
			    "proxy chose method 0x%02x, which we did not offer", method);
	/* The method reply's round trip scales the window: on a slow path a
	 * pipelined reply is late for the same reason the method reply was. */
	int64_t now = sfy_now_ms(), win = 4 * (now - t0);
	if (win < SFY_PIPELINE_PROBE_MS)
		win = SFY_PIPELINE_PROBE_MS;
	int64_t probe_until = pipelined && probe ? now + win : 0;
	if (auth) {
		if (!pipelined && (r = sfy_io_send_all(fd, out + auth_off, req_off - auth_off,
						       deadline)) < 0)
			return io_fail(e, r, "to the authentication");
		uint8_t status;
		r = read_reply(fd, in, sizeof(in), 2, p_auth, &status, deadline, probe_until,
			       "to the authentication", e);
		if (r < 0)
			return r;
		if (status != 0)
			return fail(e, SFY_BLAME_HOP, -EACCES,
				    "username/password rejected");
		probe_until = 0;
	}
	if (!pipelined && (r = sfy_io_send_all(fd, out + req_off, len - req_off, deadline)) < 0)
		return io_fail(e, r, "to the request");
	return s5_final(fd, in, sizeof(in), deadline, probe_until, bnd, e);
}

static int hop_socks4(int fd, const struct sfy_proxy *p, const struct sfy_addr *dst,
		      int64_t deadline, struct sfy_addr *bnd, struct sfy_hop_error *e)
{
	uint8_t out[SFY_S4_REQ_MAX], in[SFY_S4_REPLY_LEN];
	int a4 = p->proto == SFY_PROTO_SOCKS4A;
	if (dst->type == SFY_ATYP_DOMAIN && !a4)
		return fail(e, SFY_BLAME_TARGET, -EAFNOSUPPORT,
			    "socks4 cannot carry host names (use socks4a)");
	if (dst->type == SFY_ATYP_IPV6)
		return fail(e, SFY_BLAME_TARGET, -EAFNOSUPPORT,
			    "SOCKS4 cannot carry IPv6 destinations");
	ssize_t q = sfy_s4_build_request(out, sizeof(out), SFY_S4_CONNECT, dst,
					 p->has_user ? p->user : NULL, a4);
	if (q < 0)
		return fail(e, SFY_BLAME_TARGET, (int)q, "cannot encode the destination");
	int r = sfy_io_send_all(fd, out, (size_t)q, deadline);
	if (r < 0)
		return io_fail(e, r, "to the request");
	struct sfy_s4_reply rep;
	r = read_reply(fd, in, sizeof(in), SFY_S4_REPLY_LEN, p_s4, &rep, deadline, 0,
		       "to the request", e);
	if (r < 0)
		return r;
	if (rep.code != SFY_S4_GRANTED)
		return fail(e, rep.code == SFY_S4_REJECTED ? SFY_BLAME_TARGET : SFY_BLAME_HOP,
			    -sfy_errno_from_s4(rep.code), "%s", sfy_s4_code_str(rep.code));
	if (bnd)
		*bnd = rep.bnd;
	return 0;
}

/* An HTTP reply head has no length field: its end is the first blank line.
 * Peek at whatever has arrived, let the (pure) parser find the end, then
 * consume exactly the head -- the tunnel's first bytes may come in the same
 * segment and belong to the program. While the end has not arrived, all
 * that was peeked is head: consume it and wait for more. A reply that
 * arrives whole costs one peek and one read, not one recv() per byte. */
static int read_http_reply(int fd, uint8_t buf[static SFY_HTTP_REPLY_MAX], int64_t deadline,
			   int *status, struct sfy_hop_error *e)
{
	size_t len = 0, need = 0, take;
	for (;;) {
		ssize_t n = sfy_io_peek(fd, buf + len, SFY_HTTP_REPLY_MAX - len, deadline);
		if (n < 0)
			return io_fail(e, (int)n, "to CONNECT");
		switch (sfy_http_parse_reply(buf, len + (size_t)n, &need, status)) {
		case SFY_PARSE_COMPLETE:
			take = need - len;
			break;
		case SFY_PARSE_NEED:
			take = (size_t)n;
			break;
		default:
			return fail(e, SFY_BLAME_HOP, -EPROTO, "malformed reply to CONNECT");
		}
		int r = sfy_io_recv_exact(fd, buf + len, take, deadline, NULL);
		if (r < 0)
			return io_fail(e, r, "to CONNECT");
		len += take;
		if (len == need)
			return 0;
	}
}

static int hop_http(int fd, const struct sfy_proxy *p, const struct sfy_addr *dst,
		    int64_t deadline, struct sfy_hop_error *e)
{
	char out[SFY_HTTP_REQ_MAX];
	static _Thread_local uint8_t in[SFY_HTTP_REPLY_MAX];
	ssize_t q = sfy_http_build_connect(out, sizeof(out), dst, p->has_user ? p->user : NULL,
					   p->has_user ? p->pass : NULL);
	if (q < 0)
		return fail(e, SFY_BLAME_TARGET, (int)q, "cannot encode the destination");
	int r = sfy_io_send_all(fd, out, (size_t)q, deadline);
	if (r < 0)
		return io_fail(e, r, "to CONNECT");
	int status = 0;
	r = read_http_reply(fd, in, deadline, &status, e);
	if (r < 0)
		return r;
	if (status / 100 != 2) {
		char s[16];
		snprintf(s, sizeof(s), "%d", status);
		return fail(e, status == 401 || status == 407 ? SFY_BLAME_HOP : SFY_BLAME_TARGET,
			    -sfy_errno_from_http(status), "HTTP status %s", s);
	}
	return 0;
}

int sfy_hop_s5_resume(int fd, const struct sfy_proxy *p, int64_t deadline, struct sfy_addr *bnd,
		      struct sfy_hop_error *e)
{
	uint8_t in[SFY_S5_REPLY_MAX];
	e->why[0] = 0;
	e->blame = SFY_BLAME_HOP;
	/* probe_until = deadline: only a close before the first byte is told
	 * apart (-SFY_ESTEPWISE); silence is now a plain timeout. */
	int r;
	if (p->has_user) {
		uint8_t status;
		r = read_reply(fd, in, sizeof(in), 2, p_auth, &status, deadline, deadline,
			       "to the authentication", e);
		if (r < 0)
			return r;
		if (status != 0)
			return fail(e, SFY_BLAME_HOP, -EACCES, "username/password rejected");
	}
	return s5_final(fd, in, sizeof(in), deadline, p->has_user ? 0 : deadline, bnd, e);
}

int sfy_hop_request(int fd, const struct sfy_proxy *p, enum sfy_s5_cmd cmd,
		    const struct sfy_addr *dst, bool pipelined, bool probe, int64_t deadline,
		    struct sfy_addr *bnd, struct sfy_hop_error *e)
{
	e->why[0] = 0;
	e->blame = SFY_BLAME_HOP;
	switch (p->proto) {
	case SFY_PROTO_SOCKS5:
	case SFY_PROTO_SOCKS5H:
		return hop_socks5(fd, p, cmd, dst, pipelined, probe, deadline, bnd, e);
	case SFY_PROTO_SOCKS4:
	case SFY_PROTO_SOCKS4A:
		if (cmd != SFY_S5_CONNECT)
			return fail(e, SFY_BLAME_HOP, -EOPNOTSUPP,
				    "SOCKS4 has no UDP ASSOCIATE");
		return hop_socks4(fd, p, dst, deadline, bnd, e);
	case SFY_PROTO_HTTP:
		if (cmd != SFY_S5_CONNECT)
			return fail(e, SFY_BLAME_HOP, -EOPNOTSUPP,
				    "HTTP CONNECT has no UDP ASSOCIATE");
		return hop_http(fd, p, dst, deadline, e);
	}
	return fail(e, SFY_BLAME_HOP, -EINVAL, "unknown protocol");
}
