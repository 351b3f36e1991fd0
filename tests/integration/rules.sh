#!/bin/bash
# Routing rules end to end (issue 12): two named chains whose proxies leave
# by different paths, direct, and block, decided by name, address and port.
#
#              10.231.1                    10.231.4
#   cli .1 ---------------- .2 pa .1 ---------------- .2 tgt
#       |                danted :1080                  |  10.231.9.0/24 and
#       |      10.231.2                    10.231.5    |  fd00:231:9::1..3 on lo
#       .1 --------------- .2 pb .1 ----------------- .2  whoami :8080 8081 25
#       |              microsocks :1080                |  3000-3002, udp echo :7,
#       |      10.231.6 (the direct path)              |  dns :53 (the client's
#       .1 --------------------------------------------.2  resolver)
#
# The target answers every TCP connection with "egress=SOURCE" (the peer
# address it sees) and every datagram with DATA|SOURCE: 10.231.4.1 means it
# came through danted (chain alpha), 10.231.5.1 through microsocks (chain
# beta), 10.231.6.1 straight from the client (direct); the IPv6 twins
# likewise. The control runs first prove the three paths look different.
# Every name is known to the proxies (/etc/hosts) and to the client's
# resolver (which logs each query), so only the route decides where a
# connection leaves; the resolver's log shows which names were looked up
# locally. Blocked destinations run under a packet capture of every
# interface of the client: nothing (no DNS query, no SYN) may leave, and a
# control run without the library proves the capture sees both.
#
# Every destination is also asked of `socksify --explain HOST:PORT`, whose
# route must agree with what the connection did.
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted microsocks curl tcpdump ss python3
sfy_begin
[ -x "$SOCKSIFY_BIN" ] || { echo "FAIL: $SOCKSIFY_BIN not built"; exit 1; }

C=$(sfy_ns cli) PA=$(sfy_ns pa) PB=$(sfy_ns pb) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$PA" 10.231.1 || exit 1
sfy_link "$C" "$PB" 10.231.2 || exit 1
sfy_link "$PA" "$T" 10.231.4 || exit 1
sfy_link "$PB" "$T" 10.231.5 || exit 1
sfy_link "$C" "$T" 10.231.6 || exit 1
A=10.231.1.2 B=10.231.2.2 RES=10.231.6.2
# The target's service addresses: the whole 10.231.9.0/24 is local to it
# (an address with a prefix on lo), and three IPv6 ones.
ip -n "$T" addr add 10.231.9.1/24 dev lo
for i in 1 2 3; do ip -n "$T" -6 addr add "fd00:231:9::$i/128" dev lo nodad; done
for hop in "$C 6" "$PA 4" "$PB 5"; do
	set -- $hop
	ip -n "$1" route add 10.231.9.0/24 via "10.231.$2.2"
	ip -n "$1" -6 route add fd00:231:9::/64 via "fd00:10:231:$2::2"
done

# Names: the same table for the proxies' /etc/hosts and the client's DNS.
cat >"$SFY_TMP/names" <<'EOF'
10.231.9.21 www.a.sfy.test deep.x.a.sfy.test other.sfy.test www.o.sfy.test
10.231.9.22 www.b.sfy.test deep.x.b.sfy.test b.sfy.test
10.231.9.23 www.d.sfy.test
10.231.9.24 bad.sfy.test
10.231.9.25 cdn.a.sfy.test cdn.d.sfy.test
10.231.9.26 la.a.sfy.test
10.231.9.27 ld.d.sfy.test
EOF
for ns in "$PA" "$PB"; do
	{ echo "127.0.0.1 localhost"; cat "$SFY_TMP/names"; } | sfy_etc "$ns" hosts
done
printf '127.0.0.1 localhost\n' | sfy_etc "$C" hosts
printf 'nameserver %s\noptions timeout:1 attempts:1\n' "$RES" | sfy_etc "$C" resolv.conf

cat >"$SFY_TMP/whoami.py" <<'EOF'
# whoami.py PORT...: every TCP connection gets an HTTP answer whose body is
# "egress=PEER dst=LOCAL port=PORT" (IPv4 and IPv6), one log line each.
import socket, sys, threading
def plain(a):
    return a[7:] if a.startswith("::ffff:") else a
def handle(c, peer, port):
    try:
        c.settimeout(3)
        data = b""
        while b"\r\n\r\n" not in data and b"\n\n" not in data:
            x = c.recv(4096)
            if not x:
                break
            data += x
    except OSError:
        pass
    body = "egress=%s dst=%s port=%d\n" % (plain(peer[0]), plain(c.getsockname()[0]), port)
    print(body.strip(), flush=True)
    try:
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
                  % len(body) + body.encode())
    except OSError:
        pass
    c.close()
def serve(port):
    l = socket.socket(socket.AF_INET6)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    l.bind(("::", port))
    l.listen(64)
    while True:
        c, peer = l.accept()
        threading.Thread(target=handle, args=(c, peer, port), daemon=True).start()
