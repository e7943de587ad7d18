#!/usr/bin/env bash
# tests/bench/uml-inner.sh VARS: the kernel-path part of `make bench`, run INSIDE
# User-Mode Linux by tests/bench/run.sh (tests/uml/run.sh -- bash uml-inner.sh VARS).
#
# nginx's own kTLS (ssl_conf_command Options KTLS, sendfile on) against plain nginx
# under Atlas with --ktls require, one big file with curl, in TLS 1.3 and TLS 1.2
# (AES-128-GCM both). Both pay the same kernel crypto (UML's generic C AES-GCM) on
# UML's one CPU, which client and server share: only the ratio between them means
# something. Every measured transfer must show curl's "SSL connection using" line for the
# version and suite (curl is held to the version on its command line: it overrides
# OPENSSL_CONF's MinProtocol and MaxProtocol, and plain nginx under Atlas allows TLS 1.3),
# and must show in /proc/net/tls_stat: TlsTxSw rises
# for both servers; TlsRxSw for Atlas always, for nginx only in TLS 1.2 (OpenSSL 3.0
# does not install TLS 1.3 receive).
#
# Pairs: each repetition measures, per TLS version, nginx and Atlas one right after the
# other, nginx first in odd repetitions and Atlas first in even ones. The host is shared,
# and inside UML both throughput and CPU time follow the host's load (a UML task is
# charged for the time the host preempts it), so report.py divides Atlas by nginx within
# each pair, whose two transfers saw nearly the same load, and the alternating order
# cancels a drift that would otherwise always favour the one measured second.
# VARS sets BENCH_DIR OUT UML_REPS UML_MB CA CERT KEY; results go to $OUT/uml.csv
# (rep,flavour,tls,figure,value; figures MBps, cpu_s_per_GB, ktls_tx, ktls_rx, and t0, t1,
# bytes for the host's count of the whole UML's CPU: tests/bench/uml-hostcpu.py) and
# $OUT/checks.csv.
# shellcheck disable=SC1090,SC1091,SC2317
. "$1"
export START_SECS=60
. "$BENCH_DIR/../e2e/lib.sh"
. "$BENCH_DIR/flavours.sh"

inner_end() {
	trap - EXIT
	stop_all
	echo "# uml-inner: $N_PASS passed, $N_FAIL failed"
	echo "# uml-inner: done"
	exit 0
}
trap inner_end EXIT

HZ=$(getconf CLK_TCK)
tls_stat() { awk -v k="$1" '$1 == k { print $2 }' /proc/net/tls_stat; }
calc() { awk "BEGIN { printf \"%.6g\", $1 }"; }

if [ ! -e /proc/net/tls_stat ]; then
	fail "kTLS: /proc/net/tls_stat is missing: this kernel has no tls module"
	exit 0
fi
echo "rep,flavour,tls,figure,value" >"$OUT/uml.csv"
WWW=$T/www
mkdir -p "$WWW"
echo ok >"$WWW/4k.bin"
# Random bytes (a sparse file would read as zeros: the same, but let it be real data).
head -c $((UML_MB * 1048576)) /dev/urandom >"$WWW/big.bin"
BYTES=$((UML_MB * 1048576))
note "UML: $(nproc) CPU, kernel $(uname -r), ${UML_MB} MiB file"

