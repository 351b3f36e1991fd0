/* DNS query parser (RFC 1035 4.1, RFC 6891) for the in-library responder.
 *
 * Decisions where the RFCs leave room, made once here:
 *  - Fewer than 12 bytes, or QR=1: dropped, no reply. A fragment has no
 *    header to answer with, and a response sent to a server must never be
 *    answered (two responders would echo each other forever).
 *  - OPCODE other than QUERY: NOTIMP. If the rest reads as a well-formed
 *    QUERY would, the reply copies the question and carries our OPT (a
 *    client seeing no OPT would conclude we have no EDNS); otherwise (an
 *    UPDATE's sections, say) it is a bare header.
 *  - QDCOUNT != 1: FORMERR, bare header (RFC 9619: QDCOUNT is 1; copying
 *    one of two questions would suggest we answered that one).
 *  - QNAME: plain labels of 1..63 bytes, at most 255 bytes on the wire.
 *    A compression pointer in the question is FORMERR: the question is the
 *    first thing after the header, so there is nothing earlier it could
 *    usefully point to, and refusing pointers makes loops impossible. The
 *    other label types (0x40, 0x80: RFC 6891 retired them) are FORMERR too.
 *  - The root name (a lone 0 byte, `dig . NS`) is accepted: name "".
 *    It has no addresses; the responder answers it NODATA.
 *  - A label byte no host name can hold ('.', space, control, non-ASCII)
 *    is not malformed DNS, so the query parses, with name_ok false: the
 *    responder must not look it up or hand it to a proxy.
 *  - ANCOUNT or NSCOUNT != 0 in a QUERY: FORMERR with the question. A
 *    query carries nothing there (only UPDATE/NOTIFY do).
 *  - Additional section: one OPT record is read; two are FORMERR (RFC 6891
 *    6.1.1), so is an OPT whose owner is not the root or whose options
 *    overrun its RDATA. Any other record (TSIG, SIG(0)) is skipped
 *    unverified, without following pointers in its owner name: we do not
 *    sign, so our reply is simply unsigned.
 *  - Bytes after the last record: FORMERR (the counts do not describe the
 *    message).
 *  - A FORMERR reply never carries an OPT: the client's EDNS use is only
 *    trusted once the whole message parsed.
 *  - EDNS VERSION > 0: BADVERS with our OPT (version 0) and the question
 *    (RFC 6891 6.1.3), decided after the whole message parsed.
 *  - A UDP payload size below 512 counts as 512 (RFC 6891 6.2.5). The
 *    OPT's extended RCODE and Z bits in a query are ignored.
 */
#include <string.h>

#include "dns_msg.h"

/* Flags word:  QR | Opcode(4) | AA | TC | RD | RA | Z | AD | CD | RCODE(4) */
#define F_QR 0x8000
#define F_OPCODE 0x7800
#define OPCODE_QUERY 0

#define OPT_FIXED 10       /* TYPE CLASS TTL RDLENGTH after the owner name */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Could this byte be part of a host name a program looks up? Anything
 * printable but space and '.', which would change the name's text form
 * (underscores, as in SRV names, are fine). */
static bool host_byte(uint8_t c)
{
	return c > 0x20 && c < 0x7f && c != '.';
}

/* QNAME at p (avail bytes left in the message):
 *   +-----+--------+-----+--------+-----+
 *   | LEN | label  | LEN | label  |  0  |   LEN 1..63, 255 bytes in all
 *   +-----+--------+-----+--------+-----+
 * Fills q->name and q->name_ok. Returns the wire length, 0 if malformed. */
