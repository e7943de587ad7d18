#!/usr/bin/env bash
# tests/bench/run.sh [OUTDIR]: `make bench`. Atlas against the other ways of serving
# TLS, side by side in one run; results into OUTDIR (default build/bench):
#   raw.csv      one line per measurement: rep,flavour,workload,figure,value
#   checks.csv   what was checked per flavour (negotiated version/suite, kTLS engaged)
#   uml.csv      the kernel-path comparison, measured inside User-Mode Linux
#   uml-hostcpu.csv  the host's CPU count of the whole UML, sampled every 50 ms
#   results.md   min/median/max of each figure and its ratio to nginx's own TLS
#   results.png  the same as a plot
#
# Flavours (tests/bench/flavours.sh), all on 127.0.0.1, started and stopped here:
# nginx plain; nginx's own TLS; stunnel4, haproxy and hitch in front of plain nginx;
# plain nginx under Atlas; python3 http.server plain, behind stunnel4 and under
# Atlas; plain nginx with Atlas loaded but no TLS port.
# Workloads: a big file with curl (one connection); a 4 KiB file with wrk -t2 -c32
# (keep-alive); full handshakes with openssl s_time -new, ECDSA P-256 and RSA-2048;
# the idle-connection memory of tests/bench/idle-rss.sh.
# Server CPU is utime+stime of every process of the flavour, from /proc/PID/stat,
# sampled just before and just after each workload; client CPU is not counted.
# Repetitions are interleaved: for each repetition, every flavour in turn.
# Inside UML (tests/bench/uml-inner.sh), nginx's own kTLS against Atlas with kTLS, a
# big file with curl, TLS 1.3 and TLS 1.2, in pairs: each repetition measures the two
# servers back to back, nginx first in odd repetitions and Atlas first in even ones,
# and report.py gives the median of the paired ratios Atlas/nginx: both figures follow
# the shared host's load (a UML task is charged for the host's preemption, and other jobs
# slow the work itself), which a pair's two transfers share. tests/bench/uml-hostcpu.py
# adds the host's count of the whole UML's CPU per transfer, which preemption does not move.
#
# Settings (environment):
#   BENCH_QUICK=1       a smoke run: 16 MiB file (4 in UML), 1 s per wrk/s_time, 1 repetition
#                       (1 pair per TLS version in UML)
#   BENCH_REPS=N        repetitions (default 3; 1 when quick)
#   BENCH_BIG_MB=N      size of the big file (default 1024; 16 when quick)
#   BENCH_SECS=N        seconds per wrk and s_time run (default 10; 1 when quick)
#   BENCH_FLAVOURS=".." only these host flavours (default: all)
#   BENCH_UML=0         skip the kernel-path part (default 1)
#   BENCH_UML_REPS=N    repetitions inside UML, each a pair per TLS version (default 7;
#                       1 when quick)
#   BENCH_UML_MB=N      file size inside UML (default 256; 4 when quick). UML moves 30 to
#                       55 MiB/s here: a 256 MiB transfer takes about 6 s and each one
#                       2 to 5 s more to start and stop its server, so 7 repetitions (28
#                       transfers) take about 4 minutes, 5 on a busy machine
#   BENCH_IDLE=0        skip tests/bench/idle-rss.sh (default 1)
#   BENCH_INSTR=0       skip tests/bench/instructions.sh (callgrind; default 1)
#   BENCH_PIN=0         let clients and servers share every CPU (default 1 on 2 or more
#                       CPUs: servers on the first half of the CPUs, clients on the rest,
#                       UML on the last CPU)
# Prints "ok - " / "not ok - " for every check (tests/e2e/lib.sh) and "# " notes;
# exits non-zero when a check failed (a flavour that did not start, negotiated
# another suite, answered wrongly) or a figure is missing. Speed targets are
# reported, never asserted.
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
export ATLAS_E2E_SERVER_LIFETIME=${ATLAS_E2E_SERVER_LIFETIME:-1800}
# shellcheck disable=SC1091
. "$BENCH_DIR/../e2e/lib.sh"
# shellcheck disable=SC1091
. "$BENCH_DIR/flavours.sh"

