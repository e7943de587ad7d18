# tests/e2e/servers-lib.sh: real servers under Atlas, the checks that
# tests/e2e/40-servers.sh and 41-servers.sh (on the host: the userspace path) and
# tests/e2e/servers-ktls.sh (45 and 46: inside User-Mode Linux: the kernel path) share.
# Sourced after lib.sh (inside UML too: the inner script sources both).
# shellcheck shell=bash
#
# The settings, which servers-ktls.sh changes for UML:
#   SV_BIG_MB      size of big.bin in MiB (64)
#   SV_WRK_SECS    how long wrk runs (5)
#   SV_WRK_TIMEOUT wrk's limit for one request, beyond which it counts an error (2s, wrk's own)
#   SV_PATH_RE     what every TLS connection's log line must end with
#   SV_START_SECS  how long a server may take to listen (10)
#   SV_PROMPT_MS   how fast a client must be served while others stall (3000)
#   SV_HANDSHAKE_MS  Atlas's --handshake-timeout for the servers (10000, its default)
#   SV_PORT_BASE   set: ports are counted up from it (UML has its own network
#                  stack); unset: free_port picks them
#
# The common check (sv_http_check), for an HTTP server with a TLS port and a
# plaintext port (the same server, or a second instance under the same shim
# where a server takes one port):
#   - small.txt and big.bin (SV_BIG_MB MiB) with curl, sha256;
#   - keep-alive: curl URL URL URL on one connection (%{num_connects} 1 0 0),
#     the bodies intact, one TLS connection in Atlas's log (busybox httpd has no
#     keep-alive: there "1 1 1", as its plaintext port shows, and 3 connections);
#   - 32 concurrent curl clients, each for its own file, all intact;
#   - wrk -t2 -c32 -dSV_WRK_SECS over https, no script: no "Socket errors" and
#     no "Non-2xx" line;
#   - plain HTTP to the TLS port: a 400 or a close, never the file;
#   - the plaintext port serves plain HTTP (small.txt and big.bin intact) and
#     Atlas logs nothing about it.
# The weak spots (sv_http_probes); each must get the right answer (the plaintext
# port's answer to the same request is shown when one does not):
#   - a request larger than the server's first read (7000 bytes of headers: more
#     than nginx's 1 KiB client_header_buffer_size, under lighttpd's 8 KiB limit),
#     in one TLS record, sent with the handshake and 200 ms after it (the server
#     is back in poll/epoll then, and the whole request is one new event);
#   - three pipelined requests (2.3 KB) in one TLS record, 200 ms after it: three
#     responses (one for busybox httpd, which answers one request per connection);
#   - a handshake whose ClientHello drips in over ~2 s while 10 idle TCP clients
#     are held, and meanwhile a curl client is served promptly: a non-blocking
#     handshake must not stall an event loop.
# Then sv_log_checks: every TLS connection line says SV_PATH_RE, no atlas
# error/fatal/warn line, and the server is still running. Server-specific
# checks (nginx's two workers, socat's echo, python's CGI) are in sv_<server>.

SV_CLIENT=$E2E_DIR/servers-client.py
SV_BIG_MB=${SV_BIG_MB:-64}
SV_WRK_SECS=${SV_WRK_SECS:-5}
SV_PATH_RE=${SV_PATH_RE:-'path userspace \(the kernel has no tls ULP\)$'}
START_SECS=${SV_START_SECS:-$START_SECS} # lib.sh start_server's listen deadline
SV_PROMPT_MS=${SV_PROMPT_MS:-3000}
SV_HANDSHAKE_MS=${SV_HANDSHAKE_MS:-10000}
SV_N_CONC=32

# sv_ports VAR...: a distinct unused port into each VAR.
sv_ports() {
	local v p taken=" "
	for v in "$@"; do
		if [ -n "${SV_PORT_BASE:-}" ]; then
			p=$SV_PORT_BASE
			SV_PORT_BASE=$((SV_PORT_BASE + 1))
		else
			p=$(free_port)
			while [[ "$taken" == *" $p "* ]]; do p=$(free_port); done
		fi
		taken+="$p "
		printf -v "$v" '%s' "$p"
	done
}

# sv_www DIR: the files every server serves (sets SV_WWW, SV_SHA[file]).
declare -A SV_SHA=()
sv_www() {
	local i f
	SV_WWW=$1
	mkdir -p "$SV_WWW/cgi-bin"
	printf 'small file %s\n' "$(openssl rand -hex 20)" >"$SV_WWW/small.txt"
	head -c $((SV_BIG_MB * 1024 * 1024)) /dev/urandom >"$SV_WWW/big.bin"
	for i in $(seq 0 $((SV_N_CONC - 1))); do
		head -c $((1000 + i * 3001)) /dev/urandom >"$SV_WWW/c$i.bin"
	done
	# For python3 -m http.server --cgi (sv_python_cgi).
	cat >"$SV_WWW/cgi-bin/hello.sh" <<-'EOF'
		#!/bin/sh
		printf 'Content-Type: text/plain\r\n\r\nCGI-MARKER %s\n' "$QUERY_STRING"
	EOF
	chmod 755 "$SV_WWW/cgi-bin/hello.sh"
	for f in "$SV_WWW"/*.*; do
		SV_SHA[${f##*/}]=$(sha256_of "$f")
	done
}

