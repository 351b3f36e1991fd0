/* libFuzzer target: the DNS codec (dns_msg.h). The input is parsed as a
 * query; for every parse that is not dropped each kind of reply is built
 * and read back by a small checker written here from RFC 1035, which
 * shares no code with the codec. Invariants (trap on violation):
 *   - DROP exactly when there is no header or QR is set; ANSWER only for a
 *     QUERY with QDCOUNT 1, no answer/authority records;
 *   - a kept question is the input's bytes at offset 12, its labels plain,
 *     and the normalized name is those labels lower-cased and dot-joined;
 *   - every reply: ID, opcode, RD, CD copied; QR, RA set; AA, Z, AD clear;
 *     the rcode asked for; counts match the sections, which end exactly at
 *     the reply's end; the question identical; answers point at offset 12;
 *     our OPT has version 0, our size, no options, the query's DO bit;
 *     TC exactly when the whole reply would pass the client's limit;
 *   - a PTR answer whose target is the parsed name carries the question's
 *     name lower-cased;
 *   - the reverse-name helpers accept only their canonical spelling;
 *   - the TCP framer consumes the input as length-prefixed messages. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dns_msg.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned u16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* Plain labels ending in 0 (what a question must be): its length or 0. */
static size_t plain_name_len(const uint8_t *p, size_t avail)
{
	size_t i = 0;

	while (i < avail && p[i] != 0) {
		if (p[i] > 63)
			return 0;
		i += 1 + (size_t)p[i];
	}
	return i < avail && i + 1 <= 255 ? i + 1 : 0;
}

struct expect {
	uint8_t rcode;
	size_t nans;          /* answers asked for */
	size_t full;          /* their total size on the wire */
	bool tcp;
};

/* Reads a reply as a client would and checks it against the query it
 * answers (the input bytes) and what was asked for. */
static void check_reply(const uint8_t *in, const struct sfy_dns_query *q,
			const uint8_t *r, size_t rlen, const struct expect *e)
{
	unsigned fin = u16(in + 2), f = u16(r + 2);
	size_t base = 12 + q->qlen + (q->edns ? 11 : 0);
	size_t limit = e->tcp ? 65535 : !q->edns ? 512 : q->edns_udp_size < 512 ? 512 : q->edns_udp_size;
	bool tc = base + e->full > limit;
	size_t off = 12;

	CHECK(rlen >= 12 && !memcmp(r, in, 2));
	CHECK((f & 0x8000) && (f & 0x0080) && !(f & 0x0400) && !(f & 0x0060));
	CHECK((f & 0x7800) == (fin & 0x7800) && (f & 0x0110) == (fin & 0x0110));
	CHECK((f & 0xf) == (e->rcode & 0xf));
	CHECK(!!(f & 0x0200) == tc);
	CHECK(u16(r + 4) == (q->qlen ? 1u : 0u));
	CHECK(u16(r + 6) == (tc ? 0 : e->nans) && u16(r + 8) == 0);
	CHECK(u16(r + 10) == (q->edns ? 1u : 0u));
	if (q->qlen) {
		CHECK(rlen >= 12 + q->qlen && !memcmp(r + 12, in + 12, q->qlen));
		off += q->qlen;
	}
	for (size_t i = 0; !tc && i < e->nans; i++) {
		CHECK(rlen - off >= 12 && u16(r + off) == 0xc00c);
		unsigned type = u16(r + off + 2), rdlen = u16(r + off + 10);
		CHECK(u16(r + off + 4) == 1 && !(r[off + 6] & 0x80));
		off += 12;
		CHECK(rlen - off >= rdlen);
		if (type == 1 || type == 28)
			CHECK(rdlen == (type == 1 ? 4u : 16u));
		else
			CHECK(type == 12 && plain_name_len(r + off, rdlen) == rdlen);
		off += rdlen;
	}
	if (q->edns) {
		static const uint8_t opt[] = { 0, 0, 41, 0x04, 0xd0 };
		CHECK(rlen - off >= 11 && !memcmp(r + off, opt, sizeof opt));
		CHECK(r[off + 5] == e->rcode >> 4 && r[off + 6] == 0);
		CHECK(u16(r + off + 7) == (q->edns_do ? 0x8000u : 0) && u16(r + off + 9) == 0);
		off += 11;
	}
	CHECK(off == rlen);
	CHECK(e->tcp || rlen <= limit);
}

/* A: 4, AAAA: 16, PTR "a.b" or "a.b.": 1 + 1 + 1 + 1 + 1 bytes. */
static size_t rdata_len(const struct sfy_dns_answer *a)
{
	size_t l;

	if (a->type != SFY_DNS_T_PTR)
		return a->type == SFY_DNS_T_A ? 4 : 16;
	l = strlen(a->ptr);
	return l + 2 - (a->ptr[l - 1] == '.');
}

static void build_and_check(const uint8_t *in, const struct sfy_dns_query *q, uint8_t rcode,
			    const struct sfy_dns_answer *an, size_t n, bool tcp)
{
	static uint8_t out[70000];
	const struct sfy_dns_reply r = { .rcode = rcode, .an = an, .n = n, .ttl = 30, .tcp = tcp };
	struct expect e = { .rcode = rcode, .nans = n, .tcp = tcp };
	ssize_t len;

	for (size_t i = 0; i < n; i++)
		e.full += 12 + rdata_len(&an[i]);
	len = sfy_dns_build_reply(out, sizeof out, q, &r);
	if ((n && (!q->qlen || rcode)) || (rcode == SFY_DNS_BADVERS && !q->edns)) {
		CHECK(len == -22);      /* -EINVAL */
		return;
	}
	CHECK(len > 0);
	check_reply(in, q, out, (size_t)len, &e);
	/* every reply without answers fits the documented bound */
	if (!n || (out[2] & 0x02))
		CHECK((size_t)len <= SFY_DNS_SMALL_REPLY_MAX);
}

