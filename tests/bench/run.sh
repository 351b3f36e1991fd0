#!/bin/bash
# socksify benchmarks, side by side with proxychains4 (and, for UDP, with a
# native SOCKS5 UDP client). Method and latest results: tests/bench/README.md.
#
#   tests/bench/run.sh [latency] [rate] [dns] [udp] [async] [chain] [poll] [exec] [rules] [dnsresp]
#                                          (default: all ten)
#   make bench                            (the same, BUILD set)
#
# Knobs (environment): BENCH_DELAY_MS (10) per-link one-way delay of the
# latency bench; BENCH_REPS (3) repetitions, the median is reported;
# BENCH_COUNT (15) connects per latency run; BENCH_SECONDS (2) per rate/UDP
# run; BENCH_THREADS ("1 4") rate threads; BENCH_NAMES (10000) DNS names;
# BENCH_EXECS (2000) execs per exec-guard run; BENCH_NB_COUNT (64) concurrent
# non-blocking connects and BENCH_NB_DELAY_MS (50) the one-way delay of their
# link; BENCH_POLL_CALLS (1000000) calls per poll-overhead loop;
# BENCH_ROUTE_CALLS (2000000) sfy_route_match calls per case. BENCH_RULE_CONNECTS (2000) connects per
# run of the rules section's whole-connect A/B. BENCH_DNS_QUERIES (10000)
# queries per run of the DNS responder section.
#
# Everything runs on loopback with servers this script starts and stops
# (EXIT trap). As root it runs in a private network namespace so that its
# ports and TIME_WAIT sockets touch nothing else on the machine. It prints
# numbers and ratios; it exits nonzero only when something did not work at
# all, never because a number missed its target.
set -u
cd "$(dirname "$0")/../.." || exit 1
TOP=$PWD
: "${BUILD:=build}"
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
export BUILD

# --- a private namespace (root only): re-run this script inside it
if [ -z "${SFY_BENCH_NS:-}" ] && [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
	ns=sfy-bench-$$
	if ip netns add "$ns" 2>/dev/null; then
		ip -n "$ns" link set lo up
		# The rate bench opens tens of thousands of short connections; in
		# our own namespace we may widen the port range and reuse
		# TIME_WAIT ports without touching the machine's settings.
		ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" \
		    net.ipv4.tcp_tw_reuse=1 >/dev/null 2>&1
		# Whatever still runs in the namespace was started by this run.
		trap 'p=$(ip netns pids "$ns" 2>/dev/null); [ -n "$p" ] && kill $p 2>/dev/null
		      sleep 0.2; ip netns del "$ns" 2>/dev/null' EXIT
		trap 'exit 130' INT
		trap 'exit 143' TERM
		SFY_BENCH_NS=$ns ip netns exec "$ns" bash "$0" "$@"
		exit $?
	fi
fi

REPS=${BENCH_REPS:-3}
COUNT=${BENCH_COUNT:-15}
RULE_CONNECTS=${BENCH_RULE_CONNECTS:-2000}   # connects per run of the rules A/B
DELAY=${BENCH_DELAY_MS:-10}
SECS=${BENCH_SECONDS:-2}
THREADS=${BENCH_THREADS:-1 4}
NAMES=${BENCH_NAMES:-10000}
EXECS=${BENCH_EXECS:-2000}
NB_COUNT=${BENCH_NB_COUNT:-64}
NB_DELAY=${BENCH_NB_DELAY_MS:-50}
POLL_CALLS=${BENCH_POLL_CALLS:-1000000}
ROUTE_CALLS=${BENCH_ROUTE_CALLS:-2000000}
DNS_QUERIES=${BENCH_DNS_QUERIES:-10000}
SOCKSIFY=$BUILD/socksify
T=$BUILD/tests
want=("$@")
ALL=(latency rate dns udp async chain poll exec rules dnsresp)
[ ${#want[@]} -eq 0 ] && want=("${ALL[@]}")
for w in "${want[@]}"; do
	case " ${ALL[*]} " in *" $w "*) ;; *) echo "usage: $0 $(printf '[%s] ' "${ALL[@]}")" >&2; exit 2 ;; esac
done

die() { echo "bench: $*" >&2; exit 1; }
for b in "$SOCKSIFY" "$BUILD/libsocksify.so" "$T/connbench" "$T/delayrelay" "$T/gaibench" "$T/udpbench" "$T/execprobe" \
	"$T/nbbench" "$T/pollbench" "$T/routebench" "$T/dnsbench"; do
	[ -x "$b" ] || [ -f "$b" ] || die "$b missing: run 'make bench' (or make && make build/tests/<tool>)"
done
command -v proxychains4 >/dev/null || die "proxychains4 missing (tests/deps.sh test installs it)"
DANTED=$(command -v danted || echo /usr/sbin/danted)
[ -x "$DANTED" ] || die "danted missing (tests/deps.sh test installs it)"

TMP=$(mktemp -d /tmp/sfy-bench.XXXXXX)
chmod 755 "$TMP"  # danted drops privileges and still writes its log here
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "$TMP"/*.danted.pid; do [ -s "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Under SANITIZE=1 the tools and the library are instrumented: the numbers
# only show that the bench runs, and ASan must come first in LD_PRELOAD.
PRE=()
if [ "${SANITIZE:-}" = 1 ]; then
	PRE=(LD_PRELOAD="$(${CC:-cc} -print-file-name=libasan.so)")
	export ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0
fi

# --------------------------------------------------------------- helpers

unset SOCKSIFY_CONFIG SOCKSIFY_PROXY SOCKSIFY_LOG SOCKSIFY_CHAIN SOCKSIFY_DNS SOCKSIFY_PROXYSTATE_FD
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' ||
		die "no free port"
}

wait_file() {  # file: a tool's --port-file
	local i
	for ((i = 0; i < 100; i++)); do [ -s "$1" ] && return 0; sleep 0.05; done
	die "no ${1##*/} after 5 s"
}

