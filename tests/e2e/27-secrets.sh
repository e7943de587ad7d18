#!/usr/bin/env bash
# 27: secrets on the userspace path (this host).
#   - SSLKEYLOGFILE set: the listener logs one warn line naming the file, which is
#     created mode 600, and every secret line that the clients wrote to their own
#     key logs (curl and python's ssl through SSLKEYLOGFILE / keylog_filename,
#     openssl s_client -keylogfile; TLS 1.3 and TLS 1.2) is in it, same label,
#     client random and secret.
#   - With the server at --log-level debug, none of those secrets, nor the private
#     key (its PEM body lines, the hex of its private scalar), is in its stderr.
#   - SSLKEYLOGFILE unset: no warn line, and the server has no file open for
#     writing beyond its stdout and stderr (the control: with it set, one).
#   - No session cache keeps TLS 1.2 master secrets: sessions resume by ticket.
#   - A private key that group or others may read: the wrapper warns in one line
#     and the server runs (the library does not say it again); the library loaded
#     by hand warns at the listener, once; mode 600 prints nothing either way.
. "$(dirname "$0")/lib.sh"

make_certs
mkdir -p "$T/www"
echo "secrets test $(openssl rand -hex 8)" >"$T/www/index.html"
WANT=$(cat "$T/www/index.html")

# srv NAME KEY [ENV=VALUE...] [-- WRAPPER ARGS...]: python's http.server under the
# wrapper, its stderr in $T/NAME.err; sets PORT. SSLKEYLOGFILE is unset unless given.
srv() {
	local name=$1 key=$2 envs=() extra=()
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		envs+=("$1")
		shift
	done
	[ "${1:-}" = -- ] && shift
	extra=("$@")
	PORT=$(free_port)
	start_server "$name" "$PORT" -- env -u SSLKEYLOGFILE "${envs[@]}" bash -c 'exec "$@" 2>"'"$T/$name.err"'"' bash \
		"$ATLAS" --cert "$EC_CERT" --key "$key" --ports "$PORT" "${extra[@]}" -- \
		"$PY" -m http.server -b 127.0.0.1 -d "$T/www" "$PORT"
}
# by_hand NAME KEY: the same server with the library loaded by hand (no wrapper).
by_hand() {
	local name=$1 key=$2
	PORT=$(free_port)
	start_server "$name" "$PORT" -- env -u SSLKEYLOGFILE -u ATLAS_KEY_MODE_WARNED LD_PRELOAD="$LIBATLAS" \
		ATLAS_PORTS="$PORT" ATLAS_CERT="$EC_CERT" ATLAS_KEY="$key" \
		bash -c 'exec "$@" 2>"'"$T/$name.err"'"' bash "$PY" -m http.server -b 127.0.0.1 -d "$T/www" "$PORT"
}
get() { hcurl "$PORT" / "$@"; }

