#!/bin/bash
# The rest of the TCP contract: HTTP CONNECT hops (tinyproxy), a mixed
# socks5 -> socks4a -> http chain, --check, TCP Fast Open, getpeername(),
# the program's socket properties, SOCKS4 and IPv6, secrets in logs.
#
#   cli 10.203.1.1 ---- 10.203.1.2 prx 10.203.2.1 ---- 10.203.2.2 tgt
#                       danted :1080, tinyproxy :8888   danted :1080 (hop 2 of the mixed chain)
#                       (+auth :8889)                   http :8080, echo :7
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted tinyproxy curl socat ss
sfy_begin

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$P" 10.203.1 || exit 1
sfy_link "$P" "$T" 10.203.2 || exit 1
CLI=10.203.1.1 PRX=10.203.1.2 TGT=10.203.2.2 TGT6=$(sfy_v6 10.203.2.2)

sfy_http web "$T" 8080
sfy_echo echo "$T" 7
sfy_danted dante "$P" "$PRX" 1080 none
sfy_danted dante_t "$T" "$TGT" 1080 none
tinyproxy_conf() {  # port [user pass]
	{
		echo "Port $1"
		echo "Timeout 30"
		echo "MaxClients 50"
		echo "LogLevel Info"
		echo "Allow 0.0.0.0/0"
		[ $# -ge 3 ] && echo "BasicAuth $2 $3"
	} >"$SFY_TMP/tinyproxy-$1.conf"
	sfy_bg "tiny$1" "$P" tinyproxy -d -c "$SFY_TMP/tinyproxy-$1.conf"
	sfy__served "tiny$1" "$P" "$1"
}
tinyproxy_conf 8888
tinyproxy_conf 8889 webuser w3bpass
URL="http://$TGT:8080/"

echo "--- topology"
fails "client cannot reach the target directly" \
	sfy_direct "$C" curl -sS --connect-timeout 2 "$URL"

echo "--- HTTP CONNECT"
expect_out "curl through tinyproxy (http://)" "$SFY_TOKEN" \
	sfy_run "$C" -x "http://$PRX:8888" -- curl -sS --max-time 15 "$URL"
expect_out "curl through tinyproxy with Basic auth" "$SFY_TOKEN" \
	sfy_run "$C" -x "http://webuser:w3b%70ass@$PRX:8889" -- curl -sS --max-time 15 "$URL"
fails_with "wrong Basic auth password fails with EACCES" "EACCES" \
	sfy_run "$C" -x "http://webuser:nope@$PRX:8889" -- "$SFY_TOOLS/tcpclient" --host "$TGT" --port 7

# The reply head is peeked at and consumed in one piece, never read one
# recv() per byte (tinyproxy's head is ~70 bytes); tcpclient's own echo
# read adds one or two calls.
expect_out "tcpclient through tinyproxy, under strace" "ok:" \
	sfy_run "$C" -x "http://$PRX:8888" -- strace -f -qq -e trace=recvfrom,recvmsg \
	-o "$SFY_TMP/http_recv.strace" "$SFY_TOOLS/tcpclient" --host "$TGT" --port 7 --send ping
n=$(grep -c 'recv' "$SFY_TMP/http_recv.strace")
check "HTTP CONNECT reply read with a handful of recv() calls ($n, at most 8)" test "$n" -le 8

echo "--- mixed chain"
# Hops 2 and 3 are reachable only from the hop before them.
sfy_conf mixed strict - "socks5://$PRX:1080" "socks4a://$TGT:1080" "http://10.203.2.1:8888"
fails "client cannot reach hop 2 directly" sfy_direct "$C" curl -sS --connect-timeout 2 "http://$TGT:1080/"
expect_out "socks5 -> socks4a -> http chain" "$SFY_TOKEN" \
	sfy_run "$C" -f "$SFY_TMP/mixed.yaml" -- curl -sS --max-time 15 "$URL"
check "tinyproxy saw the CONNECT of the mixed chain" \
	grep -q "CONNECT.*$TGT:8080\|$TGT:8080.*CONNECT\|Established connection to host \"$TGT\"" \
	"$(sfy_logfile tiny8888)"

echo "--- --check"
expect_out "--check reports every hop ok" "chain usable" \
	sfy_run "$C" --check -f "$SFY_TMP/mixed.yaml"
out=$SFY_LAST_OUT
check "--check printed three hop lines" test "$(grep -c '^hop [123] .* ok ' "$out")" -eq 3
sfy_conf dead strict - "socks5://$PRX:1080" "socks5://$PRX:1999"
fails_with "--check names the dead hop and exits 1" "hop 2 .*FAIL" \
	sfy_run "$C" --check -f "$SFY_TMP/dead.yaml"
rc=$SFY_LAST_RC
check "--check exit status is 1" test "$rc" = 1
fails_with "--check with a command is an error" "check" \
	sfy_run "$C" --check -f "$SFY_TMP/dead.yaml" -- true

echo "--- sockets as the program made them"
expect_out "curl --tcp-fastopen (sendto MSG_FASTOPEN) is tunnelled" "$SFY_TOKEN" \
	sfy_run "$C" -x "socks5://$PRX:1080" -- curl -sS --tcp-fastopen --max-time 15 "$URL"
cat >"$SFY_TMP/props.py" <<'PY'
import errno, fcntl, os, select, socket, sys
tgt, cli = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.bind((cli, 0))
s.setblocking(False)
# As the kernel does for any TCP connect: EINPROGRESS, then writable once the
# connection (here: the chain) is up, SO_ERROR 0.
rc = s.connect_ex((tgt, 7))
assert rc == errno.EINPROGRESS, "non-blocking connect returned %s" % errno.errorcode.get(rc, rc)
p = select.poll()
p.register(s, select.POLLOUT)
ev = p.poll(10000)
assert ev and ev[0][1] == select.POLLOUT, "not (only) writable within 10 s: %r" % ev
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0, "SO_ERROR after the wake"
assert s.getpeername() == (tgt, 7), s.getpeername()
assert s.getsockname()[0] == cli, s.getsockname()
assert not s.getblocking(), "O_NONBLOCK lost"
assert fcntl.fcntl(s.fileno(), fcntl.F_GETFD) & fcntl.FD_CLOEXEC, "FD_CLOEXEC lost"
assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1, "TCP_NODELAY lost"
# Copies made with fcntl() answer like the original (as dup() copies do).
for cmd in (fcntl.F_DUPFD, fcntl.F_DUPFD_CLOEXEC):
    c = socket.socket(fileno=fcntl.fcntl(s.fileno(), cmd, 0))
    assert c.getpeername() == (tgt, 7), ("fcntl copy", cmd, c.getpeername())
    c.detach()
s.setblocking(True)
s.sendall(b"ping\n")
assert s.recv(5) == b"ping\n"
print("props ok")
PY
expect_out "getpeername, bind, O_NONBLOCK, FD_CLOEXEC, TCP_NODELAY kept" "props ok" \
	sfy_run "$C" -x "socks5://$PRX:1080" -- "$SFY_PY" "$SFY_TMP/props.py" "$TGT" "$CLI"
printf 'proxies:\n  - socks5://%s:1080\npipelining: off\n' "$PRX" >"$SFY_TMP/stepwise.yaml"
expect_out "same with the SOCKS5 messages sent step by step (pipelining: off)" \
	"props ok" sfy_run "$C" -f "$SFY_TMP/stepwise.yaml" -- \
	"$SFY_PY" "$SFY_TMP/props.py" "$TGT" "$CLI"

# A port the program bound survives the socket being replaced when the chain
# starts over (dynamic chain: a dead first hop, a dead hop behind a live
# one), with or without SO_REUSEADDR, and the program's SO_REUSEADDR is what
# it set. The proxy's log shows the source port it saw.
cat >"$SFY_TMP/port.py" <<'PY'
import socket, sys
tgt, cli, port, reuse = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
if reuse:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((cli, port))
s.connect((tgt, 7))
assert s.getsockname() == (cli, port), "bound port lost: %r" % (s.getsockname(),)
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == reuse, "SO_REUSEADDR changed"
s.sendall(b"port\n")
assert s.recv(5) == b"port\n"
print("port ok")
PY
sfy_conf deadfirst dynamic - "socks5://$PRX:1999" "socks5://$PRX:1080"
sfy_conf deadmid dynamic - "socks5://$PRX:1080" "socks5://$TGT:1999" "socks5://$TGT:1080"
for c in "deadfirst 47001 0" "deadfirst 47002 1" "deadmid 47003 0" "deadmid 47004 1"; do
	set -- $c
	expect_out "$1, bound port $2, SO_REUSEADDR $3: the port is kept" "port ok" \
		sfy_run "$C" -f "$SFY_TMP/$1.yaml" -- "$SFY_PY" "$SFY_TMP/port.py" "$TGT" "$CLI" "$2" "$3"
	check "...and the proxy saw the connection come from $CLI.$2" \
		grep -q "tcp/connect \\[: $CLI\\.$2 " "$(sfy_logfile dante-dante)"
done

echo "--- SOCKS4 and IPv6"
fails_with "socks4 to an IPv6 destination: EAFNOSUPPORT, says why" "EAFNOSUPPORT.*|IPv6" \
	sfy_run "$C" -x "socks4://$PRX:1080" -- "$SFY_TOOLS/tcpclient" --host "$TGT6" --port 7
out=$SFY_LAST_OUT
check "...and one log line about IPv6" grep -q "SOCKS4 cannot carry IPv6" "$out"
expect_out "socks5 to an IPv6 destination" "$SFY_TOKEN" \
	sfy_run "$C" -x "socks5://$PRX:1080" -- curl -sS --max-time 15 "http://[$TGT6]:8080/"

echo "--- secrets"
fails "wrong password through tinyproxy, verbose" \
	sfy_run "$C" -vv -x "http://webuser:Sup3rS3cret@$PRX:8889" -- curl -sS --max-time 15 "$URL"
out=$SFY_LAST_OUT
check "the password is nowhere in the output" sh -c "! grep -q Sup3rS3cret '$out'"
check "the failure was logged as one warn line naming the hop" \
	test "$(grep -c "warn: connect to $TGT:8080 failed: .*http://webuser@$PRX:8889" "$out")" = 1

finish