wait_port() {  # port [udp]
	local i flag=-Hltn
	[ "${2:-}" = udp ] && flag=-Hlun
	for ((i = 0; i < 200; i++)); do
		[ -n "$(ss $flag "sport = :$1" 2>/dev/null)" ] && return 0
		sleep 0.05
	done
	die "nothing listens on port $1 after 10 s"
}

bg() {  # name cmd...: background server, output to $TMP/name.log
	local name=$1
	shift
	"$@" </dev/null >"$TMP/$name.log" 2>&1 &
	PIDS+=($!)
}

# Sets E to its port (not in $(...): bg must record the pid in this shell).
echo_server() {
	if [ ! -s "$TMP/echo.port" ]; then
		bg echo "$T/connbench" --serve --once --port-file "$TMP/echo.port"
		wait_file "$TMP/echo.port"
	fi
	E=$(cat "$TMP/echo.port")
}

# danted on 127.0.0.1:PORT, no auth, CONNECT and UDP ASSOCIATE allowed.
# Logging only errors: a log line per connection would be part of every
# number, for both tools alike.
danted_at() {  # name port
	local name=$1 port=$2
	cat >"$TMP/$name.conf" <<-EOF
		logoutput: $TMP/$name.dlog
		internal: 127.0.0.1 port = $port
		external: 127.0.0.1
		clientmethod: none
		socksmethod: none
		user.privileged: root
		user.unprivileged: nobody
		timeout.negotiate: 10
		client pass {
		        from: 0/0 to: 0/0
		        log: error
		}
		socks pass {
		        from: 0/0 to: 0/0
		        command: connect udpassociate udpreply
		        log: error
		}
	EOF
	bg "$name" "$DANTED" -f "$TMP/$name.conf" -p "$TMP/$name.danted.pid"
	wait_port "$port"
}

microsocks_at() {  # name port
	bg "$1" microsocks -i 127.0.0.1 -p "$2"
	wait_port "$2"
}

relay_at() {  # name listen-port to-port delay-ms
	bg "$1" "$T/delayrelay" --listen "127.0.0.1:$2" --to "127.0.0.1:$3" --delay "$4"
	wait_port "$2"
}

# proxychains4 config for hops "port..." (all on 127.0.0.1, SOCKS5).
pc_conf() {  # file dns(0|1) port...
	local f=$1 dns=$2 p
	shift 2
	{
		echo strict_chain
		[ "$dns" = 1 ] && echo proxy_dns && echo remote_dns_subnet 224
		echo quiet_mode
		echo tcp_read_time_out 15000
		echo tcp_connect_time_out 8000
		echo "[ProxyList]"
		for p in "$@"; do echo "socks5 127.0.0.1 $p"; done
	} >"$f"
}

# socksify YAML for hops "port..." with SCHEME; extra lines from $SFY_EXTRA.
sfy_conf() {  # file scheme port...
	local f=$1 scheme=$2 p
	shift 2
	{
		echo "proxies:"
		for p in "$@"; do echo "  - $scheme://127.0.0.1:$p"; done
		echo "chain: strict"
		printf '%s\n' "${SFY_EXTRA:-}"
	} >"$f"
}

# Runs a tool through a proxier: "sfy CONF" or "pc CONF" or "none".
via() {  # sfy|pc|none conf cmd...
	local how=$1 conf=$2
	shift 2
	case $how in
	sfy) env "${PRE[@]}" "$SOCKSIFY" -q -f "$conf" -- "$@" ;;
	pc) env "${PRE[@]}" proxychains4 -q -f "$conf" "$@" ;;
	none) "$@" ;;
	esac
}

# The value of KEY=V in the RESULT line of a tool's output (first match).
field() {  # key section(optional: a word that precedes it) < output
	local key=$1 sect=${2:-}
	if [ -n "$sect" ]; then
		sed -n "s/.*$sect median=\([0-9.]*\).*/\1/p" | head -n1
	else
		sed -n "s/.*[ ]$key=\([0-9.]*\).*/\1/p" | head -n1
	fi
}

median() {  # numbers... -> median (middle value; mean of the two middle ones)
	[ $# -eq 0 ] && { echo -; return; }
	printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {
		if (NR == 0) { print "-"; exit }
		if (NR % 2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2 }'
}

ratio() {  # a b -> a/b with 2 decimals, "-" if either is missing
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || a == "" || b + 0 == 0) print "-";
		else printf "%.2f\n", a / b }'
}

verdict() {  # value op target -> "met" / "NOT met" (information only)
	awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { if (v == "-") { print "n/a"; exit }
		ok = (op == "<=") ? v <= t : v >= t; print ok ? "met" : "NOT met" }'
}

FAILED=0
fail() { echo "bench: FAILED: $*" >&2; FAILED=1; }

RESULTS=$BUILD/bench-results.md
: >"$RESULTS.tmp"
out() { printf '%s\n' "$*" | tee -a "$RESULTS.tmp"; }

# --------------------------------------------------------------- header

ver() { "$@" 2>&1 | grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' | head -n1; }
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
out "## socksify benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
out ""
out "- machine: $(nproc) cores ($cpu), Linux $(uname -r), load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
out "- socksify $("$SOCKSIFY" -V 2>&1 | head -n1 | grep -oE '[0-9][0-9.]*' | head -n1)" \
    "($(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$TOP" diff --quiet 2>/dev/null || echo '+dirty'))," \
    "proxychains-ng $(dpkg-query -W -f '${Version}' proxychains4 2>/dev/null)," \
    "Dante $(dpkg-query -W -f '${Version}' dante-server 2>/dev/null)," \
    "microsocks $(dpkg-query -W -f '${Version}' microsocks 2>/dev/null)"
out "- repetitions: $REPS (median reported)${SANITIZE:+, SANITIZE=$SANITIZE (instrumented: numbers not meaningful)}"
out ""

