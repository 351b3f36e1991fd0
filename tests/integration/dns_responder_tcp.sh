#!/bin/bash
# The in-library DNS responder over TCP (issue 13 item 2): in remote-DNS
# mode a TCP connection to port 53 of a system nameserver is answered in
# the library, through a loopback connection it owns -- `dig +tcp`, `host
# -T`, dnspython's TCP queries, a resolver that retries over TCP, a
# non-blocking client (asyncio), pipelined and split queries, a half-close
# -- and not one DNS packet leaves the client.
#
#   dnsn 10.217.3.2 ---- 10.217.3.1 cli 10.217.1.1 ---- 10.217.1.2 prx 10.217.2.1 ---- 10.217.2.2 tgt
#   the client's nameserver                              danted :1080        http :8080
#   (must never see a packet                             /etc/hosts:
#    from socksified programs)                           far.sfy.test -> tgt
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted curl tcpdump dig host
sfy_begin
[ -x "$SOCKSIFY_BIN" ] || { echo "FAIL: $SOCKSIFY_BIN not built"; exit 1; }
[ -x "$SFY_TOOLS/dnsfork" ] || { echo "FAIL: $SFY_TOOLS/dnsfork not built"; exit 1; }
# dnspython is installed for the system python only (the PATH one may be
# another).
SYSPY=/usr/bin/python3
"$SYSPY" -c 'import dns.query, dns.asyncquery, dns.resolver' 2>/dev/null ||
	{ echo "SKIP: $SYSPY has no dnspython"; exit 77; }

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) D=$(sfy_ns dnsn) || exit 1
sfy_link "$C" "$P" 10.217.1 || exit 1
sfy_link "$P" "$T" 10.217.2 || exit 1
sfy_link "$C" "$D" 10.217.3 || exit 1
PRX=10.217.1.2 TGT=10.217.2.2 DNS=10.217.3.2
ip -n "$C" route add default via 10.217.1.2
# A second, IPv6 nameserver (nothing there; the capture would see a packet
# to it): AF_INET6 sockets are answered through the library's ::1 listener.
DNS6=fd17:3::2
printf 'nameserver %s\nnameserver %s\noptions timeout:1 attempts:1\n' "$DNS" "$DNS6" |
	sfy_etc "$C" resolv.conf
printf '127.0.0.1 localhost\n' | sfy_etc "$C" hosts
printf '127.0.0.1 localhost\n%s far.sfy.test\n' "$TGT" | sfy_etc "$P" hosts

sfy_http web-t "$T" 8080
sfy_danted dante "$P" "$PRX" 1080 none
sfy_conf remote strict - "socks5h://$PRX:1080"
cat >>"$SFY_TMP/remote.yaml" <<EOF
rules:
  - { match: "blocked.sfy.test", via: block }
EOF
sfy_conf off strict - "socks5h://$PRX:1080"
echo "dns_responder: off" >>"$SFY_TMP/off.yaml"
R=(-f "$SFY_TMP/remote.yaml")

# tcpq.py: DNS over TCP by hand, each mode one way a client talks to the
# server. Prints what it got; exit 1 on any surprise.
cat >"$SFY_TMP/tcpq.py" <<'EOF'
import asyncio, socket, struct, sys
import dns.message, dns.query, dns.rdatatype, dns.resolver

mode, ns = sys.argv[1], sys.argv[2]
name = sys.argv[3] if len(sys.argv) > 3 else "far.sfy.test"

def frame(m):
    w = m.to_wire()
    return struct.pack(">H", len(w)) + w

