#!/bin/bash
# The preload cannot be lost: a proxied program's children stay proxied
# when it wipes their environment, and children LD_PRELOAD cannot reach
# (static, Go, set-ID, a script with a static interpreter) are refused with
# EACCES and a warn line -- or run, with unproxyable: allow.
#
#   cli 10.205.1.1 ---- 10.205.1.2 prx 10.205.2.1 ---- 10.205.2.2 tgt
#   default route       danted :1080 (SOCKS5)          http :8080
#   via prx             no forwarding                   /etc/hosts on prx:
#                                                       target.sfy.test
# The client's default route points at the proxy, which does not forward:
# a direct connection to the target leaves on the wire (the capture on the
# client's link counts it) and goes nowhere. Nothing may reach the target
# except through danted; a control run proves the capture sees a direct try.
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted curl tcpdump ss setpriv
sfy_begin
[ -x "$SOCKSIFY_BIN" ] || { echo "FAIL: $SOCKSIFY_BIN not built"; exit 1; }
PROBE=$SFY_TOOLS/execprobe
[ -x "$PROBE" ] || { echo "FAIL: $PROBE not built"; exit 1; }

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$P" 10.205.1 || exit 1
sfy_link "$P" "$T" 10.205.2 || exit 1
PRX=10.205.1.2 TGT=10.205.2.2
ip -n "$C" route add default via "$PRX"
IFC=$(sfy_ifname "$C" "$P")
printf '127.0.0.1 localhost\n' | sfy_etc "$C" hosts
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' | sfy_etc "$C" resolv.conf
printf '127.0.0.1 localhost\n%s target.sfy.test\n' "$TGT" | sfy_etc "$P" hosts

sfy_http web "$T" 8080
sfy_danted dante "$P" "$PRX" 1080 none
sfy_conf s5 strict - "socks5h://$PRX:1080"
F=(-f "$SFY_TMP/s5.yaml")
{ cat "$SFY_TMP/s5.yaml"; echo "dns: local"; } >"$SFY_TMP/local.yaml"
{ cat "$SFY_TMP/s5.yaml"; echo "unproxyable: allow"; } >"$SFY_TMP/allow.yaml"
chmod 600 "$SFY_TMP/local.yaml" "$SFY_TMP/allow.yaml"
URL=http://$TGT:8080/
CURL=$(command -v curl)
CURLA=("$CURL" -sS --connect-timeout 3 --max-time 10 "$URL")
# Under SANITIZE=1 the curl first in PATH is tests/run.sh's shim script (see
# there); the cases that need curl's ELF file itself (a set-user-ID copy)
# take the first real one.
ELF_CURL=$(type -aP curl | while read -r p; do
	[ "$(head -c 4 "$p" | tr -d '\177')" = ELF ] && { echo "$p"; break; }; done)
# fexecve() runs the file behind a close-on-exec descriptor: a script's
# interpreter could not open it, so that case fetches with our own client
# (an ELF program, built like the library, clean under an ASan runtime
# whose options the wiped environment lost).
TCPFETCH=("$SFY_TOOLS/tcpclient" --host "$TGT" --port 8080 --timeout-ms 10000
	--send $'GET / HTTP/1.0\r\n\r\n' --expect 'HTTP/1.0 200 OK')

echo "--- control: the capture sees a direct connection"
sfy_capture_start ctl "$C" "$IFC" host "$TGT"
fails "direct curl (no socksify) cannot reach the target" sfy_direct "$C" "${CURLA[@]}"
n=$(sfy_capture_stop ctl)
check "control capture saw the direct try ($n packets)" test "$n" -gt 0

# Programs for the refusal cases, in a directory every user can reach.
B=$SFY_TMP/bin
mkdir -p "$B" && chmod 755 "$B"
printf '#!/bin/sh\nexec "$@"\n' >"$B/run.sh"
printf '#!/bin/sh\n%s -sS --max-time 10 "$1"\n' "$CURL" >"$B/curl.sh"
chmod 755 "$B/run.sh" "$B/curl.sh"
GO_BIN=
if command -v go >/dev/null; then
	mkdir -p "$SFY_TMP/go"
	cat >"$SFY_TMP/go/main.go" <<-'EOF'
		package main

		// int one(void) { return 1; }
		import "C"
		import (
			"fmt"
			"net"
			"os"
		)

		func main() {
			_ = C.one()
			if len(os.Args) < 2 {
				fmt.Println("go ran")
				return
			}
			c, err := net.Dial("tcp", os.Args[1])
			if err != nil {
				fmt.Println("dial:", err)
				os.Exit(1)
			}
			c.Close()
			fmt.Println("go connected")
		}
	EOF
	if (cd "$SFY_TMP/go" && HOME=$SFY_TMP/go GOCACHE=$SFY_TMP/go/cache GOPATH=$SFY_TMP/go/path \
	    GO111MODULE=off CGO_ENABLED=1 go build -o "$B/gocgo" main.go) >"$SFY_TMP/go.log" 2>&1; then
		GO_BIN=$B/gocgo
		check "the Go program is dynamically linked (cgo)" \
			sh -c "readelf -lW '$GO_BIN' | grep -q 'Requesting program interpreter'"
	else
		echo "FAIL: setup: go build (cgo)"; cat "$SFY_TMP/go.log"; exit 1
	fi