has() { local w; for w in "${want[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

# --------------------------------------------------------------- 1. latency

# client -> relay(+D) -> hop1 -> relay(+D) -> hop2 -> relay(+D) -> hop3 -> echo
# Every hop is reached through its own delaying relay, so each link of the
# chain costs D each way. Hops are danted: it accepts a SOCKS5 request sent
# together with the greeting, which is what socksify does by default.
bench_latency() {
	local E n i rep tool conf how ports=() r
	echo_server
	for i in 1 2 3; do
		local dp rp
		dp=$(free_port)
		danted_at "lat-hop$i" "$dp"
		rp=$(free_port)
		relay_at "lat-relay$i" "$rp" "$dp" "$DELAY"
		ports+=("$rp")
	done
	out "### 1. Connect latency through N SOCKS5 hops (danted), ${DELAY} ms added per link each way"
	out ""
	out "connect() time, median of $REPS runs of $COUNT sequential connects (each run's median);"
	out "first byte = connect + one byte echoed by the target."
	out ""
	out "| hops | socksify ms | proxychains4 ms | ratio | socksify step-by-step ms | socksify first byte ms | proxychains4 first byte ms |"
	out "|---:|---:|---:|---:|---:|---:|---:|"
	for n in 1 2 3; do
		sfy_conf "$TMP/lat$n.yaml" socks5 "${ports[@]:0:n}"
		SFY_EXTRA="pipelining: off" sfy_conf "$TMP/lat$n-step.yaml" socks5 "${ports[@]:0:n}"
		pc_conf "$TMP/lat$n.pc" 0 "${ports[@]:0:n}"
		local a=() b=() c=() af=() bf=()
		for ((rep = 0; rep < REPS; rep++)); do
			for tool in sfy pc step; do
				case $tool in
				sfy) conf=$TMP/lat$n.yaml; how=sfy ;;
				step) conf=$TMP/lat$n-step.yaml; how=sfy ;;
				pc) conf=$TMP/lat$n.pc; how=pc ;;
				esac
				r=$(via "$how" "$conf" "$T/connbench" --host 127.0.0.1 --port "$E" \
				    --count "$COUNT" --warmup 1 2>&1)
				if ! grep -q '^RESULT' <<<"$r"; then
					fail "latency $n hops via $tool: $(tail -n 2 <<<"$r")"
					continue
				fi
				case $tool in
				sfy) a+=("$(field x connect_ms <<<"$r")"); af+=("$(field x first_byte_ms <<<"$r")") ;;
				pc) b+=("$(field x connect_ms <<<"$r")"); bf+=("$(field x first_byte_ms <<<"$r")") ;;
				step) c+=("$(field x connect_ms <<<"$r")") ;;
				esac
			done
		done
		local ma mb
		ma=$(median "${a[@]}") mb=$(median "${b[@]}")
		[ "$n" = 3 ] && LAT3_RATIO=$(ratio "$ma" "$mb")
		out "| $n | $ma | $mb | $(ratio "$ma" "$mb") | $(median "${c[@]}") | $(median "${af[@]}") | $(median "${bf[@]}") |"
	done
	out ""
	out "ratio = socksify / proxychains4 (lower is better). 3-hop target <= 0.50:" \
	    "$(verdict "${LAT3_RATIO:--}" '<=' 0.5)."
	out ""
}

# --------------------------------------------------------------- 2. rate

# client -> hop -> echo, no delay: connect/send/recv/close in a loop. Also
# run: "native" = connbench doing SOCKS5 itself without any preload (the
# ceiling for a shim with that server) and "direct" = no proxy at all.
bench_rate() {
	local server port t rep r how conf nat
	echo_server
	out "### 2. Connections per second through one local SOCKS5 hop (no delay)"
	out ""
	out "Each connection: connect through the hop, send 1 byte, receive the echo, close;"
	out "${SECS} s per run, median of $REPS runs. native = connbench's own SOCKS5 code, no preload"
	out "(the ceiling for any shim with that server). CPU = the client process's user+sys"
	out "time per connection, shim included."
	out ""
	out "| hop server | threads | socksify conn/s | proxychains4 conn/s | ratio | native conn/s | direct conn/s | socksify CPU us/conn | proxychains4 CPU us/conn |"
	out "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for server in danted microsocks; do
		port=$(free_port)
		"${server}_at" "rate-$server" "$port"
		sfy_conf "$TMP/rate-$server.yaml" socks5 "$port"
		pc_conf "$TMP/rate-$server.pc" 0 "$port"
		nat=(--socks5 "127.0.0.1:$port")
		[ "$server" = microsocks ] && nat+=(--stepwise)
		for t in $THREADS; do
			local a=() b=() d=() n=() ac=() bc=()
			for ((rep = 0; rep < REPS; rep++)); do
				for how in sfy pc native direct; do
					conf=-
					case $how in
					sfy) conf=$TMP/rate-$server.yaml ;;
					pc) conf=$TMP/rate-$server.pc ;;
					direct) [ "$server" = danted ] || continue ;;
					esac
					if [ $how = native ]; then
						r=$(via none - "$T/connbench" --host 127.0.0.1 --port "$E" \
						    --seconds "$SECS" --threads "$t" --wait-eof "${nat[@]}" 2>&1)
					else
						r=$(via "${how/direct/none}" "$conf" "$T/connbench" --host 127.0.0.1 \
						    --port "$E" --seconds "$SECS" --threads "$t" --wait-eof 2>&1)
					fi
					# A rare refused connect under load (danted's own limits)
					# is reported; more than 1 in 100 fails the run.
					local tot err
					tot=$(field total <<<"$r") err=$(field errors <<<"$r")
					if [ -z "$tot" ] || [ "$tot" = 0 ] || [ $((err * 100)) -gt "$tot" ]; then
						fail "rate via $how/$server, $t threads: $(tail -n 2 <<<"$r")"
						continue
					fi
					[ "$err" != 0 ] && echo "bench: note: $how/$server, $t threads:" \
					    "$err of $tot connects failed" >&2
					case $how in
					sfy) a+=("$(field conns_per_sec <<<"$r")") ac+=("$(field cpu_us <<<"$r")") ;;
					pc) b+=("$(field conns_per_sec <<<"$r")") bc+=("$(field cpu_us <<<"$r")") ;;
					native) n+=("$(field conns_per_sec <<<"$r")") ;;
					direct) d+=("$(field conns_per_sec <<<"$r")") ;;
					esac
				done
			done
			local ma mb
			ma=$(median "${a[@]}") mb=$(median "${b[@]}")
			RATE_RATIOS="${RATE_RATIOS:-} $(ratio "$ma" "$mb")"
			out "| $server | $t | $ma | $mb | $(ratio "$ma" "$mb") | $(median "${n[@]}") |" \
			    "$(median "${d[@]}") | $(median "${ac[@]}") | $(median "${bc[@]}") |"
		done
	done
	out ""
	out "ratio = socksify / proxychains4 conn/s (higher is better). Target >= 1.5:" \
	    "$(for x in $RATE_RATIOS; do printf '%s ' "$(verdict "$x" '>=' 1.5)"; done)(per row)."
	out "microsocks drops bytes sent before its reply, so socksify negotiates with it step by step"
	out "(after one probe in the untimed warm-up connect), like proxychains4 always does."
	out ""
}

