#!/bin/bash
# isolate: (issue 14) against a fake SOCKS5 peer (tests/tools/fakepeer.py)
# that picks username/password and logs the RFC 1929 message of every
# connection: the credentials are "<torS0X>0" and a token that is the same
# for every connection of one process tree (isolate: process) -- with the
# launcher and without it, across exec and fork -- and differs between two
# trees; isolate: connection gives every connection its own password (32
# hex of its own, nothing of the tree's token). Only hop 1 gets them: hop 2
# of a chain (reached through hop 1, a Tor exit in real life) is offered
# "no authentication" alone. isolate: none offers only "no
# authentication", and adds no SOCKSIFY_ISOLATE_TOKEN to the environment
# (with isolate: process the library exports one to its children); a hop
# with its own user:pass sends those; a server that picks "no
# authentication" over the offer sees no credentials and the connection
# works.
#
# Runs on loopback only. Under SANITIZE=1 the launcher runs with the ASan
# runtime preloaded (it puts libsocksify after it for the tree).
set -u
. "$(dirname "$0")/lib/loopback.sh" tor_isolate
peer_py=$top/tests/tools/fakepeer.py
[ -x "$SOCKSIFY_BIN" ] || { echo "tor_isolate: $SOCKSIFY_BIN not built" >&2; exit 1; }
failed=0
dst_port=4242
ok_reply=05000001000000000000
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
user_hex=$(hex '<torS0X>0')