def read_msg(s):
    def exact(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                raise EOFError("EOF after %d of %d bytes" % (len(b), n))
            b += c
        return b
    (n,) = struct.unpack(">H", exact(2))
    return dns.message.from_wire(exact(n))

def addrs(r):
    return sorted(a.to_text() for rr in r.answer for a in rr)

if mode == "tcp":                       # dns.query.tcp: one query, one answer
    q = dns.message.make_query(name, "A")
    r = dns.query.tcp(q, ns, timeout=5)
    assert r.id == q.id, "id"
    print("rcode:", dns.rcode.to_text(r.rcode()), "A:", " ".join(addrs(r)))
elif mode == "resolver":                # a stub resolver asked to use TCP
    res = dns.resolver.Resolver()       # reads /etc/resolv.conf
    a = res.resolve(name, "A", tcp=True, lifetime=5)
    print("resolver A:", " ".join(sorted(x.to_text() for x in a)))
elif mode == "retry":
    # What a resolver does after a truncated UDP answer (TC=1): the same
    # query again over TCP. Our answers are never too big for UDP, so the
    # truncation is the client's decision here (it ignores the UDP reply
    # for this check); the TCP answer must be a whole, matching one.
    q = dns.message.make_query(name, "A", use_edns=0, payload=512)
    try:
        u = dns.query.udp(q, ns, timeout=2)
        print("udp A:", " ".join(addrs(u)))
    except Exception as e:
        u = None            # a build without the UDP transport
        print("udp:", type(e).__name__)
    r = dns.query.tcp(q, ns, timeout=5)
    assert r.id == q.id and not (r.flags & dns.flags.TC), "tcp reply"
    assert u is None or addrs(u) == addrs(r), "UDP and TCP answers differ"
    print("tcp retry A:", " ".join(addrs(r)), "opt:", r.edns)
elif mode == "pipeline":
    # Three queries in one write, then one split across byte-sized writes:
    # every answer comes back, in order, each matching its query.
    s = socket.create_connection((ns, 53), timeout=5)
    peer = s.getpeername()
    print("peer:", peer[0], peer[1])
    qs = [dns.message.make_query(n, t) for n, t in
          ((name, "A"), (name, "AAAA"), ("blocked.sfy.test", "A"))]
    s.sendall(b"".join(frame(q) for q in qs))
    for q in qs:
        r = read_msg(s)
        assert r.id == q.id, "order"
        print("pipelined:", q.question[0].name, dns.rdatatype.to_text(q.question[0].rdtype),
              dns.rcode.to_text(r.rcode()), " ".join(addrs(r)))
    q = dns.message.make_query(name, "A")
    for b in frame(q):
        s.send(bytes([b]))
    r = read_msg(s)
    assert r.id == q.id
    print("split:", " ".join(addrs(r)))
    # A half-close: the answer to the query sent with it still comes, then
    # the end of the stream.
    q = dns.message.make_query(name, "A")
    s.sendall(frame(q))
    s.shutdown(socket.SHUT_WR)
    r = read_msg(s)
    assert r.id == q.id
    assert s.recv(10) == b"", "EOF after the answers"
    print("half-close:", " ".join(addrs(r)), "then EOF")
    s.close()
elif mode == "async":
    # A non-blocking client: connect() in progress, readiness from the
    # event loop (epoll), no blocking call anywhere.
    async def main():
        rd, wr = await asyncio.wait_for(asyncio.open_connection(ns, 53), 5)
        print("async peer:", wr.get_extra_info("peername")[:2])
        q = dns.message.make_query(name, "A")
        wr.write(frame(q))
        await wr.drain()
        (n,) = struct.unpack(">H", await asyncio.wait_for(rd.readexactly(2), 5))
        r = dns.message.from_wire(await asyncio.wait_for(rd.readexactly(n), 5))
        assert r.id == q.id
        print("async A:", " ".join(addrs(r)))
        wr.close()
    asyncio.run(main())
elif mode == "fds":
    # The library's descriptors are its own: a program that closes, dup2()s
    # over or close_range()s every number it does not know keeps its DNS
    # connection; closing the socket closes the server end too.
    import os
    def ls():
        out = []
        for f in os.listdir("/proc/self/fd"):
            try: out.append((int(f), os.readlink("/proc/self/fd/" + f)))
            except OSError: pass
        return sorted(out)
    def nfds():             # sockets: the program's closerange below may
        return sum(1 for f, l in ls() if l.startswith("socket:"))  # close other files
    def ask(s):
        q = dns.message.make_query(name, "A")
        s.sendall(frame(q))
        r = read_msg(s)
        assert r.id == q.id
        return " ".join(addrs(r))
    def others(s):
        return [int(f) for f in os.listdir("/proc/self/fd")
                if int(f) >= 100 and int(f) != s.fileno()]
    s = socket.create_connection((ns, 53), timeout=5)
    ask(s)
    s.close()
    base = nfds()
    s = socket.create_connection((ns, 53), timeout=5)
    print("open:", nfds() - base)
    for fd in others(s):
        try:
            os.close(fd)
        except OSError:
            pass
    print("after close:", ask(s))
    for fd in others(s):
        os.dup2(2, fd)
        os.close(fd)
    print("after dup2:", ask(s))
    os.closerange(100, 1 << 20)
    print("after closerange:", ask(s))
    s.close()
    print("closed:", nfds() - base, ls())
elif mode == "connect-nb":
    # The raw non-blocking connect: what the kernel answers (EINPROGRESS or
    # 0), then writable, SO_ERROR 0, the answer readable through poll().
    import errno, select
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    e = s.connect_ex((ns, 53))
    print("connect:", errno.errorcode.get(e, e))
    p = select.poll()
    p.register(s, select.POLLOUT)
    assert p.poll(5000), "writable"
    print("SO_ERROR:", s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
    q = dns.message.make_query(name, "A")
    s.send(frame(q))
    p.register(s, select.POLLIN)
    assert p.poll(5000), "readable"
    s.setblocking(True)
    r = read_msg(s)
    print("nb A:", " ".join(addrs(r)))
EOF

echo "--- control: without socksify, TCP queries go to $DNS:53"
sfy_capture_start ctl "$C" any port 53
sfy__exec sfy_direct "$C" dig +tcp +tries=1 +time=1 far.sfy.test
n=$(sfy_capture_stop ctl)
check "control capture saw DNS/TCP packets to the nameserver ($n)" test "$n" -gt 0

echo "--- dns_responder: off keeps today's behaviour (no answer from the library)"
fails "dig +tcp with the responder off gets no answer from the library" \
	sfy_run "$C" -f "$SFY_TMP/off.yaml" -- dig +tcp +tries=1 +time=2 +short far.sfy.test

echo "--- remote DNS: TCP to the system nameserver is answered in the library"
sfy_capture_start remote "$C" any port 53
expect_out "dig +tcp: the fake address" "224." \
	sfy_run "$C" "${R[@]}" -- dig +tcp +tries=1 +time=5 +short far.sfy.test
expect_out "dig +tcp name, then curl that address through the proxy" "$SFY_TOKEN" \
	sfy_run "$C" "${R[@]}" -- sh -c '
a=$(dig +tcp +tries=1 +time=5 +short far.sfy.test) || exit 1
echo "dig: $a" >&2
exec curl -sS --max-time 20 "http://$a:8080/"'
expect_out "dig +tcp -x FAKE: the name" "far.sfy.test." \
	sfy_run "$C" "${R[@]}" -- sh -c '
a=$(dig +tcp +tries=1 +time=5 +short far.sfy.test) || exit 1
dig +tcp +tries=1 +time=5 +short -x "$a"'
expect_out "dig +tcp of a blocked name: NXDOMAIN" "status: NXDOMAIN" \
	sfy_run "$C" "${R[@]}" -- dig +tcp +tries=1 +time=5 blocked.sfy.test
expect_out "dig +tcp SRV: NODATA (NOERROR, no answer)" "ANSWER: 0" \
	sfy_run "$C" "${R[@]}" -- dig +tcp +tries=1 +time=5 SRV _http._tcp.far.sfy.test
expect_out "host -T (TCP)" "far.sfy.test has address 224." \
	sfy_run "$C" "${R[@]}" -- host -T -W 5 -t A far.sfy.test
expect_out "dnspython dns.query.tcp" "rcode: NOERROR A: 224." \
	sfy_run "$C" "${R[@]}" -- "$SYSPY" "$SFY_TMP/tcpq.py" tcp "$DNS"
expect_out "dnspython dns.query.tcp to the IPv6 nameserver" "rcode: NOERROR A: 224." \
	sfy_run "$C" "${R[@]}" -- "$SYSPY" "$SFY_TMP/tcpq.py" tcp "$DNS6"
expect_out "...and to the IPv4 one from an AF_INET6 socket (v4-mapped)" "rcode: NOERROR A: 224." \
	sfy_run "$C" "${R[@]}" -- "$SYSPY" "$SFY_TMP/tcpq.py" tcp "::ffff:$DNS"
expect_out "dnspython resolver with tcp=True (reads resolv.conf)" "resolver A: 224." \
	sfy_run "$C" "${R[@]}" -- "$SYSPY" "$SFY_TMP/tcpq.py" resolver "$DNS"
expect_out "the same query again over TCP (a truncated-UDP retry)" "tcp retry A: 224." \
	sfy_run "$C" "${R[@]}" -- "$SYSPY" "$SFY_TMP/tcpq.py" retry "$DNS"
expect_out "pipelined queries, a split query, a half-close" "then EOF" \
	sfy_run "$C" "${R[@]}" -- "$SYSPY" "$SFY_TMP/tcpq.py" pipeline "$DNS"
out=$SFY_LAST_OUT   # each check below has its own
check "...getpeername() shows the nameserver" grep -q "peer: $DNS 53" "$out"
check "...every pipelined answer (A, AAAA, blocked)" test "$(grep -c '^pipelined:' "$out")" = 3
check "...the blocked one NXDOMAIN" grep -q "pipelined: blocked.sfy.test. A NXDOMAIN" "$out"
check "...AAAA the fake address's IPv6 twin" grep -qE "pipelined: far.sfy.test. AAAA NOERROR [0-9a-f:]+" \
	"$out"
expect_out "a non-blocking client (asyncio)" "async A: 224." \
	sfy_run "$C" "${R[@]}" -- "$SYSPY" "$SFY_TMP/tcpq.py" async "$DNS"
check "...its peer is the nameserver" grep -q "async peer: ('$DNS', 53)" "$SFY_LAST_OUT"
expect_out "a raw non-blocking connect, poll() for the answer" "nb A: 224." \
	sfy_run "$C" "${R[@]}" -- "$SYSPY" "$SFY_TMP/tcpq.py" connect-nb "$DNS"
check "...SO_ERROR 0" grep -q "SO_ERROR: 0" "$SFY_LAST_OUT"
expect_out "the library's descriptors survive close, dup2 and closerange of their numbers" \
	"after closerange: 224." sfy_run "$C" "${R[@]}" -- "$SYSPY" "$SFY_TMP/tcpq.py" fds "$DNS"
out=$SFY_LAST_OUT
check "...a connection costs the program's socket and one server end" grep -q "open: 2" "$out"
check "...and closing the socket closes the server end" grep -q "closed: 0" "$out"
expect_out "127.0.0.53 counts as a system nameserver too" "224." \
	sfy_run "$C" "${R[@]}" -- dig @127.0.0.53 +tcp +tries=1 +time=5 +short far.sfy.test
expect_out "a fork()ed child makes its own listener (parent and child both ask)" "child ok" \
	sfy_run "$C" "${R[@]}" -- "$SYSPY" -c '
import os, subprocess, sys
sys.argv = ["tcpq.py", "tcp", "'"$DNS"'"]
src = open("'"$SFY_TMP/tcpq.py"'").read()
exec(compile(src, "tcpq.py", "exec"))
pid = os.fork()
if pid == 0:
    exec(compile(src, "tcpq.py", "exec"))
    print("child ok", flush=True)
    os._exit(0)
_, st = os.waitpid(pid, 0)
exec(compile(src, "tcpq.py", "exec"))
sys.exit(os.waitstatus_to_exitcode(st))'
# fork() against close(), connect() and answers in other threads: neither
# the fork nor the child may wait for a lock the parent's threads held --
# the library's, or the allocator's: between fork() and exec() a child may
# only make async-signal-safe calls (connect, write), and those must not
# malloc (ASan's allocator has no fork handlers: children hung in its locks
# inside our calloc of a connection, and in the lazy first read of
# /etc/hosts; both now happen without malloc in the child). 200 forks; a
# child gets 5 s (10 s under ASan); a hung child's stacks are printed.
# SFY_DNSFORK_LIMIT (ms) lengthens the wait, to attach a debugger.
fork_limit=${SFY_DNSFORK_LIMIT:-5000} forks=200
[ "${SANITIZE:-}" = 1 ] && fork_limit=${SFY_DNSFORK_LIMIT:-10000}
SFY_CMD_TIMEOUT=300 expect_out "fork() while other threads query over TCP: no child hangs" "hung 0" \
	sfy_run "$C" "${R[@]}" -- timeout 300 "$SFY_TOOLS/dnsfork" --ns "$DNS" --forks "$forks" \
	--limit-ms "$fork_limit"
n=$(sfy_capture_stop remote)
if ! check "remote DNS over TCP: zero packets to port 53 ($n)" test "$n" -eq 0; then
	sfy_capture_show remote
fi

finish
