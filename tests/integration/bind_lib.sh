#!/bin/bash
# The library's SOCKS BIND, checked with small python programs (the full
# suite with curl, lftp, vsftpd and a C client is bind.sh):
#
#   cli 10.213.1.1 ---- 10.213.1.2 prx 10.213.2.1 ---- 10.213.2.2 srv
#                       danted :1080 (SOCKS4/5,        ctl server :2100
#                       bind + bindreply)              (connects back to the
#                       microsocks :1081 (no BIND)     PORT the client sends)
#
# The server has no route to the client: a connection back reaches it only
# through the proxy's BIND. The control runs prove that.
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted microsocks python3 ss
sfy_begin
[ -x "$SOCKSIFY_BIN" ] || { echo "FAIL: $SOCKSIFY_BIN not built"; exit 1; }

C=$(sfy_ns cli) P=$(sfy_ns prx) S=$(sfy_ns srv) || exit 1
sfy_link "$C" "$P" 10.213.1 || exit 1
sfy_link "$P" "$S" 10.213.2 || exit 1
PRX=10.213.1.2 SRV=10.213.2.2

cat >"$SFY_TMP/srv.py" <<'EOF'
# Control server: reads "PORT ip port", connects there, sends a line on the
# new connection, answers "sent" or "fail ERR" on the control connection.
import socket, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(16)
def serve(c):
    try:
        f = c.makefile("rb")
        w = f.readline().split()
        print("got", b" ".join(w).decode(), flush=True)
        if len(w) < 3:
            return              # the client gave up before its PORT
        try:
            d = socket.create_connection((w[1].decode(), int(w[2])), timeout=5)
            d.sendall(b"hello-from-server\n")
            d.close()
            c.sendall(b"sent\n")
        except OSError as e:
            c.sendall(("fail %s\n" % e).encode())
    finally:
        c.close()
while True:
    c, a = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
cat >"$SFY_TMP/cli.py" <<'EOF'
# cli.py MODE HOST PORT: a program that advertises a listening socket on
# its control connection, as active FTP does; prints what came in.
import errno, os, select, socket, sys
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctl = socket.create_connection((host, port), timeout=10)
me = ctl.getsockname()[0]
print("control local", ctl.getsockname())
d = socket.socket()
if mode in ("bindaddr", "nonblock", "twice", "fork"):
    d.bind((me, 0))             # curl: the control connection's address
elif mode == "wild":
    d.bind(("0.0.0.0", 0))
elif mode == "loop":
    d.bind(("127.0.0.1", 0))
elif mode == "fixed":
    d.bind(("0.0.0.0", 2199))
# "never": listen() autobinds
if mode == "never":
    d.listen(1)
if mode == "closeearly":
    # teardown: a BIND whose listener is closed before the peer comes
    # leaves no descriptor and no thread behind
    import threading
    before = sorted(os.listdir("/proc/self/fd"))
    nthr = len(os.listdir("/proc/self/task"))
    for i in range(20):
        x = socket.socket(); x.bind((me, 0)); x.getsockname(); x.listen(1); x.close()
    after = sorted(os.listdir("/proc/self/fd"))
    # close() joins the waiter, but the kernel lists a joined thread in
    # /proc/self/task until it has finished exiting: wait for it, up to
    # 5 s (a leaked waiter never goes)
    import time
    for _ in range(500):
        if len(os.listdir("/proc/self/task")) <= nthr:
            break
        time.sleep(0.01)
    now = len(os.listdir("/proc/self/task"))
    print("fds", len(before), len(after), "threads", nthr, now)
    sys.exit(0 if before == after and nthr == now else 6)
ip, p = d.getsockname()
print("advertise", ip, p)
try:
    d.listen(1)
except OSError as e:
    print("listen failed", errno.errorcode.get(e.errno))
    sys.exit(3)
if mode == "loop":
    # stays local: a connection from here works
    x = socket.create_connection(("127.0.0.1", p), timeout=5)
    c, a = d.accept()
    print("local accept from", a)
    sys.exit(0)
if mode == "fork":
    # a child inherits the listener with the pending BIND and exits: the
    # parent's BIND goes on
    pid = os.fork()
    if pid == 0:
        d.close()
        os._exit(0)
    os.waitpid(pid, 0)
