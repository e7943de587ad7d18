#!/usr/bin/env bash
# 02: python3 -m http.server under Atlas, reached by four independent TLS
# stacks (curl, openssl s_client, gnutls-cli, python's ssl module), with an
# ECDSA and with an RSA certificate. Clients trust only the test root CA, so
# every success also proves the server sent the intermediate (the full chain).
. "$(dirname "$0")/lib.sh"

make_certs
mkdir -p "$T/www"
printf 'atlas 02 body %s\n' "$(openssl rand -hex 16)" >"$T/www/index.html"
head -c 300000 /dev/urandom >"$T/www/blob.bin" # several TLS records
WANT=$(cat "$T/www/index.html")
BLOB_SHA=$(sha256_of "$T/www/blob.bin")
GET='GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n'

for kind in ecdsa rsa; do
	if [ $kind = ecdsa ]; then
		cert=$EC_CERT key=$EC_KEY bits=256
	else
		cert=$RSA_CERT key=$RSA_KEY bits=2048
	fi
	P=$(free_port)
	if ! start_server $kind "$P" -- "$ATLAS" --cert "$cert" --key "$key" --ports "$P" --log-level info -- \
		"$PY" -m http.server -b 127.0.0.1 -d "$T/www" "$P"; then
		fail "$kind: the server starts under atlas-preload.sh"
		continue
	fi
	pass "$kind: the server starts under atlas-preload.sh"

	# curl (OpenSSL underneath, but its own verification settings).
	body=$(hcurl "$P" /index.html 2>&1)
	is_eq "$kind: curl gets the page, verifying the chain against the root CA only" "$body" "$WANT"
	hcurl "$P" /blob.bin -o "$T/blob.$kind" 2>"$T/curl.err"
	is_eq "$kind: curl gets a 300 KB binary file intact (sha256)" "$(sha256_of "$T/blob.$kind")" "$BLOB_SHA"
	code=$(hcurl "$P" /nope -o /dev/null -w '%{http_code}' 2>&1)
	is_eq "$kind: curl gets the server's own 404 for a missing file" "$code" 404

	# openssl s_client: a GET typed on stdin, the answer read until the server closes.
	printf "$GET" | timeout 10 openssl s_client -connect "127.0.0.1:$P" -servername localhost \
		-CAfile "$CA" -verify_return_error -showcerts -ign_eof >"$T/s_client.$kind" 2>&1
	rc=$?
	out=$(cat "$T/s_client.$kind")
	is_eq "$kind: openssl s_client exits 0" "$rc" 0
	is_match "$kind: openssl s_client sees the page" "$out" "^$WANT\$"
	is_match "$kind: openssl s_client verifies the chain (Verify return code: 0)" "$out" 'Verify return code: 0 \(ok\)'
	is_eq "$kind: the server sends the whole chain, leaf and intermediate (2 certificates)" \
		"$(grep -c 'BEGIN CERTIFICATE' "$T/s_client.$kind")" 2
	is_match "$kind: the leaf is the $kind key ($bits bit)" "$out" "Server public key is $bits bit"

	# gnutls-cli: a different TLS implementation altogether.
	printf "$GET" | timeout 10 gnutls-cli --x509cafile "$CA" -p "$P" localhost >"$T/gnutls.$kind" 2>&1
	rc=$?
	out=$(cat "$T/gnutls.$kind")
	is_eq "$kind: gnutls-cli exits 0" "$rc" 0
	is_match "$kind: gnutls-cli trusts the certificate" "$out" 'The certificate is trusted'
	is_match "$kind: gnutls-cli sees the page" "$out" "^$WANT\$"

	# python's ssl module, with a verifying default context.
	res=$("$PY" "$CLIENTS" get --port "$P" --ca "$CA" --path /index.html 2>&1)
	is_match "$kind: python ssl completes a verified handshake" "$res" '^handshake=ok$'
	is_match "$kind: python ssl gets 200" "$res" '^status=HTTP/1.0 200'
	is_match "$kind: python ssl gets the page (sha256)" "$res" \
		"^body_sha256=$(printf '%s\n' "$WANT" | sha256sum | cut -d' ' -f1)\$"
	is_match "$kind: the server ends the stream with a TLS close_notify" "$res" '^end=close_notify$'

	log=$(cat "$(server_log $kind)")
	is_match "$kind: the info log names the TLS listener" "$log" \
		"^atlas: info: fd [0-9]+: listening with TLS on port $P"
	is_no_match "$kind: no atlas error or warning in the server log" "$log" '^atlas: (error|warn)'
	stop_server $kind
done

# A wrong trust anchor must fail: proves the clients above really verified.
P=$(free_port)
if start_server wrongca "$P" -- "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$P" -- \
	"$PY" -m http.server -b 127.0.0.1 -d "$T/www" "$P"; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=other \
		-keyout "$T/other.key" -out "$T/other.pem" 2>/dev/null
	if curl -sS --max-time 10 --cacert "$T/other.pem" --resolve "localhost:$P:127.0.0.1" \
		"https://localhost:$P/index.html" >/dev/null 2>&1; then
		fail "control: curl trusting another CA refuses the server's certificate"
	else
		pass "control: curl trusting another CA refuses the server's certificate"
	fi
	# Leaf only (no intermediate) in the server file: clients that know only the root fail.
	stop_server wrongca
fi
P=$(free_port)
if start_server leafonly "$P" -- "$ATLAS" --cert "$EC_LEAF" --key "$EC_KEY" --ports "$P" -- \
	"$PY" -m http.server -b 127.0.0.1 -d "$T/www" "$P"; then
	if hcurl "$P" /index.html >/dev/null 2>&1; then
		fail "control: with the leaf alone in --cert, a client that knows only the root fails"
	else
		pass "control: with the leaf alone in --cert, a client that knows only the root fails"
	fi
	stop_server leafonly
fi

# IPv6: a server on ::1, the peer address in the log.
P=$(free_port ::1)
if start_server v6 "$P" -- "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$P" --log-level info -- \
	"$PY" -m http.server -b ::1 -d "$T/www" "$P"; then
	body=$(curl -sS --max-time 10 --cacert "$CA" --resolve "localhost:$P:[::1]" "https://localhost:$P/index.html" 2>&1)
	is_eq "IPv6: curl gets the page from a server on ::1" "$body" "$WANT"
	wait_log v6 "peer ::1:[0-9]+ port $P: TLSv1\.3" 5
	is_match "IPv6: the log line shows the IPv6 peer" "$(cat "$(server_log v6)")" \
		"^atlas: info: fd [0-9]+ peer ::1:[0-9]+ port $P: TLSv1\.3 "
	stop_server v6
else
	fail "IPv6: the server starts on ::1"
fi

finish
