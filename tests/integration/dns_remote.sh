#!/bin/bash
# Remote DNS: names exist only in the proxy's /etc/hosts, so a client can
# only reach them if socksify hands out fake addresses and sends the NAME to
# the last hop.
#
#   cli 10.203.1.1 ---- 10.203.1.2 prx 10.203.2.1 ---- 10.203.2.2 tgt
#   resolv.conf ->      danted :1080 (SOCKS4/4a+5)       http :8080, sshd :22
#   10.203.1.53 (dead)  /etc/hosts: target/git/ssh.sfy.test -> tgt
#   /etc/hosts: proxyhost.sfy.test
#
# `ip netns exec NS` bind-mounts /etc/netns/NS/* over /etc/*, so each
# namespace's programs (danted included) see their own hosts/resolv.conf.
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted curl wget git node ssh /usr/sbin/sshd getent ss
sfy_begin
[ -x "$SOCKSIFY_BIN" ] || { echo "FAIL: $SOCKSIFY_BIN not built"; exit 1; }
[ -x "$SFY_TOOLS/dnsprobe" ] || { echo "FAIL: $SFY_TOOLS/dnsprobe not built"; exit 1; }

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$P" 10.203.1 || exit 1
sfy_link "$P" "$T" 10.203.2 || exit 1
PRX=10.203.1.2 TGT=10.203.2.2
printf 'nameserver 10.203.1.53\noptions timeout:1 attempts:1\n' | sfy_etc "$C" resolv.conf
printf '127.0.0.1 localhost\n%s proxyhost.sfy.test proxyalias\n' "$PRX" | sfy_etc "$C" hosts
printf '127.0.0.1 localhost\n%s target.sfy.test git.sfy.test ssh.sfy.test\n' "$TGT" |
	sfy_etc "$P" hosts
printf 'nameserver 10.203.2.53\noptions timeout:1 attempts:1\n' | sfy_etc "$P" resolv.conf

sfy_git_repo repo
sfy_http web "$T" 8080
sfy_sshd sshd "$T" "$TGT" 22
sfy_danted dante "$P" "$PRX" 1080 none
# danted has no SOCKS4a (it takes 0.0.0.x as the address): a minimal
# SOCKS4a server that resolves with the proxy namespace's /etc/hosts.
cat >"$SFY_TMP/s4a.py" <<'EOF'
import socket, sys, threading
def exact(c, n):
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            raise EOFError
        b += x
    return b
def cstr(c):
    b = b""
    while (x := exact(c, 1)) != b"\0":
        b += x
    return b.decode()
def pipe(a, b):
    try:
        while (d := a.recv(65536)):
            b.sendall(d)
    except OSError:
        pass
    try:
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass
def handle(c):
    try:
        h = exact(c, 8)
        cstr(c)
        port, ip = int.from_bytes(h[2:4], "big"), h[4:8]
        host = cstr(c) if ip[:3] == bytes(3) and ip[3] else socket.inet_ntoa(ip)
        print("request", host, port, flush=True)
        u = socket.create_connection((host, port), timeout=10)
    except (OSError, EOFError) as e:
        print("failed", e, flush=True)
        c.sendall(b"\0\x5b" + bytes(6))
        c.close()
        return
    c.sendall(b"\0\x5a" + bytes(6))
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
    pipe(c, u)
s = socket.create_server((sys.argv[1], int(sys.argv[2])), reuse_port=True)
while True:
    threading.Thread(target=handle, args=(s.accept()[0],), daemon=True).start()
