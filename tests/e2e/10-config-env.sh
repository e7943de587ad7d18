#!/usr/bin/env bash
# 10: configuration the other ways the README names. Every flag may come from
# the environment instead, and a flag wins over its variable; relative --cert
# and --key paths still work for a server that changes directory before it
# listens; the helper programs a server starts (a shell here) log nothing; an
# expired certificate is only a warning; ATLAS_LIBRARY names the library.
. "$(dirname "$0")/lib.sh"

make_certs
mkdir -p "$T/www"
echo "config test $(openssl rand -hex 8)" >"$T/www/index.html"
WANT=$(cat "$T/www/index.html")
clean_env=(env -u ATLAS_PORTS -u ATLAS_CERT -u ATLAS_KEY -u ATLAS_KTLS -u ATLAS_HANDSHAKE_TIMEOUT_MS -u ATLAS_LOG_LEVEL)

# Everything from the environment, no flag at all.
P=$(free_port)
if start_server envonly "$P" -- "${clean_env[@]}" ATLAS_PORTS="$P" ATLAS_CERT="$EC_CERT" ATLAS_KEY="$EC_KEY" \
	ATLAS_LOG_LEVEL=info ATLAS_HANDSHAKE_TIMEOUT_MS=1000 \
	"$ATLAS" -- "$PY" -m http.server -b 127.0.0.1 -d "$T/www" "$P"; then
	body=$(hcurl "$P" /index.html 2>&1)
	is_eq "environment only (ATLAS_PORTS, ATLAS_CERT, ATLAS_KEY): TLS is served" "$body" "$WANT"
	wait_log envonly "port $P: TLSv1\.3" 5
	check "environment only: ATLAS_LOG_LEVEL=info is obeyed (a connection line)" log_has envonly "port $P: TLSv1\.3 "
	res=$("$PY" "$CLIENTS" idle --port "$P" --count 1 --hold 8 2>&1)
	is_between "environment only: ATLAS_HANDSHAKE_TIMEOUT_MS=1000 is obeyed (idle client closed after $(sed -n 's/^closed_after_ms=//p' <<<"$res") ms)" \
		"$(sed -n 's/^closed_after_ms=//p' <<<"$res")" 800 3000
	stop_server envonly
else
	fail "environment only: the server starts"
fi

# Flags win over the variables.
P=$(free_port)
Q=$(free_port)
if start_server flagwins "$P" -- "${clean_env[@]}" ATLAS_PORTS="$Q" ATLAS_CERT="$T/nope.pem" ATLAS_KEY="$T/nope.key" \
	ATLAS_LOG_LEVEL=info ATLAS_KTLS=bogus \
	"$ATLAS" --ports "$P" --cert "$RSA_CERT" --key "$RSA_KEY" --log-level warn --ktls off -- \
	"$PY" -m http.server -b 127.0.0.1 -d "$T/www" "$P"; then
	body=$(hcurl "$P" /index.html 2>&1)
	is_eq "flags win: --ports, --cert, --key and --ktls override bad variables; TLS is served" "$body" "$WANT"
	check "flags win: the RSA certificate of --cert is the one served" \
		bash -c "echo | timeout 10 openssl s_client -connect 127.0.0.1:$P 2>/dev/null | grep -q 'Server public key is 2048 bit'"
	hcurl "$P" /index.html -o /dev/null
	is_eq "flags win: --log-level warn beats ATLAS_LOG_LEVEL=info (no atlas line)" \
		"$(grep -c 'atlas:' "$(server_log flagwins)")" 0
	stop_server flagwins
else
	fail "flags win: the server starts"
fi

# Relative paths, and a server that leaves the directory before it listens: the wrapper
# hands the library absolute paths, and the library reads the files at listen().
P=$(free_port)
if start_server relative "$P" -- bash -c 'cd "$1" && shift && exec "$@"' bash "$T" \
	"$ATLAS" --cert certs/ec.pem --key certs/ec.key --ports "$P" --log-level info -- \
	bash -c 'cd / && exec "$@"' bash "$PY" -m http.server -b 127.0.0.1 -d "$T/www" "$P"; then
	body=$(hcurl "$P" /index.html 2>&1)
	is_eq "relative --cert/--key, server running from /: TLS is served" "$body" "$WANT"
	# The shells (bash -c) loaded Atlas too, exec'd away before listening: no line of theirs.
	wait_log relative "port $P: TLSv1\.3" 5
	is_eq "the shell that started the server logged nothing: one listener line, one connection line" \
		"$(grep -c 'atlas:' "$(server_log relative)")" 2
	is_no_match "relative paths: no atlas error" "$(cat "$(server_log relative)")" '^atlas: error'
	stop_server relative
