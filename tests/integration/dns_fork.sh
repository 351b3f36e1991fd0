#!/bin/bash
# The fake-DNS table belongs to the whole process tree: an address handed out
# in one process is understood (connect, reverse lookup) in any other, across
# fork() and exec(), in both directions.
#
#   cli 10.203.1.1 ---- 10.203.1.2 prx 10.203.2.1 ---- 10.203.2.2 tgt
#   resolv.conf ->      danted :1080 (SOCKS5)            http :8080
#   10.203.1.53 (dead)  /etc/hosts: target.sfy.test -> tgt
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted curl getent ss
sfy_begin
[ -x "$SOCKSIFY_BIN" ] || { echo "FAIL: $SOCKSIFY_BIN not built"; exit 1; }

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$P" 10.203.1 || exit 1
sfy_link "$P" "$T" 10.203.2 || exit 1
PRX=10.203.1.2 TGT=10.203.2.2
printf 'nameserver 10.203.1.53\noptions timeout:1 attempts:1\n' | sfy_etc "$C" resolv.conf
printf '127.0.0.1 localhost\n%s target.sfy.test\n' "$TGT" | sfy_etc "$P" hosts

sfy_http web "$T" 8080
sfy_danted dante "$P" "$PRX" 1080 none
sfy_conf s5h strict - "socks5h://$PRX:1080"
F=(-f "$SFY_TMP/s5h.yaml")
PRE=(SOCKSIFY_PROXY="socks5h://$PRX:1080")

# Python: resolve, fork, then the child (or the parent) connects; or the
# child resolves and the parent connects. An HTTP GET proves the name
# reached the proxy.
PYFORK='import os, socket, sys
def get(addr):
    s = socket.create_connection((addr, 8080), timeout=20)
    s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    return s.makefile("rb").read().decode()
