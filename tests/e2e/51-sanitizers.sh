#!/usr/bin/env bash
# 51: real servers under the sanitizer builds of Atlas, zero reports. For each of
# build/asan/libatlas.so (ASan+UBSan) and build/tsan/libatlas.so (TSan), started
# through ./atlas-preload.sh with ATLAS_LIBRARY pointing at it and the sanitizer's
# runtime in LD_PRELOAD: ASan's first (ATLAS_PRELOAD_FIRST: it must be loaded before
# everything), TSan's after Atlas (ATLAS_PRELOAD_AFTER). TSan's
# interceptors of blocking calls (poll, epoll_wait and the like) ignore every
# interceptor, pthread_mutex_lock included, until the call returns: with the runtime
# first, Atlas's hooks of those calls run inside them, the locks they take go
# unseen, and TSan reports races those locks prevent (28-shutdown-race showed a
# dozen). After Atlas, the hooks run before TSan's interceptor, locks seen.
#   - python3 -m http.server (threaded, -p HTTP/1.1), and a second one for the
#     plaintext port;
#   - nginx: sendfile on, tcp_nopush on, epoll, master and 2 workers forked after listen, a TLS
#     listen and a plaintext listen;
#   - a python echo service with two threads on each connection (one reads while
#     the other writes: Atlas's read and write paths on one connection at once),
#     4 MiB through one client, then 8 clients at once.
# The HTTP servers get servers-lib.sh's common check (small.txt and a SV_BIG_MB MiB file by
# sha256, keep-alive, 32 concurrent clients, wrk, plain HTTP refused on the TLS
# port, the plaintext port untouched) and its weak-spot probes (a request larger
# than the first read, pipelining, a dripped handshake beside idle clients),
# then 200 hostile connections, 16 at a time (clients.py churn: full requests,
# TLS aborted mid-request, plain HTTP, connect-and-close, garbage, half a
# ClientHello, reset), a last request, and a graceful stop (python: SIGINT;
# nginx: SIGQUIT, the workers finish and exit). Then the sanitizer must have
# written nothing: no log_path file, no report in the server's stderr.
#
# Leak checking: on for nginx, where LeakSanitizer runs in the master and each
# worker at exit. Off for python (detect_leaks=0): the interpreter never frees
# some of its own memory at exit, and LeakSanitizer reports it even with no Atlas
# at all (a control below shows it). Suppressions cannot single those out:
# LeakSanitizer matches a suppression against every frame of the allocation's
# stack, and every allocation Atlas makes in python has python's frames under
# it, so suppressing python would suppress Atlas too. Atlas's own leaks are
# checked in the unit tests (50: LSan and valgrind) and here under nginx.
#
# Controls first, per sanitizer: a python started exactly like the servers
# makes a deliberate error through the runtime (ASan: a write after free;
# TSan: unlocking an unlocked mutex) and the report must land where the checks
# look; and the server's process must map the sanitizer build of Atlas and the
# runtime.
#
# SAN_ONLY="asan tsan" and SV_ONLY="python nginx duplex" pick (make e2e-sanitizers).
SV_BIG_MB=${SV_BIG_MB:-8}
SV_WRK_SECS=${SV_WRK_SECS:-2}
# Loaded machines start a sanitized python slowly (seconds, with TSan)
START_SECS=${START_SECS:-30}
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/servers-lib.sh"

KINDS=${SAN_ONLY:-asan tsan}
SERVERS=${SV_ONLY:-python nginx duplex}
CHURN=${SAN_CHURN:-200}
for prog in curl wrk /usr/sbin/nginx; do
	command -v "$prog" >/dev/null || {
		fail "$SCENARIO: $prog missing (apt-get install ${prog##*/})"
		exit 1
	}
done
make_certs
sv_www "$T/www"

# A sanitizer's report, in whatever output it lands (UBSan, beside ASan, writes to
# stderr whatever UBSAN_OPTIONS says: see 50-sanitizers-unit.sh).
SAN_MARK='(ERROR|WARNING): (Address|Leak|Thread|UndefinedBehavior)Sanitizer|runtime error: '

