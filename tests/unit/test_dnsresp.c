/* The DNS responder's core (dnsresp.h): answers to hand-built queries for
 * every case of the design's table, checked byte by byte against what the
 * fake-DNS table, the hosts file and the rules say, and the system
 * nameserver set read from a temporary resolv.conf. The library's
 * configuration comes from SOCKSIFY_CONFIG (a temporary file), loaded once
 * by the first call, as in a preloaded process. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "dns_msg.h"
#include "dnsresp.h"
#include "fakedns.h"
#include "state.h"
#include "testutil.h"

static char dir[] = "/tmp/sfy-dnsresp-XXXXXX";
static char cfg_path[128], hosts_path[128], resolv_path[128];

static int setup_all(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(cfg_path, sizeof(cfg_path), "%s/socksify.yaml", dir);
	snprintf(hosts_path, sizeof(hosts_path), "%s/hosts", dir);
	snprintf(resolv_path, sizeof(resolv_path), "%s/resolv.conf", dir);
	write_file(cfg_path, "proxies: [socks5h://192.0.2.1:1080]\n"
			     "timeouts: { handshake: 1s }\n"
			     "rules:\n"
			     "  - { match: blocked.example, via: block }\n"
			     "  - { match: \"*.lan\", via: direct }\n", 0600);
	write_file(hosts_path, "10.9.8.7 myhost.test alias.test\n"
			       "fd00::7 six.test\n", 0600);
	setenv("SOCKSIFY_CONFIG", cfg_path, 1);
	unsetenv("SOCKSIFY_PROXY");
	unsetenv("SOCKSIFY_RULES");
	unsetenv(SFY_FAKEDNS_ENV);
	if (sfy_hosts_load(hosts_path) != 0)
		return -1;
	return sfy_config_get() ? 0 : -1;
}

static int teardown_all(void **state)
{
	char cmd[256];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- building queries and reading replies ---------------------------- */

struct qopt {
	uint16_t id, flags, qdcount, qclass;
	bool opt, cookie;
};

static size_t put_name(uint8_t *p, const char *name)
{
	size_t n = 0;
	while (*name) {
		size_t l = strcspn(name, ".");
		p[n++] = (uint8_t)l;
		memcpy(p + n, name, l);
		n += l;
		name += l + (name[l] == '.');
	}
	p[n++] = 0;
	return n;
}

static size_t mkq(uint8_t *buf, const char *name, uint16_t type, const struct qopt *o)
{
	struct qopt d = { .id = 0x1234, .flags = 0x0100, .qdcount = 1, .qclass = 1 };
	if (!o)
		o = &d;
	size_t n = 0;
	buf[n++] = (uint8_t)(o->id >> 8);
	buf[n++] = (uint8_t)o->id;
	buf[n++] = (uint8_t)(o->flags >> 8);
	buf[n++] = (uint8_t)o->flags;
	buf[n++] = 0;
	buf[n++] = (uint8_t)o->qdcount;
	memset(buf + n, 0, 4);
	n += 4;
	buf[n++] = 0;
	buf[n++] = o->opt ? 1 : 0;
	n += put_name(buf + n, name);
	buf[n++] = (uint8_t)(type >> 8);
	buf[n++] = (uint8_t)type;
	buf[n++] = (uint8_t)(o->qclass >> 8);
	buf[n++] = (uint8_t)o->qclass;
	if (o->opt) {
		/* root, OPT, 1232, ext-rcode 0, version 0, DO, rdlen */
		static const uint8_t opt[] = { 0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0 };
		memcpy(buf + n, opt, sizeof(opt));
		n += sizeof(opt);
		if (o->cookie) {
			/* option 10 (COOKIE), an 8-byte client cookie */
			static const uint8_t ck[] = { 0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8 };
			memcpy(buf + n, ck, sizeof(ck));
			n += sizeof(ck);
		} else {
			buf[n++] = 0;
			buf[n++] = 0;
		}
	}
	return n;
}

