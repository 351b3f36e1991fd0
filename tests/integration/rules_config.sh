#!/bin/bash
# Routing-rule configuration errors through the launcher: each is exit 125
# before the program runs, with the file, the line and the key (or the -r
# text, the variable and its entry) in the message. Warnings (a -r "*" in
# front of the file's rules, NO_PROXY=*) are printed once and the program
# runs. No network use: the program is sh, which never connects.
set -u
: "${SOCKSIFY_BIN:?}" "${SOCKSIFY_LIB:?}"
BIN=$(realpath "$SOCKSIFY_BIN")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
BASE_PRELOAD=${SFY_ASAN_RT:-}

pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); printf 'FAIL: %s\n' "$*"; printf '  rc=%s\n  stdout: %s\n  stderr: %s\n' \
	"$rc" "${out:0:300}" "${err:0:600}"; }

# sfy [VAR=VALUE...] -- ARGS...: the launcher in a clean environment.
sfy() {
	local vars=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do vars+=("$1"); shift; done
	shift
	[ -n "$BASE_PRELOAD" ] && vars=("LD_PRELOAD=$BASE_PRELOAD" "${vars[@]}")
	out=$(cd "$tmp" && env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$tmp" \
		ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
		"${vars[@]}" "$BIN" "$@" 2>"$tmp/stderr")
	rc=$?
	err=$(cat "$tmp/stderr")
}

n=0
# conf BODY: writes the next config file, sets $f.
conf() {
	n=$((n + 1))
	f=$tmp/c$n.yaml
	printf '%s' "$1" >"$f"
	chmod 600 "$f"
}

# rejected NAME 'MESSAGE PREFIX' 'REASON' ARGS...: exit 125, nothing run,
# the message starts with the prefix (file:line: key) and gives the reason.
rejected() {
	local name=$1 where=$2 why=$3
	shift 3
	sfy "${env_vars[@]}" -- "$@" sh -c 'echo ran'
	if [ "$rc" != 125 ]; then bad "$name: exit $rc, want 125"; return; fi
	if [ -n "$out" ]; then bad "$name: the program ran"; return; fi
	if [[ $err != "socksify: $where"* ]]; then bad "$name: message does not start with '$where'"; return; fi
	if [[ $err != *"$why"* ]]; then bad "$name: message lacks '$why'"; return; fi
	ok
}
accepted() {
	local name=$1
	shift
	sfy "${env_vars[@]}" -- "$@" sh -c 'echo ran'
	if [ "$rc" = 0 ] && [ "$out" = ran ]; then ok; else bad "$name: exit $rc, want it run"; fi
}
env_vars=()