OUT=${1:-$ROOT/build/bench}
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	REPS=${BENCH_REPS:-1} BIG_MB=${BENCH_BIG_MB:-16} SECS=${BENCH_SECS:-1}
	UML_REPS=${BENCH_UML_REPS:-1} UML_MB=${BENCH_UML_MB:-4}
else
	REPS=${BENCH_REPS:-3} BIG_MB=${BENCH_BIG_MB:-1024} SECS=${BENCH_SECS:-10}
	UML_REPS=${BENCH_UML_REPS:-7} UML_MB=${BENCH_UML_MB:-256}
fi
HOST_FLAVOURS=${BENCH_FLAVOURS:-nginx-plain nginx-tls stunnel haproxy hitch atlas atlas-noport py-plain py-stunnel py-atlas}
HZ=$(getconf CLK_TCK)
BENCH_TLS=13 # flavours.sh: TLS 1.3 on the host
export BENCH_TLS

for prog in curl wrk openssl /usr/sbin/nginx /usr/bin/stunnel4 /usr/sbin/haproxy /usr/sbin/hitch; do
	command -v "$prog" >/dev/null || {
		fail "bench: $prog is missing (make bench installs it)"
		exit 1
	}
done
mkdir -p "$OUT"
rm -f "$OUT"/{raw.csv,checks.csv,uml.csv,uml-hostcpu.csv,idle-rss.md,instructions.md,meta.txt,results.md,results.png}
echo "rep,flavour,workload,figure,value" >"$OUT/raw.csv"
echo "flavour,check,result" >"$OUT/checks.csv"
T0=$(date +%s)

meta() { printf '%s=%s\n' "$1" "$2" >>"$OUT/meta.txt"; }
record() { echo "$1,$2,$3,$4,$5" >>"$OUT/raw.csv"; }
checked() { echo "$1,$2,$3" >>"$OUT/checks.csv"; }
calc() { awk "BEGIN { printf \"%.6g\", $1 }"; }

meta date "$(date -u +%Y-%m-%dT%H:%MZ)"
meta host "$(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r)"
meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta flavours "$HOST_FLAVOURS"
# Servers and clients on separate CPUs. wrk keeps a connecting socket registered for
# writability while its TLS handshake waits for the server, so it spins for as long as the
# server takes to answer; sharing the CPUs, that spin takes from the server whatever it
# is, and a slower server is slowed further (python behind stunnel4 or under Atlas, where
# every request is a handshake: wrk used more CPU than the server). Pinned, each server
# has the same CPU to itself whatever its client does, as it would facing remote clients.
NCPU=$(nproc)
if [ "${BENCH_PIN:-1}" = 1 ] && [ "$NCPU" -ge 2 ]; then
	cpus() { if [ "$1" = "$2" ]; then echo "$1"; else echo "$1-$2"; fi; }
	BENCH_SERVER_CPUS=$(cpus 0 $((NCPU / 2 - 1))) BENCH_CLIENT_CPUS=$(cpus $((NCPU / 2)) $((NCPU - 1)))
	PIN_DESC="servers on CPU $BENCH_SERVER_CPUS, clients on CPU $BENCH_CLIENT_CPUS"
else
	BENCH_SERVER_CPUS="" BENCH_CLIENT_CPUS=""
	PIN_DESC="servers and clients share the CPUs"
fi
export BENCH_SERVER_CPUS
meta settings "reps=$REPS big=${BIG_MB}MiB secs=$SECS uml=${UML_MB}MiB uml_reps=$UML_REPS quick=$QUICK; $PIN_DESC"
meta versions "$(nginx -v 2>&1 | sed 's/.*: //'), stunnel $(dpkg-query -W -f='${Version}' stunnel4), haproxy $(dpkg-query -W -f='${Version}' haproxy), hitch $(dpkg-query -W -f='${Version}' hitch), $(openssl version | cut -d' ' -f1-2), wrk $(dpkg-query -W -f='${Version}' wrk)"

# ---- the files served and the client settings ---------------------------------------------

