#!/usr/bin/env bash
# 03: TLS 1.2 and TLS 1.3 each forced, each of the three AEAD suites on each
# version, with an ECDSA and an RSA certificate; what the client saw (openssl
# s_client, curl -v, python ssl) and what the server logged must agree. Older
# versions, non-ECDHE key exchange, CBC and CCM suites are refused, and the
# server goes on serving.
. "$(dirname "$0")/lib.sh"

make_certs
mkdir -p "$T/www"
printf 'atlas 03 %s\n' "$(openssl rand -hex 12)" >"$T/www/index.html"
WANT=$(cat "$T/www/index.html")
GET='GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n'

# s_client_get OUTFILE ARGS...: a GET through openssl s_client; the exit status is s_client's.
s_client_get() {
	local f=$1
	shift
	printf "$GET" | timeout 10 openssl s_client -connect "127.0.0.1:$P" -servername localhost \
		-CAfile "$CA" -verify_return_error -ign_eof "$@" >"$f" 2>&1
}

TLS13_SUITES="TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256"

for kind in ECDSA RSA; do
	if [ $kind = ECDSA ]; then cert=$EC_CERT key=$EC_KEY; else cert=$RSA_CERT key=$RSA_KEY; fi
	P=$(free_port)
	if ! start_server $kind "$P" -- "$ATLAS" --cert "$cert" --key "$key" --ports "$P" --log-level info -- \
		"$PY" -m http.server -b 127.0.0.1 -d "$T/www" "$P"; then
		fail "$kind: the server starts"
		continue
	fi
	LOG=$(server_log $kind)

	# Each suite, each version, through openssl s_client.
	for c in AES128-GCM-SHA256 AES256-GCM-SHA384 CHACHA20-POLY1305; do
		suite=ECDHE-$kind-$c
		s_client_get "$T/s" -tls1_2 -cipher "$suite"
		out=$(cat "$T/s")
		if grep -q "^$WANT\$" <<<"$out" && grep -q "Cipher is $suite\$" <<<"$out" &&
			grep -Eq 'Protocol *: TLSv1\.2$' <<<"$out"; then
			pass "$kind: s_client TLS 1.2 $suite: negotiated, page received"
		else
			fail "$kind: s_client TLS 1.2 $suite: negotiated, page received"
			note_file "$T/s" 8
		fi
		wait_log $kind ": TLSv1\.2 $suite, handshake" 5
		check "$kind: the server log shows TLSv1.2 $suite" log_has $kind ": TLSv1\.2 $suite, handshake [0-9.]+ ms"
	done
	for suite in $TLS13_SUITES; do
		s_client_get "$T/s" -tls1_3 -ciphersuites "$suite"
		out=$(cat "$T/s")
		if grep -q "^$WANT\$" <<<"$out" && grep -q "Cipher is $suite\$" <<<"$out" &&
			grep -Eq 'Protocol *: TLSv1\.3$' <<<"$out"; then
			pass "$kind: s_client TLS 1.3 $suite: negotiated, page received"
		else
			fail "$kind: s_client TLS 1.3 $suite: negotiated, page received"
			note_file "$T/s" 8
		fi
	done
	for suite in $TLS13_SUITES; do
		n=$(grep -c ": TLSv1\.3 $suite, handshake" "$LOG")
		is_between "$kind: the server log shows TLSv1.3 $suite (at least once)" "$n" 1 1000
	done

	# curl, versions forced.
	for c in AES128-GCM-SHA256 AES256-GCM-SHA384 CHACHA20-POLY1305; do
		suite=ECDHE-$kind-$c
		body=$(hcurl "$P" /index.html --tlsv1.2 --tls-max 1.2 --ciphers "$suite" -v 2>"$T/curl.err")
		if [ "$body" = "$WANT" ] && grep -q "SSL connection using TLSv1.2 / $suite" "$T/curl.err"; then
			pass "$kind: curl --tlsv1.2 --tls-max 1.2 --ciphers $suite"
		else
			fail "$kind: curl --tlsv1.2 --tls-max 1.2 --ciphers $suite"
			note "body: $body" "$(grep -E 'SSL connection|curl:' "$T/curl.err")"
		fi
	done
	for suite in $TLS13_SUITES; do
		body=$(hcurl "$P" /index.html --tlsv1.3 --tls13-ciphers "$suite" -v 2>"$T/curl.err")
		if [ "$body" = "$WANT" ] && grep -q "SSL connection using TLSv1.3 / $suite" "$T/curl.err"; then
			pass "$kind: curl --tlsv1.3 --tls13-ciphers $suite"
		else
			fail "$kind: curl --tlsv1.3 --tls13-ciphers $suite"
			note "body: $body" "$(grep -E 'SSL connection|curl:' "$T/curl.err")"
		fi
	done

	# python ssl, TLS 1.2 with one suite, and TLS 1.3 default.
	res=$("$PY" "$CLIENTS" get --port "$P" --ca "$CA" --path /index.html --tls 1.2 \
		--cipher "ECDHE-$kind-CHACHA20-POLY1305" 2>&1)
	is_match "$kind: python ssl TLS 1.2 ChaCha20: version and suite as asked" \
		"$(grep -E '^(version|cipher|status)=' <<<"$res" | tr '\n' ' ')" \
		"version=TLSv1.2 cipher=ECDHE-$kind-CHACHA20-POLY1305 status=HTTP/1.0 200"
	res=$("$PY" "$CLIENTS" get --port "$P" --ca "$CA" --path /index.html --tls 1.3 2>&1)
	is_match "$kind: python ssl TLS 1.3: version and status" \
		"$(grep -E '^(version|status)=' <<<"$res" | tr '\n' ' ')" "version=TLSv1.3 status=HTTP/1.0 200"

	# The server's order wins; ChaCha20 when the client puts it first (README, shim/tls.c).
	s_client_get "$T/s" -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256
	is_match "$kind: TLS 1.3, client prefers AES-256: the server's order picks AES-128" "$(cat "$T/s")" \
		'Cipher is TLS_AES_128_GCM_SHA256$'
	s_client_get "$T/s" -tls1_2 -cipher "ECDHE-$kind-AES256-GCM-SHA384:ECDHE-$kind-AES128-GCM-SHA256"
	is_match "$kind: TLS 1.2, client prefers AES-256: the server's order picks AES-128" "$(cat "$T/s")" \
		"Cipher is ECDHE-$kind-AES128-GCM-SHA256\$"
	s_client_get "$T/s" -tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256
	is_match "$kind: TLS 1.3, client puts ChaCha20 first: ChaCha20 is chosen" "$(cat "$T/s")" \
		'Cipher is TLS_CHACHA20_POLY1305_SHA256$'

	# Refused: old versions, and suites outside the list.
	refused() { # DESC S_CLIENT_ARGS...
		local desc=$1
		shift
		s_client_get "$T/r" "$@"
		local rc=$?
		if [ $rc -ne 0 ] && ! grep -q "^$WANT\$" "$T/r" && grep -q 'Cipher is (NONE)' "$T/r"; then
			pass "$kind: refused: $desc"
		else
			fail "$kind: refused: $desc"
			note "s_client exit $rc"
			grep -E 'Cipher is|Protocol|alert|Server Temp Key' "$T/r" | head -n 5 | sed 's/^/#   /'
		fi
	}
	refused "TLS 1.1" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
	refused "TLS 1.0" -tls1 -cipher 'DEFAULT:@SECLEVEL=0'
	refused "TLS 1.2 AES128-SHA (RSA key exchange, CBC)" -tls1_2 -cipher 'AES128-SHA:@SECLEVEL=0'
	refused "TLS 1.2 AES128-GCM-SHA256 (RSA key exchange, no ECDHE)" -tls1_2 -cipher AES128-GCM-SHA256
	refused "TLS 1.2 DHE-RSA-AES128-GCM-SHA256 (finite-field DHE)" -tls1_2 -cipher DHE-RSA-AES128-GCM-SHA256
	refused "TLS 1.2 ECDHE-$kind-AES128-SHA256 (CBC)" -tls1_2 -cipher "ECDHE-$kind-AES128-SHA256"
	refused "TLS 1.2 ECDHE-$kind-AES256-SHA (CBC, SHA-1)" -tls1_2 -cipher "ECDHE-$kind-AES256-SHA"
	[ $kind = ECDSA ] && refused "TLS 1.2 ECDHE-ECDSA-AES128-CCM (CCM)" -tls1_2 -cipher ECDHE-ECDSA-AES128-CCM
	refused "TLS 1.3 TLS_AES_128_CCM_SHA256 (CCM)" -tls1_3 -ciphersuites TLS_AES_128_CCM_SHA256
	refused "TLS 1.3 with finite-field DHE only (-groups ffdhe2048): ECDHE only" -tls1_3 -groups ffdhe2048
	body=$(hcurl "$P" /index.html --tlsv1.1 --tls-max 1.1 --ciphers 'DEFAULT:@SECLEVEL=0' 2>&1)
	if [ "$body" != "$WANT" ]; then
		pass "$kind: refused: curl --tlsv1.1 --tls-max 1.1"
	else
		fail "$kind: refused: curl --tlsv1.1 --tls-max 1.1"
	fi
	check "$kind: the server log says why: no shared cipher" log_has $kind 'refused: TLS handshake failed: no shared cipher'
	check "$kind: the server log says why: unsupported protocol" log_has $kind 'refused: TLS handshake failed: unsupported protocol'

	body=$(hcurl "$P" /index.html 2>&1)
	is_eq "$kind: after all the refusals the server still serves" "$body" "$WANT"
	check "$kind: the server is still running" server_alive $kind
	stop_server $kind
done

finish
