/* DNS message codec for the in-library responder (RFC 1035, RFC 6891):
 * pure functions, no I/O, no globals. A query datagram is parsed into
 * struct sfy_dns_query; a response is built from that struct alone, so
 * the query's buffer may be reused at once. The decisions where the RFCs
 * leave room are listed at the top of dns_msg.c. */
#ifndef SFY_DNS_MSG_H
#define SFY_DNS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "addr.h"
#include "parse.h"

/* ID, flags, QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT: 6 x 16 bits. */
#define SFY_DNS_HEADER 12
/* A name on the wire, length bytes and the root's 0 included (RFC 1035
 * 3.1); so its text form (no trailing dot) is at most 253 characters. */
#define SFY_DNS_NAME_WIRE_MAX 255
#define SFY_DNS_LABEL_MAX 63
/* QNAME + QTYPE + QCLASS. */
#define SFY_DNS_QUESTION_MAX (SFY_DNS_NAME_WIRE_MAX + 4)
/* A UDP reply without EDNS, and the least a client with EDNS may get
 * (RFC 1035 4.2.1, RFC 6891 6.2.5). */
#define SFY_DNS_UDP_MIN 512
/* The payload size we advertise in our OPT record: the DNS flag day 2020
 * value, which never fragments on any real path; our answers are far
 * smaller anyway. */
#define SFY_DNS_OUR_UDP_SIZE 1232
/* TCP's 2-byte length prefix (RFC 1035 4.2.2) bounds every message. */
#define SFY_DNS_TCP_MAX 65535
/* Header + the longest question + our OPT: what every error reply and
 * every truncated reply fits in (< SFY_DNS_UDP_MIN). */
#define SFY_DNS_SMALL_REPLY_MAX (SFY_DNS_HEADER + SFY_DNS_QUESTION_MAX + 11)

/* Wire values (RFC 1035 3.2.2, RFC 3596, RFC 6891). */
enum sfy_dns_type {
	SFY_DNS_T_A = 1,
	SFY_DNS_T_NS = 2,
	SFY_DNS_T_CNAME = 5,
	SFY_DNS_T_SOA = 6,
	SFY_DNS_T_PTR = 12,
	SFY_DNS_T_MX = 15,
	SFY_DNS_T_TXT = 16,
	SFY_DNS_T_AAAA = 28,
	SFY_DNS_T_SRV = 33,
	SFY_DNS_T_OPT = 41,
	SFY_DNS_T_HTTPS = 65,
	SFY_DNS_T_ANY = 255,
};
#define SFY_DNS_CLASS_IN 1

/* RCODE values; BADVERS (16) is an extended RCODE and exists only in a
 * reply that carries an OPT record (RFC 6891 6.1.3). */
enum sfy_dns_rcode {
	SFY_DNS_NOERROR = 0,
	SFY_DNS_FORMERR = 1,
	SFY_DNS_SERVFAIL = 2,
	SFY_DNS_NXDOMAIN = 3,
	SFY_DNS_NOTIMP = 4,
	SFY_DNS_REFUSED = 5,
	SFY_DNS_BADVERS = 16,
};

enum sfy_dns_verdict {
	SFY_DNS_ANSWER = 0,  /* a well-formed QUERY: the responder decides */
	SFY_DNS_REJECT = 1,  /* reply with q->rcode (FORMERR, NOTIMP, BADVERS) */
	SFY_DNS_DROP = 2,    /* a response (QR=1) or no full header: send nothing */
};

