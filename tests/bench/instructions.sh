#!/usr/bin/env bash
# tests/bench/instructions.sh: the servers' instructions per unit of work, counted by
# callgrind, as a small markdown table: a figure that, unlike CPU time, does not move
# with what else the machine runs.
#
#   tests/bench/instructions.sh [-s SECONDS]      (after make)
#
# nginx (one process: master_process off), under valgrind --tool=callgrind: plain;
# plain with Atlas loaded and no TLS port; its own TLS (TLS 1.3, AES-128-GCM, ECDSA
# P-256); plain under Atlas. For each: instructions per 4 KiB request (wrk -t1 -c8,
# keep-alive) and, for the TLS ones, per full handshake (openssl s_time -new, each
# fetching a 3-byte file). The counters are zeroed after a warm-up and dumped after
# the load; the figure is the program's total over the count the client reports. wrk's
# 8 connections each begin with a handshake: per request, 8 times the flavour's own
# per-handshake figure is taken off first, so that the figure does not depend on how
# many requests the run managed.
#
# Only user-space instructions are counted: the kernel's work (system calls, TCP, the
# copies) is not, so this complements the CPU-time figures of run.sh, it does not
# replace them. The table goes to stdout, progress and "ok - " lines to stderr; exit 0
# when every cell was measured. Needs valgrind, nginx, wrk (make bench installs them).
SECS=5
while [ $# -gt 0 ]; do
	case $1 in
	-s) SECS=$2; shift 2 ;;
	*) echo "usage: tests/bench/instructions.sh [-s SECONDS]" >&2; exit 2 ;;
	esac
done
exec 3>&1 1>&2
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/flavours.sh" # nginx_conf
START_SECS=60 # valgrind starts nginx slowly

for prog in valgrind callgrind_control callgrind_annotate wrk openssl /usr/sbin/nginx; do
	command -v "$prog" >/dev/null || {
		fail "instructions.sh: $prog is missing (make bench installs it)"
		exit 1
	}
done
make_certs
CERT=$EC_CERT KEY=$EC_KEY BENCH_TLS=13 # nginx_conf's TLS: 1.3, AES-128-GCM, ECDSA P-256
WWW=$T/www
mkdir -p "$WWW"
head -c 4096 /dev/urandom >"$WWW/f4k"
printf 'hi\n' >"$WWW/small"

# total OUTFILE: the instructions callgrind counted in one dump.
total() {
	callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'
}

# measure NAME KIND PORT SCHEME -- ENV...: start nginx NAME under callgrind with ENV,
# warm up, zero, run the load (KIND: req or hs), dump; echoes the instructions counted
# and the requests or handshakes completed.
measure() {
	local name=$1 kind=$2 port=$3 scheme=$4 conf pid n out ir
	shift 5
	conf=$T/$name-$kind/nginx.conf
	nginx_conf "${conf%/*}" "$port" "$([ "$name" = nginx-tls ] && echo tls || echo plain)" single
	start_server "$name-$kind" "$port" -- env "$@" valgrind --tool=callgrind \
		--callgrind-out-file="$T/cg.$name-$kind" /usr/sbin/nginx -c "$conf" -e stderr >&2 || return 1
	pid=$(server_pid "$name-$kind")
	curl -sk --max-time 30 "$scheme://127.0.0.1:$port/f4k" -o /dev/null
	callgrind_control -z "$pid" >/dev/null 2>&1
	if [ "$kind" = req ]; then
		out=$(timeout $((SECS + 60)) wrk -t1 -c8 -d"${SECS}s" "$scheme://127.0.0.1:$port/f4k" 2>&1)
		n=$(awk '/requests in/ { print $1; exit }' <<<"$out")
	else
		out=$(timeout $((SECS + 60)) openssl s_time -connect "127.0.0.1:$port" -new \
			-time "$SECS" -www /small 2>&1)
		n=$(awk '/connections in [0-9.]+s;/ { print $1; exit }' <<<"$out")
	fi
	callgrind_control -d "$pid" >/dev/null 2>&1
	stop_server "$name-$kind"
	ir=$(total "$T/cg.$name-$kind.1")
	if [ -z "$n" ] || [ "$n" -lt 10 ] || [ -z "$ir" ]; then
		note "$name ($kind): ${n:-no} completions, ${ir:-no} instructions counted" >&2
		return 1
	fi
	echo "$ir $n"
}

atlas_env=(LD_PRELOAD="$LIBATLAS" ATLAS_CERT="$EC_CERT" ATLAS_KEY="$EC_KEY")
declare -A IR
CONNS=8 # wrk -c8: one handshake each, for the TLS flavours
run() { # KEY NAME KIND SCHEME [HS_KEY] ENV...: HS_KEY, the flavour's per-handshake figure
	local key=$1 name=$2 kind=$3 scheme=$4 hs=0 port v ir n
	shift 4
	if [ "$kind" = req ] && [ "$scheme" = https ]; then
		hs=${IR[$1]:-}
		shift
		[ -n "$hs" ] || {
			fail "instructions: $name, $kind: no per-handshake figure to take off"
			return
		}
	fi
	port=$(free_port)
	# Atlas's port is the one measured, except for the "no TLS port" flavour.
	if [ "$name" = atlas ]; then
		set -- "$@" ATLAS_PORTS="$port"
	elif [ "$name" = atlas-noport ]; then
		set -- "$@" ATLAS_PORTS="$(free_port)"
	fi
	if v=$(measure "$name" "$kind" "$port" "$scheme" -- "$@"); then
		read -r ir n <<<"$v"
		v=$(((ir - CONNS * hs) / n))
		IR[$key]=$v
		pass "instructions: $name, $kind: $v per unit"
	else
		fail "instructions: $name, $kind measured"
	fi
}

run plain-req nginx-plain req http
run noport-req atlas-noport req http "${atlas_env[@]}"
run tls-hs nginx-tls hs https
run atlas-hs atlas hs https "${atlas_env[@]}"
run tls-req nginx-tls req https tls-hs
run atlas-req atlas req https atlas-hs "${atlas_env[@]}"

ratio() { [ -n "${IR[$1]:-}" ] && [ -n "${IR[$2]:-}" ] && awk -v a="${IR[$1]}" -v b="${IR[$2]}" 'BEGIN { printf "%.3f", a / b }'; }
{
	echo "| figure | Atlas | against | ratio |"
	echo "|---|---|---|---|"
	echo "| per 4 KiB request, nginx with Atlas loaded and no TLS port | ${IR[noport-req]:-?} | nginx plain ${IR[plain-req]:-?} | $(ratio noport-req plain-req) |"
	echo "| per 4 KiB request, keep-alive, TLS 1.3 | ${IR[atlas-req]:-?} | nginx's own TLS ${IR[tls-req]:-?} | $(ratio atlas-req tls-req) |"
	echo "| per full handshake, ECDSA P-256, TLS 1.3 | ${IR[atlas-hs]:-?} | nginx's own TLS ${IR[tls-hs]:-?} | $(ratio atlas-hs tls-hs) |"
} >&3
[ "${#IR[@]}" -eq 6 ]