# sv_atlas PORTS: the wrapper's command line for TLS on PORTS, into SV_ATLAS.
sv_atlas() {
	SV_ATLAS=("$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$1" --log-level info
		--handshake-timeout "$SV_HANDSHAKE_MS" --)
}

# URLs and curl for ADDR (127.0.0.1 or ::1).
sv_host() { case $1 in *:*) echo "[$1]" ;; *) echo "$1" ;; esac; }

# sv_curl ADDR PORT PATH [CURL ARGS...]: https://localhost:PORT/PATH at ADDR, verified.
sv_curl() {
	local addr=$1 port=$2 path=$3
	shift 3
	curl -sS --max-time "${CURL_MAX_TIME:-30}" --cacert "$CA" \
		--resolve "localhost:$port:$(sv_host "$addr")" "$@" "https://localhost:$port$path"
}

# sv_pcurl ADDR PORT PATH [CURL ARGS...]: plain http://ADDR:PORT/PATH.
sv_pcurl() {
	local addr=$1 port=$2 path=$3
	shift 3
	curl -sS --max-time "${CURL_MAX_TIME:-30}" "$@" "http://$(sv_host "$addr"):$port$path"
}

sv_sha() { [ -f "$1" ] && sha256_of "$1" || echo "no file"; }

# The lines of NAME's log that are about TLS connections on PORT.
sv_conn_lines() { grep -E "^atlas: info: fd [0-9]+ peer .* port $2: TLSv1\.[23] " "$(server_log "$1")"; }

# sv_fetch LABEL NAME ADDR PORT FILE [https|http]: the file arrives intact.
sv_fetch() {
	local label=$1 name=$2 addr=$3 port=$4 f=$5 scheme=${6:-https} t0 ms rc got
	rm -f "$T/sv.got"
	t0=$(now_ms)
	if [ "$scheme" = https ]; then
		sv_curl "$addr" "$port" "/$f" -o "$T/sv.got" 2>"$T/sv.err"
	else
		sv_pcurl "$addr" "$port" "/$f" -o "$T/sv.got" 2>"$T/sv.err"
	fi
	rc=$?
	ms=$(($(now_ms) - t0))
	got=$(sv_sha "$T/sv.got")
	if [ "$rc" = 0 ] && [ "$got" = "${SV_SHA[$f]}" ]; then
		pass "$label: $scheme GET /$f ($(stat -c %s "$SV_WWW/$f") bytes) arrives intact (sha256), $ms ms"
	else
		fail "$label: $scheme GET /$f ($(stat -c %s "$SV_WWW/$f") bytes) arrives intact (sha256)"
		note "curl exit $rc after $ms ms, got $(stat -c %s "$T/sv.got" 2>/dev/null || echo 0) bytes: $(head -c 300 "$T/sv.err")"
		note_file "$(server_log "$name")" 8
	fi
}

# sv_keepalive LABEL NAME ADDR PORT PLAINPORT [WANT]: three requests, one curl,
# one connection (WANT "1 0 0"). A server without keep-alive (busybox httpd) is
# called with WANT "1 1 1": then the plaintext port must show the same, so that
# it is the server's own behaviour, and Atlas must log one connection per request.
sv_keepalive() {
	local label=$1 name=$2 addr=$3 port=$4 pport=$5 want=${6:-1 0 0} before after out base h
	h=$(sv_host "$addr")
	base=$(curl -sS --max-time 60 -w '%{num_connects}\n' -o /dev/null -o /dev/null -o /dev/null \
		"http://$h:$pport/small.txt" "http://$h:$pport/c5.bin" "http://$h:$pport/small.txt" 2>&1)
	before=$(sv_conn_lines "$name" "$port" | wc -l)
	rm -f "$T"/sv.k[123]
	out=$(curl -sS --max-time 60 --cacert "$CA" --resolve "localhost:$port:$h" -w '%{num_connects}\n' \
		-o "$T/sv.k1" -o "$T/sv.k2" -o "$T/sv.k3" \
		"https://localhost:$port/small.txt" "https://localhost:$port/c5.bin" "https://localhost:$port/small.txt" \
		2>"$T/sv.err")
	if [ "$want" = "1 0 0" ]; then
		is_eq "$label: keep-alive: curl URL URL URL opens one connection (num_connects 1 0 0)" "$(echo $out)" "1 0 0" ||
			note "curl: $(head -c 300 "$T/sv.err")" "plaintext port: num_connects $(echo $base)"
	else
		is_eq "$label: no keep-alive in this server: curl URL URL URL opens one connection per request on the TLS port as on the plaintext port (num_connects $want)" \
			"$(echo $out) / $(echo $base)" "$want / $want" || note "curl: $(head -c 300 "$T/sv.err")"
	fi
	is_eq "$label: keep-alive: the three bodies are intact" \
		"$(sv_sha "$T/sv.k1") $(sv_sha "$T/sv.k2") $(sv_sha "$T/sv.k3")" \
		"${SV_SHA[small.txt]} ${SV_SHA[c5.bin]} ${SV_SHA[small.txt]}"
	want=$(echo $want | tr ' ' '+')
	want=$((want))
	wait_until 5 bash -c "[ \$(grep -cE 'port $port: TLSv1\\.[23] ' '$(server_log "$name")') -ge $((before + want)) ]"
	after=$(sv_conn_lines "$name" "$port" | wc -l)
	is_eq "$label: keep-alive: Atlas logged $want TLS connection(s) for the three requests" "$((after - before))" "$want"
}

