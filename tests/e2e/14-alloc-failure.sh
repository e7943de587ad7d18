#!/usr/bin/env bash
# 14: allocation failure inside Atlas. tests/e2e/progs/failalloc.c, preloaded
# before the library, makes malloc, calloc and realloc fail (ENOMEM) when they
# are called from inside build/libatlas.so (Atlas and its own OpenSSL), every
# Nth such call, while a switch file exists. Under python's threaded
# http.server and under nginx (epoll, 2 workers), many HTTPS GETs (a small file,
# and one in ten a 1 MiB one) run while allocations fail, and echoes through
# tests/e2e/progs/evsrv.c (epoll, 100 bytes read per wake-up):
#   - every connection either works fully (the right bytes) or fails cleanly
#     (an alert, a reset, a close, a body cut short by a reset): never
#     plaintext, never a wrong body, never a silence longer than the handshake
#     timeout (tests/e2e/hostile.py faults);
#   - the process never dies (the same pids serve throughout), the log has a
#     line for the failed connections ("malloc failure", "out of memory");
#   - once the switch file is gone, every connection works again, and the fd
#     count is back to its baseline.
# The allocations made when the TLS context is built (at listen) are not
# failed here: a failure there refuses the TLS ports with one error line, as a
# bad certificate does.
. "$(dirname "$0")/lib.sh"

HOSTILE=$E2E_DIR/hostile.py
FA=$T/failalloc.so
cc -O1 -g -std=c11 -Wall -Wextra -Werror -shared -fPIC -o "$FA" "$E2E_DIR/progs/failalloc.c" || {
	fail "tests/e2e/progs/failalloc.c builds"
	finish
}
make_certs
mkdir -p "$T/www"
echo "alloc failure $(openssl rand -hex 8)" >"$T/www/index.html"
head -c $((1024 * 1024)) /dev/urandom >"$T/www/big.bin"
WANT=$(cat "$T/www/index.html")
SWITCH=$T/failing-now

# under_failalloc NAME PORTS -- CMD...: CMD with failalloc.so, then Atlas, preloaded (by hand:
# the wrapper puts Atlas first), failing every Nth allocation while $SWITCH exists (N in it).
under_failalloc() {
	local name=$1 ports=$2
	shift 3
	start_server "$name" "$ports" -- env LD_PRELOAD="$FA $LIBATLAS" FAILALLOC_LIB="$LIBATLAS" \
		FAILALLOC_SWITCH="$SWITCH" FAILALLOC_STATS="$T/$name.stats" \
		ATLAS_PORTS="${ports%%,*}" ATLAS_CERT="$EC_CERT" ATLAS_KEY="$EC_KEY" ATLAS_LOG_LEVEL=info \
		ATLAS_HANDSHAKE_TIMEOUT_MS=3000 "$@"
}

procs() {
	case $1 in
	py | evsrv) server_pid "$1" ;;
	nginx) pgrep -P "$(server_pid nginx)" | sort -n ;;
	esac
}
fds_of() {
	local s=0 p
	for p in $(procs "$1"); do s=$((s + $(fd_count "$p"))); done
	echo "$s"
}
fds_back() { [ "$(fds_of "$1")" -le "$2" ]; }
stats() { head -n 1 "$T/$1.stats" | tr -d '\0' | tr -s ' ' ' '; }
failed_allocs() { stats "$1" | sed -n 's/.*failed=\([0-9]*\).*/\1/p'; }
# faults NAME PORT COUNT: RES. GETs, or for the echo server (evsrv) 5000 bytes echoed.
faults() {
	local what=(--dir "$T/www" --path /index.html --big /big.bin --big-every 10)
	[ "$1" = evsrv ] && what=(--echo 5000)
	RES=$("$PY" "$HOSTILE" faults --port "$2" --ca "$CA" "${what[@]}" --count "$3" --workers 8 \
		--deadline 6 2>&1)
}
field() { sed -n "s/^$1=//p" <<<"$RES" | head -n 1; }
# fail_lines LOG PORT: Atlas's lines for connections refused or broken on PORT (python may
# have written half a line of its own before one: not anchored).
fail_lines() {
	grep -a -oE "atlas: [a-z]+: fd [0-9]+ (peer [^ ]+ )?port $2: (refused|connection broken|connection refused)" "$1" |
		wc -l
}
fail_lines_ge() { [ "$(fail_lines "$1" "$2")" -ge "$3" ]; }