for p in sys.argv[2:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
serve(int(sys.argv[1]))
EOF
cat >"$SFY_TMP/dns.py" <<'EOF'
# dns.py ADDR NAMESFILE: answers A questions for the names in the hosts-style
# file (NXDOMAIN for others, empty answers for other types) and logs
# "query NAME TYPE" for every question.
import socket, struct, sys
names = {}
for line in open(sys.argv[2]):
    f = line.split()
    for n in f[1:]:
        names[n.lower()] = socket.inet_aton(f[0])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
while True:
    data, addr = s.recvfrom(65535)
    try:
        i, labels = 12, []
        while data[i]:
            labels.append(data[i + 1:i + 1 + data[i]].decode())
            i += data[i] + 1
        qtype = struct.unpack(">H", data[i + 1:i + 3])[0]
        q = data[12:i + 5]
    except (IndexError, UnicodeDecodeError, struct.error):
        continue
    name = ".".join(labels).lower()
    print("query", name, qtype, flush=True)
    if name not in names:
        s.sendto(data[:2] + b"\x81\x83" + struct.pack(">HHHH", 1, 0, 0, 0) + q, addr)
    elif qtype != 1:
        s.sendto(data[:2] + b"\x81\x80" + struct.pack(">HHHH", 1, 0, 0, 0) + q, addr)
    else:
        ans = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + names[name]
        s.sendto(data[:2] + b"\x81\x80" + struct.pack(">HHHH", 1, 1, 0, 0) + q + ans, addr)
EOF
sfy_bg whoami "$T" "$SFY_PY" -u "$SFY_TMP/whoami.py" 8080 8081 25 3000 3001 3002
sfy__served whoami "$T" 8080
sfy__served whoami "$T" 3002
sfy_bg dns "$T" "$SFY_PY" -u "$SFY_TMP/dns.py" "$RES" "$SFY_TMP/names"
sfy__served dns "$T" 53 10 udp
# UDP echo answering DATA|SENDER from the very address it was sent to (one
# socket per address: a reply from another source would be dropped by the
# relay and by socksify as not from the destination).
cat >"$SFY_TMP/uecho.py" <<'EOF'
import select, socket, sys
socks = []
for a in sys.argv[2:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a, int(sys.argv[1])))
    socks.append(s)
while True:
    for s in select.select(socks, [], [])[0]:
        data, addr = s.recvfrom(65535)
        s.sendto(data + b"|" + addr[0].encode(), addr)
EOF
sfy_bg uecho "$T" "$SFY_PY" -u "$SFY_TMP/uecho.py" 7 10.231.9.1 10.231.9.3 10.231.9.21 \
	10.231.9.22 10.231.9.23 10.231.9.24 10.231.9.100
sfy__served uecho "$T" 7 10 udp
sfy_danted alpha "$PA" "$A" 1080 none
sfy_microsocks beta "$PB" "$B" 1080
SFY_WATCH_LOGS="whoami dns alpha-dante beta"

# ------------------------------------------------------------ configs

yaml() {  # name: stdin -> $SFY_TMP/NAME.yaml (0600), timeouts appended
	{ cat; printf 'timeouts:\n  connect: 3s\n  handshake: 8s\n'; } >"$SFY_TMP/$1.yaml"
	chmod 600 "$SFY_TMP/$1.yaml"
}
# Remote DNS: both chains end in socks5h. No top-level proxies: default
# decides (allow-list mode). Rule numbers are in the comments; --explain
# and -v name them.
RULES_R='rules:
  - { match: "bad.sfy.test",            via: block  }   # 1
  - { match: "*:25",                    via: block  }   # 2
  - { match: "www.a.sfy.test:8081",     via: beta   }   # 3
  - { match: "*.a.sfy.test",            via: alpha  }   # 4
  - { match: "*.B.Sfy.Test.",           via: beta   }   # 5
  - { match: "*.d.sfy.test",            via: direct }   # 6
  - { match: "*:3000-3001",             via: alpha  }   # 7
  - { match: "10.231.9.1",              via: alpha  }   # 8
  - { match: "10.231.9.2/32:8080",      via: beta   }   # 9
  - { match: "10.231.9.0/28",           via: direct }   # 10
  - { match: "[fd00:231:9::1]:8080",    via: alpha  }   # 11
  - { match: "[fd00:231:9::]/64:8081",  via: beta   }   # 12
  - { match: "fd00:231:9::/64",         via: direct }   # 13'
yaml r <<EOF
chains:
  alpha: [ "socks5h://$A:1080" ]
  beta:  { chain: strict, proxies: [ "socks5h://$B:1080" ] }
$RULES_R
default: block
EOF
# The same rules with a top-level chain and no default: what no rule
# matches goes through proxies: (beta's proxy).
yaml top <<EOF
proxies: [ "socks5h://$B:1080" ]
chains:
  alpha: [ "socks5h://$A:1080" ]
  beta:  [ "socks5h://$B:1080" ]