else
	fail "relative --cert/--key: the server starts"
fi

# A server that runs helper programs: they load Atlas (LD_PRELOAD is exported) but never
# listen on a TLS port, so they read no key and log nothing.
P=$(free_port)
cat >"$T/spawner.py" <<'EOF'
import http.server, functools, subprocess, sys
class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        # close_fds=False: with the default, 11-helper-programs' plaintext leak would hide this check.
        out = subprocess.run(["sh", "-c", "echo helper ran; ls / >/dev/null"], capture_output=True, text=True,
                             close_fds=False)
        body = out.stdout.encode() + out.stderr.encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
srv.serve_forever()
EOF
if start_server spawner "$P" -- "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$P" --log-level info -- \
	"$PY" "$T/spawner.py" "$P"; then
	body=$(hcurl "$P" /run 2>&1)
	is_eq "a helper program the server runs works, and writes nothing of Atlas's into its output" "$body" "helper ran"
	hcurl "$P" /run -o /dev/null
	wait_log spawner "port $P: TLSv1\.3" 5
	is_eq "helper programs log nothing at info: only the listener line and 2 connection lines" \
		"$(grep -c 'atlas:' "$(server_log spawner)")" 3
	stop_server spawner
else
	fail "the spawning server starts"
fi

# An expired certificate: one warning line, and it is served anyway.
openssl req -new -key "$EC_KEY" -subj /CN=localhost -out "$T/exp.csr" 2>/dev/null
openssl x509 -req -in "$T/exp.csr" -CA "$T/certs/int.pem" -CAkey "$T/certs/int.key" -days -1 \
	-extfile <(printf 'subjectAltName = DNS:localhost, IP:127.0.0.1\n') -out "$T/exp-leaf.pem" 2>/dev/null
cat "$T/exp-leaf.pem" "$T/certs/int.pem" >"$T/expired.pem"
P=$(free_port)
if start_server expired "$P" -- "${clean_env[@]}" "$ATLAS" --cert "$T/expired.pem" --key "$EC_KEY" --ports "$P" -- \
	"$PY" -m http.server -b 127.0.0.1 -d "$T/www" "$P"; then
	is_match "expired certificate: the wrapper warns, naming the file" "$(cat "$(server_log expired)")" \
		"^atlas-preload\.sh: warning: .*$T/expired\.pem.*expired"
	is_eq "expired certificate: exactly one warning line" \
		"$(grep -c 'warning' "$(server_log expired)")" 1
	body=$(hcurl "$P" /index.html -k 2>&1)
	is_eq "expired certificate: still served (the client decides)" "$body" "$WANT"
	if hcurl "$P" /index.html >/dev/null 2>"$T/curl.err"; then
		fail "expired certificate: a verifying client refuses it"
	else
		is_match "expired certificate: a verifying client refuses it" "$(cat "$T/curl.err")" 'expired'
	fi
	stop_server expired
else
	fail "expired certificate: the server starts (a warning only)"
fi

# ATLAS_LIBRARY: the library the wrapper preloads.
rm -f "$T/ran"
"${clean_env[@]}" ATLAS_LIBRARY="$T/no-such-lib.so" timeout 10 "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" \
	--ports "$(free_port)" -- touch "$T/ran" 2>"$T/err"
rc=$?
if [ $rc -eq 2 ] && [ "$(grep -c '' "$T/err")" -eq 1 ] && grep -q "$T/no-such-lib.so" "$T/err" && [ ! -e "$T/ran" ]; then
	pass "ATLAS_LIBRARY naming a missing file: exit 2, one line naming it, command not run"
else
	fail "ATLAS_LIBRARY naming a missing file: exit 2, one line naming it, command not run"
	note "exit $rc" "$(cat "$T/err")"
fi
out=$("$ATLAS" --help 2>&1)
rc=$?
is_eq "--help exits 0" "$rc" 0
is_match "--help prints the usage" "$out" '^usage: atlas-preload\.sh --cert'

finish