P='proxies: [socks5h://127.0.0.1:1]
'
CH='chains:
  tor: [socks5h://127.0.0.1:9050]
  work: { chain: dynamic, proxies: [socks5h://10.9.9.1:1080, http://10.9.9.2:3128] }
'

# --- the issue's example loads ----------------------------------------------
conf "${CH}rules:
  - { match: \"*.onion\",            via: tor }
  - { match: \"*.corp.example\",     via: work }
  - { match: \"10.0.0.0/8\",         via: direct }
  - { match: \"[fd00::]/8\",         via: direct }
  - { match: \"*:25\",               via: block }
  - { match: \"ads.example.com:443\", via: block }
default: tor
"
accepted "the issue's example, no top-level proxies" -f "$f"
good=$f

# --- errors in the file -----------------------------------------------------
conf "$P${CH}rules:
  - { match: x.example, via: tor }
  - { match: y.example, via: nowhere }
"
rejected "unknown chain" "$f:7: rules[2].via:" 'unknown chain "nowhere"' -f "$f"
conf "${P}rules:
  - { match: \"a.*.example\", via: direct }
"
rejected "bad glob" "$f:3: rules[1].match:" "'*' only" -f "$f"
conf "${P}rules:
  - { match: \"x.example:0\", via: block }
"
rejected "port 0" "$f:3: rules[1].match:" "port 0" -f "$f"
conf "${P}rules:
  - match: \"*:2000-1000\"
    via: block
"
rejected "bad port range" "$f:3: rules[1].match:" "LO <= HI" -f "$f"
conf "${P}rules:
  - { match: \"10.1.2.3/8\", via: direct }
"
rejected "host bits" "$f:3: rules[1].match:" "host bits" -f "$f"
conf "${P}rules:
  - { match: \"fd00::/8:22\", via: direct }
"
rejected "IPv6 port without brackets" "$f:3: rules[1].match:" "brackets" -f "$f"
conf "${P}rules:
  - { match: a.example, via: block }
  - { match: \"*\", via: block }
  - { match: b.example, via: direct }
"
rejected "a rule after a file *" "$f:5: rules[3].match:" \
	"never matches: rule at line 4 matches everything first" -f "$f"
conf "${P}bypass: [10.0.0.0/8]
rules:
  - { match: \"224.1.0.0/16\", via: direct }
"
rejected "fake_ip_range overlapping a direct rule" "$f:4: rules[1].match:" \
	"overlaps fake_ip_range 224.0.0.0/8" -f "$f"
conf "${P}rules:
  - { match: \"*.onion\", via: direct }
"
rejected ".onion direct" "$f:3: rules[1].via:" "cannot go direct" -f "$f"
conf "${P}rules:
  - { match: \"x.i2p\", via: direct }
"
rejected ".i2p direct" "$f:3: rules[1].via:" "cannot go direct" -f "$f"
conf "${P}chains:
  a: [socks5://10.0.0.1]
  b: [socks5://10.0.0.2]
  a: [socks5://10.0.0.3]
"
rejected "duplicate chain name" "$f:5: chains.a:" "duplicate chain name (first on line 3)" -f "$f"
conf "${P}chains:
  direct: [socks5://10.0.0.1]
"
rejected "chain named direct" "$f:3: chains.direct:" "bad chain name" -f "$f"
conf "${P}chains:
  \"my chain\": [socks5://10.0.0.1]
"
rejected "chain name with a blank" "$f:3: chains.my chain:" "bad chain name" -f "$f"
conf "${P}chains:
  empty: []
"
rejected "empty chain" "$f:3: chains.empty:" "empty chain" -f "$f"
conf "${P}chains:
  work:
    chain: dynamic
    proxies:
      - socks5://10.0.0.1
      - socks5://10.0.0.2:99999
"
rejected "bad hop in a chain" "$f:7: chains.work.proxies[2]:" "port" -f "$f"
body="${P}chains:
"
for i in $(seq 17); do body+="  c$i: [socks5://10.0.0.$i]
"; done
conf "$body"
rejected "more than 16 chains" "$f:19: chains.c17:" "more than 16 chains" -f "$f"
body="${P}chains:
  big: ["
for i in $(seq 33); do body+="socks5://10.0.0.$i, "; done
conf "${body%, }]
"
rejected "more than 32 chain proxies" "$f:3: chains.big[33]:" "more than 32" -f "$f"
conf "${P}default: nowhere
"
rejected "unknown default" "$f:2: default:" 'unknown chain "nowhere"' -f "$f"
conf "rules:
  - { match: x.example, via: direct }
"
rejected "no proxies and no default" "no proxies configured" "default:" -f "$f"
conf "${P}chains:
  t: [socks4://10.0.0.1, socks5h://inner.example]
"
rejected "socks4 before a named hop in a remote chain" "$f:3: chains.t[1]:" "socks4 cannot pass" -f "$f"

# --- -r and SOCKSIFY_RULES ----------------------------------------------------
rejected "-r unknown chain" "-r 'x.example=nowhere':" 'unknown chain "nowhere"' -f "$good" -r 'x.example=nowhere'
rejected "-r bad glob" "-r '*x.example=tor':" "'*' only" -f "$good" -r '*x.example=tor'
rejected "-r bad port" "-r '*:99999=block':" "bad port" -f "$good" -r '*:99999=block'
rejected "-r without =" "-r 'x.example':" "MATCH=VIA" -f "$good" -r 'x.example'
rejected "-r with a blank" "-r 'a b=tor':" "blanks or commas" -f "$good" -r 'a b=tor'
rejected "-r .onion direct" "-r 'x.onion=direct':" "cannot go direct" -f "$good" -r 'x.onion=direct'
rejected "-r shadowed by -r *" "-r 'x.example=tor': never matches: -r '*=work'" "everything first" \
	-f "$good" -r '*=work' -r 'x.example=tor'
rejected "-r overlapping fake_ip_range" "-r '224.0.0.0/4=direct':" "overlaps fake_ip_range" \
	-f "$good" -r '224.0.0.0/4=direct'
env_vars=(SOCKSIFY_RULES='a.example=tor b.example=nowhere')
rejected "SOCKSIFY_RULES unknown chain" "SOCKSIFY_RULES entry 2 (b.example=nowhere):" \
	'unknown chain "nowhere"' -f "$good"
# -r rules come first: the environment's entries are numbered after them.
rejected "SOCKSIFY_RULES after -r" "SOCKSIFY_RULES entry 4 (b.example=nowhere):" \
	'unknown chain' -f "$good" -r 'c.example=tor' -r 'd.example=block'
env_vars=(SOCKSIFY_RULES='x.example=tor')
sfy "${env_vars[@]}" -- -f "$good" -r 'y.example=block' sh -c 'printf %s "$SOCKSIFY_RULES"'
if [ "$rc" = 0 ] && [ "$out" = 'y.example=block x.example=tor' ]; then ok; else
	bad "-r rules go before SOCKSIFY_RULES: got '$out'"; fi
env_vars=()

# --- no_proxy: env -----------------------------------------------------------
conf "$P${CH}no_proxy: env
rules:
  - { match: x.example, via: tor }
"
np=$f
env_vars=(NO_PROXY='localhost,.lan,10.1.0.0/16,example.org:8080,[fd00::1]:22')
accepted "NO_PROXY entries" -f "$np"
env_vars=(NO_PROXY='localhost,169.254/16')
rejected "bad NO_PROXY entry" "NO_PROXY entry 2 (169.254/16):" "bad address" -f "$np"
env_vars=(no_proxy='x.onion')
rejected "NO_PROXY .onion" "no_proxy entry 1 (x.onion=direct):" "cannot go direct" -f "$np"

# --- warnings: printed once, the program runs ------------------------------------
env_vars=(NO_PROXY='*')
sfy "${env_vars[@]}" -- -f "$np" sh -c 'echo ran'
if [ "$rc" = 0 ] && [ "$out" = ran ]; then ok; else bad "NO_PROXY=* runs: exit $rc"; fi
if [ "$(grep -c 'NO_PROXY=\* (no_proxy: env): every destination goes direct' <<<"$err")" = 1 ]; then ok; else
	bad "NO_PROXY=* warns once"; fi
env_vars=()
sfy -- -f "$good" -r '*=work' sh -c 'echo ran; sh -c "echo child"'
if [ "$rc" = 0 ] && [ "$out" = $'ran\nchild' ]; then ok; else bad "-r '*' shadowing the file runs: exit $rc"; fi
if [ "$(grep -c "warning: -r '\*=work' matches everything first: the 6 rules after it" <<<"$err")" = 1 ]; then ok; else
	bad "-r '*' shadowing the file warns once"; fi
sfy -- -q -f "$good" -r '*=work' true
if [ "$rc" = 0 ] && [ -z "$err" ]; then ok; else bad "-q silences the warning"; fi
sfy -- -f "$good" -r '*:80=work' true
if [ "$rc" = 0 ] && [ -z "$err" ]; then ok; else bad "a '*:PORT' -r rule does not warn"; fi

# --- help --------------------------------------------------------------------------
sfy -- --help
for w in -r --rule MATCH=VIA SOCKSIFY_RULES; do
	if [[ $out == *"$w"* ]]; then ok; else bad "help does not mention $w"; fi
done

printf '%d passed, %d failed\n' "$pass" "$fail"
[ "$fail" -eq 0 ]