$RULES_R
EOF
# First match wins: the same two rules in both orders.
for o in ab ba; do
	if [ $o = ab ]; then r1='"www.o.sfy.test", via: beta' r2='"*.o.sfy.test", via: alpha'
	else r1='"*.o.sfy.test", via: alpha' r2='"www.o.sfy.test", via: beta'; fi
	yaml "order$o" <<-EOF
		chains:
		  alpha: [ "socks5h://$A:1080" ]
		  beta:  [ "socks5h://$B:1080" ]
		rules:
		  - { match: $r1 }
		  - { match: $r2 }
		default: block
	EOF
done
# bypass: comes before the file's rules.
yaml byp <<EOF
chains:
  alpha: [ "socks5h://$A:1080" ]
bypass: [ 10.231.9.0/24 ]
rules:
  - { match: "10.231.9.1", via: alpha }
default: alpha
EOF
# no_proxy: env -- NO_PROXY entries as direct rules after -r.
{ cat "$SFY_TMP/r.yaml"; echo "no_proxy: env"; } >"$SFY_TMP/np.yaml"
chmod 600 "$SFY_TMP/np.yaml"
# Local DNS: the chains end in socks5 (names resolved here, addresses sent
# to the proxy); names are matched through what the resolver answered.
RULES_L='rules:
  - { match: "bad.sfy.test", via: block  }   # 1
  - { match: "*:25",         via: block  }   # 2
  - { match: "*.a.sfy.test", via: alpha  }   # 3
  - { match: "*.d.sfy.test", via: direct }   # 4'
yaml l <<EOF
chains:
  alpha: [ "socks5://$A:1080" ]
  beta:  [ "socks5://$B:1080" ]
$RULES_L
default: beta
EOF
# Local DNS allow-list: only the rules' names get anywhere.
yaml lblock <<EOF
chains:
  alpha: [ "socks5://$A:1080" ]
  beta:  [ "socks5://$B:1080" ]
$RULES_L
default: block
EOF

# ------------------------------------------------------------ helpers

# The launcher in the client namespace with ENVS (VAR=value words) added
# to its environment; like sfy_run.
ENVS=()
srun() {
	local pre=()
	[ "${SANITIZE:-}" = 1 ] && [ -n "${SFY_ASAN_RT:-}" ] && pre=(LD_PRELOAD="$SFY_ASAN_RT")
	timeout -k 2 "$SFY_CMD_TIMEOUT" ip netns exec "$C" env "${pre[@]}" "${ENVS[@]}" \
	    ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} \
	    ${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} "$SOCKSIFY_BIN" "$@"
}

egress_name() {  # source address the target saw -> the path
	case $1 in
	10.231.4.1 | fd00:10:231:4::1) echo alpha ;;
	10.231.5.1 | fd00:10:231:5::1) echo beta ;;
	10.231.6.1 | fd00:10:231:6::1) echo direct ;;
	*) echo "unknown-egress($1)" ;;
	esac
}

# What a finished command's output says happened: the path of the first
# "egress=" (TCP) or "|SOURCE" (UDP) answer, "block" when it failed with
# a refusal or an unknown name and got no answer, else "failed".
observed() {  # file rc
	local e
	e=$(grep -o 'egress=[0-9a-f:.]*' "$1" | head -n1)
	[ -n "$e" ] && { egress_name "${e#egress=}"; return; }
	e=$(grep -o 'reply: [^ ]*|[0-9a-f:.]*' "$1" | head -n1)
	[ -n "$e" ] && { egress_name "${e##*|}"; return; }
	if [ "$2" != 0 ] && grep -qiE 'refused|resolve host|EAI_NONAME|gaierror|EPERM|Name or service not known' "$1"; then
		echo block
	else
		echo failed
	fi
}

# The route --explain prints: the one word of alpha|beta|direct|block it
# uses ("none" or "ambiguous(...)" otherwise); with EXPLAIN_TOP set,
# "proxies" (the top-level chain) counts as that word.
explained() {  # file
	local w
	w=$(grep -owE "alpha|beta|direct|block${EXPLAIN_TOP:+|proxies}" "$1" |
		sed "s/^proxies\$/${EXPLAIN_TOP:-proxies}/" | sort -u)
	case $(printf '%s\n' "$w" | grep -c .) in
	0) echo none ;;
	1) echo "$w" ;;
	*) echo "ambiguous($(echo $w))" ;;
	esac
}

hostport() {  # host port -> host:port, [v6]:port
	case $1 in *:*) echo "[$1]:$2" ;; *) echo "$1:$2" ;; esac
}

