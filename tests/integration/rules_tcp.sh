#!/bin/bash
# TCP connections follow the routing rules (issue 12): a direct route for a
# faked name connects straight to the target, resolving the name inside
# connect() -- for a non-blocking socket on the driver thread, never
# stalling the program's event loop; a blocked destination gets
# ECONNREFUSED without a single SYN; a chain in local-DNS mode resolves a
# faked name here and asks its hop for the address; -v names the rule.
#
#   cli 10.211.1.1 ---- 10.211.1.2 prx 10.211.2.1 ---- 10.211.2.2 tgt
#       10.211.3.1 --+  danted :1080 (socks5h,            http :8080
#                    |  the top-level chain)
#                    |  microsocks :1081 (chain "loc",
#                    |  dns: local)
#                    +- 10.211.3.2 dir: http :8080, :8081, and a DNS server
#                       that answers slow.sfy.test after 1.5 s
#
# cli reaches tgt only through prx and dir only directly (no forwarding
# anywhere). cli's name server (on dir): direct.sfy.test -> dir,
# loc.sfy.test -> tgt, slow.sfy.test -> dir after 1.5 s; prx knows none of
# them, so a name that reaches a proxy fails there. (Not /etc/hosts: its
# names are real addresses even in remote-DNS mode.)
#
# The client (python) resolves with gethostbyname(): no port is known at
# lookup, so the port rules below leave the decision to connect() and
# every name is a fake address until then.
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted microsocks curl tcpdump
sfy_begin
[ -x "$SOCKSIFY_BIN" ] || { echo "FAIL: $SOCKSIFY_BIN not built"; exit 1; }

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) D=$(sfy_ns dir) || exit 1
sfy_link "$C" "$P" 10.211.1 || exit 1
sfy_link "$P" "$T" 10.211.2 || exit 1
sfy_link "$C" "$D" 10.211.3 || exit 1
PRX=10.211.1.2 TGT=10.211.2.2 DIR=10.211.3.2
printf 'nameserver %s\noptions timeout:4 attempts:1\n' "$DIR" | sfy_etc "$C" resolv.conf
printf '127.0.0.1 localhost\n' | sfy_etc "$C" hosts
printf '127.0.0.1 localhost\n%s target.sfy.test\n' "$TGT" | sfy_etc "$P" hosts
printf 'nameserver 10.211.2.53\noptions timeout:1 attempts:1\n' | sfy_etc "$P" resolv.conf

sfy_http web "$T" 8080
sfy_http dweb "$D" 8080
sfy_http dweb2 "$D" 8081
sfy_danted dante "$P" "$PRX" 1080 none
sfy_microsocks ms "$P" "$PRX" 1081

# cli's name server: A records (AAAA: no address), slow.sfy.test after
# 1.5 s, other names NXDOMAIN; in threads so queries overlap.
cat >"$SFY_TMP/slowdns.py" <<'EOF'
import socket, struct, sys, threading, time
names = {"direct.sfy.test": (sys.argv[2], 0), "slow.sfy.test": (sys.argv[2], 1.5),
         "loc.sfy.test": (sys.argv[3], 0)}
