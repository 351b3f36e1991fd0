# shellcheck shell=bash
# Shared library of the integration tests: network namespaces wired
# point-to-point, real servers inside them, a runner that puts socksify in
# front of a command, assertions and a packet counter.
#
#   . "$(dirname "$0")/lib/common.sh"
#   need_root; need_cmd danted curl; sfy_begin
#   C=$(sfy_ns cli); P=$(sfy_ns prx)
#   sfy_link "$C" "$P" 10.9.1            # C=10.9.1.1  P=10.9.1.2
#   sfy_microsocks ms "$P" 10.9.1.2 1080
#   sfy_conf one strict - socks5://10.9.1.2:1080
#   expect_out "curl via microsocks" "$SFY_TOKEN" \
#       sfy_run "$C" -f "$SFY_TMP/one.yaml" -- curl -sS http://...
#   finish
#
# Everything a run creates carries its id (SFY_ID, 6 hex digits): namespaces
# "sfy-ID-ROLE", veths "sIDnKa", the system user "sfyuID", the temp dir
# /tmp/sfy-itest.ID.*. The EXIT trap removes all of it, and sfy_begin first
# sweeps what earlier runs whose owner process is gone left behind, so an
# aborted run (timeout -k, kill -9) cannot break the next one while runs in
# parallel leave each other alone.
#
# State lives in files under SFY_TMP rather than shell variables, so helpers
# also work when called inside $(...).
#
# Environment honoured: SOCKSIFY_BIN, SOCKSIFY_LIB, SFY_TOOLS, SANITIZE,
# SFY_ASAN_RT, ASAN_OPTIONS, UBSAN_OPTIONS (from tests/run.sh), and
#   SFY_VIA=proxychains4  run the same checks through proxychains4 instead of
#                         socksify, to tell a topology problem from a bug
#   SFY_CMD_TIMEOUT       seconds before a checked command counts as hung (30)
#   SFY_KEEP=1            keep the temp dir (namespaces are still removed)

SFY_STATE_DIR=/run/sfy-itest
# Defaults for a script run by hand instead of by tests/run.sh.
: "${SFY_TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}"
: "${SOCKSIFY_BIN:=$SFY_TOP/build/socksify}"
: "${SOCKSIFY_LIB:=$SFY_TOP/build/libsocksify.so}"
: "${SFY_TOOLS:=$SFY_TOP/build/tests}"
: "${SFY_CMD_TIMEOUT:=30}"
: "${SFY_VIA:=socksify}"
SFY_PASS=0
SFY_FAIL=0
SFY_FAILED=()

# The Python behind a pyenv shim, so preloaded runs start one process, not a
# shell script plus Python.
SFY_PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || command -v python3)

sfy_log() { printf '%s\n' "$*" >&2; }

need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP: needs root (network namespaces)"
		exit 77
	fi
}

need_cmd() {  # cmd...: skip (77) unless every one exists
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] || {
			echo "SKIP: missing $c (tests/deps.sh test installs it)"
			exit 77
		}
	done
}

# ---------------------------------------------------------------- lifecycle

sfy__starttime() {  # pid -> kernel start time (field 22), "" if gone
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	set -- $stat
	printf '%s' "${20}"
}

# Kills every process inside the run's namespaces, then deletes them, the
# system user and the temp dirs. Used by the EXIT trap and by the sweep.
sfy__teardown_id() {  # id
	local id=$1 ns pids u d
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^sfy-$id-"); do
		pids=$(ip netns pids "$ns" 2>/dev/null)
		[ -n "$pids" ] && kill -TERM $pids 2>/dev/null
	done
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^sfy-$id-"); do
		local i
		for i in 1 2 3 4 5 6 7 8 9 10; do
			pids=$(ip netns pids "$ns" 2>/dev/null)
			[ -z "$pids" ] && break
			[ "$i" -ge 5 ] && kill -KILL $pids 2>/dev/null
			sleep 0.1
		done
		ip netns del "$ns" 2>/dev/null
	done
	# veths whose move into a namespace failed stay in the root namespace
	for d in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep "^s${id}n"); do
		ip link del "$d" 2>/dev/null
	done
	# per-namespace /etc files (ip netns exec bind-mounts /etc/netns/NS/*)
	for d in /etc/netns/sfy-"$id"-*; do
		[ -e "$d" ] && rm -rf "$d"
	done
	u=sfyu$id
	getent passwd "$u" >/dev/null 2>&1 && userdel "$u" 2>/dev/null
	if [ "$id" != "${SFY_ID:-}" ] || [ "${SFY_KEEP:-}" != 1 ]; then
		for d in /tmp/sfy-itest."$id".*; do
			[ -e "$d" ] && rm -rf "$d"
		done
	fi
	rm -f "$SFY_STATE_DIR/$id.owner"
}