# dest DESC WANT CONF HOST PORT [launcher options...]
# curl http://HOST:PORT/ under socksify -f CONF: the connection must leave
# by WANT (alpha, beta, direct) or be refused without a packet (block:
# under a capture of "tcp or udp", BLK_FILTER to narrow it), and
# `socksify --explain HOST:PORT` with the same options must say the same.
# EXPLAIN_RULE="rule N" also wants that rule named.
dest() {
	local desc=$1 want=$2 conf=$3 host=$4 port=$5 hp got n ex
	shift 5
	hp=$(hostport "$host" "$port")
	[ "$want" = block ] && sfy_capture_start blk "$C" any ${BLK_FILTER:-tcp or udp}
	sfy__exec srun -f "$SFY_TMP/$conf.yaml" "$@" -- curl -gsS --max-time 10 "http://$hp/"
	got=$(observed "$SFY_LAST_OUT" "$SFY_LAST_RC")
	if [ "$got" = "$want" ]; then sfy__pass "$desc: $want"
	else sfy__fail "$desc: $want" "went: $got"; fi
	if [ "$want" = block ]; then
		n=$(sfy_capture_stop blk)
		if [ "$n" = 0 ]; then sfy__pass "$desc: nothing sent"
		else sfy__fail "$desc: nothing sent" "$n packets"; sfy_capture_show blk; fi
	fi
	sfy__exec srun -f "$SFY_TMP/$conf.yaml" "$@" --explain "$hp"
	ex=$(explained "$SFY_LAST_OUT")
	# --explain exits 1 exactly when the destination is blocked.
	local want_rc=0
	[ "$got" = block ] && want_rc=1
	if [ "$SFY_LAST_RC" = "$want_rc" ] && [ "$ex" = "$got" ]; then
		sfy__pass "$desc: --explain agrees ($ex)"
	else
		sfy__fail "$desc: --explain agrees with the connection ($got)" "explain: $ex"
	fi
	if [ -n "${EXPLAIN_RULE:-}" ]; then
		if grep -qw -- "$EXPLAIN_RULE" "$SFY_LAST_OUT"; then sfy__pass "$desc: --explain names $EXPLAIN_RULE"
		else sfy__fail "$desc: --explain names $EXPLAIN_RULE" "not in its output"; fi
	fi
}

queried() {  # name: did the client's resolver get a question for it?
	grep -q "^query $1 " "$(sfy_logfile dns)"
}

# ------------------------------------------------------------ controls
echo "--- topology: three paths the target tells apart"
for p in "$C direct" "$PA alpha" "$PB beta"; do
	set -- $p
	expect_out "from the $2 side the target sees $2's address" "egress=" \
		sfy_direct "$1" curl -sS --max-time 5 http://10.231.9.21:8080/
	check "...which maps to $2" test "$(observed "$SFY_LAST_OUT" 0)" = "$2"
done
expect_out "client: IPv6 direct path" "egress=fd00:10:231:6::1" \
	sfy_direct "$C" curl -gsS --max-time 5 "http://[fd00:231:9::1]:8080/"
expect_out "the client's resolver answers every name" "10.231.9.24" \
	sfy_direct "$C" getent ahostsv4 bad.sfy.test
expect_out "chain alpha without rules (-x) leaves through danted" "egress=10.231.4.1" \
	srun -x "socks5h://$A:1080" -- curl -sS --max-time 10 http://www.b.sfy.test:8080/
expect_out "chain beta without rules (-x) leaves through microsocks" "egress=10.231.5.1" \
	srun -x "socks5h://$B:1080" -- curl -sS --max-time 10 http://www.a.sfy.test:8080/

echo "--- control: the capture sees a lookup and a SYN without the library"
sfy_capture_start ctl "$C" any tcp or udp
expect_out "bad.sfy.test is reachable directly without socksify" "egress=10.231.6.1" \
	sfy_direct "$C" curl -sS --max-time 5 http://bad.sfy.test:8080/
sfy_capture_stop ctl >/dev/null
n=$(tcpdump -nn -r "$SFY_TMP/ctl.pcap" 'udp port 53' 2>/dev/null | wc -l)
check "control: DNS packets seen ($n)" test "$n" -gt 0
n=$(tcpdump -nn -r "$SFY_TMP/ctl.pcap" 'tcp[tcpflags] & tcp-syn != 0' 2>/dev/null | wc -l)
check "control: SYNs seen ($n)" test "$n" -gt 0

echo "--- remote DNS: by name"
: >"$(sfy_logfile dns)"
EXPLAIN_RULE="rule 4" dest "www.a.sfy.test:8080 (*.a.sfy.test)" alpha r www.a.sfy.test 8080
dest "deep.x.a.sfy.test (two labels left of the suffix)" alpha r deep.x.a.sfy.test 8080
EXPLAIN_RULE="rule 3" dest "www.a.sfy.test:8081 (an earlier name:port rule)" beta r www.a.sfy.test 8081
EXPLAIN_RULE="rule 5" dest "www.b.sfy.test (rule written *.B.Sfy.Test.)" beta r www.b.sfy.test 8080
dest "WWW.B.SFY.TEST. (upper case, trailing dot)" beta r WWW.B.SFY.TEST. 8080
dest "b.sfy.test: *.b.sfy.test needs a label on the left: default" block r b.sfy.test 8080
EXPLAIN_RULE="rule 6" dest "www.d.sfy.test (*.d.sfy.test direct: resolved here)" direct r www.d.sfy.test 8080
dest "www.d.sfy.test:3000 (direct rule before the port range)" direct r www.d.sfy.test 3000
check "chain names were never looked up locally" sh -c \
	"! grep -qE '^query (www|deep\\.x)\\.[ab]\\.sfy\\.test ' '$(sfy_logfile dns)'"