struct rr {
	uint16_t type, rdlen;
	uint32_t ttl;
	const uint8_t *rdata;
};

struct reply {
	uint16_t id, flags, qd, an, ns, ar;
	int rcode;
	size_t qend;            /* offset after the question */
	struct rr rr[16];
	struct rr opt;
	bool has_opt;
};

static size_t skip_name(const uint8_t *m, size_t len, size_t i)
{
	while (i < len && m[i]) {
		if ((m[i] & 0xc0) == 0xc0)
			return i + 2;
		i += 1u + m[i];
	}
	return i + 1;
}

static uint16_t g16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void parse(const uint8_t *m, size_t len, struct reply *r)
{
	memset(r, 0, sizeof(*r));
	assert_true(len >= 12);
	r->id = g16(m);
	r->flags = g16(m + 2);
	r->rcode = r->flags & 15;
	r->qd = g16(m + 4);
	r->an = g16(m + 6);
	r->ns = g16(m + 8);
	r->ar = g16(m + 10);
	size_t i = 12;
	if (r->qd)
		i = skip_name(m, len, i) + 4;
	r->qend = i;
	assert_true(r->an <= 16);
	for (unsigned k = 0; k < (unsigned)r->an + r->ar; k++) {
		i = skip_name(m, len, i);
		assert_true(i + 10 <= len);
		struct rr x = { g16(m + i), g16(m + i + 8),
				(uint32_t)g16(m + i + 4) << 16 | g16(m + i + 6), m + i + 10 };
		i += 10u + x.rdlen;
		assert_true(i <= len);
		if (k < r->an) {
			r->rr[k] = x;
		} else if (x.type == SFY_DNS_T_OPT) {
			r->opt = x;
			r->has_opt = true;
		}
	}
	assert_int_equal(i, len);
}

static void ask(const char *name, uint16_t type, struct reply *r, uint8_t *out)
{
	uint8_t q[600];
	size_t n = mkq(q, name, type, NULL);
	ssize_t len = sfy_dnsresp_answer(q, n, false, out, 4096);
	assert_true(len > 0);
	parse(out, (size_t)len, r);
	assert_int_equal(r->id, 0x1234);
	assert_true(r->flags & 0x8000);                 /* QR */
	assert_int_equal(r->qd, 1);
	/* the question copied byte for byte */
	assert_memory_equal(out + 12, q + 12, n - 12);
}

/* ---- answers ----------------------------------------------------------- */

static void test_fake_a_aaaa(void **state)
{
	uint8_t out[4096];
	struct reply r;
	uint32_t v4;
	uint8_t v6[16];
	(void)state;
	ask("www.example.com", SFY_DNS_T_A, &r, out);
	assert_int_equal(r.rcode, SFY_DNS_NOERROR);
	assert_int_equal(r.an, 1);
	assert_int_equal(r.rr[0].type, SFY_DNS_T_A);
	assert_int_equal(r.rr[0].rdlen, 4);
	assert_int_equal(r.rr[0].ttl, 10);
	/* the same address getaddrinfo gets: the shared table */
	assert_int_equal(sfy_fakedns_ipv4("www.example.com", &v4), 0);
	assert_memory_equal(r.rr[0].rdata, &v4, 4);
	assert_true(sfy_fakedns_in_range(v4));
	/* case and a second question give the same address */
	ask("WWW.Example.COM", SFY_DNS_T_A, &r, out);
	assert_memory_equal(r.rr[0].rdata, &v4, 4);

	ask("www.example.com", SFY_DNS_T_AAAA, &r, out);
	assert_int_equal(r.rcode, SFY_DNS_NOERROR);
	assert_int_equal(r.an, 1);
	assert_int_equal(r.rr[0].type, SFY_DNS_T_AAAA);
	sfy_fakedns_ipv6(v4, v6);
	assert_int_equal(r.rr[0].rdlen, 16);
	assert_memory_equal(r.rr[0].rdata, v6, 16);
}

