#!/bin/sh
# Runs libFuzzer harnesses, SECONDS each: run.sh SECONDS BUILD/fuzz_NAME...
# Each starts from its committed seeds (tests/fuzz/corpus/NAME) plus what
# earlier runs learnt (BIN.corpus). Every harness runs even after one fails;
# the exit status is non-zero if any crashed, tripped a sanitizer, leaked or
# hung (-timeout: one input slower than 10 s). The reproducer is written as
# BIN-crash-* (or -leak-, -timeout-); `BIN FILE` replays it.
set -u
secs=$1
shift
failed=""
for bin in "$@"; do
	name=${bin##*/}
	corpus=$bin.corpus
	mkdir -p "$corpus"
	cp tests/fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null
	# Inputs a little past the largest message each one accepts: an HTTP
	# reply head is refused above 8 KiB.
	case $name in
	fuzz_http | fuzz_handshake) max=9000 ;;
	*) max=4096 ;;
	esac
	echo "== $name: $secs s"
	"$bin" -max_total_time="$secs" -timeout=10 -max_len="$max" -print_final_stats=1 \
		-artifact_prefix="$bin-" "$corpus" >"$bin.log" 2>&1
	rc=$?
	grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|Done)' "$bin.log"
	if [ "$rc" != 0 ]; then
		failed="$failed $name"
		tail -n 60 "$bin.log"
	fi
done
if [ -n "$failed" ]; then
	echo "fuzz: FAILED:$failed (full logs: BIN.log next to each harness)" >&2
	exit 1
fi
echo "fuzz: $# harnesses, no crash"
