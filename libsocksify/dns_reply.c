/* DNS responses built from a parsed query (RFC 1035 4.1, RFC 6891), and
 * DNS-over-TCP framing (RFC 1035 4.2.2).
 *
 * Choices:
 *  - AA is 0: we answer as a recursive resolver would (RA set), not as
 *    the zone's server. AD is 0: nothing is validated. CD is copied (RFC
 *    4035 3.2.2), as are ID, opcode and RD.
 *  - An answer's owner is a pointer to the question's name (0xC00C): the
 *    question always starts at offset 12. A PTR target is written
 *    uncompressed: no suffix search, and at most 255 bytes.
 *  - Answers are class IN: A, AAAA and PTR data exist only there.
 *  - Our OPT carries no options, whatever the client sent (an echoed
 *    client cookie is a malformed server cookie, RFC 7873 5.3), and the DO
 *    bit copied (RFC 3225 3).
 *  - Too big for the limit: every answer goes and TC is set (RFC 2181 9);
 *    header, question and OPT always fit in 512.
 */
#include <errno.h>
#include <string.h>

#include "dns_msg.h"

#define F_QR 0x8000
#define F_OPCODE 0x7800
#define F_TC 0x0200
#define F_RD 0x0100
#define F_RA 0x0080
#define F_CD 0x0010

#define OPT_LEN 11         /* root owner + TYPE CLASS TTL RDLENGTH(0) */
#define RR_FIXED 10        /* TYPE CLASS TTL RDLENGTH */
#define OWNER_PTR_LEN 2    /* 0xC00C */
/* RFC 2181 8: a TTL with the top bit set is read as 0; refuse to send one. */
#define TTL_MAX 0x7fffffffu

static uint8_t *put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	return put16(put16(p, v >> 16), v & 0xffff);
}

/* A text name ("host.example", a trailing dot allowed) on the wire, into
 * out if not NULL. Returns its wire length, or 0 if it has an empty label,
 * a label over 63 bytes or more than 255 bytes in all. */
static size_t name_to_wire(const char *s, uint8_t *out)
{
	size_t n = 0;

	if (!s || !*s)
		return 0;
	while (*s) {
		size_t l = strcspn(s, ".");
		if (l == 0 || l > SFY_DNS_LABEL_MAX || n + 1 + l + 1 > SFY_DNS_NAME_WIRE_MAX)
			return 0;
		if (out) {
			out[n] = (uint8_t)l;
			memcpy(out + n + 1, s, l);
		}
		n += 1 + l;
		s += l;
		if (*s == '.')
			s++;
	}
	if (out)
		out[n] = 0;
	return n + 1;
}

/* RDATA length of one answer, 0 if it cannot be encoded. */
static size_t rdata_len(const struct sfy_dns_answer *a)
{
	switch (a->type) {
	case SFY_DNS_T_A:
		return 4;
	case SFY_DNS_T_AAAA:
		return 16;
	case SFY_DNS_T_PTR:
		return name_to_wire(a->ptr, NULL);
	default:
		return 0;
	}
}

/* One answer record, owner = the question's name:
 *   C0 0C | TYPE | CLASS IN | TTL | RDLENGTH | RDATA                    */
static uint8_t *put_answer(uint8_t *p, const struct sfy_dns_answer *a, size_t rdlen,
			   uint32_t ttl)
{
	p = put16(p, 0xc000 | SFY_DNS_HEADER);
	p = put16(p, a->type);
	p = put16(p, SFY_DNS_CLASS_IN);
	p = put32(p, ttl);
	p = put16(p, (unsigned)rdlen);
	if (a->type == SFY_DNS_T_PTR)
		name_to_wire(a->ptr, p);
	else
		memcpy(p, a->ip, rdlen);
	return p + rdlen;
}

/* Our OPT (RFC 6891 6.1.2): root owner, TYPE 41, CLASS = our payload size,
 * TTL = EXTENDED-RCODE VERSION(0) DO Z, no RDATA.                        */