# Regular files a process has open for writing, stdout and stderr aside.
write_files() {
	local f n=0 flags
	for f in /proc/"$1"/fd/*; do
		case ${f##*/} in 0 | 1 | 2) continue ;; esac
		[ -f "$(readlink "$f")" ] || continue
		flags=$(awk '/^flags:/ { print $2 }' /proc/"$1"/fdinfo/"${f##*/}")
		[ $((8#$flags & 3)) -ne 0 ] && n=$((n + 1))
	done
	echo "$n"
}

# ---- SSLKEYLOGFILE set, --log-level debug ---------------------------------------------------
KEYLOG=$T/server-keys.log
if ! srv keys "$EC_KEY" SSLKEYLOGFILE="$KEYLOG" -- --log-level debug; then
	fail "the server starts with SSLKEYLOGFILE set"
	finish
fi
line="SSLKEYLOGFILE is set: TLS session secrets are written to $KEYLOG; anyone who can read it can decrypt this server's traffic"
wait_until 5 grep -qF "$line" "$T/keys.err"
is_eq "SSLKEYLOGFILE: one warn line at the listener" "$(grep -cF "atlas: warn: fd 3: $line" "$T/keys.err")" 1
is_eq "SSLKEYLOGFILE: the file is created mode 600" "$(stat -c %a "$KEYLOG" 2>&1)" 600
is_eq "SSLKEYLOGFILE: the server has one file open for writing (the key log)" "$(write_files "$(server_pid keys)")" 1

# Each client writes its own key log.
SSLKEYLOGFILE=$T/c-curl13.log check "curl, TLS 1.3, with its own key log" get --tlsv1.3 -o /dev/null
SSLKEYLOGFILE=$T/c-curl12.log check "curl, TLS 1.2, with its own key log" get --tlsv1.2 --tls-max 1.2 -o /dev/null
for v in 1_3 1_2; do
	out=$(printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' | timeout 15 openssl s_client -quiet \
		-connect "127.0.0.1:$PORT" -servername localhost -CAfile "$CA" -verify_return_error \
		"-tls$v" -keylogfile "$T/c-sclient$v.log" 2>/dev/null)
	is_match "openssl s_client -tls$v -keylogfile: the page" "$out" "$WANT"
done
for v in TLSv1_3 TLSv1_2; do
	check "python ssl, $v, keylog_filename" "$PY" - "$PORT" "$CA" "$v" "$T/c-py$v.log" <<-'PYEOF'
		import socket, ssl, sys
		port, ca, v, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
		ctx = ssl.create_default_context(cafile=ca)
		ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, v)
		ctx.keylog_filename = log
		with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
		    with ctx.wrap_socket(s, server_hostname="localhost") as t:
		        t.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
		        data = b""
		        while chunk := t.recv(4096):
		            data += chunk
		assert data.startswith(b"HTTP/1.0 200"), data[:40]
	PYEOF
done

secrets=()
for f in "$T"/c-*.log; do
	name=$(basename "$f" .log)
	n=$(grep -cE '^[A-Z_0-9]+ [0-9a-f]{64} [0-9a-f]{64,}$' "$f")
	missing=$(grep -E '^[A-Z_0-9]+ [0-9a-f]{64} [0-9a-f]{64,}$' "$f" | grep -vxFf "$KEYLOG" | head -n 3)
	case $name in *13* | *1_3*) want='CLIENT_TRAFFIC_SECRET_0' ;; *) want='CLIENT_RANDOM' ;; esac
	if [ "$n" -ge 1 ] && grep -q "^$want " "$f" && [ -z "$missing" ]; then
		pass "SSLKEYLOGFILE: the $n secret lines of $name (label, client random, secret; $want among them) are in the server's key log"
	else
		fail "SSLKEYLOGFILE: the secret lines of $name are in the server's key log ($n lines; missing: ${missing:-none})"
	fi
	while read -r _ _ s; do secrets+=("$s"); done < <(grep -E '^[A-Z_0-9]+ [0-9a-f]{64} [0-9a-f]+$' "$f")
done
stop_server keys
note "$(wc -l <"$KEYLOG") lines in the server's key log; ${#secrets[@]} client-side secrets; $(grep -c 'atlas:' "$T/keys.err") lines in its stderr"
# Not a vacuous grep: at debug the server logged each of the 6 connections.
is_between "at debug, the server logged every connection" "$(grep -cE '^atlas: info: fd [0-9]+ peer .* path ' "$T/keys.err")" 6 6
leaked=0
for s in "${secrets[@]}"; do
	grep -qiF "$s" "$T/keys.err" && leaked=$((leaked + 1))
done
is_eq "none of the ${#secrets[@]} session secrets is in the server's stderr at debug" "$leaked" 0
leaked=0
while read -r l; do
	grep -qF "$l" "$T/keys.err" && leaked=$((leaked + 1))
