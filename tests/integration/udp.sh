#!/bin/bash
# UDP through a SOCKS5 UDP ASSOCIATE (danted), `udp: block` and `udp: direct`,
# the port-53 rule of remote DNS, and a chain that cannot carry UDP.
#
#   cli 10.211.1.1 ---- 10.211.1.2 prx 10.211.2.1 ---- 10.211.2.2 tgt
#                       danted :1080 (udpassociate)     udp echo :7 (python)
#                       udp echo :7 (python)            udp echo :9 (socat)
#                       /etc/hosts: echo.sfy.test       dns :53 (python)
#
# No forwarding: the target is reachable only through the proxy, which the
# first checks prove. The python echo servers answer DATA|SENDER-IP, so a
# check also sees who sent the datagram (the relay, or the client itself).
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted socat dig ss python3 tcpdump
sfy_begin
[ -x "$SOCKSIFY_BIN" ] || { echo "FAIL: $SOCKSIFY_BIN not built"; exit 1; }

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$P" 10.211.1 || exit 1
sfy_link "$P" "$T" 10.211.2 || exit 1
# A default route through the proxy (which does not forward): a datagram
# sent directly to the target leaves the client's interface, where the
# capture sees it, and is dropped by the proxy namespace.
ip -n "$C" route add default via 10.211.1.2
PRX=10.211.1.2 TGT=10.211.2.2 CLI=10.211.1.1
# The relay sends to the target from its address on that link.
REL=10.211.2.1
printf '127.0.0.1 localhost\n%s echo.sfy.test\n' "$TGT" | sfy_etc "$P" hosts

cat >"$SFY_TMP/ucli.py" <<'EOF'
# ucli.py MODE HOST PORT [ARG]: one UDP client behaviour per MODE; prints
# what happened, exits 0 when it went as the mode expects.
import asyncio, errno, os, select, socket, sys, threading
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
arg = sys.argv[4] if len(sys.argv) > 4 else ""
dst = (host, port)

def sock(family=socket.AF_INET, timeout=5):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    return s

def roundtrip(s, msg, to=dst):
    s.sendto(msg, to)
    data, src = s.recvfrom(65535)
    assert data.startswith(msg + b"|"), (msg, data)
    return data, src

def ename(e):
    return errno.errorcode.get(e.errno, str(e.errno))