static void test_hosts_names(void **state)
{
	uint8_t out[4096];
	struct reply r;
	static const uint8_t a[4] = { 10, 9, 8, 7 };
	uint8_t six[16];
	(void)state;
	ask("myhost.test", SFY_DNS_T_A, &r, out);
	assert_int_equal(r.rcode, SFY_DNS_NOERROR);
	assert_int_equal(r.an, 1);
	assert_memory_equal(r.rr[0].rdata, a, 4);
	ask("alias.test", SFY_DNS_T_A, &r, out);
	assert_int_equal(r.an, 1);
	assert_memory_equal(r.rr[0].rdata, a, 4);
	/* in the file without that family: NODATA, not a fake address */
	ask("myhost.test", SFY_DNS_T_AAAA, &r, out);
	assert_int_equal(r.rcode, SFY_DNS_NOERROR);
	assert_int_equal(r.an, 0);
	ask("six.test", SFY_DNS_T_AAAA, &r, out);
	assert_int_equal(r.an, 1);
	inet_pton(AF_INET6, "fd00::7", six);
	assert_memory_equal(r.rr[0].rdata, six, 16);
	ask("six.test", SFY_DNS_T_A, &r, out);
	assert_int_equal(r.rcode, SFY_DNS_NOERROR);
	assert_int_equal(r.an, 0);
	/* no fake address was handed out for them */
	uint32_t v4;
	assert_int_equal(sfy_fakedns_find("myhost.test", &v4), -ENOENT);
}

static void test_localhost_numeric(void **state)
{
	uint8_t out[4096];
	struct reply r;
	static const uint8_t lo4[4] = { 127, 0, 0, 1 }, lo6[16] = { [15] = 1 },
			     num[4] = { 1, 2, 3, 4 };
	(void)state;
	ask("localhost", SFY_DNS_T_A, &r, out);
	assert_int_equal(r.an, 1);
	assert_memory_equal(r.rr[0].rdata, lo4, 4);
	ask("foo.localhost", SFY_DNS_T_AAAA, &r, out);
	assert_int_equal(r.an, 1);
	assert_memory_equal(r.rr[0].rdata, lo6, 16);
	ask("1.2.3.4", SFY_DNS_T_A, &r, out);
	assert_int_equal(r.rcode, SFY_DNS_NOERROR);
	assert_int_equal(r.an, 1);
	assert_memory_equal(r.rr[0].rdata, num, 4);
	ask("1.2.3.4", SFY_DNS_T_AAAA, &r, out);
	assert_int_equal(r.rcode, SFY_DNS_NOERROR);
	assert_int_equal(r.an, 0);
	uint32_t v4;
	assert_int_equal(sfy_fakedns_find("1.2.3.4", &v4), -ENOENT);
}