make_certs
WWW=$T/www
mkdir -p "$WWW"
head -c 4096 /dev/urandom >"$WWW/4k.bin"
echo ok >"$WWW/hs.txt"
# A sparse file reads as zeros from the page cache: no disk in the measurement.
truncate -s "${BIG_MB}M" "$WWW/big.bin"
BIG_BYTES=$((BIG_MB * 1048576))
cat "$WWW/big.bin" >/dev/null
CLIENT_CONF=$T/client-openssl.cnf
bench_client_conf "$CLIENT_CONF"
client() {
	if [ -n "$BENCH_CLIENT_CPUS" ]; then
		OPENSSL_CONF=$CLIENT_CONF taskset -c "$BENCH_CLIENT_CPUS" "$@"
	else
		OPENSSL_CONF=$CLIENT_CONF "$@"
	fi
}

url() { # FLAVOUR PORT PATH
	if [ "$(flavour_scheme "$1")" = https ]; then echo "https://localhost:$2$3"; else echo "http://127.0.0.1:$2$3"; fi
}
bcurl() { # PORT URL [ARGS]
	local port=$1 u=$2
	shift 2
	# shellcheck disable=SC2046 # bench_curl_tls: separate options
	client curl -sS $(bench_curl_tls) --cacert "$CA" --resolve "localhost:$port:127.0.0.1" "$@" "$u"
}

# ---- the checks made once per flavour and certificate ------------------------------------------

# check_tls FLAVOUR PORT KIND: it negotiates the version and suite every flavour must,
# with the certificate of KIND, and serves the right bytes.
check_tls() {
	local flav=$1 port=$2 kind=$3 out want wantv sig ok=1
	want=$(bench_want_cipher)
	wantv=$(bench_want_version)
	out=$(client openssl s_client -connect "127.0.0.1:$port" -servername localhost -CAfile "$CA" \
		-verify_return_error </dev/null 2>&1)
	if ! grep -Eq "^(New|Reused), $wantv, Cipher is $want\$" <<<"$out"; then
		ok=0
		note "$flav: openssl s_client did not negotiate $wantv $want:" \
			"$(printf '%s\n' "$out" | grep -E 'Cipher is|Verif|error' | head -n 5)"
	fi
	case $kind in ec) sig=ECDSA ;; *) sig='RSA(-PSS)?' ;; esac
	grep -Eq "^Peer signature type: $sig\$" <<<"$out" || {
		ok=0
		note "$flav: the server did not sign with its $kind key: $(printf '%s\n' "$out" | grep 'Peer signature type')"
	}
	out=$(bcurl "$port" "$(url "$flav" "$port" /4k.bin)" -v -o "$T/check.bin" 2>&1)
	if ! grep -q "SSL connection using $wantv / $want" <<<"$out"; then
		ok=0
		note "$flav: curl did not negotiate $wantv / $want: $(printf '%s\n' "$out" | grep 'SSL connection')"
	fi
	cmp -s "$T/check.bin" "$WWW/4k.bin" || {
		ok=0
		note "$flav: curl did not get the 4 KiB file"
	}
	if [ "$ok" = 1 ]; then
		pass "$flav ($kind): negotiates $wantv $want with the $kind certificate, serves the file"
		checked "$flav" "tls-$kind" "$wantv $want"
	else
		fail "$flav ($kind): negotiates $wantv $want with the $kind certificate, serves the file"
		checked "$flav" "tls-$kind" "WRONG"
	fi
	[ "$ok" = 1 ]
}

check_plain() {
	local flav=$1 port=$2
	if curl -sS --max-time 10 -o "$T/check.bin" "http://127.0.0.1:$port/4k.bin" 2>"$T/check.err" &&
		cmp -s "$T/check.bin" "$WWW/4k.bin"; then
		pass "$flav: serves the file over plain HTTP"
		checked "$flav" plain "HTTP"
	else
		fail "$flav: serves the file over plain HTTP"
		note_file "$T/check.err"
		checked "$flav" plain "WRONG"
		return 1
	fi
}

# ---- the workloads ------------------------------------------------------------------------

