#!/usr/bin/env bash
# 70: `make bench`'s harness (tests/bench/run.sh) runs end to end and fills its table.
# A smoke run on the host: BENCH_QUICK=1 (16 MiB file, 1 s per wrk and s_time, one
# repetition), without the UML part (45-servers-ktls and 3x-ktls prove the kernel path;
# the bench's UML part takes minutes) and without the idle-connection memory; with the
# callgrind counts (tests/bench/instructions.sh, 1 s per load).
# Checks that every flavour started, negotiated TLS 1.3 TLS_AES_128_GCM_SHA256, gave
# every figure its workloads should (no missing cell), and that the plot was written;
# and that the report refuses a run with a figure missing. Speed is never asserted.
. "$(dirname "$0")/lib.sh"

for prog in wrk /usr/sbin/nginx /usr/bin/stunnel4 /usr/sbin/haproxy /usr/sbin/hitch; do
	command -v "$prog" >/dev/null || {
		fail "$SCENARIO: $prog missing (make deps-bench)"
		exit 1
	}
done
"$PY" -c 'import matplotlib' 2>/dev/null || {
	fail "$SCENARIO: python3-matplotlib missing (make deps-bench)"
	exit 1
}

OUT=$T/bench
BENCH_QUICK=1 BENCH_UML=0 BENCH_IDLE=0 timeout 400 bash "$ROOT/tests/bench/run.sh" "$OUT" >"$T/run.out" 2>&1
rc=$?
grep -E '^(ok|not ok) - ' "$T/run.out" | sed 's/^\(not ok\|ok\) - /\1 - bench: /'
is_eq "tests/bench/run.sh exits 0" "$rc" 0 || note_file "$T/run.out" 30

flavours="nginx-plain nginx-tls stunnel haproxy hitch atlas atlas-noport py-plain py-stunnel py-atlas"
for f in $flavours; do
	# Figures per flavour: big (2) and small (3, socket errors included) for nginx flavours,
	# handshakes (2 x 2) for the TLS ones, small (3) only for python.
	case $f in
	nginx-plain | atlas-noport) want=5 ;;
	py-*) want=3 ;;
	*) want=9 ;;
	esac
	got=$(awk -F, -v f="$f" '$2 == f && $5 != "" { n++ } END { print n + 0 }' "$OUT/raw.csv" 2>/dev/null)
	is_eq "$f: every figure measured" "$got" "$want"
done
check "results.md has a row per flavour and no missing cell" \
	bash -c "[ \$(grep -c '^| .* | .*[0-9]' '$OUT/results.md') -ge 10 ] && ! grep -q missing '$OUT/results.md'"
is_match "results.md lists the targets" "$(cat "$OUT/results.md" 2>/dev/null)" '^\| Atlas/nginx TLS, CPU per request \| [0-9.]+ \|'
is_match "results.md has the callgrind counts (instructions.sh)" "$(cat "$OUT/results.md" 2>/dev/null)" \
	'^\| per full handshake, ECDSA P-256, TLS 1.3 \| [0-9]+ \| nginx.s own TLS [0-9]+ \| [0-9.]+ \|'
is_match "results.png is a PNG" "$(file -b "$OUT/results.png" 2>/dev/null)" '^PNG image data'
is_no_match "no flavour negotiated another suite" "$(cat "$OUT/checks.csv" 2>/dev/null)" 'WRONG'

# The report must not paper over a hole: drop one figure and it says so, and fails.
mkdir -p "$T/holed"
cp "$OUT/meta.txt" "$T/holed/"
grep -v '^1,atlas,small,cpu_us_per_req,' "$OUT/raw.csv" >"$T/holed/raw.csv"
"$PY" "$ROOT/tests/bench/report.py" "$T/holed" >"$T/holed.out" 2>&1
is_eq "report.py fails when a figure is missing" "$?" 1
is_match "and names it" "$(cat "$T/holed.out")" 'missing cells: atlas small cpu_us_per_req'
finish
