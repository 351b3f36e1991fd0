#!/bin/bash
# Asynchronous chain set-up (issue 10): a non-blocking connect() through the
# chain returns -1/EINPROGRESS at once and the program then sees exactly
# what the kernel shows for a slow direct connect, through every readiness
# API. Each case is one run of tests/tools/nbprobe (its header lists the
# checks: EINPROGRESS within the bound, no readiness and SO_ERROR 0 /
# EALREADY / EAGAIN / ENOTCONN while pending, one wake no earlier than the
# proxy's last reply, SO_ERROR and getpeername after it, an exact echo, no
# fd leak).
#
# The proxies: tests/tools/fakepeer.py scripts that delay their last reply
# by 0.6 s (so "no readiness before the final reply" means something) or
# fail a step (refuse, host unreachable, not allowed, close, reset,
# silence), and danted behind tests/tools/delayrelay (250 ms each way), a
# real server whose chain takes measurable time. Covered:
#   - poll, ppoll, __poll_chk, __ppoll_chk, select, pselect;
#     epoll LT/ET/ONESHOT/EXCLUSIVE x registered before/after connect(),
#     epoll_pwait and epoll_pwait2, two epoll sets, a dup()ed fd;
#   - each fault x epoll ET / epoll LT / poll / select, with the errno the
#     blocking path gives (libsocksify/errmap.c), once in SO_ERROR;
#   - EPOLL_CTL_MOD, MOD to IN only, DEL, close (of the last fd and of one
#     of two), shutdown, fork, clearing O_NONBLOCK and every I/O call while
#     pending;
#   - SOCKS4 and HTTP CONNECT hops, a dead hop 1;
#   - 16 threads x 200 connects (epoll ET) and 4 x 50 (poll): no lost wake,
#     no fd leak; connect() time over 100 sequential connects.
# Control runs without the library check the probe itself against the
# kernel: a direct connect to a listener whose accept queue is full stays
# pending (the pending checks, close, shutdown), and one whose first SYN is
# dropped completes or is refused after ~1 s (the wake, MOD, DEL, fork,
# clearing O_NONBLOCK): the same checks must pass there.
#
# Runs on loopback only, the library preloaded directly.
set -u
. "$(dirname "$0")/lib/loopback.sh" tcp_async
probe=$SFY_TOOLS/nbprobe
relay=$SFY_TOOLS/delayrelay
for b in "$probe" "$relay"; do
	[ -x "$b" ] || { echo "tcp_async: $b not built" >&2; exit 1; }
done
DANTED=$(command -v danted || echo /usr/sbin/danted)
chmod 755 "$tmp"  # danted drops privileges and still writes its log here

# connect() must not build the chain. A single case proves it with a bound of
# 100 ms on a chain that takes >= 500 ms here: scheduling delays on a busy
# 2-core machine (tens of ms seen under parallel builds) must not fail it, a
# chain built inside connect() always does. The many-connect cases report
# connect()'s time (median, 95th percentile, max, and how many exceed the
# 1 ms target) but never fail on it: two cores shared by 16 threads preempt
# a connect() past any small bound now and then (CI once saw 11 of 200 over
# 1 ms). Their verdict is structural: through the slow link (250 ms each way)
# no connect() may take half a round trip, which waiting for the proxy even
# once would exceed. ASan makes every call slower.
cus=100000 cus_many=1000
[ "${SANITIZE:-}" = 1 ] && cus_many=3000
dst_port=4242
ok_reply=05000001000000000000
failed=0 ncases=0

start_peer() {  # NAME STEPS...: sets $port; log $tmp/NAME.log
	local name=$1
	shift
	$py "$top/tests/tools/fakepeer.py" --port-file "$tmp/$name.port" --log "$tmp/$name.log" \
		"$@" >/dev/null 2>"$tmp/$name.peer-err" &
	pids+=($!)
	wait_file "$tmp/$name.port" || { echo "fakepeer $name did not start"; exit 1; }
	port=$(cat "$tmp/$name.port")
}

write_config() {  # NAME URL [HANDSHAKE]: $tmp/NAME.yaml
	cat >"$tmp/$1.yaml" <<-EOF
	proxies:
	  - $2
	timeouts:
	  connect: 2s
	  handshake: ${3:-3s}
	EOF
}

