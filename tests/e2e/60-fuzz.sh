#!/usr/bin/env bash
# The libFuzzer targets (tests/fuzz/), briefly: each one over its committed seed corpus,
# then a bounded deterministic run (tests/fuzz/run.sh check). First a control: a target
# that crashes on one of its seeds must come out "not ok", with its reproducer.
source "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1

if ! command -v clang-14 >/dev/null; then
	fail "clang-14 is missing (install clang-14 libclang-rt-14-dev: make deps-check)"
	finish
fi

# The control: a harness that passed whatever happened would prove nothing.
mkdir -p "$T/bin" "$T/corpus/selftest"
cat >"$T/selftest.c" <<'C'
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size >= 5 && memcmp(data, "crash", 5) == 0)
		abort();
	return 0;
}
C
printf 'hello' >"$T/corpus/selftest/fine"
printf 'crash' >"$T/corpus/selftest/bad"
if clang-14 -g -fsanitize=fuzzer,address -o "$T/bin/fuzz_selftest" "$T/selftest.c" 2>"$T/cc.log"; then
	out=$(FUZZ_OUT=$T/out FUZZ_BIN_DIR=$T/bin FUZZ_CORPUS_DIR=$T/corpus FUZZ_CHECK_RUNS=100 \
		tests/fuzz/run.sh check selftest 2>&1)
	status=$?
	is_eq "a crashing target fails the run" "$status" 1
	is_match "a crash is reported with its reproducer" "$out" \
		"^not ok - fuzz selftest: .*reproducer $T/out/crashes/selftest-crash-[0-9a-f]+ "
	repro=$(sed -n 's/.*reproducer \([^ ]*\) .*/\1/p' <<<"$out")
	check "the reproducer is the crashing input" cmp -s "$repro" "$T/corpus/selftest/bad"
else
	fail "clang-14 cannot build a libFuzzer target: $(head -n 3 "$T/cc.log")"
fi

# The real targets.
if ! make -s -j2 fuzz-build >"$T/build.log" 2>&1; then
	fail "make fuzz-build failed"
	note_file "$T/build.log"
	finish
fi
pass "make fuzz-build"
while IFS= read -r line; do
	case "$line" in
	"ok - "*) pass "${line#ok - }" ;;
	"not ok - "*) fail "${line#not ok - }" ;;
	*) note "$line" ;;
	esac
done < <(tests/fuzz/run.sh check 2>&1)
finish
