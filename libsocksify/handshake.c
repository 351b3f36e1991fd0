/* Per-hop handshakes as resumable steps (handshake.h). Each reply is read
 * in the pieces its parser asks for, so no byte past it is consumed. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "errmap.h"
#include "handshake.h"
#include "io.h"
#include "isolate.h"
#include "real.h"
#include "socks4.h"

enum kind { K_METHOD, K_AUTH, K_FINAL, K_S4, K_HTTP };

static const char *const what[] = {
	[K_METHOD] = "to the greeting", [K_AUTH] = "to the authentication",
	[K_FINAL] = "to the request", [K_S4] = "to the request", [K_HTTP] = "to CONNECT",
};

/* How many bytes of each reply to read first. */
static const size_t first_need[] = {
	[K_METHOD] = 2, [K_AUTH] = 2, [K_FINAL] = 4, [K_S4] = SFY_S4_REPLY_LEN, [K_HTTP] = 0,
};

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

static int io_fail(struct sfy_hop_error *e, int err, const char *w)
{
	if (err == -ECONNRESET)
		return fail(e, SFY_BLAME_HOP, -ECONNRESET, "proxy closed the connection %s", w);
	if (err == -ETIMEDOUT)
		return fail(e, SFY_BLAME_HOP, -ETIMEDOUT, "no reply %s within the timeout", w);
	fail(e, SFY_BLAME_HOP, err, "I/O error %s", w);
	snprintf(e->why + strlen(e->why), sizeof(e->why) - strlen(e->why), ": %s",
		 strerror(-err));
	return err;
}

static void add_reply(struct sfy_hop *h, enum kind k)
{
	h->kind[h->nreplies++] = (uint8_t)k;
}

/* Part k of the messages ends at end (step by step); pipelined: the last
 * part grows (one part, or two with isolation: init_socks5). */
static void add_part(struct sfy_hop *h, size_t end)
{
	if (h->pipelined && h->nparts)
		h->part_end[h->nparts - 1] = end;
	else
		h->part_end[h->nparts++] = end;
}

static int init_socks5(struct sfy_hop *h, enum sfy_s5_cmd cmd, const struct sfy_addr *dst,
		       const char *iso)
{
	const struct sfy_proxy *p = h->p;
	bool auth = p->has_user;
	h->iso = !auth && iso;
	/* Auth is pipelined only when it is the only method offered, so the
	 * server cannot pick another and misread our auth bytes. */
	ssize_t g = sfy_s5_build_greeting(h->out, sizeof(h->out), !auth, auth || h->iso);
	if (g < 0)
		return fail(&h->e, SFY_BLAME_HOP, (int)g, "cannot build greeting");
	size_t len = (size_t)g;
	add_part(h, len);
	add_reply(h, K_METHOD);
	if (auth || h->iso) {
		ssize_t a = sfy_s5_build_auth(h->out + len, sizeof(h->out) - len,
					      auth ? p->user : SFY_ISOLATE_USER, auth ? p->pass : iso);
		if (a < 0)
			return fail(&h->e, SFY_BLAME_HOP, (int)a, "bad credentials");
		h->auth_at = len;
		h->auth_len = (size_t)a;
		len += (size_t)a;
		/* Two methods offered: the greeting is a part of its own, the
		 * rest waits for the server's choice (judge() drops the auth
		 * when it picks none). */
		if (h->iso && h->pipelined)
			h->part_end[h->nparts++] = len;
		else
			add_part(h, len);
		add_reply(h, K_AUTH);
	}
	ssize_t q = sfy_s5_build_request(h->out + len, sizeof(h->out) - len, cmd, dst);
	if (q < 0)
		return fail(&h->e, SFY_BLAME_TARGET, (int)q, "cannot encode the destination");
	len += (size_t)q;
	add_part(h, len);
	add_reply(h, K_FINAL);
	h->out_len = len;
	return 0;
}

static int init_socks4(struct sfy_hop *h, enum sfy_s4_cmd cmd, const struct sfy_addr *dst)
{
	const struct sfy_proxy *p = h->p;
	int a4 = p->proto == SFY_PROTO_SOCKS4A;
	if (dst->type == SFY_ATYP_DOMAIN && !a4)
		return fail(&h->e, SFY_BLAME_TARGET, -EAFNOSUPPORT,
			    "socks4 cannot carry host names (use socks4a)");
	if (dst->type == SFY_ATYP_IPV6)
		return fail(&h->e, SFY_BLAME_TARGET, -EAFNOSUPPORT,
			    "SOCKS4 cannot carry IPv6 destinations");
	ssize_t q = sfy_s4_build_request(h->out, sizeof(h->out), cmd, dst,
					 p->has_user ? p->user : NULL, a4);
	if (q < 0)
		return fail(&h->e, SFY_BLAME_TARGET, (int)q, "cannot encode the destination");
	h->out_len = (size_t)q;
	add_part(h, h->out_len);
	add_reply(h, K_S4);
	return 0;
}

