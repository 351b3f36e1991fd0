#!/bin/bash
# sendmmsg() keeps its batching: a run of messages that pass straight
# through (bypass destinations) is one real sendmmsg() system call, not one
# sendmsg() per message; relayed messages in between go one by one, in
# order, and the call returns the number sent. strace counts the calls.
#
#   cli 10.213.1.1 ---- 10.213.1.2 prx 10.213.2.1 ---- 10.213.2.2 tgt
#                       danted :1080 (udpassociate)     udp echo :7
#                       udp echo :7 (bypass)
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted strace python3
sfy_begin

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$P" 10.213.1 || exit 1
sfy_link "$P" "$T" 10.213.2 || exit 1
PRX=10.213.1.2 TGT=10.213.2.2 CLI=10.213.1.1 REL=10.213.2.1

sfy_bg echo-p "$P" "$SFY_PY" -u "$SFY_TOP/tests/tools/udpserver.py" echo 7
sfy__served echo-p "$P" 7 10 udp
sfy_bg echo-t "$T" "$SFY_PY" -u "$SFY_TOP/tests/tools/udpserver.py" echo 7
sfy__served echo-t "$T" 7 10 udp
sfy_danted dante "$P" "$PRX" 1080 none
sfy_conf mm strict - "socks5://$PRX:1080"
printf 'bypass:\n  - %s/32\n' "$PRX" >>"$SFY_TMP/mm.yaml"
sfy_conf mmblock strict - "socks5://$PRX:1080"
printf 'udp: block\nbypass:\n  - %s/32\n' "$PRX" >>"$SFY_TMP/mmblock.yaml"

# mm.py HOST...: one sendmmsg() of one datagram per HOST (port 7) through
# libc (so through the preloaded hook), then the echoes.
cat >"$SFY_TMP/mm.py" <<'PY'
import ctypes, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.POINTER(iovec)), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]
class mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", msghdr), ("len", ctypes.c_uint)]
class sin(ctypes.Structure):
    _fields_ = [("family", ctypes.c_ushort), ("port", ctypes.c_uint16),
                ("addr", ctypes.c_char * 4), ("zero", ctypes.c_char * 8)]
hosts = sys.argv[1:]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
n = len(hosts)
names = [sin(socket.AF_INET, socket.htons(7), socket.inet_aton(h)) for h in hosts]
bufs = [ctypes.create_string_buffer(b"m%d" % i) for i in range(n)]
iovs = [iovec(ctypes.cast(b, ctypes.c_void_p), len(b.value)) for b in bufs]
vec = (mmsghdr * n)()
for i in range(n):
    vec[i].hdr.name = ctypes.cast(ctypes.pointer(names[i]), ctypes.c_void_p)
    vec[i].hdr.namelen = ctypes.sizeof(sin)
    vec[i].hdr.iov = ctypes.pointer(iovs[i])
    vec[i].hdr.iovlen = 1
r = libc.sendmmsg(s.fileno(), vec, n, 0)
print("sent", r, "lens", sum(vec[i].len for i in range(max(r, 0))))
got = set()
try:
    while len(got) < n:
        got.add(s.recv(99).decode())
except socket.timeout:
    pass
print("replies", len(got))
for g in sorted(got):
    print("reply", g)
sys.exit(0 if r == n and len(got) == n else 1)
PY

# strace -f counts the sendmmsg and sendmsg system calls of the program.
traced() {  # name [conf] host...
	local out=$SFY_TMP/$1.strace conf=mm
	shift
	case $1 in mm*) conf=$1; shift ;; esac
	sfy_run "$C" -f "$SFY_TMP/$conf.yaml" -- strace -f -qq -o "$out" -e trace=sendmmsg,sendmsg \
		"$SFY_PY" "$SFY_TMP/mm.py" "$@"
}
calls() { grep -c "^[0-9]* *$2(" "$SFY_TMP/$1.strace"; }

echo "--- topology"
fails "client gets no UDP answer from the target directly" \
	sfy_direct "$C" "$SFY_PY" "$SFY_TMP/mm.py" "$TGT"

echo "--- 16 bypassed datagrams"
mapfile -t P16 < <(for i in $(seq 16); do echo "$PRX"; done)
expect_out "one sendmmsg of 16 bypassed datagrams: all sent and echoed" "replies 16" \
	traced byp "${P16[@]}"
out=$SFY_LAST_OUT
check "...sendmmsg returned 16 and every length (10x2 + 6x3 bytes)" grep -q "^sent 16 lens 38$" "$out"
check "...straight from the client" grep -q "reply m15|$CLI" "$out"
check "...in one sendmmsg system call ($(calls byp sendmmsg))" test "$(calls byp sendmmsg)" = 1
check "...and no sendmsg ($(calls byp sendmsg))" test "$(calls byp sendmsg)" = 0

echo "--- bypassed, relayed, bypassed"
mapfile -t MIX < <(for i in $(seq 8); do echo "$PRX"; done; echo "$TGT"; for i in $(seq 7); do echo "$PRX"; done)
expect_out "8 bypassed, 1 relayed, 7 bypassed in one sendmmsg: all echoed" "replies 16" \
	traced mix "${MIX[@]}"
out=$SFY_LAST_OUT
check "...sendmmsg returned 16 and every length" grep -q "^sent 16 lens 38$" "$out"
check "...the relayed one came through the relay" grep -q "reply m8|$REL" "$out"
check "...the others straight from the client" \
	test "$(grep -c "reply m[0-9]*|$CLI" "$out")" = 15
check "...two sendmmsg system calls ($(calls mix sendmmsg))" test "$(calls mix sendmmsg)" = 2
check "...and one sendmsg, the relayed datagram ($(calls mix sendmsg))" \
	test "$(calls mix sendmsg)" = 1

echo "--- bypassed, then refused"
mapfile -t BLK < <(for i in $(seq 8); do echo "$PRX"; done; echo "$TGT"; echo "$PRX")
fails "udp: block: 8 bypassed, then 1 refused, then 1 bypassed" traced blk mmblock "${BLK[@]}"
out=$SFY_LAST_OUT
check "...sendmmsg returned 8, the messages before the refused one" \
	grep -q "^sent 8 lens 16$" "$out"
check "...nothing after it was sent" sh -c "! grep -q 'reply m9|' '$out'"
check "...one sendmmsg system call ($(calls blk sendmmsg)), no sendmsg" \
	test "$(calls blk sendmmsg) $(calls blk sendmsg)" = "1 0"

finish
