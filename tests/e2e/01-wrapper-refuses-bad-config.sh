#!/usr/bin/env bash
# 01: a bad certificate, key or option makes atlas-preload.sh exit 2 with one
# stderr line naming the problem, before the command runs; the library loaded
# directly with a broken configuration refuses the TLS ports instead of serving
# them in plaintext.
. "$(dirname "$0")/lib.sh"

make_certs
P=$(free_port)
mkdir -p "$T/www" "$T/mark"
chmod 777 "$T/mark" # nobody writes its marker here
echo "served over TLS" >"$T/www/index.html"
MARK=$T/mark/ran

# run_wrapper ARGS...: the wrapper with a clean ATLAS_* environment; the command
# (touch MARK) tells whether it ran. Sets RC, ERR (stderr), OUT (stdout).
run_wrapper() {
	rm -f "$MARK"
	env -u ATLAS_PORTS -u ATLAS_CERT -u ATLAS_KEY -u ATLAS_KTLS -u ATLAS_HANDSHAKE_TIMEOUT_MS \
		-u ATLAS_LOG_LEVEL -u LD_PRELOAD "${ENV_EXTRA[@]}" \
		timeout 20 "${AS_USER[@]}" "$ATLAS" "$@" >"$T/out" 2>"$T/err" </dev/null
	RC=$?
	ERR=$(cat "$T/err")
	OUT=$(cat "$T/out")
}
ENV_EXTRA=()
AS_USER=()