static int init_http(struct sfy_hop *h, const struct sfy_addr *dst)
{
	const struct sfy_proxy *p = h->p;
	_Static_assert(sizeof(h->out) >= SFY_HTTP_REQ_MAX, "room for any CONNECT");
	ssize_t q = sfy_http_build_connect((char *)h->out, sizeof(h->out), dst,
					   p->has_user ? p->user : NULL,
					   p->has_user ? p->pass : NULL);
	if (q < 0)
		return fail(&h->e, SFY_BLAME_TARGET, (int)q, "cannot encode the destination");
	h->out_len = (size_t)q;
	add_part(h, h->out_len);
	add_reply(h, K_HTTP);
	return 0;
}

int sfy_hop_init(struct sfy_hop *h, const struct sfy_proxy *p, enum sfy_s5_cmd cmd,
		 const struct sfy_addr *dst, bool pipelined, bool probe, int64_t deadline,
		 const char *iso)
{
	memset(h, 0, offsetof(struct sfy_hop, out));
	h->p = p;
	h->pipelined = pipelined;
	h->probe = pipelined && probe;
	h->deadline = deadline;
	h->e.blame = SFY_BLAME_HOP;
	if ((cmd == SFY_S5_RESOLVE || cmd == SFY_S5_RESOLVE_PTR) &&
	    p->proto != SFY_PROTO_SOCKS5 && p->proto != SFY_PROTO_SOCKS5H)
		return fail(&h->e, SFY_BLAME_HOP, -EOPNOTSUPP, "RESOLVE needs a SOCKS5 hop");
	switch (p->proto) {
	case SFY_PROTO_SOCKS5:
	case SFY_PROTO_SOCKS5H:
		return init_socks5(h, cmd, dst, iso);
	case SFY_PROTO_SOCKS4:
	case SFY_PROTO_SOCKS4A:
		/* SOCKS4 knows CONNECT and BIND (CD 1 and 2, as SOCKS5's). */
		if (cmd != SFY_S5_CONNECT && cmd != SFY_S5_BIND)
			return fail(&h->e, SFY_BLAME_HOP, -EOPNOTSUPP,
				    "SOCKS4 has no UDP ASSOCIATE");
		return init_socks4(h, cmd == SFY_S5_BIND ? SFY_S4_BIND : SFY_S4_CONNECT, dst);
	case SFY_PROTO_HTTP:
		if (cmd != SFY_S5_CONNECT)
			return fail(&h->e, SFY_BLAME_HOP, -EOPNOTSUPP, "HTTP CONNECT has no %s",
				    cmd == SFY_S5_BIND ? "BIND" : "UDP ASSOCIATE");
		return init_http(h, dst);
	}
	return fail(&h->e, SFY_BLAME_HOP, -EINVAL, "unknown protocol");
}

