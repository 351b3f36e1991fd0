#!/bin/bash
# A UDP relay that answers BND 0.0.0.0 ("the address you reached me at")
# belongs to the hop the association was made through -- with round_robin
# or random that is not the last configured proxy.
#
#   cli 10.214.1.1 ---- prx 10.214.1.2 :1080 relay 10.214.1.2:5001 (p1)
#                           10.214.1.3 :1080 relay 10.214.1.3:5002 (p2)
#
# Each fake proxy (s5udp.py) does only UDP ASSOCIATE, answers BND
# 0.0.0.0:ITS-RELAY-PORT and binds its relay to its own address, so a
# datagram sent to the other proxy's address finds no relay. The relay
# answers each datagram itself with DATA|NAME.
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd python3 ss
sfy_begin

C=$(sfy_ns cli) P=$(sfy_ns prx) || exit 1
sfy_link "$C" "$P" 10.214.1 || exit 1
ip -n "$P" addr add 10.214.1.3/24 dev "$(sfy_ifname "$P" "$C")"

cat >"$SFY_TMP/s5udp.py" <<'EOC'
# s5udp.py ADDR PORT RELAY-PORT NAME
import socket, struct, sys, threading
addr, port, rport, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b

def relay():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((addr, rport))
    while True:
        d, src = u.recvfrom(65535)
        # RSV RSV FRAG ATYP=1 ADDR(4) PORT(2) DATA
        head, data = d[:10], d[10:]
        print(name, "datagram from", src[0], flush=True)
        u.sendto(head + data + b"|" + name.encode(), src)

def serve(c):
    try:
        ver, n = exact(c, 2)
        exact(c, n)
        c.sendall(b"\x05\x00")
        ver, cmd, _, atyp = exact(c, 4)
        exact(c, {1: 4, 4: 16}.get(atyp) or exact(c, 1)[0])
        exact(c, 2)
        if cmd != 3:
            c.sendall(b"\x05\x07\x00\x01" + bytes(6))
            return
        if name == "named":   # the relay by name (ATYP 3)
            host = b"relay.sfy.test"
            c.sendall(b"\x05\x00\x00\x03" + bytes([len(host)]) + host + struct.pack("!H", rport))
        else:
            c.sendall(b"\x05\x00\x00\x01" + bytes(4) + struct.pack("!H", rport))
        print(name, "associated", flush=True)
        while c.recv(100):
            pass
    except (EOFError, OSError):
        pass
    finally:
        c.close()

threading.Thread(target=relay, daemon=True).start()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOC
cat >"$SFY_TMP/ucli.py" <<'EOC'
# Two sockets, two associations: round_robin makes them through p1 and p2.
import socket
got = []
for i in range(2):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(b"hello%d" % i, ("10.214.2.2", 7))
    try:
        got.append(s.recv(999).decode())
    except OSError as e:
        got.append("error " + str(e))
print(" ".join(sorted(got)))
EOC
sfy_bg p1 "$P" "$SFY_PY" "$SFY_TMP/s5udp.py" 10.214.1.2 1080 5001 p1
sfy_bg p2 "$P" "$SFY_PY" "$SFY_TMP/s5udp.py" 10.214.1.3 1080 5002 p2
sfy_bg named "$P" "$SFY_PY" "$SFY_TMP/s5udp.py" 10.214.1.3 1081 5003 named
sfy__served p1 "$P" 1080
sfy__served named "$P" 1081
for i in $(seq 100); do
	[ -n "$(ip netns exec "$P" ss -Hltn 'src 10.214.1.3:1080')" ] && break
	sleep 0.05
done

replies() {  # mode: both datagrams answered, each by a relay
	local out
	out=$(sfy_run "$C" -f "$SFY_TMP/$1.yaml" -- "$SFY_PY" "$SFY_TMP/ucli.py" 2>&1)
	echo "$out"
	[[ $out =~ ^hello0\|p[12]\ hello1\|p[12]$ ]]
}

echo "--- round_robin, chain_length 1"
sfy_conf rr round_robin 1 "socks5://10.214.1.2:1080" "socks5://10.214.1.3:1080"
expect_out "each association's datagrams reach its own relay" "hello0|p1 hello1|p2" \
	sfy_run "$C" -f "$SFY_TMP/rr.yaml" -- "$SFY_PY" "$SFY_TMP/ucli.py"

echo "--- random, chain_length 1"
sfy_conf rnd random 1 "socks5://10.214.1.2:1080" "socks5://10.214.1.3:1080"
for i in 1 2 3 4; do
	ok "random, run $i: both datagrams answered" replies rnd
done
check "both relays were used" grep -q "p1 datagram" "$(sfy_logfile p1)"
check "both relays were used" grep -q "p2 datagram" "$(sfy_logfile p2)"

echo "--- a relay named by domain"
# The name resolves only through this machine's /etc/hosts; the resolver
# is a black hole, and the capture counts what is sent to it.
printf '127.0.0.1 localhost\n10.214.1.3 relay.sfy.test\n' | sfy_etc "$C" hosts
printf 'nameserver 10.214.1.53\n' | sfy_etc "$C" resolv.conf
sfy_conf namedh strict - "socks5h://10.214.1.3:1081"
sfy_conf namedl strict - "socks5://10.214.1.3:1081"
cat >"$SFY_TMP/one.py" <<'EOC'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
try:
    s.sendto(b"hi", ("10.214.2.2", 7))
    print(s.recv(999).decode())
except OSError as e:
    print("error", e.errno)
EOC
sfy_capture_start rdns "$C" any port 53
expect_out "remote DNS: the named relay is not resolved here (EHOSTUNREACH)" "error 113" \
	sfy_run "$C" -f "$SFY_TMP/namedh.yaml" -- "$SFY_PY" "$SFY_TMP/one.py"
check "...and says why" grep -q "named its relay relay.sfy.test" "$SFY_LAST_OUT"
n=$(sfy_capture_stop rdns)
check "...no DNS packet ($n)" test "$n" -eq 0
expect_out "local DNS: the named relay is resolved here and used" "hi|named" \
	sfy_run "$C" -f "$SFY_TMP/namedl.yaml" -- "$SFY_PY" "$SFY_TMP/one.py"

finish
