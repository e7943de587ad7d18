# tests/e2e/ktls-inner.sh: helpers for the inner scripts of tests/e2e/3x-ktls*.sh,
# sourced INSIDE User-Mode Linux (see ktls-lib.sh, which writes the variables
# T ROOT BIN WWW CA CERT KEY BIG_SHA BIG_LEN before it).
#
# An inner script prints "ok - ..." / "not ok - ..." / "# ..." lines, which the
# host relays, and must end with `inner_done` (the host checks that it got there).
#
#   pass/fail/note MSG            the result lines
#   expect DESC CMD...            ok when CMD exits 0
#   is DESC GOT WANT              ok when GOT = WANT
#   tls_stat NAME                 a counter of /proc/net/tls_stat
#   snap / delta NAME             counters now; how far NAME moved since snap
#   srv_start NAME PORT [ATLAS OPTS...] -- CMD...
#                                 CMD under atlas-preload.sh --log-level info, log in
#                                 $T/NAME.log; waits until Atlas logs that PORT listens
#   srv_stop NAME                 TERM it (KILL after 5 s) and reap it
#   mark NAME / since NAME        the log's length now / its lines after the mark
#   wait_since NAME ERE [S]       until a line after the mark matches (at most S s)
#   client OUT ARGS...            tlsclient --ca $CA ARGS, output in $T/OUT.out, status in RC
#   field OUT WORD KEY            KEY=value from tlsclient's "WORD: ..." line
#   conn_line NAME                the last "TLSv1.x ... path ..." line after the mark
set -u

SRV_STARTED=()
declare -A SRV_PID=() MARK=() SNAP=()

pass() { echo "ok - $*"; }
fail() { echo "not ok - $*"; }
note() { printf '%s\n' "$@" | sed 's/^/# /'; }

# note_out FILE [LINES]: a file's last lines, as diagnostics.
note_out() {
	[ -f "$1" ] || return 0
	echo "# --- $(basename "$1"):"
	tail -n "${2:-12}" "$1" | sed 's/^/#   /'
}

expect() {
	local desc=$1
	shift
	if "$@" >/dev/null 2>&1; then
		pass "$desc"
	else
		fail "$desc"
		return 1
	fi
}

is() {
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		fail "$1"
		note "got:  '$2'" "want: '$3'"
		return 1
	fi
}

tls_stat() { awk -v k="$1" '$1 == k { print $2 }' /proc/net/tls_stat; }

snap() {
	local k
	for k in TlsTxSw TlsRxSw TlsCurrTxSw TlsCurrRxSw TlsDecryptError; do
		SNAP[$k]=$(tls_stat "$k")
	done
}

delta() { echo $(($(tls_stat "$1") - ${SNAP[$1]})); }

# wait_for SECONDS CMD...: poll CMD every 0.05 s, for at most SECONDS of wall time
# (a process takes a while to start in UML: counting polls would wait far longer).
now_us() { echo "${EPOCHREALTIME/./}"; }
wait_for() {
	local end=$(($(now_us) + $1 * 1000000))
	shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$(now_us)" -lt "$end" ] || return 1
		sleep 0.05
	done
}

srv_start() {
	local name=$1 port=$2 opts=() log=$T/$1.log
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	shift
	(cd "$ROOT" && exec ./atlas-preload.sh --cert "$CERT" --key "$KEY" --ports "$port" \
		--log-level info "${opts[@]}" -- "$@") >"$log" 2>&1 </dev/null &
	SRV_PID[$name]=$!
	SRV_STARTED+=("$name")
	MARK[$name]=0
	# Atlas logs its listener at info level; python3 takes seconds to start in UML.
	if ! wait_for 60 grep -q "listening with TLS on port $port;" "$log"; then
		fail "$name: the server did not listen on $port"
		note_out "$log"
		return 1
	fi
}

srv_alive() { kill -0 "${SRV_PID[$1]}" 2>/dev/null; }

srv_stop() {
	local pid=${SRV_PID[$1]:-}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	wait_for 5 eval "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	SRV_PID[$1]=
}

mark() { MARK[$1]=$(wc -l <"$T/$1.log"); }
since() { tail -n "+$((${MARK[$1]} + 1))" "$T/$1.log"; }
# A here-string, not a pipe (lib.sh's is_match says why) and not <(...): UML has no /dev/fd.
since_has() {
	local text
	text=$(since "$1")
	grep -Eq -- "$2" <<<"$text"
}
wait_since() { wait_for "${3:-10}" since_has "$1" "$2"; }

client() {
	local out=$T/$1.out
	shift
	timeout 60 "$BIN/tlsclient" --ca "$CA" "$@" >"$out" 2>&1
	RC=$?
	return 0
}

field() { sed -n "s/^$2: .*\\b$3=\\([^ ]*\\).*/\\1/p" "$T/$1.out" | tail -n 1; }

conn_line() { since "$1" | grep -E '^atlas: info: fd [0-9]+ peer .*: TLSv1\.[23] ' | tail -n 1; }

inner_done() {
	local name
	for name in "${SRV_STARTED[@]}"; do
		srv_stop "$name"
	done
	echo "# inner: done"
	exit 0
}