mode = sys.argv[1]
if mode == "parent-resolves":
    socket.gethostbyname("first.test")   # so target is not the first index
    a = socket.gethostbyname("target.sfy.test")
    pid = os.fork()
    if pid == 0:
        print("child:", get(a), flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
else:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        socket.gethostbyname("first.test")
        os.write(w, socket.gethostbyname("target.sfy.test").encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    print("parent:", get(os.read(r, 64).decode()))'
# Python resolves, then an exec'd program uses the address.
PYEXEC='import os, socket, subprocess, sys
socket.gethostbyname("first.test")
a = socket.gethostbyname("target.sfy.test")
if sys.argv[1] == "exec":
    os.execvp("curl", ["curl", "-sS", "--max-time", "20", "http://%s:8080/" % a])
if sys.argv[1] == "reverse":
    os.execvp("getent", ["getent", "hosts", a])
print(subprocess.run(["sh", "-c", "curl -sS --max-time 20 http://%s:8080/" % a],
                     capture_output=True, text=True).stdout)'
# Shell: one child resolves (a second name first), a later child connects.
SHCHAIN='a=$(getent ahostsv4 first.test target.sfy.test | awk "\$3 == \"target.sfy.test\" {print \$1}")
b=$(getent ahostsv4 target.sfy.test | awk "NR == 1 {print \$1}")
echo "addresses $a $b"
[ -n "$a" ] && [ "$a" = "$b" ] && curl -sS --max-time 20 "http://$a:8080/"'

# The program resolves, loses the table's descriptor (closes it, dup2()s
# over it, closefrom(3), closerange), then execs a child that resolves the
# same name: the same address, and it reaches the right host. Or a
# subprocess (close_fds=True, the default) does. The number comes from the
# C environment: without the launcher the library sets it after start.
PYLOSE='import ctypes, fcntl, os, socket, subprocess, sys
libc = ctypes.CDLL(None)
libc.getenv.restype = ctypes.c_char_p
CHILD = """import socket, sys
b = socket.gethostbyname("target.sfy.test")
s = socket.create_connection((b, 8080), timeout=20)
s.sendall(b"GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
body = s.makefile("rb").read().decode()
print("same" if b == sys.argv[1] else "differ %s %s" % (sys.argv[1], b),
      "reached" if sys.argv[2] in body else "missed", flush=True)"""
mode, token = sys.argv[1], sys.argv[2]
socket.gethostbyname("first.test")
a = socket.gethostbyname("target.sfy.test")
fd = int(libc.getenv(b"SOCKSIFY_FAKEDNS_FD").split(b":")[0])
if mode in ("close", "close-subprocess"):
    os.close(fd)
elif mode == "dup2":
    os.dup2(0, fd)
elif mode == "closefrom":
    libc.closefrom(3)
elif mode == "closerange":
    os.closerange(3, 1 << 16)
elif mode == "cloexec":
    fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
if mode.endswith("subprocess"):
    r = subprocess.run([sys.executable, "-c", CHILD, a, token], capture_output=True, text=True)
    print(r.stdout, r.stderr)
    sys.exit(0)
os.execv(sys.executable, [sys.executable, "-c", CHILD, a, token])'
# bash closes the table's descriptor (exec N>&-; bash builds its children's
# environment from its own copy): its later children
# still share the table with its earlier ones.
SHCLOSE='a=$(getent ahostsv4 first.test target.sfy.test | awk "\$3 == \"target.sfy.test\" {print \$1}")
eval "exec ${SOCKSIFY_FAKEDNS_FD%%:*}>&-"
b=$(getent ahostsv4 target.sfy.test | awk "NR == 1 {print \$1}")
echo "addresses $a $b"
[ -n "$a" ] && [ "$a" = "$b" ] && curl -sS --max-time 20 "http://$b:8080/"'

for via in launcher preload; do
	if [ $via = launcher ]; then run=(sfy_run "$C" "${F[@]}" --); else run=(sfy_preload "$C" "${PRE[@]}" --); fi
	echo "--- $via"
	expect_out "$via: fork, parent resolves, child connects" "$SFY_TOKEN" \
		"${run[@]}" "$SFY_PY" -c "$PYFORK" parent-resolves
	expect_out "$via: resolve, then exec curl with the address" "$SFY_TOKEN" \
		"${run[@]}" "$SFY_PY" -c "$PYEXEC" exec
	expect_out "$via: resolve, then sh -c curl in a subprocess" "$SFY_TOKEN" \
		"${run[@]}" "$SFY_PY" -c "$PYEXEC" subprocess
	expect_out "$via: reverse lookup after exec gives the name" "target.sfy.test" \
		"${run[@]}" "$SFY_PY" -c "$PYEXEC" reverse
	for lose in close dup2 closefrom closerange cloexec subprocess close-subprocess; do
		expect_out "$via: table fd lost ($lose), exec'd child: same address, right host" \
			"same reached" "${run[@]}" "$SFY_PY" -c "$PYLOSE" $lose "$SFY_TOKEN"
	done
done
expect_out "launcher: sh closes the table fd, its next child shares the table" "$SFY_TOKEN" \
	sfy_run "$C" "${F[@]}" -- bash -c "$SHCLOSE"
# The variable names a table nobody can reach: an ancestor's addresses
# would mean other names in a new one, so lookups fail, with one line.
fails_with "preload: the tree's table out of reach: names fail, no new table" \
	"fake-DNS: the tree's table .* is out of reach" \
	sfy_preload "$C" "${PRE[@]}" SOCKSIFY_FAKEDNS_FD=4000:999999999:5eed5eed5eed5eed -- \
	getent ahostsv4 target.sfy.test
# These need the table to exist before the first fork, which the launcher
# ensures (sfy_fakedns_export_fd before exec). Without the launcher, a table
# first created in a child is that child's subtree's alone (README).
expect_out "launcher: fork, child resolves, parent connects" "$SFY_TOKEN" \
	sfy_run "$C" "${F[@]}" -- "$SFY_PY" -c "$PYFORK" child-resolves
expect_out "launcher: sh -c, one child resolves, a sibling connects" "$SFY_TOKEN" \
	sfy_run "$C" "${F[@]}" -- sh -c "$SHCHAIN"
expect_out "launcher: nested sh -c exec chain" "$SFY_TOKEN" \
	sfy_run "$C" "${F[@]}" -- sh -c 'sh -c "$1"' sh "$SHCHAIN"
finish
