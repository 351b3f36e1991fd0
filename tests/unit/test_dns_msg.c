/* DNS codec: queries captured from dig 9 (bytes as it sent them to a UDP
 * socket), hand-built malformed queries, replies checked byte for byte,
 * TCP framing, reverse names, and a timing of parse + build. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "dns_msg.h"

#include "testutil.h"

#define BYTES(...) (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ })

/* Captured with `dig @127.0.0.1 -p PORT +tries=1 ARGS` and a Python UDP
 * socket (dig sets RD and AD; its default EDNS size is 1232). */
static const char DIG_PLAIN_A[] =          /* +noedns +nocookie example.com A */
	"a61401200001000000000000076578616d706c6503636f6d0000010001";
static const char DIG_COOKIE_AAAA[] =      /* +cookie Example.COM AAAA */
	"377101200001000000000001074578616d706c6503434f4d00001c000100002904d000"
	"000000000c000a00087cfb30e05b22a842";
static const char DIG_EDNS1[] =            /* +edns=1 example.com A */
	"cc4b01200001000000000001076578616d706c6503636f6d000001000100002904d000"
	"0100000000";
static const char DIG_PTR4[] =             /* -x 10.1.2.3 */
	"dc430120000100000000000101330132013102313007696e2d61646472046172706100"
	"000c000100002904d0000000000000";
static const char DIG_PTR6[] =             /* -x 2001:db8::567:89ab */
	"a6b00120000100000000000101620161013901380137013601350130013001300130"
	"01300130013001300130013001300130013001300130013001300138016201640130"
	"013101300130013203697036046172706100000c000100002904d0000000000000";
static const char DIG_DO[] =               /* +dnssec example.com A */
	"cb5a01200001000000000001076578616d706c6503636f6d000001000100002904d000"
	"0080000000";
static const char DIG_SRV[] =              /* _http._tcp.example.com SRV */
	"0e7101200001000000000001055f68747470045f746370076578616d706c6503636f6d"
	"000021000100002904d0000000000000";
static const char DIG_ROOT_NS[] =          /* . NS */
	"773c01200001000000000001000002000100002904d0000000000000";
static const char DIG_STATUS[] =           /* +opcode=status example.com */
	"37ee11200001000000000001076578616d706c6503636f6d000001000100002904d000"
	"0000000000";

static size_t unhex(uint8_t *out, size_t cap, const char *hex)
{
	size_t n = 0;

	for (; hex[0] && hex[1]; hex += 2) {
		unsigned v;
		assert_true(n < cap);
		assert_int_equal(sscanf(hex, "%2x", &v), 1);
		out[n++] = (uint8_t)v;
	}
	return n;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* A query: header fields, then body bytes (question and the rest). */
static size_t mkq(uint8_t *buf, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns,
		  uint16_t ar, const uint8_t *body, size_t blen)
{
	const uint16_t h[6] = { 0xbeef, flags, qd, an, ns, ar };

	for (int i = 0; i < 6; i++) {
		buf[2 * i] = (uint8_t)(h[i] >> 8);
		buf[2 * i + 1] = (uint8_t)h[i];
	}
	memcpy(buf + SFY_DNS_HEADER, body, blen);
	return SFY_DNS_HEADER + blen;
}

#define RD 0x0100
/* "a.b" A IN, 9 bytes */
#define Q_AB 1, 'a', 1, 'b', 0, 0, 1, 0, 1
/* OPT: root, type 41, size 1232, rcode 0, version V, flags, rdlen L */
#define OPT(v, l) 0, 0, 41, 0x04, 0xd0, 0, (v), 0, 0, 0, (l)

static void test_dig_queries(void **state)
{
	static const struct {
		const char *what, *hex;
		enum sfy_dns_verdict v;
		uint8_t rcode;
		const char *name;
		uint16_t qtype;
		bool edns, dnssec_ok;
	} t[] = {
		{ "plain A", DIG_PLAIN_A, SFY_DNS_ANSWER, 0, "example.com", 1, false, false },
		{ "cookie AAAA", DIG_COOKIE_AAAA, SFY_DNS_ANSWER, 0, "example.com", 28, true, false },
		{ "edns 1", DIG_EDNS1, SFY_DNS_REJECT, SFY_DNS_BADVERS, "example.com", 1, true, false },
		{ "ptr4", DIG_PTR4, SFY_DNS_ANSWER, 0, "3.2.1.10.in-addr.arpa", 12, true, false },
		{ "do", DIG_DO, SFY_DNS_ANSWER, 0, "example.com", 1, true, true },
		{ "srv", DIG_SRV, SFY_DNS_ANSWER, 0, "_http._tcp.example.com", 33, true, false },
		{ "root", DIG_ROOT_NS, SFY_DNS_ANSWER, 0, "", 2, true, false },
		{ "status", DIG_STATUS, SFY_DNS_REJECT, SFY_DNS_NOTIMP, "example.com", 1, true,
		  false },
	};
	struct sfy_dns_query q;
	uint8_t m[512];

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		size_t n = unhex(m, sizeof m, t[i].hex);
		EQ(sfy_dns_parse_query(m, n, &q), t[i].v, t[i].what);
		EQ(q.id, get16(m), t[i].what);
		EQ(q.rcode, t[i].rcode, t[i].what);
		assert_string_equal(q.name, t[i].name);
		EQ(q.qtype, t[i].qtype, t[i].what);
		EQ(q.edns, t[i].edns, t[i].what);
		EQ(q.edns_do, t[i].dnssec_ok, t[i].what);
		if (t[i].v == SFY_DNS_ANSWER) {
			EQ(q.name_ok, true, t[i].what);
			EQ(q.qclass, SFY_DNS_CLASS_IN, t[i].what);
			EQ(memcmp(q.question, m + SFY_DNS_HEADER, q.qlen), 0, t[i].what);
		}
		if (t[i].edns)
			EQ(q.edns_udp_size, 1232, t[i].what);
	}
}

