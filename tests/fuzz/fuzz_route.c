/* libFuzzer target: the compiled route matcher against the linear
 * reference. The input builds a rule set (chains, rules of every origin
 * and kind, ports, default) and then names the destinations to try; every
 * destination's route and every name's lookup-time plan must be the same
 * from both (trap otherwise). Everything built is freed (leaks fail). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "route.h"
#include "route_ref.h"
#include "../unit/routeutil.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct in {
	const uint8_t *p;
	size_t n;
};

static unsigned byte(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

/* Few labels, so that rules and destinations meet. */
static void name(struct in *in, char *out, size_t cap)
{
	static const char *const labels[] = { "a", "b", "ex", "com", "onion", "exit", "i2p",
					      "Lan", "x-1", "_s", "" };
	unsigned n = 1 + byte(in) % 5;
	size_t o = 0;
	for (unsigned i = 0; i < n && o + 8 < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "." : "", labels[byte(in) % 11]);
	if (byte(in) % 7 == 0 && o + 1 < cap)
		out[o++] = '.', out[o] = '\0';
}

static void addr(struct in *in, int v6, uint8_t ip[16])
{
	memset(ip, 0, 16);
	if (v6) {
		ip[0] = 0xfd;
		ip[1] = (uint8_t)(byte(in) % 3);
		ip[15] = (uint8_t)(byte(in) % 4);
		if (byte(in) % 5 == 0) {        /* v4-mapped */
			memset(ip, 0, 10);
			ip[10] = ip[11] = 0xff;
			ip[12] = 10;
			ip[13] = (uint8_t)(byte(in) % 3);
			ip[15] = (uint8_t)(byte(in) % 4);
		}
	} else {
		ip[0] = 10;
		ip[1] = (uint8_t)(byte(in) % 3);
		ip[3] = (uint8_t)(byte(in) % 4);
	}
}

static void same(const struct sfy_routes *rt, const char *nm, const struct sockaddr *sa,
		 uint16_t port)
{
	struct sfy_route a, b;
	sfy_route_match(rt, nm, sa, port, &a);
	sfy_route_match_ref(rt, nm, sa, port, &b);
	CHECK(a.kind == b.kind && a.via == b.via && a.rule == b.rule && a.cfg == b.cfg && a.cfg);
	char d[512];
	sfy_route_describe(rt, &a, d, sizeof(d));
	if (nm) {
		int p = port % 2 ? port : -1;  /* half the ports odd: both kinds of call */
		CHECK(sfy_route_name_plan(rt, nm, p) == sfy_route_name_plan_ref(rt, nm, p));
		CHECK(sfy_route_name_restrictive(rt, nm, sa) ==
		      sfy_route_name_restrictive_ref(rt, nm, sa));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	unsigned flags = byte(&in);
	struct sfy_config *c = rb_new(flags & 1 ? "socks5h://127.0.0.1:1080" : NULL,
				      flags & 2 ? SFY_DNS_REMOTE : SFY_DNS_LOCAL);
	unsigned nch = byte(&in) % 4;
	for (unsigned i = 0; i < nch; i++) {
		char nm[8];
		snprintf(nm, sizeof(nm), "c%u", i);
		rb_chain(c, nm, byte(&in) % 2 ? "socks5://10.0.0.1:1 socks5h://10.0.0.2:2"
					     : "socks4://10.0.0.1:1",
			 (enum sfy_dns_mode)(byte(&in) % 3), SFY_CHAIN_STRICT);
	}
	unsigned nrules = byte(&in) % 64;
	for (unsigned i = 0; i < nrules && in.n; i++) {
		char m[300];
		unsigned k = byte(&in) % 4, lo = 0, hi = 0;
		if (k == 0) {
			snprintf(m, sizeof(m), "*");
		} else if (k == 1 || k == 2) {
			if (k == 1)
				m[0] = '*', m[1] = '.';
			name(&in, m + (k == 1 ? 2 : 0), sizeof(m) - 2);
			size_t l = strlen(m);
			if (l && m[l - 1] == '.')
				m[--l] = '\0';
			if (!l || m[l - 1] == '*')
				snprintf(m, sizeof(m), "a");
		} else {
			int v6 = byte(&in) % 2;
			uint8_t ip[16];
			char txt[INET6_ADDRSTRLEN];
			addr(&in, v6, ip);
			unsigned p = byte(&in) % (v6 ? 129 : 33);
			for (unsigned b = p; b < (v6 ? 128u : 32u); b++)
				ip[b / 8] &= (uint8_t)~(0x80 >> (b % 8));
			inet_ntop(v6 ? AF_INET6 : AF_INET, ip, txt, sizeof(txt));
			snprintf(m, sizeof(m), "%s/%u", txt, p);
		}
		if (byte(&in) % 3 == 0) {
			static const unsigned ports[] = { 53, 80, 443, 1 };
			lo = ports[byte(&in) % 4];
			hi = lo + (byte(&in) % 2 ? 0 : byte(&in) * 4u);
		}
		int via = (int)(byte(&in) % (nch + 4)) - 4;
		if (!rb_rule(c, (enum sfy_rule_origin)(byte(&in) % 4 == 2 ? SFY_RO_FILE
						      : byte(&in) % 3),
			     m, lo, hi, via))
			continue;       /* e.g. a v4-mapped /96+ became v4: still fine */
	}
	if (byte(&in) % 3 == 0) {
		sfy_cidr_parse(byte(&in) % 2 ? "10.1.0.0/16" : "[fd01::]/16:53", &c->bypass[0],
			       NULL, 0);
		c->nbypass = 1;
	}
	c->default_via = (int16_t)((int)(byte(&in) % (nch + 4)) - 4);
	c->default_line = 1;

	struct sfy_routes *rt = sfy_routes_build(c, NULL, 0);
	CHECK(rt);
	while (in.n) {
		static const uint16_t ports[] = { 53, 80, 443, 0, 1, 65535, 444, 1000 };
		uint16_t port = ports[byte(&in) % 8];
		unsigned k = byte(&in) % 3;
		if (k == 0) {
			char nm[300];
			name(&in, nm, sizeof(nm));
			same(rt, nm, NULL, port);
		} else {
			struct sockaddr_storage ss;
			memset(&ss, 0, sizeof(ss));
			uint8_t ip[16];
			addr(&in, k == 2, ip);
			if (k == 1) {
				struct sockaddr_in *a = (struct sockaddr_in *)&ss;
				a->sin_family = AF_INET;
				a->sin_port = htons(port);
				memcpy(&a->sin_addr, ip, 4);
			} else {
				struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
				a->sin6_family = AF_INET6;
				a->sin6_port = htons(port);
				memcpy(a->sin6_addr.s6_addr, ip, 16);
			}
			same(rt, NULL, (struct sockaddr *)&ss, port);
		}
	}
	sfy_routes_free(rt);
	rb_free(c);
	return 0;
}