# --------------------------------------------------------------- 3. dns

bench_dns() {
	local port rep r a=() b=() a2=() b2=()
	port=$(free_port)
	danted_at dns-hop "$port"
	sfy_conf "$TMP/dns.yaml" socks5h "$port"
	pc_conf "$TMP/dns.pc" 1 "$port"
	# Does this build fake names at all yet?
	r=$(via sfy "$TMP/dns.yaml" "$T/gaibench" --names 10 --rounds 1 --suffix probe.example 2>&1)
	if ! grep -q '^RESULT.* failures=0 dups=0' <<<"$r"; then
		out "### 3. getaddrinfo() in remote-DNS mode: NOT RUN -- this build does not fake names yet"
		out ""
		out '```'; out "$r"; out '```'; out ""
		return
	fi
	for ((rep = 0; rep < REPS; rep++)); do
		r=$(via sfy "$TMP/dns.yaml" "$T/gaibench" --names "$NAMES" --rounds 2 2>&1)
		if grep -q '^RESULT.* failures=0 dups=0' <<<"$r"; then
			a+=("$(field first_per_sec <<<"$r")") a2+=("$(field repeat_per_sec <<<"$r")")
			SFY_SAMPLE=$(sed -n 's/.*sample=//p' <<<"$r")
		else
			fail "dns via socksify: $(tail -n 2 <<<"$r")"
		fi
		r=$(via pc "$TMP/dns.pc" "$T/gaibench" --names "$NAMES" --rounds 2 2>&1)
		if grep -q '^RESULT.* failures=0 dups=0' <<<"$r"; then
			b+=("$(field first_per_sec <<<"$r")") b2+=("$(field repeat_per_sec <<<"$r")")
			PC_SAMPLE=$(sed -n 's/.*sample=//p' <<<"$r")
		else
			fail "dns via proxychains4: $(tail -n 2 <<<"$r")"
		fi
	done
	local ma mb
	ma=$(median "${a[@]}") mb=$(median "${b[@]}")
	out "### 3. getaddrinfo() calls per second, remote DNS, $NAMES distinct names"
	out ""
	out "socksify with socks5h (fake addresses, e.g. ${SFY_SAMPLE:-?}) vs proxychains4 proxy_dns"
	out "(e.g. ${PC_SAMPLE:-?}); one thread; first = each name seen for the first time, repeat ="
	out "the same names again. Median of $REPS runs."
	out ""
	out "| lookups | socksify /s | proxychains4 /s | ratio |"
	out "|---|---:|---:|---:|"
	out "| first | $ma | $mb | $(ratio "$ma" "$mb") |"
	ma=$(median "${a2[@]}") mb=$(median "${b2[@]}")
	out "| repeat | $ma | $mb | $(ratio "$ma" "$mb") |"
	out ""
	out "Target >= 10x (first lookups): $(verdict "$(ratio "$(median "${a[@]}")" "$(median "${b[@]}")")" '>=' 10)."
	out ""
}

# --------------------------------------------------------------- 4. udp

# client --UDP--> danted's UDP relay --> echo, and back. Native: udpbench does
# the UDP ASSOCIATE and the datagram headers itself; shim: plain sendto() and
# recvfrom() under socksify with udp: associate.
bench_udp() {
	local port U rep r a=() b=() w
	port=$(free_port)
	danted_at udp-hop "$port"
	bg udpecho "$T/udpbench" --serve --port-file "$TMP/udp.port"
	wait_file "$TMP/udp.port"
	U=$(cat "$TMP/udp.port")
	SFY_EXTRA="udp: associate" sfy_conf "$TMP/udp.yaml" socks5 "$port"
	r=$(via none - "$T/udpbench" --native --proxy "127.0.0.1:$port" --host 127.0.0.1 \
	    --port "$U" --seconds 0.3 2>&1)
	grep -q '^RESULT.* received=[1-9]' <<<"$r" || { fail "udp: native client through danted: $r"; return; }
	r=$(via sfy "$TMP/udp.yaml" "$T/udpbench" --host 127.0.0.1 --port "$U" --seconds 0.3 2>&1)
	if ! grep -q '^RESULT.* received=[1-9]' <<<"$r"; then
		out "### 4. UDP through SOCKS5 UDP ASSOCIATE: NOT RUN -- this build does not relay UDP (yet)"
		out ""
		out '```'; out "$r"; out '```'; out ""
		return
	fi
	out "### 4. UDP datagrams per second through danted's UDP relay to an echo server"
	out ""
	out "64-byte datagrams, W in flight, ${SECS} s per run, median of $REPS runs."
	out "native = udpbench --native (its own UDP ASSOCIATE and headers, no preload);"
	out "shim = plain sendto()/recvfrom() under socksify (udp: associate)."
	out ""
	out "| window | shim dgrams/s | native dgrams/s | ratio |"
	out "|---:|---:|---:|---:|"
	for w in 1 16; do
		a=() b=()
		for ((rep = 0; rep < REPS; rep++)); do
			r=$(via sfy "$TMP/udp.yaml" "$T/udpbench" --host 127.0.0.1 --port "$U" \
			    --seconds "$SECS" --window "$w" 2>&1)
			if grep -q '^RESULT.* received=[1-9]' <<<"$r"; then a+=("$(field dgrams_per_sec <<<"$r")")
			else fail "udp via socksify: $(tail -n 2 <<<"$r")"; fi
			r=$(via none - "$T/udpbench" --native --proxy "127.0.0.1:$port" --host 127.0.0.1 \
			    --port "$U" --seconds "$SECS" --window "$w" 2>&1)
			if grep -q '^RESULT.* received=[1-9]' <<<"$r"; then b+=("$(field dgrams_per_sec <<<"$r")")
			else fail "udp native: $(tail -n 2 <<<"$r")"; fi
		done
		local ma mb
		ma=$(median "${a[@]}") mb=$(median "${b[@]}")
		UDP_RATIOS="${UDP_RATIOS:-} $(ratio "$ma" "$mb")"
		out "| $w | $ma | $mb | $(ratio "$ma" "$mb") |"
	done
	out ""
	out "ratio = shim / native. Target >= 0.8:" \
	    "$(for x in $UDP_RATIOS; do printf '%s ' "$(verdict "$x" '>=' 0.8)"; done)(per row)."
	out ""
}

