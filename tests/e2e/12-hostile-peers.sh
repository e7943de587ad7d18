#!/usr/bin/env bash
# 12: hostile peers, against python's threaded http.server (serve.py files) and
# against nginx (epoll, master and 2 workers), each under Atlas with
# --handshake-timeout 2000. What 06 (plain HTTP, 0xff garbage), 07 (1000 mixed
# connections) and 08 (idle and half-hello clients, python) already show is not
# repeated; here (tests/e2e/hostile.py):
#   - malformed ClientHellos (no cipher in common, bad versions, bad lengths,
#     garbage and duplicate extensions, a short key share, 30 fuzzed ones) and
#     truncated ones (a record header announcing more than is sent, then FIN);
#     for nginx also held open (nginx's own client_header_timeout closes it:
#     Atlas times out only a connection the host calls into) and an idle client;
#   - random bytes, 1 byte to 70000, some behind a TLS record header;
#   - disconnects mid-handshake (after the ClientHello, after the server
#     flight), mid-request (half a request) and mid-download of a 64 MiB file,
#     each by FIN and by RST;
#   - a flood of 2000 full handshakes, counted in Atlas's info log, then 1000 more
#     (RSS must not grow with them);
#   - 200 TLS connections held idle (handshake done, no request) while other
#     clients are served, then released.
# After each group: a normal request still works and its bytes on the wire are
# TLS only (clients.py wire), the server's fd count comes back to its baseline,
# RSS stays within a stated bound, no atlas error or fatal line, and the same
# processes still serve (an nginx worker that crashed would be replaced).
. "$(dirname "$0")/lib.sh"

HOSTILE=$E2E_DIR/hostile.py
# RSS bound over the baseline (taken after a warm-up of 200 handshakes), for each
# server's serving processes together. The largest legitimate peak is 200 open
# sessions at once: OpenSSL's SSL object with its buffers is about 40 KiB while a
# handshake runs (SSL_MODE_RELEASE_BUFFERS frees the buffers of an idle one), so
# ~8 MiB that glibc may keep in its arenas afterwards; python adds 200 handler
# threads' stacks touched. 24 MiB is three times that; a leak of 1 KiB per
# connection is caught by the second flood check: 1000 more handshakes may add at
# most 2 MiB (2 KiB each; the first flood has warmed the allocator up).
RSS_BOUND_KB=$((24 * 1024))
FLOOD_LEAK_KB=$((2 * 1024))
FLOOD=${HOSTILE_FLOOD:-2000}
FLOOD2=$((FLOOD / 2))

make_certs
mkdir -p "$T/www"
echo "hostile peers $(openssl rand -hex 8)" >"$T/www/index.html"
head -c $((64 * 1024 * 1024)) /dev/urandom >"$T/www/big.bin"
WANT=$(cat "$T/www/index.html")

# ---- the servers ----------------------------------------------------------------------------------
PY_P=$(free_port)
start_py() {
	start_server py "$PY_P" -- "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$PY_P" \
		--handshake-timeout 2000 --log-level info -- "$PY" "$SERVE" files --port "$PY_P" --dir "$T/www"
}

# nginx: the main TLS port ($NG_P, nginx's default timeouts) and a second TLS port whose
# client_header_timeout is 3 s ($NG_Q), for the clients that stall.
NG_P=$(free_port)
NG_Q=$(free_port)
while [ "$NG_Q" = "$NG_P" ]; do NG_Q=$(free_port); done
start_nginx() {
	local d=$T/nginx
	mkdir -p "$d"
	cat >"$d/nginx.conf" <<-EOF
		daemon off;
		master_process on;
		worker_processes 2;
		pid $d/nginx.pid;
		error_log stderr warn;
		events { use epoll; worker_connections 1024; }
		http {
			access_log off;
			sendfile on;
			keepalive_timeout 30s;
			client_body_temp_path $d/body;
			proxy_temp_path $d/proxy;
			fastcgi_temp_path $d/fastcgi;
			uwsgi_temp_path $d/uwsgi;
			scgi_temp_path $d/scgi;
			default_type application/octet-stream;
			server { listen 127.0.0.1:$NG_P; root $T/www; }
			server { listen 127.0.0.1:$NG_Q; root $T/www; client_header_timeout 3s; }
		}
	EOF
	start_server nginx "$NG_P,$NG_Q" -- "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$NG_P,$NG_Q" \
		--handshake-timeout 2000 --log-level info -- /usr/sbin/nginx -p "$d" -c "$d/nginx.conf" -e stderr &&
		wait_until 10 bash -c "[ \$(pgrep -c -P $(server_pid nginx)) -ge 2 ]"
}