# Removes what runs whose owner is dead left behind. An owner is a pid plus
# its start time, so a recycled pid does not keep garbage alive; ids with
# namespaces or users but no owner file at all are stale too (the owner file
# is written before anything else is created).
sfy_sweep() {
	local f id pid st ids
	mkdir -p "$SFY_STATE_DIR"
	ids=$( {
		for f in "$SFY_STATE_DIR"/*.owner; do [ -e "$f" ] && basename "$f" .owner; done
		ip netns list 2>/dev/null | awk '{print $1}' | sed -n 's/^sfy-\([0-9a-f]\{6\}\)-.*/\1/p'
		getent passwd | sed -n 's/^sfyu\([0-9a-f]\{6\}\):.*/\1/p'
		for f in /etc/netns/sfy-*; do [ -e "$f" ] && basename "$f" | sed -n 's/^sfy-\([0-9a-f]\{6\}\)-.*/\1/p'; done
		for f in /tmp/sfy-itest.*; do [ -e "$f" ] && basename "$f" | sed -n 's/^sfy-itest\.\([0-9a-f]\{6\}\)\..*/\1/p'; done
	} | sort -u)
	for id in $ids; do
		[ "$id" = "${SFY_ID:-}" ] && continue
		f=$SFY_STATE_DIR/$id.owner
		if [ -r "$f" ] && read -r pid st <"$f" && [ "$(sfy__starttime "$pid")" = "$st" ]; then
			continue  # a live run, possibly in parallel with us
		fi
		sfy_log "sweep: removing leftovers of run $id"
		sfy__teardown_id "$id"
	done
}

sfy__cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	[ -n "${SFY_ID:-}" ] || exit "$rc"
	# Capture processes first: they write pcaps we may still want with SFY_KEEP.
	sfy__teardown_id "$SFY_ID"
	[ "${SFY_KEEP:-}" = 1 ] && sfy_log "kept $SFY_TMP"
	exit "$rc"
}

# Creates the run: id, owner file, temp dir with the served content, traps.
sfy_begin() {
	local tries=0
	unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy \
	    no_proxy NO_PROXY ftp_proxy FTP_PROXY
	unset SOCKSIFY_CONFIG SOCKSIFY_PROXY SOCKSIFY_LOG
	if ! ip netns list >/dev/null 2>&1; then
		echo "SKIP: ip netns does not work here"
		exit 77
	fi
	mkdir -p "$SFY_STATE_DIR"
	while :; do
		SFY_ID=$(printf '%06x' $(( ($$ & 0xfff) << 12 | (RANDOM & 0xfff) )))
		[ -e "$SFY_STATE_DIR/$SFY_ID.owner" ] || break
		tries=$((tries + 1)); [ $tries -lt 50 ] || { sfy_log "no free run id"; exit 1; }
	done
	echo "$$ $(sfy__starttime $$)" >"$SFY_STATE_DIR/$SFY_ID.owner.tmp"
	mv "$SFY_STATE_DIR/$SFY_ID.owner.tmp" "$SFY_STATE_DIR/$SFY_ID.owner"
	trap sfy__cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	sfy_sweep
	SFY_TMP=$(mktemp -d "/tmp/sfy-itest.$SFY_ID.XXXXXX")
	chmod 755 "$SFY_TMP"
	export SFY_ID SFY_TMP
	: >"$SFY_TMP/links"
	: >"$SFY_TMP/logs"
	# The known content every target serves: a token page and a 1 MiB file
	# whose hash catches corrupted or truncated relaying.
	SFY_TOKEN="socksify-test-page-$SFY_ID-$RANDOM"
	mkdir -p "$SFY_TMP/www"
	printf '<html><body>%s</body></html>\n' "$SFY_TOKEN" >"$SFY_TMP/www/index.html"
	head -c 1048576 /dev/urandom >"$SFY_TMP/www/big.bin"
	SFY_BIG_SHA=$(sha256sum <"$SFY_TMP/www/big.bin" | cut -d' ' -f1)
	export SFY_TOKEN SFY_BIG_SHA
	echo "run $SFY_ID, temp dir $SFY_TMP, via $SFY_VIA"
}