# san_setup KIND: the library, its runtime (the one it was linked with) and SAN_ENV
# (the variables the wrapper and the sanitizer read), reports under $T/san-KIND-*.
san_setup() {
	local kind=$1
	SAN_LIB=$ROOT/build/$kind/libatlas.so
	SAN_RT=""
	[ -r "$SAN_LIB" ] && SAN_RT=$(ldd "$SAN_LIB" | awk -v k="lib$kind.so" 'index($1, k) == 1 { print $3 }')
	[ -n "$SAN_RT" ] && [ -r "$SAN_RT" ]
}

# san_env KIND DIR LEAKS: into SAN_ENV, the environment of a process under KIND whose
# reports go to DIR; LEAKS 1 or 0 turns LeakSanitizer on or off (ASan only).
san_env() {
	local kind=$1 d=$2 leaks=$3
	mkdir -p "$d"
	case $kind in
	asan)
		SAN_ENV=(env "ATLAS_LIBRARY=$SAN_LIB" "ATLAS_PRELOAD_FIRST=$SAN_RT")
		SAN_ENV+=("ASAN_OPTIONS=log_path=$d/asan:detect_leaks=$leaks:halt_on_error=1:detect_stack_use_after_return=1"
			"UBSAN_OPTIONS=log_path=$d/ubsan:print_stacktrace=1:halt_on_error=1")
		;;
	tsan)
		# The runtime after Atlas (see the top of this file).
		SAN_ENV=(env "ATLAS_LIBRARY=$SAN_LIB" "ATLAS_PRELOAD_AFTER=$SAN_RT"
			"TSAN_OPTIONS=log_path=$d/tsan:halt_on_error=0:second_deadlock_stack=1")
		;;
	esac
}