/* Malformed and odd queries: the verdict, the rcode, whether the question
 * is kept for the reply, and whether EDNS is. */
static void test_malformed(void **state)
{
	static const struct {
		const char *what;
		uint16_t flags, qd, an, ns, ar;
		uint8_t body[300];
		size_t blen;
		enum sfy_dns_verdict v;
		uint8_t rcode;
		bool question, edns;
	} t[] = {
		{ "ok", RD, 1, 0, 0, 0, { Q_AB }, 9, SFY_DNS_ANSWER, 0, true, false },
		{ "QR=1", 0x8000 | RD, 1, 0, 0, 0, { Q_AB }, 9, SFY_DNS_DROP, 0, false, false },
		{ "QR=1 garbage", 0x8000, 7, 7, 7, 7, { 0xc0, 0x0c }, 2, SFY_DNS_DROP, 0, false,
		  false },
		{ "opcode 1", 0x0800, 1, 0, 0, 0, { Q_AB }, 9, SFY_DNS_REJECT, SFY_DNS_NOTIMP,
		  true, false },
		{ "opcode 2", 0x1000, 1, 0, 0, 0, { Q_AB }, 9, SFY_DNS_REJECT, SFY_DNS_NOTIMP,
		  true, false },
		{ "opcode 4 notify", 0x2000, 1, 0, 0, 0, { Q_AB }, 9, SFY_DNS_REJECT,
		  SFY_DNS_NOTIMP, true, false },
		{ "opcode 5 update", 0x2800, 1, 0, 0, 0, { Q_AB }, 9, SFY_DNS_REJECT,
		  SFY_DNS_NOTIMP, true, false },
		{ "opcode 15", 0x7800, 1, 0, 0, 0, { Q_AB }, 9, SFY_DNS_REJECT, SFY_DNS_NOTIMP,
		  true, false },
		{ "opcode 2 with opt", 0x1000, 1, 0, 0, 1, { Q_AB, OPT(0, 0) }, 20,
		  SFY_DNS_REJECT, SFY_DNS_NOTIMP, true, true },
		{ "opcode 2 edns 1", 0x1000, 1, 0, 0, 1, { Q_AB, OPT(1, 0) }, 20,
		  SFY_DNS_REJECT, SFY_DNS_NOTIMP, true, true },
		{ "update sections", 0x2800, 1, 1, 1, 1, { Q_AB, OPT(0, 0) }, 20,
		  SFY_DNS_REJECT, SFY_DNS_NOTIMP, false, false },
		{ "opcode 1 qdcount 0", 0x0800, 0, 0, 0, 0, { 0 }, 0, SFY_DNS_REJECT,
		  SFY_DNS_NOTIMP, false, false },
		{ "qdcount 0", RD, 0, 0, 0, 0, { 0 }, 0, SFY_DNS_REJECT, SFY_DNS_FORMERR, false,
		  false },
		{ "qdcount 2", RD, 2, 0, 0, 0, { Q_AB, Q_AB }, 18, SFY_DNS_REJECT,
		  SFY_DNS_FORMERR, false, false },
		{ "pointer first", RD, 1, 0, 0, 0, { 0xc0, 0x0c, 0, 1, 0, 1 }, 6, SFY_DNS_REJECT,
		  SFY_DNS_FORMERR, false, false },
		{ "pointer after label", RD, 1, 0, 0, 0, { 1, 'a', 0xc0, 0x0c, 0, 1, 0, 1 }, 8,
		  SFY_DNS_REJECT, SFY_DNS_FORMERR, false, false },
		{ "pointer loop", RD, 1, 0, 0, 0, { 1, 'a', 0xc0, 0x0e, 0, 1, 0, 1 }, 8,
		  SFY_DNS_REJECT, SFY_DNS_FORMERR, false, false },
		{ "pointer to header", RD, 1, 0, 0, 0, { 0xc0, 0x00, 0, 1, 0, 1 }, 6,
		  SFY_DNS_REJECT, SFY_DNS_FORMERR, false, false },
		{ "label type 0x40", RD, 1, 0, 0, 0, { 0x41, 'a', 0, 0, 1, 0, 1 }, 7,
		  SFY_DNS_REJECT, SFY_DNS_FORMERR, false, false },
		{ "label type 0x80", RD, 1, 0, 0, 0, { 0x81, 'a', 0, 0, 1, 0, 1 }, 7,
		  SFY_DNS_REJECT, SFY_DNS_FORMERR, false, false },
		{ "label cut", RD, 1, 0, 0, 0, { 5, 'a', 'b' }, 3, SFY_DNS_REJECT,
		  SFY_DNS_FORMERR, false, false },
		{ "no root byte", RD, 1, 0, 0, 0, { 1, 'a' }, 2, SFY_DNS_REJECT, SFY_DNS_FORMERR,
		  false, false },
		{ "no qtype", RD, 1, 0, 0, 0, { 1, 'a', 0 }, 3, SFY_DNS_REJECT, SFY_DNS_FORMERR,
		  false, false },
		{ "half qclass", RD, 1, 0, 0, 0, { 1, 'a', 0, 0, 1, 0 }, 6, SFY_DNS_REJECT,
		  SFY_DNS_FORMERR, false, false },
		{ "empty question", RD, 1, 0, 0, 0, { 0 }, 0, SFY_DNS_REJECT, SFY_DNS_FORMERR,
		  false, false },
		{ "ancount 1", RD, 1, 1, 0, 0, { Q_AB }, 9, SFY_DNS_REJECT, SFY_DNS_FORMERR,
		  true, false },
		{ "nscount 1", RD, 1, 0, 1, 0, { Q_AB }, 9, SFY_DNS_REJECT, SFY_DNS_FORMERR,
		  true, false },
		{ "trailing byte", RD, 1, 0, 0, 0, { Q_AB, 0 }, 10, SFY_DNS_REJECT,
		  SFY_DNS_FORMERR, true, false },
		{ "arcount 1, nothing", RD, 1, 0, 0, 1, { Q_AB }, 9, SFY_DNS_REJECT,
		  SFY_DNS_FORMERR, true, false },
		{ "opt", RD, 1, 0, 0, 1, { Q_AB, OPT(0, 0) }, 20, SFY_DNS_ANSWER, 0, true, true },
		{ "opt, trailing byte", RD, 1, 0, 0, 1, { Q_AB, OPT(0, 0), 0 }, 21,
		  SFY_DNS_REJECT, SFY_DNS_FORMERR, true, false },
		{ "two opts", RD, 1, 0, 0, 2, { Q_AB, OPT(0, 0), OPT(0, 0) }, 31, SFY_DNS_REJECT,
		  SFY_DNS_FORMERR, true, false },
		{ "opt owner not root", RD, 1, 0, 0, 1,
		  { Q_AB, 1, 'x', 0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0 }, 22, SFY_DNS_REJECT,
		  SFY_DNS_FORMERR, true, false },
		{ "opt owner pointer", RD, 1, 0, 0, 1,
		  { Q_AB, 0xc0, 0x0c, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0 }, 21, SFY_DNS_REJECT,
		  SFY_DNS_FORMERR, true, false },
		{ "opt rdata past end", RD, 1, 0, 0, 1, { Q_AB, OPT(0, 4), 0, 10 }, 22,
		  SFY_DNS_REJECT, SFY_DNS_FORMERR, true, false },
		{ "opt option past rdata", RD, 1, 0, 0, 1, { Q_AB, OPT(0, 4), 0, 10, 0, 8 }, 24,
		  SFY_DNS_REJECT, SFY_DNS_FORMERR, true, false },
		{ "opt option head cut", RD, 1, 0, 0, 1, { Q_AB, OPT(0, 3), 0, 10, 0 }, 23,
		  SFY_DNS_REJECT, SFY_DNS_FORMERR, true, false },
		{ "opt cookie", RD, 1, 0, 0, 1,
		  { Q_AB, OPT(0, 12), 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8 }, 32, SFY_DNS_ANSWER, 0,
		  true, true },
		{ "opt fixed part cut", RD, 1, 0, 0, 1, { Q_AB, 0, 0, 41, 4, 0xd0, 0, 0 }, 16,
		  SFY_DNS_REJECT, SFY_DNS_FORMERR, true, false },
		{ "opt version 1", RD, 1, 0, 0, 1, { Q_AB, OPT(1, 0) }, 20, SFY_DNS_REJECT,
		  SFY_DNS_BADVERS, true, true },
		{ "opt version 255", RD, 1, 0, 0, 1, { Q_AB, OPT(255, 0) }, 20, SFY_DNS_REJECT,
		  SFY_DNS_BADVERS, true, true },
		{ "opt version 1, malformed", RD, 1, 0, 0, 1, { Q_AB, OPT(1, 1), 0 }, 21,
		  SFY_DNS_REJECT, SFY_DNS_FORMERR, true, false },
		/* TSIG-like record with a compressed owner: skipped, not followed */
		{ "other additional", RD, 1, 0, 0, 1,
		  { Q_AB, 0xc0, 0x0c, 0, 250, 0, 255, 0, 0, 0, 0, 0, 1, 9 }, 22, SFY_DNS_ANSWER,
		  0, true, false },
		{ "other additional, self pointer", RD, 1, 0, 0, 1,
		  { Q_AB, 0xc0, 0x15, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0 }, 21, SFY_DNS_ANSWER, 0,
		  true, false },
		{ "other additional, pointer cut", RD, 1, 0, 0, 1, { Q_AB, 0xc0 }, 10,
		  SFY_DNS_REJECT, SFY_DNS_FORMERR, true, false },
		{ "other additional, label 64", RD, 1, 0, 0, 1, { Q_AB, 64 }, 10,
		  SFY_DNS_REJECT, SFY_DNS_FORMERR, true, false },
		{ "other then opt", RD, 1, 0, 0, 2,
		  { Q_AB, 1, 'k', 0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0, OPT(0, 0) }, 33,
		  SFY_DNS_ANSWER, 0, true, true },
		{ "root name", RD, 1, 0, 0, 0, { 0, 0, 2, 0, 1 }, 5, SFY_DNS_ANSWER, 0, true,
		  false },
		{ "Z bit ignored", RD | 0x40, 1, 0, 0, 0, { Q_AB }, 9, SFY_DNS_ANSWER, 0, true,
		  false },
		{ "rcode in query ignored", RD | 5, 1, 0, 0, 0, { Q_AB }, 9, SFY_DNS_ANSWER, 0,
		  true, false },
	};
	struct sfy_dns_query q;
	uint8_t m[400];

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		size_t n = mkq(m, t[i].flags, t[i].qd, t[i].an, t[i].ns, t[i].ar, t[i].body,
			       t[i].blen);
		EQ(sfy_dns_parse_query(m, n, &q), t[i].v, t[i].what);
		if (t[i].v == SFY_DNS_DROP)
			continue;
		EQ(q.id, 0xbeef, t[i].what);
		EQ(q.rcode, t[i].rcode, t[i].what);
		EQ(q.qlen != 0, t[i].question, t[i].what);
		EQ(q.edns, t[i].edns, t[i].what);
		if (t[i].question)
			EQ(memcmp(q.question, m + SFY_DNS_HEADER, q.qlen), 0, t[i].what);
		/* no prefix of a good query is a good query: the counts say
		 * where it ends */
		for (size_t k = 0; t[i].v == SFY_DNS_ANSWER && k < n; k++)
			EQ(sfy_dns_parse_query(m, k, &q) == SFY_DNS_ANSWER, false, t[i].what);
	}
}