static void ptr_name(uint32_t v4, char *out, size_t cap)
{
	const uint8_t *b = (const uint8_t *)&v4;
	snprintf(out, cap, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
}

/* The PTR target as text. */
static void rd_name(const struct rr *x, char *out)
{
	size_t i = 0, o = 0;
	while (i < x->rdlen && x->rdata[i]) {
		uint8_t l = x->rdata[i++];
		if (o)
			out[o++] = '.';
		memcpy(out + o, x->rdata + i, l);
		o += l;
		i += l;
	}
	out[o] = '\0';
}

static void test_ptr(void **state)
{
	uint8_t out[4096];
	struct reply r;
	uint32_t v4;
	char q[128], got[300];
	(void)state;
	assert_int_equal(sfy_fakedns_ipv4("reverse.example", &v4), 0);
	ptr_name(v4, q, sizeof(q));
	ask(q, SFY_DNS_T_PTR, &r, out);
	assert_int_equal(r.rcode, SFY_DNS_NOERROR);
	assert_int_equal(r.an, 1);
	assert_int_equal(r.rr[0].type, SFY_DNS_T_PTR);
	rd_name(&r.rr[0], got);
	assert_string_equal(got, "reverse.example");

	/* the IPv6 twin's ip6.arpa name */
	uint8_t v6[16];
	sfy_fakedns_ipv6(v4, v6);
	char *p = q;
	for (int i = 15; i >= 0; i--)
		p += sprintf(p, "%x.%x.", v6[i] & 15, v6[i] >> 4);
	strcpy(p, "ip6.arpa");
	ask(q, SFY_DNS_T_PTR, &r, out);
	assert_int_equal(r.an, 1);
	rd_name(&r.rr[0], got);
	assert_string_equal(got, "reverse.example");

	/* an address outside the range and not in the hosts file */
	ask("8.8.8.8.in-addr.arpa", SFY_DNS_T_PTR, &r, out);
	assert_int_equal(r.rcode, SFY_DNS_NXDOMAIN);
	assert_int_equal(r.an, 0);
	/* a fake address no name stands behind */
	uint32_t unused = v4 ^ htonl(0x00ff0000);
	if (sfy_fakedns_in_range(unused)) {
		char n[SFY_NAME_MAX + 1];
		if (sfy_fakedns_name(unused, n) != 0) {
			ptr_name(unused, q, sizeof(q));
			ask(q, SFY_DNS_T_PTR, &r, out);
			assert_int_equal(r.rcode, SFY_DNS_NXDOMAIN);
		}
	}
	/* the hosts file's name */
	ask("7.8.9.10.in-addr.arpa", SFY_DNS_T_PTR, &r, out);
	assert_int_equal(r.rcode, SFY_DNS_NOERROR);
	assert_int_equal(r.an, 1);
	rd_name(&r.rr[0], got);
	assert_string_equal(got, "myhost.test");
}

static void test_other_types_nodata(void **state)
{
	static const uint16_t types[] = { SFY_DNS_T_SRV, SFY_DNS_T_TXT, SFY_DNS_T_MX,
					  SFY_DNS_T_HTTPS, SFY_DNS_T_ANY, SFY_DNS_T_NS,
					  SFY_DNS_T_SOA, SFY_DNS_T_CNAME, 64 /* SVCB */ };
	uint8_t out[4096];
	struct reply r;
	(void)state;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		ask("_http._tcp.deb.debian.org", types[i], &r, out);
		EQ(r.rcode, SFY_DNS_NOERROR, "rcode");
		EQ(r.an, 0, "ancount");
		ask("www.example.com", types[i], &r, out);
		EQ(r.rcode, SFY_DNS_NOERROR, "rcode");
		EQ(r.an, 0, "ancount");
	}
	/* the root */
	ask("", SFY_DNS_T_NS, &r, out);
	assert_int_equal(r.rcode, SFY_DNS_NOERROR);
	assert_int_equal(r.an, 0);
	/* SRV lookups hand out no fake address */
	uint32_t v4;
	assert_int_equal(sfy_fakedns_find("_http._tcp.deb.debian.org", &v4), -ENOENT);
}

static void test_blocked_nxdomain(void **state)
{
	uint8_t out[4096];
	struct reply r;
	(void)state;
	ask("blocked.example", SFY_DNS_T_A, &r, out);
	assert_int_equal(r.rcode, SFY_DNS_NXDOMAIN);
	assert_int_equal(r.an, 0);
	ask("blocked.example", SFY_DNS_T_SRV, &r, out);
	assert_int_equal(r.rcode, SFY_DNS_NXDOMAIN);
	ask("BLOCKED.example", SFY_DNS_T_AAAA, &r, out);
	assert_int_equal(r.rcode, SFY_DNS_NXDOMAIN);
	uint32_t v4;
	assert_int_equal(sfy_fakedns_find("blocked.example", &v4), -ENOENT);
}