struct sfy_dns_query {
	uint16_t id;
	uint16_t flags;          /* the query's flags word, as sent */
	uint8_t rcode;           /* for SFY_DNS_REJECT */
	/* The question exactly as sent (QNAME, QTYPE, QCLASS). qlen 0 when
	 * it is not to be copied (QDCOUNT != 1, a malformed question, a
	 * non-QUERY opcode with a malformed rest): the reply is a bare
	 * header then, and cannot carry answers. */
	uint8_t question[SFY_DNS_QUESTION_MAX];
	size_t qlen;
	uint16_t qtype, qclass;
	/* QNAME for lookups: ASCII lower case, labels joined by '.', no
	 * trailing dot; "" for the root. name_ok is false (and name "") when
	 * a label holds a byte no host name can: '.', a space, a control or a
	 * non-ASCII byte; such a name cannot be looked up or sent to a proxy. */
	char name[SFY_NAME_MAX + 1];
	bool name_ok;
	/* EDNS (RFC 6891): set only when the query carried exactly one
	 * well-formed OPT record. udp_size is the client's, raised to 512. */
	bool edns;
	bool edns_do;
	uint8_t edns_version;
	uint16_t edns_udp_size;
};

/* Parses one query datagram (or one TCP message without its prefix). */
enum sfy_dns_verdict sfy_dns_parse_query(const uint8_t *buf, size_t len,
					 struct sfy_dns_query *q);

/* One answer record; its owner is the question's name. */
struct sfy_dns_answer {
	uint16_t type;           /* SFY_DNS_T_A, _AAAA or _PTR */
	uint8_t ip[16];          /* A: the first 4 bytes, AAAA: all 16 */
	const char *ptr;         /* PTR: the target name, text, 1..253 chars
				  * (a trailing dot is allowed) */
};

struct sfy_dns_reply {
	uint8_t rcode;           /* enum sfy_dns_rcode */
	const struct sfy_dns_answer *an;
	size_t n;                /* answers; only with NOERROR */
	uint32_t ttl;            /* of every answer */
	bool tcp;                /* size limit 65535 instead of the UDP one */
};

/* The most a UDP reply to q may hold: 512 without EDNS, else the client's
 * payload size (never below 512). */
size_t sfy_dns_udp_limit(const struct sfy_dns_query *q);

/* Builds the reply to q: ID, opcode, RD and CD copied, QR and RA set, the
 * question copied byte for byte, our own OPT record (version 0, no
 * options, DO copied) if the query had one. A reply larger than the limit
 * loses its answers and gets TC. NOERROR with n == 0 is NODATA. Returns
 * the length, -ENOSPC (cap too small: SFY_DNS_SMALL_REPLY_MAX always
 * suffices without answers), or -EINVAL (an answer that cannot be encoded,
 * answers without a question or with another rcode, BADVERS without EDNS). */
ssize_t sfy_dns_build_reply(uint8_t *buf, size_t cap, const struct sfy_dns_query *q,
			    const struct sfy_dns_reply *r);

/* DNS over TCP (RFC 1035 4.2.2, RFC 7766): each message is preceded by its
 * length in 2 bytes. Finds the first message at the start of a stream
 * buffer: COMPLETE with *msg and *msglen set and *need = 2 + *msglen (the bytes to
 * consume), or NEED with *need > len. Never MALFORMED: a 0-length message
 * is framed and the parser drops it. */
enum sfy_parse sfy_dns_tcp_next(const uint8_t *buf, size_t len, size_t *need,
				const uint8_t **msg, size_t *msglen);
/* Writes the 2-byte prefix for a message already built at buf + 2.
 * Returns 2 + msglen, -EMSGSIZE above 65535, -ENOSPC if cap is short. */
ssize_t sfy_dns_tcp_frame(uint8_t *buf, size_t cap, size_t msglen);

/* Reverse-lookup names (RFC 1035 3.5, RFC 3596 2.5), case-insensitive, no
 * trailing dot (a normalized name): "4.3.2.1.in-addr.arpa" -> 1.2.3.4
 * (exactly 4 decimal labels 0..255, no leading zeros), and 32 single-hex-
 * digit labels + "ip6.arpa" -> the IPv6 address. false for anything else. */
bool sfy_dns_ptr_v4(const char *name, uint8_t ip[static 4]);
bool sfy_dns_ptr_v6(const char *name, uint8_t ip[static 16]);

#endif
