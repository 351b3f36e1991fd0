/* Cost of sfy_route_match (the compiled routing rules) per call: with no
 * rules and with 1,000 (half host rules, half CIDR rules over many prefix
 * lengths, a few `*` port rules), for names and for addresses (an address
 * also looks its names up in the dnsmem table; "+names" has one there).
 * Each case runs in alternating batches, the best batch counts; prints
 * "CASE ns" lines for tests/bench/run.sh. Linked against the library's
 * core (not preloaded): it measures the matcher alone. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsmem.h"
#include "route.h"
#include "../tools/benchutil.h"
#include "../unit/routeutil.h"

#define NDEST 64

static char names[NDEST][64];
static struct sockaddr_storage addrs[NDEST];
static volatile int sink;

static struct sfy_config *rules(unsigned n)
{
	struct sfy_config *c = rb_new("socks5h://127.0.0.1:1080", SFY_DNS_REMOTE);
	int w = rb_chain(c, "work", "socks5://10.9.9.9:1080", SFY_DNS_LOCAL, SFY_CHAIN_STRICT);
	char m[96];
	for (unsigned i = 0; i < n; i++) {
		int via = i % 3 == 0 ? w : i % 3 == 1 ? SFY_VIA_DIRECT : SFY_VIA_BLOCK;
		unsigned lo = i % 50 == 0 ? 25 : 0;
		switch (i % 10) {
		case 0: case 1: case 2:
			snprintf(m, sizeof(m), "*.d%u.example", i);
			break;
		case 3: case 4:
			snprintf(m, sizeof(m), "host%u.corp.example", i);
			break;
		case 5: case 6: case 7: {
			unsigned p = 16 + i % 3 * 4;    /* /16, /20, /24 */
			uint32_t net = (0x0a000000u | (i & 0xffffu) << 8) & ~0u << (32 - p);
			struct in_addr a = { htonl(net) };
			snprintf(m, sizeof(m), "%s/%u", inet_ntoa(a), p);
			break;
		}
		case 8:
			snprintf(m, sizeof(m), "fd00:%x::/%u", i, 32 + i % 2 * 16);
			break;
		default:
			if (i % 100 == 9)
				snprintf(m, sizeof(m), "*");
			else
				snprintf(m, sizeof(m), "192.168.%u.%u", i % 256, i / 256);
			if (i % 100 == 9)
				lo = 1000 + i;
		}
		if (!rb_rule(c, SFY_RO_FILE, m, lo, lo, via)) {
			fprintf(stderr, "routebench: bad rule %s\n", m);
			exit(1);
		}
	}
	return c;
}

static double run(const struct sfy_routes *rt, bool by_name, long calls)
{
	struct sfy_route r;
	int64_t t0 = now_ns();
	for (long i = 0; i < calls; i++) {
		unsigned k = (unsigned)i % NDEST;
		if (by_name)
			sfy_route_match(rt, names[k], NULL, 443, &r);
		else
			sfy_route_match(rt, NULL, (struct sockaddr *)&addrs[k], 443, &r);
		sink += r.rule;
	}
	return (double)(now_ns() - t0) / (double)calls;
}

int main(int argc, char **argv)
{
	long calls = argc > 1 ? atol(argv[1]) : 1000000;
	long batches = 50, per = calls / batches > 0 ? calls / batches : 1;
	for (int i = 0; i < NDEST; i++) {
		/* A quarter hit a rule, the rest fall through to the default. */
		if (i % 4 == 0)
			snprintf(names[i], sizeof(names[i]), "www.d%d.example", i * 10);
		else
			snprintf(names[i], sizeof(names[i]), "cdn%d.static.assets.example.net", i);
		struct sockaddr_in *a = (struct sockaddr_in *)&addrs[i];
		a->sin_family = AF_INET;
		a->sin_port = htons(443);
		a->sin_addr.s_addr = htonl(i % 4 == 0 ? 0x0a000001u + ((unsigned)i << 8)
					   : 0x5db8d800u + (unsigned)i);
	}
	struct sfy_config *c0 = rules(0), *c1 = rules(1000);
	c0->default_line = 1;   /* routes active with no rules: the same paths run */
	struct sfy_routes *r0 = sfy_routes_build(c0, NULL, 0), *r1 = sfy_routes_build(c1, NULL, 0);
	if (!r0 || !r1)
		return 1;
	static const char *const label[6] = { "none.name", "rules.name", "none.addr", "rules.addr",
					      "none.addr+names", "rules.addr+names" };
	double best[6];
	for (int k = 0; k < 6; k++)
		best[k] = 1e18;
	for (int phase = 0; phase < 2; phase++) {
		if (phase == 1)         /* every address with two names from local DNS */
			for (int i = 0; i < NDEST; i++) {
				char nm[80];
				snprintf(nm, sizeof(nm), "n%d.d%d.example", i, i * 10);
				sfy_dnsmem_add(nm, (struct sockaddr *)&addrs[i], sizeof(struct sockaddr_in),
					       0);
				sfy_dnsmem_add(names[i], (struct sockaddr *)&addrs[i],
					       sizeof(struct sockaddr_in), 0);
			}
		for (long b = 0; b < batches; b++)
			for (int k = phase ? 4 : 0; k < (phase ? 6 : 4); k++) {
				double v = run(k % 2 ? r1 : r0, k < 2, per);
				if (v < best[k])
					best[k] = v;
			}
	}
	for (int k = 0; k < 6; k++)
		printf("%s %.1f\n", label[k], best[k]);
	sfy_routes_free(r0);
	sfy_routes_free(r1);
	rb_free(c0);
	rb_free(c1);
	return 0;
}