static void test_local_name_not_faked(void **state)
{
	uint8_t out[4096];
	struct reply r;
	(void)state;
	/* *.lan is direct: the real resolver (which knows no such name here,
	 * or cannot be reached within the 1 s handshake timeout) */
	ask("printer.lan", SFY_DNS_T_A, &r, out);
	assert_true(r.rcode == SFY_DNS_NXDOMAIN || r.rcode == SFY_DNS_SERVFAIL);
	uint32_t v4;
	assert_int_equal(sfy_fakedns_find("printer.lan", &v4), -ENOENT);
}

static void test_malformed_and_dropped(void **state)
{
	uint8_t q[600], out[4096];
	struct reply r;
	struct qopt o = { .id = 0xbeef, .flags = 0x0100, .qdcount = 2, .qclass = 1 };
	(void)state;
	size_t n = mkq(q, "a.example", SFY_DNS_T_A, &o);
	ssize_t len = sfy_dnsresp_answer(q, n, false, out, sizeof(out));
	assert_true(len > 0);
	parse(out, (size_t)len, &r);
	assert_int_equal(r.id, 0xbeef);
	assert_int_equal(r.rcode, SFY_DNS_FORMERR);
	assert_int_equal(r.an, 0);

	/* a compression pointer in the question */
	o.qdcount = 1;
	n = mkq(q, "a.example", SFY_DNS_T_A, &o);
	q[12] = 0xc0;
	q[13] = 0x0c;
	len = sfy_dnsresp_answer(q, n, false, out, sizeof(out));
	assert_true(len > 0);
	parse(out, (size_t)len, &r);
	assert_int_equal(r.rcode, SFY_DNS_FORMERR);

	/* a response (QR=1) and a fragment: nothing */
	o.flags = 0x8100;
	n = mkq(q, "a.example", SFY_DNS_T_A, &o);
	assert_int_equal(sfy_dnsresp_answer(q, n, false, out, sizeof(out)), 0);
	assert_int_equal(sfy_dnsresp_answer(q, 11, false, out, sizeof(out)), 0);

	/* class CH: NOTIMP, question copied */
	o.flags = 0x0100;
	o.qclass = 3;
	n = mkq(q, "version.bind", SFY_DNS_T_TXT, &o);
	len = sfy_dnsresp_answer(q, n, false, out, sizeof(out));
	assert_true(len > 0);
	parse(out, (size_t)len, &r);
	assert_int_equal(r.rcode, SFY_DNS_NOTIMP);
	assert_int_equal(r.qd, 1);

	/* a label byte no host name has: NXDOMAIN, nothing faked */
	o.qclass = 1;
	n = mkq(q, "a b.example", SFY_DNS_T_A, &o);
	len = sfy_dnsresp_answer(q, n, false, out, sizeof(out));
	parse(out, (size_t)len, &r);
	assert_int_equal(r.rcode, SFY_DNS_NXDOMAIN);

	/* a buffer too small: an error, never a write past it */
	n = mkq(q, "www.example.com", SFY_DNS_T_A, NULL);
	assert_true(sfy_dnsresp_answer(q, n, false, out, 20) < 0);
}

static void test_opt(void **state)
{
	uint8_t q[600], out[4096];
	struct reply r;
	struct qopt o = { .id = 7, .flags = 0x0110, .qdcount = 1, .qclass = 1, .opt = true,
			  .cookie = true };
	(void)state;
	size_t n = mkq(q, "www.example.com", SFY_DNS_T_A, &o);
	ssize_t len = sfy_dnsresp_answer(q, n, false, out, sizeof(out));
	assert_true(len > 0);
	parse(out, (size_t)len, &r);
	assert_int_equal(r.rcode, SFY_DNS_NOERROR);
	assert_int_equal(r.an, 1);
	assert_int_equal(r.ar, 1);
	assert_true(r.has_opt);
	assert_int_equal(r.opt.rdlen, 0);       /* the cookie is not echoed */
	assert_int_equal(r.flags & 0x0110, 0x0110);     /* RD, CD copied */
	/* without OPT: none back */
	n = mkq(q, "www.example.com", SFY_DNS_T_A, NULL);
	len = sfy_dnsresp_answer(q, n, false, out, sizeof(out));
	parse(out, (size_t)len, &r);
	assert_int_equal(r.ar, 0);
	/* EDNS version 1: BADVERS with our OPT */
	o.cookie = false;
	n = mkq(q, "www.example.com", SFY_DNS_T_A, &o);
	q[n - 5] = 1;   /* the version byte of the OPT's TTL */
	len = sfy_dnsresp_answer(q, n, false, out, sizeof(out));
	parse(out, (size_t)len, &r);
	assert_true(r.has_opt);
	assert_int_equal(r.an, 0);
	assert_int_equal(r.rcode, SFY_DNS_BADVERS & 15);
	assert_int_equal(r.opt.ttl >> 24, SFY_DNS_BADVERS >> 4);       /* extended RCODE */
}