# ---------------------------------------------------------------- topology

# Creates namespace sfy-ID-ROLE with loopback up and forwarding off, and
# prints its name. ROLE: a few letters.
sfy_ns() {  # role
	local ns=sfy-$SFY_ID-$1
	ip netns add "$ns" || return 1
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=0 \
	    net.ipv6.conf.all.forwarding=0 net.ipv6.conf.default.forwarding=0 >/dev/null
	printf '%s\n' "$ns"
}

# The IPv6 twin of an IPv4 test address: 10.9.1.2 -> fd00:10:9:1::2 (the
# octets' digits reused as hex groups; only the pattern has to be unique).
sfy_v6() {  # a.b.c.d
	local IFS=.
	set -- $1
	printf 'fd00:%s:%s:%s::%s\n' "$1" "$2" "$3" "$4"
}

# A point-to-point veth between two namespaces on subnet A.B.C/24 (and its
# /64 ULA twin, nodad so it is usable at once): NS1 gets .1, NS2 gets .2.
sfy_link() {  # ns1 ns2 a.b.c
	local ns1=$1 ns2=$2 net=$3 k if1 if2
	k=$(wc -l <"$SFY_TMP/links")
	if1=s${SFY_ID}n${k}a
	if2=s${SFY_ID}n${k}b
	ip link add "$if1" netns "$ns1" type veth peer name "$if2" netns "$ns2" || return 1
	ip -n "$ns1" addr add "$net.1/24" dev "$if1"
	ip -n "$ns2" addr add "$net.2/24" dev "$if2"
	ip -n "$ns1" -6 addr add "$(sfy_v6 "$net.1")/64" dev "$if1" nodad
	ip -n "$ns2" -6 addr add "$(sfy_v6 "$net.2")/64" dev "$if2" nodad
	ip -n "$ns1" link set "$if1" up
	ip -n "$ns2" link set "$if2" up
	echo "$ns1 $if1 $ns2 $if2 $net" >>"$SFY_TMP/links"
}

sfy_ifname() {  # ns peer-ns -> the interface of NS on its link to PEER
	awk -v a="$1" -v b="$2" '$1 == a && $3 == b {print $2} $3 == a && $1 == b {print $4}' \
	    "$SFY_TMP/links" | head -n1
}

# Writes stdin to /etc/netns/NS/FILE, which `ip netns exec NS` bind-mounts
# over /etc/FILE (resolv.conf, hosts) for everything run in NS; removed with
# the run's namespaces.
sfy_etc() {  # ns file
	mkdir -p "/etc/netns/$1" && cat >"/etc/netns/$1/$2"
}

# NS's nameserver is PREFIX.53 on its link to PEER, behind a static
# neighbour entry: nothing answers, but a query that escapes really goes out
# on the wire, where a capture sees it. /etc/hosts only has localhost.
sfy_wire_dns() {  # ns peer-ns prefix (a.b.c)
	local a b c
	IFS=. read -r a b c <<<"$3"
	ip -n "$1" neigh replace "$3.53" lladdr "$(printf '02:00:%02x:%02x:%02x:35' "$a" "$b" "$c")" \
		dev "$(sfy_ifname "$1" "$2")" nud permanent
	printf 'nameserver %s.53\noptions timeout:1 attempts:1\n' "$3" | sfy_etc "$1" resolv.conf
	printf '127.0.0.1 localhost\n' | sfy_etc "$1" hosts
}

# ---------------------------------------------------------------- servers