# big REP FLAVOUR PORT: the big file, one connection, curl.
wl_big() {
	local rep=$1 flav=$2 port=$3 c0 c1 res size secs
	c0=$(flavour_cpu_ticks)
	res=$(bcurl "$port" "$(url "$flav" "$port" /big.bin)" --max-time 600 -o /dev/null \
		-w '%{size_download} %{time_total}' 2>"$T/big.err")
	c1=$(flavour_cpu_ticks)
	read -r size secs <<<"$res"
	if [ "${size:-0}" != "$BIG_BYTES" ]; then
		fail "$flav: big file: got '${size:-}' bytes, want $BIG_BYTES"
		note_file "$T/big.err"
		return 1
	fi
	record "$rep" "$flav" big MBps "$(calc "$size / 1048576 / $secs")"
	record "$rep" "$flav" big cpu_s_per_GB "$(calc "($c1 - $c0) / $HZ / ($size / 1073741824)")"
}

# small REP FLAVOUR PORT: the 4 KiB file, wrk -t2 -c32 for SECS, keep-alive where the server
# keeps it (python's http.server speaks HTTP/1.0: a connection per request).
wl_small() {
	local rep=$1 flav=$2 port=$3 c0 c1 out reqs secs errs non2xx
	c0=$(flavour_cpu_ticks)
	out=$(client timeout $((SECS + 30)) wrk -t2 -c32 -d"${SECS}s" "$(url "$flav" "$port" /4k.bin)" 2>&1)
	c1=$(flavour_cpu_ticks)
	reqs=$(printf '%s\n' "$out" | awk '/ requests in / { print $1 }')
	secs=$(printf '%s\n' "$out" | awk '/ requests in / { sub(/s,$/, "", $4); print $4 }')
	errs=$(printf '%s\n' "$out" | awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }')
	non2xx=$(printf '%s\n' "$out" | awk '/Non-2xx/ { print $NF }')
	errs=${errs:-0} non2xx=${non2xx:-0}
	# A few socket errors happen with HTTP/1.0 servers (a connection per request) under load:
	# they are reported, and fail the run only past 5% of the requests.
	if [ -z "$reqs" ] || [ "$reqs" -eq 0 ] || [ "$non2xx" -gt 0 ] || [ "$errs" -gt $((reqs / 20)) ]; then
		fail "$flav: wrk: ${reqs:-no} requests, $errs socket errors, $non2xx non-2xx answers"
		printf '%s\n' "$out" | tail -n 8 | sed 's/^/#   /'
		return 1
	fi
	[ "$errs" -eq 0 ] || note "$flav: wrk: $errs socket errors in $reqs requests (rep $rep)"
	record "$rep" "$flav" small req_per_s "$(calc "$reqs / $secs")"
	record "$rep" "$flav" small socket_errors "$errs"
	record "$rep" "$flav" small cpu_us_per_req "$(calc "($c1 - $c0) / $HZ * 1000000 / $reqs")"
}

# hs REP FLAVOUR PORT KIND: new full handshakes, openssl s_time -new, each fetching a
# 3-byte file (so every flavour reaches its backend), no session resumption.
wl_hs() {
	local rep=$1 flav=$2 port=$3 kind=$4 c0 c1 out n secs
	c0=$(flavour_cpu_ticks)
	out=$(client timeout $((SECS + 30)) openssl s_time -connect "127.0.0.1:$port" -new \
		-time "$SECS" -www /hs.txt 2>&1)
	c1=$(flavour_cpu_ticks)
	# "N connections in T real seconds, B bytes read per connection"
	read -r n secs <<<"$(printf '%s\n' "$out" | awk '/connections in .* real seconds/ { print $1, $4; exit }')"
	if [ -z "${n:-}" ] || [ "$n" -eq 0 ]; then
		fail "$flav: s_time ($kind): no handshake completed"
		printf '%s\n' "$out" | tail -n 5 | sed 's/^/#   /'
		return 1
	fi
	record "$rep" "$flav" "hs_$kind" hs_per_s "$(calc "$n / $secs")"
	record "$rep" "$flav" "hs_$kind" cpu_us_per_hs "$(calc "($c1 - $c0) / $HZ * 1000000 / $n")"
}