done < <(grep -v '^-----' "$EC_KEY")
scalar=$(openssl pkey -in "$EC_KEY" -text -noout | awk '/^priv:/ { on = 1; next } /^[a-z]/ { on = 0 } on' | tr -d ' :\n')
[ ${#scalar} -ge 64 ] || fail "the private scalar's hex was read from openssl pkey -text (got '$scalar')"
grep -qiF "$scalar" "$T/keys.err" && leaked=$((leaked + 1))
grep -qiF "${scalar:2:40}" "$T/keys.err" && leaked=$((leaked + 1))
is_eq "the private key (PEM body lines, the private scalar's hex) is not in the server's stderr" "$leaked" 0

# ---- no session cache, tickets resume ----------------------------------------------------------
# The server keeps no TLS 1.2 session (and so no master secret) once a connection is set up;
# resumption still works, by session ticket.
if srv resume "$EC_KEY"; then
	for v in tls1_2 tls1_3; do
		# A whole request and response: the ticket has arrived before the client leaves.
		printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' | timeout 10 openssl s_client -quiet \
			-connect "127.0.0.1:$PORT" -servername localhost -CAfile "$CA" "-$v" \
			-sess_out "$T/sess-$v" >/dev/null 2>&1
		out=$(printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' | timeout 10 openssl s_client \
			-connect "127.0.0.1:$PORT" -servername localhost -CAfile "$CA" "-$v" -sess_in "$T/sess-$v" 2>/dev/null)
		is_match "-$v: the session resumes by ticket" "$out" "^Reused, "
	done
	stop_server resume
else
	fail "the server starts (resumption)"
fi

# ---- SSLKEYLOGFILE unset --------------------------------------------------------------------
if srv nokeys "$EC_KEY" -- --log-level debug; then
	SSLKEYLOGFILE=$T/client-only.log check "SSLKEYLOGFILE unset on the server: curl still works" get -o /dev/null
	is_eq "SSLKEYLOGFILE unset: no file open for writing" "$(write_files "$(server_pid nokeys)")" 0
	is_eq "SSLKEYLOGFILE unset: no warn line about it" "$(grep -c SSLKEYLOGFILE "$T/nokeys.err")" 0
	stop_server nokeys
else
	fail "the server starts without SSLKEYLOGFILE"
fi

# ---- the private key's mode -------------------------------------------------------------------
for m in 644 640 600; do
	cp "$EC_KEY" "$T/k$m.key"
	chmod "$m" "$T/k$m.key"
done
keyline() { grep -c "private key file" "$T/$1.err"; }
if srv wrap644 "$T/k644.key"; then
	check "a key readable by others (wrapper): the server still serves" get -o /dev/null
	is_eq "a key readable by others (wrapper): one warning line, from the wrapper" "$(keyline wrap644)" 1
	is_match "... which says what and how to fix it" "$(cat "$T/wrap644.err")" \
		"^atlas-preload.sh: warning: the private key file $T/k644.key is accessible to group or others \\(mode 0644\\): only its owner should read it \\(chmod 600\\)"
	stop_server wrap644
else
	fail "a key readable by others (wrapper): the server starts"
fi
if srv wrap600 "$T/k600.key"; then
	check "a mode 600 key (wrapper): the server serves" get -o /dev/null
	is_eq "a mode 600 key (wrapper): no warning" "$(keyline wrap600)" 0
	stop_server wrap600
else
	fail "a mode 600 key (wrapper): the server starts"
fi
if by_hand hand640 "$T/k640.key"; then
	check "a key readable by its group (library by hand): the server serves" get -o /dev/null
	get -o /dev/null
	is_eq "a key readable by its group (library by hand): one warn line" "$(keyline hand640)" 1
	is_match "... at the listener, with the mode" "$(cat "$T/hand640.err")" \
		"^atlas: warn: the private key file $T/k640.key is accessible to group or others \\(mode 0640\\)"
	stop_server hand640
else
	fail "a key readable by its group (library by hand): the server starts"
fi
if by_hand hand600 "$T/k600.key"; then
	check "a mode 600 key (library by hand): the server serves" get -o /dev/null
	is_eq "a mode 600 key (library by hand): nothing logged" "$(grep -c 'atlas:' "$T/hand600.err")" 0
	stop_server hand600
else
	fail "a mode 600 key (library by hand): the server starts"
fi
finish