try:
    if mode == "echo":              # sendto/recvfrom, reported source
        s = sock(timeout=float(arg or 5))
        data, src = roundtrip(s, b"hello")
        print("reply:", data.decode(), "from", src[0], src[1])
    elif mode == "echo6":           # AF_INET6 socket, v4-mapped destination
        s = sock(socket.AF_INET6)
        data, src = roundtrip(s, b"hello6", ("::ffff:" + host, port))
        print("reply:", data.decode(), "from", src[0], src[1])
    elif mode == "connected":       # connect + send/recv + getpeername
        s = sock()
        s.connect(dst)
        print("peer:", s.getpeername()[0], s.getpeername()[1])
        s.send(b"conn")
        print("reply:", s.recv(100).decode())
        os.write(s.fileno(), b"viawrite")
        select.select([s], [], [], 5)   # python sockets with a timeout are O_NONBLOCK
        print("read:", os.read(s.fileno(), 100).decode())
        s.connect(dst)              # again: still through the relay
        s.send(b"again")
        print("again:", s.recv(100).decode())
    elif mode == "asyncio":         # non-blocking, connected and not
        class P(asyncio.DatagramProtocol):
            def __init__(self):
                self.got = asyncio.get_running_loop().create_future()
            def datagram_received(self, data, addr):
                if not self.got.done():
                    self.got.set_result((data, addr))
        async def main():
            loop = asyncio.get_running_loop()
            t, p = await loop.create_datagram_endpoint(P, remote_addr=dst)
            t.sendto(b"async1")
            d, a = await asyncio.wait_for(p.got, 5)
            print("connected reply:", d.decode(), "from", a[0])
            t.close()
            t, p = await loop.create_datagram_endpoint(P, family=socket.AF_INET)
            t.sendto(b"async2", dst)
            d, a = await asyncio.wait_for(p.got, 5)
            print("unconnected reply:", d.decode(), "from", a[0], a[1])
            t.close()
        asyncio.run(main())
    elif mode == "many":            # N datagrams in paced bursts, none lost
        n, burst = int(arg), 50
        s = sock(timeout=3)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        seen = set()
        for base in range(0, n, burst):
            k = min(burst, n - base)
            for i in range(base, base + k):
                s.sendto(b"%06d" % i, dst)
            for _ in range(k):
                try:
                    seen.add(int(s.recv(100)[:6]))
                except socket.timeout:
                    break
        print("received %d of %d" % (len(seen), n))
        sys.exit(0 if len(seen) == n else 1)
    elif mode == "peektrunc":       # MSG_PEEK leaves it queued, MSG_TRUNC says the length
        s = sock()
        s.sendto(b"0123456789", dst)
        print("peek:", s.recv(4, socket.MSG_PEEK).decode())
        buf = bytearray(3)
        print("trunc length:", s.recv_into(buf, 3, socket.MSG_TRUNC), bytes(buf).decode())
        s.sendto(b"abcdefgh", dst)
        data, anc, flags, src = s.recvmsg(4)
        print("recvmsg:", data.decode(), "MSG_TRUNC" if flags & socket.MSG_TRUNC else "-",
              src[0])
        s.sendto(b"nonblock", dst)
        s.setblocking(False)
        select.select([s], [], [], 5)
        print("nonblock:", s.recv(100).decode())
        try:
            s.recv(100)
            print("unexpected datagram")
        except BlockingIOError:
            print("then: EAGAIN")
    elif mode == "big":             # header + payload over 65507: EMSGSIZE
        s = sock()
        try:
            s.sendto(b"x" * 65500, dst)
            print("big: sent")
        except OSError as e:
            print("big:", ename(e))
        data, src = roundtrip(s, b"y" * 30000)
        print("30000 bytes: ok", len(data))
    elif mode == "send":            # one sendto; the errno on failure
        s = sock(timeout=2)
        try:
            s.sendto(b"ping", dst)
            print("sent")
            data, src = s.recvfrom(100)
            print("reply:", data.decode())
        except OSError as e:
            print("sendto failed:", ename(e))
            sys.exit(1)
    elif mode == "connect":         # connect + send; the errno on failure
        s = sock(timeout=2)
        try:
            s.connect(dst)
            s.send(b"ping")
            print("reply:", s.recv(100).decode())
        except OSError as e:
            print("failed:", ename(e))
            sys.exit(1)
    elif mode == "closectl":        # the program closes every other fd: the
        s = sock()                  # association is reported dead, no crash
        roundtrip(s, b"before")
        os.closerange(s.fileno() + 1, 4096)
        try:
            s.sendto(b"after", dst)
            print("after: sent")
        except OSError as e:
            print("after:", ename(e))
        s.close()
        s = sock()
        data, src = roundtrip(s, b"newsock")
        print("new socket:", data.decode())
    elif mode == "fork":            # parent associates, child uses it too
        s = sock()
        roundtrip(s, b"parent")
        pid = os.fork()
        if pid == 0:
            try:
                roundtrip(s, b"child")
                os._exit(0)
            except Exception as e:
                print("child:", e)
                os._exit(1)
        _, st = os.waitpid(pid, 0)
        print("child exit:", os.waitstatus_to_exitcode(st))
        roundtrip(s, b"parent-after")
        print("parent after fork: ok")
        sys.exit(os.waitstatus_to_exitcode(st))
    elif mode == "subprocess":      # CPython's subprocess: a vfork() child closes
        s = sock()                  # every fd but 0-2 before exec
        roundtrip(s, b"before")
        import subprocess
        subprocess.run(["true"], check=True)
        data, src = roundtrip(s, b"after-subprocess")
        print("after subprocess:", data.decode())
    elif mode == "threads":         # 8 threads, own and one shared socket
        shared, errs, lock = sock(), [], threading.Lock()
        roundtrip(shared, b"warm")
        def work(k):
            try:
                s = sock()
                for i in range(50):
                    roundtrip(s, b"t%d-%d" % (k, i))
                for i in range(20):     # shared: send only, replies counted below
                    shared.sendto(b"s%d-%d" % (k, i), dst)
                s.close()
            except Exception as e:
                with lock:
                    errs.append(repr(e))
        ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        n = 0
        shared.settimeout(3)
        try:
            while n < 160:
                shared.recv(100)
                n += 1
        except socket.timeout:
            pass
        print("thread errors:", errs, "shared replies:", n)
        sys.exit(0 if not errs and n == 160 else 1)
    elif mode == "name":            # a name only the proxy knows (remote DNS)
        ai = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
        s = sock()
        data, src = roundtrip(s, b"byname", ai)
        print("fake:", ai[0], "reply:", data.decode(), "from", src[0])
    else:
        sys.exit("unknown mode " + mode)