# sv_concurrent LABEL NAME ADDR PORT: SV_N_CONC curl clients at once, each its own file.
sv_concurrent() {
	local label=$1 name=$2 addr=$3 port=$4 i good=0 t0 pids=() bad=()
	mkdir -p "$T/sv.conc"
	rm -f "$T"/sv.conc/*
	t0=$(now_ms)
	for i in $(seq 0 $((SV_N_CONC - 1))); do
		sv_curl "$addr" "$port" "/c$i.bin" -o "$T/sv.conc/$i" 2>"$T/sv.conc/$i.err" &
		pids+=($!)
		BG_PIDS+=($!)
	done
	for i in "${pids[@]}"; do wait "$i"; done
	for i in $(seq 0 $((SV_N_CONC - 1))); do
		if cmp -s "$T/sv.conc/$i" "$SV_WWW/c$i.bin"; then
			good=$((good + 1))
		else
			bad+=("c$i: $(head -c 200 "$T/sv.conc/$i.err" 2>/dev/null)")
		fi
	done
	is_eq "$label: $SV_N_CONC concurrent curl clients all get their own file intact ($(($(now_ms) - t0)) ms)" \
		"$good" "$SV_N_CONC" || {
		note "${bad[@]:0:5}"
		note_file "$(server_log "$name")" 8
	}
}

# sv_wrk LABEL NAME URL: wrk -t2 -c32 over https, no Lua script, zero errors.
sv_wrk() {
	local label=$1 name=$2 url=$3 out reqs rps
	out=$(timeout $((SV_WRK_SECS + 60)) wrk -t2 -c32 -d"${SV_WRK_SECS}s" \
		--timeout "${SV_WRK_TIMEOUT:-2s}" "$url" 2>&1)
	reqs=$(printf '%s\n' "$out" | sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p')
	rps=$(printf '%s\n' "$out" | sed -n 's/^Requests\/sec: *//p')
	if [ -n "$reqs" ] && [ "$reqs" -gt 0 ] && ! grep -qE 'Socket errors|Non-2xx' <<<"$out"; then
		pass "$label: wrk -t2 -c32 -d${SV_WRK_SECS}s $url: $reqs requests ($rps/s), no socket errors, no non-2xx"
	else
		fail "$label: wrk -t2 -c32 -d${SV_WRK_SECS}s $url: errors (or no requests)"
		printf '%s\n' "$out" | sed 's/^/#   /'
		note_file "$(server_log "$name")" 8
	fi
}

# sv_plain_to_tls LABEL NAME ADDR PORT: plain HTTP to the TLS port: a 400 or a close, never the file.
sv_plain_to_tls() {
	local label=$1 name=$2 addr=$3 port=$4 code rc
	rm -f "$T/sv.p2t"
	code=$(sv_pcurl "$addr" "$port" /small.txt -o "$T/sv.p2t" -w '%{http_code}' 2>"$T/sv.err")
	rc=$?
	if grep -qF "$(cat "$SV_WWW/small.txt")" "$T/sv.p2t" 2>/dev/null; then
		fail "$label: plain HTTP to the TLS port got the file in plaintext"
	elif [ "$code" = 400 ] || [ "$rc" = 52 ] || [ "$rc" = 56 ]; then
		pass "$label: plain HTTP to the TLS port is refused (HTTP $code, curl exit $rc: $(head -c 60 "$T/sv.p2t" 2>/dev/null | tr -d '\r\n'))"
	else
		fail "$label: plain HTTP to the TLS port is refused (400 or close)"
		note "HTTP code '$code', curl exit $rc: $(head -c 300 "$T/sv.err")"
	fi
}