# ---- one flavour, one repetition -------------------------------------------------------------------

is_tls() { [ "$(flavour_scheme "$1")" = https ]; }
is_python() { case $1 in py-*) return 0 ;; *) return 1 ;; esac; }

run_flavour() { # REP FLAVOUR KIND
	local rep=$1 flav=$2 kind=$3 port
	port=$(free_port)
	if ! flavour_start "$flav" "$port"; then
		fail "$flav: starts ($kind certificate)"
		flavour_stop
		return 1
	fi
	[ "$rep" = 1 ] && note "$flav: $(flavour_nprocs) processes (${FLAVOUR_DESC[$flav]})"
	if [ "$rep" = 1 ] || [ "$kind" = rsa ]; then
		if is_tls "$flav"; then check_tls "$flav" "$port" "$kind"; else check_plain "$flav" "$port"; fi || {
			flavour_stop
			return 1
		}
	fi
	if [ "$kind" = ec ]; then
		is_python "$flav" || wl_big "$rep" "$flav" "$port"
		wl_small "$rep" "$flav" "$port"
	fi
	is_tls "$flav" && ! is_python "$flav" && wl_hs "$rep" "$flav" "$port" "$kind"
	flavour_stop
	return 0
}

# ---- the host part ------------------------------------------------------------------------------

EC=("$EC_CERT" "$EC_KEY")
RSA=("$RSA_CERT" "$RSA_KEY")
for rep in $(seq "$REPS"); do
	for kind in ec rsa; do
		if [ "$kind" = ec ]; then CERT=${EC[0]} KEY=${EC[1]}; else CERT=${RSA[0]} KEY=${RSA[1]}; fi
		rm -f "$T/combined.pem"
		for flav in $HOST_FLAVOURS; do
			[ "$kind" = rsa ] && { ! is_tls "$flav" || is_python "$flav"; } && continue
			run_flavour "$rep" "$flav" "$kind"
		done
	done
	note "repetition $rep of $REPS done at $(($(date +%s) - T0)) s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
meta loadavg_host_end "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- the kernel path, inside User-Mode Linux ------------------------------------------------------

if [ "${BENCH_UML:-1}" = 1 ]; then
	if [ -x "$(command -v linux.uml)" ]; then
		CERT=${EC[0]} KEY=${EC[1]}
		uml_in=$T/uml-inner-vars.sh
		{
			printf 'BENCH_DIR=%q OUT=%q UML_REPS=%q UML_MB=%q CA=%q CERT=%q KEY=%q\n' \
				"$BENCH_DIR" "$OUT" "$UML_REPS" "$UML_MB" "$CA" "$CERT" "$KEY"
		} >"$uml_in"
		t=$(date +%s)
		# UML runs on one host CPU when pinning (the last: a client's on the host). Its
		# kernel and the host processes of its address spaces take turns (ptrace); left to
		# float across CPUs, the same 7 repetitions of 192 MiB took 247 s here against 179 s
		# pinned, each transfer keeping 0.86-0.98 of a CPU busy against 0.95-0.99.
		uml_pin=()
		[ -n "$BENCH_CLIENT_CPUS" ] && uml_pin=(taskset -c "$((NCPU - 1))")
		# The host's count of the whole UML's CPU (tests/bench/uml-hostcpu.py), sampled
		# beside it and matched to each transfer's window afterwards.
		"${uml_pin[@]}" "$ROOT/tests/uml/run.sh" --timeout "${BENCH_UML_TIMEOUT:-1500}" -- \
			bash "$BENCH_DIR/uml-inner.sh" "$uml_in" >"$T/uml.out" 2>&1 &
		uml_launcher=$!
		"$PY" "$BENCH_DIR/uml-hostcpu.py" sample "$uml_launcher" "$OUT/uml-hostcpu.csv" \
			2>"$T/uml-hostcpu.err" &
		uml_sampler=$!
		wait "$uml_launcher"
		rc=$?
		wait "$uml_sampler"
		grep -E '^(ok - |not ok - |# )' "$T/uml.out" | sed 's/^\(not ok - \|ok - \)/\1uml: /'
		N_PASS=$((N_PASS + $(grep -c '^ok - ' "$T/uml.out")))
		N_FAIL=$((N_FAIL + $(grep -c '^not ok - ' "$T/uml.out")))
		if [ "$rc" -ne 0 ] || ! grep -q '^# uml-inner: done' "$T/uml.out"; then
			fail "uml: the kernel-path run did not finish (tests/uml/run.sh status $rc)"
			tail -n 15 "$T/uml.out" | sed 's/^/#   /'
		fi
		if [ -f "$OUT/uml.csv" ] && "$PY" "$BENCH_DIR/uml-hostcpu.py" merge "$OUT/uml-hostcpu.csv" \
			"$OUT/uml.csv" >"$T/uml-hostcpu.out" 2>>"$T/uml-hostcpu.err"; then
			pass "uml: the host CPU of the whole UML, for every transfer ($(cat "$T/uml-hostcpu.out"))"
		else
			fail "uml: the host CPU of the whole UML, for every transfer"
			cat "$T/uml-hostcpu.out" "$T/uml-hostcpu.err" 2>/dev/null | tail -n 5 | sed 's/^/#   /'
		fi
		note "uml: kernel-path part in $(($(date +%s) - t)) s"
	else
		fail "uml: linux.uml is missing (make bench installs user-mode-linux)"
	fi