except OSError as e:
    print("error:", ename(e), e)
    sys.exit(1)
EOF

cat >"$SFY_TMP/dgram.js" <<'EOF'
// node dgram (libuv: sendmmsg/recvmmsg or recvmsg): one round trip.
const dgram = require('dgram');
const [host, port] = [process.argv[2], +process.argv[3]];
const s = dgram.createSocket('udp4');
const t = setTimeout(() => { console.log('timeout'); process.exit(1); }, 5000);
s.on('message', (m, r) => {
  console.log('node reply:', m.toString(), 'from', r.address, r.port);
  clearTimeout(t);
  s.close();
});
s.send('nodehi', port, host);
EOF

sfy_bg echo-t "$T" "$SFY_PY" -u "$SFY_TOP/tests/tools/udpserver.py" echo 7
sfy__served echo-t "$T" 7 10 udp
sfy_bg dns-t "$T" "$SFY_PY" -u "$SFY_TOP/tests/tools/udpserver.py" dns 53 10.211.2.99
sfy__served dns-t "$T" 53 10 udp
sfy_bg echo-p "$P" "$SFY_PY" -u "$SFY_TOP/tests/tools/udpserver.py" echo 7
sfy__served echo-p "$P" 7 10 udp
sfy_bg socat-t "$T" socat UDP4-RECVFROM:9,fork,reuseaddr PIPE
# TCP :8 logs the hex of every byte a connection sent before its EOF (the
# peer's view, which no hook on the client can rewrite) and answers "got N".
cat >"$SFY_TMP/tcplog.py" <<'EOF'
import socket, sys
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 8))
l.listen(16)
while True:
    c, _ = l.accept()
    c.settimeout(10)
    data = b""
    try:
        while (b := c.recv(4096)):
            data += b
        print("received:", data.hex(), flush=True)
        c.sendall(b"got %d" % len(data))
    except OSError as e:
        print("error:", e, flush=True)
    c.close()
EOF
sfy_bg tcplog-t "$T" "$SFY_PY" -u "$SFY_TMP/tcplog.py"
sfy__served tcplog-t "$T" 8 10
sfy__served socat-t "$T" 9 10 udp
sfy_danted dante "$P" "$PRX" 1080 none

conf() {  # name url [extra yaml line...]
	local name=$1 url=$2
	shift 2
	sfy_conf "$name" strict - "$url"
	for l in "$@"; do echo "$l" >>"$SFY_TMP/$name.yaml"; done
}
conf assoc "socks5://$PRX:1080"
conf assoch "socks5h://$PRX:1080"
conf block "socks5://$PRX:1080" "udp: block"
conf direct "socks5://$PRX:1080" "udp: direct"
conf directh "socks5h://$PRX:1080" "udp: direct"
conf s4 "socks4://$PRX:1080"
UCLI=("$SFY_PY" "$SFY_TMP/ucli.py")
run() { sfy_run "$C" -f "$SFY_TMP/$1.yaml" -- "${UCLI[@]}" "${@:2}"; }
SFY_WATCH_LOGS="dante-dante echo-t"