# sv_plain_port LABEL NAME ADDR PLAINPORT: plain HTTP served, Atlas not involved.
sv_plain_port() {
	local label=$1 name=$2 addr=$3 port=$4
	sv_fetch "$label: plaintext port $port" "$name" "$addr" "$port" small.txt http
	sv_fetch "$label: plaintext port $port" "$name" "$addr" "$port" big.bin http
	is_no_match "$label: plaintext port $port: Atlas logged nothing about it" \
		"$(cat "$(server_log "$name")")" "^atlas: .* port ${port}[:;]"
}

# sv_http_check LABEL NAME ADDR TLSPORT PLAINNAME PLAINPORT [KEEPALIVE]: the common
# check. PLAINNAME is the server (NAME, or a second instance) that owns PLAINPORT.
# KEEPALIVE: sv_keepalive's WANT.
sv_http_check() {
	local label=$1 name=$2 addr=$3 port=$4 pname=$5 pport=$6 keepalive=${7:-1 0 0}
	sv_fetch "$label" "$name" "$addr" "$port" small.txt
	sv_fetch "$label" "$name" "$addr" "$port" big.bin
	sv_keepalive "$label" "$name" "$addr" "$port" "$pport" "$keepalive"
	sv_concurrent "$label" "$name" "$addr" "$port"
	sv_wrk "$label" "$name" "https://$(sv_host "$addr"):$port/small.txt"
	sv_plain_to_tls "$label" "$name" "$addr" "$port"
	sv_plain_port "$label" "$pname" "$addr" "$pport"
}

sv_kv() { sed -n "s/^$2=//p" "$1" | tail -n 1; }

# sv_http_probes LABEL NAME ADDR TLSPORT PLAINPORT [PIPELINED]: the weak spots.
# Each TLS answer must be the right one (a 200 with the file; PIPELINED responses,
# 3 unless the server answers one request per connection); the plaintext port's
# answer to the same request is shown when they fail.
sv_http_probes() {
	local label=$1 name=$2 addr=$3 port=$4 pport=$5 npipe=${6:-3} want got k ms i
	# A request larger than the server's first read, in one TLS record: sent at
	# once after the handshake, and 200 ms later (the server waits in its event
	# loop by then, and the whole request is one new event).
	for ms in 0 200; do
		"$PY" "$SV_CLIENT" bigreq --plain --addr "$addr" --port "$pport" --path /small.txt --pad 7000 \
			--delay-ms "$ms" >"$T/sv.big.plain" 2>&1
		"$PY" "$SV_CLIENT" bigreq --addr "$addr" --port "$port" --ca "$CA" --path /small.txt --pad 7000 \
			--delay-ms "$ms" >"$T/sv.big.tls" 2>&1
		got="$(sv_kv "$T/sv.big.tls" status) $(sv_kv "$T/sv.big.tls" sha256)"
		if [[ "$got" == HTTP/1.?_200_* ]] && [ "${got##* }" = "${SV_SHA[small.txt]}" ]; then
			pass "$label: a 7 KB request in one TLS record, $ms ms after the handshake, is answered (${got%% *}, the file, $(sv_kv "$T/sv.big.tls" elapsed_ms) ms)"
		else
			fail "$label: a 7 KB request in one TLS record, $ms ms after the handshake, is answered with the file"
			note "TLS port:       $(tr '\n' ' ' <"$T/sv.big.tls")" "plaintext port: $(tr '\n' ' ' <"$T/sv.big.plain")"
			note_file "$(server_log "$name")" 6
		fi
	done
	# Three pipelined requests (600 bytes of headers each) in one TLS record, 200 ms after the handshake.
	k=/small.txt,/c7.bin,/small.txt
	"$PY" "$SV_CLIENT" pipeline --plain --addr "$addr" --port "$pport" --paths "$k" --pad 600 \
		--delay-ms 200 >"$T/sv.pipe.plain" 2>&1
	"$PY" "$SV_CLIENT" pipeline --addr "$addr" --port "$port" --ca "$CA" --paths "$k" --pad 600 \
		--delay-ms 200 >"$T/sv.pipe.tls" 2>&1
	want="responses=$npipe"
	for i in $(seq 0 $((npipe - 1))); do
		case $i in 1) k=c7.bin ;; *) k=small.txt ;; esac
		want+=" response$i=$(stat -c %s "$SV_WWW/$k") ${SV_SHA[$k]}"
	done
	got="responses=$(sv_kv "$T/sv.pipe.tls" responses)"
	for i in $(seq 0 $((npipe - 1))); do
		got+=" response$i=$(sv_kv "$T/sv.pipe.tls" "response$i" | sed -n 's/^HTTP\/1\.[01]_200_.* len=\([0-9]*\) sha256=\(.*\)/\1 \2/p')"
	done
	if [ "$got" = "$want" ]; then
		pass "$label: 3 pipelined requests (2.3 KB) in one TLS record: $npipe response(s), 200, intact ($(sv_kv "$T/sv.pipe.tls" elapsed_ms) ms)"
	else
		fail "$label: 3 pipelined requests (2.3 KB) in one TLS record get $npipe intact 200 response(s)"
		note "TLS port:       $(tr '\n' ' ' <"$T/sv.pipe.tls")" "plaintext port: $(tr '\n' ' ' <"$T/sv.pipe.plain")"
		note_file "$(server_log "$name")" 6
	fi
	# A slow (dripped) handshake and 10 idle clients while a real client is served.
	bg_start sv-idle -- "$PY" "$CLIENTS" idle --addr "$addr" --port "$port" --count 10 --hold 60
	bg_start sv-drip -- "$PY" "$CLIENTS" drip --addr "$addr" --port "$port" --ca "$CA" --path /small.txt \
		--drip 8 --drip-ms 30 --timeout 30
	wait_until 10 grep -q '^connected=10$' "$T/sv-idle.out"
	k=$(now_ms)
	got=$(sv_curl "$addr" "$port" /small.txt 2>&1)
	ms=$(($(now_ms) - k))
	if [ "$got" = "$(cat "$SV_WWW/small.txt")" ] && [ "$ms" -le "$SV_PROMPT_MS" ] && grep -q '^connected=10$' "$T/sv-idle.out"; then
		pass "$label: with 10 idle clients and a handshake dripping in, a client is served in $ms ms"
	else
		fail "$label: with 10 idle clients and a handshake dripping in, a client is served within $SV_PROMPT_MS ms"
		note "after $ms ms got: $(printf '%s' "$got" | head -c 200)" "idle: $(tr '\n' ' ' <"$T/sv-idle.out")"
	fi
	wait_until 40 grep -q '^body_len=' "$T/sv-drip.out"
	if [ "$(sv_kv "$T/sv-drip.out" body_sha256)" = "${SV_SHA[small.txt]}" ]; then
		pass "$label: the dripped handshake completes and its GET is answered intact"
	else
		fail "$label: the dripped handshake completes and its GET is answered intact"
		note "$(tr '\n' ' ' <"$T/sv-drip.out")"
		note_file "$(server_log "$name")" 6
	fi
	stop_bg
}

