#!/bin/bash
# The pipelining probe learns only from evidence (SFY_PIPE_STEPWISE /
# SFY_PIPE_OK), never from a slow target.
#
#   cli 10.215.1.1 ---- 10.215.1.2 prx 10.215.2.1 ---- 10.215.2.2 tgt
#                       danted :1080                    echo :7
#                       microsocks :1081
#                       slow dns 127.0.0.1:53
#
# danted is asked for slowN.sfy.test, which its name server answers after
# 1 s (danted looks a name up twice): its CONNECT reply comes 2 s late, past the 1 s probe window, though
# danted took our pipelined request. (A slow target, as the proxy sees it:
# this kernel has no netem and there is no packet filter to delay the TCP
# handshake itself, and a late accept() does not delay it.) Each connect
# asks for another name so no cache in danted makes a later one fast.
# microsocks parses its first read (greeting + request) as the greeting
# only and goes silent: it needs step by step.
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted microsocks tcpdump python3
sfy_begin
[ -x "$SFY_TOOLS/tcpclient" ] || { echo "FAIL: $SFY_TOOLS/tcpclient not built"; exit 1; }

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$P" 10.215.1 || exit 1
sfy_link "$P" "$T" 10.215.2 || exit 1
PRX=10.215.1.2 TGT=10.215.2.2
printf 'nameserver 127.0.0.1\noptions timeout:5 attempts:1\n' | sfy_etc "$P" resolv.conf
printf '127.0.0.1 localhost\n' | sfy_etc "$P" hosts

cat >"$SFY_TMP/slowdns.py" <<'EOC'
# slowdns.py ADDR DELAY: *.sfy.test A -> ADDR after DELAY seconds, each
# query on its own thread; AAAA -> no data at once (a resolver may ask one
# after the other: the whole lookup takes DELAY).
import socket, struct, sys, threading, time
addr, delay = socket.inet_aton(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))

def answer(q, src):
    qid, flags = struct.unpack("!HH", q[:4])
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode())
        i += 1 + q[i]
    qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
    question = q[12:i + 5]
    name = ".".join(labels)
    print("query", name, qtype, flush=True)
    if qtype == 1:
        time.sleep(delay)
    ok = name.endswith(".sfy.test")
    an = b""
    if ok and qtype == 1:
        an = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + addr
    hdr = struct.pack("!HHHHHH", qid, 0x8180 if ok else 0x8183, 1, 1 if an else 0, 0, 0)
    s.sendto(hdr + question + an, src)

while True:
    q, src = s.recvfrom(512)
    threading.Thread(target=answer, args=(q, src), daemon=True).start()
EOC
cat >"$SFY_TMP/s5time.py" <<'EOC'
# s5time.py PROXY PORT NAME: a plain SOCKS5 CONNECT to NAME:7, step by step;
# prints how long the CONNECT reply took, in ms.
import socket, struct, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=15)
c.sendall(b"\x05\x01\x00")
assert c.recv(2) == b"\x05\x00"
name = sys.argv[3].encode()
c.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack("!H", 7))
t0 = time.monotonic()
rep = c.recv(10)
assert rep[:2] == b"\x05\x00", rep
print("reply_ms", int((time.monotonic() - t0) * 1000))
EOC
cat >"$SFY_TMP/three.py" <<'EOC'
# three.py PORT NAME...: one connect + echo round trip per name, in order,
# in this one process (what is learned in memory carries over).
import socket, sys
port = int(sys.argv[1])
for name in sys.argv[2:]:
    c = socket.create_connection((name, port), timeout=15)
    c.sendall(b"hello\n")
    assert c.recv(99) == b"hello\n"
    c.close()
    print("ok", name, flush=True)
EOC
sfy_bg dns "$P" "$SFY_PY" "$SFY_TMP/slowdns.py" "$TGT" 1
sfy__served dns "$P" 53 10 udp
sfy_echo echo "$T" 7
sfy_danted dante "$P" "$PRX" 1080 none
sfy_microsocks ms "$P" "$PRX" 1081

sfy_conf dante strict - "socks5h://$PRX:1080"
sfy_conf ms strict - "socks5h://$PRX:1081"
# The state a run learns, kept apart from the user's and from other runs.
export XDG_CACHE_HOME=$SFY_TMP/cache
SYN='tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn and dst port 7'

echo "--- microsocks: learned step by step from evidence, no hang"
ok "3 sequential round trips through microsocks in one process" \
	sfy_run "$C" -vv -f "$SFY_TMP/ms.yaml" -- \
	"$SFY_TOOLS/tcpclient" --host "$TGT" --port 7 --count 3 --timeout-ms 8000
out=$SFY_LAST_OUT
check "it took well under the timeouts (${SFY_LAST_MS}ms)" test "$SFY_LAST_MS" -lt 6000
check "microsocks was learned as step-by-step" \
	grep -q "$PRX:1081 ignored pipelined bytes; negotiating step by step" "$out"
check "learned once, then used" test "$(grep -c 'racing a step-by-step' "$out")" -eq 1
check "remembered for later runs" \
	grep -Eq "^socks5h? ${PRX//./\\.} 1081 stepwise [0-9]+\$" "$XDG_CACHE_HOME/socksify/stepwise"

echo "--- danted, its CONNECT reply 2 s late: nothing learned, at most one extra attempt"
ok "control: danted reaches slow0.sfy.test" \
	sfy_direct "$C" "$SFY_PY" "$SFY_TMP/s5time.py" "$PRX" 1080 slow0.sfy.test
ms=$(awk '/reply_ms/ {print $2}' "$SFY_LAST_OUT")
check "control: danted's CONNECT reply came ${ms}ms late (past the 1 s window)" \
	test "${ms:-0}" -ge 1500
sfy_capture_start syn "$T" "$(sfy_ifname "$T" "$P")" "$SYN"
ok "3 sequential connects through danted in one process" \
	sfy_run "$C" -vv -f "$SFY_TMP/dante.yaml" -- \
	"$SFY_PY" "$SFY_TMP/three.py" 7 slow1.sfy.test slow2.sfy.test slow3.sfy.test
out=$SFY_LAST_OUT
n=$(sfy_capture_stop syn)
check "nothing learned as step-by-step" bash -c "! grep -q 'step by step from now on' '$out'"
check "not remembered as step-by-step" \
	bash -c "! grep -q ' $PRX 1080 stepwise ' '$XDG_CACHE_HOME/socksify/stepwise'"
check "the race ran once, the first time only" \
	test "$(grep -c 'racing a step-by-step' "$out")" -eq 1
check "the target saw at most 2 attempts the first time and 1 afterwards ($n SYNs for 3 connects)" \
	test "$n" -le 4

finish