# --------------------------------------------------------------- 5. async

# client -> relay(+NB_DELAY) -> danted -> echo. N non-blocking connects made
# at once by one event loop (nbbench: connect all, epoll until all are
# writable with SO_ERROR 0, then a 1-byte echo on each), against one such
# connect. A shim that builds the chain inside connect() serialises them: N
# times one connect. One that returns EINPROGRESS and builds the chains in
# the background overlaps them: about one connect.
bench_async() {
	local E dp rp rep r how conf n rounds
	local s1=() s64=() s64e=() scall=() p1=() p64=() p64e=() pcall=() n1=() n64=() n64e=()
	echo_server
	dp=$(free_port)
	danted_at nb-hop "$dp"
	rp=$(free_port)
	relay_at nb-relay "$rp" "$dp" "$NB_DELAY"
	sfy_conf "$TMP/nb.yaml" socks5 "$rp"
	pc_conf "$TMP/nb.pc" 0 "$rp"
	for ((rep = 0; rep < REPS; rep++)); do
		for how in sfy pc native; do
			local nat_args=()
			case $how in
			sfy) conf=$TMP/nb.yaml ;;
			pc) conf=$TMP/nb.pc ;;
			native) conf=- nat_args=(--socks5 "127.0.0.1:$rp") ;;
			esac
			for n in 1 "$NB_COUNT"; do
				rounds=1
				[ "$n" = 1 ] && rounds=3
				r=$(via "${how/native/none}" "$conf" "$T/nbbench" --host 127.0.0.1 --port "$E" \
				    --count "$n" --rounds "$rounds" --warmup 1 --timeout 120 "${nat_args[@]}" 2>&1)
				if ! grep -q '^RESULT' <<<"$r"; then
					fail "async: $n non-blocking connects via $how: $(tail -n 2 <<<"$r")"
					continue
				fi
				case $how/$n in
				sfy/1) s1+=("$(field connect_ms <<<"$r")") ;;
				pc/1) p1+=("$(field connect_ms <<<"$r")") ;;
				sfy/*) s64+=("$(field connect_ms <<<"$r")") s64e+=("$(field echo_ms <<<"$r")")
				       scall+=("$(field call_max_ms <<<"$r")") ;;
				pc/*) p64+=("$(field connect_ms <<<"$r")") p64e+=("$(field echo_ms <<<"$r")")
				      pcall+=("$(field call_max_ms <<<"$r")") ;;
				native/1) n1+=("$(field connect_ms <<<"$r")") ;;
				native/*) n64+=("$(field connect_ms <<<"$r")") n64e+=("$(field echo_ms <<<"$r")") ;;
				esac
			done
		done
	done
	local ms1 ms64 mp1 mp64
	ms1=$(median "${s1[@]}") ms64=$(median "${s64[@]}") mp1=$(median "${p1[@]}") mp64=$(median "${p64[@]}")
	ASYNC_RATIO=$(ratio "$ms64" "$ms1")
	out "### 5. $NB_COUNT concurrent non-blocking connects, one SOCKS5 hop (danted), ${NB_DELAY} ms added to its link each way"
	out ""
	out "One event loop: $NB_COUNT non-blocking sockets, connect() on each, epoll until all are"
	out "writable with SO_ERROR 0; then 1 byte echoed on each. Times from the first socket();"
	out "1 connect = the same with one socket (median of 3 rounds). Median of $REPS runs."
	out "native = nbbench speaking SOCKS5 itself, all sockets at once: the ceiling for a shim."
	out ""
	out "| tool | 1 connect ms | $NB_COUNT connects ms | ratio | $NB_COUNT connects + echo ms | longest connect() call ms |"
	out "|---|---:|---:|---:|---:|---:|"
	out "| socksify | $ms1 | $ms64 | **$ASYNC_RATIO** | $(median "${s64e[@]}") | $(median "${scall[@]}") |"
	out "| proxychains4 | $mp1 | $mp64 | $(ratio "$mp64" "$mp1") | $(median "${p64e[@]}") | $(median "${pcall[@]}") |"
	out "| native: nbbench's own non-blocking SOCKS5, no preload | $(median "${n1[@]}") | $(median "${n64[@]}") |" \
	    "$(ratio "$(median "${n64[@]}")" "$(median "${n1[@]}")") | $(median "${n64e[@]}") | - |"
	out ""
	out "ratio = $NB_COUNT connects / 1 connect, same tool (lower is better; 1 = fully overlapped," \
	    "$NB_COUNT = serialised). socksify target <= 2: $(verdict "$ASYNC_RATIO" '<=' 2)." \
	    "socksify $NB_COUNT connects / proxychains4 $NB_COUNT connects: $(ratio "$ms64" "$mp64")."
	out ""
}

# --------------------------------------------------------------- 6. chain

# client -> relay(+D) -> danted1 -> relay(+D) -> danted2 -> relay(+D) ->
# danted3 -> relay(+D) -> echo: four delayed links, unlike the latency bench
# (whose last link, hop 3 -> echo, is not delayed). Connect + 1-byte echo
# against the physical floor: the echo itself crosses all four links and
# back, 4 link round trips = 8D. The floor is also measured: the same four
# relays in a row and no proxy at all.
bench_chain() {
	local E er i p rep r tool conf how ports=() prev
	echo_server
	er=$(free_port)
	relay_at ch-relay4 "$er" "$E" "$DELAY"
	for i in 1 2 3; do
		local dp rp
		dp=$(free_port)
		danted_at "ch-hop$i" "$dp"
		rp=$(free_port)
		relay_at "ch-relay$i" "$rp" "$dp" "$DELAY"
		ports+=("$rp")
	done
	prev=$er
	for i in 3 2 1; do
		p=$(free_port)
		relay_at "ch-floor$i" "$p" "$prev" "$DELAY"
		prev=$p
	done
	sfy_conf "$TMP/ch.yaml" socks5 "${ports[@]}"
	SFY_EXTRA="pipelining: off" sfy_conf "$TMP/ch-step.yaml" socks5 "${ports[@]}"
	pc_conf "$TMP/ch.pc" 0 "${ports[@]}"
	local sc=() se=() tc=() te=() pcc=() pce=() fe=()
	for ((rep = 0; rep < REPS; rep++)); do
		for tool in sfy step pc floor; do
			case $tool in
			sfy) how=sfy conf=$TMP/ch.yaml p=$er ;;
			step) how=sfy conf=$TMP/ch-step.yaml p=$er ;;
			pc) how=pc conf=$TMP/ch.pc p=$er ;;
			floor) how=none conf=- p=$prev ;;
			esac
			r=$(via "$how" "$conf" "$T/connbench" --host 127.0.0.1 --port "$p" \
			    --count "$COUNT" --warmup 1 2>&1)
			if ! grep -q '^RESULT' <<<"$r"; then
				fail "chain: 3 hops via $tool: $(tail -n 2 <<<"$r")"
				continue
			fi
			case $tool in
			sfy) sc+=("$(field x connect_ms <<<"$r")") se+=("$(field x first_byte_ms <<<"$r")") ;;
			step) tc+=("$(field x connect_ms <<<"$r")") te+=("$(field x first_byte_ms <<<"$r")") ;;
			pc) pcc+=("$(field x connect_ms <<<"$r")") pce+=("$(field x first_byte_ms <<<"$r")") ;;
			floor) fe+=("$(field x first_byte_ms <<<"$r")") ;;
			esac
		done
	done
	local floor mse
	floor=$(awk -v d="$DELAY" 'BEGIN { print 8 * d }')
	mse=$(median "${se[@]}")
	CHAIN_RATIO=$(ratio "$mse" "$floor")
	out "### 6. Connect + 1-byte echo through 3 SOCKS5 hops (danted), ${DELAY} ms added per link each way, 4 links"
	out ""
	out "Median of $REPS runs of $COUNT sequential connects (each run's median). ratio = connect + echo"
	out "over the physical floor of 4 link round trips (8 x ${DELAY} = $floor ms): one flight for the"
	out "whole chain would be 3 + 4 round trips (1.75), one round trip per hop 6 + 4 (2.5),"
	out "step by step 12 + 4 (4.0). The measured floor: the same 4 relays in a row, no proxy."
	out ""
	out "| client | connect ms | connect + echo ms | ratio to floor |"
	out "|---|---:|---:|---:|"
	out "| socksify | $(median "${sc[@]}") | $mse | **$CHAIN_RATIO** |"
	out "| socksify, pipelining: off | $(median "${tc[@]}") | $(median "${te[@]}") | $(ratio "$(median "${te[@]}")" "$floor") |"
	out "| proxychains4 | $(median "${pcc[@]}") | $(median "${pce[@]}") | $(ratio "$(median "${pce[@]}")" "$floor") |"
	out "| no proxy, 4 relays (measured floor) | - | $(median "${fe[@]}") | $(ratio "$(median "${fe[@]}")" "$floor") |"
	out ""
	out "socksify target <= 1.95: $(verdict "$CHAIN_RATIO" '<=' 1.95)."
	out ""
}

# --------------------------------------------------------------- 7. poll

# What an event loop with no pending proxied connect pays per readiness
# call: pollbench's tight loops (poll, epoll_wait, select; timeout 0; an
# idle pipe), each run once through the process's own symbol (the hook when
# preloaded) and once straight to libc's function, in the same process, in
# alternating batches; the difference is the hook's cost (two separate
# processes differ by far more than that on a shared machine). Run with no
# preload (the method's noise: should be about 0), under socksify before and
# after one proxied connect has completed, and under proxychains4 (which
# hooks none of these calls).
bench_poll() {
	local E dp rep r how conf v k
	echo_server
	dp=$(free_port)
	danted_at poll-hop "$dp"
	sfy_conf "$TMP/poll.yaml" socks5 "$dp"
	pc_conf "$TMP/poll.pc" 0 "$dp"
	local -A A=() N=()
	for ((rep = 0; rep < REPS; rep++)); do
		for v in none sfy sfyc pc; do
			local args=(--calls "$POLL_CALLS" --batches 1000)
			case $v in
			none) how=none conf=- ;;
			sfy) how=sfy conf=$TMP/poll.yaml ;;
			sfyc) how=sfy conf=$TMP/poll.yaml args+=(--connect "127.0.0.1:$E") ;;
			pc) how=pc conf=$TMP/poll.pc args+=(--connect "127.0.0.1:$E") ;;
			esac
			r=$(via "$how" "$conf" "$T/pollbench" "${args[@]}" 2>&1)
			if ! grep -q '^RESULT' <<<"$r"; then
				fail "poll loop ($v): $(tail -n 2 <<<"$r")"
				continue
			fi
			for k in poll epoll select; do
				N[$v.$k]+=" $(field "${k}_ns" <<<"$r")"
				A[$v.$k]+=" $(sed -n "s/.* ${k}_added_ns=\([-0-9.]*\).*/\1/p" <<<"$r")"
			done
		done
	done
	local -A M=() D=()
	for v in none sfy sfyc pc; do
		for k in poll epoll select; do
			# shellcheck disable=SC2086 # word lists built above
			M[$v.$k]=$(median ${N[$v.$k]:-})
			# shellcheck disable=SC2086
			D[$v.$k]=$(median ${A[$v.$k]:-} | awk '$1 == "-" { print; next } { printf "%+.1f\n", $1 }')
		done
	done
	out "### 7. Idle event loop: ns per readiness call with timeout 0, nothing pending"
	out ""
	out "$POLL_CALLS calls through the process's symbol and $POLL_CALLS straight to libc's function,"
	out "in the same process, in 1000 alternating batches; per call: the best batch."
	out "Cell: ns per call (+ns added over libc's own function), median of $REPS runs."
	out ""
	out "| process | poll() | epoll_wait() | select() |"
	out "|---|---:|---:|---:|"
	local lbl
	for v in none sfy sfyc pc; do
		case $v in
		none) lbl="no preload (method noise)" ;;
		sfy) lbl="socksify, no connect yet" ;;
		sfyc) lbl="socksify, after one proxied connect" ;;
		pc) lbl="proxychains4 (no hook), after one proxied connect" ;;
		esac
		out "| $lbl | ${M[$v.poll]} (${D[$v.poll]}) | ${M[$v.epoll]} (${D[$v.epoll]}) |" \
		    "${M[$v.select]} (${D[$v.select]}) |"
	done
	out ""
	local wp wq
	wp=$(printf '%s\n' "${D[sfy.poll]}" "${D[sfyc.poll]}" | sort -g | tail -n1 | tr -d +)
	wq=$(printf '%s\n' "${D[sfy.epoll]}" "${D[sfyc.epoll]}" | sort -g | tail -n1 | tr -d +)
	out "Added by socksify (the larger of its two rows): poll() $wp ns, epoll_wait() $wq ns per call." \
	    "Target <= 20 ns: poll $(verdict "$wp" '<=' 20), epoll_wait $(verdict "$wq" '<=' 20)."
	out ""
}