# refuses DESC ERE ARGS...: exit 2, exactly one stderr line, matching ERE, no stdout, command not run.
refuses() {
	local desc=$1 want=$2 lines why=()
	shift 2
	run_wrapper "$@"
	lines=$(grep -c '' "$T/err")
	[ "$RC" -eq 2 ] || why+=("exit status $RC, not 2")
	[ "$lines" -eq 1 ] || why+=("$lines stderr lines, not 1")
	grep -Eq -- "$want" <<<"$ERR" || why+=("stderr does not match /$want/")
	[ -z "$OUT" ] || why+=("stdout is not empty")
	[ ! -e "$MARK" ] || why+=("the command ran")
	if [ ${#why[@]} -eq 0 ]; then
		pass "refuses $desc: exit 2, one stderr line naming it, command not run"
	else
		fail "refuses $desc: exit 2, one stderr line naming it, command not run"
		note "${why[@]}" "args: $*" "stderr:"
		sed 's/^/#   /' "$T/err" | head -n 10
	fi
}

good=(--cert "$EC_CERT" --key "$EC_KEY" --ports "$P")
cmd=(-- touch "$MARK")

# Control: the same command line with nothing wrong runs the command.
run_wrapper "${good[@]}" "${cmd[@]}"
if [ "$RC" -eq 0 ] && [ -e "$MARK" ] && [ -z "$ERR" ]; then
	pass "control: a good configuration runs the command, exit 0, nothing on stderr"
else
	fail "control: a good configuration runs the command, exit 0, nothing on stderr"
	note "exit $RC, marker $([ -e "$MARK" ] && echo present || echo absent), stderr: $ERR"
fi
run_wrapper --cert="$EC_CERT" --key="$EC_KEY" --ports="$P" --ktls=off --log-level=info \
	--handshake-timeout=5000 "${cmd[@]}"
if [ "$RC" -eq 0 ] && [ -e "$MARK" ]; then
	pass "control: the --flag=value forms are accepted"
else
	fail "control: the --flag=value forms are accepted"
	note "exit $RC, stderr: $ERR"
fi

# Certificate and key.
refuses "a missing --cert" 'cert' --key "$EC_KEY" --ports "$P" "${cmd[@]}"
refuses "a missing --key" 'key' --cert "$EC_CERT" --ports "$P" "${cmd[@]}"
refuses "a --cert file that does not exist" "--cert.*$T/nope.pem" \
	--cert "$T/nope.pem" --key "$EC_KEY" --ports "$P" "${cmd[@]}"
refuses "a --key file that does not exist" "--key.*$T/nope.key" \
	--cert "$EC_CERT" --key "$T/nope.key" --ports "$P" "${cmd[@]}"

# Unreadable: root reads a mode-000 file anyway, so the wrapper runs as nobody. nobody must
# reach everything but the one unreadable file: $T (mktemp's mode 700) becomes traversable, and
# the wrapper runs from a copy there (the clone itself may sit under a directory nobody cannot
# enter; the wrapper refuses before it looks for the library).
mkdir -p "$T/nb"
cp "$EC_CERT" "$T/nb/cert.pem"
cp "$EC_KEY" "$T/nb/key.pem"
chmod 711 "$T"
chmod 755 "$T/nb"
chmod 644 "$T/nb/cert.pem" "$T/nb/key.pem"
ATLAS_AS_ROOT=$ATLAS
if [ "$(id -u)" -eq 0 ]; then
	AS_USER=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
	cp "$ATLAS" "$T/nb/atlas-preload.sh"
	chmod 755 "$T/nb/atlas-preload.sh"
	ATLAS=$T/nb/atlas-preload.sh
	# Control: as nobody, the readable pair gets past the file checks (to the missing library).
	run_wrapper --cert "$T/nb/cert.pem" --key "$T/nb/key.pem" --ports "$P" "${cmd[@]}"
	if grep -q 'cannot read' <<<"$ERR"; then
		fail "control: nobody cannot read a mode-644 file in the test directory: $ERR"
	else
		pass "control: nobody reads the test directory's readable files (so mode 000 is what is refused)"
	fi
fi
chmod 000 "$T/nb/key.pem"
refuses "an unreadable --key (mode 000, run as $([ ${#AS_USER[@]} -gt 0 ] && echo nobody || id -un))" \
	"--key.*$T/nb/key.pem" --cert "$T/nb/cert.pem" --key "$T/nb/key.pem" --ports "$P" "${cmd[@]}"
chmod 644 "$T/nb/key.pem"
chmod 000 "$T/nb/cert.pem"
refuses "an unreadable --cert (mode 000)" "--cert.*$T/nb/cert.pem" \
	--cert "$T/nb/cert.pem" --key "$T/nb/key.pem" --ports "$P" "${cmd[@]}"
AS_USER=()
ATLAS=$ATLAS_AS_ROOT

refuses "a key that does not match the certificate (RSA key, ECDSA cert)" "does not match" \
	--cert "$EC_CERT" --key "$RSA_KEY" --ports "$P" "${cmd[@]}"
refuses "a key that does not match the certificate (another ECDSA key)" "does not match" \
	--cert "$EC_CERT" --key "$T/certs/int.key" --ports "$P" "${cmd[@]}"
openssl x509 -in "$EC_LEAF" -outform DER -out "$T/cert.der"
refuses "a non-PEM certificate (DER)" "--cert.*$T/cert.der.*PEM" \
	--cert "$T/cert.der" --key "$EC_KEY" --ports "$P" "${cmd[@]}"
openssl pkey -in "$EC_KEY" -outform DER -out "$T/key.der"
refuses "a non-PEM private key (DER)" "--key.*$T/key.der.*PEM" \
	--cert "$EC_CERT" --key "$T/key.der" --ports "$P" "${cmd[@]}"
# A chain whose intermediate is cut short: the library cannot load it (bad end line).
{
	cat "$EC_LEAF"
	head -n 4 "$T/certs/int.pem"
} >"$T/broken-chain.pem"
refuses "a chain file whose intermediate certificate is truncated" "--cert.*$T/broken-chain.pem" \
	--cert "$T/broken-chain.pem" --key "$EC_KEY" --ports "$P" "${cmd[@]}"
head -c 600 /dev/urandom >"$T/random.pem"
refuses "a certificate file of random bytes" "--cert.*$T/random.pem" \
	--cert "$T/random.pem" --key "$EC_KEY" --ports "$P" "${cmd[@]}"
refuses "a private key given as --cert" "--cert.*$EC_KEY" \
	--cert "$EC_KEY" --key "$EC_KEY" --ports "$P" "${cmd[@]}"
openssl pkey -in "$EC_KEY" -aes256 -passout pass:secret -out "$T/encrypted.key" 2>/dev/null
refuses "a passphrase-protected key" "--key.*$T/encrypted.key" \
	--cert "$EC_CERT" --key "$T/encrypted.key" --ports "$P" "${cmd[@]}"
: >"$T/empty.key"
refuses "an empty key file" "--key.*$T/empty.key" \
	--cert "$EC_CERT" --key "$T/empty.key" --ports "$P" "${cmd[@]}"

# Ports.
for bad in 0 65536 abc 99999999999 -1 "$P,0" "$P,abc"; do
	refuses "--ports '$bad'" "ports.*'(${bad#"$P,"})'" --cert "$EC_CERT" --key "$EC_KEY" --ports "$bad" "${cmd[@]}"
done
refuses "--ports '' (empty)" "ports" --cert "$EC_CERT" --key "$EC_KEY" --ports "" "${cmd[@]}"
refuses "--ports= (empty)" "port" --cert "$EC_CERT" --key "$EC_KEY" --ports= "${cmd[@]}"
refuses "--ports '$P,' (trailing comma)" "ports.*comma|ports.*''" --cert "$EC_CERT" --key "$EC_KEY" --ports "$P," "${cmd[@]}"
refuses "--ports '$P,,$P' (empty item)" "ports" --cert "$EC_CERT" --key "$EC_KEY" --ports "$P,,$P" "${cmd[@]}"
refuses "no --ports at all" "port" --cert "$EC_CERT" --key "$EC_KEY" "${cmd[@]}"

# The other options.
refuses "--ktls maybe" "--ktls.*'maybe'" "${good[@]}" --ktls maybe "${cmd[@]}"
refuses "--ktls '' (empty)" "--ktls" "${good[@]}" --ktls "" "${cmd[@]}"
refuses "--log-level verbose" "--log-level.*'verbose'" "${good[@]}" --log-level verbose "${cmd[@]}"
refuses "--log-level INFO (upper case)" "--log-level.*'INFO'" "${good[@]}" --log-level INFO "${cmd[@]}"
for bad in 0 abc 3600001 -5 1.5 10s; do
	refuses "--handshake-timeout '$bad'" "--handshake-timeout.*'$bad'" "${good[@]}" --handshake-timeout "$bad" "${cmd[@]}"
done
refuses "an unknown option (--bogus)" "--bogus" "${good[@]}" --bogus "${cmd[@]}"
refuses "a misspelt option (--port)" "--port" --cert "$EC_CERT" --key "$EC_KEY" --port "$P" "${cmd[@]}"
refuses "no command after --" "command" "${good[@]}" --
refuses "no command and no --" "command" "${good[@]}"

# The same rules for the environment variables.
ENV_EXTRA=(ATLAS_KTLS=sometimes)
refuses "ATLAS_KTLS=sometimes from the environment" "'sometimes'" "${good[@]}" "${cmd[@]}"
ENV_EXTRA=(ATLAS_PORTS=70000)
refuses "ATLAS_PORTS=70000 from the environment" "'70000'" --cert "$EC_CERT" --key "$EC_KEY" "${cmd[@]}"
ENV_EXTRA=(ATLAS_CERT="$T/nope.pem")
refuses "ATLAS_CERT naming a missing file" "$T/nope.pem" --key "$EC_KEY" --ports "$P" "${cmd[@]}"
ENV_EXTRA=()

# The wrapper refuses without ever starting a server: nothing listens on P.
is_eq "nothing listens on the TLS port after all those refusals" "$(listen_inodes "$P")" ""

# ---- the library loaded directly, with a broken configuration -------------------------

# direct NAME ENV... -- CMD: start CMD with LD_PRELOAD=libatlas.so and exactly these ATLAS_* vars.
direct() {
	local name=$1 port=$2
	shift 2
	local envs=()
	while [ "$1" != -- ]; do
		envs+=("$1")
		shift
	done
	shift
	start_server "$name" "$port" -- env -u ATLAS_PORTS -u ATLAS_CERT -u ATLAS_KEY -u ATLAS_KTLS \
		-u ATLAS_HANDSHAKE_TIMEOUT_MS -u ATLAS_LOG_LEVEL "${envs[@]}" LD_PRELOAD="$LIBATLAS" "$@"
}

# no_service NAME PORT: https fails and a plain request gets no byte back; the server lives on.
no_service() {
	local name=$1 port=$2 what=$3 res
	if hcurl "$port" /index.html -o "$T/body" 2>"$T/curl.err"; then
		fail "$what: curl https fails on the TLS port"
		note "curl got: $(head -c 200 "$T/body")"
	else
		pass "$what: curl https fails on the TLS port ($(head -n 1 "$T/curl.err"))"
	fi
	res=$("$PY" "$CLIENTS" raw --port "$port" --text 'GET /index.html HTTP/1.0\r\n\r\n' --timeout 5)
	is_match "$what: a plain HTTP request gets nothing back, then a close" "$res" '^received=0$' &&
		is_match "$what: ... closed promptly, not left hanging" "$res" '^end=(eof|reset)$'
	check "$what: the server keeps running after refusing" server_alive "$name"
}

P1=$(free_port)
missing=$T/missing-cert.pem
if direct nocert "$P1" ATLAS_PORTS="$P1" ATLAS_CERT="$missing" ATLAS_KEY="$EC_KEY" -- \
	"$PY" -m http.server -b 127.0.0.1 -d "$T/www" "$P1"; then
	pass "LD_PRELOAD with a missing ATLAS_CERT: the server still starts"
	log=$(cat "$(server_log nocert)")
	is_eq "LD_PRELOAD with a missing ATLAS_CERT: exactly one 'atlas: error:' line at start-up names the file" \
		"$(printf '%s\n' "$log" | grep -c "^atlas: error: .*$missing")" 1
	is_match "LD_PRELOAD with a missing ATLAS_CERT: that line says the TLS ports will be refused" "$log" \
		"^atlas: error: .*$missing.*refused"
	no_service nocert "$P1" "LD_PRELOAD with a missing ATLAS_CERT"
	is_eq "LD_PRELOAD with a missing ATLAS_CERT: still one error line naming the file after refusals" \
		"$(grep -c "^atlas: error: .*$missing" "$(server_log nocert)")" 1
	stop_server nocert
else
	fail "LD_PRELOAD with a missing ATLAS_CERT: the server still starts"
fi

# A key that does not match: the library checks too (atlas_tls_ctx_new).
P2=$(free_port)
if direct mismatch "$P2" ATLAS_PORTS="$P2" ATLAS_CERT="$EC_CERT" ATLAS_KEY="$RSA_KEY" -- \
	"$PY" -m http.server -b 127.0.0.1 -d "$T/www" "$P2"; then
	is_match "LD_PRELOAD with a key that does not match: one error line saying so" \
		"$(grep '^atlas: error:' "$(server_log mismatch)")" "does not match|mismatch"
	no_service mismatch "$P2" "LD_PRELOAD with a key that does not match"
	stop_server mismatch
else
	fail "LD_PRELOAD with a key that does not match: the server starts (to refuse)"
fi

# A broken option with a good port list: the TLS port refuses, another port of the
# same process stays plaintext (init.h: ATLAS_REFUSING).
P3=$(free_port)
P4=$(free_port)
if direct badktls "$P3,$P4" ATLAS_PORTS="$P3" ATLAS_CERT="$EC_CERT" ATLAS_KEY="$EC_KEY" ATLAS_KTLS=bogus -- \
	"$PY" "$SERVE" two-ports --port "$P3" --plain-port "$P4" --dir "$T/www"; then
	is_match "LD_PRELOAD with ATLAS_KTLS=bogus: the error line names ATLAS_KTLS" \
		"$(grep '^atlas: error:' "$(server_log badktls)")" "ATLAS_KTLS.*bogus"
	no_service badktls "$P3" "LD_PRELOAD with ATLAS_KTLS=bogus"
	body=$(curl -sS --max-time 10 "http://127.0.0.1:$P4/index.html" 2>&1)
	is_eq "LD_PRELOAD with ATLAS_KTLS=bogus: a port not in ATLAS_PORTS still serves plaintext" \
		"$body" "served over TLS"
	stop_server badktls
else
	fail "LD_PRELOAD with ATLAS_KTLS=bogus: the server starts (to refuse)"
fi

# A broken port list: no port may serve plaintext (init.h: ATLAS_REFUSING_ALL).
P5=$(free_port)
if direct badports "$P5" ATLAS_PORTS="abc" ATLAS_CERT="$EC_CERT" ATLAS_KEY="$EC_KEY" -- \
	"$PY" -m http.server -b 127.0.0.1 -d "$T/www" "$P5"; then
	is_match "LD_PRELOAD with ATLAS_PORTS=abc: one error line naming ATLAS_PORTS" \
		"$(grep '^atlas: error:' "$(server_log badports)")" "ATLAS_PORTS.*abc"
	res=$("$PY" "$CLIENTS" raw --port "$P5" --text 'GET /index.html HTTP/1.0\r\n\r\n' --timeout 5)
	is_match "LD_PRELOAD with ATLAS_PORTS=abc: a plain request gets nothing back (no plaintext anywhere)" \
		"$res" '^received=0$'
	check "LD_PRELOAD with ATLAS_PORTS=abc: the server keeps running" server_alive badports
	stop_server badports
else
	fail "LD_PRELOAD with ATLAS_PORTS=abc: the server starts (to refuse)"
fi

# No ATLAS_PORTS at all: the library is inert (init.h: ATLAS_INERT).
P6=$(free_port)
if direct inert "$P6" ATLAS_CERT="$EC_CERT" ATLAS_KEY="$EC_KEY" -- \
	"$PY" -m http.server -b 127.0.0.1 -d "$T/www" "$P6"; then
	body=$(curl -sS --max-time 10 "http://127.0.0.1:$P6/index.html" 2>&1)
	is_eq "LD_PRELOAD without ATLAS_PORTS: the library is inert, plaintext is served" "$body" "served over TLS"
	is_no_match "LD_PRELOAD without ATLAS_PORTS: no atlas: line at all" "$(cat "$(server_log inert)")" '^atlas:'
	stop_server inert
else
	fail "LD_PRELOAD without ATLAS_PORTS: the server starts"
fi

finish