lock = threading.Lock()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
def answer(q, peer):
    qid, flags, qd = struct.unpack("!HHH", q[:6])
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode().lower())
        i += 1 + q[i]
    qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
    question = q[12:i + 5]
    name = ".".join(labels)
    with lock:
        print("query", name, qtype, flush=True)
    if name not in names:
        s.sendto(struct.pack("!HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question, peer)
        return
    time.sleep(names[name][1])
    an = b""
    if qtype == 1:
        an = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(names[name][0])
    s.sendto(struct.pack("!HHHHHH", qid, 0x8180, 1, 1 if an else 0, 0, 0) + question + an, peer)
while True:
    q, peer = s.recvfrom(512)
    threading.Thread(target=answer, args=(q, peer), daemon=True).start()
EOF
sfy_bg slowdns "$D" "$SFY_PY" -u "$SFY_TMP/slowdns.py" "$DIR" "$DIR" "$TGT"
sfy__served slowdns "$D" 53 10 udp

# client.py MODE HOST PORT: MODE block (blocking connect), nb (non-blocking
# connect driven by a select() loop that ticks every 20 ms and reports its
# longest gap), twice (two blocking connects, both must fail), tfo
# (sendto with MSG_FASTOPEN). Prints what connect said and the page.
cat >"$SFY_TMP/client.py" <<'EOF'
import errno, select, socket, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
ip = socket.gethostbyname(host)
print("resolved", ip, flush=True)
req = b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"
def name(e):
    return errno.errorcode.get(e, str(e))
def fetch(s, sent=False):
    print("peer", s.getpeername()[0], flush=True)
    if not sent:
        s.sendall(req)
    data = b""
    while (d := s.recv(65536)):
        data += d
    print(data.decode(errors="replace"))
if mode in ("block", "twice"):
    for k in range(2 if mode == "twice" else 1):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.connect((ip, port))
        except OSError as e:
            print("connect:", name(e.errno), flush=True)
            if mode == "block":
                sys.exit(3)
            continue
        if mode == "twice":
            print("connect: ok"); sys.exit(4)
        fetch(s)
    sys.exit(3 if mode == "twice" else 0)
if mode == "tfo":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.sendto(req, socket.MSG_FASTOPEN, (ip, port))
    except OSError as e:
        print("sendto:", name(e.errno)); sys.exit(3)
    fetch(s, True)
    sys.exit(0)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setblocking(False)
t0 = time.monotonic()
r = s.connect_ex((ip, port))
print("connect: %s in %.1f ms" % (name(r), (time.monotonic() - t0) * 1000), flush=True)
if r not in (0, errno.EINPROGRESS):
    sys.exit(3)
last, gap, ticks = t0, 0.0, 0
while True:
    _, w, _ = select.select([], [s], [], 0.02)
    now = time.monotonic()
    gap, last, ticks = max(gap, now - last), now, ticks + 1
    if w:
        break
    if now - t0 > 20:
        print("never ready"); sys.exit(4)
print("ready after %d ms, %d ticks, longest gap %d ms" % ((now - t0) * 1000, ticks, gap * 1000))
e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
if e:
    print("SO_ERROR:", name(e)); sys.exit(3)
s.setblocking(True)
fetch(s)
EOF

cat >"$SFY_TMP/rules.yaml" <<EOF
proxies:
  - socks5h://$PRX:1080
chains:
  loc:
    proxies: [socks5://$PRX:1081]
    dns: local
rules:
  - { match: "direct.sfy.test:8080", via: direct }
  - { match: "slow.sfy.test:8080", via: direct }
  - { match: "nxname.sfy.test:8080", via: direct }
  - { match: "blocked.sfy.test:8080", via: block }
  - { match: "$DIR:8081", via: block }
  - { match: "10.211.3.0/24", via: direct }
  - { match: "loc.sfy.test:8080", via: loc }
timeouts:
  connect: 3s
  handshake: 6s
EOF
client() {  # opts... -- MODE HOST PORT
	local opts=()
	while [ "$1" != -- ]; do opts+=("$1"); shift; done
	shift
	sfy_run "$C" -f "$SFY_TMP/rules.yaml" "${opts[@]}" -- "$SFY_PY" -u "$SFY_TMP/client.py" "$@"
}
conns() { sfy_proxy_conns dante; }

# ------------------------------------------------------- the topology
fails "setup: cli cannot reach tgt directly" sfy_direct "$C" curl -sS -m 2 "http://$TGT:8080/"
fails "setup: prx cannot reach dir" sfy_direct "$P" curl -sS -m 2 "http://$DIR:8080/"

# ------------------------------------------------------- direct by name
before=$(conns)
expect_out "direct.sfy.test:8080 (blocking) reaches dir directly" "$SFY_TOKEN" \
	client -- block direct.sfy.test 8080
out=$SFY_LAST_OUT
fake=$(sed -n 's/^resolved //p' "$out")
check "direct.sfy.test was a fake address ($fake), not dir's" test -n "$fake" -a "$fake" != "$DIR"
check "getpeername of a direct-by-name connection is the fake address" \
	grep -qx "peer $fake" "$out"
check "nothing new at the default log level for a direct connection" \
	test -z "$(grep '^socksify\[' "$out")"
check "danted saw none of it" test "$(conns)" = "$before"

expect_out "direct.sfy.test:8080 (non-blocking) reaches dir directly" "$SFY_TOKEN" \
	client -- nb direct.sfy.test 8080
out=$SFY_LAST_OUT
check "non-blocking direct: connect() said EINPROGRESS" grep -q '^connect: EINPROGRESS' "$out"
check "non-blocking direct: getpeername is the fake address" grep -qx "peer $fake" "$out"

# A name whose resolution takes 1.5 s: the event loop keeps ticking.
expect_out "slow.sfy.test:8080 (non-blocking, DNS answers after 1.5 s) reaches dir" \
	"$SFY_TOKEN" client -- nb slow.sfy.test 8080
out=$SFY_LAST_OUT
ms=$(sed -n 's/^connect: EINPROGRESS in \([0-9]*\).*/\1/p' "$out")
ready=$(sed -n 's/^ready after \([0-9]*\) ms.*/\1/p' "$out")
gap=$(sed -n 's/.*longest gap \([0-9]*\) ms/\1/p' "$out")
check "slow name: connect() returned EINPROGRESS at once (${ms:-?} ms; blocking: 1500)" test "${ms:-999}" -lt 700
check "slow name: ready only after the resolution (${ready:-?} ms)" test "${ready:-0}" -ge 1400
check "slow name: the event loop never stalled (longest gap ${gap:-?} ms; blocking: 1500)" test "${gap:-999}" -lt 700
check "slow name: the DNS server was asked (locally, from cli)" \
	grep -q '^query slow.sfy.test 1' "$(sfy_logfile slowdns)"
expect_out "slow.sfy.test:8080 (blocking) reaches dir" "$SFY_TOKEN" client -- block slow.sfy.test 8080

fails_with "a direct name that does not resolve: EHOSTUNREACH" '^connect: EHOSTUNREACH' \
	client -- block nxname.sfy.test 8080
fails_with "...non-blocking: EHOSTUNREACH through SO_ERROR" '^SO_ERROR: EHOSTUNREACH' \
	client -- nb nxname.sfy.test 8080

# ------------------------------------------------------- -v names the rule
expect_out "-v: a direct-by-name connection names its rule" \
	"direct.sfy.test:8080: direct ($DIR:8080), rule 1 (" client -v -- block direct.sfy.test 8080
expect_out "-v: the non-blocking one too" \
	"direct.sfy.test:8080: direct ($DIR:8080), rule 1 (" client -v -- nb direct.sfy.test 8080
expect_out "-v: a real address routed direct names its rule" \
	"$DIR:8080: direct, rule 6 (" client -v -- block "$DIR" 8080
expect_out "-v: the top-level chain names the default" \
	"target.sfy.test:8080 via 1 hop, default (" client -v -- block target.sfy.test 8080

# ------------------------------------------------------- block
sfy_capture_start syn "$C" any 'tcp[tcpflags] & tcp-syn != 0'
fails_with "blocked.sfy.test:8080: ECONNREFUSED" '^connect: ECONNREFUSED' \
	client -- block blocked.sfy.test 8080
fails_with "blocked real address $DIR:8081: ECONNREFUSED" '^connect: ECONNREFUSED' \
	client -- block "$DIR" 8081
fails_with "blocked.sfy.test:8080 non-blocking: ECONNREFUSED" '^connect: ECONNREFUSED' \
	client -- nb blocked.sfy.test 8080
fails_with "blocked, sendto(MSG_FASTOPEN): ECONNREFUSED" '^sendto: ECONNREFUSED' \
	client -- tfo blocked.sfy.test 8080
fails_with "blocked twice in one process: ECONNREFUSED both times" \
	'^connect: ECONNREFUSED' client -- twice blocked.sfy.test 8080
n=$(grep -c '^connect: ECONNREFUSED' "$SFY_LAST_OUT")
w=$(grep -c 'blocked by rule 4 (.*(ECONNREFUSED)' "$SFY_LAST_OUT")
check "...and one warn line naming the rule ($w of them, $n refusals)" test "$n" = 2 -a "$w" = 1
syns=$(sfy_capture_stop syn)
check "no SYN left cli for any blocked connection ($syns seen)" test "$syns" = 0
[ "$syns" = 0 ] || sfy_capture_show syn
# Control: the same capture sees a direct connect to the blocked port.
sfy_capture_start synctl "$C" any 'tcp[tcpflags] & tcp-syn != 0'
ok "control: a connect without socksify" sfy_direct "$C" curl -sS -m 3 "http://$DIR:8081/"
syns=$(sfy_capture_stop synctl)
check "control: the capture sees its SYN ($syns)" test "$syns" -ge 1

# ------------------------------------------------------- a local-DNS chain
before=$(sfy_proxy_conns ms)
expect_out "loc.sfy.test:8080 through chain loc (dns: local): resolved here, then the proxy" \
	"loc.sfy.test:8080 via 1 hop (resolved here: $TGT:8080), rule 7 (" \
	client -v -- block loc.sfy.test 8080
check "...the page came through" grep -qF "$SFY_TOKEN" "$SFY_LAST_OUT"
check "...through microsocks" test "$(sfy_proxy_conns ms)" -gt "$before"
expect_out "loc.sfy.test:8080 non-blocking through chain loc" "$SFY_TOKEN" \
	client -- nb loc.sfy.test 8080

# curl passes the port to getaddrinfo: whichever way the name goes (a fake
# address decided at connect, or resolved at once), it reaches dir directly.
expect_out "curl direct.sfy.test:8080 reaches dir" "$SFY_TOKEN" \
	sfy_run "$C" -f "$SFY_TMP/rules.yaml" -- curl -sS -m 10 http://direct.sfy.test:8080/

finish