# --------------------------------------------------------------- 8. exec

# What the exec guard adds to one exec of a dynamically linked program:
# vfork + execve(/bin/true) + wait in a preloaded execprobe, through
# socksify's execve hook (target check; the environment already complete,
# or -- hook-fix -- rebuilt on every exec because the program unset every
# SOCKSIFY_*) against libc's own execve called directly (no guard). The
# child is the same preloaded /bin/true in all three, so the difference is
# the guard's own work.
bench_exec() {
	local rep r how a=() b=() c=() n=()
	local prog
	prog=$(type -P true)
	for ((rep = 0; rep < REPS; rep++)); do
		for how in libc hook hook-fix; do
			r=$(LD_PRELOAD=$BUILD/libsocksify.so SOCKSIFY_PROXY=socks5://127.0.0.1:1 \
			    "$T/execprobe" bench "$EXECS" "$how" "$prog" 2>&1)
			[[ $r =~ ^[0-9]+$ ]] || { fail "exec bench $how: $r"; continue; }
			case $how in libc) b+=("$r") ;; hook) a+=("$r") ;; hook-fix) c+=("$r") ;; esac
		done
		r=$("$T/execprobe" bench "$EXECS" hook "$prog" 2>&1)
		[[ $r =~ ^[0-9]+$ ]] && n+=("$r")
	done
	local ma mb mc
	ma=$(median "${a[@]}") mb=$(median "${b[@]}") mc=$(median "${c[@]}")
	out "## exec guard"
	out ""
	out "vfork + execve($prog) + wait, median of $EXECS per run, median of $REPS runs (microseconds)."
	out ""
	out "| libc execve (no guard) | guard, env complete | guard, env rebuilt | no preload at all |"
	out "|---|---|---|---|"
	out "| $mb | $ma | $mc | $(median "${n[@]}") |"
	out ""
	local extra=-
	if [ "$ma" != - ] && [ "$mb" != - ] && [ "$mc" != - ]; then
		extra=$(awk -v a="$ma" -v b="$mb" -v c="$mc" 'BEGIN { w = a > c ? a : c; print w - b }')
	fi
	out "Guard cost (the slower guard column minus libc): $extra us per exec." \
	    "Target <= 300 us: $(verdict "$extra" '<=' 300)."
	out ""
}

