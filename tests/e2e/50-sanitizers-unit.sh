#!/usr/bin/env bash
# 50: the unit tests under the sanitizers and valgrind, zero reports:
#   - asan: build/asan/tests/test_* (the shim's objects and the tests built with
#     -fsanitize=address,undefined -fno-sanitize-recover=all), LeakSanitizer on;
#   - tsan: build/tsan/tests/test_* (-fsanitize=thread);
#   - valgrind: build/tests/test_* (the normal build) under memcheck with
#     --leak-check=full, definite, indirect and possible leaks counted as errors.
# Each binary passes when all its cmocka tests pass, it exits 0 and its tool
# wrote no report (ASan, UBSan and TSan write theirs to log_path files here;
# valgrind's log must say "ERROR SUMMARY: 0 errors" for every process, forked
# children included). No suppression file: none of these tools reports anything
# on the unit tests, OpenSSL and cmocka included.
#
# First, per tool, a positive control (tests/e2e/progs/sanbug.c, built with the
# same flags as the sanitizer builds, `make san-flags-KIND`): run the same way,
# its deliberate use after free, signed overflow, leak or data race must be
# reported, and its clean run must not, so that "no report" means something.
#
# SAN_ONLY="asan tsan valgrind" picks the tools (make unit-asan, unit-tsan,
# unit-valgrind). make sanitize-build (part of make check) builds the binaries.
. "$(dirname "$0")/lib.sh"

KINDS=${SAN_ONLY:-asan tsan valgrind}
for prog in gcc valgrind; do
	command -v "$prog" >/dev/null || {
		fail "$SCENARIO: $prog missing (make deps-sanitize)"
		exit 1
	}
done

# The tool's options: every report to a file under the run's own report dir (printed one
# word per variable, for env).
asan_env() {
	echo "ASAN_OPTIONS=log_path=$1/asan:detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1" \
		"UBSAN_OPTIONS=log_path=$1/ubsan:print_stacktrace=1:halt_on_error=1"
}
tsan_env() { echo "TSAN_OPTIONS=log_path=$1/tsan:halt_on_error=0:exitcode=66:second_deadlock_stack=1"; }
LEAK_KINDS=definite,indirect,possible
VALGRIND=(valgrind --error-exitcode=99 --leak-check=full "--show-leak-kinds=$LEAK_KINDS"
	"--errors-for-leak-kinds=$LEAK_KINDS" --num-callers=30)

# A sanitizer's report, in whatever output it lands.
SAN_MARK='(ERROR|WARNING): (Address|Leak|Thread|UndefinedBehavior)Sanitizer|runtime error: '