static uint8_t *put_opt(uint8_t *p, uint8_t rcode, bool dnssec_ok)
{
	*p++ = 0;
	p = put16(p, SFY_DNS_T_OPT);
	p = put16(p, SFY_DNS_OUR_UDP_SIZE);
	*p++ = (uint8_t)(rcode >> 4);
	*p++ = 0;
	p = put16(p, dnssec_ok ? 0x8000 : 0);
	return put16(p, 0);
}

size_t sfy_dns_udp_limit(const struct sfy_dns_query *q)
{
	if (!q->edns || q->edns_udp_size < SFY_DNS_UDP_MIN)
		return SFY_DNS_UDP_MIN;
	return q->edns_udp_size;
}

static bool reply_ok(const struct sfy_dns_query *q, const struct sfy_dns_reply *r)
{
	if (r->rcode > 15 && !(r->rcode == SFY_DNS_BADVERS && q->edns))
		return false;
	if (r->n && (r->rcode != SFY_DNS_NOERROR || !q->qlen || !r->an))
		return false;
	return r->ttl <= TTL_MAX && q->qlen <= sizeof q->question;
}

/* Size of the answer section; 0 with *bad set if one cannot be encoded.
 * Stops adding past limit (the answers are dropped then anyway), so the
 * sum cannot overflow however many there are. */
static size_t answers_len(const struct sfy_dns_reply *r, size_t limit, bool *bad)
{
	size_t sum = 0;

	for (size_t i = 0; i < r->n; i++) {
		size_t rl = rdata_len(&r->an[i]);
		if (!rl) {
			*bad = true;
			return 0;
		}
		if (sum <= limit)
			sum += OWNER_PTR_LEN + RR_FIXED + rl;
	}
	return sum;
}

ssize_t sfy_dns_build_reply(uint8_t *buf, size_t cap, const struct sfy_dns_query *q,
			    const struct sfy_dns_reply *r)
{
	size_t limit, base, full, ans;
	bool bad = false, tc;
	unsigned flags;
	uint8_t *p;

	if (!buf || !q || !r || !reply_ok(q, r))
		return -EINVAL;
	limit = r->tcp ? SFY_DNS_TCP_MAX : sfy_dns_udp_limit(q);
	base = SFY_DNS_HEADER + q->qlen + (q->edns ? OPT_LEN : 0);
	ans = answers_len(r, limit, &bad);
	if (bad)
		return -EINVAL;
	full = base + ans;
	tc = full > limit;
	if ((tc ? base : full) > cap)
		return -ENOSPC;
	flags = F_QR | (q->flags & (F_OPCODE | F_RD | F_CD)) | F_RA | (r->rcode & 0xf);
	p = put16(buf, q->id);
	p = put16(p, flags | (tc ? F_TC : 0));
	p = put16(p, q->qlen ? 1 : 0);
	p = put16(p, tc ? 0 : (unsigned)r->n);
	p = put16(p, 0);
	p = put16(p, q->edns ? 1 : 0);
	memcpy(p, q->question, q->qlen);
	p += q->qlen;
	for (size_t i = 0; !tc && i < r->n; i++)
		p = put_answer(p, &r->an[i], rdata_len(&r->an[i]), r->ttl);
	if (q->edns)
		p = put_opt(p, r->rcode, q->edns_do);
	return p - buf;
}

enum sfy_parse sfy_dns_tcp_next(const uint8_t *buf, size_t len, size_t *need,
				const uint8_t **msg, size_t *msglen)
{
	*need = 2;
	if (len < 2)
		return SFY_PARSE_NEED;
	*need = 2 + (size_t)(buf[0] << 8 | buf[1]);
	if (len < *need)
		return SFY_PARSE_NEED;
	*msg = buf + 2;
	*msglen = *need - 2;
	return SFY_PARSE_COMPLETE;
}

ssize_t sfy_dns_tcp_frame(uint8_t *buf, size_t cap, size_t msglen)
{
	if (msglen > SFY_DNS_TCP_MAX)
		return -EMSGSIZE;
	if (!buf || cap < 2 || cap - 2 < msglen)
		return -ENOSPC;
	put16(buf, (unsigned)msglen);
	return (ssize_t)(2 + msglen);
}