/* ---- the nameserver set ------------------------------------------------ */

static bool is_ns4(const char *ip, uint16_t port, int *idx)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, ip, &s.sin_addr);
	return sfy_dnsresp_is_ns((struct sockaddr *)&s, sizeof(s), idx);
}

static bool is_ns6(const char *ip, int *idx)
{
	struct sockaddr_in6 s = { .sin6_family = AF_INET6, .sin6_port = htons(53) };
	inet_pton(AF_INET6, ip, &s.sin6_addr);
	return sfy_dnsresp_is_ns((struct sockaddr *)&s, sizeof(s), idx);
}

static void test_nameservers(void **state)
{
	int idx = -1;
	struct sockaddr_storage ss;
	socklen_t len;
	char txt[INET6_ADDRSTRLEN];
	(void)state;
	write_file(resolv_path, "# comment\nsearch example.org\nnameserver 10.0.0.1\n"
				"nameserver ::2\noptions ndots:1\nnameserver\t10.0.0.2 # x\n", 0600);
	sfy_dnsresp_set_resolv_path(resolv_path);
	assert_true(is_ns4("127.0.0.53", 53, &idx));
	assert_int_equal(idx, 0);
	assert_true(is_ns4("10.0.0.1", 53, &idx));
	assert_int_equal(idx, 1);
	assert_true(is_ns6("::2", &idx));
	assert_int_equal(idx, 2);
	assert_true(is_ns4("10.0.0.2", 53, &idx));
	assert_int_equal(idx, 3);
	assert_true(is_ns6("::ffff:10.0.0.1", &idx));   /* v4-mapped is v4 */
	assert_int_equal(idx, 1);
	assert_false(is_ns4("10.0.0.1", 54, NULL));
	assert_false(is_ns4("10.0.0.9", 53, NULL));
	assert_false(is_ns4("127.0.0.1", 53, NULL));

	assert_true(sfy_dnsresp_ns_addr(1, AF_INET, &ss, &len));
	assert_int_equal(len, sizeof(struct sockaddr_in));
	struct sockaddr_in *in = (void *)&ss;
	assert_int_equal(ntohs(in->sin_port), 53);
	inet_ntop(AF_INET, &in->sin_addr, txt, sizeof(txt));
	assert_string_equal(txt, "10.0.0.1");
	assert_true(sfy_dnsresp_ns_addr(1, AF_INET6, &ss, &len));
	inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, txt, sizeof(txt));
	assert_string_equal(txt, "::ffff:10.0.0.1");
	assert_false(sfy_dnsresp_ns_addr(2, AF_INET, &ss, &len));      /* v6 only */
	assert_true(sfy_dnsresp_ns_addr(0, AF_UNSPEC, &ss, &len));
	assert_int_equal(ss.ss_family, AF_INET);
	assert_false(sfy_dnsresp_ns_addr(5, AF_UNSPEC, &ss, &len));
	assert_false(sfy_dnsresp_ns_addr(-1, AF_UNSPEC, &ss, &len));

	/* the file changes: read again within about a second; slots stay */
	usleep(1100 * 1000);
	assert_true(is_ns4("10.0.0.1", 53, &idx));     /* a check now */
	write_file(resolv_path, "nameserver 10.0.0.3\nnameserver 10.0.0.1\n", 0600);
	/* the last check was just now: the old set holds for up to a second */
	assert_true(is_ns6("::2", NULL));
	usleep(1100 * 1000);
	assert_false(is_ns6("::2", NULL));
	assert_false(is_ns4("10.0.0.2", 53, NULL));
	assert_true(is_ns4("10.0.0.1", 53, &idx));
	assert_int_equal(idx, 1);
	assert_true(is_ns4("10.0.0.3", 53, &idx));
	assert_int_equal(idx, 4);                       /* the first free slot */
	assert_true(is_ns4("127.0.0.53", 53, &idx));
	assert_int_equal(idx, 0);
	/* a slot keeps its address after the file drops it */
	assert_true(sfy_dnsresp_ns_addr(2, AF_INET6, &ss, &len));
	inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, txt, sizeof(txt));
	assert_string_equal(txt, "::2");

	/* no file: 127.0.0.53 alone */
	unlink(resolv_path);
	usleep(1100 * 1000);
	assert_false(is_ns4("10.0.0.1", 53, NULL));
	assert_true(is_ns4("127.0.0.53", 53, NULL));
	sfy_dnsresp_set_resolv_path(NULL);
}

