#!/bin/bash
# SOCKS BIND edge cases (review of issue 14): which address a data socket
# really binds, which proxied connection a BIND belongs to, the library's
# own descriptors under a program that closes or dup2()s over their
# numbers, the accepted socket's family, lengths and errnos. The full
# exchange with real servers is bind.sh; bind_lib.sh the python basics.
#
#   cli 10.214.1.1 ---- 10.214.1.2 (nothing listens there)
#   fakepeers on 127.0.0.1 (SOCKS5), scripted per case:
#     fa  CONNECT BND 10.214.1.1 (the client's own address: a proxy on
#         this machine, or a gateway that names its LAN side), BIND first
#         reply 10.214.9.1:40001, second reply 10.10.10.10:1234 + "line-A"
#     fb  CONNECT BND 10.214.9.9 (not this machine's), BIND first reply
#         10.214.9.2:40002, second reply + "line-B"
#     fs  like fb, the second reply 2 s late (a BIND pending while the
#         program shuffles descriptors)
#   nol (a namespace whose loopback has no IPv6: a V6ONLY listener cannot
#     be reached from loopback, so the library's connector fails)
#     fn  like fb
#
# The client connects its control connections to 10.99.0.1 and 10.99.0.2
# (no such hosts: fakepeer only answers); rules send the first through fa,
# the second through fb.
# shellcheck source=tests/integration/lib/common.sh
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd python3
sfy_begin
[ -x "$SOCKSIFY_BIN" ] || { echo "FAIL: $SOCKSIFY_BIN not built"; exit 1; }
TOOLS_SRC=$SFY_TOP/tests/tools

C=$(sfy_ns cli) P=$(sfy_ns peer) N=$(sfy_ns nol) || exit 1
sfy_link "$C" "$P" 10.214.1 || exit 1
ip netns exec "$N" sysctl -qw net.ipv6.conf.lo.disable_ipv6=1 || exit 1
ip netns exec "$N" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 || exit 1

cat >"$SFY_TMP/edge.py" <<'EOF'
# edge.py MODE: one case; prints what it saw, exits 0 when the case ran
# through (the checks read the output).
import ctypes, errno, os, select, signal, socket, struct, sys
mode = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)

def ename(e):
    return errno.errorcode.get(e, str(e))

def real_listen(s):
    """The kernel's own address of s (its inode in /proc/net/tcp*): what
    it really listens on, whatever getsockname() says."""
    ino = os.fstat(s.fileno()).st_ino
    for f, six in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = open(f).read().splitlines()[1:]
        except OSError:
            continue
        for l in lines:
            w = l.split()
            if int(w[9]) != ino:
                continue
            h, p = w[1].split(":")
            if six:
                raw = b"".join(struct.pack("<I", int(h[i:i + 8], 16)) for i in range(0, 32, 8))
                return "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, raw), int(p, 16))
            return "%s:%d" % (socket.inet_ntoa(struct.pack("<I", int(h, 16))), int(p, 16))
    return "?"

def ctl(host):
    c = socket.create_connection((host, 21), timeout=10)
    print("ctl", host, "local", c.getsockname()[0], flush=True)
    return c

def exchange(d, secs=8):
    """listen() done: wait for the peer, print its line."""
    r, _, _ = select.select([d], [], [], secs)
    if not r:
        print("listener never readable"); sys.exit(4)
    c, a = d.accept()
    c.settimeout(5)
    print("accepted from", a, flush=True)
    print("data", c.makefile("rb").readline().decode().strip(), flush=True)
    return c

if mode == "fixedlocal":
    # M3: a server on a fixed port at an address a proxy handed out that is
    # this machine's: a real listener there, never the wildcard
    c1 = ctl("10.99.0.1")
    d = socket.socket()
    d.bind((c1.getsockname()[0], 18080))
    d.listen(4)
    print("getsockname", d.getsockname(), "real", real_listen(d))
elif mode == "fixedforeign":
    # M3: a fixed port at a handed-out address not of this machine: the
    # kernel's bind, EADDRNOTAVAIL as without socksify
    c1 = ctl("10.99.0.2")
    d = socket.socket()
    try:
        d.bind((c1.getsockname()[0], 18081))
        d.listen(4)
        print("bound", d.getsockname(), "real", real_listen(d))
    except OSError as e:
        print("bind", ename(e.errno))
