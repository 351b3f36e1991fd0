#!/bin/bash
# libresolv's raw queries in remote-DNS mode (issue 13): res_query,
# res_search, res_querydomain and res_send are answered by the in-library
# DNS responder -- A with the same fake address getaddrinfo gives, SRV (apt's
# _http._tcp lookup) with an instant empty answer (h_errno NO_DATA), a
# blocked name with NXDOMAIN (HOST_NOT_FOUND) -- and not one DNS packet
# leaves the client. A control run without the library asks the real
# server (so the capture would see a leak); with dns_responder: off the
# calls fail with NO_RECOVERY as before, still without a packet.
#
#   cli 10.218.1.1 ---- 10.218.1.2 dnsn: DNS :53 (every A -> 10.218.1.2)
# The proxy's address is never contacted: no connection is made.
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd tcpdump python3
sfy_begin
[ -x "$SOCKSIFY_BIN" ] || { echo "FAIL: $SOCKSIFY_BIN not built"; exit 1; }

C=$(sfy_ns cli) D=$(sfy_ns dnsn) || exit 1
sfy_link "$C" "$D" 10.218.1 || exit 1
DNS=10.218.1.2
printf 'nameserver %s\nsearch corp.test\noptions timeout:1 attempts:1\n' "$DNS" |
	sfy_etc "$C" resolv.conf
printf '127.0.0.1 localhost\n' | sfy_etc "$C" hosts
sfy_bg dns-d "$D" "$SFY_PY" -u "$SFY_TOP/tests/tools/udpserver.py" dns 53 "$DNS"
sfy__served dns-d "$D" 53 10 udp

sfy_conf remote strict - "socks5h://192.0.2.1:1080"
cat >>"$SFY_TMP/remote.yaml" <<EOF
rules:
  - { match: "blocked.sfy.test", via: block }
EOF
sfy_conf off strict - "socks5h://192.0.2.1:1080"
echo "dns_responder: off" >>"$SFY_TMP/off.yaml"
R=(-f "$SFY_TMP/remote.yaml")

cat >"$SFY_TMP/res.py" <<'EOF'
# res.py query|search|send|gai NAME [TYPE]: one libresolv call (class IN,
# TYPE A=1 by default); prints the answer's records (A as an address, any
# other type as its number), its rcode, and the time taken; or the error.
import ctypes, errno, socket, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.__h_errno_location.restype = ctypes.POINTER(ctypes.c_int)
what, name = sys.argv[1], sys.argv[2]
qtype = int(sys.argv[3]) if len(sys.argv) > 3 else 1
if what == "gai":
    print("addr:", socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])
    sys.exit(0)
ans = ctypes.create_string_buffer(4096)
t0 = time.monotonic()
if what == "query":
    n = libc.res_query(name.encode(), 1, qtype, ans, 4096)
elif what == "search":
    n = libc.res_search(name.encode(), 1, qtype, ans, 4096)
else:
    q = ctypes.create_string_buffer(512)
    m = libc.res_mkquery(0, name.encode(), 1, qtype, None, 0, None, q, 512)
    if m < 0:
        sys.exit("res_mkquery failed")
    n = libc.res_send(q, m, ans, 4096)
ms = (time.monotonic() - t0) * 1000
print("ms: %d" % ms)
if n < 0:
    e = ctypes.get_errno()
    print("error: h_errno", libc.__h_errno_location()[0], "errno", errno.errorcode.get(e, e))
    sys.exit(1)
m = ans.raw[:n]
flags, qd, an = struct.unpack("!HHH", m[2:8])
print("rcode:", flags & 15, "answers:", an)
def skip(i):
    while m[i]:
        if m[i] & 0xc0 == 0xc0:
            return i + 2
        i += 1 + m[i]
    return i + 1
i = 12
for _ in range(qd):
    i = skip(i) + 4
