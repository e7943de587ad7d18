#!/usr/bin/env bash
# 26: memory per idle connection on the userspace path (this host has no kTLS),
# measured on nginx (one worker, epoll) with 1000 idle keep-alive connections
# (tests/e2e/idle-lib.sh, tests/e2e/progs/idle_clients.c): nginx alone with
# plaintext clients (what nginx itself costs), nginx under Atlas, and nginx's own
# TLS (listen ... ssl) for reference. Atlas's cost per connection is the growth
# under Atlas minus the plaintext growth, over 1000.
#
# Bound: an idle userspace connection keeps OpenSSL's SSL object (its record layer
# and the session; SSL_MODE_RELEASE_BUFFERS has given the 16 KiB+ record buffers
# back), which nginx's own TLS keeps too: measured about 14 KiB for both. Atlas
# must stay under 32 KiB and within 2x nginx's own TLS + 2 KiB. After the clients
# close, the worker's fds are back at the baseline, and a second wave of 1000
# fits in the memory the first one left, and closing it too leaves no more
# memory and no more fds (nothing is kept per connection: glibc keeps freed
# memory, so RSS itself does
# not fall back; with Atlas the first closes grow it by about 1 KiB a connection,
# once: the second wave and its close reuse that memory and add none).
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/idle-lib.sh"

N=${IDLE_N:-1000}
[ -x /usr/sbin/nginx ] || {
	fail "$SCENARIO: nginx missing (apt-get install nginx)"
	exit 1
}
make_certs
IDLE_WWW=$T/www
mkdir -p "$IDLE_WWW"
echo "hello from nginx" >"$IDLE_WWW/index.html"
idle_build "$T/bin" || {
	fail "$SCENARIO: tests/e2e/progs/idle_clients.c does not build with -Wall -Wextra -Werror"
	note_file "$T/bin/cc-idle_clients.log"
	exit 1
}

# The control of 36's scan for secrets in the server's memory: on this path the live SSL
# objects hold their sessions' traffic secrets, and memscan.py must find them.
scan() { "$PY" "$E2E_DIR/memscan.py" "$1" "$T/client-keys.log" 20 >"$T/scan.out" 2>&1; }
declare -A B W
for mode in plain atlas nginx-ssl; do
	keys=()
	IDLE_HOOK=
	if [ "$mode" = atlas ]; then
		keys=(--keylog "$T/client-keys.log")
		IDLE_HOOK=scan
	fi
	if IDLE_ROUNDS=2 idle_measure "$mode" "$mode" "$N" --tls 1.3 "${keys[@]}"; then
		pass "$mode: nginx held $N idle connections"
	else
		fail "$mode: nginx held $N idle connections: $IDLE_ERR"
		continue
	fi
	B[$mode]=$IDLE_BEFORE W[$mode]=$IDLE_WITH
	note "$mode: RSS ${IDLE_BEFORE} KiB before, ${IDLE_WITH} KiB with $N, ${IDLE_AFTER} KiB after they closed, ${IDLE_WITH2:-?} KiB with a second wave, ${IDLE_AFTER2:-?} KiB after it closed; worker fds $IDLE_FD_BEFORE/$IDLE_FD_WITH/$IDLE_FD_AFTER/${IDLE_FD_AFTER2:-?}"
	is_eq "$mode: the worker's fds are back at the baseline after the clients close" "$IDLE_FD_AFTER" "$IDLE_FD_BEFORE"
	if [ -n "$IDLE_WITH2" ] && [ -n "$IDLE_AFTER2" ]; then
		slack=$(((IDLE_WITH - IDLE_BEFORE) / 20 + 256))
		first=$((IDLE_AFTER > IDLE_WITH ? IDLE_AFTER : IDLE_WITH))
		is_between "$mode: a second wave of $N fits in the memory the first left (KiB)" \
			"$IDLE_WITH2" 0 $((first + slack))
		is_between "$mode: closing the second wave keeps nothing more (KiB)" \
			"$IDLE_AFTER2" 0 $((IDLE_AFTER + slack))
		is_eq "$mode: the worker's fds are back at the baseline after the second wave closes" \
			"$IDLE_FD_AFTER2" "$IDLE_FD_BEFORE"
	else
		fail "$mode: a second wave of $N connections: $IDLE_ERR"
	fi
done
[ -n "${W[plain]:-}" ] && [ -n "${W[atlas]:-}" ] && [ -n "${W[nginx-ssl]:-}" ] || {
	fail "$SCENARIO: a measurement is missing"
	exit 1
}
is_match "control: memscan.py finds the live userspace sessions' traffic secrets in the worker" \
	"$(tail -n 1 "$T/scan.out" 2>&1)" '^secrets 60 found [1-9][0-9]*$'
atlas=$(idle_per_conn "${B[atlas]}" "${W[atlas]}" "${B[plain]}" "${W[plain]}" "$N")
own=$(idle_per_conn "${B[nginx-ssl]}" "${W[nginx-ssl]}" "${B[plain]}" "${W[plain]}" "$N")
note "userspace path, TLS 1.3, nginx: Atlas costs $atlas bytes per idle connection; nginx's own TLS $own"
is_between "Atlas's userspace cost per idle connection is under 32 KiB (bytes)" "$atlas" 0 32767
is_between "Atlas's userspace cost is within 2x nginx's own TLS + 2 KiB (bytes)" "$atlas" 0 $((2 * own + 2048))
finish
