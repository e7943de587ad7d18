#!/usr/bin/env bash
# 06: clients that do not speak TLS on a TLS port. A plain HTTP request gets
# "HTTP/1.1 400" with a one-line body saying the port needs https, then a close
# (FIN, not a reset); garbage gets a close and not a byte; the server never sees
# either, and keeps serving TLS. A second port of the same process, not named
# in --ports, stays plaintext.
. "$(dirname "$0")/lib.sh"

make_certs
mkdir -p "$T/www"
echo "two ports $(openssl rand -hex 8)" >"$T/www/index.html"
WANT=$(cat "$T/www/index.html")

P=$(free_port)
Q=$(free_port)
if ! start_server two "$P,$Q" -- "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$P" --log-level info -- \
	"$PY" "$SERVE" two-ports --port "$P" --plain-port "$Q" --dir "$T/www"; then
	fail "the two-port server starts under Atlas"
	finish
fi
LOG=$(server_log two)

# raw PORT ARGS...: clients.py raw; sets RES (key=value lines) and leaves the bytes in $T/recv.
raw() {
	local port=$1
	shift
	RES=$("$PY" "$CLIENTS" raw --port "$port" --out "$T/recv" --timeout 10 "$@" 2>&1)
}
field() { sed -n "s/^$1=//p" <<<"$RES"; }

