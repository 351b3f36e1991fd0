/* libFuzzer target: one hop's handshake (sfy_hop_request) over a socketpair,
 * the fuzz input playing the proxy's replies.
 *
 * Input: 3 header bytes, then the reply bytes.
 *   h0  bits 0-2 protocol (mod 5: socks4 socks4a socks5 socks5h http),
 *       bit 3 pipelined, bit 4 probe, bit 5 sentinel, bit 6 UDP ASSOCIATE
 *   h1  bits 0-1 destination (IPv4, IPv6, name, 255-byte name),
 *       bit 2 credentials, bit 3 255-byte credentials
 *   h2  chunking seed: 0 = everything in one write; else up to 32 chunks
 *       of pseudo-random sizes, some "trickled" (written only once the
 *       client has read everything before them, so it sees short reads)
 * A peer thread writes the chunks, then the sentinel (if set), then shuts
 * its side for writing: the client always meets EOF instead of waiting, so
 * nothing sleeps and the deadline is only a backstop.
 *
 * Invariants (trap on violation):
 *   - the result is 0, a negative errno or (pipelined + probe) -SFY_ESTEPWISE;
 *     it comes before the deadline (every byte and the EOF are there);
 *   - it succeeds exactly when the replies, parsed by the codecs on their
 *     own, say it should (a complete reply that grants the request);
 *   - on success it consumed exactly the replies: what is left in the
 *     socket is the rest of the input, then the sentinel; bnd is the
 *     reply's address. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handshake.h"
#include "http_connect.h"
#include "io.h"
#include "real.h"
#include "socks4.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* Bounds the writes per input: an AF_UNIX socket charges each write's full
 * buffer overhead, and a client that stopped reading must never leave the
 * peer blocked in send(). */
#define MAX_CHUNKS 32
static const uint8_t sentinel[] = "\xa5SENTINEL\x5a";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state;              /* 0 idle, 1 job posted, 2 job done */
	int fd, client;
	const uint8_t *buf;
	size_t len;
	uint32_t seed;
	bool sentinel;
	atomic_bool hop_done;
} peer = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void send_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		CHECK(w > 0);
		p += w;
		n -= (size_t)w;
	}
}

/* Until the client has read every byte written so far, or gave up. */
static void wait_drained(void)
{
	int q;

	while (!atomic_load(&peer.hop_done)) {
		if (ioctl(peer.client, FIONREAD, &q) == 0 && q == 0)
			return;
		sched_yield();
	}
}

static uint32_t next(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* Splits len bytes by seed: sizes into n[], true in t[] for a trickled
 * chunk. Returns the number of chunks. */
static int plan(uint32_t seed, size_t len, size_t n[static MAX_CHUNKS], bool t[static MAX_CHUNKS])
{
	size_t pos = 0;
	int k;

	for (k = 0; pos < len; k++) {
		n[k] = len - pos;
		t[k] = false;
		if (seed && k < MAX_CHUNKS - 1) {
			uint32_t r = next(&seed);
			/* mostly tiny pieces (split fields), sometimes bigger */
			size_t want = r & 0x100 ? 1 + (r & 3) : 1 + r % 300;
			if (want < n[k])
				n[k] = want;
			t[k] = k && r & 0x200;
		}
		pos += n[k];
	}
	return k;
}

static void deliver(void)
{
	size_t n[MAX_CHUNKS], pos = 0;
	bool t[MAX_CHUNKS];
	int k = plan(peer.seed, peer.len, n, t);

	for (int i = 0; i < k; i++) {
		if (t[i])
			wait_drained();
		send_all(peer.fd, peer.buf + pos, n[i]);
		pos += n[i];
	}
	if (peer.sentinel)
		send_all(peer.fd, sentinel, sizeof sentinel);
	CHECK(shutdown(peer.fd, SHUT_WR) == 0);
}

static bool trickles(uint32_t seed, size_t len)
{
	size_t n[MAX_CHUNKS];
	bool t[MAX_CHUNKS];
	int k = plan(seed, len, n, t);

	for (int i = 0; i < k; i++)
		if (t[i])
			return true;
	return false;
}

static void *peer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&peer.mu);
	for (;;) {
		while (peer.state != 1)
			pthread_cond_wait(&peer.cv, &peer.mu);
		pthread_mutex_unlock(&peer.mu);
		deliver();
		pthread_mutex_lock(&peer.mu);
		peer.state = 2;
		pthread_cond_broadcast(&peer.cv);
	}
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	pthread_t t;

	(void)argc, (void)argv;
	/* The library reaches libc through dlsym(RTLD_NEXT), which from this
	 * executable skips ASan's interceptors: point the socket calls at them
	 * so every byte recv() writes is bounds-checked. */
	struct sfy_real *r = (struct sfy_real *)sfy_real();
	r->send = send;
	r->recv = recv;
	r->sendto = sendto;
	r->recvfrom = recvfrom;
	r->sendmsg = sendmsg;
	r->recvmsg = recvmsg;
	r->read = read;
	r->write = write;
	CHECK(pthread_create(&t, NULL, peer_main, NULL) == 0);
	return 0;
}