# probe NAME CONFIG [nbprobe args...]: one case through the library.
probe() {
	local name=$1 conf=$2 rc
	shift 2
	ncases=$((ncases + 1))
	LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/$conf.yaml timeout -k 2 30 \
		"$probe" --connect-us "$cus" "$@" >"$tmp/$name.out" 2>&1
	rc=$?
	report "$name" $rc
}

report() {  # NAME RC
	local n
	if [ "$2" -eq 0 ] && ! grep -q '^FAIL' "$tmp/$1.out"; then
		n=$(grep -c '^ok' "$tmp/$1.out")
		echo "ok   $1 ($n checks$(sed -n 's/^ok   wake-set0 [^ ]* at \([0-9]*\) ms.*/, wake at \1 ms/p' \
			"$tmp/$1.out"))"
	else
		failed=$((failed + 1))
		echo "FAIL $1 (exit $2)"
		grep -v '^ok' "$tmp/$1.out" | head -12 | sed 's/^/    | /'
	fi
}

# ------------------------------------------------------------------ proxies
# PD: the peers' delay. Generous, so the checks made while the set-up is
# pending (at once, then at half the minimum) are done long before it ends
# even when a busy machine or ASan delays the probe.
PD=0.6
slow="readsocks5; send 0500; readsocks5; sleep $PD; send $ok_reply; echo"
start_peer slow "$slow"
write_config slow "socks5://127.0.0.1:$port"
start_peer slowmethod "readsocks5; sleep $PD; send 0500; readsocks5; send $ok_reply; echo"
write_config slowmethod "socks5://127.0.0.1:$port"
start_peer s4 "readsocks4; sleep $PD; send 005a000000000000; echo"
write_config s4 "socks4://127.0.0.1:$port"
start_peer http "readhttp; sleep $PD; sendtext HTTP/1.1 200 Connection established\\r\\n\\r\\n; echo"
write_config http "http://127.0.0.1:$port"
# faults: NAME:ERRNOS:STEPS
faults=(
	"refused:ECONNREFUSED:readsocks5; send 0500; readsocks5; sleep $PD; send 05050001000000000000; close"
	"hostunreach:EHOSTUNREACH:readsocks5; send 0500; readsocks5; sleep $PD; send 05040001000000000000; close"
	"notallowed:EACCES:readsocks5; send 0500; readsocks5; sleep $PD; send 05020001000000000000; close"
	"closes:ECONNREFUSED,ECONNRESET:readsocks5; sleep $PD; close"
	"resets:ECONNREFUSED,ECONNRESET:readsocks5; sleep $PD; rst"
	"silent:ETIMEDOUT:readsocks5; send 0500; readsocks5; stall"
)
for f in "${faults[@]}"; do
	IFS=: read -r fname _ steps <<<"$f"
	start_peer "$fname" "$steps"
	# silence: a short handshake timeout keeps the case fast
	write_config "$fname" "socks5://127.0.0.1:$port" "$([ "$fname" = silent ] && echo 1s || echo 3s)"
done
dead=$(freeport)
write_config dead "socks5://127.0.0.1:$dead"

D="--port $dst_port"
S="--min-ms 550 --max-ms 4000"   # the proxy's last reply comes after PD = 0.6 s

echo "# controls: the probe agrees with the kernel on a direct connect that stays pending"
cat >"$tmp/blackhole.py" <<'PY'
import os, socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
fill = []
for _ in range(3):  # a full accept queue: further SYNs are dropped
    c = socket.socket(); c.setblocking(False); c.connect_ex(s.getsockname()); fill.append(c)