/* ---- configuration ------------------------------------------------------ */

static void test_enabled_and_key(void **state)
{
	struct sfy_config c;
	char err[SFY_ERR_MAX];
	(void)state;
	assert_true(sfy_dnsresp_enabled(sfy_config_get()));
	assert_false(sfy_dnsresp_enabled(NULL));

	static const char on[] = "proxies: [socks5h://192.0.2.1:1080]\ndns_responder: on\n";
	static const char off[] = "proxies: [socks5h://192.0.2.1:1080]\ndns_responder: off\n";
	static const char local[] = "proxies: [socks5://192.0.2.1:1080]\ndns: local\n";
	static const char bad[] = "proxies: [socks5h://192.0.2.1:1080]\ndns_responder: maybe\n";
	sfy_config_defaults(&c);
	assert_false(c.dns_responder_off);              /* on by default */
	assert_int_equal(sfy_config_load_string(&c, on, strlen(on), "t", err, sizeof(err)), 0);
	assert_int_equal(sfy_config_finish(&c, err, sizeof(err)), 0);
	assert_true(sfy_dnsresp_enabled(&c));
	sfy_config_free(&c);

	sfy_config_defaults(&c);
	assert_int_equal(sfy_config_load_string(&c, off, strlen(off), "t", err, sizeof(err)), 0);
	assert_int_equal(sfy_config_finish(&c, err, sizeof(err)), 0);
	assert_true(c.dns_responder_off);
	assert_false(sfy_dnsresp_enabled(&c));
	sfy_config_free(&c);

	sfy_config_defaults(&c);
	assert_int_equal(sfy_config_load_string(&c, local, strlen(local), "t", err, sizeof(err)), 0);
	assert_int_equal(sfy_config_finish(&c, err, sizeof(err)), 0);
	assert_false(sfy_dnsresp_enabled(&c));          /* local DNS: nothing to answer */
	sfy_config_free(&c);

	sfy_config_defaults(&c);
	assert_int_not_equal(sfy_config_load_string(&c, bad, strlen(bad), "t", err, sizeof(err)), 0);
	assert_non_null(strstr(err, "dns_responder"));
	sfy_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fake_a_aaaa),
		cmocka_unit_test(test_hosts_names),
		cmocka_unit_test(test_localhost_numeric),
		cmocka_unit_test(test_ptr),
		cmocka_unit_test(test_other_types_nodata),
		cmocka_unit_test(test_blocked_nxdomain),
		cmocka_unit_test(test_local_name_not_faked),
		cmocka_unit_test(test_malformed_and_dropped),
		cmocka_unit_test(test_opt),
		cmocka_unit_test(test_nameservers),
		cmocka_unit_test(test_enabled_and_key),
	};
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
