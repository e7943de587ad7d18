#!/usr/bin/env bash
# tests/run.sh [unit|e2e]: every test `make check` runs (or one group), then one summary line.
#
# Counts one result per cmocka test case (build/tests/test_*) and one per
# "ok -"/"not ok -" line that an end-to-end scenario (tests/e2e/NN-*.sh)
# prints through tests/e2e/lib.sh. A scenario that exits non-zero without
# saying why counts as one failure. Ends with "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."

group=${1:-all}
case "$group" in all | unit | e2e) ;; *) echo "usage: tests/run.sh [unit|e2e]" >&2; exit 2 ;; esac
passed=0
failed=0
log_dir=build/test-logs
mkdir -p "$log_dir"

count() { # count NAME OUTPUT_FILE STATUS
	local name=$1 out=$2 status=$3 p f
	p=$(grep -c '^ok - ' "$out" || true)
	f=$(grep -c '^not ok - ' "$out" || true)
	if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name exited with status $status (log: $out)"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
}

run_unit() {
echo "== unit tests"
for t in build/tests/test_*; do
	[ -x "$t" ] || continue
	out="$log_dir/$(basename "$t").log"
	CMOCKA_MESSAGE_OUTPUT=stdout timeout 120 "$t" >"$out" 2>&1
	status=$?
	# cmocka: "[       OK ] name" and "[  FAILED  ] name" per test; its closing summary
	# lists the failures again, so each name counts once.
	sed -n -e 's/^\[       OK \] \(.*\)/ok - \1/p' -e 's/^\[  FAILED  \] \([a-z_0-9]*\)$/not ok - \1/p' "$out" |
		awk '!seen[$0]++' >"$out.tap"
	cat "$out.tap"
	count "$(basename "$t")" "$out.tap" "$status"
done
}

run_e2e() {
echo "== end-to-end tests"
for s in tests/e2e/[0-9][0-9]-*.sh; do
	[ -f "$s" ] || continue
	name=$(basename "$s" .sh)
	out="$log_dir/$name.log"
	echo "-- $name"
	timeout 600 bash "$s" >"$out" 2>&1
	status=$?
	grep -E '^(ok|not ok) - ' "$out"
	count "$name" "$out" "$status"
	[ "$status" -eq 0 ] || { echo "   (last lines of $out)"; tail -n 15 "$out" | sed 's/^/   | /'; }
done
}

[ "$group" = e2e ] || run_unit
[ "$group" = unit ] || run_e2e

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