# procs NAME: the processes that serve connections (python itself; nginx's workers).
procs() {
	case $1 in
	py) server_pid py ;;
	nginx) pgrep -P "$(server_pid nginx)" | sort -n ;;
	*) return 1 ;;
	esac
}
sum_of() { # sum_of FN NAME: FN over NAME's serving processes, added up
	local s=0 p v
	for p in $(procs "$2"); do
		v=$("$1" "$p") || v=0
		s=$((s + ${v:-0}))
	done
	echo "$s"
}
port_of() { case $1 in py) echo "$PY_P" ;; nginx) echo "$NG_P" ;; esac; }
hostile() { "$PY" "$HOSTILE" "$1" --port "${PORT:-$(port_of "$2")}" --ca "$CA" "${@:3}" 2>&1; }
field() { sed -n "s/^$1=//p" <<<"$RES" | head -n 1; }
open_lines() { grep -cE "^atlas: info: fd [0-9]+ peer [^ ]+ port $2: TLSv1\.[23] " "$(server_log "$1")"; }

declare -A FD0=() RSS0=() PROCS0=()
fds_back() { [ "$(sum_of fd_count "$1")" -le "${FD0[$1]}" ]; }

# baseline NAME: warm up (allocator arenas, OpenSSL's lazily built state), then measure.
baseline() {
	local name=$1
	RES=$(hostile flood "$name" --count 200 --workers 8 --path /index.html)
	wait_until 10 fds_back_to_settle "$name"
	sleep 0.5
	FD0[$name]=$(sum_of fd_count "$name")
	RSS0[$name]=$(sum_of rss_kb "$name")
	PROCS0[$name]=$(procs "$name" | tr '\n' ' ')
	note "$name: baseline ${FD0[$name]} fds, RSS ${RSS0[$name]} kB in pids ${PROCS0[$name]}"
}
# Settled: the fd count stopped moving for a moment.
fds_back_to_settle() {
	local a b
	a=$(sum_of fd_count "$1")
	sleep 0.3
	b=$(sum_of fd_count "$1")
	[ "$a" = "$b" ]
}

# after NAME GROUP: the checks every group ends with.
after() {
	local name=$1 group=$2 port body w rss fds t0
	port=$(port_of "$name")
	t0=$(now_ms)
	if wait_until 20 fds_back "$name"; then
		pass "$name, $group: the fd count is back to its baseline ($(sum_of fd_count "$name") <= ${FD0[$name]}, $(($(now_ms) - t0)) ms)"
	else
		fds=$(sum_of fd_count "$name")
		fail "$name, $group: the fd count is back to its baseline (${FD0[$name]}): now $fds"
		for p in $(procs "$name"); do
			find /proc/"$p"/fd -mindepth 1 -printf '%l\n' | sed 's/[0-9]\+/N/g' | sort | uniq -c |
				sort -rn | head -n 4 | sed "s/^/#   pid $p: /"
		done
	fi
	body=$(hcurl "$port" /index.html 2>&1)
	is_eq "$name, $group: a normal request is still served" "$body" "$WANT"
	w=$("$PY" "$CLIENTS" wire --port "$port" --ca "$CA" --path /index.html 2>&1)
	is_match "$name, $group: and only TLS records come back on the wire (no plaintext)" \
		"$(grep -E '^(plaintext_http_on_wire|status)=' <<<"$w" | tr '\n' ' ')" \
		'^plaintext_http_on_wire=no status=HTTP/1\.[01] 200'
	rss=$(sum_of rss_kb "$name")
	is_between "$name, $group: RSS within $((RSS_BOUND_KB / 1024)) MiB of the baseline (${RSS0[$name]} -> $rss kB)" \
		"$((rss - RSS0[$name]))" -1000000 "$RSS_BOUND_KB"
	is_no_match "$name, $group: no atlas error or fatal line in the log" \
		"$(grep -a '^atlas:' "$(server_log "$name")")" '^atlas: (error|fatal)'
	is_eq "$name, $group: the same processes serve (nothing crashed or was replaced)" \
		"$(procs "$name" | tr '\n' ' ')" "${PROCS0[$name]}"
}

# expect_clean DESC: RES has bad=0 (else its bad= lines as diagnostics).
expect_clean() {
	if [ "$(field bad)" = 0 ]; then
		pass "$1"
	else
		fail "$1"
		note "$RES"
	fi
}

# idle_closed NAME DESC ARGS...: a client holding a connection (clients.py idle) is closed by
# the server within 1-8 s (the timeout that applies: Atlas's 2 s, nginx's 3 s).
idle_closed() {
	local name=$1 desc=$2 t
	shift 2
	RES=$("$PY" "$CLIENTS" idle --port "$NG_Q" --count 3 --hold 12 "$@" 2>&1)
	t=$(sed -n 's/^closed_after_ms=//p' <<<"$RES" | sort -n | tail -n 1)
	if [ "$(field closed)" = 3 ] && is_between_quiet "$t" 1000 8000; then
		pass "$name: $desc: 3 clients closed by the server (last after $t ms)"
	else
		fail "$name: $desc: 3 clients closed by the server within 1-8 s"
		note "$RES"
	fi
}
is_between_quiet() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v != "" && v + 0 >= lo && v + 0 <= hi) }'; }

