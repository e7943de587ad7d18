#!/usr/bin/env bash
# 30: inside User-Mode Linux (tests/uml/run.sh), a kernel that has kTLS, which
# the host's has not:
#   - tests/uml/ktls-probe.c, built here with cc, proves the kernel does TLS the
#     way Atlas's kTLS offload will use it (TLS_TX/TLS_RX for TLS 1.2 and 1.3,
#     AES-GCM and ChaCha20-Poly1305, records checked against OpenSSL, sendfile,
#     alerts through cmsg, /proc/net/tls_stat counters);
#   - python3 -m http.server under ./atlas-preload.sh --log-level info serves
#     files to curl --cacert over loopback, and Atlas logs the connection.
# One UML boot runs both (about 5 s in all here). Without linux.uml this is a
# failure, never a silent skip: install user-mode-linux (make deps-check does).
. "$(dirname "$0")/lib.sh"

UML_RUN=$ROOT/tests/uml/run.sh
UML_BIN=${ATLAS_UML_BINARY:-$(command -v linux.uml 2>/dev/null || echo /usr/bin/linux.uml)}
if [ ! -x "$UML_BIN" ]; then
	fail "uml: linux.uml missing (install user-mode-linux)"
	exit 1
fi
PORT=8443 # inside UML: its own network stack, nothing else listens there

# ---- on the host: the probe, certificates, files ----------------------------------

PROBE=$T/ktls-probe
check "uml: tests/uml/ktls-probe.c builds" \
	cc -O2 -std=c11 -Wall -Wextra -Werror -o "$PROBE" "$ROOT/tests/uml/ktls-probe.c" -lcrypto

make_certs
W=$T/www
mkdir -p "$W"
printf 'served inside UML %s\n' "$(openssl rand -hex 16)" >"$W/index.html"
head -c 300001 /dev/urandom >"$W/big.bin" # many TLS records

# ---- inside UML ----------------------------------------------------------------------

# Results go to files in $T (the host's /tmp is the same directory inside UML);
# the host checks them afterwards. Ends with exit 42, which run.sh must hand back.
{
	printf 'T=%q ROOT=%q PORT=%q CA=%q CERT=%q KEY=%q\n' "$T" "$ROOT" "$PORT" "$CA" "$EC_CERT" "$EC_KEY"
	cat <<-'EOF'
		if [ -x "$T/ktls-probe" ]; then
			"$T/ktls-probe" >"$T/probe.out" 2>&1
			echo $? >"$T/probe.rc"
		fi

		cd "$ROOT" || exit 1
		./atlas-preload.sh --cert "$CERT" --key "$KEY" --ports "$PORT" --log-level info -- \
			/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$PORT" \
			>"$T/server.log" 2>&1 &
		server=$!
		# Poll /proc/net/tcp for the listening socket (a probe connection would be
		# one more connection in Atlas's log); python3 takes seconds to start here.
		hex=$(printf '%04X' "$PORT")
		start=$(date +%s%N)
		listening=no
		for i in $(seq 600); do
			if awk -v h=":$hex" '$2 ~ (h "$") && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp; then
				listening=yes
				break
			fi
			kill -0 "$server" 2>/dev/null || break
			sleep 0.1
		done
		echo "$listening $((($(date +%s%N) - start) / 1000000))" >"$T/listen"

		if [ "$listening" = yes ]; then
			for f in index.html big.bin; do
				curl -sS --max-time 20 --cacert "$CA" --resolve "localhost:$PORT:127.0.0.1" \
					-o "$T/got-$f" "https://localhost:$PORT/$f" >"$T/curl-$f.err" 2>&1
				echo $? >"$T/curl-$f.rc"
			done
			# Atlas logs a connection once its handshake is done: wait for the line.
			for i in $(seq 50); do
				grep -q '^atlas: info: .*TLSv1\.' "$T/server.log" && break
				sleep 0.1
			done
		fi
		kill "$server" 2>/dev/null
		wait "$server" 2>/dev/null
		exit 42
	EOF
} >"$T/inside.sh"

bg_start uml -- "$UML_RUN" --timeout 100 -- bash "$T/inside.sh"
wait "$BG_PID"
rc=$?
case $rc in
42) pass "uml: tests/uml/run.sh booted UML, ran the scenario in it and returned its exit status (42)" ;;
77) fail "uml: cannot run UML here: $(grep -h '^tests/uml/run.sh: ' "$T/uml.out" | tail -n 1)" ;;
*)
	fail "uml: tests/uml/run.sh exited with $rc, not the scenario's 42"
	note_file "$T/uml.out"
	;;
esac

# ---- the kTLS probe -------------------------------------------------------------------

if [ -f "$T/probe.out" ]; then
	while IFS= read -r line; do
		case $line in
		"ok - "*) pass "uml: kTLS: ${line#ok - }" ;;
		"not ok - "*) fail "uml: kTLS: ${line#not ok - }" ;;
		*) note "${line#\# }" ;;
		esac
	done <"$T/probe.out"
	probe_rc=$(cat "$T/probe.rc" 2>/dev/null || echo none)
	grep -q '^ok - ' "$T/probe.out" || fail "uml: ktls-probe reported no checks (exit status $probe_rc)"
	[ "$probe_rc" = 0 ] || grep -q '^not ok - ' "$T/probe.out" ||
		fail "uml: ktls-probe exited with status $probe_rc"
elif [ -x "$PROBE" ]; then
	fail "uml: ktls-probe did not run inside UML"
fi

# ---- Atlas inside UML ------------------------------------------------------------------

read -r listening ms <"$T/listen" 2>/dev/null || listening=
if [ "$listening" = yes ]; then
	pass "uml: python3 http.server under atlas-preload.sh listens on 127.0.0.1:$PORT inside UML (after $ms ms)"
else
	fail "uml: python3 http.server under atlas-preload.sh did not listen on $PORT inside UML"
	note_file "$T/server.log"
fi
if [ "$listening" = yes ]; then
	for f in index.html big.bin; do
		if [ "$(cat "$T/curl-$f.rc" 2>/dev/null)" = 0 ] && [ -f "$T/got-$f" ] &&
			[ "$(sha256_of "$T/got-$f")" = "$(sha256_of "$W/$f")" ]; then
			pass "uml: curl --cacert fetched $f ($(stat -c %s "$W/$f") bytes) intact through Atlas inside UML"
		else
			fail "uml: curl --cacert did not fetch $f intact (curl exit $(cat "$T/curl-$f.rc" 2>/dev/null))"
			note_file "$T/curl-$f.err"
		fi
	done
	line=$(grep -m 1 '^atlas: info: .*TLSv1\.' "$T/server.log")
	if [ -n "$line" ]; then
		pass "uml: Atlas logged the connection at info level (${line#atlas: info: })"
	else
		fail "uml: no 'atlas: info: ... TLSv1.x' line in the server's log"
		note_file "$T/server.log"
	fi
fi

finish