static void test_short_header(void **state)
{
	struct sfy_dns_query q;
	uint8_t m[32];
	size_t n = mkq(m, RD, 1, 0, 0, 0, BYTES(Q_AB));

	(void)state;
	EQ(sfy_dns_parse_query(NULL, 0, &q), SFY_DNS_DROP, "null");
	for (size_t k = 0; k < SFY_DNS_HEADER; k++)
		EQ(sfy_dns_parse_query(m, k, &q), SFY_DNS_DROP, "short header");
	/* a header alone: its question is missing */
	EQ(sfy_dns_parse_query(m, SFY_DNS_HEADER, &q), SFY_DNS_REJECT, "header only");
	EQ(q.rcode, SFY_DNS_FORMERR, "header only");
	EQ(q.qlen, 0, "header only");
	EQ(sfy_dns_parse_query(m, n, &q), SFY_DNS_ANSWER, "whole");
}

/* Name length limits: 63-byte labels, 255 bytes on the wire in all. */
static size_t long_name(uint8_t *p, size_t wire, size_t last_label)
{
	size_t off = 0;

	/* labels of 63 until the rest fits one label of last_label bytes */
	while (wire - off - 1 > 1 + last_label) {
		size_t l = wire - off - 1 - (1 + last_label) - 1;
		if (l > 63)
			l = 63;
		p[off] = (uint8_t)l;
		memset(p + off + 1, 'x', l);
		off += 1 + l;
	}
	p[off] = (uint8_t)last_label;
	memset(p + off + 1, 'Y', last_label);
	off += 1 + last_label;
	p[off++] = 0;
	assert_int_equal(off, wire);
	return off;
}

