#!/usr/bin/env bash
# 13: the fd limit. tests/e2e/progs/emfsrv.c (one thread, poll, accept4) runs with
# RLIMIT_NOFILE 32, once under Atlas (TLS on one port, a second port plain) and
# once without Atlas; clients hold connections until the process has no fd left.
#   - accept() fails as it does without Atlas: the same errno (EMFILE) in both
#     runs, printed by the server itself; the connection at the last fd works
#     (Atlas needs no fd of its own to accept or to handshake);
#   - when the held connections close, the server accepts again: the client that
#     waited in the backlog meanwhile is served over TLS;
#   - nothing leaks: the fd count comes back, and a plaintext connection that
#     gets the number a TLS connection had is served in plaintext (no stale
#     slot in Atlas's table); one open-session log line per TLS connection.
. "$(dirname "$0")/lib.sh"

LIMIT=32
HOSTILE=$E2E_DIR/hostile.py
cc -O1 -g -std=c11 -Wall -Wextra -Werror -o "$T/emfsrv" "$E2E_DIR/progs/emfsrv.c" || {
	fail "tests/e2e/progs/emfsrv.c builds"
	finish
}
make_certs

# start NAME PORT PLAIN [atlas]: emfsrv under `ulimit -n LIMIT`, with Atlas or without.
start_emf() {
	local name=$1 p=$2 q=$3 pre=()
	[ "${4:-}" = atlas ] && pre=("$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$p" --log-level info --)
	# shellcheck disable=SC2016 # the inner shell expands them
	start_server "$name" "$p,$q" -- bash -c 'ulimit -n "$0" && exec "$@"' "$LIMIT" "${pre[@]}" "$T/emfsrv" "$p" "$q"
}
failed_line() { grep -a -m1 "^emfsrv: accept on port $2 failed: " "$(server_log "$1")" | sed 's/.*failed: //'; }
fds_le() { [ "$(fd_count "$1")" -le "$2" ]; }
# low_fds PID: its open fds numbered below LIMIT (fds inherited above it, from whatever ran
# the test, stay open but do not take the numbers accept can give).
low_fds() { find /proc/"$1"/fd -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | awk -v l="$LIMIT" '$1 < l' | wc -l; }
at_limit() { [ "$(low_fds "$1")" -ge "$LIMIT" ]; }

# ---- without Atlas: what the server sees at the limit ------------------------------------------
P=$(free_port)
Q=$(free_port)
PLAIN_ERR=
if start_emf plain "$P" "$Q"; then
	pid=$(server_pid plain)
	is_eq "without Atlas: the server runs with RLIMIT_NOFILE $LIMIT" \
		"$(awk '/^Max open files/ { print $4 }' /proc/"$pid"/limits)" "$LIMIT"
	room=$((LIMIT - $(low_fds "$pid")))
	bg_start idle-plain -- "$PY" "$CLIENTS" idle --port "$P" --count "$room" --hold 60
	wait_until 10 grep -q "^connected=$room\$" "$T/idle-plain.out"
	wait_until 10 at_limit "$pid"
	bg_start waiter-plain -- curl -sS --max-time 30 "http://127.0.0.1:$P/"
	wait_until 5 bash -c "grep -q 'accept on port $P failed' '$(server_log plain)'"
	PLAIN_ERR=$(failed_line plain "$P")
	is_match "without Atlas: $room connections fill the fd table; the next accept fails ($PLAIN_ERR)" "$PLAIN_ERR" '^E[A-Z]+ '
	kill_group "${BG_PIDS[0]}" # the idle clients
	wait_until 10 grep -q "accepting again on port $P" "$(server_log plain)"
	wait_until 20 bash -c "! kill -0 $BG_PID 2>/dev/null"
	is_match "without Atlas: once they close, the server accepts again: the client that waited is served" \
		"$(cat "$T/waiter-plain.out")" "^fd=[0-9]+ port=$P$"
	stop_bg
	stop_server plain
else
	fail "emfsrv starts without Atlas under ulimit -n $LIMIT"
fi

# ---- under Atlas -------------------------------------------------------------------------------
P=$(free_port)
Q=$(free_port)
if ! start_emf tls "$P" "$Q" atlas; then
	fail "emfsrv starts under Atlas and ulimit -n $LIMIT"
	finish
fi
pid=$(server_pid tls)
LOG=$(server_log tls)
is_eq "under Atlas: the server runs with RLIMIT_NOFILE $LIMIT" \
	"$(awk '/^Max open files/ { print $4 }' /proc/"$pid"/limits)" "$LIMIT"