elif mode == "zerolocal":
    # port 0 at a handed-out address of this machine: bound there for real
    # (not the wildcard), and the BIND works
    c1 = ctl("10.99.0.1")
    d = socket.socket()
    d.bind((c1.getsockname()[0], 0))
    print("advertise", d.getsockname())
    d.listen(1)
    print("real", real_listen(d), flush=True)
    exchange(d)
elif mode in ("pick1", "pick2"):
    # S1: two control connections through different proxies; the data
    # socket bound to one's address gets its BIND through that one
    if mode == "pick1":
        c1 = ctl("10.99.0.1"); c2 = ctl("10.99.0.2"); me = c1
    else:
        c2 = ctl("10.99.0.2"); c1 = ctl("10.99.0.1"); me = c2
    d = socket.socket()
    d.bind((me.getsockname()[0], 0))
    print("advertise", d.getsockname(), flush=True)
    d.listen(1)
    exchange(d)
elif mode in ("dup2", "closerange"):
    # S4: with a BIND pending, the program puts its own file on the
    # numbers the library uses (after closing them all, for closerange)
    c1 = ctl("10.99.0.2")
    d = socket.socket()
    d.bind(("0.0.0.0", 0))
    print("advertise", d.getsockname(), flush=True)
    d.listen(1)
    priv = []
    for n in sorted(int(x) for x in os.listdir("/proc/self/fd")):
        try:
            t = os.readlink("/proc/self/fd/%d" % n)
        except OSError:
            continue
        if n >= 100 and (t.startswith("socket:") or "eventfd" in t):
            priv.append(n)
    print("library fds", priv, flush=True)
    if not priv:
        print("no library descriptors seen"); sys.exit(7)
    path = os.environ["EDGE_FILE"]
    f = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(f, b"ORIGINAL-CONTENT\n")
    ino = os.fstat(f).st_ino
    if mode == "closerange":
        r = libc.close_range(100, 0xFFFFFFFF, 0)
        print("close_range", r, ename(ctypes.get_errno()) if r else "", flush=True)
    for n in priv:
        os.dup2(f, n)
    try:
        c = exchange(d, 10)
        print("exchange ok")
        c.close()
    except OSError as e:
        print("accept failed", ename(e.errno))
    except SystemExit:
        pass                    # said why; the numbers are what matters here
    d.close()
    c1.close()
    bad = 0
    for n in priv:
        try:
            ok = os.fstat(n).st_ino == ino
        except OSError as e:
            ok = False
            print("fd", n, "closed behind our back:", ename(e.errno))
        if not ok:
            bad += 1
    data = os.pread(f, 100, 0)
    print("file", repr(data), "size", os.fstat(f).st_size)
    if data != b"ORIGINAL-CONTENT\n" or os.fstat(f).st_size != 17:
        print("file was written to"); bad += 1
    print("numbers intact" if not bad else "numbers NOT intact")
elif mode == "v6":
    # S5: an AF_INET6 dual-stack listener gets an AF_INET6 socket back
    c1 = ctl("10.99.0.2")
    d = socket.socket(socket.AF_INET6)
    d.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    d.bind(("::", 0))
    print("advertise", d.getsockname(), flush=True)
    d.listen(1)
    c = exchange(d)
    fam = c.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)
    buf = ctypes.create_string_buffer(128)
    ln = ctypes.c_uint(128)
    libc.getsockname(c.fileno(), buf, ctypes.byref(ln))
    print("accepted domain", "AF_INET6" if fam == socket.AF_INET6 else "AF_INET" if fam == socket.AF_INET else fam,
          "getsockname family", struct.unpack("H", buf.raw[:2])[0], "len", ln.value)
    print("peer", c.getpeername())
elif mode == "efault":
    # N2: accept() with an address but no length: EFAULT as from the kernel,
    # and the peer's connection is still there for the next accept()
    c1 = ctl("10.99.0.2")
    d = socket.socket()
    d.bind(("0.0.0.0", 0))
    d.getsockname()
    d.listen(1)
    r, _, _ = select.select([d], [], [], 8)
    if not r:
        print("listener never readable"); sys.exit(4)
    buf = ctypes.create_string_buffer(128)
    signal.alarm(5)
    r = libc.accept(d.fileno(), buf, None)
    print("accept(sa, NULL)", r, ename(ctypes.get_errno()) if r < 0 else "a descriptor", flush=True)
    exchange(d, 2)