static void test_name_limits(void **state)
{
	struct sfy_dns_query q;
	uint8_t body[300], m[400];
	size_t bl, n;

	(void)state;
	/* one label of 63: fine; 64 is a reserved label type */
	bl = long_name(body, 65, 63);
	memcpy(body + bl, BYTES(0, 1, 0, 1));
	n = mkq(m, RD, 1, 0, 0, 0, body, bl + 4);
	EQ(sfy_dns_parse_query(m, n, &q), SFY_DNS_ANSWER, "label 63");
	EQ(strlen(q.name), 63, "label 63");
	EQ(q.name[0], 'y', "lower case");
	m[SFY_DNS_HEADER] = 64;
	EQ(sfy_dns_parse_query(m, n, &q), SFY_DNS_REJECT, "label 64");
	EQ(q.rcode, SFY_DNS_FORMERR, "label 64");

	/* 255 bytes in all: fine; 256: FORMERR */
	bl = long_name(body, 255, 1);
	memcpy(body + bl, BYTES(0, 1, 0, 1));
	n = mkq(m, RD, 1, 0, 0, 0, body, bl + 4);
	EQ(sfy_dns_parse_query(m, n, &q), SFY_DNS_ANSWER, "wire 255");
	EQ(strlen(q.name), 253, "text 253");
	EQ(q.qlen, 259, "qlen 259");
	bl = long_name(body, 256, 2);
	memcpy(body + bl, BYTES(0, 1, 0, 1));
	n = mkq(m, RD, 1, 0, 0, 0, body, bl + 4);
	EQ(sfy_dns_parse_query(m, n, &q), SFY_DNS_REJECT, "wire 256");
	EQ(q.rcode, SFY_DNS_FORMERR, "wire 256");
	EQ(q.qlen, 0, "wire 256");
}

/* Bytes no host name has: the query is fine, the name is not usable. */
static void test_name_bytes(void **state)
{
	static const struct {
		const char *what;
		uint8_t body[16];
		size_t blen;
		bool ok;
		const char *name;
	} t[] = {
		{ "upper", { 2, 'A', 'b', 1, 'C', 0, 0, 1, 0, 1 }, 10, true, "ab.c" },
		{ "underscore", { 2, '_', 'x', 0, 0, 1, 0, 1 }, 8, true, "_x" },
		{ "dot inside", { 3, 'a', '.', 'b', 0, 0, 1, 0, 1 }, 9, false, "" },
		{ "space", { 3, 'a', ' ', 'b', 0, 0, 1, 0, 1 }, 9, false, "" },
		{ "nul", { 3, 'a', 0, 'b', 0, 0, 1, 0, 1 }, 9, false, "" },
		{ "0x7f", { 1, 0x7f, 0, 0, 1, 0, 1 }, 7, false, "" },
		{ "utf-8", { 2, 0xc3, 0xa9, 0, 0, 1, 0, 1 }, 8, false, "" },
	};
	struct sfy_dns_query q;
	uint8_t m[64];

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		size_t n = mkq(m, RD, 1, 0, 0, 0, t[i].body, t[i].blen);
		EQ(sfy_dns_parse_query(m, n, &q), SFY_DNS_ANSWER, t[i].what);
		EQ(q.name_ok, t[i].ok, t[i].what);
		assert_string_equal(q.name, t[i].name);
		EQ(memcmp(q.question, t[i].body, t[i].blen), 0, t[i].what);
	}
}

static ssize_t reply(uint8_t *out, size_t cap, const struct sfy_dns_query *q, uint8_t rcode,
		     const struct sfy_dns_answer *an, size_t n, bool tcp)
{
	const struct sfy_dns_reply r = { .rcode = rcode, .an = an, .n = n, .ttl = 60,
					 .tcp = tcp };
	return sfy_dns_build_reply(out, cap, q, &r);
}

/* Every reply kind to "a.b" from a plain query and from one with EDNS,
 * whole bytes compared; every shorter cap is -ENOSPC. */
