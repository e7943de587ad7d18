#!/usr/bin/env bash
# 05: many clients at once. 50 concurrent curl clients against the threaded
# python3 -m http.server, each checking its own body; 20 idle TCP clients (they
# connect and send nothing) held open while a real client is served promptly;
# the lazy handshake never blocks an accept loop (a single-threaded server that
# only accepts); and a non-blocking asyncio server under the same load.
. "$(dirname "$0")/lib.sh"

make_certs
W=$T/www
mkdir -p "$W" "$T/out"
for i in $(seq 0 49); do
	{
		echo "file $i $(openssl rand -hex 8)"
		head -c $((2000 + i * 997)) /dev/urandom | base64
	} >"$W/f$i.txt"
done
echo "prompt $(openssl rand -hex 8)" >"$W/index.html"

# many_curls PORT LABEL [PATH_PREFIX]: 50 concurrent curls, each for its own file.
# Prints how many got exactly their file.
many_curls() {
	local port=$1 i good=0 pids=()
	rm -f "$T"/out/*
	for i in $(seq 0 49); do
		hcurl "$port" "/f$i.txt" -o "$T/out/$i" 2>"$T/out/$i.err" &
		pids+=($!)
		BG_PIDS+=($!)
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}"
	done
	for i in $(seq 0 49); do
		cmp -s "$T/out/$i" "$W/f$i.txt" && good=$((good + 1))
	done
	echo "$good"
}

# idle_clients NAME PORT COUNT: hold COUNT connections that send nothing; waits until all connected.
idle_clients() {
	bg_start "$1" -- "$PY" "$CLIENTS" idle --port "$2" --count "$3" --hold 120
	wait_until 10 grep -q "^connected=$3\$" "$T/$1.out"
}

# timed_get PORT PATH: prints "MS BODY" for one curl.
timed_get() {
	local t0 body
	t0=$(now_ms)
	body=$(hcurl "$1" "$2" 2>&1)
	echo "$(($(now_ms) - t0)) $body"
}

# ---- threaded python3 -m http.server ----------------------------------------------
P=$(free_port)
if start_server threaded "$P" -- "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$P" --log-level info -- \
	"$PY" -m http.server -b 127.0.0.1 -d "$W" "$P"; then
	LOG=$(server_log threaded)
	t0=$(now_ms)
	good=$(many_curls "$P")
	is_eq "threaded server: 50 concurrent curl clients all get their own file ($(($(now_ms) - t0)) ms)" "$good" 50
	wait_until 5 bash -c "[ \$(grep -c 'port $P: TLSv1.3' '$LOG') -ge 50 ]"
	is_eq "threaded server: 50 connection lines in the info log" "$(grep -c "port $P: TLSv1.3" "$LOG")" 50

	if idle_clients idle "$P" 20; then
		pass "threaded server: 20 idle TCP clients connected and held"
		read -r ms body <<<"$(timed_get "$P" /index.html)"
		is_eq "threaded server: with 20 idle clients, a real client still gets its page" "$body" "$(cat "$W/index.html")"
		is_between "threaded server: ... promptly (${ms} ms, bound 3000 ms)" "$ms" 0 3000
		t0=$(now_ms)
		good=$(many_curls "$P")
		is_eq "threaded server: with 20 idle clients, 50 concurrent clients all get their file ($(($(now_ms) - t0)) ms)" "$good" 50
		is_match "threaded server: the idle clients are still connected (none dropped early)" \
			"$(grep -E '^closed_after_ms=' "$T/idle.out" || echo none)" '^none$'
	else
		fail "threaded server: 20 idle TCP clients connected and held"
		note_file "$T/idle.out"
	fi
	stop_bg
	# Lines are written whole (one write(2) each) even with 50 threads logging at once.
	is_no_match "threaded server: no log line has an atlas message spliced into its middle" \
		"$(cat "$LOG")" '.+atlas: (info|warn|error|debug):'
	check "threaded server: still running" server_alive threaded
	stop_server threaded
else
	fail "threaded server: starts under Atlas"
fi

# ---- a single-threaded accept loop that never reads ------------------------------------
# If accept() did the handshake, the first idle client would block it for good.
P=$(free_port)
if start_server acceptor "$P" -- "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$P" -- \
	"$PY" "$SERVE" accept-loop --port "$P"; then
	if idle_clients idle2 "$P" 20; then
		t0=$(now_ms)
		if wait_log acceptor '^accepted 20$' 5; then
			pass "accept loop: 20 idle clients are all accepted at once ($(($(now_ms) - t0)) ms after they connected): accept() does no handshake"
		else
			fail "accept loop: 20 idle clients are all accepted at once: accept() does no handshake"
			note_file "$(server_log acceptor)" 5
		fi
	else
		fail "accept loop: 20 idle clients connect"
	fi
	# A TLS client too: accept() returns although the ClientHello is never read.
	bg_start tlsget -- "$PY" "$CLIENTS" get --port "$P" --ca "$CA" --timeout 30
	check "accept loop: a TLS client's connection is accepted too, without being read" wait_log acceptor '^accepted 21$' 5
	stop_server acceptor
	stop_bg
else
	fail "accept loop: the server starts under Atlas"
fi

# ---- asyncio: non-blocking sockets, epoll --------------------------------------------------
P=$(free_port)
if start_server asyncio "$P" -- "$ATLAS" --cert "$RSA_CERT" --key "$RSA_KEY" --ports "$P" --log-level info -- \
	"$PY" "$SERVE" asyncio --port "$P"; then
	body=$(hcurl "$P" /hello 2>&1)
	is_eq "asyncio server: one curl client gets its answer" "$body" "asyncio says hello to /hello"
	if idle_clients idle3 "$P" 20; then
		pass "asyncio server: 20 idle TCP clients connected and held"
	else
		fail "asyncio server: 20 idle TCP clients connected and held"
	fi
	read -r ms body <<<"$(timed_get "$P" /prompt)"
	is_eq "asyncio server: with 20 idle clients, a real client gets its answer" "$body" "asyncio says hello to /prompt"
	is_between "asyncio server: ... promptly (${ms} ms, bound 3000 ms)" "$ms" 0 3000
	good=0
	pids=()
	for i in $(seq 0 49); do
		hcurl "$P" "/c$i" -o "$T/out/a$i" 2>/dev/null &
		pids+=($!)
		BG_PIDS+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	for i in $(seq 0 49); do
		[ "$(cat "$T/out/a$i" 2>/dev/null)" = "asyncio says hello to /c$i" ] && good=$((good + 1))
	done
	is_eq "asyncio server: 50 concurrent clients (20 idle ones held) all get their own answer" "$good" 50
	res=$("$PY" "$CLIENTS" get --port "$P" --ca "$CA" --path /py --tls 1.2 2>&1)
	is_match "asyncio server: python ssl TLS 1.2 client served" "$res" '^status=HTTP/1.0 200'
	check "asyncio server: still running" server_alive asyncio
	stop_server asyncio
else
	fail "asyncio server: starts under Atlas"
fi

finish
