#!/usr/bin/env bash
# 08: --handshake-timeout. With 1000 ms, a client that connects and sends
# nothing (or half a ClientHello, or half an HTTP method) is closed by the
# server after about a second, while other clients are served meanwhile, and
# the info log says the handshake timed out. A legitimate slow client inside the
# bound gets through; another value (3000 ms) is honoured as given; and a
# non-blocking (asyncio) server meets the deadline on its first call after it.
. "$(dirname "$0")/lib.sh"

make_certs
mkdir -p "$T/www"
echo "timeout test $(openssl rand -hex 8)" >"$T/www/index.html"
WANT=$(cat "$T/www/index.html")

# idle_close NAME PORT COUNT [clients.py idle args]: COUNT clients that send nothing (or a
# prefix), in the background. Waits until they are connected.
idle_start() {
	local name=$1 port=$2 count=$3
	shift 3
	bg_start "$name" -- "$PY" "$CLIENTS" idle --port "$port" --count "$count" --hold 15 "$@"
	wait_until 5 grep -q "^connected=$count\$" "$T/$name.out"
}
# idle_done NAME: wait (bounded) until the idle client reported its summary.
idle_done() { wait_until 20 grep -q '^still_open=' "$T/$1.out"; }
closed_times() { sed -n 's/^closed_after_ms=//p' "$T/$1.out" | tr '\n' ' '; }
max_of() { tr ' ' '\n' | awk 'NF { if ($1 > m) m = $1 } END { print m + 0 }'; }
min_of() { tr ' ' '\n' | awk 'NF { if (m == "" || $1 < m) m = $1 } END { print m + 0 }'; }

P=$(free_port)
if ! start_server t1000 "$P" -- "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$P" \
	--handshake-timeout 1000 --log-level info -- "$PY" -m http.server -b 127.0.0.1 -d "$T/www" "$P"; then
	fail "the server starts with --handshake-timeout 1000"
	finish
fi
LOG=$(server_log t1000)
PID=$(server_pid t1000)
fd0=$(fd_count "$PID")

# One idle client, and a real client served while it waits.
if idle_start idle1 "$P" 1; then
	t0=$(now_ms)
	body=$(hcurl "$P" /index.html 2>&1)
	served_ms=$(($(now_ms) - t0))
	is_eq "while an idle client holds a connection, another client is served" "$body" "$WANT"
	is_between "... at once (${served_ms} ms, bound 900 ms: before the idle one is even timed out)" "$served_ms" 0 900
	idle_done idle1
	is_match "the idle client was closed by the server, not left open" "$(cat "$T/idle1.out")" '^still_open=0$'
	is_between "... after about the timeout ($(closed_times idle1)ms; bound 800-3000 ms)" \
		"$(closed_times idle1 | max_of)" 800 3000
else
	fail "an idle client connects"
fi
wait_log t1000 'refused: handshake timed out' 5
is_match "info log: the handshake timed out, with the peer and port" "$(cat "$LOG")" \
	"atlas: info: fd [0-9]+ peer 127\.0\.0\.1:[0-9]+ port $P: refused: handshake timed out"

# Five at once: timed out together, not one after another.
if idle_start idle5 "$P" 5; then
	idle_done idle5
	times=$(closed_times idle5)
	is_match "5 idle clients at once: all 5 closed" "$(cat "$T/idle5.out")" '^closed=5$'
	is_between "5 idle clients at once: the last is closed within 3000 ms (times: ${times}ms)" \
		"$(max_of <<<"$times")" 800 3000
	is_between "5 idle clients at once: none before 800 ms" "$(min_of <<<"$times")" 800 3000
else
	fail "5 idle clients connect"
fi