elif mode == "len":
    # S6: bind() with a sockaddr_storage's length to a handed-out address;
    # getsockname() says 16, as the kernel would
    c1 = ctl("10.99.0.2")
    bnd = c1.getsockname()[0]
    c1.close()
    d = socket.socket()
    sa = struct.pack("!HH4s", 0, 0, socket.inet_aton(bnd))
    sa = struct.pack("H", socket.AF_INET) + sa[2:]
    buf = ctypes.create_string_buffer(sa, 128)
    r = libc.bind(d.fileno(), buf, 128)
    print("bind(len 128)", r, ename(ctypes.get_errno()) if r else "")
    out = ctypes.create_string_buffer(128)
    ln = ctypes.c_uint(128)
    r = libc.getsockname(d.fileno(), out, ctypes.byref(ln))
    print("getsockname", r, "len", ln.value, "addr", socket.inet_ntoa(out.raw[4:8]))
elif mode in ("noconn", "noconn-nb"):
    # N3: the library cannot reach its own V6ONLY listener from loopback
    # (no ::1 here): the next accept() says ECONNABORTED, never waits forever
    c1 = ctl("10.99.0.2")
    d = socket.socket(socket.AF_INET6)
    d.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    d.bind(("::", 0))
    print("advertise", d.getsockname(), flush=True)
    d.listen(1)
    import time
    time.sleep(1.5)             # the second reply is in
    if mode == "noconn-nb":
        d.setblocking(False)
    else:
        d.setblocking(True)
        signal.signal(signal.SIGALRM, lambda *a: (print("accept hung"), os._exit(5)))
        signal.alarm(6)
    # non-blocking: EAGAIN until the library has the second reply (1.5 s
    # is normally enough; a loaded machine gets 5 s more)
    t = time.monotonic()
    while True:
        try:
            c, a = d.accept()
            print("accepted", a)
        except BlockingIOError:
            if time.monotonic() - t < 5:
                time.sleep(0.1)
                continue
            print("accept", ename(errno.EAGAIN))
        except OSError as e:
            print("accept", ename(e.errno))
        break
EOF

# ---------------------------------------------------------------- fakepeers

FPS=()
fp() {  # ns name connect-bnd-hex bind-steps: a fakepeer, its port in $SFY_TMP/NAME.port
	local ns=$1 name=$2 i
	sfy_bg "$name" "$ns" "$SFY_PY" -u "$TOOLS_SRC/fakepeer.py" --port-file "$SFY_TMP/$name.port" \
		--log "$(sfy_logfile "$name-log")" \
		"readsocks5; send 0500; readsocks5; oncmd 1; send 05000001 $3 1f40; stall; oncmd 2; $4"
	for i in $(seq 100); do [ -s "$SFY_TMP/$name.port" ] && break; sleep 0.05; done
	[ -s "$SFY_TMP/$name.port" ] || { echo "FAIL: setup: fakepeer $name"; exit 1; }
	echo "$name-log" >>"$SFY_TMP/logs"
}
second() {  # delay line: a second reply from 10.10.10.10:1234, then LINE
	echo "sleep $1; send 05000001 0a0a0a0a 04d2; sendtext $2\\n; stall"
}
fp "$C" fa 0ad60101 "send 05000001 0ad60901 9c41; $(second 0.3 line-A)"
fp "$C" fb 0ad60909 "send 05000001 0ad60902 9c42; $(second 0.3 line-B)"
fp "$C" fs 0ad60909 "send 05000001 0ad60902 9c43; $(second 2 line-S)"
fp "$N" fn 0ad60909 "send 05000001 0ad60902 9c44; $(second 0.3 line-N)"
port() { cat "$SFY_TMP/$1.port"; }

conf() {  # name fakepeer-for-10.99.0.1 fakepeer-for-10.99.0.2
	cat >"$SFY_TMP/$1.yaml" <<EOF
chains:
  a: [ "socks5://127.0.0.1:$(port "$2")" ]
  b: [ "socks5://127.0.0.1:$(port "$3")" ]
rules:
  - { match: "10.99.0.1", via: a }
  - { match: "10.99.0.2", via: b }
default: b
timeouts:
  connect: 3s
  handshake: 10s
EOF
}
conf two fa fb
conf slow fa fs
conf nol fa fn
run() {  # ns conf mode
	sfy_run "$1" -f "$SFY_TMP/$2.yaml" -- env EDGE_FILE="$SFY_TMP/edge.$3.file" \
		python3 "$SFY_TMP/edge.py" "$3"
}
logn() { wc -l <"$(sfy_logfile "$1-log")"; }
log_since() { tail -n +"$(($2 + 1))" "$(sfy_logfile "$1-log")"; }

