# shellcheck shell=bash
# Shared by the loopback-only TCP tests (tcp_faults, tcp_nonblock,
# tcp_threads), which preload the library directly: a temp dir and the
# processes to kill at exit, the preload value, a real python3, free ports
# and a microsocks whose outgoing connections come from 127.0.0.3, so servers
# can tell a proxied connection from a direct one (127.0.0.1).
#
#   . "$(dirname "$0")/lib/loopback.sh" NAME    # NAME: temp dir and messages
set -u
lb_name=$1
top=${SFY_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
client=$SFY_TOOLS/tcpclient
[ -x "$client" ] || { echo "$lb_name: $client not built" >&2; exit 1; }
[ -f "$SOCKSIFY_LIB" ] || { echo "$lb_name: $SOCKSIFY_LIB not built" >&2; exit 1; }

tmp=$(mktemp -d "/tmp/sfy-$lb_name.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
preload=${SFY_ASAN_RT:+$SFY_ASAN_RT:}$SOCKSIFY_LIB
# The interpreter itself, not a version-manager shim that costs ~1 s a start.
py=$(python3 -c 'import sys; print(sys.executable)')
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

wait_file() { local _; for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }
freeport() {
	$py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# microsocks takes a fixed port: pick a free one, retry if someone took it.
# Sets ms_port and ms_pid.
ms_src=127.0.0.3
start_microsocks() {
	local _
	for _ in 1 2 3 4 5; do
		ms_port=$(freeport)
		microsocks -i 127.0.0.1 -p "$ms_port" -b "$ms_src" >"$tmp/microsocks.log" 2>&1 &
		ms_pid=$!
		for _ in $(seq 100); do
			ss -ltnH "sport = :$ms_port" | grep -q . && { pids+=("$ms_pid"); return 0; }
			kill -0 "$ms_pid" 2>/dev/null || break
			sleep 0.05
		done
		kill "$ms_pid" 2>/dev/null
	done
	return 1
}
