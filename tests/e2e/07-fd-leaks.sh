#!/usr/bin/env bash
# 07: 1000 connections of mixed kinds (full TLS requests, TLS aborted mid-request
# without close_notify, plain HTTP, connect-and-close, garbage, half a
# ClientHello then close, connect-and-reset), 16 at a time, against a threaded
# http.server (serve.py files: python3 -m http.server's classes with a listen
# backlog of 128 instead of 5, so that the kernel drops none of the burst before
# accept() and every connection can be counted in Atlas's log). Afterwards the
# server process's open fds come back to where they were, and its RSS grows by
# less than the stated bound.
. "$(dirname "$0")/lib.sh"

RSS_BOUND_KB=$((16 * 1024)) # 16 MiB over 1000 connections: a leak of 16 KB per connection shows
make_certs
mkdir -p "$T/www"
head -c 20000 /dev/urandom | base64 >"$T/www/index.html"

P=$(free_port)
if ! start_server leak "$P" -- "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$P" --log-level info -- \
	"$PY" "$SERVE" files --port "$P" --dir "$T/www"; then
	fail "the server starts under Atlas"
	finish
fi
PID=$(server_pid leak)
LOG=$(server_log leak)
check "the measured process (pid $PID) is the python interpreter itself, not a wrapper" \
	bash -c "readlink /proc/$PID/exe | grep -q python3"

# churn COUNT: mixed connections through clients.py; sets RES.
churn() {
	RES=$("$PY" "$CLIENTS" churn --port "$P" --ca "$CA" --path /index.html --expect "$T/www/index.html" \
		--count "$1" --workers 16 --timeout 10 2>&1)
}
field() { sed -n "s/^$1=//p" <<<"$RES"; }
# Each connection's one line: its open session or why it was refused. A session that
# opened and later broke (a client reset) gets a second, "connection broken", line.
# Counted wherever they are: python writes its tracebacks (the resets) in pieces, so an
# atlas line (one write(2)) can start in the middle of one of python's lines.
conn_events() { grep -oE "atlas: info: fd [0-9]+ peer [^ ]+ port $P: (TLSv1\.[23]|refused|connection broken)" "$LOG"; }
conn_lines() { conn_events | grep -vc 'connection broken$'; }
broken_lines() { conn_events | grep -c 'connection broken$'; }

# settled BASE: the fd count is back to BASE (python's handler threads close their sockets).
fd_back_to() { [ "$(fd_count "$PID")" -le "$1" ]; }

# Warm-up: python's and OpenSSL's lazily made state, the allocator's arenas.
churn 140
is_eq "warm-up: 140 mixed connections, none misbehaved" "$(field failures)" 0
conn_count_ge() { [ "$(conn_lines)" -ge "$1" ]; }
wait_until 10 conn_count_ge 140
sleep 0.5 # settle: the handler threads of the last connections are exiting
fd0=$(fd_count "$PID")
rss0=$(rss_kb "$PID")
thr0=$(awk '/^Threads:/ { print $2 }' /proc/"$PID"/status)
lines0=$(conn_lines)
broken0=$(broken_lines)
note "baseline: $fd0 fds, RSS $rss0 kB, $thr0 threads"

t0=$(now_ms)
churn 1000
note "$RES"
is_eq "1000 mixed connections: every one behaved as its kind should ($(field kinds); $(field elapsed_s) s)" \
	"$(field failures)" 0
is_eq "1000 mixed connections: the client made them all" "$(field total)" 1000

if wait_until 15 fd_back_to "$fd0"; then
	pass "the server's fd count is back to its baseline ($(fd_count "$PID") <= $fd0) within $(($(now_ms) - t0)) ms of the start"
else
	fail "the server's fd count is back to its baseline ($fd0)"
	note "now $(fd_count "$PID") fds:"
	ls -l /proc/"$PID"/fd | tail -n +2 | awk '{ print $NF }' | sort | uniq -c | sort -rn | head -n 5 | sed 's/^/#   /'
fi
rss1=$(rss_kb "$PID")
is_between "RSS grows by less than $((RSS_BOUND_KB / 1024)) MiB over 1000 connections ($rss0 -> $rss1 kB)" \
	"$((rss1 - rss0))" -1000000 "$RSS_BOUND_KB"
thr1=$(awk '/^Threads:/ { print $2 }' /proc/"$PID"/status)
is_between "the handler threads are gone again ($thr0 -> $thr1 threads)" "$thr1" 0 $((thr0 + 2))

# One log line per connection, whatever became of it.
wait_until 10 conn_count_ge $((lines0 + 1000))
is_eq "exactly one open-or-refused info line per connection (1000 more)" "$(($(conn_lines) - lines0))" 1000
aborts=$(sed -n 's/.*tls_abort:\([0-9]*\).*/\1/p' <<<"$(field kinds)")
is_between "'connection broken' lines only for sessions the client aborted ($(($(broken_lines) - broken0)) of $aborts aborts)" \
	"$(($(broken_lines) - broken0))" 0 "${aborts:-0}"

# A second round: a leak grows with each round, noise does not.
churn 1000
is_eq "a second round of 1000: every connection behaved" "$(field failures)" 0
if wait_until 15 fd_back_to "$fd0"; then
	pass "after 2000 connections the fd count is still at its baseline ($fd0)"
else
	fail "after 2000 connections the fd count is still at its baseline ($fd0): now $(fd_count "$PID")"
fi
rss2=$(rss_kb "$PID")
is_between "RSS after 2000 connections still within $((RSS_BOUND_KB / 1024)) MiB of the baseline ($rss0 -> $rss2 kB)" \
	"$((rss2 - rss0))" -1000000 "$RSS_BOUND_KB"

body=$(hcurl "$P" /index.html 2>&1)
is_eq "the server still serves afterwards" "$body" "$(cat "$T/www/index.html")"
is_no_match "no atlas error or warning in the log" "$(cat "$LOG")" '^atlas: (error|warn)'

finish