# answered_400 DESC ARGS...: the full nginx-like answer, then a clean close.
answered_400() {
	local desc=$1 status cl body why=()
	shift
	N_PLAIN=$((N_PLAIN + 1))
	raw "$P" "$@"
	status=$(head -n 1 "$T/recv" | tr -d '\r')
	cl=$(grep -i '^Content-Length:' "$T/recv" | tr -dc '0-9')
	body=$(sed '1,/^\r$/d' "$T/recv")
	[[ "$status" == "HTTP/1.1 400"* ]] || why+=("status line '$status'")
	[ "$(field end)" = eof ] || why+=("ended with '$(field end)', not a clean close (FIN)")
	[ "$(sed '1,/^\r$/d' "$T/recv" | wc -l)" -eq 1 ] || why+=("the body is not one line")
	grep -qi 'https' <<<"$body" || why+=("the body does not mention https: '$body'")
	[ "$cl" = "$(sed '1,/^\r$/d' "$T/recv" | wc -c)" ] || why+=("Content-Length '$cl' is not the body's length")
	grep -qi '^Connection: close' "$T/recv" || why+=("no Connection: close")
	if [ ${#why[@]} -eq 0 ]; then
		pass "$desc: HTTP/1.1 400, one line about https, then a clean close"
	else
		fail "$desc: HTTP/1.1 400, one line about https, then a clean close"
		note "${why[@]}" "$RES"
	fi
}

# closed_silently DESC ARGS...: nothing comes back, and the connection is closed (not left open).
closed_silently() {
	local desc=$1
	shift
	raw "$P" "$@"
	if [ "$(field received)" = 0 ] && [[ "$(field end)" =~ ^(eof|reset)$ ]]; then
		pass "$desc: closed without a byte back ($(field end) after $(field elapsed_ms) ms)"
	else
		fail "$desc: closed without a byte back"
		note "$RES" "received: $(head -c 200 "$T/recv" | od -c | head -n 3)"
	fi
}

# ---- plain HTTP on the TLS port --------------------------------------------------------------
N_PLAIN=1 # curl's, then one per answered_400
out=$(curl -sS -i --max-time 10 "http://127.0.0.1:$P/index.html" 2>&1)
rc=$?
is_eq "curl http:// to the TLS port: curl exits 0 (a well-formed HTTP answer)" "$rc" 0
is_match "curl http:// to the TLS port: HTTP/1.1 400" "$(head -n 1 <<<"$out")" '^HTTP/1\.1 400'
is_match "curl http:// to the TLS port: the body says to use https" "$(tail -n 1 <<<"$out")" 'https'
is_no_match "curl http:// to the TLS port: the page itself is not served in plaintext" "$out" "$WANT"

answered_400 "GET" --text 'GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n'
for m in HEAD PUT DELETE OPTIONS PATCH TRACE; do
	answered_400 "$m" --text "$m /index.html HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n"
done
answered_400 "POST with a body" --text 'POST /form HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\n\r\nhello=world'
answered_400 "CONNECT" --text 'CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n'
answered_400 "the HTTP/2 prior-knowledge preface (PRI)" --text 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
answered_400 "GET whose method arrives one byte per segment (G, E, T, then the rest)" \
	--text 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n' --drip 1 --drip-first 3 --drip-ms 50
answered_400 "HTTP/1.0 GET" --text 'GET / HTTP/1.0\r\n\r\n'

# ---- garbage on the TLS port ----------------------------------------------------------------------
closed_silently "200 random bytes (first byte 0xff)" --garbage 200
closed_silently "16 KiB of random bytes" --garbage 16384
closed_silently "one byte, 0x00" --hex 00
closed_silently "a record header of type 0x16 with version 0x01 (not TLS)" --hex 1601000010deadbeefdeadbeef
closed_silently "'GETX' (not a method followed by a space)" --text 'GETX / HTTP/1.1\r\n\r\n'
closed_silently "'get /' in lower case" --text 'get / HTTP/1.1\r\n\r\n'
closed_silently "an SSH banner" --text 'SSH-2.0-OpenSSH_9.2\r\n'
closed_silently "connect, then half-close (FIN) without a byte" --shut-wr
# A TLS-looking header with junk behind it goes to OpenSSL: an alert at most, then a close.
raw "$P" --hex 160303000501deadbeef00
if [[ "$(field end)" =~ ^(eof|reset)$ ]] && ! grep -q "$WANT" "$T/recv"; then
	pass "a TLS record header followed by junk: the handshake fails and the connection closes ($(field received) bytes back)"
else
	fail "a TLS record header followed by junk: the handshake fails and the connection closes"
	note "$RES"
fi

# The server program never saw any of those connections (README: it reads end of file).
apps=$(grep -v -e '^atlas:' -e '^serve.py:' "$LOG")
is_eq "the server program saw none of the plaintext or garbage requests (no request in its log)" "$apps" ""

wait_log two 'refused: the client did not start with a TLS handshake' 5
is_match "info log: plain HTTP is logged as refused, answering 400" "$(cat "$LOG")" \
	"peer 127\.0\.0\.1:[0-9]+ port $P: refused: plain HTTP on a TLS port: answering 400"
is_match "info log: garbage is logged as refused" "$(cat "$LOG")" \
	"peer 127\.0\.0\.1:[0-9]+ port $P: refused: the client did not start with a TLS handshake"
is_eq "info log: one plain-HTTP refusal line per plain request ($N_PLAIN)" \
	"$(grep -c "port $P: refused: plain HTTP on a TLS port" "$LOG")" "$N_PLAIN"

# ---- TLS still works ----------------------------------------------------------------------------------
body=$(hcurl "$P" /index.html 2>&1)
is_eq "after all that, the TLS port still serves TLS" "$body" "$WANT"
res=$("$PY" "$CLIENTS" drip --port "$P" --ca "$CA" --path /index.html --drip 1 --drip-first 12 --drip-ms 30 2>&1)
is_match "a ClientHello whose first 12 bytes come 1 byte per segment completes the handshake, gets the page" \
	"$(grep -E '^(handshake|status)=' <<<"$res" | tr '\n' ' ')" '^handshake=ok status=HTTP/1.1 200'

# ---- the plaintext port of the same process ------------------------------------------------------
body=$(curl -sS --max-time 10 "http://127.0.0.1:$Q/index.html" 2>&1)
is_eq "the port not in --ports serves plain HTTP (same process)" "$body" "$WANT"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$Q/nope" 2>&1)
is_eq "the plaintext port: the server's own 404, not Atlas's 400" "$code" 404
raw "$Q" --text 'GETX / HTTP/1.1\r\n\r\n'
is_match "the plaintext port: garbage reaches the server program, which answers it itself" \
	"$(head -n 1 "$T/recv")" '^HTTP/1\.[01] [45][0-9][0-9] '
is_match "the plaintext port: ... with python's own error page, not Atlas's" "$(cat "$T/recv")" 'Error response'
if hcurl "$Q" /index.html >/dev/null 2>&1; then
	fail "the plaintext port does not speak TLS (https to it fails)"
else
	pass "the plaintext port does not speak TLS (https to it fails)"
fi
is_no_match "the plaintext port: no atlas line mentions it" "$(grep '^atlas:' "$LOG")" "port $Q"
check "the server is still running" server_alive two

finish
