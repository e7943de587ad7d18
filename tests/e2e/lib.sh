# tests/e2e/lib.sh: what every end-to-end scenario (tests/e2e/NN-name.sh) sources.
# shellcheck shell=bash
#
# A scenario starts real servers under ./atlas-preload.sh, talks to them with
# real clients (curl, openssl s_client, gnutls-cli, python's ssl module) and
# prints one "ok - ..." or "not ok - ..." line per check; tests/run.sh counts
# them. Diagnostics are "# ..." lines. Everything a scenario starts is killed
# when it exits, on failure and on a signal too, and its temp dir is removed
# (keep it with ATLAS_E2E_KEEP=1).
#
#   make_certs                          CA, intermediate, ECDSA and RSA leaves (sets CA, EC_*, RSA_*)
#   free_port [ADDR]                    an unused TCP port on ADDR (127.0.0.1)
#   start_server NAME PORT[,PORT] -- CMD...   start, log to $T/NAME.log, wait until PORT listens (START_SECS)
#   stop_server NAME / stop_all         kill a server's process group (bounded), all of them
#   bg_start NAME -- CMD...             a background helper (client), killed at exit
#   stop_bg                             kill the background helpers now
#   pass MSG / fail MSG / note MSG      "ok - MSG" / "not ok - MSG" / "# MSG"
#   check DESC CMD...                   ok if CMD exits 0, else not ok with its output
#   is_eq DESC GOT WANT / is_match DESC TEXT ERE / is_no_match DESC TEXT ERE
#   wait_until SECONDS CMD...           poll CMD every 0.1 s, at most SECONDS
#   wait_log NAME ERE [SECONDS]         poll until NAME's log has a line matching ERE
#   server_pid NAME                     the process that listens (the real python, not a wrapper)
#   fd_count PID / rss_kb PID           from /proc
#   hcurl PORT PATH [CURL ARGS...]      curl https://localhost:PORT/PATH, verifying against $CA
set -uo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E_DIR/../.." && pwd)
ATLAS=$ROOT/atlas-preload.sh
LIBATLAS=$ROOT/build/libatlas.so
# Debian's python: the PATH's python3 may be a pyenv shim (a wrapper, another interpreter).
PY=/usr/bin/python3
CLIENTS=$E2E_DIR/clients.py
SERVE=$E2E_DIR/serve.py
SCENARIO=$(basename "$0" .sh)
# A server that outlives its scenario (the EXIT trap never ran: SIGKILL) still dies by then.
SERVER_LIFETIME=${ATLAS_E2E_SERVER_LIFETIME:-300}
# How long start_server waits for a server to listen (a start inside UML takes seconds).
START_SECS=${START_SECS:-10}

T=$(mktemp -d "${TMPDIR:-/tmp}/atlas-e2e-$SCENARIO.XXXXXX") || {
	echo "not ok - $SCENARIO: cannot create a temp dir"
	exit 1
}
chmod 755 "$T" # so that a test may run something as nobody against files in it

N_PASS=0
N_FAIL=0
declare -A SERVER_PGID=() SERVER_MAIN=() SERVER_LOG=()
BG_PIDS=()
SCENARIO_START=$(date +%s.%N)

# ---- results ----------------------------------------------------------------

pass() {
	N_PASS=$((N_PASS + 1))
	echo "ok - $*"
}

fail() {
	N_FAIL=$((N_FAIL + 1))
	echo "not ok - $*"
}

note() {
	printf '%s\n' "$@" | sed 's/^/# /'
}

# note_file FILE [LINES]: the last lines of a file, as diagnostics.
note_file() {
	[ -f "$1" ] || return 0
	echo "# --- last lines of $1"
	tail -n "${2:-15}" "$1" | sed 's/^/#   /'
}

# check DESC CMD...: ok when CMD exits 0; otherwise not ok, with CMD's output.
check() {
	local desc=$1 out=$T/.check.out rc
	shift
	"$@" >"$out" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ]; then
		pass "$desc"
	else
		fail "$desc"
		note "command: $* (exit $rc)"
		tail -n 20 "$out" | sed 's/^/#   /'
	fi
	return "$rc"
}

is_eq() {
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		fail "$1"
		note "got:  '$2'" "want: '$3'"
		return 1
	fi
}

