#!/usr/bin/env bash
# 09: what Atlas logs. At --log-level info: one line per TLS listener and one per
# connection, naming the peer (address and the client's own port), the port, the
# TLS version, the suite, the handshake time and "path userspace (why)"; on
# stderr, never stdout. At the default level (warn) and at error a working
# server logs nothing. At no level does a line carry key material.
. "$(dirname "$0")/lib.sh"

make_certs
mkdir -p "$T/www"
echo "log test $(openssl rand -hex 8)" >"$T/www/index.html"
WANT=$(cat "$T/www/index.html")
if grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null; then
	REASON='kernel offload is not implemented in this build'
else
	REASON='the kernel has no tls ULP'
fi
note "this kernel: path userspace ($REASON) expected"

# start NAME LEVEL [EXTRA WRAPPER ARGS]: a server whose stdout and stderr are kept apart.
start() {
	local name=$1 level=$2
	shift 2
	PORT=$(free_port)
	start_server "$name" "$PORT" -- bash -c 'exec "$@" 2>"'"$T/$name.err"'"' bash \
		"$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$PORT" ${level:+--log-level "$level"} "$@" -- \
		"$PY" -m http.server -p HTTP/1.1 -b 127.0.0.1 -d "$T/www" "$PORT"
}
ERR() { cat "$T/$1.err"; }
err_has() { grep -Eq -- "$2" "$T/$1.err"; }
wait_err() { wait_until 5 err_has "$1" "$2"; }
atlas_lines() { grep -c 'atlas:' "$T/$1.err"; }
conn_lines() { grep -cE "^atlas: info: fd [0-9]+ peer " "$T/$1.err"; }
wait_conn_lines() { wait_until 5 bash -c "[ \$(grep -cE '^atlas: info: fd [0-9]+ peer ' '$T/$1.err') -ge $2 ]"; }

# ---- info ---------------------------------------------------------------------------------------
if ! start info info; then
	fail "the server starts at --log-level info"
	finish
fi
P=$PORT
is_eq "info: exactly one listener line" \
	"$(grep -cE "^atlas: info: fd [0-9]+: listening with TLS on port $P; ATLAS_KTLS=auto; path userspace \($REASON\)\$" "$T/info.err")" 1

LP=$(free_port)
body=$(hcurl "$P" /index.html --local-port "$LP" --tlsv1.3 --tls13-ciphers TLS_AES_256_GCM_SHA384 2>&1)
is_eq "info: a TLS 1.3 client (curl, from local port $LP) is served" "$body" "$WANT"
wait_conn_lines info 1
line=$(grep -E "peer 127\.0\.0\.1:$LP " "$T/info.err")
is_match "info: its line names peer 127.0.0.1:$LP, port $P, TLSv1.3, TLS_AES_256_GCM_SHA384, the handshake time and the path" \
	"$line" "^atlas: info: fd [0-9]+ peer 127\.0\.0\.1:$LP port $P: TLSv1\.3 TLS_AES_256_GCM_SHA384, handshake [0-9]+\.[0-9] ms, path userspace \($REASON\)\$"
ms=$(sed -nE 's/.*, handshake ([0-9.]+) ms,.*/\1/p' <<<"$line")
is_between "info: the handshake time is plausible (${ms} ms)" "$ms" 0.01 5000

LP=$(free_port)
body=$(hcurl "$P" /index.html --local-port "$LP" --tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-CHACHA20-POLY1305 2>&1)
is_eq "info: a TLS 1.2 ChaCha20 client is served" "$body" "$WANT"
wait_conn_lines info 2
is_match "info: its line says TLSv1.2 ECDHE-ECDSA-CHACHA20-POLY1305, peer port $LP" \
	"$(grep -E "peer 127\.0\.0\.1:$LP " "$T/info.err")" \
	"^atlas: info: fd [0-9]+ peer 127\.0\.0\.1:$LP port $P: TLSv1\.2 ECDHE-ECDSA-CHACHA20-POLY1305, handshake [0-9.]+ ms, path userspace \($REASON\)\$"