echo "--- topology"
expect_out "client reaches the proxy's UDP echo directly" "hello|$CLI" \
	sfy_direct "$C" "${UCLI[@]}" echo "$PRX" 7 2
fails "client gets no UDP answer from the target directly" \
	sfy_direct "$C" "${UCLI[@]}" echo "$TGT" 7 2

echo "--- udp: associate"
expect_out "python sendto/recvfrom round trip via the relay" "hello|$REL from $TGT 7" \
	run assoc echo "$TGT" 7
expect_out "AF_INET6 socket: v4-mapped destination and source" \
	"hello6|$REL from ::ffff:$TGT 7" run assoc echo6 "$TGT" 7
expect_out "socat UDP (connect + write/read)" "socat-hello" \
	sfy_run "$C" -f "$SFY_TMP/assoc.yaml" -- \
	sh -c 'echo socat-hello | socat -T3 - UDP4:'"$TGT"':9'
expect_out "dig @target through the relay" "10.211.2.99" \
	sfy_run "$C" -f "$SFY_TMP/assoc.yaml" -- dig "@$TGT" www.sfy.test A +short +time=3 +tries=1
expect_out "dig @target through the relay (remote DNS mode, port 53)" "10.211.2.99" \
	sfy_run "$C" -f "$SFY_TMP/assoch.yaml" -- dig "@$TGT" www.sfy.test A +short +time=3 +tries=1
if command -v node >/dev/null; then
	expect_out "node dgram (libuv) round trip" "node reply: nodehi|$REL from $TGT 7" \
		sfy_run "$C" -f "$SFY_TMP/assoc.yaml" -- node "$SFY_TMP/dgram.js" "$TGT" 7
fi
expect_out "connected UDP: connect, send/recv, write/read, getpeername" "again: again|$REL" \
	run assoc connected "$TGT" 7
grep -q "peer: $TGT 7" "$SFY_LAST_OUT" && grep -q "read: viawrite|$REL" "$SFY_LAST_OUT" ||
	sfy__fail "connected UDP: getpeername and read/write" "see output"
expect_out "asyncio datagram endpoints (non-blocking), connected and not" \
	"unconnected reply: async2|$REL from $TGT 7" run assoc asyncio "$TGT" 7
grep -q "connected reply: async1|$REL from $TGT" "$SFY_LAST_OUT" ||
	sfy__fail "asyncio connected endpoint" "see output"
expect_out "1000 datagrams, none lost" "received 1000 of 1000" run assoc many "$TGT" 7 1000
expect_out "MSG_PEEK, MSG_TRUNC, non-blocking EAGAIN" "then: EAGAIN" \
	run assoc peektrunc "$TGT" 7
for want in "peek: 0123" "trunc length: $((10 + 1 + ${#PRX})) 012" "recvmsg: abcd MSG_TRUNC $TGT" \
	"nonblock: nonblock|$REL"; do
	grep -qF "$want" "$SFY_LAST_OUT" || sfy__fail "peek/trunc: $want" "missing in output"
done
expect_out "oversize datagram: EMSGSIZE; 30000 bytes fine" "30000 bytes: ok" \
	run assoc big "$TGT" 7
grep -q "big: EMSGSIZE" "$SFY_LAST_OUT" || sfy__fail "oversize datagram EMSGSIZE" "see output"
expect_out "fork: the child uses the parent's association" "parent after fork: ok" \
	run assoc fork "$TGT" 7
expect_out "8 threads, own sockets and one shared" "shared replies: 160" \
	run assoc threads "$TGT" 7
expect_out "remote DNS: a name only the proxy knows, sent as ATYP 3" "reply: byname|$REL from $TGT" \
	run assoch name echo.sfy.test 7
expect_out "control fd closed by the program: next send fails, one log line" \
	"new socket: newsock" run assoc closectl "$TGT" 7
grep -q "after: ECONNRESET" "$SFY_LAST_OUT" || sfy__fail "dead association reported" "see output"
check "dead association logged once" test "$(grep -c "control connection is gone" "$SFY_LAST_OUT")" = 1