# sv_log_checks LABEL NAME TLSPORT [ALLOWED]: Atlas's lines for NAME (warnings
# matching the ERE ALLOWED excepted), and NAME still runs.
sv_log_checks() {
	local label=$1 name=$2 port=$3 allowed=${4:-^$} lines n bad
	lines=$(sv_conn_lines "$name" "$port")
	n=$(printf '%s\n' "$lines" | grep -c .)
	bad=$(printf '%s\n' "$lines" | grep -Ev -- "$SV_PATH_RE")
	if [ "$n" -gt 0 ] && [ -z "$bad" ]; then
		pass "$label: all $n TLS connections are logged with /$SV_PATH_RE/"
	else
		fail "$label: all TLS connections are logged with /$SV_PATH_RE/ ($n lines)"
		printf '%s\n' "$bad" | head -n 5 | sed 's/^/#   /'
	fi
	is_no_match "$label: Atlas logged no error, warning or fatal line" \
		"$(grep -Ev -- "$allowed" "$(server_log "$name")")" '^atlas: (error|warn|fatal)'
	note "$label: slowest handshake $(sed -nE 's/.*, handshake ([0-9.]+) ms, path .*/\1/p' <<<"$lines" | sort -g | tail -n 1) ms (the limit: $SV_HANDSHAKE_MS)"
	n=$(grep -c 'connection broken' "$(server_log "$name")")
	[ "$n" = 0 ] || note "$label: $n 'connection broken' lines, e.g.:" \
		"$(grep -m 3 'connection broken' "$(server_log "$name")")"
	check "$label: the server is still running" server_alive "$name"
}

# ---- the servers ---------------------------------------------------------------

# 1. python3 -m http.server (threaded, HTTP/1.1 for keep-alive) on ADDR; the
# plaintext port is a second http.server under the same shim.
sv_python() {
	local addr=${1:-127.0.0.1} tls plain label="python3 http.server"
	[ "$addr" = 127.0.0.1 ] || label="python3 http.server --bind $addr"
	sv_ports tls plain
	sv_atlas "$tls"
	if start_server py "$tls" -- "${SV_ATLAS[@]}" "$PY" -m http.server -p HTTP/1.1 --bind "$addr" -d "$SV_WWW" "$tls" &&
		start_server py-plain "$plain" -- "${SV_ATLAS[@]}" "$PY" -m http.server -p HTTP/1.1 --bind "$addr" -d "$SV_WWW" "$plain"; then
		sv_http_check "$label" py "$addr" "$tls" py-plain "$plain"
		sv_http_probes "$label" py "$addr" "$tls" "$plain"
		sv_log_checks "$label" py "$tls"
	else
		fail "$label: starts under Atlas"
	fi
	stop_server py
	stop_server py-plain
}