/* Sends out[sent, end). 0 when done, SFY_HOP_OUT, or -errno. */
static int send_upto(struct sfy_hop *h, int fd, size_t end)
{
	while (h->sent < end) {
		if (h->sent == 0)
			h->t0 = sfy_now_ms();
		ssize_t n = sfy_real()->send(fd, h->out + h->sent, end - h->sent,
					     MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			h->sent += (size_t)n;
			if (h->sent == h->out_len)
				h->req_sent = sfy_now_ms();
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return SFY_HOP_OUT;
		return io_fail(&h->e, n < 0 ? -errno : -EIO, what[h->kind[h->reply]]);
	}
	return 0;
}

int sfy_hop_flush_first(struct sfy_hop *h, int fd)
{
	return send_upto(h, fd, h->part_end[0]);
}

/* Reads into in what has arrived of the current fixed-length reply. 0 when
 * in_len == need, 1 to wait, -errno (-ECONNRESET on a close). */
static int read_fixed(struct sfy_hop *h, int fd, uint8_t *in)
{
	while (h->in_len < h->need) {
		ssize_t n = sfy_real()->recv(fd, in + h->in_len, h->need - h->in_len, MSG_DONTWAIT);
		if (n > 0) {
			h->in_len += (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 1;
		return -errno;
	}
	return 0;
}

/* An HTTP reply head has no length field: its end is the first blank line.
 * Peek at whatever has arrived, let the (pure) parser find the end, then
 * consume exactly the head -- the tunnel's first bytes may come in the same
 * segment and belong to the program. While the end has not arrived, all
 * that was peeked is head: consume it and wait for more. 0 with *status
 * when complete, 1 to wait, -errno, or -EPROTO when malformed. */
static int read_http(struct sfy_hop *h, int fd, uint8_t *in, int *status)
{
	for (;;) {
		ssize_t n = sfy_real()->recv(fd, in + h->in_len, SFY_HOP_IN_MAX - h->in_len,
					     MSG_PEEK | MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -errno;
		}
		size_t need = 0, take;
		switch (sfy_http_parse_reply(in, h->in_len + (size_t)n, &need, status)) {
		case SFY_PARSE_COMPLETE:
			take = need - h->in_len;
			break;
		case SFY_PARSE_NEED:
			take = (size_t)n;
			break;
		default:
			return -EPROTO;
		}
		ssize_t got = sfy_real()->recv(fd, in + h->in_len, take, MSG_DONTWAIT);
		if (got != (ssize_t)take)
			return got < 0 ? -errno : -EIO;   /* peeked bytes vanished */
		h->in_len += take;
		if (h->in_len == need)
			return 0;
	}
}

typedef enum sfy_parse (*parse_fn)(const uint8_t *, size_t, size_t *, void *);

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

/* What a complete reply was parsed into. */
struct reply {
	uint8_t byte;                   /* method, auth status */
	int status;                     /* HTTP */
	struct sfy_s5_reply s5;
	struct sfy_s4_reply s4;
};

/* The server picked no authentication over our isolation credentials:
 * they never go out. The request moves over them; the messages after the
 * greeting are one part, nothing of which was sent early, so there is no
 * pipelining to probe. */
static void drop_auth(struct sfy_hop *h)
{
	size_t at = h->auth_at, n = h->auth_len;
	memmove(h->out + at, h->out + at + n, h->out_len - at - n);
	memset(h->out + h->out_len - n, 0, n);
	h->out_len -= n;
	h->nparts = 2;
	h->part_end[1] = h->out_len;
	h->kind[1] = K_FINAL;
	h->nreplies = 2;
	h->probe = false;
}

/* A complete reply of kind k: what it says. 0 to go on, or -errno. */
static int judge(struct sfy_hop *h, enum kind k, const struct reply *rp)
{
	struct sfy_hop_error *e = &h->e;
	bool auth = h->p->has_user;
	switch (k) {
	case K_METHOD: {
		uint8_t method = rp->byte;
		if (method == SFY_S5_AUTH_NO_ACCEPTABLE)
			return fail(e, SFY_BLAME_HOP, -EACCES, "proxy accepts none of our methods%s",
				    auth ? " (username/password)"
				    : h->iso ? " (none, username/password)" : " (no authentication)");
		if (h->iso && method == SFY_S5_AUTH_NONE)
			drop_auth(h);
		else if (method != (auth || h->iso ? SFY_S5_AUTH_USERPASS : SFY_S5_AUTH_NONE))
			return fail(e, SFY_BLAME_HOP, -EPROTO,
				    "proxy chose method 0x%02x, which we did not offer", method);
		/* The method reply's round trip scales the window: on a slow
		 * path a pipelined reply is late for the same reason. */
		if (h->probe) {
			int64_t now = sfy_now_ms(), win = 4 * (now - h->t0);
			if (win < SFY_PIPELINE_PROBE_MS)
				win = SFY_PIPELINE_PROBE_MS;
			h->probe_until = now + win;
		}
		return 0;
	}
	case K_AUTH:
		h->probe_until = 0;
		if (rp->byte != 0)
			return fail(e, SFY_BLAME_HOP, -EACCES, "username/password rejected");
		return 0;
	case K_FINAL:
		h->has_rep = true;
		h->rep = rp->s5.rep;
		/* Codes past RFC 1928's (Tor's 0xF0-0xF7, others') carry their
		 * number too: the name alone does not say which code came. */
		if (rp->s5.rep != SFY_S5_SUCCEEDED)
			return fail(e, SFY_BLAME_TARGET, -sfy_errno_from_s5(rp->s5.rep),
				    rp->s5.rep > SFY_S5_ATYP_NOT_SUPPORTED ? "%s (0x%02x)" : "%s",
				    sfy_s5_rep_str(rp->s5.rep), rp->s5.rep);
		h->bnd = rp->s5.bnd;
		return 0;
	case K_S4:
		if (rp->s4.code != SFY_S4_GRANTED)
			return fail(e, rp->s4.code == SFY_S4_REJECTED ? SFY_BLAME_TARGET
								       : SFY_BLAME_HOP,
				    -sfy_errno_from_s4(rp->s4.code), "%s",
				    sfy_s4_code_str(rp->s4.code));
		h->bnd = rp->s4.bnd;
		return 0;
	case K_HTTP:
		if (rp->status / 100 != 2) {
			int status = rp->status;
			char s[16];
			snprintf(s, sizeof(s), "%d", status);
			return fail(e, status == 401 || status == 407 ? SFY_BLAME_HOP
								      : SFY_BLAME_TARGET,
				    -sfy_errno_from_http(status), "HTTP status %s", s);
		}
		return 0;
	}
	return -EINVAL;
}

int64_t sfy_hop_deadline(const struct sfy_hop *h)
{
	if (h->probe_until && h->in_len == 0 && h->probe_until < h->deadline)
		return h->probe_until;
	return h->deadline;
}

/* Nothing to read yet: wait, or the window or the deadline is over. */
static int waiting(struct sfy_hop *h)
{
	int64_t now = sfy_now_ms();
	if (h->probe_until && h->in_len == 0 && now >= h->probe_until &&
	    h->probe_until < h->deadline)
		return -SFY_ESILENT;
	if (now >= h->deadline)
		return io_fail(&h->e, -ETIMEDOUT, what[h->kind[h->reply]]);
	return SFY_HOP_IN;
}

int sfy_hop_step(struct sfy_hop *h, int fd, uint8_t in[static SFY_HOP_IN_MAX])
{
	static const parse_fn parse[] = {
		[K_METHOD] = p_method, [K_AUTH] = p_auth, [K_FINAL] = p_s5, [K_S4] = p_s4,
	};
	while (h->reply < h->nreplies) {
		size_t part = h->reply < h->nparts ? h->reply : (size_t)h->nparts - 1;
		int r = send_upto(h, fd, h->part_end[part]);
		if (r != 0) {
			if (r == SFY_HOP_OUT && sfy_now_ms() >= h->deadline)
				return io_fail(&h->e, -ETIMEDOUT, what[h->kind[h->reply]]);
			return r;
		}
		enum kind k = h->kind[h->reply];
		if (h->need == 0 && h->in_len == 0)
			h->need = first_need[k];
		struct reply rp = { 0 };
		if (k == K_HTTP) {
			r = read_http(h, fd, in, &rp.status);
			if (r == -EPROTO)
				return fail(&h->e, SFY_BLAME_HOP, -EPROTO,
					    "malformed reply to CONNECT");
		} else {
			for (;;) {
				r = read_fixed(h, fd, in);
				if (r != 0)
					break;
				void *out = k == K_FINAL ? (void *)&rp.s5
					    : k == K_S4 ? (void *)&rp.s4 : &rp.byte;
				enum sfy_parse pr = parse[k](in, h->in_len, &h->need, out);
				if (pr == SFY_PARSE_MALFORMED)
					return fail(&h->e, SFY_BLAME_HOP, -EPROTO, "malformed reply %s",
						    what[k]);
				if (pr == SFY_PARSE_COMPLETE)
					break;
				if (h->need > SFY_HOP_IN_MAX)
					return fail(&h->e, SFY_BLAME_HOP, -EPROTO,
						    "reply %s too long", what[k]);
			}
		}
		if (r == 1)
			return waiting(h);
		if (r < 0) {
			/* Closed before a byte of the reply after the method's:
			 * it dropped what we sent early. */
			if (r == -ECONNRESET && h->in_len == 0 && h->probe_until)
				return -SFY_ESTEPWISE;
			return io_fail(&h->e, r, what[k]);
		}
		if ((r = judge(h, k, &rp)) < 0)
			return r;
		h->reply++;
		h->in_len = h->need = 0;
	}
	return 0;
}

void sfy_hop_resume(struct sfy_hop *h)
{
	h->probe_until = h->deadline;
}

bool sfy_hop_answered(const struct sfy_hop *h)
{
	return h->reply > 0;
}

int sfy_hop_request(int fd, const struct sfy_proxy *p, enum sfy_s5_cmd cmd,
		    const struct sfy_addr *dst, bool pipelined, bool probe, int64_t deadline,
		    struct sfy_addr *bnd, struct sfy_hop_error *e)
{
	static _Thread_local uint8_t in[SFY_HOP_IN_MAX];
	static _Thread_local struct sfy_hop h;
	int r = sfy_hop_init(&h, p, cmd, dst, pipelined, probe, deadline, NULL);
	while (r == 0) {
		r = sfy_hop_step(&h, fd, in);
		if (r <= 0)
			break;
		int64_t left = sfy_hop_deadline(&h) - sfy_now_ms();
		struct pollfd pf = { .fd = fd, .events = (short)r };
		if (left > 0)
			sfy_real()->poll(&pf, 1, left > 60000 ? 60000 : (int)left);
		r = 0;
	}
	if (r == 0 && bnd)
		*bnd = h.bnd;
	*e = h.e;
	return r;
}