# run NAME PORT: the phases, against a server started under failalloc.
run() {
	local name=$1 port=$2 fd0 pids0 f0 l0 log every body
	log=$(server_log "$name")
	faults "$name" "$port" 40
	is_eq "$name: before any failure, 40 GETs all work ($(field outcomes))" "$(field ok)" 40
	sleep 0.5
	fd0=$(fds_of "$name")
	pids0=$(procs "$name" | tr '\n' ' ')

	# Every 997th allocation inside Atlas (about one connection in two fails, each at another
	# point of its life), then every 7th (hardly a connection gets through).
	for every in 997 7; do
		f0=$(failed_allocs "$name")
		l0=$(fail_lines "$log" "$port")
		echo "$every" >"$SWITCH"
		faults "$name" "$port" 300
		rm -f "$SWITCH"
		sleep 0.1 # failalloc.so looks at the switch every 20 ms
		note "$name, every ${every}th: failalloc: $(stats "$name")"
		if [ "$(field bad)" = 0 ]; then
			pass "$name, every ${every}th allocation inside Atlas failing: 300 GETs each worked or failed cleanly ($(field outcomes))"
		else
			fail "$name, every ${every}th allocation inside Atlas failing: 300 GETs each worked or failed cleanly"
			note "$RES"
		fi
		is_between "$name, every ${every}th: allocations did fail meanwhile ($(($(failed_allocs "$name") - f0)))" \
			"$(($(failed_allocs "$name") - f0))" 1 100000000
		is_between "$name, every ${every}th: connections failed because of them ($((300 - $(field ok))) of 300)" \
			"$((300 - $(field ok)))" 1 300
		wait_until 5 fail_lines_ge "$log" "$port" $((l0 + 300 - $(field ok)))
		is_between "$name, every ${every}th: a refused or broken line in the log for each failed connection ($(($(fail_lines "$log" "$port") - l0)) for $((300 - $(field ok))))" \
			"$(($(fail_lines "$log" "$port") - l0))" $((300 - $(field ok))) 100000
		is_eq "$name, every ${every}th: the same processes serve (nothing crashed)" \
			"$(procs "$name" | tr '\n' ' ')" "$pids0"
	done
	is_match "$name: the log says why connections failed (OpenSSL's malloc failure or Atlas's out of memory)" \
		"$(grep -a '^atlas:' "$log")" "port $port: (refused|connection broken|connection refused).*(malloc failure|out of memory)"
	is_no_match "$name: no atlas fatal line (a crash inside Atlas)" "$(grep -a '^atlas:' "$log")" '^atlas: fatal'

	# The schedule is over: everything works again.
	faults "$name" "$port" 100
	is_eq "$name: once allocations succeed again, 100 GETs all work ($(field outcomes))" "$(field ok)" 100
	if [ "$name" != evsrv ]; then
		body=$(hcurl "$port" /index.html 2>&1)
		is_eq "$name: ... curl too" "$body" "$WANT"
	fi
	if wait_until 15 fds_back "$name" "$fd0"; then
		pass "$name: the fd count is back to its baseline ($(fds_of "$name") <= $fd0)"
	else
		fail "$name: the fd count is back to its baseline ($fd0): now $(fds_of "$name")"
	fi
	is_eq "$name: the same processes still serve" "$(procs "$name" | tr '\n' ' ')" "$pids0"
}


# The first connections of a process: OpenSSL builds its tables of algorithms the first
# time a handshake needs them, and a failure there broke every later connection (tls.c
# now builds them when the context is made). A fresh server, failing one allocation in
# 300 at random (fixed draws) from its very first connection. A random draw meets the
# few allocations that did it only sometimes: tests/unit/test_tls_alloc.c tries them
# one by one.
P=$(free_port)
if under_failalloc first "$P" -- "$PY" "$SERVE" files --port "$P" --dir "$T/www"; then
	echo r300 >"$SWITCH"
	faults first "$P" 60
	rm -f "$SWITCH"
	sleep 0.1
	note "first connections: $RES" "failalloc: $(stats first)"
	is_eq "a fresh server whose first 60 connections meet failing allocations: each worked or failed cleanly ($(field outcomes))" \
		"$(field bad)" 0
	is_between "... allocations did fail ($(failed_allocs first))" "$(failed_allocs first)" 1 100000000
	faults first "$P" 40
	is_eq "... and once they succeed again, 40 GETs all work ($(field outcomes))" "$(field ok)" 40
	stop_server first
else
	fail "python's http.server starts under failalloc.so and Atlas"
fi

P=$(free_port)
if under_failalloc py "$P" -- "$PY" "$SERVE" files --port "$P" --dir "$T/www"; then
	run py "$P"
	stop_server py
else
	fail "python's http.server starts under failalloc.so and Atlas"
fi

P=$(free_port)
d=$T/nginx
mkdir -p "$d"
cat >"$d/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 2;
pid $d/nginx.pid;
error_log stderr warn;
events { use epoll; worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	client_body_temp_path $d/body;
	proxy_temp_path $d/proxy;
	fastcgi_temp_path $d/fastcgi;
	uwsgi_temp_path $d/uwsgi;
	scgi_temp_path $d/scgi;
	default_type application/octet-stream;
	server { listen 127.0.0.1:$P; root $T/www; }
}
EOF
if [ ! -x /usr/sbin/nginx ]; then
	fail "nginx is missing (make check installs it)"
elif under_failalloc nginx "$P" -- /usr/sbin/nginx -p "$d" -c "$d/nginx.conf" -e stderr &&
	wait_until 10 bash -c "[ \$(pgrep -c -P $(server_pid nginx)) -ge 2 ]"; then
	run nginx "$P"
	stop_server nginx
else
	fail "nginx starts under failalloc.so and Atlas"
fi

# An event loop that reads 100 bytes per wake-up (tests/e2e/progs/evsrv.c, epoll,
# level-triggered): the rest of each record waits decrypted in OpenSSL, and readiness
# comes from Atlas's lists (ready.c), which must not lose a connection to a failed
# allocation (the host would wait for ever).
if cc -O1 -g -Wall -o "$T/evsrv" "$E2E_DIR/progs/evsrv.c"; then
	P=$(free_port)
	if under_failalloc evsrv "$P" -- "$T/evsrv" "$P" epoll-lt; then
		run evsrv "$P"
		stop_server evsrv
	else
		fail "evsrv starts under failalloc.so and Atlas"
	fi
else
	fail "tests/e2e/progs/evsrv.c builds"
fi

finish