# is_match DESC TEXT ERE: a line of TEXT matches. TEXT goes to grep as a here-string,
# never through a pipe: under pipefail, grep -q leaving at its first match makes a
# printf still writing more than a pipe holds (64 KiB) die of SIGPIPE, and the
# pipeline fail although it matched (14 failed so, on nginx's 85 KB log, in CI).
is_match() {
	if grep -Eq -- "$3" <<<"$2"; then
		pass "$1"
	else
		fail "$1"
		note "no line matches /$3/ in:"
		printf '%s\n' "$2" | head -n 20 | sed 's/^/#   /'
		return 1
	fi
}

is_no_match() {
	if grep -Eq -- "$3" <<<"$2"; then
		fail "$1"
		note "lines matching /$3/:"
		printf '%s\n' "$2" | grep -E -- "$3" | head -n 10 | sed 's/^/#   /'
		return 1
	else
		pass "$1"
	fi
}

# is_between DESC VALUE MIN MAX: numeric (decimals allowed) MIN <= VALUE <= MAX.
is_between() {
	if awk -v v="$2" -v lo="$3" -v hi="$4" 'BEGIN { exit !(v != "" && v + 0 >= lo + 0 && v + 0 <= hi + 0) }'; then
		pass "$1"
	else
		fail "$1"
		note "got '$2', want between $3 and $4"
		return 1
	fi
}

# ---- waiting ------------------------------------------------------------------

# wait_until SECONDS CMD...: 0 as soon as CMD succeeds, 1 after SECONDS.
wait_until() {
	local limit=$1 end
	shift
	end=$(($(date +%s%N) + ${limit%.*} * 1000000000))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$(date +%s%N)" -lt "$end" ] || return 1
		sleep 0.1
	done
}

log_has() { grep -Eq -- "$2" "${SERVER_LOG[$1]}"; }

wait_log() { wait_until "${3:-10}" log_has "$1" "$2"; }

# now_ms: a monotonic-enough clock for measuring client-side durations.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- certificates ---------------------------------------------------------------

# make_certs: a test root CA, an intermediate CA it signs, and two server leaves
# (ECDSA P-256 and RSA-2048) signed by the intermediate, for localhost, 127.0.0.1
# and ::1. The server files hold the chain, leaf first: clients trust only the
# root, so the handshake works only if the intermediate is sent too.
#   CA          root certificate (what clients trust)
#   EC_CERT     ECDSA leaf + intermediate      EC_KEY   its key
#   RSA_CERT    RSA leaf + intermediate        RSA_KEY  its key
#   EC_LEAF, RSA_LEAF: the leaf alone
make_certs() {
	local d=$T/certs
	mkdir -p "$d"
	(
		set -e
		cd "$d"
		cat >ca.ext <<-EOF
			basicConstraints = critical, CA:TRUE
			keyUsage = critical, keyCertSign, cRLSign
			subjectKeyIdentifier = hash
		EOF
		cat >int.ext <<-EOF
			basicConstraints = critical, CA:TRUE, pathlen:0
			keyUsage = critical, keyCertSign, cRLSign
			subjectKeyIdentifier = hash
			authorityKeyIdentifier = keyid
		EOF
		cat >leaf.ext <<-EOF
			basicConstraints = critical, CA:FALSE
			keyUsage = critical, digitalSignature, keyEncipherment
			extendedKeyUsage = serverAuth
			subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
			subjectKeyIdentifier = hash
			authorityKeyIdentifier = keyid
		EOF
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
		openssl req -new -key ca.key -subj "/CN=Atlas e2e test root CA" -out ca.csr
		openssl x509 -req -in ca.csr -signkey ca.key -days 30 -extfile ca.ext -out ca.pem 2>/dev/null
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out int.key
		openssl req -new -key int.key -subj "/CN=Atlas e2e test intermediate CA" -out int.csr
		openssl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
			-days 30 -extfile int.ext -out int.pem 2>/dev/null
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null
		for k in ec rsa; do
			openssl req -new -key $k.key -subj "/CN=localhost" -out $k.csr
			openssl x509 -req -in $k.csr -CA int.pem -CAkey int.key -set_serial "0x$(openssl rand -hex 8)" \
				-days 30 -extfile leaf.ext -out $k-leaf.pem 2>/dev/null
			cat $k-leaf.pem int.pem >$k.pem
			openssl verify -CAfile ca.pem -untrusted int.pem $k-leaf.pem >/dev/null
		done
		chmod 600 ec.key rsa.key
	) >"$T/make_certs.log" 2>&1 || {
		note_file "$T/make_certs.log"
		fail "make_certs: could not make the test certificates"
		exit 1
	}
	CA=$d/ca.pem
	EC_CERT=$d/ec.pem EC_KEY=$d/ec.key EC_LEAF=$d/ec-leaf.pem
	RSA_CERT=$d/rsa.pem RSA_KEY=$d/rsa.key RSA_LEAF=$d/rsa-leaf.pem
}