for _ in range(an):
    i = skip(i)
    t, c, ttl, rdlen = struct.unpack("!HHIH", m[i:i + 10])
    i += 10
    print("A:" if t == 1 else "type %d:" % t, socket.inet_ntoa(m[i:i + 4]) if t == 1 else rdlen)
    i += rdlen
EOF

# Control: without socksify the same calls reach the server.
sfy_capture_start ctl "$C" any port 53
expect_out "control: res_query without socksify is answered by the server" "A: $DNS" \
	sfy_direct "$C" "$SFY_PY" "$SFY_TMP/res.py" query www.sfy.test
n=$(sfy_capture_stop ctl)
check "control: the capture sees its packets ($n)" test "$n" -gt 0

sfy_capture_start res "$C" any port 53
expect_out "res_query A: a fake address" "A: 224." \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/res.py" query www.sfy.test
# the shared table: in one tree, a name another process looked up first
# takes the first address; res_query's answer is then the one getaddrinfo
# in a third process gives (separate tables would both start afresh)
ok "...one tree: getaddrinfo(other), res_query(www), getaddrinfo(www)" \
	sfy_run "$C" "${R[@]}" -- sh -c "
		\"$SFY_PY\" \"$SFY_TMP/res.py\" gai other.sfy.test | sed 's/^addr:/other:/'
		\"$SFY_PY\" \"$SFY_TMP/res.py\" query www.sfy.test | sed -n 's/^A: /res: /p'
		\"$SFY_PY\" \"$SFY_TMP/res.py\" gai www.sfy.test"
cp "$SFY_LAST_OUT" "$SFY_TMP/same.out"
o=$(sed -n 's/^other: //p' "$SFY_TMP/same.out")
a=$(sed -n 's/^res: //p' "$SFY_TMP/same.out") b=$(sed -n 's/^addr: //p' "$SFY_TMP/same.out")
check "...res_query's address is getaddrinfo's, not other's ($a = $b != $o)" \
	test -n "$a" -a -n "$o" -a "$a" = "$b" -a "$a" != "$o"

fails_with "res_query SRV _http._tcp.deb.debian.org: NO_DATA (apt's lookup)" \
	"error: h_errno 4" \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/res.py" query _http._tcp.deb.debian.org 33
ms=$(sed -n 's/^ms: //p' "$SFY_LAST_OUT")
check "...at once (${ms} ms; the resolver would wait 1 s)" test -n "$ms" -a "${ms:-999}" -lt 700
expect_out "res_send SRV: the reply itself, NOERROR without records" "rcode: 0 answers: 0" \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/res.py" send _http._tcp.deb.debian.org 33
expect_out "res_search \"intranet\" (search corp.test): a fake address" "A: 224." \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/res.py" search intranet
expect_out "res_send A: a fake address" "A: 224." \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/res.py" send www.sfy.test
expect_out "res_query of an IP-address name: the address itself" "A: 10.1.2.3" \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/res.py" query 10.1.2.3
fails_with "res_query of a blocked name: HOST_NOT_FOUND" "error: h_errno 1" \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/res.py" query blocked.sfy.test
expect_out "res_send of a blocked name: NXDOMAIN" "rcode: 3 answers: 0" \
	sfy_run "$C" "${R[@]}" -- "$SFY_PY" "$SFY_TMP/res.py" send blocked.sfy.test
expect_out "without the launcher (LD_PRELOAD): answered" "A: 224." \
	sfy_preload "$C" SOCKSIFY_PROXY=socks5h://192.0.2.1:1080 -- \
	"$SFY_PY" "$SFY_TMP/res.py" query www.sfy.test
fails_with "dns_responder: off: res_query fails with NO_RECOVERY" "error: h_errno 3" \
	sfy_run "$C" -f "$SFY_TMP/off.yaml" -- "$SFY_PY" "$SFY_TMP/res.py" query www.sfy.test
n=$(sfy_capture_stop res)
if ! check "no DNS packet left the client ($n)" test "$n" -eq 0; then
	sfy_capture_show res
fi

finish
