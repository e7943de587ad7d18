# tests/e2e/idle-lib.sh: memory per idle connection, measured on a real nginx.
# shellcheck shell=bash disable=SC2034,SC2004 # SERVER_* are lib.sh's arrays; the IDLE_* results are for the caller
# Sourced after lib.sh (on the host, or inside User-Mode Linux by an inner script);
# used by tests/e2e/25-idle-memory.sh, 34-ktls-idle-memory.sh and tests/bench/idle-rss.sh.
#
#   idle_build DIR           builds tests/e2e/progs/idle_clients.c into DIR (sets IDLE_CLIENTS)
#   idle_measure LABEL MODE N [IDLE_CLIENTS ARGS...]
#       MODE plain:     nginx alone, plaintext connections (what nginx itself costs)
#            atlas:     nginx, plain listener, with Atlas (LD_PRELOAD, ATLAS_* and ATLAS_ENV)
#            nginx-ssl: nginx's own TLS (listen ... ssl), the reference
#       Starts nginx (one worker, epoll) on a free port, warms it up with IDLE_WARM
#       (20) connections opened and closed, then reads the group's memory (before), opens
#       N idle connections with idle_clients (one keep-alive request each), reads it
#       again (with), closes them, waits for the worker's fds to come back, reads it
#       a third time (after). Memory is the sum of Rss over nginx's processes
#       (/proc/PID/smaps_rollup), in KiB. Sets IDLE_BEFORE IDLE_WITH IDLE_AFTER
#       (KiB), IDLE_FD_BEFORE IDLE_FD_WITH IDLE_FD_AFTER (the worker's fds) and
#       IDLE_ERR (empty on success, else why). With IDLE_ROUNDS=2, a second wave of N
#       follows: IDLE_WITH2 is the memory with it, IDLE_AFTER2 once it has closed too,
#       IDLE_FD_AFTER2 the worker's fds then.
#       Prints nothing; the caller checks.
#   idle_per_conn A_BEFORE A_WITH P_BEFORE P_WITH N
#       bytes per connection that A costs beyond P: ((A_with - A_before) -
#       (P_with - P_before)) * 1024 / N, rounded
#
# Needs CA, EC_CERT, EC_KEY (make_certs) and IDLE_WWW (a directory with index.html).
# IDLE_HOOK: a function called with the worker's pid while the N connections are held.
# ATLAS_ENV (array) adds NAME=VALUE settings in mode atlas (ATLAS_KTLS=require ...).
# IDLE_PORT: the first port to use (then the next ones); unset: free_port.

IDLE_CLIENTS=
ATLAS_ENV=()
# A FIFO nobody writes: `read -t` on it sleeps without a process.
IDLE_PAUSE=$T/idle-pause
[ -p "$IDLE_PAUSE" ] || mkfifo "$IDLE_PAUSE"

idle_build() {
	mkdir -p "$1"
	IDLE_CLIENTS=$1/idle_clients
	cc -O2 -std=c11 -Wall -Wextra -Werror -o "$IDLE_CLIENTS" "$E2E_DIR/progs/idle_clients.c" \
		-lssl -lcrypto >"$1/cc-idle_clients.log" 2>&1
}

