#!/bin/bash
# No DNS packet leaves the client in remote mode: tcpdump on every interface
# of the client namespace, filter "port 53" (UDP and TCP), during a whole
# name-based run (curl, wget, python, node, git, ssh, getent, dnsprobe with
# every resolver entry point). The client's resolver is 10.203.1.53, given a
# static neighbour entry so that a query really goes out on the wire (a
# control run without socksify proves the capture sees it).
#
#   cli 10.203.1.1 ---- 10.203.1.2 prx 10.203.2.1 ---- 10.203.2.2 tgt
#   resolv.conf ->      danted :1080 (SOCKS5)            http :8080, sshd :22
#   10.203.1.53         /etc/hosts: target/git/ssh.sfy.test -> tgt
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted curl wget git node ssh /usr/sbin/sshd getent tcpdump ss
sfy_begin
[ -x "$SOCKSIFY_BIN" ] || { echo "FAIL: $SOCKSIFY_BIN not built"; exit 1; }
[ -x "$SFY_TOOLS/dnsprobe" ] || { echo "FAIL: $SFY_TOOLS/dnsprobe not built"; exit 1; }

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$P" 10.203.1 || exit 1
sfy_link "$P" "$T" 10.203.2 || exit 1
PRX=10.203.1.2 TGT=10.203.2.2
sfy_wire_dns "$C" "$P" 10.203.1
printf '127.0.0.1 localhost\n%s target.sfy.test git.sfy.test ssh.sfy.test\n' "$TGT" |
	sfy_etc "$P" hosts

sfy_git_repo repo
sfy_http web "$T" 8080
sfy_sshd sshd "$T" "$TGT" 22
sfy_danted dante "$P" "$PRX" 1080 none
sfy_conf s5h strict - "socks5h://$PRX:1080"
F=(-f "$SFY_TMP/s5h.yaml")
mapfile -t SSHO < <(sfy_ssh_opts)
URL=http://target.sfy.test:8080/

echo "--- control: the capture sees a direct lookup"
sfy_capture_start ctl "$C" any port 53
fails "direct lookup (no socksify) fails" sfy_direct "$C" getent hosts target.sfy.test
n=$(sfy_capture_stop ctl)
check "control capture saw DNS queries ($n packets)" test "$n" -gt 0

echo "--- the name-based run under capture"
sfy_capture_start leak "$C" any port 53
expect_out "curl" "$SFY_TOKEN" sfy_run "$C" "${F[@]}" -- curl -sS --max-time 20 "$URL"
expect_out "wget" "$SFY_TOKEN" sfy_run "$C" "${F[@]}" -- wget -qO- -T 20 "$URL"
expect_out "python urllib" "$SFY_TOKEN" sfy_run "$C" "${F[@]}" -- "$SFY_PY" -c \
	'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=20).read().decode())' "$URL"
expect_out "python socket.create_connection + getaddrinfo(AF_INET6)" "fd73:6f63:6b73::" \
	sfy_run "$C" "${F[@]}" -- "$SFY_PY" -c '
import socket
socket.create_connection(("target.sfy.test", 8080), timeout=20).close()
print(socket.getaddrinfo("target.sfy.test", 80, socket.AF_INET6)[0][4][0])'
expect_out "python asyncio" "$SFY_TOKEN" sfy_run "$C" "${F[@]}" -- "$SFY_PY" -c '
import asyncio
async def main():
    r, w = await asyncio.open_connection("target.sfy.test", 8080)
    w.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    print((await r.read()).decode())
asyncio.run(main())'
expect_out "node" "$SFY_TOKEN" sfy_run "$C" "${F[@]}" -- node -e \
	'require("http").get(process.argv[1], r => { let d = ""; r.on("data", c => d += c);
	 r.on("end", () => console.log(d)); })' "$URL"
expect_out "git clone" "$SFY_TOKEN" sfy_run "$C" "${F[@]}" -- sh -c \
	'HOME=$2 GIT_CONFIG_NOSYSTEM=1 git clone -q "$3" "$1" && cat "$1/README"' \
	sh "$SFY_TMP/clone" "$SFY_TMP" http://git.sfy.test:8080/repo.git
expect_out "ssh" "$SFY_TOKEN" sfy_run "$C" "${F[@]}" -- ssh "${SSHO[@]}" root@ssh.sfy.test echo "$SFY_TOKEN"
for db in hosts ahosts ahostsv4 ahostsv6; do
	ok "getent $db" sfy_run "$C" "${F[@]}" -- getent "$db" some.other.name
done
expect_out "dnsprobe: every entry point" "OK: 0 failure" \
	sfy_run "$C" "${F[@]}" -- "$SFY_TOOLS/dnsprobe" target.sfy.test