static void test_replies(void **state)
{
	static const struct sfy_dns_answer a4 = { .type = SFY_DNS_T_A, .ip = { 10, 0, 0, 7 } };
	static const struct sfy_dns_answer a6 = { .type = SFY_DNS_T_AAAA,
						  .ip = { 0xfd, [15] = 1 } };
	static const struct sfy_dns_answer ptr = { .type = SFY_DNS_T_PTR, .ptr = "Host.ex." };
	static const struct sfy_dns_answer two[] = {
		{ .type = SFY_DNS_T_A, .ip = { 1, 2, 3, 4 } },
		{ .type = SFY_DNS_T_A, .ip = { 5, 6, 7, 8 } },
	};
#define HDR(fl, qd, an, ar) 0xbe, 0xef, (fl) >> 8, (fl) & 0xff, 0, qd, 0, an, 0, 0, 0, ar
#define RR(type, len) 0xc0, 0x0c, 0, type, 0, 1, 0, 0, 0, 60, 0, len
#define OUR_OPT(ext, dobit) 0, 0, 41, 0x04, 0xd0, ext, 0, (dobit) ? 0x80 : 0, 0, 0, 0
	static const struct {
		const char *what;
		bool edns;
		uint8_t rcode;
		const struct sfy_dns_answer *an;
		size_t n;
		uint8_t out[80];
		size_t len;
	} t[] = {
		{ "A", false, 0, &a4, 1, { HDR(0x8180, 1, 1, 0), Q_AB, RR(1, 4), 10, 0, 0, 7 },
		  37 },
		{ "AAAA", false, 0, &a6, 1,
		  { HDR(0x8180, 1, 1, 0), Q_AB, RR(28, 16), 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		    0, 0, 0, 0, 1 }, 49 },
		{ "PTR", false, 0, &ptr, 1,
		  { HDR(0x8180, 1, 1, 0), Q_AB, RR(12, 9), 4, 'H', 'o', 's', 't', 2, 'e', 'x',
		    0 }, 42 },
		{ "two A", false, 0, two, 2,
		  { HDR(0x8180, 1, 2, 0), Q_AB, RR(1, 4), 1, 2, 3, 4, RR(1, 4), 5, 6, 7, 8 },
		  53 },
		{ "NODATA", false, 0, NULL, 0, { HDR(0x8180, 1, 0, 0), Q_AB }, 21 },
		{ "NXDOMAIN", false, 3, NULL, 0, { HDR(0x8183, 1, 0, 0), Q_AB }, 21 },
		{ "SERVFAIL", false, 2, NULL, 0, { HDR(0x8182, 1, 0, 0), Q_AB }, 21 },
		{ "FORMERR", false, 1, NULL, 0, { HDR(0x8181, 1, 0, 0), Q_AB }, 21 },
		{ "REFUSED", false, 5, NULL, 0, { HDR(0x8185, 1, 0, 0), Q_AB }, 21 },
		{ "A edns", true, 0, &a4, 1,
		  { HDR(0x8180, 1, 1, 1), Q_AB, RR(1, 4), 10, 0, 0, 7, OUR_OPT(0, 0) }, 48 },
		{ "NXDOMAIN edns", true, 3, NULL, 0,
		  { HDR(0x8183, 1, 0, 1), Q_AB, OUR_OPT(0, 0) }, 32 },
		{ "BADVERS", true, 16, NULL, 0, { HDR(0x8180, 1, 0, 1), Q_AB, OUR_OPT(1, 0) },
		  32 },
	};
	struct sfy_dns_query q;
	uint8_t m[64], out[600];

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		size_t n = t[i].edns ? mkq(m, RD, 1, 0, 0, 1, BYTES(Q_AB, OPT(0, 0)))
				     : mkq(m, RD, 1, 0, 0, 0, BYTES(Q_AB));
		EQ(sfy_dns_parse_query(m, n, &q), SFY_DNS_ANSWER, t[i].what);
		EQ(reply(out, sizeof out, &q, t[i].rcode, t[i].an, t[i].n, false),
		   t[i].len, t[i].what);
		if (memcmp(out, t[i].out, t[i].len)) {
			for (size_t k = 0; k < t[i].len; k++)
				print_error("%02x%s", out[k], out[k] == t[i].out[k] ? " " : "*");
			print_error("\n");
		}
		EQ(memcmp(out, t[i].out, t[i].len), 0, t[i].what);
		for (size_t cap = 0; cap < t[i].len; cap++)
			EQ(reply(out, cap, &q, t[i].rcode, t[i].an, t[i].n, false), -ENOSPC,
			   t[i].what);
	}
}

static void test_reply_errors(void **state)
{
	static const struct sfy_dns_answer a4 = { .type = SFY_DNS_T_A };
	static const struct sfy_dns_answer bad[] = {
		{ .type = SFY_DNS_T_MX },
		{ .type = SFY_DNS_T_PTR, .ptr = NULL },
		{ .type = SFY_DNS_T_PTR, .ptr = "" },
		{ .type = SFY_DNS_T_PTR, .ptr = "." },
		{ .type = SFY_DNS_T_PTR, .ptr = "a..b" },
		{ .type = SFY_DNS_T_PTR, .ptr = ".a" },
		{ .type = SFY_DNS_T_PTR,
		  .ptr = "0123456789012345678901234567890123456789012345678901234567890123" },
	};
	struct sfy_dns_query q;
	struct sfy_dns_reply r = { .rcode = 0, .an = &a4, .n = 1, .ttl = 0x80000000u };
	uint8_t m[64], out[600];
	size_t n = mkq(m, RD, 1, 0, 0, 0, BYTES(Q_AB));

	(void)state;
	EQ(sfy_dns_parse_query(m, n, &q), SFY_DNS_ANSWER, "parse");
	EQ(sfy_dns_build_reply(out, sizeof out, &q, &r), -EINVAL, "ttl top bit");
	r.ttl = 0x7fffffff;
	EQ(sfy_dns_build_reply(out, sizeof out, &q, &r), 37, "ttl max");
	EQ(memcmp(out + 27, BYTES(0x7f, 0xff, 0xff, 0xff)), 0, "ttl max");
	EQ(reply(out, sizeof out, &q, SFY_DNS_NXDOMAIN, &a4, 1, false), -EINVAL,
	   "answer with nxdomain");
	EQ(reply(out, sizeof out, &q, SFY_DNS_NOERROR, NULL, 1, false), -EINVAL, "null answers");
	EQ(reply(out, sizeof out, &q, SFY_DNS_BADVERS, NULL, 0, false), -EINVAL,
	   "badvers without edns");
	EQ(reply(out, sizeof out, &q, 17, NULL, 0, false), -EINVAL, "rcode 17");
	EQ(reply(NULL, sizeof out, &q, 0, NULL, 0, false), -EINVAL, "null buf");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		EQ(reply(out, sizeof out, &q, 0, &bad[i], 1, false), -EINVAL, "bad answer");
	/* a 253-character PTR target is the longest */
	char longest[254];
	memset(longest, 'p', 253);
	longest[253] = '\0';
	for (int k = 63; k < 253; k += 64)
		longest[k] = '.';
	struct sfy_dns_answer lp = { .type = SFY_DNS_T_PTR, .ptr = longest };
	EQ(reply(out, sizeof out, &q, 0, &lp, 1, false), 21 + 12 + 255, "ptr 253");
	/* answers need a question: not after a bare-header rejection */
	n = mkq(m, RD, 0, 0, 0, 0, BYTES(0));
	EQ(sfy_dns_parse_query(m, n - 1, &q), SFY_DNS_REJECT, "qdcount 0");
	EQ(reply(out, sizeof out, &q, 0, &a4, 1, false), -EINVAL, "answer without question");
}

