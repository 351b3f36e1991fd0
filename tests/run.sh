#!/bin/bash
# Runs the test suites: unit (cmocka binaries), then every
# tests/integration/*.sh. Exit status 77 from a script means "skipped" and
# is reported, never counted as a pass. Usage: tests/run.sh [unit|integration] [NAME...]
set -u
cd "$(dirname "$0")/.."
top=$PWD
: "${BUILD:=build}"
export BUILD=$top/$BUILD SANITIZE=${SANITIZE:-}
export SOCKSIFY_BIN=$BUILD/socksify SOCKSIFY_LIB=$BUILD/libsocksify.so
export SFY_TOOLS=$BUILD/tests SFY_TOP=$top
# Keep the user's own config, cache and environment out of the tests.
SFY_CACHE_DIR=$(mktemp -d /tmp/sfy-cache.XXXXXX)
trap 'rm -rf "$SFY_CACHE_DIR"' EXIT
export XDG_CACHE_HOME=$SFY_CACHE_DIR
unset SOCKSIFY_CONFIG SOCKSIFY_PROXY SOCKSIFY_LOG SOCKSIFY_CHAIN SOCKSIFY_DNS
if [ "$SANITIZE" = 1 ]; then
	# A preloaded instrumented library needs the ASan runtime loaded first.
	SFY_ASAN_RT=$(${CC:-cc} -print-file-name=libasan.so)
	export SFY_ASAN_RT
	export LD_PRELOAD_PREFIX=$SFY_ASAN_RT
	# Leaks of the programs we run (curl, python) are not ours to report.
	export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi

what=${1:-all}
[ $# -gt 0 ] && shift
pass=0 fail=0 skip=0 failed=""

run_one() {  # name command...
	local name=$1 rc start
	shift
	start=$(date +%s)
	printf '=== %s\n' "$name"
	"$@"
	rc=$?
	case $rc in
	0) pass=$((pass + 1)); printf -- '--- PASS %s (%ss)\n' "$name" $(($(date +%s) - start)) ;;
	77) skip=$((skip + 1)); printf -- '--- SKIP %s\n' "$name" ;;
	*) fail=$((fail + 1)); failed="$failed $name"; printf -- '--- FAIL %s (exit %s)\n' "$name" "$rc" ;;
	esac
}

want() {  # name: selected by the NAME arguments (all if none)
	[ $# -ge 1 ] || return 0
	local n=$1; shift
	[ ${#sel[@]} -eq 0 ] && return 0
	local s; for s in "${sel[@]}"; do [[ $n == *"$s"* ]] && return 0; done
	return 1
}
sel=("$@")

if [ "$what" = all ] || [ "$what" = unit ]; then
	for t in "$BUILD"/tests/test_*; do
		[ -x "$t" ] || continue
		want "$(basename "$t")" || continue
		run_one "unit/$(basename "$t")" "$t"
	done
fi
if [ "$what" = all ] || [ "$what" = integration ]; then
	for t in tests/integration/*.sh; do
		want "$(basename "$t" .sh)" || continue
		run_one "integration/$(basename "$t" .sh)" timeout -k 10 900 bash "$t"
	done
fi

# CI sets SFY_NO_SKIP=1: there a skipped test is a failed one.
if [ "${SFY_NO_SKIP:-}" = 1 ] && [ "$skip" -gt 0 ]; then
	fail=$((fail + skip)); failed="$failed (skips)"
fi
printf '\n%d passed, %d failed, %d skipped\n' "$pass" "$fail" "$skip"
[ -n "$failed" ] && printf 'failed:%s\n' "$failed"
[ "$fail" -eq 0 ]