/* The question's name as the checker reads it: labels lower-cased. */
static void check_name(const uint8_t *in, const struct sfy_dns_query *q)
{
	char want[256];
	size_t o = 0, w = 0;

	while (in[12 + o]) {
		size_t l = in[12 + o];
		if (w)
			want[w++] = '.';
		for (size_t i = 0; i < l; i++) {
			char c = (char)in[12 + o + 1 + i];
			want[w++] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
		}
		o += 1 + l;
	}
	want[w] = '\0';
	CHECK(o + 1 + 4 == q->qlen);
	if (q->name_ok)
		CHECK(!strcmp(want, q->name) && strlen(q->name) == w);
	else
		CHECK(q->name[0] == '\0' && w > 0);
}

/* The reverse helpers accept a name only in its canonical spelling. */
static void check_ptr(const char *name)
{
	uint8_t ip[16];
	char canon[80];

	if (sfy_dns_ptr_v4(name, ip)) {
		snprintf(canon, sizeof canon, "%u.%u.%u.%u.in-addr.arpa", ip[3], ip[2], ip[1], ip[0]);
		CHECK(!strcasecmp(canon, name));
	}
	if (sfy_dns_ptr_v6(name, ip)) {
		size_t w = 0;
		for (int i = 15; i >= 0; i--)
			w += (size_t)snprintf(canon + w, sizeof canon - w, "%x.%x.", ip[i] & 0xf,
					      ip[i] >> 4);
		snprintf(canon + w, sizeof canon - w, "ip6.arpa");
		CHECK(!strcasecmp(canon, name));
	}
}

static void replies(const uint8_t *in, const struct sfy_dns_query *q)
{
	static const uint8_t rcodes[] = { 0, 1, 2, 3, 4, 5, 9, 15, 16 };
	struct sfy_dns_answer an[40];
	uint8_t wire[256];

	for (size_t i = 0; i < sizeof rcodes; i++) {
		build_and_check(in, q, rcodes[i], NULL, 0, false);
		build_and_check(in, q, rcodes[i], NULL, 0, true);
	}
	for (size_t i = 0; i < 40; i++)
		an[i] = (struct sfy_dns_answer){ .type = i % 2 ? SFY_DNS_T_AAAA : SFY_DNS_T_A,
						 .ip = { (uint8_t)i } };
	for (size_t n = 1; n <= 40; n += 13) {
		build_and_check(in, q, 0, an, n, false);
		build_and_check(in, q, 0, an, n, true);
	}
	build_and_check(in, q, SFY_DNS_NXDOMAIN, an, 1, false);
	if (!q->qlen || !q->name_ok || !q->name[0])
		return;
	/* the parsed name as a PTR target: the question's name, lower-cased */
	an[0] = (struct sfy_dns_answer){ .type = SFY_DNS_T_PTR, .ptr = q->name };
	build_and_check(in, q, 0, an, 1, false);
	static uint8_t out[1024];
	const struct sfy_dns_reply r = { .an = an, .n = 1 };
	ssize_t len = sfy_dns_build_reply(out, sizeof out, q, &r);
	size_t nl = q->qlen - 4;
	CHECK(len > 0);
	for (size_t i = 0; i < nl; i++) {
		uint8_t c = in[12 + i];
		wire[i] = c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
	}
	if (!(out[2] & 0x02))
		CHECK(!memcmp(out + 12 + q->qlen + 12, wire, nl));
}

static void frames(const uint8_t *data, size_t size)
{
	struct sfy_dns_query q;
	const uint8_t *msg;
	size_t need, ml;

	while (sfy_dns_tcp_next(data, size, &need, &msg, &ml) == SFY_PARSE_COMPLETE) {
		CHECK(need == 2 + ml && need <= size && msg == data + 2);
		CHECK(u16(data) == ml);
		(void)sfy_dns_parse_query(msg, ml, &q);
		data += need;
		size -= need;
	}
	CHECK(need > size && need <= 2 + 65535);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sfy_dns_query q;
	enum sfy_dns_verdict v = sfy_dns_parse_query(data, size, &q);
	char text[300];

	if (size < 12 || (data[2] & 0x80)) {
		CHECK(v == SFY_DNS_DROP);
	} else {
		CHECK(v != SFY_DNS_DROP && q.id == u16(data));
		if (v == SFY_DNS_ANSWER)
			CHECK(!(data[2] & 0x78) && u16(data + 4) == 1 && !u16(data + 6) &&
			      !u16(data + 8) && q.qlen && !q.rcode);
		else
			CHECK(q.rcode == SFY_DNS_FORMERR || q.rcode == SFY_DNS_NOTIMP ||
			      (q.rcode == SFY_DNS_BADVERS && q.edns && q.edns_version));
		if (q.qlen) {
			CHECK(q.qlen <= size - 12 && !memcmp(q.question, data + 12, q.qlen));
			CHECK(plain_name_len(data + 12, q.qlen) == q.qlen - 4);
			check_name(data, &q);
			check_ptr(q.name);
		}
		CHECK(!q.edns || q.edns_udp_size >= 512);
		replies(data, &q);
	}
	frames(data, size);
	/* the raw input as a name, for the reverse helpers alone */
	size_t tl = size < sizeof text - 1 ? size : sizeof text - 1;
	memcpy(text, data, tl);
	text[tl] = '\0';
	check_ptr(text);
	return 0;
}