/* Rejections: header only or with the question, OPT as decided. */
static void test_reject_replies(void **state)
{
	struct sfy_dns_query q;
	uint8_t m[512], out[600];
	ssize_t n;

	(void)state;
	/* NOTIMP to dig +opcode=status: opcode and RD copied, the question
	 * and our OPT, since the rest was well-formed */
	n = (ssize_t)unhex(m, sizeof m, DIG_STATUS);
	EQ(sfy_dns_parse_query(m, (size_t)n, &q), SFY_DNS_REJECT, "status");
	n = reply(out, sizeof out, &q, q.rcode, NULL, 0, false);
	EQ(n, 12 + 17 + 11, "notimp");
	EQ(memcmp(out, BYTES(0x37, 0xee, 0x91, 0x84, 0, 1, 0, 0, 0, 0, 0, 1)), 0, "notimp");
	EQ(memcmp(out + 12, m + 12, 17), 0, "notimp question");

	/* NOTIMP to an UPDATE-shaped message: bare header */
	n = (ssize_t)mkq(m, 0x2800, 1, 1, 0, 0, BYTES(Q_AB));
	EQ(sfy_dns_parse_query(m, (size_t)n, &q), SFY_DNS_REJECT, "update");
	n = reply(out, sizeof out, &q, q.rcode, NULL, 0, false);
	EQ(n, 12, "update");
	EQ(memcmp(out, BYTES(0xbe, 0xef, 0xa8, 0x84, 0, 0, 0, 0, 0, 0, 0, 0)), 0, "update");

	/* FORMERR for QDCOUNT 2: bare header */
	n = (ssize_t)mkq(m, RD | 0x10, 2, 0, 0, 0, BYTES(Q_AB, Q_AB));
	EQ(sfy_dns_parse_query(m, (size_t)n, &q), SFY_DNS_REJECT, "qd2");
	n = reply(out, sizeof out, &q, q.rcode, NULL, 0, false);
	EQ(n, 12, "qd2");
	EQ(memcmp(out, BYTES(0xbe, 0xef, 0x81, 0x91, 0, 0, 0, 0, 0, 0, 0, 0)), 0, "qd2, CD");

	/* FORMERR for a malformed OPT: the question, no OPT */
	n = (ssize_t)mkq(m, RD, 1, 0, 0, 1, BYTES(Q_AB, OPT(0, 4), 0, 10, 0, 8));
	EQ(sfy_dns_parse_query(m, (size_t)n, &q), SFY_DNS_REJECT, "bad opt");
	n = reply(out, sizeof out, &q, q.rcode, NULL, 0, false);
	EQ(n, 21, "bad opt");
	EQ(memcmp(out, BYTES(0xbe, 0xef, 0x81, 0x81, 0, 1, 0, 0, 0, 0, 0, 0, Q_AB)), 0,
	   "bad opt");

	/* BADVERS from dig +edns=1: extended rcode 1, header rcode 0, our OPT
	 * is version 0 */
	n = (ssize_t)unhex(m, sizeof m, DIG_EDNS1);
	EQ(sfy_dns_parse_query(m, (size_t)n, &q), SFY_DNS_REJECT, "edns1");
	EQ(q.edns_version, 1, "edns1");
	n = reply(out, sizeof out, &q, q.rcode, NULL, 0, false);
	EQ(n, 12 + 17 + 11, "badvers");
	EQ(memcmp(out, BYTES(0xcc, 0x4b, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 1)), 0, "badvers");
	EQ(memcmp(out + 12, m + 12, 17), 0, "badvers question");
	EQ(memcmp(out + 29, BYTES(0, 0, 41, 0x04, 0xd0, 1, 0, 0, 0, 0, 0)), 0, "badvers opt");
}

/* dig's cookie query: the reply copies ID and question (with its case)
 * and carries an OPT with no options. */