# 2. nginx: sendfile on, tcp_nopush on (TCP_CORK around headers and file), epoll, master and 2 workers (forked after listen), a
# TLS listen and a plaintext listen. The access log (by worker pid) shows that
# both workers served TLS requests.
sv_nginx() {
	local tls plain label=nginx d=$T/nginx n
	sv_ports tls plain
	mkdir -p "$d"
	cat >"$d/nginx.conf" <<-EOF
		daemon off;
		master_process on;
		worker_processes 2;
		pid $d/nginx.pid;
		error_log stderr notice;
		events { use epoll; worker_connections 512; }
		http {
			log_format bypid '\$pid \$server_port \$status';
			access_log $d/access.log bypid;
			sendfile on;
			tcp_nopush on;
			keepalive_timeout 30s;
			client_body_temp_path $d/body;
			proxy_temp_path $d/proxy;
			fastcgi_temp_path $d/fastcgi;
			uwsgi_temp_path $d/uwsgi;
			scgi_temp_path $d/scgi;
			default_type application/octet-stream;
			server {
				listen 127.0.0.1:$tls;
				listen 127.0.0.1:$plain;
				root $SV_WWW;
			}
		}
	EOF
	sv_atlas "$tls"
	if start_server nginx "$tls,$plain" -- "${SV_ATLAS[@]}" /usr/sbin/nginx -p "$d" -c "$d/nginx.conf" -e stderr; then
		if wait_until 10 bash -c "[ \$(pgrep -c -P $(server_pid nginx)) -ge 2 ]"; then
			pass "$label: the master forked 2 workers after listening"
		else
			fail "$label: the master forked 2 workers after listening"
			note_file "$(server_log nginx)"
		fi
		sv_http_check "$label" nginx 127.0.0.1 "$tls" nginx "$plain"
		# Corked (tcp_nopush): headers and body gathered into one record, then split into
		# 512-byte ones. Not in UML: kTLS writes only 16 KiB records, so OpenSSL keeps such
		# a connection in userspace, and every connection there must be on the kernel path.
		[ -n "${SV_PORT_BASE:-}" ] ||
			small_records_ok "$label (tcp_nopush)" nginx "$tls" /big.bin "$(sv_sha "$SV_WWW/big.bin")"
		# Both workers (forked after listen, each with the settings the master read) served TLS.
		n=$(awk -v p="$tls" '$2 == p { c[$1]++ } END { for (w in c) print "pid " w ": " c[w] }' "$d/access.log")
		if [ "$(printf '%s\n' "$n" | grep -c .)" -ge 2 ]; then
			pass "$label: both workers served TLS requests ($(echo $n))"
		else
			fail "$label: both workers served TLS requests (got: $(echo ${n:-none}))"
		fi
		sv_http_probes "$label" nginx 127.0.0.1 "$tls" "$plain"
		sv_log_checks "$label" nginx "$tls"
	else
		fail "$label: starts under Atlas"
	fi
	stop_server nginx
}

# 3. lighttpd: server.port is the TLS port, a $SERVER["socket"] block the plaintext one.
sv_lighttpd() {
	local tls plain label=lighttpd d=$T/lighttpd
	sv_ports tls plain
	mkdir -p "$d"
	cat >"$d/lighttpd.conf" <<-EOF
		server.document-root = "$SV_WWW"
		server.bind = "127.0.0.1"
		server.port = $tls
		server.errorlog = "$d/error.log"
		mimetype.assign = ("" => "application/octet-stream")
		\$SERVER["socket"] == "127.0.0.1:$plain" {}
	EOF
	sv_atlas "$tls"
	if start_server lighttpd "$tls,$plain" -- "${SV_ATLAS[@]}" /usr/sbin/lighttpd -D -f "$d/lighttpd.conf"; then
		sv_http_check "$label" lighttpd 127.0.0.1 "$tls" lighttpd "$plain"
		sv_http_probes "$label" lighttpd 127.0.0.1 "$tls" "$plain"
		sv_log_checks "$label" lighttpd "$tls"
		note_file "$d/error.log" 5
	else
		fail "$label: starts under Atlas"
		note_file "$d/error.log"
	fi
	stop_server lighttpd
}

# 4. node's http module (tests/e2e/progs/files-server.js), both ports in one process.
sv_node() {
	local tls plain label="node http"
	sv_ports tls plain
	sv_atlas "$tls"
	if start_server node "$tls,$plain" -- "${SV_ATLAS[@]}" /usr/bin/node "$E2E_DIR/progs/files-server.js" \
		"$SV_WWW" "$tls" "$plain"; then
		sv_http_check "$label" node 127.0.0.1 "$tls" node "$plain"
		sv_http_probes "$label" node 127.0.0.1 "$tls" "$plain"
		sv_log_checks "$label" node "$tls"
	else
		fail "$label: starts under Atlas"
	fi
	stop_server node
}