fi

# ---- idle-connection memory (tests/bench/idle-rss.sh) --------------------------------------------

# sub_tool SCRIPT TABLE WHAT ARGS...: run tests/bench/SCRIPT, its markdown table (stdout)
# into OUT/TABLE for results.md as it is; its progress and its own "ok - " / "not ok - "
# lines go to stderr, and those lines count here.
sub_tool() {
	local script=$1 table=$2 what=$3 err=$T/${1%.sh}.err rc
	shift 3
	bash "$BENCH_DIR/$script" "$@" >"$OUT/$table" 2>"$err"
	rc=$?
	grep -E '^(ok - |not ok - )' "$err"
	N_PASS=$((N_PASS + $(grep -c '^ok - ' "$err")))
	N_FAIL=$((N_FAIL + $(grep -c '^not ok - ' "$err")))
	if [ "$rc" -eq 0 ]; then
		pass "$script: $what ($*)"
	else
		fail "$script: $what ($*): status $rc"
		note_file "$err"
	fi
}

# tests/bench/idle-rss.sh measures the RSS of nginx holding 1000 idle TLS connections
# (plain, under Atlas, nginx's own TLS), on the host and inside UML (quick mode: 200, host
# only).
if [ "${BENCH_IDLE:-1}" = 1 ]; then
	idle_args=(-n 1000)
	[ "$QUICK" = 1 ] && idle_args=(-n 200 --no-uml)
	sub_tool idle-rss.sh idle-rss.md "memory per idle connection measured" "${idle_args[@]}"
fi

# tests/bench/instructions.sh counts, with callgrind, the instructions nginx runs per request
# and per handshake, plain, with Atlas loaded and no TLS port, with its own TLS and under
# Atlas: figures that other jobs on the machine do not move.
if [ "${BENCH_INSTR:-1}" = 1 ]; then
	instr_args=(-s 5)
	[ "$QUICK" = 1 ] && instr_args=(-s 1)
	sub_tool instructions.sh instructions.md "instructions per request and per handshake counted" \
		"${instr_args[@]}"
fi

# ---- the report --------------------------------------------------------------------------------------

meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
meta duration_s "$(($(date +%s) - T0))"
if "$PY" "$BENCH_DIR/report.py" "$OUT" >"$T/report.out" 2>&1; then
	pass "report: $OUT/results.md and results.png, every cell filled"
else
	fail "report: $OUT/results.md and results.png, every cell filled"
	tail -n 20 "$T/report.out" | sed 's/^/#   /'
fi
[ -f "$OUT/results.md" ] && cat "$OUT/results.md"
note "bench: $(($(date +%s) - T0)) s in all"
finish