static void test_cookie_not_echoed(void **state)
{
	static const struct sfy_dns_answer a6 = { .type = SFY_DNS_T_AAAA, .ip = { 0xfd } };
	struct sfy_dns_query q;
	uint8_t m[512], out[600];
	size_t n = unhex(m, sizeof m, DIG_COOKIE_AAAA);
	ssize_t r;

	(void)state;
	EQ(sfy_dns_parse_query(m, n, &q), SFY_DNS_ANSWER, "cookie");
	EQ(q.qlen, 17, "cookie");
	r = reply(out, sizeof out, &q, 0, &a6, 1, false);
	EQ(r, 12 + 17 + 12 + 16 + 11, "cookie");
	EQ(memcmp(out, m, 2), 0, "id");
	EQ(memcmp(out + 2, BYTES(0x81, 0x80)), 0, "flags: QR RD RA, no AD");
	EQ(memcmp(out + 12, m + 12, 17), 0, "question with its case");
	EQ(memcmp(out + 12, BYTES(7, 'E', 'x')), 0, "case kept");
	EQ(get16(out + 10), 1, "arcount");
	EQ(memcmp(out + r - 11, BYTES(0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0)), 0,
	   "opt without options");

	/* +dnssec: DO copied into our OPT */
	n = unhex(m, sizeof m, DIG_DO);
	EQ(sfy_dns_parse_query(m, n, &q), SFY_DNS_ANSWER, "do");
	r = reply(out, sizeof out, &q, 0, NULL, 0, false);
	EQ(out[r - 4], 0x80, "do bit");
}

/* Over the limit: answers dropped, TC set; EDNS raises the limit, never
 * below 512; TCP's is 65535. */
static void test_truncation(void **state)
{
	struct sfy_dns_answer many[100];
	struct sfy_dns_query q;
	uint8_t m[64], out[4096];
	size_t n;
	ssize_t r;

	(void)state;
	for (int i = 0; i < 100; i++)
		many[i] = (struct sfy_dns_answer){ .type = SFY_DNS_T_A, .ip = { 10, 0, 0,
										  (uint8_t)i } };
	n = mkq(m, RD, 1, 0, 0, 0, BYTES(Q_AB));
	EQ(sfy_dns_parse_query(m, n, &q), SFY_DNS_ANSWER, "plain");
	EQ(sfy_dns_udp_limit(&q), 512, "plain limit");
	/* 21 + 30 * 16 = 501 fits; 21 + 31 * 16 = 517 does not */
	EQ(reply(out, sizeof out, &q, 0, many, 30, false), 501, "30 fit");
	EQ(get16(out + 2) & 0x0200, 0, "no TC");
	r = reply(out, sizeof out, &q, 0, many, 31, false);
	EQ(r, 21, "31 truncated");
	EQ(get16(out + 2), 0x8380, "TC");
	EQ(get16(out + 6), 0, "no answers");
	EQ(reply(out, 21, &q, 0, many, 100, false), 21, "truncated fits small cap");
	EQ(reply(out, sizeof out, &q, 0, many, 100, true), 21 + 1600, "tcp");
	EQ(reply(out, 21 + 1599, &q, 0, many, 100, true), -ENOSPC, "tcp cap");

	/* EDNS 1232: 32 + 75 * 16 = 1232 fits, 76 not */
	n = mkq(m, RD, 1, 0, 0, 1, BYTES(Q_AB, OPT(0, 0)));
	EQ(sfy_dns_parse_query(m, n, &q), SFY_DNS_ANSWER, "edns");
	EQ(sfy_dns_udp_limit(&q), 1232, "edns limit");
	EQ(reply(out, sizeof out, &q, 0, many, 75, false), 1232, "75 fit");
	r = reply(out, sizeof out, &q, 0, many, 76, false);
	EQ(r, 32, "76 truncated");
	EQ(get16(out + 2), 0x8380, "TC edns");
	EQ(get16(out + 10), 1, "opt kept");

	/* EDNS size 100 counts as 512 */
	n = mkq(m, RD, 1, 0, 0, 1, BYTES(Q_AB, 0, 0, 41, 0, 100, 0, 0, 0, 0, 0, 0));
	EQ(sfy_dns_parse_query(m, n, &q), SFY_DNS_ANSWER, "edns 100");
	EQ(q.edns_udp_size, 512, "edns 100");
	EQ(reply(out, sizeof out, &q, 0, many, 30, false), 32 + 30 * 16, "30 fit: 512");
	EQ(reply(out, sizeof out, &q, 0, many, 31, false), 32, "31 truncated");
}

static void test_tcp_framing(void **state)
{
	const uint8_t *msg;
	size_t need, ml;
	uint8_t s[16] = { 0, 3, 'a', 'b', 'c', 0, 0, 0, 2, 'x' };
	uint8_t b[8];

	(void)state;
	EQ(sfy_dns_tcp_next(s, 0, &need, &msg, &ml), SFY_PARSE_NEED, "empty");
	EQ(need, 2, "empty");
	EQ(sfy_dns_tcp_next(s, 1, &need, &msg, &ml), SFY_PARSE_NEED, "1 byte");
	EQ(need, 2, "1 byte");
	for (size_t k = 2; k < 5; k++) {
		EQ(sfy_dns_tcp_next(s, k, &need, &msg, &ml), SFY_PARSE_NEED, "partial");
		EQ(need, 5, "partial");
	}
	/* three messages back to back: "abc", "", "x" (cut) */
	EQ(sfy_dns_tcp_next(s, 10, &need, &msg, &ml), SFY_PARSE_COMPLETE, "first");
	EQ(need, 5, "first");
	EQ(ml, 3, "first");
	assert_ptr_equal(msg, s + 2);
	EQ(sfy_dns_tcp_next(s + 5, 5, &need, &msg, &ml), SFY_PARSE_COMPLETE, "zero length");
	EQ(need, 2, "zero length");
	EQ(ml, 0, "zero length");
	EQ(sfy_dns_tcp_next(s + 7, 3, &need, &msg, &ml), SFY_PARSE_NEED, "cut");
	EQ(need, 4, "cut");
	s[7] = 0xff;
	EQ(sfy_dns_tcp_next(s + 7, 3, &need, &msg, &ml), SFY_PARSE_NEED, "long");
	EQ(need, 2 + 0xff02, "long");

	EQ(sfy_dns_tcp_frame(b, sizeof b, 6), 8, "frame");
	EQ(memcmp(b, BYTES(0, 6)), 0, "frame");
	EQ(sfy_dns_tcp_frame(b, sizeof b, 7), -ENOSPC, "frame cap");
	EQ(sfy_dns_tcp_frame(b, 1, 0), -ENOSPC, "frame cap 1");
	EQ(sfy_dns_tcp_frame(b, sizeof b, 65536), -EMSGSIZE, "frame 65536");
}

