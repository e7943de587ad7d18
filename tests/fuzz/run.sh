#!/usr/bin/env bash
# tests/fuzz/run.sh long|check|merge [TARGET...]: runs the libFuzzer targets
# (build/fuzz/fuzz_*, made by `make fuzz-build`), one line of result each.
#
#   long   what `make fuzz` runs: each target for FUZZ_SECONDS (60), over a corpus kept in
#          build/fuzz/corpus/TARGET that starts as a copy of tests/fuzz/corpus/TARGET and
#          grows from run to run.
#   check  what `make check` runs (tests/e2e/60-fuzz.sh): each target over a fresh copy
#          of its committed corpus, then FUZZ_CHECK_RUNS (20000) more inputs, at most
#          FUZZ_CHECK_SECONDS (30) of it.
#   merge  adds to the committed seeds (tests/fuzz/corpus/TARGET) the inputs of `make fuzz`'s
#          corpus that reach code the seeds do not (edges only, -use_counters=0: a few
#          small files, named by their SHA-1). Review them, then commit.
#
# Every run is deterministic (-seed=1). Prints "ok - fuzz TARGET: N runs, no crash" or
# "not ok - fuzz TARGET: ..." with the reproducer's path (run the target on that file to
# see it again); the log of each run is build/fuzz/logs/TARGET.log. Exits 1 if any failed.
# FUZZ_OUT, FUZZ_BIN_DIR and FUZZ_CORPUS_DIR move build/fuzz, its binaries and the seed
# corpora elsewhere (60-fuzz.sh proves with a target of its own that a crash fails).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2

mode=${1:-}
case "$mode" in long | check | merge) shift ;; *) echo "usage: tests/fuzz/run.sh long|check|merge [TARGET...]" >&2; exit 2 ;; esac
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for f in tests/fuzz/fuzz_*.c; do
		t=${f#tests/fuzz/fuzz_}
		targets+=("${t%.c}")
	done
fi

out=${FUZZ_OUT:-build/fuzz}
bins=${FUZZ_BIN_DIR:-$out}
seeds_dir=${FUZZ_CORPUS_DIR:-tests/fuzz/corpus}
mkdir -p "$out/logs" "$out/crashes"
failed=0
for t in "${targets[@]}"; do
	bin=$bins/fuzz_$t
	log=$out/logs/$t.log
	if [ ! -x "$bin" ]; then
		echo "not ok - fuzz $t: $bin is not built (make fuzz-build)"
		failed=1
		continue
	fi
	if [ "$mode" = merge ]; then
		before=$(find "$seeds_dir/$t" -type f | wc -l)
		if "$bin" -merge=1 -use_counters=0 "$seeds_dir/$t" "$out/corpus/$t" >"$log" 2>&1; then
			echo "ok - fuzz $t: merge added $(($(find "$seeds_dir/$t" -type f | wc -l) - before)) seeds"
		else
			echo "not ok - fuzz $t: merge failed (log: $log)"
			failed=1
		fi
		continue
	fi
	if [ "$mode" = long ]; then
		corpus=$out/corpus/$t
		mkdir -p "$corpus"
		cp -n "$seeds_dir/$t"/* "$corpus"/ 2>/dev/null
		limits=(-max_total_time="${FUZZ_SECONDS:-60}")
		budget=$((${FUZZ_SECONDS:-60} + 60))
	else
		corpus=$out/check/$t
		rm -rf "$corpus"
		mkdir -p "$corpus"
		cp "$seeds_dir/$t"/* "$corpus"/
		runs=$(($(find "$corpus" -type f | wc -l) + ${FUZZ_CHECK_RUNS:-20000}))
		limits=(-runs="$runs" -max_total_time="${FUZZ_CHECK_SECONDS:-30}")
		budget=$((${FUZZ_CHECK_SECONDS:-30} + 60))
	fi
	dict=()
	[ -f tests/fuzz/"$t".dict ] && dict=(-dict=tests/fuzz/"$t".dict)
	seeds=$(find "$seeds_dir/$t" -type f | wc -l)
	rm -f "$out/crashes/$t"-*
	# -timeout: one input that runs this long is a hang, reported like a crash.
	timeout "$budget" "$bin" -seed=1 "${limits[@]}" "${dict[@]}" -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$out/crashes/$t-" "$corpus" >"$log" 2>&1
	status=$?
	n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
	if [ "$status" -eq 0 ] && [ -n "$n" ] && [ "$n" -gt 0 ]; then
		echo "ok - fuzz $t: $n runs ($seeds seeds, corpus now $(find "$corpus" -type f | wc -l)), no crash"
		continue
	fi
	failed=1
	why=$(grep -m1 -E 'fuzz: invariant failed|ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer|libFuzzer)|runtime error' "$log")
	if [ -n "$repro" ]; then
		echo "not ok - fuzz $t: ${why:-exit status $status}; reproducer $repro (run: $bin $repro; log: $log)"
	elif [ "$status" -eq 124 ]; then
		echo "not ok - fuzz $t: did not finish within ${budget}s (log: $log)"
	else
		echo "not ok - fuzz $t: exit status $status, ${n:-no} runs (log: $log)"
	fi
done
exit "$failed"