# --------------------------------------------------------------- 9. rules

# The routing rules' matcher alone (routebench, linked with the library's
# core): ns per sfy_route_match with no rules and with 1,000, for names
# and for addresses, and for addresses that local DNS gave two names each
# (dnsmem: the address and each name are matched, most restrictive wins).
bench_rules() {
	local rep r k
	local -A V=()
	local keys=(none.name rules.name none.addr rules.addr none.addr+names rules.addr+names)
	for ((rep = 0; rep < REPS; rep++)); do
		r=$("${PRE[@]}" "$T/routebench" "$ROUTE_CALLS" 2>&1) || { fail "routebench: $r"; continue; }
		for k in "${keys[@]}"; do
			V[$k]+=" $(awk -v k="$k" '$1 == k { print $2 }' <<<"$r")"
		done
	done
	local -A M=()
	for k in "${keys[@]}"; do
		# shellcheck disable=SC2086 # word lists built above
		M[$k]=$(median ${V[$k]:-})
	done
	out "### 9. Routing rules: ns per sfy_route_match (median of $REPS runs, best of 50 batches)"
	out ""
	out "| destination | no rules | 1,000 rules | added |"
	out "|---|---:|---:|---:|"
	local worst=0 d lbl
	for k in name addr addr+names; do
		d=$(awk -v a="${M[rules.$k]}" -v b="${M[none.$k]}" \
		    'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%+.1f\n", a - b }')
		case $k in
		name) lbl="a name (fake address)" ;;
		addr) lbl="an address" ;;
		addr+names) lbl="an address with 2 names from local DNS" ;;
		esac
		out "| $lbl | ${M[none.$k]} | ${M[rules.$k]} | $d |"
		[ "$d" != - ] && worst=$(awk -v w="$worst" -v d="$d" 'BEGIN { print (d + 0 > w + 0) ? d + 0 : w }')
	done
	out ""
	out "Most added by 1,000 rules: $worst ns. Target < 2000 ns: $(verdict "$worst" '<=' 2000)."
	out ""

	# The whole connect, end to end: connbench's sequential connects to
	# the local echo server under socksify, routed direct by default:
	# without rules, and behind 1,000 rules that do not match it (names,
	# suffixes, IPv4 and IPv6 networks), alternating run by run.
	echo_server
	printf 'default: direct\n' >"$TMP/rules0.yaml"
	local i
	{
		printf 'default: direct\nrules:\n'
		for ((i = 0; i < 1000; i++)); do
			case $((i % 4)) in
			0) printf '  - { match: "h%d.example.com", via: block }\n' "$i" ;;
			1) printf '  - { match: "*.s%d.example", via: block }\n' "$i" ;;
			2) printf '  - { match: "10.%d.%d.0/24", via: block }\n' $((i / 256)) $((i % 256)) ;;
			3) printf '  - { match: "[fd00:%x::]/32:%d", via: block }\n' "$i" $((i + 1)) ;;
			esac
		done
	} >"$TMP/rules1000.yaml"
	local c0=() c1=() conf
	for ((rep = 0; rep < REPS; rep++)); do
		for conf in rules0 rules1000; do
			r=$(via sfy "$TMP/$conf.yaml" "$T/connbench" --host 127.0.0.1 --port "$E" \
			    --count "$RULE_CONNECTS" --warmup 10 2>&1)
			if ! grep -q '^RESULT' <<<"$r"; then
				fail "rules connect ($conf): $(tail -n 2 <<<"$r")"
				continue
			fi
			r=$(field x connect_ms <<<"$r")
			if [ "$conf" = rules0 ]; then c0+=("$r"); else c1+=("$r"); fi
		done
	done
	local m0 m1
	m0=$(median "${c0[@]}")
	m1=$(median "${c1[@]}")
	d=$(awk -v a="$m1" -v b="$m0" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%+.0f\n", (a - b) * 1000 }')
	out "Whole connect() to a local echo server, routed direct (connbench, $RULE_CONNECTS connects, median of $REPS runs):"
	out "no rules $m0 ms, 1,000 rules $m1 ms: $d us added (resolution 1 us; noise of the same order)."
	out ""
}