# Stalled mid-ClientHello: the handshake itself is under way, then nothing more comes.
HELLO_HALF=$("$PY" -c '
import ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(i, o, server_hostname="localhost")
try:
    obj.do_handshake()
except ssl.SSLWantReadError:
    pass
h = o.read()
print(h[: len(h) // 2].hex())' "$CA")
if idle_start half "$P" 1 --hex "$HELLO_HALF"; then
	idle_done half
	is_match "half a ClientHello, then silence: closed by the server" "$(cat "$T/half.out")" '^closed=1$'
	is_between "... after about the timeout ($(closed_times half)ms; bound 800-3000 ms)" \
		"$(closed_times half | max_of)" 800 3000
else
	fail "a client sending half a ClientHello connects"
fi
# Stalled mid-method: "GE" could still become "GET ".
if idle_start ge "$P" 1 --text 'GE'; then
	idle_done ge
	is_match "'GE', then silence: closed by the server" "$(cat "$T/ge.out")" '^closed=1$'
	is_between "... after about the timeout ($(closed_times ge)ms; bound 800-3000 ms)" \
		"$(closed_times ge | max_of)" 800 3000
else
	fail "a client sending 'GE' connects"
fi
is_eq "info log: one 'handshake timed out' line per stalled client (1 + 5 + 1 + 1)" \
	"$(grep -c "port $P: refused: handshake timed out" "$LOG")" 8

# A slow client inside the bound gets through: 12 first bytes, 40 ms apart (~0.5 s).
res=$("$PY" "$CLIENTS" drip --port "$P" --ca "$CA" --path /index.html --drip 1 --drip-first 12 --drip-ms 40 2>&1)
is_match "a slow but legitimate handshake (~0.5 s) inside the 1 s bound succeeds" \
	"$(grep -E '^(handshake|status)=' <<<"$res" | tr '\n' ' ')" '^handshake=ok status=HTTP/1.0 200'
# The same client, but slower than the bound: 1.5 s between its first bytes and the rest.
res=$("$PY" "$CLIENTS" drip --port "$P" --ca "$CA" --path /index.html --drip 100 --drip-first 100 --drip-ms 1500 2>&1)
is_no_match "a handshake that takes 1.5 s is cut off by the 1 s bound" "$res" '^status=HTTP'

body=$(hcurl "$P" /index.html 2>&1)
is_eq "after all the timeouts the server still serves" "$body" "$WANT"
if wait_until 5 bash -c "[ \$(ls /proc/$PID/fd | wc -l) -le $fd0 ]"; then
	pass "the timed-out connections' fds are closed (back to $fd0)"
else
	fail "the timed-out connections' fds are closed (back to $fd0): now $(fd_count "$PID")"
fi
stop_server t1000
stop_bg

# Another value is honoured as given: 3000 ms.
P=$(free_port)
if start_server t3000 "$P" -- "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$P" \
	--handshake-timeout 3000 --log-level info -- "$PY" -m http.server -b 127.0.0.1 -d "$T/www" "$P"; then
	if idle_start idle3 "$P" 1; then
		idle_done idle3
		is_between "--handshake-timeout 3000: an idle client is closed after about 3 s ($(closed_times idle3)ms; bound 2800-5000 ms)" \
			"$(closed_times idle3 | max_of)" 2800 5000
	else
		fail "--handshake-timeout 3000: an idle client connects"
	fi
	stop_server t3000
else
	fail "the server starts with --handshake-timeout 3000"
fi

# A non-blocking server: the deadline is met on its first call after it (README).
P=$(free_port)
if start_server async "$P" -- "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$P" \
	--handshake-timeout 1000 --log-level info -- "$PY" "$SERVE" asyncio --port "$P"; then
	res=$("$PY" "$CLIENTS" drip --port "$P" --ca "$CA" --path /x --drip 1 --drip-first 12 --drip-ms 40 2>&1)
	is_match "asyncio server: a handshake inside the bound succeeds" "$res" '^status=HTTP/1.0 200'
	res=$("$PY" "$CLIENTS" drip --port "$P" --ca "$CA" --path /x --drip 100 --drip-first 100 --drip-ms 1500 2>&1)
	is_no_match "asyncio server: a handshake whose rest arrives after 1.5 s is refused" "$res" '^status=HTTP'
	wait_log async 'refused: handshake timed out' 5
	check "asyncio server: the info log says the handshake timed out" log_has async "port $P: refused: handshake timed out"
	body=$(hcurl "$P" /after 2>&1)
	is_eq "asyncio server: still serves afterwards" "$body" "asyncio says hello to /after"
	stop_server async
else
	fail "the asyncio server starts with --handshake-timeout 1000"
fi

finish