EOF
sfy_bg s4a "$P" "$SFY_PY" -u "$SFY_TMP/s4a.py" "$PRX" 1081
sfy__served s4a "$P" 1081
sfy_conf s5h strict - "socks5h://$PRX:1080"
sfy_conf s4a strict - "socks4a://$PRX:1081"
sfy_conf local strict - "socks5://$PRX:1080"
{ cat "$SFY_TMP/s5h.yaml"; echo "fake_ip_range: 10.77.0.0/24"; } >"$SFY_TMP/tiny.yaml"
{ cat "$SFY_TMP/s5h.yaml"; echo "fake_ip_range: 100.64.0.0/10"; } >"$SFY_TMP/cgnat.yaml"
{ cat "$SFY_TMP/s5h.yaml"; echo "dns: local"; } >"$SFY_TMP/forcelocal.yaml"
chmod 600 "$SFY_TMP"/*.yaml
mapfile -t SSHO < <(sfy_ssh_opts)
URL=http://target.sfy.test:8080/
PYGET='import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=20).read().decode())'
PYSOCK='import socket, sys
s = socket.create_connection((sys.argv[1], 8080), timeout=20)
s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
print(s.makefile("rb").read().decode())'
PYASYNC='import asyncio, sys
async def main():
    r, w = await asyncio.open_connection(sys.argv[1], 8080)
    w.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    print((await r.read()).decode())
asyncio.run(main())'
NODEGET='require("http").get(process.argv[1], r => { let d = ""; r.on("data", c => d += c);
  r.on("end", () => console.log(d)); }).on("error", e => { console.error(e.message); process.exit(1); })'

echo "--- topology: names exist only at the proxy"
ok "proxy resolves target.sfy.test" sfy_direct "$P" getent hosts target.sfy.test
fails "client cannot resolve target.sfy.test" sfy_direct "$C" getent hosts target.sfy.test
fails "client cannot reach the target directly" sfy_direct "$C" curl -sS --connect-timeout 2 "http://$TGT:8080/"

for hop in s5h s4a; do
	echo "--- clients by name through $hop"
	F=(-f "$SFY_TMP/$hop.yaml")
	expect_out "$hop: curl" "$SFY_TOKEN" sfy_run "$C" "${F[@]}" -- curl -sS --max-time 20 "$URL"
	expect_out "$hop: wget" "$SFY_TOKEN" sfy_run "$C" "${F[@]}" -- wget -qO- -T 20 "$URL"
	expect_out "$hop: python socket.create_connection" "$SFY_TOKEN" \
		sfy_run "$C" "${F[@]}" -- "$SFY_PY" -c "$PYSOCK" target.sfy.test
	expect_out "$hop: python urllib" "$SFY_TOKEN" sfy_run "$C" "${F[@]}" -- "$SFY_PY" -c "$PYGET" "$URL"
	expect_out "$hop: python asyncio" "$SFY_TOKEN" \
		sfy_run "$C" "${F[@]}" -- "$SFY_PY" -c "$PYASYNC" target.sfy.test
	expect_out "$hop: node http.get" "$SFY_TOKEN" sfy_run "$C" "${F[@]}" -- node -e "$NODEGET" "$URL"
	expect_out "$hop: git clone" "$SFY_TOKEN" sfy_run "$C" "${F[@]}" -- sh -c \
		'rm -rf "$1" && HOME=$2 GIT_CONFIG_NOSYSTEM=1 git clone -q "$3" "$1" && cat "$1/README"' \
		sh "$SFY_TMP/clone-$hop" "$SFY_TMP" http://git.sfy.test:8080/repo.git
	expect_out "$hop: ssh" "$SFY_TOKEN" sfy_run "$C" "${F[@]}" -- \
		ssh "${SSHO[@]}" root@ssh.sfy.test echo "$SFY_TOKEN"
done
expect_out "the socks4a server got the name, not an address" "request target.sfy.test 8080" \
	cat "$(sfy_logfile s4a)"

echo "--- every resolver entry point"
expect_out "dnsprobe: all entry points fake, res_* refused" "OK: 0 failure" \
	sfy_run "$C" -f "$SFY_TMP/s5h.yaml" -- "$SFY_TOOLS/dnsprobe" target.sfy.test
expect_out "dnsprobe with fake_ip_range 100.64.0.0/10" "OK: 0 failure" \
	sfy_run "$C" -f "$SFY_TMP/cgnat.yaml" -- "$SFY_TOOLS/dnsprobe" -r 100.64.0.0/10 any.name.test
expect_out "dnsprobe without the launcher (LD_PRELOAD + SOCKSIFY_PROXY)" "OK: 0 failure" \
	sfy_preload "$C" SOCKSIFY_PROXY="socks5h://$PRX:1080" -- "$SFY_TOOLS/dnsprobe" target.sfy.test

echo "--- names that are not faked"
expect_out "/etc/hosts name resolves to its real address" "$PRX" \
	sfy_run "$C" -f "$SFY_TMP/s5h.yaml" -- getent ahostsv4 proxyhost.sfy.test
expect_out "/etc/hosts alias too" "$PRX" sfy_run "$C" -f "$SFY_TMP/s5h.yaml" -- getent hosts proxyalias
expect_out "dnsprobe: /etc/hosts name is the real address everywhere" "OK: 0 failure" \
	sfy_run "$C" -f "$SFY_TMP/s5h.yaml" -- "$SFY_TOOLS/dnsprobe" -e addr -a "$PRX" proxyhost.sfy.test
expect_out "localhost is 127.0.0.1" "127.0.0.1" sfy_run "$C" -f "$SFY_TMP/s5h.yaml" -- getent ahostsv4 localhost
expect_out "x.localhost is loopback" "127.0.0.1" \
	sfy_run "$C" -f "$SFY_TMP/s5h.yaml" -- getent ahostsv4 app.localhost
expect_out "numeric address passes through" "192.0.2.9" \
	sfy_run "$C" -f "$SFY_TMP/s5h.yaml" -- getent ahostsv4 192.0.2.9
expect_out "reverse lookup of a non-fake address stays numeric" "192.0.2.9" \
	sfy_run "$C" -f "$SFY_TMP/s5h.yaml" -- "$SFY_PY" -c \
	'import socket; print(socket.getnameinfo(("192.0.2.9", 80), 0)[0])'

echo "--- limits"
# A crawler: 100,000 distinct names, each its own address, all still mapped
# when looked up again (gaibench exits 1 on a failure or a duplicate).
expect_out "100,000 distinct names: distinct fake addresses, stable on repeat" \
	"names=100000 failures=0 dups=0" \
	sfy_run "$C" -f "$SFY_TMP/s5h.yaml" -- "$SFY_TOOLS/gaibench" --names 100000 --rounds 2
LONG=$(printf 'a%.0s' $(seq 300))
fails "a 300-byte name fails cleanly" sfy_run "$C" -f "$SFY_TMP/s5h.yaml" -- getent ahosts "$LONG"
expect_out "exhausted /24: 254 names, then EAI_AGAIN; old names keep their address" "254 EAI_AGAIN 10.77.0.1" \
	sfy_run "$C" -f "$SFY_TMP/tiny.yaml" -- "$SFY_PY" -c '
import socket
def r(n):
    try:
        return socket.gethostbyname(n)
    except socket.gaierror as e:
        return "EAI_AGAIN" if e.errno == socket.EAI_AGAIN else str(e)
got = [r("n%d.test" % i) for i in range(254)]
assert len(set(got)) == 254 and all(a.startswith("10.77.0.") for a in got), got
print(len(got), r("one.more.test"), r("n0.test"))'
expect_out "exhaustion is logged" "exhausted" cat "$SFY_LAST_OUT"

echo "--- dns: local"
fails "dns: local (socks5 hop): the name is resolved locally and fails" \
	sfy_run "$C" -f "$SFY_TMP/local.yaml" -- curl -sS --max-time 10 "$URL"
fails "dns: local overrides a socks5h hop" \
	sfy_run "$C" -f "$SFY_TMP/forcelocal.yaml" -- curl -sS --max-time 10 "$URL"
expect_out "dns: local, dnsprobe sees real /etc/hosts addresses" "OK: 0 failure" \
	sfy_run "$C" -f "$SFY_TMP/local.yaml" -- "$SFY_TOOLS/dnsprobe" -e addr -a "$PRX" proxyhost.sfy.test
fails "-d local on the command line: resolved locally, fails" \
	sfy_run "$C" -f "$SFY_TMP/s5h.yaml" -d local -- curl -sS --max-time 10 "$URL"
echo "--- a fake address nobody was given"
fails_with "connect to an unassigned fake address: EHOSTUNREACH, nothing sent" "EHOSTUNREACH" \
	sfy_run "$C" -f "$SFY_TMP/s5h.yaml" -- "$SFY_TOOLS/tcpclient" --host 224.99.88.77 --port 80

finish