# --------------------------------------------------------------- 10. DNS responder

# One query at a time, answer awaited, DNS_QUERIES times (dnsbench): to a
# system nameserver (127.0.0.53:53, nothing listens there) under socksify
# in remote-DNS mode -- the library answers, over UDP through its loopback
# socket, over TCP through its loopback connection -- against the same
# tool without the library and a plain loopback DNS server (dnsbench
# --serve: UDP and TCP). The difference is what the responder adds to a
# query. The answer's address shows who answered (a fake address: the
# library; 192.0.2.1: the plain server).
bench_dnsresp() {
	local rep r k port
	local -A V=()
	if [ ! -s "$TMP/dnsd.port" ]; then
		bg dnsd "$T/dnsbench" --serve --port-file "$TMP/dnsd.port"
		wait_file "$TMP/dnsd.port"
	fi
	port=$(cat "$TMP/dnsd.port")
	# Remote DNS through a proxy no query ever reaches.
	sfy_conf "$TMP/dnsresp.yaml" socks5h "$(free_port)"
	for ((rep = 0; rep < REPS; rep++)); do
		for k in plain.udp sfy.udp plain.tcp sfy.tcp; do
			local args=(--count "$DNS_QUERIES" --warmup 100)
			[ "${k#*.}" = tcp ] && args+=(--tcp)
			if [ "${k%.*}" = plain ]; then
				r=$(env "${PRE[@]}" "$T/dnsbench" --host 127.0.0.1 --port "$port" "${args[@]}" 2>&1)
			else
				r=$(via sfy "$TMP/dnsresp.yaml" "$T/dnsbench" --host 127.0.0.53 --port 53 \
				    "${args[@]}" 2>&1)
			fi
			if ! grep -q '^RESULT' <<<"$r"; then
				fail "dnsresp ($k): $(tail -n 2 <<<"$r")"
				continue
			fi
			local ans
			ans=$(sed -n 's/.* answer=\([^ ]*\).*/\1/p' <<<"$r")
			if [ "${k%.*}" = sfy ] && [ "$ans" = 192.0.2.1 ]; then
				fail "dnsresp ($k): answered by the plain server, not the library"
				continue
			fi
			V[$k]+=" $(field us_per_query <<<"$r")"
		done
	done
	local -A M=()
	for k in plain.udp sfy.udp plain.tcp sfy.tcp; do
		# shellcheck disable=SC2086 # word lists built above
		M[$k]=$(median ${V[$k]:-})
	done
	out "### 10. DNS responder: us per query, one at a time ($DNS_QUERIES queries, median of $REPS runs)"
	out ""
	out "| transport | plain loopback DNS server, no library | socksify's responder (127.0.0.53) | added |"
	out "|---|---:|---:|---:|"
	local d worst=-
	for k in udp tcp; do
		d=$(awk -v a="${M[sfy.$k]}" -v b="${M[plain.$k]}" \
		    'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%+.1f\n", a - b }')
		out "| ${k^^} | ${M[plain.$k]} | ${M[sfy.$k]} | $d |"
		[ "$k" = udp ] && worst=$d
	done
	out ""
	out "Added per UDP query: $worst us. Target <= 20 us: $(verdict "$worst" '<=' 20)."
	out ""
}

start=$(date +%s)
has latency && bench_latency
has rate && bench_rate
has dns && bench_dns
has udp && bench_udp
has async && bench_async
has chain && bench_chain
has poll && bench_poll
has exec && bench_exec
has rules && bench_rules
has dnsresp && bench_dnsresp
out "(bench took $(($(date +%s) - start)) s; command: make bench, or BUILD=build tests/bench/run.sh)"
mv "$RESULTS.tmp" "$RESULTS"
echo "results also in $RESULTS"
exit "$FAILED"