# san_reports DIR LOG: every report in DIR's files and in LOG (empty: none).
san_reports() {
	local f
	for f in "$1"/*; do
		[ -f "$f" ] && cat "$f"
	done
	[ -f "$2" ] && grep -E -A 15 -- "$SAN_MARK" "$2"
}

# san_no_reports LABEL DIR LOG
san_no_reports() {
	local r
	r=$(san_reports "$1" "$2")
	if [ -z "$r" ]; then
		pass "$3: no sanitizer report (log_path files and the server's stderr)"
	else
		fail "$3: no sanitizer report (log_path files and the server's stderr)"
		note "$(printf '%s\n' "$r" | head -n 60)"
	fi
}

# san_control KIND: a python run like the servers makes a deliberate error; it is reported.
san_control() {
	local kind=$1 d want r
	d=$T/san-$kind-control
	san_env "$kind" "$d" 0
	case $kind in
	asan) want='ERROR: AddressSanitizer: heap-use-after-free' ;;
	tsan) want='WARNING: ThreadSanitizer: unlock of an unlocked mutex' ;;
	esac
	"${SAN_ENV[@]}" timeout 60 "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports 1 -- "$PY" - "$kind" \
		>"$d.out" 2>&1 <<-'EOF'
			import ctypes, sys
			libc = ctypes.CDLL(None)
			if sys.argv[1] == "asan":
			    libc.malloc.restype = ctypes.c_void_p
			    libc.free.argtypes = [ctypes.c_void_p]
			    p = libc.malloc(16)
			    libc.free(p)
			    ctypes.memset(p, 0, 8)  # ASan's memset: a write after free
			else:
			    m = ctypes.create_string_buffer(64)
			    libc.pthread_mutex_init(m, None)
			    libc.pthread_mutex_unlock(m)  # TSan's pthread_mutex_unlock: not locked
		EOF
	r=$(san_reports "$d" /dev/null)
	if grep -q -- "$want" <<<"$r"; then
		pass "$kind control: a deliberate error in a process started like the servers is reported (/$want/)"
	else
		fail "$kind control: a deliberate error in a process started like the servers is reported (/$want/)"
		note_file "$d.out"
	fi
	if [ "$kind" = asan ]; then
		# Why python runs without LeakSanitizer: it reports python's own memory, no Atlas loaded.
		rm -rf "$d"
		mkdir -p "$d"
		LD_PRELOAD=$SAN_RT ASAN_OPTIONS="log_path=$d/asan:detect_leaks=1" timeout 60 "$PY" -c 'import http.server, ssl'
		r=$(san_reports "$d" /dev/null)
		if grep -q 'ERROR: LeakSanitizer' <<<"$r"; then
			note "python3 alone under LeakSanitizer: $(printf '%s\n' "$r" | grep -m 1 '^SUMMARY') (hence detect_leaks=0 for python)"
		else
			note "python3 alone under LeakSanitizer reports nothing now: detect_leaks=1 could be tried for python"
		fi
	fi
}

# san_maps LABEL PID KIND: the process maps the sanitizer build of Atlas and the runtime.
san_maps() {
	local label=$1 pid=$2 maps
	maps=$(awk '{ print $6 }' /proc/"$pid"/maps 2>/dev/null | sort -u)
	if grep -qxF "$SAN_LIB" <<<"$maps" && grep -qxF "$(readlink -f "$SAN_RT")" <<<"$maps"; then
		pass "$label: the server (pid $pid) runs $3's Atlas (${SAN_LIB#"$ROOT"/}) and runtime ($(basename "$SAN_RT"))"
	else
		fail "$label: the server (pid $pid) runs $3's Atlas (${SAN_LIB#"$ROOT"/}) and runtime ($(basename "$SAN_RT"))"
		printf '%s\n' "$maps" | grep -E 'atlas|san' | sed 's/^/#   /'
	fi
}

# san_hostile LABEL NAME PORT: CHURN mixed connections, 16 at a time, each behaves; then
# the server still serves.
san_hostile() {
	local label=$1 name=$2 port=$3 res
	res=$("$PY" "$CLIENTS" churn --port "$port" --ca "$CA" --path /small.txt --expect "$SV_WWW/small.txt" \
		--count "$CHURN" --workers 16 --timeout 20 2>&1)
	if [ "$(sed -n 's/^failures=//p' <<<"$res")" = 0 ] && [ "$(sed -n 's/^total=//p' <<<"$res")" = "$CHURN" ]; then
		pass "$label: $CHURN hostile and normal connections, 16 at a time, each as its kind should ($(sed -n 's/^kinds=//p' <<<"$res"); $(sed -n 's/^elapsed_s=//p' <<<"$res") s)"
	else
		fail "$label: $CHURN hostile and normal connections, 16 at a time, each as its kind should"
		note "$res"
		note_file "$(server_log "$name")" 8
	fi
	sv_fetch "$label: after them" "$name" 127.0.0.1 "$port" c9.bin
}

# san_stop LABEL NAME SIGNAL: the server exits by itself on SIGNAL (its exit path runs:
# atexit, LeakSanitizer), else it is killed.
san_stop() {
	local label=$1 name=$2 sig=$3 pid
	pid=$(server_pid "$name")
	kill "-$sig" "$pid" 2>/dev/null
	if wait_until 30 bash -c "! kill -0 $pid"; then
		pass "$label: exits on SIG$sig"
	else
		fail "$label: exits on SIG$sig within 30 s"
	fi
	stop_server "$name"
}

san_python() {
	local kind=$1 tls plain label="$1: python3 http.server" d=$T/san-$1-python
	sv_ports tls plain
	san_env "$kind" "$d" 0
	SV_ATLAS=("${SAN_ENV[@]}" "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$tls" --log-level info --)
	if start_server py "$tls" -- "${SV_ATLAS[@]}" "$PY" -m http.server -p HTTP/1.1 --bind 127.0.0.1 -d "$SV_WWW" "$tls" &&
		start_server py-plain "$plain" -- "${SV_ATLAS[@]}" "$PY" -m http.server -p HTTP/1.1 --bind 127.0.0.1 -d "$SV_WWW" "$plain"; then
		san_maps "$label" "$(server_pid py)" "$kind"
		sv_http_check "$label" py 127.0.0.1 "$tls" py-plain "$plain"
		sv_http_probes "$label" py 127.0.0.1 "$tls" "$plain"
		san_hostile "$label" py "$tls"
		sv_log_checks "$label" py "$tls"
		san_stop "$label" py INT
		san_stop "$label (plaintext port)" py-plain INT
		san_no_reports "$d" "$(server_log py)" "$label"
	else
		fail "$label: starts under Atlas"
		stop_server py
		stop_server py-plain
	fi
}

san_nginx() {
	local kind=$1 tls plain label="$1: nginx" d=$T/san-$1-nginx n
	sv_ports tls plain
	san_env "$kind" "$d" 1
	mkdir -p "$d.conf"
	cat >"$d.conf/nginx.conf" <<-EOF
		daemon off;
		master_process on;
		worker_processes 2;
		pid $d.conf/nginx.pid;
		error_log stderr notice;
		events { use epoll; worker_connections 512; }
		http {
			log_format bypid '\$pid \$server_port \$status';
			access_log $d.conf/access.log bypid;
			sendfile on;
			tcp_nopush on;
			keepalive_timeout 30s;
			client_body_temp_path $d.conf/body;
			proxy_temp_path $d.conf/proxy;
			fastcgi_temp_path $d.conf/fastcgi;
			uwsgi_temp_path $d.conf/uwsgi;
			scgi_temp_path $d.conf/scgi;
			default_type application/octet-stream;
			server {
				listen 127.0.0.1:$tls;
				listen 127.0.0.1:$plain;
				root $SV_WWW;
			}
		}
	EOF
	SV_ATLAS=("${SAN_ENV[@]}" "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$tls" --log-level info --)
	if start_server nginx "$tls,$plain" -- "${SV_ATLAS[@]}" /usr/sbin/nginx -p "$d.conf" -c "$d.conf/nginx.conf" -e stderr; then
		if wait_until 20 bash -c "[ \$(pgrep -c -P $(server_pid nginx)) -ge 2 ]"; then
			pass "$label: the master forked 2 workers after listening"
		else
			fail "$label: the master forked 2 workers after listening"
			note_file "$(server_log nginx)"
		fi
		for n in $(server_pid nginx) $(pgrep -P "$(server_pid nginx)"); do
			san_maps "$label" "$n" "$kind"
		done
		sv_http_check "$label" nginx 127.0.0.1 "$tls" nginx "$plain"
		n=$(awk -v p="$tls" '$2 == p { c[$1]++ } END { for (w in c) print "pid " w ": " c[w] }' "$d.conf/access.log")
		if [ "$(printf '%s\n' "$n" | grep -c .)" -ge 2 ]; then
			pass "$label: both workers served TLS requests ($(echo "$n" | tr '\n' ' '))"
		else
			fail "$label: both workers served TLS requests (got: ${n:-none})"
		fi
		sv_http_probes "$label" nginx 127.0.0.1 "$tls" "$plain"
		san_hostile "$label" nginx "$tls"
		sv_log_checks "$label" nginx "$tls"
		# SIGQUIT: graceful; the workers finish and exit (LeakSanitizer runs in each).
		san_stop "$label" nginx QUIT
		is_no_match "$label: every worker exited with status 0" "$(cat "$(server_log nginx)")" \
			'exited (with code [1-9]|on signal)'
		san_no_reports "$d" "$(server_log nginx)" "$label"
	else
		fail "$label: starts under Atlas"
		stop_server nginx
	fi
}

# A plaintext echo service where two threads share each connection: one recv()s
# while the other sendall()s what it got (and a third, the acceptor, goes on
# accepting), so Atlas's read and write paths run on one connection at once.
cat >"$T/duplex.py" <<-'EOF'
	import queue, socket, sys, threading
	def reader(c, q):
	    while True:
	        b = c.recv(65536)
	        q.put(b)
	        if not b:
	            return
	def writer(c, q):
	    while True:
	        b = q.get()
	        if not b:
	            break
	        c.sendall(b)
	    c.shutdown(socket.SHUT_WR)
	def serve(c):
	    q = queue.Queue()
	    t = threading.Thread(target=reader, args=(c, q))
	    t.start()
	    try:
	        writer(c, q)
	    except OSError:
	        pass
	    t.join()
	    c.close()
	s = socket.socket()
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	s.bind(("127.0.0.1", int(sys.argv[1])))
	s.listen(64)
	print("listening", flush=True)
	while True:
	    c, _ = s.accept()
	    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF

san_duplex() {
	local kind=$1 tls label="$1: python duplex echo (a reader and a writer thread per connection)" d=$T/san-$1-duplex
	local i good pids=()
	sv_ports tls
	san_env "$kind" "$d" 0
	SV_ATLAS=("${SAN_ENV[@]}" "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$tls" --log-level info --)
	if ! start_server duplex "$tls" -- "${SV_ATLAS[@]}" "$PY" "$T/duplex.py" "$tls"; then
		fail "$label: starts under Atlas"
		stop_server duplex
		return
	fi
	"$PY" "$SV_CLIENT" echo --port "$tls" --ca "$CA" --size 4194304 --chunk 65536 --timeout 60 >"$T/sv.echo.out" 2>&1
	if [ "$(sv_kv "$T/sv.echo.out" equal)" = 1 ]; then
		pass "$label: 4 MiB written and read back at once come back intact ($(sv_kv "$T/sv.echo.out" elapsed_ms) ms)"
	else
		fail "$label: 4 MiB written and read back at once come back intact"
		note "$(tr '\n' ' ' <"$T/sv.echo.out")"
		note_file "$(server_log duplex)" 6
	fi
	good=0
	for i in $(seq 0 7); do
		"$PY" "$SV_CLIENT" echo --port "$tls" --ca "$CA" --size $((100000 + i * 77777)) --timeout 60 >"$T/sv.d$i" 2>&1 &
		pids+=($!)
		BG_PIDS+=($!)
	done
	for i in "${pids[@]}"; do wait "$i"; done
	for i in $(seq 0 7); do
		[ "$(sv_kv "$T/sv.d$i" equal)" = 1 ] && good=$((good + 1))
	done
	is_eq "$label: 8 concurrent clients all get their own bytes back" "$good" 8 ||
		note "$(cat "$T"/sv.d* | grep -E '^(equal|end|received)=' | sort | uniq -c | head)"
	sv_log_checks "$label" duplex "$tls"
	stop_server duplex
	san_no_reports "$d" "$(server_log duplex)" "$label"
}

# The wrapper's ATLAS_PRELOAD_FIRST and _AFTER: a path it cannot read is one line and exit 2, nothing started.
for var in ATLAS_PRELOAD_FIRST ATLAS_PRELOAD_AFTER; do
	rm -f "$T/started"
	out=$(env "$var=$T/no-such-runtime.so" "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports 1 -- \
		touch "$T/started" 2>&1)
	rc=$?
	if [ "$rc" = 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] && [ ! -e "$T/started" ] &&
		grep -q "^atlas-preload.sh: $var: cannot read '$T/no-such-runtime.so'" <<<"$out"; then
		pass "the wrapper refuses an unreadable $var: one line, exit 2, nothing started"
	else
		fail "the wrapper refuses an unreadable $var: one line, exit 2, nothing started (exit $rc)"
		note "$out"
	fi
done

for kind in $KINDS; do
	t0=$(now_ms)
	if ! san_setup "$kind"; then
		fail "$kind: build/$kind/libatlas.so and its runtime are there (run make sanitize-build)"
		continue
	fi
	san_control "$kind"
	for s in $SERVERS; do
		case $s in
		python) san_python "$kind" ;;
		nginx) san_nginx "$kind" ;;
		duplex) san_duplex "$kind" ;;
		*) fail "$SCENARIO: SV_ONLY: no server '$s' here (python, nginx, duplex)" ;;
		esac
	done
	note "$kind done in $(($(now_ms) - t0)) ms"
done

finish