res=$("$PY" "$CLIENTS" get --port "$P" --ca "$CA" --path /index.html 2>&1)
cport=$(sed -n 's/^local_port=//p' <<<"$res")
wait_conn_lines info 3
is_match "info: python's connection (from port $cport) has its own line" "$(cat "$T/info.err")" \
	"^atlas: info: fd [0-9]+ peer 127\.0\.0\.1:$cport port $P: TLSv1\.3 "

# One line per connection: 5 connections, 5 lines; 3 requests on one connection, 1 line.
n0=$(conn_lines info)
for i in 1 2 3 4 5; do hcurl "$P" /index.html -o /dev/null; done
wait_conn_lines info $((n0 + 5))
is_eq "info: 5 connections, 5 more lines" "$(($(conn_lines info) - n0))" 5
n0=$(conn_lines info)
curl -sS --max-time 10 --cacert "$CA" --resolve "localhost:$P:127.0.0.1" -o /dev/null -o /dev/null -o /dev/null \
	"https://localhost:$P/index.html" "https://localhost:$P/index.html" "https://localhost:$P/index.html"
wait_conn_lines info $((n0 + 1))
is_eq "info: 3 requests on one keep-alive connection, 1 more line" "$(($(conn_lines info) - n0))" 1

# Refusals name the peer too, even when the peer has already reset the connection.
res=$("$PY" -c '
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print(s.getsockname()[1])
time.sleep(0.2) # accepted by now; the server thread waits for the first bytes
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()' "$P")
wait_err info "refused: reading the first bytes failed"
is_match "info: a client that resets before sending: the refusal line names its address and port ($res)" \
	"$(grep 'reading the first bytes failed' "$T/info.err")" "peer 127\.0\.0\.1:$res port $P: refused"
res=$("$PY" -c '
import socket, ssl, struct, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
print(raw.getsockname()[1])
s = ctx.wrap_socket(raw, server_hostname="localhost")
s.sendall(b"GET / HTTP/1.0\r\n") # half a request: the server waits for the rest
time.sleep(0.3)
raw = socket.socket(fileno=s.detach())
raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
raw.close()' "$P" "$CA")
if wait_err info 'connection broken'; then
	is_match "info: a TLS session the client resets mid-request: the 'connection broken' line names its peer ($res)" \
		"$(grep 'connection broken' "$T/info.err")" "peer 127\.0\.0\.1:$res port $P: connection broken"
else
	fail "info: a TLS session the client resets mid-request gets a 'connection broken' line"
	note_file "$T/info.err" 5
fi

printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 "$PY" -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.stdin.buffer.read()); s.recv(1000)' "$P" 2>/dev/null
wait_err info 'plain HTTP on a TLS port'
is_match "info: plain HTTP is one line saying so" "$(cat "$T/info.err")" \
	"^atlas: info: fd [0-9]+ peer 127\.0\.0\.1:[0-9]+ port $P: refused: plain HTTP on a TLS port: answering 400\$"

is_eq "info: stdout carries no atlas line (stderr only)" "$(grep -c 'atlas:' "$(server_log info)")" 0
is_eq "info: every atlas line is at most 1024 bytes" "$(awk 'length($0) > 1024' "$T/info.err" | wc -l)" 0
is_no_match "info: no atlas error or warning" "$(ERR info)" '^atlas: (error|warn)'
stop_server info

# ---- warn (the default) and error ------------------------------------------------------------------
for level in "" warn error; do
	name=${level:-default}
	if ! start "$name" "$level"; then
		fail "${name}: the server starts"
		continue
	fi
	P=$PORT
	body=$(hcurl "$P" /index.html 2>&1)
	is_eq "${name}: a TLS client is served" "$body" "$WANT"
	curl -sS --max-time 5 "http://127.0.0.1:$P/" -o /dev/null 2>/dev/null
	hcurl "$P" /index.html --tlsv1.2 --tls-max 1.2 --ciphers AES128-GCM-SHA256 -o /dev/null 2>/dev/null
	# The last request went through the whole stack: the others are logged by now if ever.
	hcurl "$P" /index.html -o /dev/null
	is_eq "${name}: served, refused (plain HTTP, no shared cipher): not one atlas line" "$(atlas_lines "$name")" 0
	stop_server "$name"
done

# ---- no key material, at any level -----------------------------------------------------------------
# Every base64 line of both keys, and the EC private scalar in hex.
{
	grep -hv -- '-----' "$EC_KEY" "$RSA_KEY"
	openssl pkey -in "$EC_KEY" -noout -text 2>/dev/null | sed -n '/^priv:/,/^pub:/p' | grep -v ':$' |
		tr -d ' :\n' | head -c 64
	echo
} | grep -v '^$' >"$T/secrets"
note "$(wc -l <"$T/secrets") secret strings to look for"
for spec in "debug ec" "debug rsa" "info rsa"; do
	read -r level kind <<<"$spec"
	P=$(free_port)
	if [ "$kind" = ec ]; then cert=$EC_CERT key=$EC_KEY; else cert=$RSA_CERT key=$RSA_KEY; fi
	if start_server "key$level$kind" "$P" -- "$ATLAS" --cert "$cert" --key "$key" --ports "$P" --log-level "$level" -- \
		"$PY" -m http.server -b 127.0.0.1 -d "$T/www" "$P"; then
		hcurl "$P" /index.html -o /dev/null 2>/dev/null
		hcurl "$P" /index.html --tlsv1.2 --tls-max 1.2 -o /dev/null 2>/dev/null
		hcurl "$P" /index.html --tlsv1.2 --tls-max 1.2 --ciphers AES256-SHA -o /dev/null 2>/dev/null
		curl -sS --max-time 5 "http://127.0.0.1:$P/" -o /dev/null 2>/dev/null
		"$PY" "$CLIENTS" churn --port "$P" --ca "$CA" --expect "$T/www/index.html" --count 7 >/dev/null 2>&1
		wait_log "key$level$kind" 'plain HTTP on a TLS port' 5
		log=$(server_log "key$level$kind")
		if grep -qF -f "$T/secrets" "$log" || grep -qiE 'PRIVATE KEY|CLIENT_RANDOM|TRAFFIC_SECRET|master.?key' "$log"; then
			fail "--log-level $level, $kind key: no key material in the log"
			grep -nF -f "$T/secrets" "$log" | head -n 3 | cut -c1-120 | sed 's/^/#   /'
		else
			pass "--log-level $level, $kind key: no key material in the log ($(grep -c 'atlas:' "$log") atlas lines checked)"
		fi
		stop_server "key$level$kind"
	else
		fail "--log-level $level, $kind key: the server starts"
	fi
done

# ---- the path reason follows --ktls ------------------------------------------------------------------
# (--ktls require on a kernel without the tls ULP is refused before anything runs:
# 22-ktls-host.sh checks that; the UML scenarios check it where kTLS exists.)
for mode in off auto; do
	case $mode in off) why='ATLAS_KTLS=off' ;; *) why=$REASON ;; esac
	if start "ktls$mode" info --ktls "$mode"; then
		P=$PORT
		body=$(hcurl "$P" /index.html 2>&1)
		wait_conn_lines "ktls$mode" 1
		is_match "--ktls $mode: the listener line says ATLAS_KTLS=$mode, path userspace ($why)" "$(ERR "ktls$mode")" \
			"^atlas: info: fd [0-9]+: listening with TLS on port $P; ATLAS_KTLS=$mode; path userspace \($why\)\$"
		is_eq "--ktls $mode: served" "$body" "$WANT"
		is_match "--ktls $mode: the connection line says path userspace ($why)" "$(ERR "ktls$mode")" \
			"port $P: TLSv1\.3 .*, path userspace \($why\)\$"
		stop_server "ktls$mode"
	else
		fail "--ktls $mode: the server starts"
	fi
done

finish