# run_under KIND NAME CMD...: runs CMD as KIND runs the unit tests, output to $T/run/NAME.out.
# Sets RUN_RC and RUN_REPORT (the text of every report, empty when the tool found nothing).
run_under() {
	local kind=$1 name=$2 d f
	shift 2
	d=$T/run/$kind-$name
	rm -rf "$d"
	mkdir -p "$d"
	# shellcheck disable=SC2046 # the *_env functions print one word per variable
	case $kind in
	asan) env $(asan_env "$d") CMOCKA_MESSAGE_OUTPUT=stdout timeout 120 "$@" >"$d.out" 2>&1 ;;
	tsan) env $(tsan_env "$d") CMOCKA_MESSAGE_OUTPUT=stdout timeout 120 "$@" >"$d.out" 2>&1 ;;
	valgrind) CMOCKA_MESSAGE_OUTPUT=stdout timeout 300 "${VALGRIND[@]}" --log-file="$d/vg.%p" "$@" >"$d.out" 2>&1 ;;
	esac
	RUN_RC=$?
	RUN_REPORT=""
	for f in "$d"/*; do
		[ -f "$f" ] || continue
		# valgrind writes a log per process whatever happens: a report is a non-zero count.
		if [ "$kind" = valgrind ] && grep -q 'ERROR SUMMARY: 0 errors' "$f"; then
			continue
		fi
		RUN_REPORT+="$(cat "$f")"$'\n'
	done
	# UBSan, when ASan is loaded too, writes to stderr whatever UBSAN_OPTIONS says (its
	# runtime's log_path setting reaches libasan's copy of the common code instead).
	RUN_REPORT+=$(grep -E -A 12 "$SAN_MARK" "$d.out")
}

# control KIND BIN MODE WANT: sanbug MODE must be reported by KIND, with a line matching WANT
# (WANT empty: clean, nothing reported and exit 0).
control() {
	local kind=$1 bin=$2 mode=$3 want=$4
	run_under "$kind" "control-$mode" "$bin" "$mode"
	if [ -z "$want" ]; then
		if [ "$RUN_RC" = 0 ] && [ -z "$RUN_REPORT" ]; then
			pass "$kind control: sanbug clean runs with no report and exit 0"
		else
			fail "$kind control: sanbug clean runs with no report and exit 0 (exit $RUN_RC)"
			note "$(printf '%s' "$RUN_REPORT" | head -n 10)"
		fi
	elif [ "$RUN_RC" != 0 ] && grep -Eq -- "$want" <<<"$RUN_REPORT"; then
		pass "$kind control: sanbug $mode, a deliberate bug, is reported (/$want/, exit $RUN_RC)"
	else
		fail "$kind control: sanbug $mode, a deliberate bug, is reported (/$want/; exit $RUN_RC)"
		note "$(printf '%s' "$RUN_REPORT" | head -n 10)" "$(tail -n 5 "$T/run/$kind-control-$mode.out")"
	fi
}

# unit KIND BIN: every cmocka test passes, exit 0, and KIND reports nothing.
unit() {
	local kind=$1 bin=$2 name ok failed out
	name=$(basename "$bin")
	run_under "$kind" "$name" "$bin"
	out=$T/run/$kind-$name.out
	ok=$(grep -c '^\[       OK \]' "$out")
	failed=$(grep -E '^\[  FAILED  \] [a-z_0-9]+$' "$out" | sort -u | wc -l)
	if [ "$RUN_RC" = 0 ] && [ -z "$RUN_REPORT" ] && [ "$ok" -gt 0 ] && [ "$failed" = 0 ]; then
		pass "$kind: $name: all $ok tests pass, no report"
	else
		fail "$kind: $name: all tests pass, no report (exit $RUN_RC, $ok passed, $failed failed)"
		grep -E '^\[  (FAILED|ERROR)' "$out" | head -n 5 | sed 's/^/#   /'
		[ -z "$RUN_REPORT" ] || note "the report:" "$(printf '%s' "$RUN_REPORT" | head -n 40)"
	fi
}

for kind in $KINDS; do
	t0=$(now_ms)
	case $kind in
	asan | tsan)
		dir=$ROOT/build/$kind/tests
		flags=$(make -s --no-print-directory -C "$ROOT" "san-flags-$kind")
		;;
	valgrind)
		dir=$ROOT/build/tests
		flags=""
		;;
	*)
		fail "$SCENARIO: SAN_ONLY: no tool '$kind' (asan, tsan, valgrind)"
		continue
		;;
	esac
	bins=("$dir"/test_*)
	if [ ! -x "${bins[0]}" ]; then
		fail "$kind: the unit tests are built in $dir (run make sanitize-build, or make unit-build)"
		continue
	fi
	# shellcheck disable=SC2086 # $flags is a list of compiler flags
	if ! gcc -std=c11 -O1 -g -Wall -Wextra -Werror -pthread $flags -o "$T/sanbug-$kind" \
		"$E2E_DIR/progs/sanbug.c" 2>"$T/sanbug-$kind.err"; then
		fail "$kind: the control program tests/e2e/progs/sanbug.c builds"
		note_file "$T/sanbug-$kind.err"
		continue
	fi
	case $kind in
	asan)
		control asan "$T/sanbug-asan" freed 'ERROR: AddressSanitizer: heap-use-after-free'
		control asan "$T/sanbug-asan" signed 'runtime error: signed integer overflow'
		control asan "$T/sanbug-asan" leak 'ERROR: LeakSanitizer: detected memory leaks'
		;;
	tsan) control tsan "$T/sanbug-tsan" race 'WARNING: ThreadSanitizer: data race' ;;
	valgrind)
		control valgrind "$T/sanbug-valgrind" freed 'Invalid read of size 1'
		control valgrind "$T/sanbug-valgrind" leak 'definitely lost: [0-9,]+ bytes in 1 blocks'
		;;
	esac
	control "$kind" "$T/sanbug-$kind" clean ""
	for bin in "${bins[@]}"; do
		unit "$kind" "$bin"
	done
	note "$kind done in $(($(now_ms) - t0)) ms"
done

finish