# ---- the groups --------------------------------------------------------------------------------------
run_groups() {
	local name=$1 port lines0 lines1 rss1 rss2 hello
	port=$(port_of "$name")

	RES=$(hostile hellos "$name" --idle 0.5)
	expect_clean "$name: $(field variants) malformed and truncated ClientHellos ($(field kinds)): TLS records or a close back, never plaintext, each refused where it must be"
	if [ "$name" = nginx ]; then
		hello=$("$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import hostile, random
h = hostile.client_hello(random.Random(1)); print(h[:len(h) // 2].hex())' "$E2E_DIR")
		idle_closed nginx "a record header announcing more than is sent, held open" --hex "$hello"
		idle_closed nginx "nothing sent at all" --text ''
	fi
	after "$name" "malformed ClientHellos"

	RES=$(hostile random "$name" --idle 0.5)
	expect_clean "$name: $(field sent) runs of random bytes (1 to 70000, some behind a TLS header): never plaintext, never left open"
	after "$name" "random bytes"

	RES=$(hostile midhs "$name" --count 40)
	expect_clean "$name: 40 clients leave mid-handshake (after the ClientHello / after the server flight, FIN / RST)"
	RES=$(hostile midreq "$name" --count 40 --path /index.html)
	expect_clean "$name: 40 clients leave mid-request (TLS up, half a request, FIN / RST)"
	after "$name" "mid-handshake and mid-request disconnects"

	RES=$(hostile middl "$name" --count 6 --path /big.bin --read-mb 4)
	expect_clean "$name: 6 clients leave a 64 MiB download after 4 MiB (FIN / RST; read $(field read_mb) MiB)"
	after "$name" "mid-download disconnects"

	lines0=$(open_lines "$name" "$port")
	RES=$(hostile flood "$name" --count "$FLOOD" --workers 8 --path /index.html)
	expect_clean "$name: a flood of $FLOOD full handshakes, 8 at a time: all served ($(field ok) ok in $(field elapsed_s) s, $(field per_s)/s)"
	wait_until 10 bash -c "[ \$(grep -cE '^atlas: info: fd [0-9]+ peer [^ ]+ port $port: TLSv1\.[23] ' $(server_log "$name")) -ge $((lines0 + FLOOD)) ]"
	lines1=$(open_lines "$name" "$port")
	is_eq "$name: Atlas's info log has one open-session line per handshake of the flood" "$((lines1 - lines0))" "$FLOOD"
	after "$name" "a flood of $FLOOD handshakes"
	rss1=$(sum_of rss_kb "$name")
	RES=$(hostile flood "$name" --count "$FLOOD2" --workers 8 --path /index.html)
	expect_clean "$name: a second flood of $FLOOD2: all served ($(field elapsed_s) s)"
	wait_until 20 fds_back "$name"
	rss2=$(sum_of rss_kb "$name")
	is_between "$name: the second flood grows RSS by less than $((FLOOD_LEAK_KB / 1024)) MiB ($rss1 -> $rss2 kB): no per-handshake leak" \
		"$((rss2 - rss1))" -1000000 "$FLOOD_LEAK_KB"

	bg_start "hold-$name" -- "$PY" "$HOSTILE" hold --port "$port" --ca "$CA" --count 200 --hold 60
	if wait_until 60 grep -q '^held=' "$T/hold-$name.out"; then
		is_match "$name: 200 TLS connections opened and held idle (handshake done, no request)" \
			"$(cat "$T/hold-$name.out")" '^held=200$'
		is_between "$name: ... the server holds them (fds $(sum_of fd_count "$name") vs baseline ${FD0[$name]})" \
			"$(($(sum_of fd_count "$name") - FD0[$name]))" 200 100000
		t0=$(now_ms)
		RES=$(hostile flood "$name" --count 100 --workers 4 --path /index.html)
		expect_clean "$name: while they are held, 100 other clients are served ($(($(now_ms) - t0)) ms)"
		t0=$(now_ms)
		body=$(hcurl "$port" /index.html 2>&1)
		is_eq "$name: ... and one more at once ($(($(now_ms) - t0)) ms)" "$body" "$WANT"
		kill -USR1 "$(pgrep -P "$BG_PID" -f hostile.py || echo "$BG_PID")" 2>/dev/null
		wait_until 20 grep -q '^released=' "$T/hold-$name.out"
		is_match "$name: the 200 are released by the client, none closed by the server meanwhile" \
			"$(cat "$T/hold-$name.out")" '^closed_by_server_meanwhile=0$'
	else
		fail "$name: 200 TLS connections opened and held idle"
		note_file "$T/hold-$name.out"
	fi
	stop_bg
	after "$name" "200 idle TLS connections held, then released"
}

# ---- run ---------------------------------------------------------------------------------------------
if start_py; then
	check "python: the measured process (pid $(server_pid py)) is the python interpreter itself" \
		bash -c "readlink /proc/$(server_pid py)/exe | grep -q python3"
	baseline py
	run_groups py
	stop_server py
else
	fail "python's threaded http.server starts under Atlas"
fi

if [ ! -x /usr/sbin/nginx ]; then
	fail "nginx is missing (make check installs it)"
elif start_nginx; then
	baseline nginx
	run_groups nginx
	stop_server nginx
else
	fail "nginx (2 workers) starts under Atlas"
fi

finish
