/* The one classification of every entry point that names a destination
 * (connect, sendto, sendmsg, sendmmsg, MSG_FASTOPEN): what the kernel would
 * read from the program's socket and address, and what socksify does with
 * it. Every hook asks here and nowhere else, so that no form the kernel
 * accepts as a destination reaches it untunnelled.
 *
 * The kernel's reading (Linux net/ipv4/af_inet.c, tcp_ipv4.c, udp.c,
 * datagram.c; net/ipv6/tcp_ipv6.c, udp.c, datagram.c; net/socket.c):
 *
 *   all      an address longer than sockaddr_storage: EINVAL (connect,
 *            sendto); sendmsg() clips msg_namelen to it instead
 *   TCP v4   connect: len < 2 EINVAL; AF_UNSPEC disconnects; len < 16
 *            EINVAL; family != AF_INET EAFNOSUPPORT
 *   TCP v6   connect: AF_UNSPEC disconnects; len < 24 (SIN6_LEN_RFC2133:
 *            no sin6_scope_id needed) EINVAL; family != AF_INET6
 *            EAFNOSUPPORT (an AF_INET address too); ::ffff:a.b.c.d is an
 *            IPv4 connect, ENETUNREACH with IPV6_V6ONLY
 *   TCP      sendto/sendmsg read the address only with MSG_FASTOPEN (a
 *            connect plus data; AF_UNSPEC there is EOPNOTSUPP)
 *   UDP v4   send: len < 16 EINVAL; family AF_INET *or AF_UNSPEC*, else
 *            EAFNOSUPPORT; port 0 EINVAL. connect: AF_UNSPEC disconnects,
 *            else AF_INET with len >= 16 (port 0 allowed)
 *   UDP v6   send: len < 2 EINVAL; AF_INET6 needs len >= 24; AF_INET is
 *            sent as IPv4 (ENETUNREACH with IPV6_V6ONLY); AF_UNSPEC means
 *            "no address": the connected peer; port 0 EINVAL. connect:
 *            AF_INET is an IPv4 connect (EAFNOSUPPORT with V6ONLY)
 *   any      0.0.0.0 and :: mean this host (loopback)
 *
 * Sockets are told apart by SO_DOMAIN, SO_TYPE and SO_PROTOCOL: TCP
 * (SOCK_STREAM + IPPROTO_TCP) and MPTCP (a TCP byte stream whose subflows
 * all go to the same peer: the proxy) are tunnelled; UDP (SOCK_DGRAM +
 * IPPROTO_UDP) goes through the UDP policy; every other inet socket (SCTP,
 * raw, ICMP "ping" sockets, UDP-Lite) cannot be proxied and reaches only
 * bypass destinations -- anything else fails with EACCES. */
#ifndef SFY_DEST_H
#define SFY_DEST_H

#include <stdbool.h>
#include <sys/socket.h>

#include "addr.h"
#include "config.h"
#include "route.h"

enum sfy_op {
	SFY_OP_CONNECT,         /* connect(sa, len) */
	SFY_OP_SENDTO,          /* sendto(): sa != NULL is an address of len bytes */
	SFY_OP_SENDMSG,         /* sendmsg()/sendmmsg(): msg_name && msg_namelen */
};

enum sfy_sockproto {
	SFY_SOCK_NONE = 0,     /* not an AF_INET/AF_INET6 socket */
	SFY_SOCK_TCP,          /* TCP or MPTCP stream */
	SFY_SOCK_UDP,
	SFY_SOCK_OTHER,        /* SCTP, raw, ICMP, UDP-Lite, ... */
};

/* What the kernel says about a socket. Fill family and proto to skip the
 * getsockopt() calls when the caller already knows (a UDP session). */
struct sfy_sockinfo {
	int family;             /* AF_INET, AF_INET6; 0 = not asked yet */
	enum sfy_sockproto proto;
	int type, protocol;     /* SO_TYPE, SO_PROTOCOL (for log lines) */
	int v6only;             /* IPV6_V6ONLY: -1 = not asked yet */
	bool hdrincl;           /* OTHER: a raw socket that writes its own IP header */
};

/* How the kernel reads the address (sfy_dest_read). */
enum sfy_read {
	SFY_READ_KERNEL,        /* nothing to decide: the kernel rejects it, or
				   it names no destination (TCP send without
				   MSG_FASTOPEN) */
	SFY_READ_DEST,          /* a destination, in sfy_dest.sa */
	SFY_READ_DISCONNECT,    /* connect(AF_UNSPEC): dissolve the association */
	SFY_READ_CONNECTED,     /* no address: the connected peer (as send()) */
};