static void same_addr(const struct sfy_addr *a, const struct sfy_addr *b)
{
	CHECK(a->type == b->type && a->port == b->port);
	if (a->type == SFY_ATYP_DOMAIN)
		CHECK(!strcmp(a->name, b->name));
	else
		CHECK(!memcmp(a->ip, b->ip, a->type == SFY_ATYP_IPV4 ? 4 : 16));
}

/* What the codecs alone say about the replies: does the hop succeed, and
 * how many bytes do its replies take (*used)? */
static bool model(const struct sfy_proxy *p, enum sfy_s5_cmd cmd, const struct sfy_addr *dst,
		  const uint8_t *b, size_t n, size_t *used, struct sfy_addr *bnd)
{
	size_t need;

	if (p->proto == SFY_PROTO_SOCKS5 || p->proto == SFY_PROTO_SOCKS5H) {
		struct sfy_s5_reply rep;
		size_t off = 2;
		uint8_t v;
		if (sfy_s5_parse_method(b, n, &need, &v) != SFY_PARSE_COMPLETE)
			return false;
		if (v != (p->has_user ? SFY_S5_AUTH_USERPASS : SFY_S5_AUTH_NONE))
			return false;
		if (p->has_user) {
			if (sfy_s5_parse_auth(b + off, n - off, &need, &v) != SFY_PARSE_COMPLETE
			    || v != 0)
				return false;
			off += 2;
		}
		if (sfy_s5_parse_reply(b + off, n - off, &need, &rep) != SFY_PARSE_COMPLETE
		    || rep.rep != SFY_S5_SUCCEEDED)
			return false;
		*used = off + need;
		*bnd = rep.bnd;
		return true;
	}
	if (cmd != SFY_S5_CONNECT)
		return false;
	if (p->proto == SFY_PROTO_HTTP) {
		int st;
		if (sfy_http_parse_reply(b, n, &need, &st) != SFY_PARSE_COMPLETE || st / 100 != 2)
			return false;
		*used = need;
		return true;
	}
	struct sfy_s4_reply r4;
	if (dst->type == SFY_ATYP_IPV6 || (dst->type == SFY_ATYP_DOMAIN &&
					   p->proto == SFY_PROTO_SOCKS4))
		return false;
	if (sfy_s4_parse_reply(b, n, &need, &r4) != SFY_PARSE_COMPLETE
	    || r4.code != SFY_S4_GRANTED)
		return false;
	*used = need;
	*bnd = r4.bnd;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum sfy_proto protos[] = {
		SFY_PROTO_SOCKS4, SFY_PROTO_SOCKS4A, SFY_PROTO_SOCKS5, SFY_PROTO_SOCKS5H,
		SFY_PROTO_HTTP,
	};
	static char longname[SFY_NAME_MAX + 1], longcred[SFY_CRED_MAX + 1];
	struct sfy_proxy p = { .host = "proxy", .port = 1080 };
	struct sfy_addr dst, bnd, want_bnd;
	struct sfy_hop_error e;
	size_t used = 0;
	int sv[2];

	if (size < 3)
		return 0;
	uint8_t h0 = data[0], h1 = data[1], h2 = data[2];
	const uint8_t *reply = data + 3;
	size_t len = size - 3;
	bool pipelined = h0 & 8, probe = h0 & 16, sent = h0 & 32;
	/* bit 128: Tor's RESOLVE / RESOLVE_PTR (SOCKS5 only, like UDP) */
	enum sfy_s5_cmd cmd = h0 & 128 ? (h0 & 64 ? SFY_S5_RESOLVE_PTR : SFY_S5_RESOLVE)
			      : h0 & 64 ? SFY_S5_UDP_ASSOCIATE : SFY_S5_CONNECT;

	if (!longname[0]) {
		memset(longname, 'a', SFY_NAME_MAX);
		memset(longcred, 'c', SFY_CRED_MAX);
	}
	p.proto = protos[(h0 & 7) % 5];
	switch (h1 & 3) {
	case 0: CHECK(sfy_addr_set_host(&dst, "10.1.2.3", 443) == 0); break;
	case 1: CHECK(sfy_addr_set_host(&dst, "2001:db8::1", 443) == 0); break;
	case 2: CHECK(sfy_addr_set_host(&dst, "example.org", 443) == 0); break;
	default: CHECK(sfy_addr_set_host(&dst, longname, 443) == 0); break;
	}
	if (h1 & 4) {
		p.has_user = p.has_pass = true;
		strcpy(p.user, h1 & 8 ? longcred : "alice");
		strcpy(p.pass, h1 & 8 ? longcred : "s3cret");
	}
	/* The stream the client sees: the replies, then the sentinel. */
	static uint8_t stream[16384];
	size_t slen = len + (sent ? sizeof sentinel : 0);
	if (slen > sizeof stream)
		return 0;
	memcpy(stream, reply, len);
	if (sent)
		memcpy(stream + len, sentinel, sizeof sentinel);
	bool ok = model(&p, cmd, &dst, stream, slen, &used, &want_bnd);

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	peer.fd = sv[1];
	peer.client = sv[0];
	peer.buf = reply;
	peer.len = len;
	peer.seed = h2;
	peer.sentinel = sent;
	atomic_store(&peer.hop_done, false);
	/* Without a trickled chunk every byte can be there before the call
	 * (at most MAX_CHUNKS + 1 writes fit the socket buffer): no thread
	 * hand-off, twice the speed. */
	bool threaded = trickles(h2, len);
	if (threaded) {
		pthread_mutex_lock(&peer.mu);
		peer.state = 1;
		pthread_cond_broadcast(&peer.cv);
		pthread_mutex_unlock(&peer.mu);
	} else {
		deliver();
	}

	memset(&bnd, 0, sizeof bnd);
	int64_t deadline = sfy_now_ms() + 5000;
	int r = sfy_hop_request(sv[0], &p, cmd, &dst, pipelined, probe, deadline, &bnd, &e);
	bool in_time = sfy_now_ms() < deadline;

	atomic_store(&peer.hop_done, true);
	if (threaded) {
		pthread_mutex_lock(&peer.mu);
		while (peer.state != 2)
			pthread_cond_wait(&peer.cv, &peer.mu);
		peer.state = 0;
		pthread_mutex_unlock(&peer.mu);
	}

	CHECK(memchr(e.why, 0, sizeof e.why));
	CHECK(r == 0 || (r < 0 && r > -4096) || (r == -SFY_ESTEPWISE && pipelined && probe));
	/* Every byte and the EOF were there: no wait ran into the deadline.
	 * ETIMEDOUT only as a proxy's answer (SOCKS5 "TTL expired"). */
	CHECK(in_time && (r != -ETIMEDOUT || e.blame == SFY_BLAME_TARGET));
	if (ok)
		CHECK(r == 0 || (r == -SFY_ESTEPWISE && pipelined && probe));
	else
		CHECK(r != 0);
	if (r == 0) {
		/* Exactly the replies were read: the rest of the stream is
		 * still there, in order, then EOF. */
		static uint8_t rest[sizeof stream];
		size_t got = 0;
		ssize_t n;
		while ((n = recv(sv[0], rest + got, sizeof rest - got, MSG_DONTWAIT)) > 0)
			got += (size_t)n;
		CHECK(n == 0);
		CHECK(got == slen - used && !memcmp(rest, stream + used, got));
		if (p.proto != SFY_PROTO_HTTP)
			same_addr(&bnd, &want_bnd);
	}
	close(sv[0]);
	close(sv[1]);
	return 0;
}