sfy_logfile() { printf '%s/%s.log\n' "$SFY_TMP" "$1"; }

# Starts CMD in NS in the background, output to $SFY_TMP/NAME.log.
sfy_bg() {  # name ns cmd...
	local name=$1 ns=$2 log
	shift 2
	log=$(sfy_logfile "$name")
	ip netns exec "$ns" "$@" </dev/null >>"$log" 2>&1 &
	echo "$!" >"$SFY_TMP/$name.pid"
	echo "$name" >>"$SFY_TMP/logs"
}

# Waits until something in NS listens on PORT (tcp, or udp with "udp"),
# looking at the socket table so that no probe connection shows up in the
# servers' logs (round-robin tests count those). Fails early if NAME died.
sfy_wait_port() {  # name ns port [secs] [tcp|udp]
	local name=$1 ns=$2 port=$3 secs=${4:-10} proto=${5:-tcp} i pid flag=-Hltn
	[ "$proto" = udp ] && flag=-Hlun
	pid=$(cat "$SFY_TMP/$name.pid" 2>/dev/null)
	for ((i = 0; i < secs * 20; i++)); do
		if [ -n "$(ip netns exec "$ns" ss $flag "sport = :$port" 2>/dev/null)" ]; then
			return 0
		fi
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			sfy_log "server $name died before listening on $port:"
			tail -n 20 "$(sfy_logfile "$name")" "$(sfy_logfile "$name-dante")" >&2 2>/dev/null
			return 1
		fi
		sleep 0.05
	done
	sfy_log "server $name: nothing listens on $proto port $port after ${secs}s"
	tail -n 20 "$(sfy_logfile "$name")" >&2
	return 1
}

sfy__served() {  # fail the whole test: a server that does not start is a setup bug
	sfy_wait_port "$@" && return 0
	echo "FAIL: setup: server $1 did not start"
	exit 1
}

# HTTP on PORT (all addresses, IPv4 and IPv6) serving $SFY_TMP/www.
sfy_http() {  # name ns port
	sfy_bg "$1" "$2" "$SFY_PY" -u -m http.server --bind :: "$3" --directory "$SFY_TMP/www"
	sfy__served "$1" "$2" "$3"
}

# TCP echo on PORT, IPv4 and IPv6.
sfy_echo() {  # name ns port
	sfy_bg "$1" "$2" socat "TCP6-LISTEN:$3,ipv6only=0,reuseaddr,fork" PIPE
	sfy__served "$1" "$2" "$3"
}

# A bare git repository under www, fetchable with the dumb HTTP protocol
# (plain files after `git update-server-info`); its README holds SFY_TOKEN.
sfy_git_repo() {  # name -> served at /NAME.git
	local w=$SFY_TMP/gitwork-$1
	(
		export HOME=$SFY_TMP GIT_CONFIG_NOSYSTEM=1
		git init -q "$w" &&
		printf '%s\n' "$SFY_TOKEN" >"$w/README" &&
		git -C "$w" add README &&
		git -C "$w" -c user.name=t -c user.email=t@t commit -qm init &&
		git clone -q --bare "$w" "$SFY_TMP/www/$1.git" &&
		git -C "$SFY_TMP/www/$1.git" update-server-info
	) || { echo "FAIL: setup: git repo"; exit 1; }
}

# The system user danted checks username/password against, created once per
# run (useradd + chpasswd) and deleted at exit. Prints "user pass".
sfy_user() {
	local u=sfyu$SFY_ID p=pw$SFY_ID$RANDOM
	if ! getent passwd "$u" >/dev/null; then
		useradd -M -N -d /nonexistent -s /usr/sbin/nologin "$u" || return 1
		printf '%s:%s\n' "$u" "$p" | chpasswd || return 1
		echo "$p" >"$SFY_TMP/user.pass"
	fi
	printf '%s %s\n' "$u" "$(cat "$SFY_TMP/user.pass")"
}