static size_t parse_qname(const uint8_t *p, size_t avail, struct sfy_dns_query *q)
{
	size_t off = 0, out = 0;
	bool ok = true;

	for (;;) {
		if (off >= avail)
			return 0;
		size_t l = p[off];
		if (l == 0)
			break;
		/* 0xC0.. is a pointer, 0x40.. and 0x80.. retired label types */
		if (l > SFY_DNS_LABEL_MAX)
			return 0;
		/* this label plus at least the root's 0 must fit in 255 */
		if (off + 1 + l + 1 > SFY_DNS_NAME_WIRE_MAX || off + 1 + l > avail)
			return 0;
		if (out)
			q->name[out++] = '.';
		for (size_t i = 0; i < l; i++) {
			uint8_t c = p[off + 1 + i];
			ok = ok && host_byte(c);
			q->name[out++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		off += 1 + l;
	}
	/* wire = sum(1 + l) + 1, text = sum(l) + labels - 1: at most 253 */
	q->name[ok ? out : 0] = '\0';
	q->name_ok = ok;
	return off + 1;
}

/* QNAME QTYPE QCLASS, copied as sent. Returns its length, 0 if malformed. */
static size_t parse_question(const uint8_t *p, size_t avail, struct sfy_dns_query *q)
{
	size_t n = parse_qname(p, avail, q);

	if (!n || avail - n < 4)
		return 0;
	q->qtype = get16(p + n);
	q->qclass = get16(p + n + 2);
	q->qlen = n + 4;
	memcpy(q->question, p, q->qlen);    /* <= 255 + 4 */
	return q->qlen;
}

/* Steps over an owner name outside the question without following
 * pointers (a pointer ends a name): nothing is read through it, so no
 * loop is possible. Returns the bytes it occupies, 0 if malformed. */
static size_t skip_name(const uint8_t *p, size_t avail)
{
	size_t off = 0;

	for (;;) {
		if (off >= avail)
			return 0;
		uint8_t l = p[off];
		if (l == 0)
			return off + 1;
		if ((l & 0xc0) == 0xc0)
			return avail - off >= 2 ? off + 2 : 0;
		if (l > SFY_DNS_LABEL_MAX || off + 1 + l + 1 > SFY_DNS_NAME_WIRE_MAX)
			return 0;
		off += 1 + (size_t)l;
	}
}

/* OPT RDATA: options until its end, each exactly inside it.
 *   +------------+------------+----------------+
 *   |   CODE 16  | LENGTH 16  | LENGTH bytes   |  ...
 *   +------------+------------+----------------+
 * Their contents (a cookie, padding, ECS) are not kept: we never echo. */
static bool opt_options_ok(const uint8_t *p, size_t rdlen)
{
	size_t off = 0;

	while (off < rdlen) {
		if (rdlen - off < 4)
			return false;
		size_t l = get16(p + off + 2);
		if (rdlen - off - 4 < l)
			return false;
		off += 4 + l;
	}
	return true;
}

/* The OPT pseudo-record (RFC 6891 6.1.2):
 *   NAME 0 | TYPE 41 | CLASS = UDP payload size |
 *   TTL = EXTENDED-RCODE(8) VERSION(8) DO(1) Z(15) | RDLEN | options
 * p points at TYPE (the owner was a lone 0), the record is whole. */
static bool parse_opt(const uint8_t *p, size_t rdlen, struct sfy_dns_query *q)
{
	uint16_t size = get16(p + 2);

	if (q->edns || !opt_options_ok(p + OPT_FIXED, rdlen))
		return false;
	q->edns = true;
	q->edns_udp_size = size < SFY_DNS_UDP_MIN ? SFY_DNS_UDP_MIN : size;
	q->edns_version = p[5];
	q->edns_do = p[6] & 0x80;
	return true;
}

/* The additional section: count records from *off, which ends past the
 * last one. false if any is malformed. */
static bool parse_additional(const uint8_t *buf, size_t len, size_t *off, unsigned count,
			     struct sfy_dns_query *q)
{
	size_t o = *off;

	while (count--) {
		size_t nl = skip_name(buf + o, len - o);
		if (!nl || len - o - nl < OPT_FIXED)
			return false;
		const uint8_t *rr = buf + o + nl;
		size_t rdlen = get16(rr + 8);
		if (len - o - nl - OPT_FIXED < rdlen)
			return false;
		if (get16(rr) == SFY_DNS_T_OPT && (nl != 1 || !parse_opt(rr, rdlen, q)))
			return false;
		o += nl + OPT_FIXED + rdlen;
	}
	*off = o;
	return true;
}

/* Rejections keep the question for the reply only when it was read
 * whole, and EDNS only when the whole message was. */
static enum sfy_dns_verdict reject(struct sfy_dns_query *q, uint8_t rcode,
				   bool keep_question, bool keep_edns)
{
	q->rcode = rcode;
	if (!keep_question) {
		q->qlen = 0;
		q->name[0] = '\0';
		q->name_ok = false;
	}
	if (!keep_edns)
		q->edns = false;
	return SFY_DNS_REJECT;
}

/* Everything after the header, read as a QUERY's: one question, no
 * answer or authority records, an additional section, nothing more. */
static enum sfy_dns_verdict parse_body(const uint8_t *buf, size_t len,
				       struct sfy_dns_query *q)
{
	size_t off = SFY_DNS_HEADER;

	if (get16(buf + 4) != 1)
		return reject(q, SFY_DNS_FORMERR, false, false);
	off += parse_question(buf + off, len - off, q);
	if (off == SFY_DNS_HEADER)
		return reject(q, SFY_DNS_FORMERR, false, false);
	if (get16(buf + 6) || get16(buf + 8))
		return reject(q, SFY_DNS_FORMERR, true, false);
	if (!parse_additional(buf, len, &off, get16(buf + 10), q) || off != len)
		return reject(q, SFY_DNS_FORMERR, true, false);
	if (q->edns && q->edns_version > 0)
		return reject(q, SFY_DNS_BADVERS, true, true);
	return SFY_DNS_ANSWER;
}

/*                                 1  1  1  1  1  1
 *   0  1  2  3  4  5  6  7  8  9  0  1  2  3  4  5
 * +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
 * |                      ID                       |
 * |QR|   Opcode  |AA|TC|RD|RA| Z|AD|CD|   RCODE   |
 * |                    QDCOUNT                    |
 * |                    ANCOUNT                    |
 * |                    NSCOUNT                    |
 * |                    ARCOUNT                    |
 * +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
 * then the question, then (here) only the additional section.           */
enum sfy_dns_verdict sfy_dns_parse_query(const uint8_t *buf, size_t len,
					 struct sfy_dns_query *q)
{
	enum sfy_dns_verdict v;

	q->qlen = 0;
	q->name[0] = '\0';
	q->name_ok = false;
	q->edns = q->edns_do = false;
	q->edns_version = 0;
	q->edns_udp_size = 0;
	q->qtype = q->qclass = 0;
	q->rcode = SFY_DNS_NOERROR;
	if (!buf || len < SFY_DNS_HEADER)
		return SFY_DNS_DROP;
	q->id = get16(buf);
	q->flags = get16(buf + 2);
	if (q->flags & F_QR)
		return SFY_DNS_DROP;
	v = parse_body(buf, len, q);
	if ((q->flags & F_OPCODE) >> 11 != OPCODE_QUERY) {
		bool whole = v == SFY_DNS_ANSWER || q->rcode == SFY_DNS_BADVERS;
		return reject(q, SFY_DNS_NOTIMP, whole, whole);
	}
	return v;
}