echo "--- per-fd state: a reused fd number, vfork() children"
# A socket closed where no hook sees it (inside glibc, or a raw syscall):
# the TCP socket that gets its number must not inherit the UDP session --
# the target must receive exactly the bytes written, no SOCKS UDP header.
FDREUSE=$SFY_TOOLS/fdreuse
want_hex=$(printf 'exact-bytes-through-tcp\n' | od -An -tx1 | tr -d ' \n')
for how in fclose syscall; do
	: >"$(sfy_logfile tcplog-t)"
	expect_out "UDP socket closed by $how, number reused by TCP: the stream is untouched" \
		"reply: got 24" sfy_run "$C" -f "$SFY_TMP/assoc.yaml" -- \
		"$FDREUSE" stale "$TGT" 7 8 "$how"
	check "UDP socket closed by $how: the target received exactly the bytes sent" \
		grep -qx "received: $want_hex" "$(sfy_logfile tcplog-t)"
done
# A vfork() child shares the parent's memory: what it closes must not end
# the parent's association (CPython's subprocess, posix_spawn).
for how in close close_range dup2; do
	expect_out "vfork() child does $how on the UDP socket: the parent's association lives" \
		"peer: $TGT 7" sfy_run "$C" -f "$SFY_TMP/assoc.yaml" -- "$FDREUSE" vfork "$TGT" 7 "$how"
	grep -q "reply: after|$REL" "$SFY_LAST_OUT" ||
		sfy__fail "vfork() child $how: the parent's round trip after it" "see output"
done
expect_out "vfork() child closes a tunnelled TCP socket: getpeername still answers" \
	"reply: got 24" sfy_run "$C" -f "$SFY_TMP/assoc.yaml" -- "$FDREUSE" vforktcp "$TGT" 8
test "$(grep -c "peer: $TGT 8" "$SFY_LAST_OUT")" = 2 ||
	sfy__fail "vfork() child closes a TCP socket: getpeername before and after" "see output"
expect_out "python subprocess (vfork child closes fds): the association lives" \
	"after subprocess: after-subprocess|$REL" run assoc subprocess "$TGT" 7

echo "--- udp: block"
fails_with "udp: block: sendto fails with EPERM" "sendto failed: EPERM" run block send "$TGT" 7
check "udp: block: one log line" test "$(grep -c 'refused (EPERM)' "$SFY_LAST_OUT")" = 1
fails_with "udp: block: connect fails with EPERM" "failed: EPERM" run block connect "$TGT" 7

echo "--- udp: direct"
expect_out "udp: direct: datagrams leave directly (the proxy's echo sees the client)" \
	"reply: ping|$CLI" run direct send "$PRX" 7
fails "udp: direct: so the target stays unreachable" run direct send "$TGT" 7
expect_out "udp: direct + local DNS: port 53 leaves directly too" "reply: ping|$CLI" \
	sfy_run "$C" -f "$SFY_TMP/direct.yaml" -- \
	sh -c "$SFY_PY -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.bind((\"0.0.0.0\", 0)); s.sendto(b\"ping\", (\"$PRX\", 7)); print(\"reply:\", s.recv(99).decode())'"
fails_with "udp: direct + remote DNS: UDP to port 53 is EPERM" "sendto failed: EPERM" \
	run directh send "$PRX" 53
fails_with "udp: direct + remote DNS: dig @server fails, nothing sent" "refused \(EPERM\)" \
	sfy_run "$C" -f "$SFY_TMP/directh.yaml" -- dig "@$PRX" www.sfy.test +time=1 +tries=1

echo "--- a chain that cannot carry UDP"
sfy_capture_start cap4 "$C" "$(sfy_ifname "$C" "$P")" udp
fails_with "socks4 last hop: sendto fails cleanly" "sendto failed: EPROTONOSUPPORT" \
	run s4 send "$TGT" 7
grep -q "cannot carry UDP" "$SFY_LAST_OUT" || sfy__fail "socks4 last hop: log line" "see output"
n=$(sfy_capture_stop cap4)
check "socks4 last hop: no UDP datagram left the client ($n)" test "$n" = 0

finish