body=$(hcurl "$P" / 2>&1)
is_match "under Atlas: a TLS request is served" "$body" "^fd=[0-9]+ port=$P$"
fd0=$(fd_count "$pid")
room=$((LIMIT - $(low_fds "$pid")))
note "baseline: $fd0 fds, room for $room connections"

bg_start hold -- "$PY" "$HOSTILE" hold --port "$P" --ca "$CA" --count "$room" --hold 60 --timeout 5
if wait_until 30 grep -q '^held=' "$T/hold.out"; then
	is_match "under Atlas: $room TLS connections complete their handshakes, the last one at the last fd" \
		"$(cat "$T/hold.out")" "^held=$room\$"
else
	fail "under Atlas: $room TLS connections complete their handshakes"
	note_file "$T/hold.out"
fi
is_eq "under Atlas: the process has no fd number left below its limit" "$(low_fds "$pid")" "$LIMIT"
# One more client: it waits in the listen backlog while accept fails.
bg_start waiter -- curl -sS --max-time 30 --cacert "$CA" --resolve "localhost:$P:127.0.0.1" "https://localhost:$P/"
WAITER=$BG_PID
if wait_until 10 bash -c "grep -q 'accept on port $P failed' '$LOG'"; then
	TLS_ERR=$(failed_line tls "$P")
	is_eq "under Atlas: accept fails with the same errno as without Atlas ($TLS_ERR)" "$TLS_ERR" "$PLAIN_ERR"
else
	fail "under Atlas: accept fails at the limit"
	note_file "$LOG"
fi
sleep 0.5
check "under Atlas: the server keeps running while accept fails" server_alive tls
is_no_match "under Atlas: no atlas line about the failed accepts (they are the server's own)" \
	"$(grep -a '^atlas:' "$LOG")" 'error|warn|fatal|refused'

# Release the held connections: the waiting client gets in.
kill -USR1 "$(pgrep -P "${BG_PIDS[0]}" -f hostile.py || echo "${BG_PIDS[0]}")" 2>/dev/null
wait_until 20 grep -q '^released=' "$T/hold.out"
if wait_until 15 grep -q "accepting again on port $P" "$LOG"; then
	pass "under Atlas: once the held connections close, the server accepts again"
else
	fail "under Atlas: once the held connections close, the server accepts again"
	note_file "$LOG"
fi
wait_until 20 bash -c "! kill -0 $WAITER 2>/dev/null"
is_match "under Atlas: the client that waited in the backlog is served over TLS" \
	"$(cat "$T/waiter.out")" "^fd=[0-9]+ port=$P$"
if wait_until 10 fds_le "$pid" "$fd0"; then
	pass "under Atlas: the fd count is back to its baseline ($(fd_count "$pid") <= $fd0)"
else
	fail "under Atlas: the fd count is back to its baseline ($fd0): now $(fd_count "$pid")"
fi

# The number a TLS connection had, reused by a plaintext connection: served in plaintext.
tls_body=$(hcurl "$P" / 2>&1)
tls_fd=$(sed -n 's/^fd=\([0-9]*\) .*/\1/p' <<<"$tls_body")
plain_body=$(curl -sS --max-time 10 "http://127.0.0.1:$Q/" 2>&1)
is_eq "under Atlas: a plaintext connection after a TLS one gets its fd number and is served in plaintext" \
	"$plain_body" "fd=$tls_fd port=$Q"
wait_until 5 bash -c "grep -q 'answered fd=$tls_fd port=$Q' '$LOG'"
tls_body=$(hcurl "$P" / 2>&1)
is_eq "under Atlas: ... and the next TLS connection on that number is TLS again" "$tls_body" "fd=$tls_fd port=$P"

# One open-session line per TLS connection: the first, the $room held, the waiter, two more.
wait_until 5 bash -c "[ \$(grep -c 'port $P: TLSv1' '$LOG') -ge $((room + 4)) ]"
is_eq "under Atlas: one open-session info line per TLS connection ($((room + 4)))" \
	"$(grep -c "port $P: TLSv1" "$LOG")" "$((room + 4))"
is_no_match "under Atlas: no atlas error, warning or refusal in the log" "$(grep -a '^atlas:' "$LOG")" \
	'^atlas: (error|warn|fatal)|refused'
check "under Atlas: the server is still running" server_alive tls

finish
