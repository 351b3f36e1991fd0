#!/bin/bash
# A fake address's reverse lookup answers its name from the fake table in
# EVERY DNS mode (local, remote, proxy) and never sends a PTR query:
# gethostbyaddr (getent hosts), gethostbyaddr_r (Python's gethostbyaddr),
# getnameinfo (v4, the v6 twin fd73:6f63:6b73::a.b.c.d, NI_NAMEREQD), and
# in local mode res_query for the address's in-addr.arpa name. An address
# in the fake range that was not handed out fails (or stays numeric)
# without a packet too. Before this, local-DNS mode passed every reverse
# lookup to the real functions: the fake address an .onion name got (or
# one inherited from a remote-mode parent, the case the old build also
# shows) went out as a PTR query for a.b.c.224.in-addr.arpa.
#
# A capture of port 53 on the client's only link, whose nameserver sits
# behind a static neighbour entry (so a query really goes out); the control
# run (getent hosts of a fake-range address without socksify) shows the
# capture sees the PTR query. No proxy is needed: nothing here connects.
#
#   cli 10.206.1.1 ---- 10.206.1.2 dns   (resolv.conf -> 10.206.1.53)
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd getent tcpdump
sfy_begin
[ -x "$SOCKSIFY_BIN" ] || { echo "FAIL: $SOCKSIFY_BIN not built"; exit 1; }

C=$(sfy_ns cli) D=$(sfy_ns dns) || exit 1
sfy_link "$C" "$D" 10.206.1 || exit 1
sfy_wire_dns "$C" "$D" 10.206.1

# The proxy is never contacted (no connect happens): its address only
# decides the mode. socks5:// -> local DNS, socks5h:// -> remote.
conf() {  # name url [dns-mode]
	{
		printf 'proxies:\n  - "%s"\n' "$2"
		[ -n "${3:-}" ] && printf 'dns: %s\n' "$3"
	} >"$SFY_TMP/$1.yaml"
}
conf local socks5://127.0.0.1:9
conf remote socks5h://127.0.0.1:9
conf proxy socks5h://127.0.0.1:9 proxy

# The lookups, in one process (a local-mode table lives in the process that
# made it and its children): name -> fake address, then every reverse
# entry point, a child's getent, and an address of the range not handed out.
cat >"$SFY_TMP/rev.py" <<'EOF'
import ctypes, os, socket, subprocess, sys
name = sys.argv[1]
if len(sys.argv) > 2:
    a = sys.argv[2]                     # handed out by a parent
else:
    a = socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
print("fake", a)
def show(what, f):
    try:
        print(what, f())
    except (OSError, socket.gaierror) as e:
        print(what, "error", e)
show("gethostbyaddr", lambda: socket.gethostbyaddr(a)[0])
show("getnameinfo", lambda: socket.getnameinfo((a, 80), socket.NI_NAMEREQD)[0])
show("getnameinfo6", lambda: socket.getnameinfo(("fd73:6f63:6b73::" + a, 80, 0, 0),
                                                socket.NI_NAMEREQD)[0])
r = subprocess.run(["getent", "hosts", a], capture_output=True, text=True)
print("getent", r.returncode, r.stdout.strip())
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(512)
ptr = ".".join(reversed(a.split("."))) + ".in-addr.arpa"
print("res_query", libc.res_query(ptr.encode(), 1, 12, buf, 512))
other = a.rsplit(".", 1)[0] + ".250"    # in the range, never handed out
show("unused-gethostbyaddr", lambda: socket.gethostbyaddr(other)[0])
show("unused-getnameinfo", lambda: socket.getnameinfo((other, 80), 0)[0])
EOF
NAME=abcdefghijklmnop.onion
# check_out MODE: the answers in $SFY_LAST_OUT
check_out() {
	local m=$1 o=$SFY_LAST_OUT
	check "$m: gethostbyaddr_r: the name" grep -qx "gethostbyaddr $NAME" "$o"
	check "$m: getnameinfo NI_NAMEREQD: the name" grep -qx "getnameinfo $NAME" "$o"
	check "$m: getnameinfo of the v6 twin: the name" grep -qx "getnameinfo6 $NAME" "$o"
	check "$m: a child's getent hosts (gethostbyaddr): the name" \
		grep -qE "^getent 0 224[.0-9]+ +$NAME\$" "$o"
	check "$m: an unused address of the range: not found" \
		grep -q "^unused-gethostbyaddr error" "$o"
	check "$m: ... and numeric from getnameinfo" grep -qE "^unused-getnameinfo 224[.0-9]+\$" "$o"
}

echo "--- control: the capture sees a reverse lookup of a fake-range address"
sfy_capture_start ctl "$C" any port 53
fails "getent hosts 224.0.0.5 without socksify" sfy_direct "$C" getent hosts 224.0.0.5
n=$(sfy_capture_stop ctl)
check "control capture saw the PTR query ($n packets)" test "$n" -gt 0

sfy_capture_start rev "$C" any port 53
echo "--- local DNS: the .onion name's fake address"
ok "local: the lookups run" sfy_run "$C" -f "$SFY_TMP/local.yaml" -- "$SFY_PY" "$SFY_TMP/rev.py" "$NAME"
out=$SFY_LAST_OUT
check_out local
check "local: res_query of its PTR name fails (unsent: the capture)" grep -qx "res_query -1" "$out"
ok "local, without the launcher: the lookups run" \
	sfy_preload "$C" SOCKSIFY_CONFIG="$SFY_TMP/local.yaml" -- "$SFY_PY" "$SFY_TMP/rev.py" "$NAME"
check_out "local (LD_PRELOAD)"

echo "--- local DNS: a fake address a remote-mode parent handed out"
# The parent (remote mode) makes the address and exports its table; the
# child runs in local mode (its own SOCKSIFY_CONFIG) and inherits it.
# (putenv, not os.environ: the library exported the table's variable
# after Python copied the environment.)
cat >"$SFY_TMP/parent.py" <<EOF
import os, socket, subprocess, sys
a = socket.getaddrinfo("$NAME", 80, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
os.putenv("SOCKSIFY_CONFIG", "$SFY_TMP/local.yaml")
sys.exit(subprocess.run([sys.executable, "$SFY_TMP/rev.py", "$NAME", a]).returncode)
EOF
ok "remote parent, local child: the lookups run" \
	sfy_preload "$C" SOCKSIFY_CONFIG="$SFY_TMP/remote.yaml" -- "$SFY_PY" "$SFY_TMP/parent.py"
check_out "local child"

echo "--- remote DNS and dns: proxy (these answered from the table before)"
ok "remote: the lookups run" sfy_run "$C" -f "$SFY_TMP/remote.yaml" -- "$SFY_PY" "$SFY_TMP/rev.py" "$NAME"
check_out remote
ok "proxy: the lookups run" sfy_run "$C" -f "$SFY_TMP/proxy.yaml" -- "$SFY_PY" "$SFY_TMP/rev.py" "$NAME"
check_out proxy

n=$(sfy_capture_stop rev)
check "no DNS packet left the client during the fake-address lookups ($n)" test "$n" -eq 0 ||
	sfy_capture_show rev

echo "--- local DNS without any fake address: reverse lookups stay the real ones"
sfy_capture_start notab "$C" any port 53
fails "getent hosts 224.0.0.5 (no table: the real function asks)" \
	sfy_run "$C" -f "$SFY_TMP/local.yaml" -- getent hosts 224.0.0.5
n=$(sfy_capture_stop notab)
check "...and its PTR query went out as before ($n packets)" test "$n" -gt 0
finish