# 5. busybox httpd: fork per connection, one port per process (a second instance
# for the plaintext port). It has no keep-alive (one request per connection, so
# no pipelining either): the keep-alive check still runs and fails if curl cannot
# reuse the connection, and the pipelining probe compares with the plaintext port.
sv_busybox() {
	local tls plain label="busybox httpd"
	sv_ports tls plain
	sv_atlas "$tls"
	if start_server bb "$tls" -- "${SV_ATLAS[@]}" busybox httpd -f -vv -p "127.0.0.1:$tls" -h "$SV_WWW" &&
		start_server bb-plain "$plain" -- "${SV_ATLAS[@]}" busybox httpd -f -p "127.0.0.1:$plain" -h "$SV_WWW"; then
		sv_http_check "$label" bb 127.0.0.1 "$tls" bb-plain "$plain" "1 1 1"
		sv_http_probes "$label" bb 127.0.0.1 "$tls" "$plain" 1
		sv_log_checks "$label" bb "$tls"
	else
		fail "$label: starts under Atlas"
	fi
	stop_server bb
	stop_server bb-plain
}

# 6. socat as a generic TCP service: an echo (EXEC:/bin/cat), fork per
# connection, on the TLS port, and a second one on a plaintext port. Checked with
# openssl s_client (a random payload, echoed back), a large payload written 64 KiB
# at a time (16 KiB TLS records, larger than socat's 8 KiB reads) and 32 clients
# at once.
sv_socat() {
	local tls plain label="socat echo" i good pids n
	sv_ports tls plain
	sv_atlas "$tls"
	if start_server socat "$tls" -- "${SV_ATLAS[@]}" socat "TCP-LISTEN:$tls,bind=127.0.0.1,reuseaddr,fork" EXEC:/bin/cat &&
		start_server socat-plain "$plain" -- "${SV_ATLAS[@]}" socat "TCP-LISTEN:$plain,bind=127.0.0.1,reuseaddr,fork" EXEC:/bin/cat; then
		# openssl s_client -quiet: the payload, and stdin held open until the echo is back.
		head -c 3000 /dev/urandom >"$T/sv.payload"
		rm -f "$T/sv.echo"
		{
			cat "$T/sv.payload"
			wait_until 20 bash -c "[ \$(stat -c %s '$T/sv.echo' 2>/dev/null || echo 0) -ge 3000 ]"
		} | timeout 30 openssl s_client -quiet -no_ign_eof -connect "127.0.0.1:$tls" -servername localhost \
			-CAfile "$CA" -verify_return_error >"$T/sv.echo" 2>"$T/sv.err"
		if cmp -s "$T/sv.payload" "$T/sv.echo"; then
			pass "$label: openssl s_client sends 3000 random bytes and gets them back (verified chain)"
		else
			fail "$label: openssl s_client sends 3000 random bytes and gets them back"
			note "got $(stat -c %s "$T/sv.echo" 2>/dev/null || echo 0) bytes; s_client: $(tail -n 3 "$T/sv.err")"
			note_file "$(server_log socat)" 6
		fi
		for n in 16384 1048576 $((SV_BIG_MB * 1024 * 1024)); do
			"$PY" "$SV_CLIENT" echo --port "$tls" --ca "$CA" --size "$n" --chunk 65536 --timeout 60 >"$T/sv.echo.out" 2>&1
			if [ "$(sv_kv "$T/sv.echo.out" equal)" = 1 ]; then
				pass "$label: $n random bytes in 64 KiB writes come back intact ($(sv_kv "$T/sv.echo.out" elapsed_ms) ms)"
			else
				fail "$label: $n random bytes in 64 KiB writes come back intact"
				note "$(tr '\n' ' ' <"$T/sv.echo.out")"
				note_file "$(server_log socat)" 6
			fi
		done
		good=0
		pids=()
		for i in $(seq 0 $((SV_N_CONC - 1))); do
			"$PY" "$SV_CLIENT" echo --port "$tls" --ca "$CA" --size $((1000 + i * 3001)) --timeout 60 >"$T/sv.e$i" 2>&1 &
			pids+=($!)
			BG_PIDS+=($!)
		done
		for i in "${pids[@]}"; do wait "$i"; done
		for i in $(seq 0 $((SV_N_CONC - 1))); do
			[ "$(sv_kv "$T/sv.e$i" equal)" = 1 ] && good=$((good + 1))
		done
		if ! is_eq "$label: $SV_N_CONC concurrent clients all get their own payload back" "$good" "$SV_N_CONC"; then
			for i in $(seq 0 $((SV_N_CONC - 1))); do
				[ "$(sv_kv "$T/sv.e$i" equal)" = 1 ] || note "client $i: $(tr '\n' ' ' <"$T/sv.e$i")"
			done
			note "Atlas's lines other than established connections:" \
				"$(grep -a '^atlas:' "$(server_log socat)" | grep -Ev ": TLSv1\.[23] " | tail -n 10)"
		fi
		# Plain TCP to the TLS port: never echoed.
		"$PY" "$CLIENTS" raw --port "$tls" --text 'hello plaintext\n' --timeout 5 >"$T/sv.raw" 2>&1
		if [ "$(sv_kv "$T/sv.raw" received)" = 0 ]; then
			pass "$label: plaintext bytes to the TLS port are not echoed (closed: $(sv_kv "$T/sv.raw" end))"
		else
			fail "$label: plaintext bytes to the TLS port are not echoed"
			note "$(tr '\n' ' ' <"$T/sv.raw")"
		fi
		"$PY" "$SV_CLIENT" echo --plain --port "$plain" --size 1048576 --timeout 30 >"$T/sv.echo.out" 2>&1
		if [ "$(sv_kv "$T/sv.echo.out" equal)" = 1 ]; then
			pass "$label: plaintext port $plain: 1 MiB echoed intact in plain TCP"
		else
			fail "$label: plaintext port $plain: 1 MiB echoed intact in plain TCP"
			note "$(tr '\n' ' ' <"$T/sv.echo.out")"
		fi
		is_no_match "$label: plaintext port $plain: Atlas logged nothing about it" \
			"$(cat "$(server_log socat-plain)")" "^atlas: .* port ${plain}[:;]"
		sv_log_checks "$label" socat "$tls"
	else
		fail "$label: starts under Atlas"
	fi
	stop_server socat
	stop_server socat-plain
}