for rep in $(seq "$UML_REPS"); do
	if [ $((rep % 2)) = 1 ]; then order="nginx-ktls atlas-ktls"; else order="atlas-ktls nginx-ktls"; fi
	for BENCH_TLS in 13 12; do
		conf=$T/client-$BENCH_TLS.cnf
		bench_client_conf "$conf"
		want="$(bench_want_version) $(bench_want_cipher)"
		for flav in $order; do
			# Every UML has its own network stack, and python (free_port) takes seconds to start here.
			port=8600
			t0=$(date +%s)
			if ! flavour_start "$flav" "$port"; then
				fail "$flav TLS$BENCH_TLS: starts"
				flavour_stop
				continue
			fi
			if [ "$rep" = 1 ]; then
				out=$(OPENSSL_CONF=$conf openssl s_client -connect "127.0.0.1:$port" -servername localhost \
					-CAfile "$CA" -verify_return_error </dev/null 2>&1)
				if grep -Eq "^New, ${want/ /, Cipher is }\$" <<<"$out"; then
					pass "$flav: negotiates $want"
					echo "$flav,tls$BENCH_TLS,$want" >>"$OUT/checks.csv"
				else
					fail "$flav: negotiates $want"
					printf '%s\n' "$out" | grep -E 'Cipher is|error' | head -n 3 | sed 's/^/#   /'
					echo "$flav,tls$BENCH_TLS,WRONG" >>"$OUT/checks.csv"
					flavour_stop
					continue
				fi
			fi
			tx0=$(tls_stat TlsTxSw) rx0=$(tls_stat TlsRxSw)
			c0=$(flavour_cpu_ticks)
			w0=$EPOCHREALTIME
			# shellcheck disable=SC2046 # bench_curl_tls: separate options
			res=$(OPENSSL_CONF=$conf curl -sS -v $(bench_curl_tls) --max-time 600 --cacert "$CA" \
				--resolve "localhost:$port:127.0.0.1" -o /dev/null -w '%{size_download} %{time_total}' \
				"https://localhost:$port/big.bin" 2>"$T/curl.err")
			w1=$EPOCHREALTIME
			c1=$(flavour_cpu_ticks)
			tx=$(($(tls_stat TlsTxSw) - tx0)) rx=$(($(tls_stat TlsRxSw) - rx0))
			read -r size secs <<<"$res"
			flavour_stop
			if [ "${size:-0}" != "$BYTES" ]; then
				fail "$flav TLS$BENCH_TLS: big file: got '${size:-}' bytes, want $BYTES"
				note_file "$T/curl.err"
				continue
			fi
			# The measured connection itself, not only the probe above, has the version and suite.
			if ! grep -q "SSL connection using ${want/ / \/ }\$" "$T/curl.err"; then
				fail "$flav TLS$BENCH_TLS rep $rep: the measured transfer negotiated $want"
				grep 'SSL connection' "$T/curl.err" | sed 's/^/#   /'
				continue
			fi
			# kTLS engaged: the one measured connection installed TX (and RX where expected).
			if [ "$tx" -lt 1 ]; then
				fail "$flav TLS$BENCH_TLS rep $rep: kTLS TX engaged (TlsTxSw +$tx)"
				continue
			fi
			if [ "$flav" = atlas-ktls ] && [ "$rx" -lt 1 ]; then
				fail "$flav TLS$BENCH_TLS rep $rep: kTLS RX engaged (TlsRxSw +$rx)"
				continue
			fi
			[ "$rep" = 1 ] && pass "$flav TLS$BENCH_TLS: kTLS engaged (TlsTxSw +$tx, TlsRxSw +$rx)"
			note "$flav TLS$BENCH_TLS rep $rep: $secs s for the file, $(($(date +%s) - t0)) s in all"
			{
				echo "$rep,$flav,$BENCH_TLS,MBps,$(calc "$size / 1048576 / $secs")"
				echo "$rep,$flav,$BENCH_TLS,cpu_s_per_GB,$(calc "($c1 - $c0) / $HZ / ($size / 1073741824)")"
				echo "$rep,$flav,$BENCH_TLS,ktls_tx,$tx"
				echo "$rep,$flav,$BENCH_TLS,ktls_rx,$rx"
				# The transfer's window on the wall clock, which UML shares with the host: for
				# tests/bench/uml-hostcpu.py, the host CPU of the whole UML meanwhile.
				echo "$rep,$flav,$BENCH_TLS,t0,$w0"
				echo "$rep,$flav,$BENCH_TLS,t1,$w1"
				echo "$rep,$flav,$BENCH_TLS,bytes,$size"
			} >>"$OUT/uml.csv"
		done
	done
	note "UML repetition $rep of $UML_REPS done ($order)"
done
exit 0