else
	echo "note: go missing (tests/deps.sh test installs golang-go): Go cases skipped"
fi

echo "--- children with a wiped environment stay proxied (capture on)"
sfy_capture_start leak "$C" "$IFC" host "$TGT"
expect_out "env -i curl" "$SFY_TOKEN" sfy_run "$C" "${F[@]}" -- env -i "${CURLA[@]}"
expect_out "env -u LD_PRELOAD curl" "$SFY_TOKEN" \
	sfy_run "$C" "${F[@]}" -- env -u LD_PRELOAD "${CURLA[@]}"
expect_out "python subprocess.run(env={})" "$SFY_TOKEN" sfy_run "$C" "${F[@]}" -- "$SFY_PY" -c '
import subprocess, sys
sys.stdout.write(subprocess.run(sys.argv[1:], env={}, capture_output=True, text=True).stdout)' \
	"${CURLA[@]}"
expect_out "bash -c 'exec -c curl'" "$SFY_TOKEN" \
	sfy_run "$C" "${F[@]}" -- bash -c 'exec -c "$@"' bash "${CURLA[@]}"
for m in spawn vfork execl fexecve execveat syscall; do
	prog=("${CURLA[@]}") want=$SFY_TOKEN
	[ "$m" = fexecve ] && prog=("${TCPFETCH[@]}") want="ok: 1 round trips"
	expect_out "execprobe $m: empty environment" "$want" \
		sfy_run "$C" "${F[@]}" -- "$PROBE" "$m" "${prog[@]}"
done
expect_out "execprobe spawnp: empty environment, by name" "$SFY_TOKEN" \
	sfy_run "$C" "${F[@]}" -- "$PROBE" spawnp curl -sS --max-time 10 "$URL"
expect_out "unsetenv(LD_PRELOAD, SOCKSIFY_*) then system()" "$SFY_TOKEN" \
	sfy_run "$C" "${F[@]}" -- "$PROBE" system "${CURLA[*]}"
expect_out "unsetenv(LD_PRELOAD, SOCKSIFY_*) then popen(r)" "$SFY_TOKEN" \
	sfy_run "$C" "${F[@]}" -- "$PROBE" popen "${CURLA[*]}"
expect_out "unsetenv(LD_PRELOAD, SOCKSIFY_*) then popen(w): curl reads the URL" "$SFY_TOKEN" \
	sfy_run "$C" "${F[@]}" -- "$PROBE" popen-w "xargs $CURL -sS --max-time 10" "$URL"
fails "our system(): the shell's exit status comes back" \
	sfy_run "$C" "${F[@]}" -- "$PROBE" system 'exit 7'
check "...as 7" test "$SFY_LAST_RC" = 7
expect_out "a normal script runs proxied" "$SFY_TOKEN" \
	sfy_run "$C" "${F[@]}" -- env -i "$B/curl.sh" "$URL"
expect_out "dns: local in the file, -d remote: stays remote in an env -i child" "$SFY_TOKEN" \
	sfy_run "$C" -f "$SFY_TMP/local.yaml" -d remote -- \
	env -i "$CURL" -sS --max-time 10 http://target.sfy.test:8080/

echo "--- unproxyable children are refused (capture still on)"
refused() {  # desc cmd...: fails with EACCES, the warn line says why
	local desc=$1 out
	shift
	fails_with "$desc: refused" "$REASON" "$@" || return
	out=$SFY_LAST_OUT
	check "...with one warn line naming it" grep -q "socksify\[[0-9]*\]: warn: .*exec refused" "$out"
	check "...the exec failed with EACCES" grep -qi "permission denied" "$out"
}
if [ -x /bin/busybox ]; then
	REASON="statically linked"
	refused "static child (busybox wget)" sfy_run "$C" "${F[@]}" -- \
		"$B/run.sh" /bin/busybox wget -qO- -T 5 "$URL"
	refused "static child via posix_spawn" sfy_run "$C" "${F[@]}" -- \
		"$PROBE" spawn /bin/busybox wget -qO- -T 5 "$URL"
	printf '#!/bin/busybox sh\nwget -qO- -T 5 "$1"\n' >"$B/static.sh"
	chmod 755 "$B/static.sh"
	REASON="interpreter /bin/busybox is statically linked"
	refused "script with a static interpreter" sfy_run "$C" "${F[@]}" -- \
		"$B/run.sh" "$B/static.sh" "$URL"