# start_peer NAME SCRIPT: sets $port, log in $tmp/NAME.log.
start_peer() {
	$py "$peer_py" --port-file "$tmp/$1.port" --log "$tmp/$1.log" "$2" \
		>/dev/null 2>"$tmp/$1.peer-err" &
	pids+=($!)
	wait_file "$tmp/$1.port" || { echo "fakepeer $1 did not start" >&2; exit 1; }
	port=$(cat "$tmp/$1.port")
}
conf() {  # NAME URL ISOLATE
	printf 'proxies:\n  - %s\nisolate: %s\ntimeouts:\n  connect: 2s\n  handshake: 3s\n' \
		"$2" "$3" >"$tmp/$1.yaml"
}
pass() { echo "ok   $1"; }
bad() {
	echo "FAIL $1: $2"
	failed=$((failed + 1))
	sed 's/^/    peer  | /' "$tmp/$3.log" 2>/dev/null | head -20
}
# The passwords of the auth lines of peer log NAME, in connection order.
passwords() {
	grep -E '^[0-9]+ auth ' "$tmp/$1.log" | sort -n | while read -r _ _ h; do
		local ulen=$((16#${h:2:2}))
		local u=${h:4:$((2 * ulen))} rest=${h:$((4 + 2 * ulen))}
		[ "$u" = "$user_hex" ] || { echo "BADUSER:$u"; continue; }
		printf '%b\n' "$(printf '%s' "${rest:2}" | sed 's/../\\x&/g')"
	done
}
client2() {  # run two round trips in one process tree (a shell and two clients)
	sh -c '"$1" --port "$2" --quiet && "$1" --port "$2" --quiet' sh "$client" "$dst_port"
}

auth_script="readsocks5; send 0502; readsocks5; send 0100; readsocks5; send $ok_reply; echo"

echo "# isolate: process, with the launcher: two trees of two connections"
start_peer proc "$auth_script"
conf proc "socks5h://127.0.0.1:$port" process
for tree in 1 2; do
	${SFY_ASAN_RT:+env LD_PRELOAD=$SFY_ASAN_RT} "$SOCKSIFY_BIN" -f "$tmp/proc.yaml" -- sh -c \
		'"$1" --port "$2" --quiet && "$1" --port "$2" --quiet' sh "$client" "$dst_port" \
		>"$tmp/proc.out$tree" 2>&1 || bad "proc tree $tree" "client failed: $(cat "$tmp/proc.out$tree")" proc
done
mapfile -t pw < <(passwords proc)
grep -q '^1 greeting 05020002$' "$tmp/proc.log" && pass "greeting offers none and username/password" ||
	bad proc "greeting is not 05020002" proc
if [ "${#pw[@]}" -eq 4 ] && [[ ${pw[0]} =~ ^[0-9a-f]{32}$ ]]; then
	pass "four auth messages with <torS0X>0 and a 32-hex token"
	[ "${pw[0]}" = "${pw[1]}" ] && [ "${pw[2]}" = "${pw[3]}" ] &&
		pass "stable inside a tree (${pw[0]:0:8}.. ${pw[2]:0:8}..)" || bad proc "a token changed inside a tree: ${pw[*]}" proc
	[ "${pw[0]}" != "${pw[2]}" ] && pass "differs across trees" || bad proc "two trees share ${pw[0]}" proc
else
	bad proc "expected 4 auth lines with a 32-hex token, got: ${pw[*]:-none}" proc
fi

echo "# isolate: process, without the launcher (LD_PRELOAD): fork and exec keep it"
start_peer pre "$auth_script"
conf pre "socks5h://127.0.0.1:$port" process
for tree in 1 2; do
	LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/pre.yaml sh -c \
		'"$1" --port "$2" --quiet && "$1" --port "$2" --fork --count 2 --quiet' sh "$client" "$dst_port" \
		>"$tmp/pre.out$tree" 2>&1 || bad "pre tree $tree" "client failed: $(cat "$tmp/pre.out$tree")" pre
done
mapfile -t pw < <(passwords pre)
n=${#pw[@]}
if [ "$n" -ge 6 ] && [[ ${pw[0]} =~ ^[0-9a-f]{32}$ ]]; then
	half=$((n / 2))
	same1=$(printf '%s\n' "${pw[@]:0:$half}" | sort -u | wc -l)
	same2=$(printf '%s\n' "${pw[@]:$half}" | sort -u | wc -l)
	[ "$same1" = 1 ] && [ "$same2" = 1 ] && pass "one token per tree across exec and fork ($n connections)" ||
		bad pre "tokens inside a tree differ: ${pw[*]}" pre
	[ "${pw[0]}" != "${pw[$half]}" ] && pass "differs across trees" || bad pre "two trees share ${pw[0]}" pre
else
	bad pre "expected 6+ auth lines with a 32-hex token, got: ${pw[*]:-none}" pre
fi
# The control of the above: a program that is given a token uses it.
start_peer given "$auth_script"
conf given "socks5h://127.0.0.1:$port" process
tok=0123456789abcdef0123456789abcdef
LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/given.yaml SOCKSIFY_ISOLATE_TOKEN=$tok \
	"$client" --port "$dst_port" --quiet >/dev/null 2>&1
[ "$(passwords given)" = "$tok" ] && pass "an inherited SOCKSIFY_ISOLATE_TOKEN is used" ||
	bad given "got $(passwords given)" given

echo "# isolate: connection: every connection its own password"
start_peer conn "$auth_script"
conf conn "socks5h://127.0.0.1:$port" connection
${SFY_ASAN_RT:+env LD_PRELOAD=$SFY_ASAN_RT} "$SOCKSIFY_BIN" -f "$tmp/conn.yaml" -- sh -c \
	'"$1" --port "$2" --quiet && "$1" --port "$2" --count 2 --quiet' sh "$client" "$dst_port" \
	>"$tmp/conn.out" 2>&1 || bad conn "client failed: $(cat "$tmp/conn.out")" conn
mapfile -t pw < <(passwords conn)
if [ "${#pw[@]}" -eq 3 ] && [[ ${pw[0]} =~ ^[0-9a-f]{32}$ ]]; then
	[ "$(printf '%s\n' "${pw[@]}" | sort -u | wc -l)" = 3 ] && pass "three connections, three passwords" ||
		bad conn "passwords repeat: ${pw[*]}" conn
	[ "$(printf '%s\n' "${pw[@]}" | cut -c1-8 | sort -u | wc -l)" = 3 ] &&
		pass "...with no common prefix" || bad conn "passwords share a prefix: ${pw[*]}" conn
else
	bad conn "expected 3 passwords of 32 hex, got: ${pw[*]:-none}" conn
fi
# With a known tree token: no connection password carries it.
start_peer conntok "$auth_script"
conf conntok "socks5h://127.0.0.1:$port" connection
tok=0123456789abcdef0123456789abcdef
LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/conntok.yaml SOCKSIFY_ISOLATE_TOKEN=$tok \
	"$client" --port "$dst_port" --count 2 --quiet >"$tmp/conntok.out" 2>&1 ||
	bad conntok "client failed: $(cat "$tmp/conntok.out")" conntok
mapfile -t pw < <(passwords conntok)
[ "${#pw[@]}" -eq 2 ] && ! printf '%s\n' "${pw[@]}" | grep -q "$tok" &&
	! printf '%s\n' "${pw[@]}" | grep -q "${tok:0:8}" &&
	pass "connection passwords do not carry the tree's token (${pw[*]})" ||
	bad conntok "got: ${pw[*]:-none} (tree token $tok)" conntok

echo "# isolation credentials go to hop 1 only"
start_peer hop2 "readsocks5; send 0500; readsocks5; send $ok_reply; echo"
hop2=$port
start_peer hop1 "readsocks5; send 0502; readsocks5; send 0100; readsocks5; send $ok_reply; relay 127.0.0.1:$hop2"
printf 'proxies:\n  - socks5://127.0.0.1:%s\n  - socks5h://127.0.0.1:%s\nisolate: %s\ntimeouts:\n  connect: 2s\n  handshake: 3s\n' \
	"$port" "$hop2" connection >"$tmp/hops.yaml"
LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/hops.yaml "$client" --port "$dst_port" --quiet \
	>"$tmp/hops.out" 2>&1 || bad hop1 "client failed: $(cat "$tmp/hops.out")" hop1
[ "$(passwords hop1 | grep -c '^[0-9a-f]\{32\}$')" = 1 ] &&
	pass "hop 1 gets the isolation credentials" || bad hop1 "no isolation auth at hop 1" hop1
grep -q '^1 greeting 050100$' "$tmp/hop2.log" && ! grep -q ' auth ' "$tmp/hop2.log" &&
	grep -q "^1 host 127.0.0.1:$dst_port$" "$tmp/hop2.log" &&
	pass "hop 2 is offered 'no authentication' only, sees no credentials" ||
	bad hop2 "hop 2 greeting/auth" hop2

echo "# isolate: none, a hop with its own credentials, a server that picks none"
start_peer none "readsocks5; send 0500; readsocks5; send $ok_reply; echo"
conf none "socks5h://127.0.0.1:$port" none
LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/none.yaml "$client" --port "$dst_port" --quiet \
	>"$tmp/none.out" 2>&1 || bad none "client failed: $(cat "$tmp/none.out")" none
grep -q '^1 greeting 050100$' "$tmp/none.log" && ! grep -q ' auth ' "$tmp/none.log" &&
	pass "none: only 'no authentication' offered, no auth message" || bad none "greeting/auth" none
# No token in the environment without isolation (library only; the
# launcher drops it itself), one with isolate: process (the control).
tokvar() { env -u SOCKSIFY_ISOLATE_TOKEN LD_PRELOAD=$preload "$@" sh -c 'env' | grep -c '^SOCKSIFY_ISOLATE_TOKEN='; }
n=$(tokvar SOCKSIFY_CONFIG=$tmp/none.yaml)
[ "$n" = 0 ] && pass "isolate: none: no SOCKSIFY_ISOLATE_TOKEN in the environment" ||
	bad none "isolate: none exported a token ($n)" none
n=$(tokvar SOCKSIFY_PROXY=socks5h://127.0.0.1:1)
[ "$n" = 0 ] && pass "SOCKSIFY_PROXY only: no SOCKSIFY_ISOLATE_TOKEN" || bad none "exported a token ($n)" none
n=$(tokvar SOCKSIFY_CONFIG=$tmp/pre.yaml)
[ "$n" = 1 ] && pass "isolate: process: the token is exported (control)" ||
	bad pre "isolate: process exported no token ($n)" pre
start_peer own "$auth_script"
conf own "socks5h://alice:s3cret@127.0.0.1:$port" process
LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/own.yaml "$client" --port "$dst_port" --quiet \
	>"$tmp/own.out" 2>&1 || bad own "client failed: $(cat "$tmp/own.out")" own
grep -q "^1 greeting 050102$" "$tmp/own.log" &&
	grep -q "^1 auth 0105$(hex alice)06$(hex s3cret)$" "$tmp/own.log" &&
	pass "a hop with user:pass sends its own credentials, not the token" || bad own "auth" own
start_peer picknone "readsocks5; send 0500; readsocks5; send $ok_reply; echo"
conf picknone "socks5h://127.0.0.1:$port" process
LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/picknone.yaml "$client" --port "$dst_port" --quiet \
	>"$tmp/picknone.out" 2>&1 || bad picknone "client failed: $(cat "$tmp/picknone.out")" picknone
grep -q '^1 greeting 05020002$' "$tmp/picknone.log" && ! grep -q ' auth ' "$tmp/picknone.log" &&
	grep -q "^1 host 127.0.0.1:$dst_port$" "$tmp/picknone.log" &&
	pass "a server picking 'no authentication' sees no credentials, the request follows" ||
	bad picknone "greeting/auth/request" picknone

echo "# Tor's extended error codes (ExtendedErrors) -> errno and a log line"
for c in f0:EHOSTUNREACH:'descriptor can not be found' f4:EACCES:'missing client authorization' \
	 f6:EHOSTUNREACH:'invalid address' f7:ETIMEDOUT:'introduction timed out'; do
	IFS=: read -r code err words <<<"$c"
	start_peer "x$code" "readsocks5; send 0500; readsocks5; send 05${code}0001000000000000; close"
	conf "x$code" "socks5h://127.0.0.1:$port" none
	LD_PRELOAD=$preload SOCKSIFY_CONFIG=$tmp/x$code.yaml "$client" --host "abc.onion" \
		--port 80 >"$tmp/x$code.out" 2>&1
	grep -q "^tcpclient: connect: $err (" "$tmp/x$code.out" &&
		grep -q "Tor: onion service $words (0x$code)" "$tmp/x$code.out" &&
		pass "0x$code: $err, log says '$words'" || { bad "x$code" "wanted $err and '$words'" "x$code";
		sed 's/^/    client| /' "$tmp/x$code.out"; }
done

[ "$failed" -eq 0 ] || { echo "tor_isolate: $failed failed"; exit 1; }
echo "tor_isolate: all passed"