check "the direct name was looked up locally" queried www.d.sfy.test

echo "--- remote DNS: blocked names and ports send nothing"
EXPLAIN_RULE="rule 1" dest "bad.sfy.test (name rule: no lookup, no SYN)" block r bad.sfy.test 8080
check "bad.sfy.test never reached the resolver" sh -c "! grep -q '^query bad' '$(sfy_logfile dns)'"
EXPLAIN_RULE="rule 2" dest "www.a.sfy.test:25 (*:25 before *.a.sfy.test)" block r www.a.sfy.test 25
dest "www.d.sfy.test:25 (*:25 before the direct rule)" block r www.d.sfy.test 25
dest "unmatched.sfy.test (default: block)" block r unmatched.sfy.test 8080
EXPLAIN_RULE="rule 7" dest "other.sfy.test:3000 (*:3000-3001)" alpha r other.sfy.test 3000
dest "other.sfy.test:3001 (upper end of the range)" alpha r other.sfy.test 3001
dest "other.sfy.test:3002 (past the range: default)" block r other.sfy.test 3002
dest "other.sfy.test:8080 (default)" block r other.sfy.test 8080
expect_out "getaddrinfo of a blocked name: EAI_NONAME" "EAI_NONAME" \
	srun -f "$SFY_TMP/r.yaml" -- "$SFY_PY" -c '
import socket
try:
    socket.getaddrinfo("bad.sfy.test", None)
    print("resolved")
except socket.gaierror as e:
    print("EAI_NONAME" if e.errno == socket.EAI_NONAME else e)'

echo "--- remote DNS: by address"
EXPLAIN_RULE="rule 8" dest "10.231.9.1 (address rule)" alpha r 10.231.9.1 8080
dest "10.231.9.2:8080 (CIDR with port)" beta r 10.231.9.2 8080
EXPLAIN_RULE="rule 10" dest "10.231.9.2:8081 (not that port: the /28)" direct r 10.231.9.2 8081
dest "10.231.9.3 (the /28)" direct r 10.231.9.3 8080
dest "10.231.9.3:25 (*:25 before the /28)" block r 10.231.9.3 25
dest "10.231.9.100 (outside every rule: default)" block r 10.231.9.100 8080
dest "10.231.9.1:3001 (the port range before the address rule)" alpha r 10.231.9.1 3001

echo "--- IPv6 CIDR rules"
EXPLAIN_RULE="rule 11" dest "[fd00:231:9::1]:8080 (bracketed address with port)" alpha r fd00:231:9::1 8080
EXPLAIN_RULE="rule 12" dest "[fd00:231:9::1]:8081 ([fd00:231:9::]/64:8081)" beta r fd00:231:9::1 8081
dest "[fd00:231:9::2]:8081 (the /64 with port)" beta r fd00:231:9::2 8081
EXPLAIN_RULE="rule 13" dest "[fd00:231:9::3]:8080 (unbracketed /64, no port)" direct r fd00:231:9::3 8080
dest "[fd00:231:9::3]:25 (*:25 first)" block r fd00:231:9::3 25
dest "[fd00:232::1]:8080 (no rule: default)" block r fd00:232::1 8080

echo "--- no default: the top-level proxies"
EXPLAIN_TOP=beta  # the top-level proxies: are beta's proxy
dest "unmatched.sfy.test without default: goes via proxies:" beta top www.o.sfy.test 8080
dest "10.231.9.100 without default: via proxies:" beta top 10.231.9.100 8080
dest "*.a.sfy.test still via alpha" alpha top www.a.sfy.test 8080
EXPLAIN_TOP=

echo "--- first match wins"
EXPLAIN_RULE="rule 1" dest "www.o.sfy.test, exact rule first" beta orderab www.o.sfy.test 8080
EXPLAIN_RULE="rule 1" dest "www.o.sfy.test, glob rule first" alpha orderba www.o.sfy.test 8080
EXPLAIN_RULE="rule 1" dest "bypass: comes before the file's rules" direct byp 10.231.9.1 8080

echo "--- -r and SOCKSIFY_RULES come first"
EXPLAIN_RULE="rule 1" dest "-r '*.b.sfy.test=alpha' overrides the file" alpha r www.b.sfy.test 8080 \
	-r '*.b.sfy.test=alpha'
dest "--rule 'www.d.sfy.test:8080=block' overrides a direct file rule" block r www.d.sfy.test 8080 \
	--rule 'www.d.sfy.test:8080=block'