echo "--- M3: fixed ports are the kernel's bind"
expect_out "fixed port at a handed-out local address: getsockname is that address" \
	"getsockname ('10.214.1.1', 18080)" run "$C" two fixedlocal
expect_out "fixed port at a handed-out local address: the real listener is there, not the wildcard" \
	"real 10.214.1.1:18080" cat "$SFY_LAST_OUT"
expect_out "fixed port at a handed-out foreign address: EADDRNOTAVAIL, as without socksify" \
	"bind EADDRNOTAVAIL" run "$C" two fixedforeign
expect_out "port 0 at a handed-out local address: bound there for real" \
	"real 10.214.1.1:" run "$C" two zerolocal
out=$SFY_LAST_OUT
expect_out "port 0 at a handed-out local address: the BIND works" "data line-A" cat "$out"
check "port 0 at a handed-out local address: not the wildcard" \
	sh -c "! grep -q 'real 0.0.0.0:' $out"

echo "--- S1: the BIND goes through the connection whose address was bound"
ma=$(logn fa) mb=$(logn fb)
expect_out "bound to the first (older) control's address: its proxy's peer connects" \
	"data line-A" run "$C" two pick1
check "pick1: fa got the BIND for 10.99.0.1 (05 02 00 01 0a630001 0000)" \
	sh -c "tail -n +$((ma + 1)) $(sfy_logfile fa-log) | grep -q 'request 050200010a6300010000'"
check "pick1: fb got no BIND" \
	sh -c "! tail -n +$((mb + 1)) $(sfy_logfile fb-log) | grep -q 'request 0502'"
ma=$(logn fa) mb=$(logn fb)
expect_out "bound to the older control's address (a foreign BND): its proxy's peer connects" \
	"data line-B" run "$C" two pick2
check "pick2: fb got the BIND for 10.99.0.2" \
	sh -c "tail -n +$((mb + 1)) $(sfy_logfile fb-log) | grep -q 'request 050200010a6300020000'"
check "pick2: fa got no BIND" \
	sh -c "! tail -n +$((ma + 1)) $(sfy_logfile fa-log) | grep -q 'request 0502'"

echo "--- S4: the library's descriptors under dup2()/close_range() of their numbers"
for m in dup2 closerange; do
	expect_out "$m over the pending BIND's numbers: the program's file and numbers are intact" \
		"numbers intact" run "$C" slow "$m"
	out=$SFY_LAST_OUT
	expect_out "$m: the library had descriptors there" "library fds [1" cat "$out"
	expect_out "$m: the BIND still delivers the peer" "data line-S" cat "$out"
done

echo "--- S5: the accepted socket has the listener's family"
expect_out "AF_INET6 dual-stack listener: the exchange completes" "data line-B" run "$C" two v6
expect_out "AF_INET6 listener: the accepted socket is AF_INET6 (SO_DOMAIN, getsockname)" \
	"accepted domain AF_INET6 getsockname family 10 len 28" cat "$SFY_LAST_OUT"
expect_out "AF_INET6 listener: its peer is the second reply's, v4-mapped" \
	"peer ('::ffff:10.10.10.10', 1234" cat "$SFY_LAST_OUT"

echo "--- S6, N2: lengths and errnos"
expect_out "bind() with sockaddr_storage's length at a handed-out address: getsockname length 16" \
	"getsockname 0 len 16 addr 10.214.9.9" run "$C" two len
expect_out "accept() with an address but no length: EFAULT" "accept(sa, NULL) -1 EFAULT" \
	run "$C" two efault
expect_out "after the EFAULT the peer is still there for accept()" "data line-B" cat "$SFY_LAST_OUT"

echo "--- N3: no connector, no wait for nothing"
expect_out "V6ONLY listener without ::1: blocking accept() says ECONNABORTED" \
	"accept ECONNABORTED" run "$N" nol noconn
expect_out "V6ONLY listener without ::1: one warn line says the library cannot connect" \
	"cannot connect to the listener from loopback" cat "$SFY_LAST_OUT"
expect_out "V6ONLY listener without ::1: non-blocking accept() says ECONNABORTED" \
	"accept ECONNABORTED" run "$N" nol noconn-nb

finish