# The sum of Rss (KiB) over the processes of group PGID, timeout excluded. Not Pss: the
# share of a library page falls when the client maps the same library, which is no
# change in what the server costs.
idle_rss_kb() {
	local pid sum=0 v
	for pid in $(pgrep -g "$1"); do
		[ "$(cat /proc/"$pid"/comm 2>/dev/null)" = timeout ] && continue
		v=$(awk '/^Rss:/ { print $2 }' /proc/"$pid"/smaps_rollup 2>/dev/null) || continue
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# idle_start NAME PIDFILE CMD...: nginx (daemon off) as start_server starts a server (its
# own process group under timeout, output in $T/NAME.log, stopped by stop_server), but
# ready when its pid file names a master that has forked its worker (IDLE_WORKER): no
# python, no scan of every fd of every process, which inside UML take seconds.
idle_start() {
	local name=$1 pidfile=$2 i master
	shift 2
	rm -f "$pidfile"
	SERVER_LOG[$name]=$T/$name.log
	timeout -k 3 "$SERVER_LIFETIME" "$@" >"${SERVER_LOG[$name]}" 2>&1 </dev/null &
	SERVER_PGID[$name]=$!
	IDLE_WORKER=
	for ((i = 0; i < START_SECS * 5; i++)); do
		master=
		read -r master 2>/dev/null <"$pidfile"
		if [ -n "$master" ]; then
			IDLE_WORKER=$(pgrep -P "$master" | head -n 1)
			[ -n "$IDLE_WORKER" ] && return 0
		fi
		kill -0 "${SERVER_PGID[$name]}" 2>/dev/null || return 1
		read -r -t 0.2 <>"$IDLE_PAUSE" 2>/dev/null
	done
	return 1
}

# idle_clients_run NAME N ARGS...: N idle connections in the background; waits for "ready".
idle_clients_run() {
	local name=$1 n=$2
	shift 2
	bg_start "$name" -- "$IDLE_CLIENTS" -n "$n" --signal "$@"
	IDLE_CPID=$BG_PID
	idle_wait_line "$T/$name.out" "ready $n" "${IDLE_READY_SECS:-120}" && return 0
	IDLE_ERR="idle_clients did not get $n connections up: $(tail -n 2 "$T/$name.out" | tr '\n' ' ')"
	return 1
}

# Polling without a process per poll: inside UML every fork is slow and takes the one
# CPU from the server and the clients being measured.
# idle_wait_line FILE LINE SECONDS: until FILE's first line is LINE.
idle_wait_line() {
	local i line
	for ((i = 0; i < $3 * 5; i++)); do
		line=
		read -r line 2>/dev/null <"$1"
		[ "$line" = "$2" ] && return 0
		read -r -t 0.2 <>"$IDLE_PAUSE" 2>/dev/null
	done
	return 1
}

# idle_wait_fds PID MAX SECONDS: until PID has at most MAX fds.
idle_wait_fds() {
	local i fds
	for ((i = 0; i < $3 * 5; i++)); do
		fds=(/proc/"$1"/fd/*)
		[ "${#fds[@]}" -le "$2" ] && return 0
		read -r -t 0.2 <>"$IDLE_PAUSE" 2>/dev/null
	done
	return 1
}

# idle_clients_close NAME: TERM the client (it sends close_notify, closes) and wait for it.
idle_clients_close() {
	local pid i
	# The client itself, not timeout above it: timeout would follow its TERM with a KILL
	# 3 s later, and closing 1000 TLS connections inside UML takes longer.
	pid=$(pgrep -P "$IDLE_CPID" | head -n 1)
	kill -TERM "${pid:-$IDLE_CPID}" 2>/dev/null
	for ((i = 0; i < 300; i++)); do
		grep -q '^closed ' "$T/$1.out" && break
		read -r -t 0.2 <>"$IDLE_PAUSE" 2>/dev/null
	done
	wait "$IDLE_CPID" 2>/dev/null
	grep -q '^closed ' "$T/$1.out" || IDLE_ERR="idle_clients did not close: $(tail -n 2 "$T/$1.out" | tr '\n' ' ')"
}

idle_measure() {
	local label=$1 mode=$2 n=$3 d=$T/idle-$1 port listen pgid worker cargs=() fd0
	shift 3
	IDLE_ERR='' IDLE_BEFORE='' IDLE_WITH='' IDLE_AFTER='' IDLE_FD_BEFORE='' IDLE_FD_WITH='' IDLE_FD_AFTER=''
	if [ -n "${IDLE_PORT:-}" ]; then # inside UML: its own network, and python is slow
		port=$IDLE_PORT
		IDLE_PORT=$((IDLE_PORT + 1))
	else
		port=$(free_port)
	fi
	mkdir -p "$d"
	listen="listen 127.0.0.1:$port;"
	cargs=(--port "$port" --ca "$CA" --request /index.html "$@")
	case $mode in
	plain) cargs=(--port "$port" --plain --request /index.html) ;;
	nginx-ssl) listen="listen 127.0.0.1:$port ssl; ssl_certificate $EC_CERT; ssl_certificate_key $EC_KEY; ssl_protocols TLSv1.2 TLSv1.3;" ;;
	esac
	cat >"$d/nginx.conf" <<-EOF
		daemon off;
		master_process on;
		worker_processes 1;
		worker_rlimit_nofile $((n + 256));
		pid $d/nginx.pid;
		error_log stderr warn;
		events { use epoll; worker_connections $((n + 128)); }
		http {
			access_log off;
			sendfile on;
			keepalive_timeout 600s;
			keepalive_requests 100000;
			client_header_timeout 600s;
			client_body_temp_path $d/body;
			proxy_temp_path $d/proxy;
			fastcgi_temp_path $d/fastcgi;
			uwsgi_temp_path $d/uwsgi;
			scgi_temp_path $d/scgi;
			server {
				$listen
				root $IDLE_WWW;
			}
		}
	EOF
	# Atlas sizes its fd table from RLIMIT_NOFILE when it loads: room for N first.
	ulimit -n "$((n + 512))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	if [ "$mode" = atlas ]; then
		idle_start "idle-$label" "$d/nginx.pid" env LD_PRELOAD="$LIBATLAS" ATLAS_PORTS="$port" \
			ATLAS_CERT="$EC_CERT" ATLAS_KEY="$EC_KEY" "${ATLAS_ENV[@]}" \
			/usr/sbin/nginx -p "$d" -c "$d/nginx.conf" -e stderr
	else
		idle_start "idle-$label" "$d/nginx.pid" /usr/sbin/nginx -p "$d" -c "$d/nginx.conf" -e stderr
	fi || {
		IDLE_ERR="nginx did not start with a worker ($mode): $(tail -n 3 "${SERVER_LOG[idle-$label]}" | tr '\n' ' ')"
		stop_server "idle-$label"
		return 1
	}
	worker=$IDLE_WORKER
	idle_lap start
	pgid=${SERVER_PGID[idle-$label]}
	fd0=$(fd_count "$worker")
	# Warm-up: what the first connections cost once (OpenSSL's tables, nginx's pools) is
	# not a per-connection cost.
	if ! idle_clients_run "idle-$label-warm" "${IDLE_WARM:-20}" "${cargs[@]}"; then
		stop_server "idle-$label"
		return 1
	fi
	idle_clients_close "idle-$label-warm"
	idle_wait_fds "$worker" "$fd0" 10
	sleep 0.5
	idle_lap warm
	IDLE_FD_BEFORE=$(fd_count "$worker")
	IDLE_BEFORE=$(idle_rss_kb "$pgid")
	if ! idle_clients_run "idle-$label" "$n" "${cargs[@]}"; then
		stop_server "idle-$label"
		return 1
	fi
	idle_lap open
	sleep 1 # the last responses are written; nginx has put every connection to keep-alive
	IDLE_FD_WITH=$(fd_count "$worker")
	IDLE_WITH=$(idle_rss_kb "$pgid")
	[ -z "${IDLE_HOOK:-}" ] || "$IDLE_HOOK" "$worker" # while the N connections are held
	idle_clients_close "idle-$label"
	idle_wait_fds "$worker" "$IDLE_FD_BEFORE" 20
	sleep 0.5
	idle_lap close
	IDLE_FD_AFTER=$(fd_count "$worker")
	IDLE_AFTER=$(idle_rss_kb "$pgid")
	IDLE_WITH2='' IDLE_AFTER2='' IDLE_FD_AFTER2=''
	if [ "${IDLE_ROUNDS:-1}" = 2 ]; then
		# A second wave: what the first freed must serve it (nothing kept per connection).
		if idle_clients_run "idle-$label-2" "$n" "${cargs[@]}"; then
			sleep 1
			IDLE_WITH2=$(idle_rss_kb "$pgid")
			idle_clients_close "idle-$label-2"
			idle_wait_fds "$worker" "$IDLE_FD_BEFORE" 20
			sleep 0.5
			IDLE_AFTER2=$(idle_rss_kb "$pgid")
			IDLE_FD_AFTER2=$(fd_count "$worker")
		fi
	fi
	if ! server_alive "idle-$label"; then
		IDLE_ERR="nginx died ($mode)"
	fi
	cp "${SERVER_LOG[idle-$label]}" "$d/server.log" 2>/dev/null
	stop_server "idle-$label"
	[ -z "$IDLE_ERR" ]
}

idle_lap() { [ -z "${IDLE_VERBOSE:-}" ] || echo "# $(date +%s.%N | cut -c1-14) $1"; }

idle_per_conn() {
	awk -v ab="$1" -v aw="$2" -v pb="$3" -v pw="$4" -v n="$5" \
		'BEGIN { printf "%d\n", (((aw - ab) - (pw - pb)) * 1024) / n + 0.5 }'
}