dest "two -r rules: the first one wins" beta r 10.231.9.1 8080 -r '10.231.9.1=beta' -r '10.231.9.1=direct'
ENVS=(SOCKSIFY_RULES='*.b.sfy.test=alpha')
dest "SOCKSIFY_RULES='*.b.sfy.test=alpha' (launcher)" alpha r www.b.sfy.test 8080
ENVS=()
expect_out "SOCKSIFY_RULES without the launcher (LD_PRELOAD)" "egress=10.231.4.1" \
	sfy_preload "$C" SOCKSIFY_CONFIG="$SFY_TMP/r.yaml" SOCKSIFY_RULES='www.b.sfy.test=alpha, *:25=block' \
	-- curl -sS --max-time 10 http://www.b.sfy.test:8080/
dest "-r '*=direct' shadows the file: allowed" direct r www.a.sfy.test 8080 -r '*=direct'
srun -f "$SFY_TMP/r.yaml" -r '*=direct' -- true >"$SFY_TMP/shadow.out" 2>&1
check "-r '*=direct' shadowing the file warns in one line" \
	test "$(grep -ciE 'shadow|never match|matches everything' "$SFY_TMP/shadow.out")" = 1
srun -f "$SFY_TMP/r.yaml" -r '*.a.sfy.test=beta' -- true >"$SFY_TMP/noshadow.out" 2>&1
check "...a -r rule that shadows nothing does not" \
	test "$(grep -ciE 'shadow|never match|matches everything' "$SFY_TMP/noshadow.out")" = 0
fails_with "-r with an unknown chain: 125, naming it" "nosuchchain" \
	srun -f "$SFY_TMP/r.yaml" -r '*.a.sfy.test=nosuchchain' -- true
check "...exit 125" test "$SFY_LAST_RC" = 125

echo "--- no_proxy: env"
ENVS=(NO_PROXY='.b.sfy.test,10.231.9.1')
dest "NO_PROXY .b.sfy.test: www.b.sfy.test direct" direct np www.b.sfy.test 8080
dest "NO_PROXY .b.sfy.test: the domain itself too" direct np b.sfy.test 8080
dest "NO_PROXY 10.231.9.1: direct" direct np 10.231.9.1 8080
dest "NO_PROXY leaves other names alone" alpha np www.a.sfy.test 8080
dest "-r comes before NO_PROXY" beta np www.b.sfy.test 8080 -r 'www.b.sfy.test=beta'
dest "without no_proxy: env, NO_PROXY is ignored" beta r www.b.sfy.test 8080
ENVS=(no_proxy='www.a.sfy.test:8080')
dest "lower-case no_proxy with a port" direct np www.a.sfy.test 8080
ENVS=()

echo "--- -v names the rule"
expect_out "-v: a chained connection's log line names its rule" "rule 4" \
	srun -f "$SFY_TMP/r.yaml" -v -- curl -sS --max-time 10 http://www.a.sfy.test:8080/
expect_out "-v: a routed direct connection's too" "rule 6" \
	srun -f "$SFY_TMP/r.yaml" -v -- curl -sS --max-time 10 http://www.d.sfy.test:8080/
srun -f "$SFY_TMP/r.yaml" -- "$SFY_PY" -c '
import socket
for i in range(3):
    try:
        socket.create_connection(("10.231.9.100", 8080), timeout=5)
    except OSError as e:
        print("connect:", e)' >"$SFY_TMP/blocklog.out" 2>&1
check "a blocked destination: refused 3 times, one warn line" \
	test "$(grep -c '^connect:.*refused' "$SFY_TMP/blocklog.out"):$(grep -c '^socksify\[' "$SFY_TMP/blocklog.out")" = 3:1

echo "--- local DNS: names matched through the resolver's answers"
: >"$(sfy_logfile dns)"
EXPLAIN_RULE="rule 3" dest "la.a.sfy.test (local DNS, *.a.sfy.test)" alpha l la.a.sfy.test 8080
check "...looked up locally" queried la.a.sfy.test
dest "ld.d.sfy.test (local DNS, *.d.sfy.test direct; default a chain)" direct l ld.d.sfy.test 8080
dest "www.b.sfy.test (local DNS, no rule: default beta)" beta l www.b.sfy.test 8080
dest "10.231.9.26 by address, no name known: default" beta l 10.231.9.26 8080
: >"$(sfy_logfile dns)"
dest "bad.sfy.test (local DNS: no lookup, no SYN)" block l bad.sfy.test 8080
check "bad.sfy.test never reached the resolver" sh -c "! grep -q '^query bad' '$(sfy_logfile dns)'"
BLK_FILTER=tcp dest "la.a.sfy.test:25 (local DNS, *:25: no SYN)" block l la.a.sfy.test 25
dest "allow-list, local DNS: la.a.sfy.test via alpha" alpha lblock la.a.sfy.test 8080
dest "allow-list, local DNS: ld.d.sfy.test direct" direct lblock ld.d.sfy.test 8080
BLK_FILTER=tcp dest "allow-list, local DNS: www.b.sfy.test blocked" block lblock www.b.sfy.test 8080
# Two names, one address (a CDN): the most restrictive verdict wins.
PYCONN='import socket, sys
for n in sys.argv[2:]:
    socket.getaddrinfo(n, 8080, socket.AF_INET)