# python3 -m http.server --cgi: the CGI script gets the connection on stdout by
# fork, dup2 and exec. WANT is "refused" (the userspace path: TLS state cannot
# follow exec: a clear log line, and the client gets an error, never the script's
# output in plaintext) or "works" (the kernel path: the socket follows exec).
# Atlas's line (warn or error) that a TLS fd of the CGI script's exec was dropped.
SV_CGI_EXEC_RE='^atlas: (warn|error): fd [0-9]+: .*(hello\.sh.*cannot follow exec|cannot follow exec.*hello\.sh)'
sv_python_cgi() {
	local want=$1 tls label="python3 http.server --cgi" code rc body
	sv_ports tls
	sv_atlas "$tls"
	if ! start_server cgi "$tls" -- "${SV_ATLAS[@]}" "$PY" -m http.server --cgi --bind 127.0.0.1 -d "$SV_WWW" "$tls"; then
		fail "$label: starts under Atlas"
		return
	fi
	rm -f "$T/sv.cgi"
	code=$(sv_curl 127.0.0.1 "$tls" '/cgi-bin/hello.sh?q42' -o "$T/sv.cgi" -w '%{http_code}' 2>"$T/sv.err")
	rc=$?
	body=$(cat "$T/sv.cgi" 2>/dev/null)
	note "$label: curl exit $rc, HTTP $code, body '$(printf '%s' "$body" | head -c 100)'; $(head -c 200 "$T/sv.err")"
	if [ "$want" = works ]; then
		if [ "$rc" = 0 ] && [ "$code" = 200 ] && [ "$body" = "CGI-MARKER q42" ]; then
			pass "$label: the CGI script's output reaches the client through kernel TLS"
		else
			fail "$label: the CGI script's output reaches the client through kernel TLS (curl exit $rc, HTTP $code)"
			note_file "$(server_log cgi)" 10
		fi
		is_no_match "$label: Atlas does not refuse the exec" "$(cat "$(server_log cgi)")" 'cannot follow exec'
	else
		if wait_log cgi "$SV_CGI_EXEC_RE" 10; then
			pass "$label: Atlas logs that the TLS connection cannot follow exec of the CGI script"
		else
			fail "$label: Atlas logs that the TLS connection cannot follow exec of the CGI script"
			note_file "$(server_log cgi)" 10
		fi
		if printf '%s' "$body" | grep -q CGI-MARKER || grep -q CGI-MARKER "$T/sv.err"; then
			fail "$label: the CGI script's output reached the client"
		else
			pass "$label: the CGI script's output never reaches the client (no plaintext: curl read only TLS records)"
		fi
		if [ "$rc" != 0 ] || [ "${code:-000}" -ge 400 ] || [ "$code" = 000 ]; then
			pass "$label: the client gets an error (curl exit $rc, HTTP $code)"
		else
			fail "$label: the client gets an error, not a successful response (got curl exit $rc, HTTP $code, a ${#body}-byte body)"
			note_file "$(server_log cgi)" 10
		fi
	fi
	sv_fetch "$label: after the CGI request" cgi 127.0.0.1 "$tls" small.txt
	if [ "$want" = works ]; then
		sv_log_checks "$label" cgi "$tls"
	else
		sv_log_checks "$label" cgi "$tls" "$SV_CGI_EXEC_RE"
	fi
	stop_server cgi
}