/* What the hook does (sfy_classify). */
enum sfy_verdict {
	SFY_V_KERNEL,           /* the real call with the program's arguments:
				   not ours, rejected by the kernel, or a bypass
				   destination */
	SFY_V_DISCONNECT,       /* as SFY_READ_DISCONNECT; the real call follows */
	SFY_V_CONNECTED,        /* as SFY_READ_CONNECTED */
	SFY_V_PROXY,            /* TCP/UDP to a destination the rules proxy */
	SFY_V_REFUSE,           /* another protocol to a non-bypass destination:
				   EACCES (logged once per socket) */
	SFY_V_BLOCK,            /* a rule blocks it: TCP connect ECONNREFUSED,
				   UDP send EPERM, UDP connect ECONNREFUSED;
				   logged at warn once per destination */
	SFY_V_DIRECT_NAME,      /* a rule sends the name behind a fake address
				   directly: d->route.cfg (no hops) resolves
				   d->name locally and connects to it (TCP,
				   through chain.c, asynchronously for a
				   non-blocking socket); UDP resolves it (bounded
				   by the handshake timeout) and sends */
};

struct sfy_dest {
	struct sfy_sockinfo si;
	/* SFY_READ_DEST: the destination as the kernel reads it, in the
	 * socket's family and at full length -- a sockaddr_in, or a whole
	 * sockaddr_in6 (v4-mapped for an AF_INET address on an AF_INET6
	 * socket; zero scope id when the program gave 24 bytes); 0.0.0.0/::
	 * already replaced by loopback. (For SFY_SOCK_OTHER, which is only
	 * checked against the bypass rules, an IPv6 address given to an
	 * AF_INET socket stays IPv6.) Everything downstream (bypass, fake
	 * DNS, the proxy request, getpeername) reads this, never the
	 * program's bytes. */
	struct sockaddr_storage sa;
	socklen_t len;
	const struct sfy_config *cfg;   /* SFY_V_PROXY: NULL if it failed to load;
					   else the route's chain (route.cfg) */
	/* The route taken (SFY_V_PROXY, _BLOCK, _DIRECT_NAME, and KERNEL for a
	 * direct verdict): for log lines. */
	struct sfy_route route;
	bool named;                     /* sa is a fake address: name holds
					   its name and port (SFY_ATYP_DOMAIN) */
	struct sfy_addr name;
	/* SFY_V_PROXY for a UDP socket: the destination is port 53 of system
	 * nameserver ns, which the DNS responder answers (dnsresp.h) before
	 * any rule, bypass or port-53 policy is asked. */
	bool resp;
	int ns;
};

/* Fills si from the kernel: family, proto; v6only and hdrincl stay unasked
 * (-1/false) unless needed. False when fd is no inet socket we could ask. */
bool sfy_sockinfo_get(int fd, struct sfy_sockinfo *si);

/* The kernel's reading of (sa, len) for op on a socket described by
 * d->si, into d->sa/len. flags: the send flags (MSG_FASTOPEN). fd is
 * asked only for what si leaves open (IPV6_V6ONLY, the bound address of
 * an AF_INET6 socket connecting to ::); -1 means "never ask": v6only
 * unknown counts as off. */
enum sfy_read sfy_dest_read(int fd, enum sfy_op op, int flags, const struct sockaddr *sa,
			    socklen_t len, struct sfy_dest *d);

/* The whole decision for one call. known: what the caller already knows of
 * the socket (family and proto set), or NULL to ask the kernel. */
enum sfy_verdict sfy_classify(int fd, enum sfy_op op, int flags, const struct sockaddr *sa,
			      socklen_t len, const struct sfy_sockinfo *known,
			      struct sfy_dest *d);

/* d's destination for log lines: the name and port behind a fake address
 * (d->named), else the address. */
void sfy_dest_format(const struct sfy_dest *d, char *buf, size_t cap);

/* One warn line for a blocked destination (SFY_V_BLOCK), once per
 * destination (a small bounded memory, thread-safe): "WHAT to DEST
 * blocked by RULE (ERRNO)", what "connect" or "send", err the errno the
 * program gets. */
void sfy_dest_block_log(const struct sfy_dest *d, const char *what, int err);

#endif