static void test_ptr_names(void **state)
{
	static const struct {
		const char *name;
		bool ok;
		uint8_t ip[4];
	} v4[] = {
		{ "3.2.1.10.in-addr.arpa", true, { 10, 1, 2, 3 } },
		{ "255.0.0.0.IN-ADDR.ARPA", true, { 0, 0, 0, 255 } },
		{ "0.0.0.0.in-addr.arpa", true, { 0 } },
		{ "3.2.1.10.in-addr.arpa.", false, { 0 } },
		{ "256.2.1.10.in-addr.arpa", false, { 0 } },
		{ "1000.2.1.10.in-addr.arpa", false, { 0 } },
		{ "03.2.1.10.in-addr.arpa", false, { 0 } },
		{ "00.2.1.10.in-addr.arpa", false, { 0 } },
		{ "2.1.10.in-addr.arpa", false, { 0 } },
		{ "4.3.2.1.10.in-addr.arpa", false, { 0 } },
		{ "3..1.10.in-addr.arpa", false, { 0 } },
		{ "-3.2.1.10.in-addr.arpa", false, { 0 } },
		{ "3.2.1.10.in-addr.arpa.com", false, { 0 } },
		{ "3.2.1.10.ip6.arpa", false, { 0 } },
		{ "", false, { 0 } },
	};
	static const struct {
		const char *name;
		bool ok;
	} v6[] = {
		{ "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", true },
		{ "B.A.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.IP6.Arpa", true },
		{ "a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", false },
		{ "0.b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
		  false },
		{ "ba.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", false },
		{ "g.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", false },
		{ "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", false },
		{ "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.in-addr.arpa",
		  false },
		{ "ip6.arpa", false },
	};
	static const uint8_t want6[16] = { 0x20, 0x01, 0x0d, 0xb8, [13] = 0x67, 0x89, 0xab,
					   [12] = 0x05 };
	uint8_t ip[16];

	(void)state;
	for (size_t i = 0; i < sizeof v4 / sizeof v4[0]; i++) {
		memset(ip, 0xee, sizeof ip);
		EQ(sfy_dns_ptr_v4(v4[i].name, ip), v4[i].ok, v4[i].name);
		if (v4[i].ok)
			EQ(memcmp(ip, v4[i].ip, 4), 0, v4[i].name);
		else
			EQ(ip[0], 0xee, "untouched on failure");
		EQ(sfy_dns_ptr_v6(v4[i].name, ip), false, v4[i].name);
	}
	for (size_t i = 0; i < sizeof v6 / sizeof v6[0]; i++) {
		memset(ip, 0xee, sizeof ip);
		EQ(sfy_dns_ptr_v6(v6[i].name, ip), v6[i].ok, v6[i].name);
		if (v6[i].ok)
			EQ(memcmp(ip, want6, 16), 0, v6[i].name);
		EQ(sfy_dns_ptr_v4(v6[i].name, ip), false, v6[i].name);
	}
}

/* dig -x: the parsed name goes straight into the reverse helpers. */
static void test_dig_ptr(void **state)
{
	static const uint8_t want6[16] = { 0x20, 0x01, 0x0d, 0xb8, [12] = 0x05, 0x67, 0x89,
					   0xab };
	struct sfy_dns_query q;
	uint8_t m[512], ip[16];
	size_t n;

	(void)state;
	n = unhex(m, sizeof m, DIG_PTR4);
	EQ(sfy_dns_parse_query(m, n, &q), SFY_DNS_ANSWER, "ptr4");
	EQ(sfy_dns_ptr_v4(q.name, ip), true, "ptr4");
	EQ(memcmp(ip, BYTES(10, 1, 2, 3)), 0, "ptr4");
	n = unhex(m, sizeof m, DIG_PTR6);
	EQ(sfy_dns_parse_query(m, n, &q), SFY_DNS_ANSWER, "ptr6");
	EQ(q.qtype, SFY_DNS_T_PTR, "ptr6");
	EQ(sfy_dns_ptr_v6(q.name, ip), true, "ptr6");
	EQ(memcmp(ip, want6, 16), 0, "ptr6");
}

/* Not a pass/fail check: the cost of parsing a query and building an A
 * answer, printed for the record (tests/bench measures the round trip). */
static void test_speed(void **state)
{
	static const struct sfy_dns_answer a4 = { .type = SFY_DNS_T_A, .ip = { 10, 0, 0, 1 } };
	const struct sfy_dns_reply r = { .an = &a4, .n = 1, .ttl = 5 };
	struct sfy_dns_query q;
	struct timespec t0, t1;
	uint8_t m[512], out[600];
	size_t n = unhex(m, sizeof m, DIG_COOKIE_AAAA);
	const int rounds = 1000000;
	ssize_t sum = 0;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < rounds; i++) {
		m[0] = (uint8_t)i;
		assert_true(sfy_dns_parse_query(m, n, &q) == SFY_DNS_ANSWER);
		sum += sfy_dns_build_reply(out, sizeof out, &q, &r);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	EQ(sum, (ssize_t)rounds * (12 + 17 + 16 + 11), "lengths");
	printf("dns_msg: parse + build A answer (EDNS, cookie): %.0f ns\n",
	       ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
		       rounds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dig_queries),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_short_header),
		cmocka_unit_test(test_name_limits),
		cmocka_unit_test(test_name_bytes),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_reply_errors),
		cmocka_unit_test(test_reject_replies),
		cmocka_unit_test(test_cookie_not_echoed),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_tcp_framing),
		cmocka_unit_test(test_ptr_names),
		cmocka_unit_test(test_dig_ptr),
		cmocka_unit_test(test_speed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