# danted on ADDR:PORT in NS, SOCKS4 and SOCKS5, METHOD none or username
# (then sfy_user's account), going out through every interface of NS (the
# route decides which), UDP relaying allowed for the UDP tests.
sfy_danted() {  # name ns addr port none|username
	local name=$1 ns=$2 addr=$3 port=$4 method=${5:-none} conf ifs i
	conf=$SFY_TMP/$name.conf
	ifs=$(ip -n "$ns" -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -v '^lo$')
	[ "$method" = username ] && { sfy_user >/dev/null || return 1; }
	{
		echo "logoutput: $(sfy_logfile "$name-dante")"
		echo "internal: $addr port = $port"
		for i in $ifs; do echo "external: $i"; done
		echo "external: lo"
		echo "external.rotation: route"
		echo "clientmethod: none"
		echo "socksmethod: $method"
		echo "user.privileged: root"
		echo "user.unprivileged: nobody"
		echo "timeout.negotiate: 10"
		printf 'client pass {\n\tfrom: 0/0 to: 0/0\n\tlog: error\n}\n'
		printf 'socks pass {\n\tfrom: 0/0 to: 0/0\n'
		printf '\tcommand: bind connect udpassociate bindreply udpreply\n'
		printf '\tlog: connect error\n}\n' 
	} >"$conf"
	# The log file exists and is readable before danted runs, so checks can
	# grep it even when danted never writes.
	: >"$(sfy_logfile "$name-dante")"
	sfy_bg "$name" "$ns" danted -f "$conf" -p "$SFY_TMP/$name.danted.pid"
	echo "$name-dante" >>"$SFY_TMP/logs"
	sfy__served "$name" "$ns" "$port"
}