expect_out "dnsprobe without the launcher" "OK: 0 failure" \
	sfy_preload "$C" SOCKSIFY_PROXY="socks5h://$PRX:1080" -- "$SFY_TOOLS/dnsprobe" x.example
expect_out "getaddrinfo_a (glibc's own resolver threads): fake addresses" "OK" \
	sfy_run "$C" "${F[@]}" -- "$SFY_TOOLS/gaiaprobe" target.sfy.test a.example b.example
check "...the program's notification thread attributes stay joinable" \
	grep -qx "attr: joinable" "$SFY_LAST_OUT"
fails "a 300-byte name" sfy_run "$C" "${F[@]}" -- getent ahosts "$(printf 'a%.0s' $(seq 300))"
fails "a name with a space" sfy_run "$C" "${F[@]}" -- getent ahosts "bad name.example"
n=$(sfy_capture_stop leak)
if ! check "zero packets to port 53 during the whole run ($n)" test "$n" -eq 0; then
	sfy_capture_show leak
fi

echo "--- a program's own resolver (UDP to port 53): answered here, or blocked"
# The in-library responder answers the system nameserver's queries with
# the fake address; with dns_responder: off they are refused. Either way
# no packet leaves.
sfy_conf nores strict - "socks5h://$PRX:1080"
echo "dns_responder: off" >>"$SFY_TMP/nores.yaml"
sfy_capture_start dig "$C" any port 53
expect_out "dig target.sfy.test is answered with a fake address" "224." \
	sfy_run "$C" "${F[@]}" -- dig +short +tries=1 +time=5 target.sfy.test
fails "dig target.sfy.test with dns_responder: off is refused" \
	sfy_run "$C" -f "$SFY_TMP/nores.yaml" -- dig +tries=1 +time=1 target.sfy.test
n=$(sfy_capture_stop dig)
if ! check "dig: zero packets to port 53 ($n)" test "$n" -eq 0; then
	sfy_capture_show dig
fi

echo "--- a bypass rule over the nameserver does not open port 53"
# The nameserver's subnet is bypassed; only a rule that names port 53 lets
# a query out directly (and proves this capture sees one).
# (dns_responder: off: with it on, the responder answers the system
# nameserver's queries before any rule is looked at.)
sfy_conf byp strict - "socks5h://$PRX:1080"
printf 'bypass: [10.203.1.0/24]\ndns_responder: off\n' >>"$SFY_TMP/byp.yaml"
sfy_conf byp53 strict - "socks5h://$PRX:1080"
printf 'bypass: ["10.203.1.53/32:53"]\ndns_responder: off\n' >>"$SFY_TMP/byp53.yaml"
sfy_capture_start byp "$C" any port 53
fails "dig @nameserver (UDP), subnet bypassed" \
	sfy_run "$C" -f "$SFY_TMP/byp.yaml" -- dig +tries=1 +time=1 @10.203.1.53 target.sfy.test
fails "dig +tcp @nameserver, subnet bypassed" \
	sfy_run "$C" -f "$SFY_TMP/byp.yaml" -- dig +tcp +tries=1 +time=1 @10.203.1.53 target.sfy.test
# With the responder on (the default), the system nameserver is answered
# in the library before any bypass, over UDP and TCP: the fake address,
# and still no packet.
sfy_conf bypres strict - "socks5h://$PRX:1080"
echo "bypass: [10.203.1.0/24]" >>"$SFY_TMP/bypres.yaml"
expect_out "dig @nameserver, subnet bypassed, responder on: the library answers" "224." \
	sfy_run "$C" -f "$SFY_TMP/bypres.yaml" -- dig +tries=1 +time=5 +short @10.203.1.53 target.sfy.test
expect_out "dig +tcp @nameserver, subnet bypassed, responder on: the library answers" "224." \
	sfy_run "$C" -f "$SFY_TMP/bypres.yaml" -- dig +tcp +tries=1 +time=5 +short @10.203.1.53 target.sfy.test
n=$(sfy_capture_stop byp)
if ! check "bypassed subnet: zero packets to port 53 ($n)" test "$n" -eq 0; then
	sfy_capture_show byp
fi
sfy_capture_start byp53 "$C" any port 53
fails "dig with a rule naming :53 (no server answers)" \
	sfy_run "$C" -f "$SFY_TMP/byp53.yaml" -- dig +tries=1 +time=1 @10.203.1.53 target.sfy.test
n=$(sfy_capture_stop byp53)
check "a rule naming port 53 lets the query out ($n packets)" test "$n" -gt 0
finish