# ---- ports and servers ------------------------------------------------------------

# free_port [ADDR]: a port nothing listens on at ADDR right now (the kernel's pick).
free_port() {
	"$PY" - "${1:-127.0.0.1}" <<-'EOF'
		import socket, sys
		addr = sys.argv[1]
		s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
		s.bind((addr, 0))
		print(s.getsockname()[1])
	EOF
}

# The inode of every TCP socket listening on PORT (IPv4 or IPv6), passively: a probe
# connection would be one more connection in the server's log and fd counts.
listen_inodes() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v h=":$hex" '$2 ~ (h "$") && $4 == "0A" { print $10 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# pid_holds_socket PID INODE
pid_holds_socket() {
	local f
	for f in /proc/"$1"/fd/*; do
		[ "$(readlink "$f" 2>/dev/null)" = "socket:[$2]" ] && return 0
	done
	return 1
}

# The process of group PGID that listens on PORT (echoes its pid), or fails.
listener_in_group() {
	local pgid=$1 port=$2 pid ino
	for ino in $(listen_inodes "$port"); do
		for pid in $(pgrep -g "$pgid"); do
			pid_holds_socket "$pid" "$ino" && { echo "$pid"; return 0; }
		done
	done
	return 1
}

# start_server NAME PORT[,PORT...] -- CMD...
# Starts CMD in its own process group (under timeout, a safety net), stdout and
# stderr to $T/NAME.log, and waits (at most 10 s) until every PORT listens in that
# group. Records the listening process (server_pid NAME). Fails, with the log, if
# the server dies or never listens.
start_server() {
	local name=$1 ports=$2 pgid main="" p deadline
	shift 2
	[ "${1:-}" = -- ] && shift
	SERVER_LOG[$name]=$T/$name.log
	# timeout puts itself and CMD in a new process group: the one stop_server kills.
	timeout -k 3 "$SERVER_LIFETIME" "$@" >"${SERVER_LOG[$name]}" 2>&1 </dev/null &
	pgid=$!
	SERVER_PGID[$name]=$pgid
	deadline=$(($(date +%s) + START_SECS))
	for p in ${ports//,/ }; do
		while :; do
			if ! kill -0 "$pgid" 2>/dev/null; then
				note "server $name exited before port $p listened"
				note_file "${SERVER_LOG[$name]}"
				return 1
			fi
			main=$(listener_in_group "$pgid" "$p") && break
			if [ "$(date +%s)" -ge "$deadline" ]; then
				note "server $name: port $p did not listen within $START_SECS s"
				note_file "${SERVER_LOG[$name]}"
				return 1
			fi
			sleep 0.05
		done
	done
	SERVER_MAIN[$name]=$main
	return 0
}

server_pid() { echo "${SERVER_MAIN[$1]:-}"; }
server_log() { echo "${SERVER_LOG[$1]}"; }
server_alive() { kill -0 "${SERVER_MAIN[$1]:-${SERVER_PGID[$1]}}" 2>/dev/null; }
# survived NAME: Atlas logged no warning or error for server NAME, and it still runs.
survived() {
	is_no_match "no warning or error from Atlas" "$(cat "$(server_log "$1")")" "atlas: (warn|error|fatal)"
	if server_alive "$1"; then
		pass "the server is still running"
	else
		fail "the server is still running"
		note_file "$(server_log "$1")"
	fi
}

# kill_group PGID: TERM the group, wait at most 5 s, then KILL it.
kill_group() {
	local pgid=$1 i
	kill -TERM -- "-$pgid" 2>/dev/null || kill -TERM "$pgid" 2>/dev/null || return 0
	for i in $(seq 50); do
		pgrep -g "$pgid" >/dev/null 2>&1 || break
		sleep 0.1
	done
	kill -KILL -- "-$pgid" 2>/dev/null
	wait "$pgid" 2>/dev/null
	return 0
}

stop_server() {
	local name=$1
	[ -n "${SERVER_PGID[$name]:-}" ] || return 0
	kill_group "${SERVER_PGID[$name]}"
	unset "SERVER_PGID[$name]"
}

# bg_start NAME -- CMD...: a background helper (a client holding connections),
# its own process group, output to $T/NAME.out; killed by stop_all. Sets BG_PID.
bg_start() {
	local name=$1
	shift
	[ "${1:-}" = -- ] && shift
	timeout -k 3 "$SERVER_LIFETIME" "$@" >"$T/$name.out" 2>&1 </dev/null &
	BG_PID=$!
	BG_PIDS+=("$BG_PID")
}

# stop_bg: kill every background helper started so far.
stop_bg() {
	local pid
	for pid in "${BG_PIDS[@]}"; do
		kill_group "$pid"
	done
	BG_PIDS=()
}

stop_all() {
	local name
	stop_bg
	for name in "${!SERVER_PGID[@]}"; do
		stop_server "$name"
	done
}

# ---- process facts ---------------------------------------------------------------

fd_count() {
	local n
	n=$(ls /proc/"$1"/fd 2>/dev/null | wc -l) || return 1
	echo "$n"
}

rss_kb() {
	awk '/^VmRSS:/ { print $2 }' /proc/"$1"/status 2>/dev/null
}

# ---- clients ------------------------------------------------------------------------

# hcurl PORT PATH [CURL ARGS...]: https://localhost:PORT/PATH at 127.0.0.1, verified against $CA.
hcurl() {
	local port=$1 path=$2
	shift 2
	curl -sS --max-time "${CURL_MAX_TIME:-20}" --cacert "$CA" \
		--resolve "localhost:$port:127.0.0.1" "$@" "https://localhost:$port$path"
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# small_records_ok LABEL SERVER PORT PATH SHA256: the body of GET PATH (HTTP/1.0) has
# that sha256 at a client that asked for 512-byte records (max_fragment_length) and
# reads nothing for its first 2 s. Each of the server's writes is then many records;
# what of one the full socket does not take waits in Atlas's send queue (tls.c),
# and the rest of a gathered record follows it (engine.c: op_flush), record by record.
small_records_ok() {
	local label=$1 name=$2 port=$3 path=$4 sha=$5 got
	printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$path" |
		timeout 60 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
			-maxfraglen 512 -quiet -ign_eof 2>"$T/s_client.err" | (sleep 2 && cat) >"$T/got.http"
	got=$("$PY" -c 'import hashlib, sys
d = open(sys.argv[1], "rb").read()
print(hashlib.sha256(d[d.find(b"\r\n\r\n") + 4:]).hexdigest())' "$T/got.http")
	if [ "$got" = "$sha" ]; then
		pass "$label, 512-byte records, a slow reader: $path arrives intact (sha256)"
	else
		fail "$label, 512-byte records, a slow reader: $path arrives intact (sha256)"
		note "got $(stat -c %s "$T/got.http") bytes with the headers; s_client: $(tail -n 3 "$T/s_client.err")"
		note_file "$(server_log "$name")" 8
	fi
}

# ---- the end ------------------------------------------------------------------------------

on_exit() {
	local rc=$?
	trap - EXIT INT TERM HUP
	stop_all
	if [ "${ATLAS_E2E_KEEP:-0}" = 1 ]; then
		echo "# kept $T"
	else
		rm -rf "$T"
	fi
	echo "# $SCENARIO: $N_PASS passed, $N_FAIL failed in $(awk -v s="$SCENARIO_START" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s"
	[ "$N_FAIL" -eq 0 ] || exit 1
	exit "$rc"
}

# A scenario's last line: the exit status comes from the results.
finish() { exit 0; }

trap on_exit EXIT
trap 'note "interrupted"; exit 130' INT
trap 'note "terminated"; exit 143' TERM
trap 'note "hung up"; exit 129' HUP

[ -x "$PY" ] || {
	fail "$SCENARIO: $PY is missing (apt-get install python3)"
	exit 1
}
[ -r "$LIBATLAS" ] || {
	fail "$SCENARIO: $LIBATLAS is missing: run make first"
	exit 1
}
