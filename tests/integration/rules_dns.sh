#!/bin/bash
# Name lookups and UDP under routing rules: a blocked name fails with no DNS
# packet at all, a name routed direct is resolved by the local name server
# (remote-DNS mode too), a name routed through a chain gets a fake address
# and no query, a local answer is remembered so that a connect by address is
# routed by the name, the service port of getaddrinfo() decides at lookup
# time; UDP datagrams are blocked (EPERM), relayed through their chain's
# UDP ASSOCIATE, or sent directly, by the same rules.
#
#   dnsn 10.216.3.2 ---- 10.216.3.1 cli 10.216.1.1 ---- 10.216.1.2 prx 10.216.2.1 ---- 10.216.2.2 tgt
#   DNS :53 (every A -> 10.216.3.2)                     danted :1080, :1081        http :8080
#   http :8080, udp echo :7                              /etc/hosts: *.sfy.test    udp echo :7
#                                                         -> tgt
# The client's name server is dnsn; tgt is reachable only through the
# proxy, dnsn only directly (the proxy has no route to it).
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted curl tcpdump ss python3
sfy_begin
[ -x "$SOCKSIFY_BIN" ] || { echo "FAIL: $SOCKSIFY_BIN not built"; exit 1; }

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) D=$(sfy_ns dnsn) || exit 1
sfy_link "$C" "$P" 10.216.1 || exit 1
sfy_link "$P" "$T" 10.216.2 || exit 1
sfy_link "$C" "$D" 10.216.3 || exit 1
PRX=10.216.1.2 TGT=10.216.2.2 DNS=10.216.3.2 REL=10.216.2.1 CLI=10.216.3.1
ip -n "$C" route add default via 10.216.1.2
printf 'nameserver %s\noptions timeout:1 attempts:1\n' "$DNS" | sfy_etc "$C" resolv.conf
printf '127.0.0.1 localhost\n' | sfy_etc "$C" hosts
printf '127.0.0.1 localhost\n%s far.sfy.test mail.sfy.test mix.sfy.test blocked.sfy.test hidden.onion\n' "$TGT" |
	sfy_etc "$P" hosts

sfy_http web-t "$T" 8080
sfy_http web-d "$D" 8080
sfy_bg echo-t "$T" "$SFY_PY" -u "$SFY_TOP/tests/tools/udpserver.py" echo 7
sfy__served echo-t "$T" 7 10 udp
sfy_bg echo-d "$D" "$SFY_PY" -u "$SFY_TOP/tests/tools/udpserver.py" echo 7
sfy__served echo-d "$D" 7 10 udp
sfy_bg dns-d "$D" "$SFY_PY" -u "$SFY_TOP/tests/tools/udpserver.py" dns 53 "$DNS"
sfy__served dns-d "$D" 53 10 udp
sfy_danted dante "$P" "$PRX" 1080 none
sfy_danted dante2 "$P" "$PRX" 1081 none