with open(sys.argv[1] + ".tmp", "w") as f: f.write("%d\n" % s.getsockname()[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(300)
PY
$py "$tmp/blackhole.py" "$tmp/bh.port" &
pids+=($!)
wait_file "$tmp/bh.port" || { echo "blackhole did not start"; exit 1; }
bh=$(cat "$tmp/bh.port")
for c in "epoll --mode et:none" "poll:io" "select:close" "epoll --mode et:shutdown"; do
	ncases=$((ncases + 1))
	name="control_${c%%:*}_${c##*:}"
	name=${name// --mode /_}
	timeout -k 2 30 "$probe" --port "$bh" --api ${c%%:*} --expect pending --min-ms 200 --max-ms 400 \
		--action "${c##*:}" >"$tmp/$name.out" 2>&1
	report "$name" $?
done

# A slow direct connect, the kernel's own: the client's first SYN meets a
# full accept queue and is dropped; 0.5 s after that the server makes room
# (accept) or closes the port (refuse), so the SYN retransmitted at ~1 s
# completes or is refused. The probe's expectations must hold there.
cat >"$tmp/slowaccept.py" <<'PY'
import os, socket, sys, threading, time
mode, pf = sys.argv[1], sys.argv[2]
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
fill = []
for _ in range(3):
    c = socket.socket(); c.setblocking(False); c.connect_ex(s.getsockname()); fill.append(c)
port = s.getsockname()[1]
def syn_sent():  # client sockets to our port whose SYN was dropped
    with open("/proc/net/tcp") as f:
        return sum(1 for l in f.readlines()[1:]
                   if l.split()[3] == "02" and int(l.split()[2].split(":")[1], 16) == port)
n0 = syn_sent()
with open(pf + ".tmp", "w") as f: f.write("%d\n" % port)
os.rename(pf + ".tmp", pf)
# Wait for the probe's SYN to be dropped (not a fixed time: a slow start of
# the probe must not find the queue free already), then make room 0.5 s on.
t = time.monotonic()
while syn_sent() <= n0 and time.monotonic() - t < 20:
    time.sleep(0.005)
time.sleep(0.5)
for c in fill: c.close()
if mode == "refuse":
    s.close(); time.sleep(30); sys.exit()
s.setblocking(False)
while True:
    try: s.accept()[0].close()
    except BlockingIOError: break
s.setblocking(True)
def echo(a):
    while True:
        d = a.recv(65536)
        if not d: break
        a.sendall(d)
    a.close()
while True:
    a, _ = s.accept()
    threading.Thread(target=echo, args=(a,), daemon=True).start()
PY
kernel_control() {  # NAME accept|refuse [nbprobe args...]
	local name=control_$1 mode=$2 pid
	shift 2
	ncases=$((ncases + 1))
	rm -f "$tmp/sa.port"
	$py "$tmp/slowaccept.py" "$mode" "$tmp/sa.port" &
	pid=$!
	wait_file "$tmp/sa.port" || { echo "slowaccept did not start"; exit 1; }
	timeout -k 2 30 "$probe" --port "$(cat "$tmp/sa.port")" --min-ms 700 --max-ms 3000 "$@" \
		>"$tmp/$name.out" 2>&1
	report "$name" $?
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}
kernel_control slow_epoll_et_2sets accept --api epoll --mode et --sets 2
kernel_control slow_epoll_exclusive_2sets_dup accept --api epoll --mode exclusive --sets 2 --dup
kernel_control slow_select accept --api select
kernel_control slow_mod_oneshot accept --api epoll --mode oneshot --action mod
kernel_control slow_mod_in accept --api epoll --mode et --action mod-in
kernel_control slow_del accept --api epoll --mode lt --sets 2 --action del
kernel_control slow_fork accept --api poll --action fork
kernel_control slow_clear_nonblock accept --api poll --action clear-nonblock
kernel_control slow_refused_epoll_et refuse --api epoll --mode et --expect ECONNREFUSED
kernel_control slow_refused_poll_connect_first refuse --api poll --expect ECONNREFUSED --connect-first

echo "# success: every readiness API, the last reply $PD s late"
for api in poll ppoll poll-chk ppoll-chk select pselect; do
	probe "ok_$api" slow $D --api $api $S
done
for mode in lt et oneshot exclusive; do
	for reg in before after; do
		probe "ok_epoll_${mode}_$reg" slow $D --api epoll --mode $mode --register $reg $S
	done
done
probe ok_epoll_et_pwait slow $D --api epoll --mode et --wait pwait $S
probe ok_epoll_lt_pwait2 slow $D --api epoll --mode lt --wait pwait2 --register after $S
probe ok_epoll_et_pwait2 slow $D --api epoll --mode et --wait pwait2 $S
for mode in lt et oneshot exclusive; do
	probe "ok_epoll_${mode}_2sets" slow $D --api epoll --mode $mode --sets 2 --register before $S
done
probe ok_epoll_et_2sets_after slow $D --api epoll --mode et --sets 2 --register after $S
probe ok_epoll_et_dup_before slow $D --api epoll --mode et --dup --register before $S
probe ok_epoll_lt_dup_after slow $D --api epoll --mode lt --dup --register after $S
probe ok_poll_dup slow $D --api poll --dup $S
probe ok_slow_method_reply slowmethod $D --api epoll --mode et $S
probe ok_socks4 s4 $D --api epoll --mode et $S
probe ok_http_connect http $D --api poll $S

echo "# faults: the wake carries the error, SO_ERROR names it once"
for f in "${faults[@]}"; do
	IFS=: read -r fname errs _ <<<"$f"
	lim=$S
	[ "$fname" = silent ] && lim="--min-ms 800 --max-ms 3000"
	probe "${fname}_epoll_et" "$fname" $D --api epoll --mode et --expect "$errs" $lim
	probe "${fname}_epoll_lt_after" "$fname" $D --api epoll --mode lt --register after \
		--expect "$errs" $lim
	probe "${fname}_poll" "$fname" $D --api poll --expect "$errs" $lim
	probe "${fname}_select" "$fname" $D --api select --expect "$errs" $lim
done
probe refused_connect_first refused $D --api epoll --mode oneshot --expect ECONNREFUSED \
	--connect-first $S
probe refused_2sets_dup refused $D --api epoll --mode et --sets 2 --dup --expect ECONNREFUSED $S
# Nothing listens at hop 1: the kernel may refuse inside connect() already.
probe dead_hop_epoll_et dead $D --api epoll --mode et --expect ECONNREFUSED --allow-immediate \
	--max-ms 3000
probe dead_hop_poll dead $D --api poll --expect ECONNREFUSED --allow-immediate --max-ms 3000

echo "# what the program does while the set-up is pending"
probe mod_et slow $D --api epoll --mode et --action mod $S
probe mod_oneshot_2sets slow $D --api epoll --mode oneshot --sets 2 --action mod $S
probe mod_exclusive slow $D --api epoll --mode exclusive --action mod $S
probe mod_in_et slow $D --api epoll --mode et --action mod-in $S
probe mod_in_lt_after slow $D --api epoll --mode lt --register after --action mod-in $S
probe del_lt slow $D --api epoll --mode lt --action del $S
probe del_et_2sets slow $D --api epoll --mode et --sets 2 --action del $S
for c in "epoll --mode et" poll; do
	n=${c// --mode /_}
	start_peer "close_$n" "readsocks5; send 0500; readsocks5; stall"
	write_config "close_$n" "socks5://127.0.0.1:$port"
	probe "close_$n" "close_$n" $D --api $c --action close --min-ms 550 \
		--peer-log "$tmp/close_$n.log"
	start_peer "shutdown_$n" "readsocks5; send 0500; readsocks5; stall"
	write_config "shutdown_$n" "socks5://127.0.0.1:$port"
	probe "shutdown_$n" "shutdown_$n" $D --api $c --action shutdown --min-ms 550 \
		--peer-log "$tmp/shutdown_$n.log"
done
probe close_dup_both slow $D --api epoll --mode et --dup --action close $S
probe close_orig_dup_completes slow $D --api epoll --mode et --dup --action close-orig $S
probe fork_poll slow $D --api poll --action fork $S
probe fork_epoll_et slow $D --api epoll --mode et --action fork $S
probe setuid_pending slow $D --api epoll --mode et --action setuid $S
probe clear_nonblock slow $D --api poll --action clear-nonblock $S
probe clear_nonblock_refused refused $D --api poll --action clear-nonblock --expect ECONNREFUSED $S
probe io_calls_eagain slow $D --api epoll --mode lt --dup --action io $S
# close() and dup() from a signal handler while the thread is inside
# epoll_ctl(): both are async-signal-safe, so their hooks must not wait for
# the readiness table's lock the interrupted hook holds.
ncases=$((ncases + 1))
sc=signal_handler_close_during_epoll_ctl
LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/slow.yaml timeout -k 2 20 "$SFY_TOOLS/sigclose" \
	>"$tmp/$sc.out" 2>&1
rc=$?
[ $rc -eq 0 ] && sed -i 's/^sigclose:/ok   sigclose:/' "$tmp/$sc.out"
report $sc $rc
# fork() while pending where no driver of the waiting process will end the
# set-up: the child's own epoll set, and the owner exiting at once. The
# child's wait must end (within the chain's timeout), never hang.
for m in child-epoll owner-exit; do
	ncases=$((ncases + 1))
	LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/slow.yaml timeout -k 2 20 "$SFY_TOOLS/forkpend" \
		$m 4242 >"$tmp/fork_$m.out" 2>&1
	rc=$?
	sed -i 's/^ok: /ok   /' "$tmp/fork_$m.out"
	report fork_$m $rc
done
# The fork case's peer saw one set-up only (greeting and request once each
# per connection): the child never ran a handshake of its own.
ncases=$((ncases + 1))
if [ "$(grep -c ' accept$' "$tmp/slow.log")" -eq "$(grep -c ' greeting ' "$tmp/slow.log")" ] &&
	! grep -q ' ignored ' "$tmp/slow.log"; then
	echo "ok   slow_peer_one_handshake_per_connection"
else
	failed=$((failed + 1))
	echo "FAIL slow_peer_one_handshake_per_connection"
	tail -n 20 "$tmp/slow.log" | sed 's/^/    | /'
fi

echo "# a real server: danted behind a link adding 50 ms each way"
$py "$top/tests/tools/echoserver.py" --port-file "$tmp/echo.port" >/dev/null 2>&1 &
pids+=($!)
wait_file "$tmp/echo.port" || { echo "echo server did not start"; exit 1; }
echo_port=$(cat "$tmp/echo.port")
if [ -x "$DANTED" ]; then
	dport=$(freeport)
	cat >"$tmp/danted.conf" <<-EOF
		logoutput: $tmp/danted.log
		internal: 127.0.0.1 port = $dport
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
		        command: connect
		        log: error
		}
	EOF
	"$DANTED" -f "$tmp/danted.conf" -p "$tmp/danted.pid" >/dev/null 2>&1 &
	pids+=($!)
	rport=$(freeport)
	"$relay" --listen "127.0.0.1:$rport" --to "127.0.0.1:$dport" --delay 250 >/dev/null 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		ss -ltnH "sport = :$dport" | grep -q . && ss -ltnH "sport = :$rport" | grep -q . && break
		sleep 0.05
	done
	write_config danted_slow "socks5://127.0.0.1:$rport"
	write_config danted "socks5://127.0.0.1:$dport"
	# At least one round trip through the link (the greeting and the request
	# may go in one flight): >= 500 ms before the reply can be in.
	R="--port $echo_port --min-ms 450 --max-ms 4000"
	probe danted_epoll_et danted_slow $R --api epoll --mode et
	probe danted_epoll_lt_2sets_after danted_slow $R --api epoll --mode lt --sets 2 --register after
	probe danted_poll danted_slow $R --api poll
	probe danted_select_dup danted_slow $R --api select --dup
	probe danted_fork danted_slow $R --api poll --action fork
	probe danted_refused danted_slow --port "$(freeport)" --api epoll --mode et --min-ms 450 \
		--max-ms 4000 --expect ECONNREFUSED
	# connect() time over 100 sequential connects (one thread, one at a time)
	probe connect_time_100 danted --port "$echo_port" --connect-us "$cus_many" --threads 1 --count 100 --window 1
	# the stress case: 16 threads x 200 (4 in flight each), epoll ET
	probe threads_16x200_epoll danted --port "$echo_port" --connect-us "$cus_many" --api epoll --threads 16 --count 200 \
		--window 4 --max-ms 10000
	probe threads_4x50_poll danted_slow --port "$echo_port" --connect-us "$cus_many" --connect-max-us 250000 \
		--api poll --threads 4 --count 50 --window 8 --max-ms 10000
	for f in connect_time_100 threads_16x200_epoll threads_4x50_poll; do
		sed -n "s/^ok   threads-completed/   $f:/p; s/^info /   $f: /p" "$tmp/$f.out"
	done
else
	echo "SKIP danted cases: danted missing (tests/deps.sh test installs it)"
fi

echo
echo "$ncases cases, $failed failed"
[ "$failed" -eq 0 ]