ctl.sendall(("PORT %s %d\n" % (ip, p)).encode())
if mode == "nonblock":
    d.setblocking(False)
    r, _, _ = select.select([d], [], [], 15)
    if not r:
        print("listener never readable"); sys.exit(4)
    fd, a = d._accept()
    c = socket.socket(fileno=fd)
    c.setblocking(True)
else:
    d.settimeout(8)
    try:
        c, a = d.accept()
    except OSError as e:
        print("accept failed", errno.errorcode.get(e.errno, e)); sys.exit(5)
print("accepted from", a, "peer", c.getpeername())
c.settimeout(10)
print("data", c.makefile("rb").readline().decode().strip())
print("ctl", ctl.makefile("rb").readline().decode().strip())
if mode == "twice":
    c.close(); d.close()
    # a second transfer: a fresh socket, a fresh BIND
    d = socket.socket(); d.bind((me, 0)); ip, p = d.getsockname(); d.listen(1)
    ctl2 = socket.create_connection((host, port), timeout=10)
    ctl2.sendall(("PORT %s %d\n" % (ip, p)).encode())
    d.settimeout(8)
    c, a = d.accept()
    print("second data", c.makefile("rb").readline().decode().strip())
EOF

sfy_danted dante "$P" "$PRX" 1080 none || exit 1
sfy_microsocks ms "$P" "$PRX" 1081 || exit 1
sfy_bg srv "$S" python3 "$SFY_TMP/srv.py" "$SRV" 2100
sfy_wait_port srv "$S" 2100 || exit 1
sfy_conf s5 strict - socks5://$PRX:1080
sfy_conf s4 strict - socks4://$PRX:1080
sfy_conf ms strict - socks5://$PRX:1081
cp "$SFY_TMP/s5.yaml" "$SFY_TMP/off.yaml" && echo "bind: off" >>"$SFY_TMP/off.yaml"
# The loopback check connects to its own listener directly.
cp "$SFY_TMP/s5.yaml" "$SFY_TMP/lo.yaml" && printf 'bypass:\n  - 127.0.0.0/8\n' >>"$SFY_TMP/lo.yaml"

run() { sfy_run "$C" -f "$SFY_TMP/$1.yaml" -- python3 "$SFY_TMP/cli.py" "$2" "$SRV" 2100; }

ip -n "$C" route add default via 10.213.1.2
ip -n "$S" route add default via 10.213.2.1
fails_with "control: bind: off, the server cannot connect back" "accept failed" run off bindaddr
fails_with "control: bind: off, getsockname is the kernel's" "control local .'10.213.1.1'" run off bindaddr
for m in bindaddr wild never nonblock twice fork; do
	expect_out "socks5 BIND, $m" "data hello-from-server" run s5 "$m"
done
expect_out "socks5: getsockname of the control connection is the proxy's side" \
	"control local ('10.213.2.1'" run s5 bindaddr
expect_out "socks5: the accepted socket's peer is the server" "peer ('10.213.2.2'" run s5 bindaddr
expect_out "socks4 BIND" "data hello-from-server" run s4 bindaddr
expect_out "a listener closed before its peer: no fd or thread left" "fds" run s5 closeearly
expect_out "loopback listener stays local" "local accept from ('127.0.0.1'" run lo loop
fails_with "fixed port stays local (the server cannot reach it)" "accept failed" run s5 fixed
fails_with "fixed port stays local: getsockname is the kernel's" "advertise 0.0.0.0 2199" run s5 fixed
fails_with "microsocks (no BIND, 0x07): listen fails" "listen failed (EOPNOTSUPP|ENOTSUP)" run ms wild
# microsocks answers CONNECT with an all-zero BND: getsockname() of the
# control connection is the client's own address, and curl -P - binds its
# data socket there. That is a BIND too (it fails here), never a local
# listener whose address goes to the server.
m=$(wc -l <"$(sfy_logfile srv)")
fails_with "microsocks, bound to the control's local address (curl -P -): listen fails" \
	"listen failed (EOPNOTSUPP|ENOTSUP)" run ms bindaddr
out=$SFY_LAST_OUT
check "microsocks, control's local address: getsockname of the control is the client's own" \
	grep -q "control local ('10.213.1.1'" "$out"
check "microsocks, control's local address: one warn line" \
	sh -c "grep socksify $out; test \$(grep -c '^socksify.*: warn: ' $out) -eq 1"
check "microsocks, control's local address: the server never got a PORT" \
	sh -c "! tail -n +$((m + 1)) $(sfy_logfile srv) | grep -q '^got PORT'"
finish