# The direct page is told apart from the proxied one by what it serves.
mkdir -p "$SFY_TMP/wwwd"
echo "direct-page-$SFY_ID" >"$SFY_TMP/wwwd/index.html"
old=$(cat "$SFY_TMP/web-d.pid")
kill "$old" 2>/dev/null; wait "$old" 2>/dev/null
# the new server must not find the old one still on the port
for _ in $(seq 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.05; done
sfy_bg web-d "$D" "$SFY_PY" -u -m http.server --bind :: 8080 --directory "$SFY_TMP/wwwd"
sfy__served web-d "$D" 8080
DIRECT_TOKEN="direct-page-$SFY_ID"

conf() {  # name url: a one-hop strict chain, the rest of the config on stdin
	sfy_conf "$1" strict - "$2"
	cat >>"$SFY_TMP/$1.yaml"
}
# Remote DNS (socks5h), a second chain, and the rules under test.
conf remote "socks5h://$PRX:1080" <<EOF
chains:
  two: [socks5h://$PRX:1081]
rules:
  - { match: "blocked.sfy.test", via: block }
  - { match: "*.lan.test", via: direct }
  - { match: "*:25", via: block }
  - { match: "mix.sfy.test:7", via: direct }
  - { match: "$TGT:9", via: block }
  - { match: "*:5", via: two }
  - { match: "10.216.3.0/24", via: direct }
EOF
# The same without the direct CIDR rule: a name routed direct must go
# direct by its name alone.
conf remote2 "socks5h://$PRX:1080" <<EOF
rules:
  - { match: "*.lan.test", via: direct }
EOF
# Local DNS (socks5: the client resolves), names routed by their answers.
conf local "socks5://$PRX:1080" <<EOF
dns: local
rules:
  - { match: "blocked.sfy.test", via: block }
  - { match: "*.lan.test", via: direct }
EOF
# Remote DNS with a direct default: port 53 must still not go out
# directly (only a rule naming port 53 would let it). The responder would
# answer the system nameserver's queries before any rule: off here.
conf remote53 "socks5h://$PRX:1080" <<EOF
default: direct
dns_responder: off
EOF
# .onion through a chain in local-DNS mode (socks5: the client would
# resolve): the name must still reach the proxy as a name.
conf onion "socks5h://$PRX:1080" <<EOF
chains:
  loc: [socks5://$PRX:1081]
rules:
  - { match: "*.onion", via: loc }
EOF
R=(-f "$SFY_TMP/remote.yaml")
L=(-f "$SFY_TMP/local.yaml")

cat >"$SFY_TMP/look.py" <<'EOF'
# look.py gai NAME [PORT|SERVICE] | ghbn NAME: the lookup's answer or its
# error name (EAI_NONAME, HOST_NOT_FOUND ...); exit 0 when it answered.
import socket, sys
what, name = sys.argv[1], sys.argv[2]
svc = sys.argv[3] if len(sys.argv) > 3 else None
eai = {v: k for k, v in vars(socket).items() if k.startswith("EAI_")}
try:
    if what == "gai":
        ai = socket.getaddrinfo(name, svc, socket.AF_INET, socket.SOCK_STREAM)
        print("addr:", ai[0][4][0])
    else:                           # libc's gethostbyname() itself, and h_errno
        import ctypes
        libc = ctypes.CDLL(None)
        libc.gethostbyname.restype = ctypes.c_void_p
        libc.__h_errno_location.restype = ctypes.POINTER(ctypes.c_int)
        if not libc.gethostbyname(name.encode()):
            raise socket.herror(libc.__h_errno_location()[0], "gethostbyname")
        print("addr: found")
except socket.gaierror as e:
    print("error:", eai.get(e.errno, e.errno))
    sys.exit(1)
except socket.herror as e:
    print("error:", {1: "HOST_NOT_FOUND", 2: "TRY_AGAIN", 3: "NO_RECOVERY", 4: "NO_DATA"}.get(e.errno, e.errno))
    sys.exit(1)
EOF

cat >"$SFY_TMP/udp.py" <<'EOF'
# udp.py MODE HOST PORT: one UDP behaviour; prints what happened.
import errno, socket, sys
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def ename(e):
    return errno.errorcode.get(e.errno, str(e.errno))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
try:
    if mode == "send":              # sendto by name or address, one reply
        s.sendto(b"ping", (host, port))
        data, src = s.recvfrom(100)
        print("reply:", data.decode(), "from", src[0])
    elif mode == "connect":
        s.connect((host, port))
        s.send(b"ping")
        print("reply:", s.recv(100).decode())
    elif mode == "fake":            # look the name up without a port first
        a = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
        print("looked up:", a)
        s.sendto(b"ping", (a, port))
        data, src = s.recvfrom(100)
        print("reply:", data.decode(), "from", src[0])
    elif mode == "dnsq":            # a program's own DNS query (A x.sfy.test)
        q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        q += b"".join(bytes([len(l)]) + l for l in b"x.sfy.test".split(b".")) + b"\x00\x00\x01\x00\x01"
        s.sendto(q, (host, port))
        print("answered:", len(s.recvfrom(512)[0]), "bytes")
    elif mode == "twochains":       # associated through one chain, then another's datagram
        s.sendto(b"first", (host, port))
        print("first:", s.recvfrom(100)[0].decode())
        try:
            s.sendto(b"second", (host, 5))
            print("second: sent")
        except OSError as e:
            print("second:", ename(e))
        s.sendto(b"third", (host, port))
        print("third:", s.recvfrom(100)[0].decode())
except OSError as e:
    print("failed:", ename(e))
    sys.exit(1)
EOF

no_packets() {  # capture desc: stops the capture, which must have seen nothing
	local n
	n=$(sfy_capture_stop "$1")
	check "$2 ($n)" test "$n" -eq 0 || sfy_capture_show "$1"
}

echo "--- control: the capture sees a direct lookup"
sfy_capture_start ctl "$C" any port 53
ok "direct lookup (no socksify) is answered by the name server" \
	sfy_direct "$C" "$SFY_PY" "$SFY_TMP/look.py" gai blocked.sfy.test
n=$(sfy_capture_stop ctl)
check "control capture saw DNS packets ($n)" test "$n" -gt 0

echo "--- remote DNS: blocked names, faked names: no DNS packet"
sfy_capture_start remote "$C" any port 53
fails_with "getaddrinfo of a blocked name: EAI_NONAME" "error: EAI_NONAME" \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/look.py" gai blocked.sfy.test
check "...one warn line names it" grep -q "blocked.sfy.test blocked by the rules" "$SFY_LAST_OUT"
fails_with "gethostbyname of a blocked name: HOST_NOT_FOUND" "error: HOST_NOT_FOUND" \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/look.py" ghbn BLOCKED.sfy.test.
fails_with "getaddrinfo(name, 25): the service's port is blocked" "error: EAI_NONAME" \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/look.py" gai mail.sfy.test 25
fails_with "getaddrinfo(name, \"smtp\"): a known service's port too" "error: EAI_NONAME" \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/look.py" gai mail.sfy.test smtp
expect_out "getaddrinfo(name, 80): a fake address" "addr: 224." \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/look.py" gai mail.sfy.test 80
expect_out "getaddrinfo(name) without a port: a fake address (connect decides)" "addr: 224." \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/look.py" gai mail.sfy.test
expect_out "a faked name through the chain (curl)" "$SFY_TOKEN" \
	sfy_run "$C" "${R[@]}" -- curl -sS --max-time 20 http://far.sfy.test:8080/
no_packets remote "remote DNS, blocked and faked names: zero packets to port 53"

echo "--- remote DNS: a name routed direct is resolved by the local name server"
sfy_capture_start direct "$C" any port 53
before=$(sfy_proxy_conns dante)
expect_out "getaddrinfo of *.lan.test: the name server's answer" "addr: $DNS" \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/look.py" gai www.lan.test 8080
expect_out "curl http://www.lan.test:8080/ goes direct" "$DIRECT_TOKEN" \
	sfy_run "$C" "${R[@]}" -- curl -4 -sS --max-time 20 http://www.lan.test:8080/
expect_out "...by the name's rule alone (no rule for its address)" "$DIRECT_TOKEN" \
	sfy_run "$C" -f "$SFY_TMP/remote2.yaml" -- curl -4 -sS --max-time 20 http://www.lan.test:8080/
after=$(sfy_proxy_conns dante)
check "...the proxy saw no connection ($before -> $after)" test "$after" -eq "$before"
n=$(sfy_capture_stop direct)
check "the direct name was looked up on the wire ($n packets)" test "$n" -gt 0

echo "--- local DNS: answers are remembered, a connect by address follows the name"
fails "control: $DNS:8080 by address alone goes to the proxy, which cannot reach it" \
	sfy_run "$C" "${L[@]}" -- curl -sS --max-time 10 "http://$DNS:8080/"
expect_out "a lookup of www.lan.test then a connect to its address goes direct" "$DIRECT_TOKEN" \
	sfy_run "$C" "${L[@]}" -- "$SFY_PY" -c '
import socket, sys
a = socket.getaddrinfo("www.lan.test", 8080, socket.AF_INET, socket.SOCK_STREAM)[0][4]
s = socket.create_connection(a, timeout=10)
s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
print(s.makefile("rb").read().decode())'
expect_out "...and across exec (a child connects by the address its parent looked up)" \
	"$DIRECT_TOKEN" sfy_run "$C" "${L[@]}" -- sh -c '
a=$("$1" -c "import socket; print(socket.getaddrinfo(\"www.lan.test\", 80, socket.AF_INET)[0][4][0])")
exec curl -sS --max-time 10 "http://$a:8080/"' sh "$SFY_PY"
sfy_capture_start local "$C" any port 53
fails_with "local DNS: a blocked name still gets EAI_NONAME" "error: EAI_NONAME" \
	sfy_run "$C" "${L[@]}" -- "$SFY_PY" "$SFY_TMP/look.py" gai blocked.sfy.test
no_packets local "local DNS, blocked name: zero packets to port 53"

echo "--- .onion/.exit/.i2p: never resolved locally"
sfy_capture_start onion "$C" any port 53
# Issue 14: in every DNS mode -- a fake address, the name goes to the
# chain's last hop (socks5 takes names) at connect().
expect_out "local DNS and rules: getaddrinfo of an onion name: a fake address" "addr: 224." \
	sfy_run "$C" "${L[@]}" -- "$SFY_PY" "$SFY_TMP/look.py" gai abcdef.onion
expect_out "...and the name reaches the local-DNS top chain by name (TCP)" "$SFY_TOKEN" \
	sfy_run "$C" "${L[@]}" -- curl -sS --max-time 20 http://hidden.onion:8080/
expect_out "a local-DNS chain (socks5) takes an onion name by name (TCP)" "$SFY_TOKEN" \
	sfy_run "$C" -f "$SFY_TMP/onion.yaml" -- curl -sS --max-time 20 http://hidden.onion:8080/
expect_out "...and by name through its UDP relay" "reply: ping|$REL" \
	sfy_run "$C" -f "$SFY_TMP/onion.yaml" -- "$SFY_PY" "$SFY_TMP/udp.py" send hidden.onion 7
no_packets onion "onion names: zero packets to port 53"

echo "--- remote DNS, default: direct: a program's own DNS query is refused"
sfy_capture_start dq_ctl "$C" any udp port 53 and host "$DNS"
expect_out "control: without socksify the query to $DNS:53 is answered" "answered:" \
	sfy_direct "$C" "$SFY_PY" "$SFY_TMP/udp.py" dnsq "$DNS" 53
n=$(sfy_capture_stop dq_ctl)
check "...and on the wire ($n packets)" test "$n" -gt 0
sfy_capture_start dq "$C" any udp port 53 and host "$DNS"
fails_with "UDP to $DNS:53 with a direct default in remote mode: EPERM" "failed: EPERM" \
	sfy_run "$C" -f "$SFY_TMP/remote53.yaml" -- "$SFY_PY" "$SFY_TMP/udp.py" dnsq "$DNS" 53
no_packets dq "...no packet to $DNS:53"
fails_with "getaddrinfo(name, \"domain\") there: EAI_NONAME" "error: EAI_NONAME" \
	sfy_run "$C" -f "$SFY_TMP/remote53.yaml" -- "$SFY_PY" "$SFY_TMP/look.py" gai ns.sfy.test domain
fails_with "--explain agrees: port 53 blocked by the default (exit 1)" "default \(block\)" \
	sfy_run "$C" -f "$SFY_TMP/remote53.yaml" --explain "$DNS:53"
expect_out "...port 54 still direct" "default (direct)" \
	sfy_run "$C" -f "$SFY_TMP/remote53.yaml" --explain "$DNS:54"

echo "--- the resolver's search list: every name it may ask for is judged"
# resolv.conf's search domains are appended to a short name (and to any
# name whose lookup as written fails): a rule blocking *.corp.test must
# block "intranet" too, and a local answer for "web" stands for
# web.work.test as well.
yaml_search() {  # name: the config; the rules come on stdin
	{ echo "chains:"; echo "  loc: [ \"socks5://$PRX:1080\" ]"; cat; echo "default: direct"; } \
		>"$SFY_TMP/$1.yaml"
	chmod 600 "$SFY_TMP/$1.yaml"
}
yaml_search search1 <<EOF
rules:
  - { match: "*.corp.test", via: block }
EOF
yaml_search search2 <<EOF
rules:
  - { match: "*.work.test", via: loc }
EOF
S1=(-f "$SFY_TMP/search1.yaml")
S2=(-f "$SFY_TMP/search2.yaml")
cat >"$SFY_TMP/res.py" <<'EOF'
# res.py search NAME | send NAME: res_search(), or res_send() of a query
# res_mkquery() built; prints the answer's length or the error.
import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.__h_errno_location.restype = ctypes.POINTER(ctypes.c_int)
what, name = sys.argv[1], sys.argv[2].encode()
ans = ctypes.create_string_buffer(4096)
if what == "search":
    n = libc.res_search(name, 1, 1, ans, 4096)
else:
    q = ctypes.create_string_buffer(512)
    m = libc.res_mkquery(0, name, 1, 1, None, 0, None, q, 512)
    if m < 0:
        sys.exit("res_mkquery failed")
    n = libc.res_send(q, m, ans, 4096)
if n < 0:
    e = ctypes.get_errno()
    print("error: h_errno", libc.__h_errno_location()[0], "errno", errno.errorcode.get(e, e))
    sys.exit(1)
print("answer:", n, "bytes")
EOF
questions() {  # capture pattern: how many packets it saw matching pattern
	tcpdump -nn -r "$SFY_TMP/$1.pcap" 2>/dev/null | grep -c -- "$2" || true
}
printf 'nameserver %s\nsearch corp.test work.test\noptions timeout:1 attempts:1\n' "$DNS" |
	sfy_etc "$C" resolv.conf
sfy_capture_start sctl "$C" any port 53
expect_out "control: without socksify, \"intranet\" is answered" "addr: $DNS" \
	sfy_direct "$C" "$SFY_PY" "$SFY_TMP/look.py" gai intranet
expect_out "control: socksify lets \"intranet.\" (no search list) through" "addr: $DNS" \
	sfy_run "$C" "${S1[@]}" -- "$SFY_PY" "$SFY_TMP/look.py" gai intranet.
expect_out "control: res_send of an allowed name is sent" "answer:" \
	sfy_run "$C" "${S1[@]}" -- "$SFY_PY" "$SFY_TMP/res.py" send www.lan.test
sfy_capture_stop sctl >/dev/null
n=$(questions sctl 'A? intranet.corp.test')
check "control: the resolver asked for intranet.corp.test ($n)" test "$n" -gt 0
n=$(questions sctl 'A? intranet\. ')
check "control: \"intranet.\" was asked for as written ($n)" test "$n" -gt 0
n=$(questions sctl 'A? www.lan.test')
check "control: res_send's query went out ($n)" test "$n" -gt 0

sfy_capture_start search "$C" any port 53
fails_with "getaddrinfo(\"intranet\"): the search list makes it intranet.corp.test: EAI_NONAME" \
	"error: EAI_NONAME" sfy_run "$C" "${S1[@]}" -- "$SFY_PY" "$SFY_TMP/look.py" gai intranet
check "...one warn line names the expansion" grep -q "intranet.corp.test by the search list" \
	"$SFY_LAST_OUT"
fails_with "getaddrinfo(\"intranet.corp\") (a dot, but a failed lookup searches too)" \
	"error: EAI_NONAME" sfy_run "$C" "${S1[@]}" -- "$SFY_PY" "$SFY_TMP/look.py" gai intranet.corp
fails_with "gethostbyname(\"intranet\"): HOST_NOT_FOUND" "error: HOST_NOT_FOUND" \
	sfy_run "$C" "${S1[@]}" -- "$SFY_PY" "$SFY_TMP/look.py" ghbn intranet
fails_with "res_search(\"intranet\"): HOST_NOT_FOUND" "error: h_errno 1" \
	sfy_run "$C" "${S1[@]}" -- "$SFY_PY" "$SFY_TMP/res.py" search intranet
fails_with "res_send() of a query for a blocked name: -1, ECONNREFUSED" \
	"error: h_errno 1 errno ECONNREFUSED" \
	sfy_run "$C" "${S1[@]}" -- "$SFY_PY" "$SFY_TMP/res.py" send intranet.corp.test
no_packets search "blocked expansions: zero packets to port 53"

# search2: web.work.test goes through the chain loc (local DNS), "web"
# itself direct. The answer for "web" may be web.work.test's: a connect to
# it must take the chain (whose proxy cannot reach dnsn), not go direct.
expect_out "control: a connect to $DNS:8080 by address alone goes direct" "$DIRECT_TOKEN" \
	sfy_run "$C" "${S2[@]}" -- curl -sS --max-time 10 "http://$DNS:8080/"
fails "a lookup of \"web\" then a connect to its address takes web.work.test's chain" \
	sfy_run "$C" "${S2[@]}" -- "$SFY_PY" -c '
import socket, sys
a = socket.getaddrinfo("web", 8080, socket.AF_INET, socket.SOCK_STREAM)[0][4]
print("looked up:", a[0], flush=True)
s = socket.create_connection(a, timeout=10)
s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
print(s.makefile("rb").read().decode())'
cp "$SFY_LAST_OUT" "$SFY_TMP/web.out"
check "...it was looked up locally ($DNS)" grep -q "looked up: $DNS" "$SFY_TMP/web.out"
check "...and never reached the direct page" sh -c "! grep -q '$DIRECT_TOKEN' '$SFY_TMP/web.out'"

# search3: web.work.test goes through a remote-DNS chain, "web" itself
# direct: "web" gets a fake address (one expansion needs it), and the
# connect resolves it here -- as "web." only: the resolver must not ask
# for web.work.test, which only the chain's proxy may resolve.
yaml_search search3 <<EOF
  rem: [ "socks5h://$PRX:1080" ]
rules:
  - { match: "*.work.test", via: rem }
EOF
printf 'nameserver %s\nsearch work.test\noptions timeout:1 attempts:1\n' "$DNS" |
	sfy_etc "$C" resolv.conf
sfy_capture_start search3 "$C" any port 53
sfy_direct "$C" "$SFY_PY" "$SFY_TMP/look.py" gai web >/dev/null 2>&1
sfy_capture_stop search3 >/dev/null
n=$(questions search3 'A? web.work.test')
check "control: without socksify, \"web\" is asked for as web.work.test ($n)" test "$n" -gt 0
sfy_capture_start search3 "$C" any port 53
expect_out "a connect to \"web\" (faked, routed direct) reaches it directly" "$DIRECT_TOKEN" \
	sfy_run "$C" -f "$SFY_TMP/search3.yaml" -- curl -sS --max-time 10 "http://web:8080/"
sfy_capture_stop search3 >/dev/null
n=$(questions search3 'A? web.work.test')
check "...and the resolver never asked for web.work.test ($n)" test "$n" -eq 0
n=$(questions search3 'A? web\. ')
check "...it asked for \"web.\" as written ($n)" test "$n" -gt 0
printf 'nameserver %s\noptions timeout:1 attempts:1\n' "$DNS" | sfy_etc "$C" resolv.conf

echo "--- UDP under the rules"
sfy_capture_start udpdirect "$C" any udp port 7 and host "$TGT"
expect_out "a faked name through the chain's UDP ASSOCIATE" "reply: ping|$REL" \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/udp.py" send far.sfy.test 7
expect_out "connect() to a faked name through the chain" "reply: ping|$REL" \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/udp.py" connect far.sfy.test 7
no_packets udpdirect "...no datagram to the target left the client directly"
expect_out "a direct CIDR rule: the datagram leaves directly" "reply: ping|$CLI" \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/udp.py" send "$DNS" 7
fails_with "a blocked UDP destination: sendto EPERM" "failed: EPERM" \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/udp.py" send "$TGT" 9
check "...one warn line says so" grep -q "blocked by" "$SFY_LAST_OUT"
fails_with "a blocked UDP destination: connect ECONNREFUSED" "failed: ECONNREFUSED" \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/udp.py" connect "$TGT" 9
expect_out "a faked name whose port-7 route is direct: resolved here, sent directly" \
	"reply: ping|$CLI" sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/udp.py" fake mix.sfy.test 7
check "...the name was faked at lookup (no port yet)" grep -q "looked up: 224." "$SFY_LAST_OUT"
expect_out "a socket associated through one chain refuses another chain's datagram" \
	"second: EPERM" sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/udp.py" twochains far.sfy.test 7
check "...and keeps working through its own" grep -q "third: third|$REL" "$SFY_LAST_OUT"
echo "--- remote DNS: an error of our own is not taken for 'ask the real resolver'"
# A getaddrinfo() interposer behind socksify tells when the real function
# is asked: an unknown flag is EAI_BADFLAGS from us, without asking it.
mkdir -p "$SFY_TMP/shim" && chmod 755 "$SFY_TMP/shim"
cat >"$SFY_TMP/gshim.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <unistd.h>
int getaddrinfo(const char *n, const char *s, const struct addrinfo *h, struct addrinfo **r)
{
	static const char msg[] = "gshim: the real getaddrinfo was asked\n";
	int (*next)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
	(void)!write(2, msg, sizeof(msg) - 1);
	*(void **)&next = dlsym(RTLD_NEXT, "getaddrinfo");
	return next(n, s, h, r);
}
C
cc -shared -fPIC -o "$SFY_TMP/shim/gshim.so" "$SFY_TMP/gshim.c" -ldl ||
	{ echo "FAIL: setup: cannot build the getaddrinfo shim"; exit 1; }
cat >"$SFY_TMP/gaiflags.py" <<'EOF'
import socket, sys
try:
    socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET, socket.SOCK_STREAM, 0, int(sys.argv[2], 0))
    print("answered")
except socket.gaierror as e:
    print("error:", e.errno)
    sys.exit(1)
EOF
gshim() {  # name flags
	local libs="$SOCKSIFY_LIB $SFY_TMP/shim/gshim.so"
	[ "${SANITIZE:-}" = 1 ] && [ -n "${SFY_ASAN_RT:-}" ] && libs="$SFY_ASAN_RT $libs"
	sfy_run "$C" "${R[@]}" -- env LD_PRELOAD="$libs" \
		"$SFY_PY" "$SFY_TMP/gaiflags.py" "$@"
}
expect_out "control: the shim sees a lookup socksify hands to the real function" \
	"gshim: the real getaddrinfo was asked" gshim localhost 0
fails_with "an unknown ai_flags bit: EAI_BADFLAGS" "error: $("$SFY_PY" -c \
	'import socket; print(socket.EAI_BADFLAGS)')" gshim far.sfy.test 0x10000
check "...and the real resolver was not asked" \
	sh -c "! grep -q 'real getaddrinfo was asked' '$SFY_LAST_OUT'"

echo "--- the launcher says when the shared table of local answers cannot be made"
# A file size limit below the table's size makes its memfd fail (and
# nothing else the launcher creates is that large).
trap '' XFSZ
ulimit -S -f 1024
expect_out "a failed table of local DNS answers is one warning line" \
	"cannot create the shared table of local DNS answers" sfy_run "$C" "${L[@]}" -- true
ulimit -S -f unlimited
trap - XFSZ
check "...and only then: control, without the limit" sh -c "
	! ip netns exec '$C' '$SOCKSIFY_BIN' -f '$SFY_TMP/local.yaml' -- true 2>&1 |
		grep -q 'cannot create the shared table'"
finish
