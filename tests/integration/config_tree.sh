#!/bin/bash
# The launcher's validated configuration reaches the whole process tree as a
# sealed memfd (SOCKSIFY_CONFIG_FD): a program that drops privileges keeps
# its proxies although it can no longer read the 0600 config, a child cannot
# rewrite what its parent uses, and editing the file mid-run changes
# nothing for the running tree.
#
#   cli 10.207.1.1 ---- 10.207.1.2 prx 10.207.2.1 ---- 10.207.2.2 tgt
#                       danted :1080                    http :8080
. "$(dirname "$0")/lib/common.sh"
need_root
need_cmd danted curl setpriv
sfy_begin

C=$(sfy_ns cli) P=$(sfy_ns prx) T=$(sfy_ns tgt) || exit 1
sfy_link "$C" "$P" 10.207.1 || exit 1
sfy_link "$P" "$T" 10.207.2 || exit 1
PRX=10.207.1.2 TGT=10.207.2.2
sfy_http web "$T" 8080
sfy_danted dante "$P" "$PRX" 1080 none
URL="http://$TGT:8080/"
sfy_conf one strict - "socks5://$PRX:1080"
CONF=$SFY_TMP/one.yaml

echo "--- topology"
fails "client cannot reach the target directly" \
	sfy_direct "$C" curl -sS --connect-timeout 2 "$URL"
check "the config is root's and 0600" test "$(stat -c %U:%a "$CONF")" = root:600

echo "--- privilege drop"
# The program becomes nobody before its first connect(): the file is no
# longer readable, the configuration in the memfd still is.
expect_out "curl as nobody after setpriv, config 0600 root" "$SFY_TOKEN" \
	sfy_run "$C" -f "$CONF" -- setpriv --reuid=65534 --regid=65534 --clear-groups \
	curl -sS --max-time 15 "$URL"

echo "--- a child cannot rewrite the tree's configuration"
# shellcheck disable=SC2016
check "the program inherits the memfd" \
	sfy_run "$C" -f "$CONF" -- sh -c 'test -f "/proc/self/fd/${SOCKSIFY_CONFIG_FD:?}"'
# shellcheck disable=SC2016
fails "writing the sealed memfd through /proc fails" \
	sfy_run "$C" -f "$CONF" -- sh -c 'printf x >>"/proc/self/fd/$SOCKSIFY_CONFIG_FD"'
# shellcheck disable=SC2016
fails "truncating it fails" \
	sfy_run "$C" -f "$CONF" -- sh -c ': >"/proc/self/fd/$SOCKSIFY_CONFIG_FD"'

echo "--- the running tree does not re-read the file"
# Between two fetches the file is switched to a dead proxy; the second fetch
# still goes through the validated chain.
# shellcheck disable=SC2016
expect_out "edit mid-run has no effect" "200|200" \
	sfy_run "$C" -f "$CONF" -- sh -c '
		curl -sS --max-time 15 -o /dev/null -w "%{http_code}|" "$1" &&
		sed -i "s#socks5://[0-9.]*:1080#socks5://10.207.1.2:9#" "$2" &&
		curl -sS --max-time 15 -o /dev/null -w "%{http_code}" "$1"' sh "$URL" "$CONF"

finish