else
	echo "note: /bin/busybox missing: static cases skipped"
fi
if [ -n "$GO_BIN" ]; then
	REASON="Go program"
	refused "dynamically linked Go child" sfy_run "$C" "${F[@]}" -- \
		"$B/run.sh" "$GO_BIN" "$TGT:8080"
	fails_with "the launcher refuses the Go program too (126)" "Go program" \
		sfy_run "$C" "${F[@]}" -- "$GO_BIN" "$TGT:8080"
	check "...exit 126" test "$SFY_LAST_RC" = 126
fi
# A set-user-ID-root copy run by nobody: the loader would drop LD_PRELOAD.
cp "$ELF_CURL" "$B/suid-curl" && chmod 4755 "$B/suid-curl"
NOGROUP=$(id -gn nobody)
AS_NOBODY=(setpriv --reuid nobody --regid "$NOGROUP" --clear-groups)
if "${AS_NOBODY[@]}" test -r "$SOCKSIFY_LIB"; then
	REASON="set-user-ID"
	refused "setuid-root copy of curl run by nobody" sfy_run "$C" "${F[@]}" -- \
		"${AS_NOBODY[@]}" "$B/run.sh" "$B/suid-curl" -sS --max-time 5 "$URL"
	cp /usr/bin/id "$B/suid-id" && chmod 4755 "$B/suid-id"
else
	echo "note: nobody cannot read $SOCKSIFY_LIB: setuid case skipped"
fi
n=$(sfy_capture_stop leak)
check "nothing reached the target directly ($n packets)" test "$n" -eq 0 ||
	sfy_capture_show leak

echo "--- unproxyable: allow runs them, with a warning"
ALLOW=(-f "$SFY_TMP/allow.yaml")
if [ -x /bin/busybox ]; then
	expect_out "allow: static child runs" "static ran" \
		sfy_run "$C" "${ALLOW[@]}" -- "$B/run.sh" /bin/busybox echo "static ran"
	check "...with the warn line" grep -q "running it UNPROXIED" "$SFY_LAST_OUT"
	expect_out "--allow-unproxyable: static child runs" "static ran" \
		sfy_run "$C" "${F[@]}" --allow-unproxyable -- "$B/run.sh" /bin/busybox echo "static ran"
	printf '#!/bin/busybox sh\necho script ran\n' >"$B/static2.sh"
	chmod 755 "$B/static2.sh"
	expect_out "allow: script with a static interpreter runs" "script ran" \
		sfy_run "$C" "${ALLOW[@]}" -- "$B/run.sh" "$B/static2.sh"
fi
if [ -n "$GO_BIN" ]; then
	expect_out "allow: Go child runs" "go ran" \
		sfy_run "$C" "${ALLOW[@]}" -- "$B/run.sh" "$GO_BIN"
fi
if [ -x "$B/suid-id" ]; then
	expect_out "allow: setuid-root child runs (as euid 0)" "euid=0" \
		sfy_run "$C" "${ALLOW[@]}" -- "${AS_NOBODY[@]}" "$B/run.sh" "$B/suid-id"
fi

echo "--- 1000 nested re-execs keep one copy of the library"
cat >"$B/reexec.sh" <<-'EOF'
	#!/bin/bash
	n=$1
	if [ "$n" -gt 0 ]; then
		case $((n % 3)) in
		0) exec env -u LD_PRELOAD "$0" $((n - 1)) ;;
		1) exec env -i "$0" $((n - 1)) ;;
		*) exec "$0" $((n - 1)) ;;
		esac
	fi
	printf 'LD_PRELOAD=%s\n' "$LD_PRELOAD"
	printf 'copies=%s\n' "$(printf '%s' "$LD_PRELOAD" | tr ': ' '\n\n' | grep -c 'libsocksify\.so$')"
EOF
chmod 755 "$B/reexec.sh"
SFY_CMD_TIMEOUT=300 expect_out "1000 re-execs (env -u, env -i, plain)" "copies=1" \
	sfy_run "$C" "${F[@]}" -- "$B/reexec.sh" 1000

finish