# microsocks on ADDR:PORT in NS, with USER/PASS when given. It logs one
# "connected to" line per relayed connection.
sfy_microsocks() {  # name ns addr port [user pass]
	local name=$1 ns=$2 addr=$3 port=$4
	if [ $# -ge 6 ]; then
		sfy_bg "$name" "$ns" microsocks -i "$addr" -p "$port" -u "$5" -P "$6"
	else
		sfy_bg "$name" "$ns" microsocks -i "$addr" -p "$port"
	fi
	sfy__served "$name" "$ns" "$port"
}

# Keys for sshd and ssh, generated once per run.
sfy__ssh_keys() {
	local d=$SFY_TMP/ssh
	[ -f "$d/id" ] && return 0
	mkdir -p "$d" && chmod 700 "$d"
	ssh-keygen -q -t ed25519 -N '' -f "$d/host" >/dev/null &&
	ssh-keygen -q -t ed25519 -N '' -f "$d/id" >/dev/null &&
	cp "$d/id.pub" "$d/authorized_keys"
}

# Options for any ssh client of the run's sshds (root with the run's key).
sfy_ssh_opts() {
	printf '%s\n' -F /dev/null -i "$SFY_TMP/ssh/id" -o StrictHostKeyChecking=no \
	    -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR \
	    -o ConnectTimeout=10
}

# sshd on ADDR:PORT in NS accepting root with the run's key only.
sfy_sshd() {  # name ns addr port
	local name=$1 ns=$2 addr=$3 port=$4 conf
	sfy__ssh_keys || { echo "FAIL: setup: ssh keys"; exit 1; }
	mkdir -p /run/sshd && chmod 755 /run/sshd  # privilege separation dir
	conf=$SFY_TMP/$name.sshd_config
	cat >"$conf" <<-EOF
		ListenAddress $addr:$port
		HostKey $SFY_TMP/ssh/host
		PidFile none
		AuthorizedKeysFile $SFY_TMP/ssh/authorized_keys
		PermitRootLogin prohibit-password
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		UsePAM no
		StrictModes no
		AllowTcpForwarding yes
		PrintMotd no
		LogLevel VERBOSE
	EOF
	sfy_bg "$name" "$ns" /usr/sbin/sshd -D -e -f "$conf"
	sfy__served "$name" "$ns" "$port"
}

# `ssh -N -D 127.0.0.1:LPORT` in NS to an sshd of the run: a SOCKS5 proxy on
# the client's own loopback.
sfy_ssh_socks() {  # name ns lport sshd-addr sshd-port
	local name=$1 ns=$2 lport=$3 addr=$4 port=$5 opts
	mapfile -t opts < <(sfy_ssh_opts)
	sfy_bg "$name" "$ns" ssh "${opts[@]}" -N -o ExitOnForwardFailure=yes \
	    -D "127.0.0.1:$lport" -p "$port" "root@$addr"
	sfy__served "$name" "$ns" "$lport" 15
}

# ---------------------------------------------------------------- configs

# Writes $SFY_TMP/NAME.yaml (INTERFACE.md) and, for SFY_VIA=proxychains4,
# $SFY_TMP/NAME.pc.conf with the same chain. LEN "-" = no chain_length.
# Timeouts: SFY_CONNECT_TIMEOUT (3s) and SFY_HANDSHAKE_TIMEOUT (10s).
sfy_conf() {  # name strict|dynamic|random|round_robin len|- url...
	local name=$1 mode=$2 len=$3 u y p scheme rest cred hostport user pass host port
	shift 3
	y=$SFY_TMP/$name.yaml
	p=$SFY_TMP/$name.pc.conf
	{
		echo "proxies:"
		for u in "$@"; do echo "  - \"$u\""; done
		echo "chain: $mode"
		[ "$len" != - ] && echo "chain_length: $len"
		echo "timeouts:"
		echo "  connect: ${SFY_CONNECT_TIMEOUT:-3s}"
		echo "  handshake: ${SFY_HANDSHAKE_TIMEOUT:-10s}"
	} >"$y"
	{
		echo "${mode}_chain"
		[ "$len" != - ] && echo "chain_len = $len"
		echo "quiet_mode"
		echo "tcp_read_time_out 10000"
		echo "tcp_connect_time_out 3000"
		echo "[ProxyList]"
		for u in "$@"; do
			scheme=${u%%://*} rest=${u#*://} cred='' user='' pass=''
			case $rest in *@*) cred=${rest%@*} rest=${rest##*@} ;; esac
			[ -n "$cred" ] && user=${cred%%:*} pass=${cred#*:}
			# proxychains takes them verbatim: undo the URL's %XX
			user=$(printf '%b' "${user//%/\\x}") pass=$(printf '%b' "${pass//%/\\x}")
			hostport=${rest%%/*}
			case $hostport in
			\[*) host=${hostport#[} host=${host%%]*} port=${hostport##*]:} ;;
			*) host=${hostport%:*} port=${hostport##*:} ;;
			esac
			case $scheme in socks4a) scheme=socks4 ;; socks5h) scheme=socks5 ;; esac
			echo "$scheme $host $port $user $pass"
		done
	} >"$p"
	chmod 600 "$y" "$p"
}

# ---------------------------------------------------------------- running

# Runs CMD in NS through socksify: `sfy_run NS [socksify options] -- CMD...`.
# Under SANITIZE=1 the ASan runtime comes first in LD_PRELOAD (the launcher
# adds libsocksify after it). Killed after SFY_CMD_TIMEOUT seconds (exit 124).
# With SFY_VIA=proxychains4 only "-f X.yaml" is understood and X.pc.conf used.
sfy_run() {  # ns [opts] -- cmd...
	local ns=$1 opts=() pre=() conf
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
	[ "${1:-}" = -- ] && shift
	[ "${SANITIZE:-}" = 1 ] && [ -n "${SFY_ASAN_RT:-}" ] && pre=(LD_PRELOAD="$SFY_ASAN_RT")
	if [ "$SFY_VIA" = proxychains4 ]; then
		conf=
		set -- "${opts[@]}" -- "$@"
		while [ "$1" != -- ]; do
			[ "$1" = -f ] && conf=${2%.yaml}.pc.conf && shift
			shift
		done
		shift
		timeout -k 2 "$SFY_CMD_TIMEOUT" ip netns exec "$ns" \
		    proxychains4 -q -f "$conf" "$@"
		return
	fi
	timeout -k 2 "$SFY_CMD_TIMEOUT" ip netns exec "$ns" env "${pre[@]}" \
	    ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} \
	    ${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} \
	    "$SOCKSIFY_BIN" "${opts[@]}" -- "$@"
}

# Like sfy_run without the launcher: LD_PRELOAD=libsocksify.so and the
# environment given as VAR=value words before "--".
sfy_preload() {  # ns [VAR=value...] -- cmd...
	local ns=$1 envs=() lib=$SOCKSIFY_LIB
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	[ "${1:-}" = -- ] && shift
	[ "${SANITIZE:-}" = 1 ] && [ -n "${SFY_ASAN_RT:-}" ] && lib="$SFY_ASAN_RT $lib"
	timeout -k 2 "$SFY_CMD_TIMEOUT" ip netns exec "$ns" env LD_PRELOAD="$lib" \
	    ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} \
	    ${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} "${envs[@]}" "$@"
}

# CMD in NS without any proxying (reachability checks, setup).
sfy_direct() {  # ns cmd...
	local ns=$1
	shift
	timeout -k 2 "$SFY_CMD_TIMEOUT" ip netns exec "$ns" "$@"
}

# ---------------------------------------------------------------- assertions

# Every check runs CMD with output captured to SFY_LAST_OUT and sets
# SFY_LAST_RC and SFY_LAST_MS (wall time), prints one PASS/FAIL line and on
# failure the command's output and the tails of the server logs
# (SFY_WATCH_LOGS="name..." narrows them; default all of the run's).
sfy__exec() {
	local t0 t1
	SFY_NCHECK=$((${SFY_NCHECK:-0} + 1))
	SFY_LAST_OUT=$SFY_TMP/check.$SFY_NCHECK.out
	t0=$(date +%s%N)
	"$@" >"$SFY_LAST_OUT" 2>&1 </dev/null
	SFY_LAST_RC=$?
	t1=$(date +%s%N)
	SFY_LAST_MS=$(((t1 - t0) / 1000000))
}

sfy__pass() {
	SFY_PASS=$((SFY_PASS + 1))
	printf 'PASS: %s (%sms)\n' "$1" "${SFY_LAST_MS:-0}"
}

sfy__fail() {  # desc why
	local n f
	SFY_FAIL=$((SFY_FAIL + 1))
	SFY_FAILED+=("$1")
	printf 'FAIL: %s -- %s (exit %s, %sms)\n' "$1" "$2" "${SFY_LAST_RC:-?}" "${SFY_LAST_MS:-0}"
	if [ -s "${SFY_LAST_OUT:-/dev/null}" ]; then
		echo "    --- output (last 15 lines):"
		tail -n 15 "$SFY_LAST_OUT" | cut -c1-300 | sed 's/^/    | /'
	fi
	for n in ${SFY_WATCH_LOGS:-$(sort -u "$SFY_TMP/logs")}; do
		f=$(sfy_logfile "$n")
		[ -s "$f" ] || continue
		echo "    --- $n log (last 5 lines):"
		tail -n 5 "$f" | cut -c1-300 | sed 's/^/    | /'
	done
}

sfy__timed_out() { [ "$SFY_LAST_RC" = 124 ] || [ "$SFY_LAST_RC" = 137 ]; }

ok() {  # desc cmd...: passes when CMD exits 0
	local desc=$1
	shift
	sfy__exec "$@"
	if [ "$SFY_LAST_RC" = 0 ]; then sfy__pass "$desc"
	else sfy__fail "$desc" "command failed"; return 1; fi
}

# Passes when CMD fails cleanly: nonzero, but not killed for hanging.
fails() {  # desc cmd...
	local desc=$1
	shift
	sfy__exec "$@"
	if sfy__timed_out; then sfy__fail "$desc" "hung (killed after ${SFY_CMD_TIMEOUT}s)"; return 1; fi
	if [ "$SFY_LAST_RC" != 0 ]; then sfy__pass "$desc"
	else sfy__fail "$desc" "succeeded but should have failed"; return 1; fi
}

# Passes when CMD exits 0 and its output (stdout+stderr) contains STRING.
expect_out() {  # desc string cmd...
	local desc=$1 want=$2
	shift 2
	sfy__exec "$@"
	if [ "$SFY_LAST_RC" != 0 ]; then sfy__fail "$desc" "command failed"; return 1; fi
	if grep -qF -- "$want" "$SFY_LAST_OUT"; then sfy__pass "$desc"
	else sfy__fail "$desc" "output lacks '$want'"; return 1; fi
}

# Passes when CMD fails cleanly and its output matches the extended regex
# (case-insensitive): the error a user sees must say what went wrong.
fails_with() {  # desc regex cmd...
	local desc=$1 re=$2
	shift 2
	sfy__exec "$@"
	if sfy__timed_out; then sfy__fail "$desc" "hung (killed after ${SFY_CMD_TIMEOUT}s)"; return 1; fi
	if [ "$SFY_LAST_RC" = 0 ]; then sfy__fail "$desc" "succeeded but should have failed"; return 1; fi
	if grep -qEi -- "$re" "$SFY_LAST_OUT"; then sfy__pass "$desc"
	else sfy__fail "$desc" "output does not match /$re/"; return 1; fi
}

# A plain condition as a check: `check "3 connections" test "$n" -eq 3`.
check() { ok "$@"; }

finish() {
	echo
	echo "$SFY_PASS passed, $SFY_FAIL failed"
	if [ "$SFY_FAIL" -gt 0 ]; then
		local d
		for d in "${SFY_FAILED[@]}"; do echo "  failed: $d"; done
		return 1
	fi
	return 0
}

# ---------------------------------------------------------------- packets

# tcpdump in NS on IFACE (any for all) with a pcap-filter, into
# $SFY_TMP/NAME.pcap; returns once tcpdump is listening. --immediate-mode:
# without it packets still in the kernel's ring block when the capture is
# stopped are counted as received but never written.
sfy_capture_start() {  # name ns iface filter...
	local name=$1 ns=$2 ifc=$3 i
	shift 3
	sfy_bg "$name" "$ns" tcpdump -i "$ifc" -nn -U --immediate-mode -Z root -w "$SFY_TMP/$name.pcap" "$@"
	for ((i = 0; i < 100; i++)); do
		grep -q 'listening on' "$(sfy_logfile "$name")" 2>/dev/null && return 0
		kill -0 "$(cat "$SFY_TMP/$name.pid")" 2>/dev/null || break
		sleep 0.05
	done
	echo "FAIL: setup: tcpdump $name did not start"
	tail -n 5 "$(sfy_logfile "$name")"
	exit 1
}

# Stops the capture NAME and prints how many packets it saw.
sfy_capture_stop() {  # name
	local pid i
	pid=$(cat "$SFY_TMP/$1.pid")
	sleep 0.2  # let packets of the last check reach the capture
	kill -INT "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	tcpdump -nn -r "$SFY_TMP/$1.pcap" 2>/dev/null | wc -l
}

sfy_capture_show() {  # name: the captured packets, for failure messages
	tcpdump -nn -r "$SFY_TMP/$1.pcap" 2>/dev/null | head -n 20
}

# Number of relayed connections a proxy's log shows so far.
sfy_proxy_conns() {  # name (a sfy_danted or sfy_microsocks server)
	local f
	f=$(sfy_logfile "$1")
	if [ -e "$(sfy_logfile "$1-dante")" ]; then
		grep -c 'tcp/connect \[' "$(sfy_logfile "$1-dante")"
	else
		grep -c 'connected to' "$f"
	fi
}

# sfy_nginx_conf CONNECTIONS: writes $SFY_TMP/nginx/nginx.conf for a
# foreground, single-process nginx keeping every file in $SFY_TMP/nginx,
# with one server block whose lines come on stdin.
sfy_nginx_conf() {
	mkdir -p "$SFY_TMP/nginx"
	{
		cat <<EOF
daemon off;
master_process off;
worker_processes 1;
error_log $SFY_TMP/nginx/error.log info;
pid $SFY_TMP/nginx/nginx.pid;
events { worker_connections $1; }
http {
	access_log $SFY_TMP/nginx/access.log;
	client_body_temp_path $SFY_TMP/nginx/body;
	proxy_temp_path $SFY_TMP/nginx/proxy;
	fastcgi_temp_path $SFY_TMP/nginx/fastcgi;
	uwsgi_temp_path $SFY_TMP/nginx/uwsgi;
	scgi_temp_path $SFY_TMP/nginx/scgi;
	server {
EOF
		cat
		printf '\t}\n}\n'
	} >"$SFY_TMP/nginx/nginx.conf"
}