s = socket.create_connection((sys.argv[1], 8080), timeout=10)
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
print(s.makefile("rb").read().decode())'
expect_out "CDN address known only as cdn.d.sfy.test: direct" "egress=10.231.6.1" \
	srun -f "$SFY_TMP/l.yaml" -- "$SFY_PY" -c "$PYCONN" 10.231.9.25 cdn.d.sfy.test
expect_out "CDN address known as cdn.d and cdn.a: the chain wins" "egress=10.231.4.1" \
	srun -f "$SFY_TMP/l.yaml" -- "$SFY_PY" -c "$PYCONN" 10.231.9.25 cdn.d.sfy.test cdn.a.sfy.test

echo "--- rules across fork and exec"
cat >"$SFY_TMP/tree.py" <<'EOF'
# tree.py CURL NAME: connections from the process, a fork()ed child and
# exec'd programs (curl, and this script in "who" mode, one of them with an
# empty environment); prints "TAG: egress=..." or "TAG: error ERRNO" lines.
# NAME is resolved by the parent; the children connect to its address.
import errno, os, socket, subprocess, sys
def who(tag, host, port=8080):
    try:
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        body = s.makefile("rb").read().decode()
        print(tag + ":", [l for l in body.splitlines() if l.startswith("egress=")][0], flush=True)
    except socket.gaierror as e:
        print(tag + ": error gaierror", e, flush=True)
    except OSError as e:
        print(tag + ": error", errno.errorcode.get(e.errno, e.errno), e, flush=True)
if sys.argv[1] == "who":
    who(*sys.argv[2:])
    sys.exit(0)
curl = sys.argv[1]
def ex(tag, host, port=8080, env=None):
    subprocess.run([sys.executable, __file__, "who", tag, host, str(port)], env=env)
def excurl(tag, url):
    r = subprocess.run([curl, "-gsS", "--max-time", "10", url], capture_output=True, text=True)
    print(tag + ":", " ".join((r.stdout + r.stderr).split()), flush=True)
who("parent b", "www.b.sfy.test")
addr = socket.getaddrinfo(sys.argv[2], 8080, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
pid = os.fork()
if pid == 0:
    who("child a", "www.a.sfy.test")
    who("child d", "www.d.sfy.test")
    who("child addr", addr)
    who("child bad", "bad.sfy.test")
    os._exit(0)
os.waitpid(pid, 0)
excurl("exec curl a", "http://www.a.sfy.test:8080/")
excurl("exec curl addr", "http://%s:8080/" % addr)
ex("exec bad", "bad.sfy.test")
ex("exec 25", "www.a.sfy.test", 25)
ex("exec-empty-env d", "www.d.sfy.test", env={})
ex("exec-empty-env addr", addr, env={})
ex("exec-empty-env 25", "www.a.sfy.test", 25, env={})
EOF
CURL=$(command -v curl)
sfy__exec srun -f "$SFY_TMP/r.yaml" -- "$SFY_PY" "$SFY_TMP/tree.py" "$CURL" www.b.sfy.test
cp "$SFY_LAST_OUT" "$SFY_TMP/tree-remote.out"
tree_line() {  # file tag want desc
	local l
	l=$(grep "^$2:" "$1" | head -n1)
	if [ "$3" = block ]; then
		case $l in
		*egress=*) sfy__fail "$4: $2 blocked" "got: $l" ;;
		*ECONNREFUSED* | *gaierror* | *"resolve host"*) sfy__pass "$4: $2 blocked" ;;
		*) sfy__fail "$4: $2 blocked" "got: ${l:-nothing}" ;;
		esac
		return
	fi
	if [ "$(egress_name "$(printf '%s' "$l" | grep -o 'egress=[0-9a-f:.]*' | cut -d= -f2)")" = "$3" ]; then
		sfy__pass "$4: $2 via $3"
	else
		sfy__fail "$4: $2 via $3" "got: ${l:-nothing}"
	fi
}
for c in "parent b:beta" "child a:alpha" "child d:direct" "child addr:beta" "child bad:block" \
	"exec curl a:alpha" "exec curl addr:beta" "exec bad:block" "exec 25:block" \
	"exec-empty-env d:direct" "exec-empty-env addr:beta" "exec-empty-env 25:block"; do
	tree_line "$SFY_TMP/tree-remote.out" "${c%:*}" "${c##*:}" "remote tree"
done
# Local DNS: the parent resolves la.a.sfy.test; its children connect to
# the bare address and must still be routed by that name (alpha), where
# the address alone would take the default (beta).
sfy__exec srun -f "$SFY_TMP/l.yaml" -- "$SFY_PY" "$SFY_TMP/tree.py" "$CURL" la.a.sfy.test
cp "$SFY_LAST_OUT" "$SFY_TMP/tree-local.out"
for c in "parent b:beta" "child a:alpha" "child d:direct" "child addr:alpha" "child bad:block" \
	"exec curl a:alpha" "exec curl addr:alpha" "exec bad:block" "exec 25:block" \
	"exec-empty-env d:direct" "exec-empty-env addr:alpha" "exec-empty-env 25:block"; do
	tree_line "$SFY_TMP/tree-local.out" "${c%:*}" "${c##*:}" "local tree"
