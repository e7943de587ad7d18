#!/usr/bin/env bash
# tests/sanitize-e2e.sh asan|tsan SCENARIO...: runs end-to-end scenarios
# (tests/e2e/NN-name.sh, by name: 05-concurrency 07-fd-leaks ...) with every
# server on a sanitizer build of Atlas, and checks that the sanitizer reported
# nothing. Not part of make check (51-sanitizers.sh is): a tool for hunting.
#
# The scenarios start their servers through ./atlas-preload.sh, which takes
# ATLAS_LIBRARY (build/KIND/libatlas.so) and ATLAS_PRELOAD_FIRST or _AFTER (the
# runtime it was linked with); reports go to log_path files under build/sanitize-e2e/.
# One "ok -"/"not ok -" line per scenario says whether anything was reported.
# The scenario's own result is shown but not judged: its timing and memory
# bounds are made for the normal build (ASan's quarantine and TSan's shadow
# memory grow RSS; both are slower), and its servers lose their stderr, so a
# UBSan report (fatal: -fno-sanitize-recover) shows as a server that died.
# LeakSanitizer is off (most scenarios run python: see 51-sanitizers.sh). TSan reads
# tests/tsan-thirdparty.supp: third-party noise only (node's V8), each entry explained.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

kind=${1:-}
case $kind in asan | tsan) ;; *)
	echo "usage: tests/sanitize-e2e.sh asan|tsan SCENARIO... (e.g. 05-concurrency 07-fd-leaks)" >&2
	exit 2
	;;
esac
shift
[ $# -gt 0 ] || {
	echo "tests/sanitize-e2e.sh: no scenario given (e.g. 05-concurrency)" >&2
	exit 2
}
lib=$PWD/build/$kind/libatlas.so
[ -r "$lib" ] || {
	echo "tests/sanitize-e2e.sh: $lib is missing: run make sanitize-build" >&2
	exit 2
}
rt=$(ldd "$lib" | awk -v k="lib$kind.so" 'index($1, k) == 1 { print $3 }')
out=build/sanitize-e2e
mkdir -p "$out"
bad=0
for s in "$@"; do
	s=$(basename "$s" .sh)
	[ -f "tests/e2e/$s.sh" ] || {
		echo "not ok - $kind: $s: no such scenario (tests/e2e/$s.sh)"
		bad=$((bad + 1))
		continue
	}
	d=$PWD/$out/$kind-$s
	rm -rf "$d"
	mkdir -p "$d"
	# ASan's runtime before Atlas, TSan's after it (51-sanitizers.sh says why).
	first=$rt after=""
	[ "$kind" = tsan ] && first="" after=$rt
	ATLAS_LIBRARY=$lib ATLAS_PRELOAD_FIRST=$first ATLAS_PRELOAD_AFTER=$after \
		ASAN_OPTIONS="log_path=$d/asan:detect_leaks=0" \
		UBSAN_OPTIONS="log_path=$d/ubsan:print_stacktrace=1" \
		TSAN_OPTIONS="log_path=$d/tsan:suppressions=$PWD/tests/tsan-thirdparty.supp" \
		timeout 900 bash "tests/e2e/$s.sh" >"$d.log" 2>&1
	rc=$?
	echo "# $kind: $s: exit $rc, $(grep -c '^ok - ' "$d.log") ok, $(grep -c '^not ok - ' "$d.log") not ok (log: $d.log)"
	reports=$(find "$d" -type f | sort)
	if [ -z "$reports" ]; then
		echo "ok - $kind: $s: no sanitizer report"
	else
		echo "not ok - $kind: $s: sanitizer reports in $d:"
		for f in $reports; do
			grep -m 1 -E 'ERROR|WARNING|runtime error' "$f" | sed 's/^/#   /'
		done
		bad=$((bad + 1))
	fi
done
[ "$bad" -eq 0 ]