done

echo "--- UDP under rules"
cat >"$SFY_TMP/udp.py" <<'EOF'
# udp.py HOST:PORT...: one socket per argument ("+" joins it to the
# previous one's socket); sendto, then the reply or the errno.
import errno, socket, sys
s = None
for a in sys.argv[1:]:
    same = a.startswith("+")
    host, port = a.lstrip("+").rsplit(":", 1)
    if not same or s is None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
    try:
        s.sendto(b"ping", (host, int(port)))
        print(a + ": reply:", s.recv(200).decode(), flush=True)
    except socket.gaierror as e:
        print(a + ": gaierror", e, flush=True)
    except OSError as e:
        print(a + ": error", errno.errorcode.get(e.errno, e.errno), flush=True)
EOF
sfy_capture_start udpcap "$C" any udp and not port 53
sfy__exec srun -f "$SFY_TMP/r.yaml" -- "$SFY_PY" "$SFY_TMP/udp.py" www.a.sfy.test:7 10.231.9.1:7 \
	www.d.sfy.test:7 10.231.9.3:7 10.231.9.100:7 bad.sfy.test:7 www.a.sfy.test:7 +www.b.sfy.test:7
sfy_capture_stop udpcap >/dev/null
cp "$SFY_LAST_OUT" "$SFY_TMP/udp.out"
udp_line() {  # arg want desc
	local l got
	l=$(grep -F -- "$1: " "$SFY_TMP/udp.out" | head -n1)
	case $l in
	*"reply:"*) got=$(egress_name "${l##*|}") ;;
	*EPERM* | *gaierror*) got=block ;;
	*) got="failed" ;;
	esac
	if [ "$got" = "$2" ]; then sfy__pass "UDP $3: $2"
	else sfy__fail "UDP $3: $2" "got: ${l:-nothing}"; fi
}
udp_line www.a.sfy.test:7 alpha "to a chain name (danted's UDP ASSOCIATE)"
udp_line 10.231.9.1:7 alpha "to a chain address"
udp_line www.d.sfy.test:7 direct "to a direct name (resolved here, sent directly)"
udp_line 10.231.9.3:7 direct "to a direct address"
udp_line 10.231.9.100:7 block "to a blocked address: EPERM"
udp_line bad.sfy.test:7 block "to a blocked name: no address"
grep -qF "10.231.9.100:7: error EPERM" "$SFY_TMP/udp.out" ||
	sfy__fail "UDP to a blocked address: sendto EPERM" "see $SFY_TMP/udp.out"
udp_line +www.b.sfy.test:7 block "on a socket associated with alpha, to beta: EPERM"
n=$(tcpdump -nn -r "$SFY_TMP/udpcap.pcap" 'dst host 10.231.9.100 or dst host 10.231.9.24' 2>/dev/null | wc -l)
check "UDP: nothing sent towards the blocked destinations ($n)" test "$n" = 0
n=$(tcpdump -nn -r "$SFY_TMP/udpcap.pcap" "dst host 10.231.9.21 or dst host 10.231.9.1" 2>/dev/null | wc -l)
check "UDP: nothing sent directly to the chain's destinations ($n)" test "$n" = 0

# ------------------------------------------------------------ --check
# --check walks every chain a route can use: the named ones here (no
# top-level proxies), each under its own heading; a dead chain makes it 1.
yaml chk <<EOF
chains:
  alpha: [ "socks5h://$A:1080" ]
  beta:  [ "socks5h://$B:1080" ]
default: alpha
EOF
sfy__exec srun -f "$SFY_TMP/chk.yaml" --check
cp "$SFY_LAST_OUT" "$SFY_TMP/chk.out"
check "--check: both named chains usable (exit $SFY_LAST_RC)" test "$SFY_LAST_RC" = 0
check "--check: a heading per chain" grep -q '^== beta' "$SFY_TMP/chk.out"
n=$(grep -c '^hop 1 .* ok ' "$SFY_TMP/chk.out")
check "--check: hop 1 of each chain ok ($n)" test "$n" = 2
yaml chkdead <<EOF
chains:
  alpha: [ "socks5h://$A:1080" ]
  dead:  [ "socks5h://$A:1" ]
default: alpha
rules:
  - { match: "*.x.sfy.test", via: dead }
EOF
sfy__exec srun -f "$SFY_TMP/chkdead.yaml" --check
cp "$SFY_LAST_OUT" "$SFY_TMP/chkdead.out"
check "--check: a dead named chain fails the check (exit $SFY_LAST_RC)" test "$SFY_LAST_RC" = 1
check "--check: the dead chain's hop is named FAIL" grep -q '^hop 1 .*:1 .*FAIL' "$SFY_TMP/chkdead.out"

finish
