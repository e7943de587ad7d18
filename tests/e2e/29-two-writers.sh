#!/usr/bin/env bash
# Two threads write one connection at once (shim/engine.c: take_over_record).
# OpenSSL's SSL_write holds a record it could only partly send, and its retry
# must offer the same bytes; a second thread's write, or a retry of another
# length after EAGAIN, must not be taken for that retry (it would count bytes
# it never sent, and the first write's bytes would go twice). Atlas hands such
# a record to its own buffer and counts it as written, as the kernel does with
# its queue. tests/e2e/progs/duowrite.c is the server (blocking writers, or
# non-blocking ones that retry with a new length after EAGAIN; tiny or default
# send buffers), tests/e2e/duowrite.py the client, which splits the stream back
# into the two writers' streams and checks each byte. The same rounds on plain
# TCP first show that the kernel keeps these promises.
source "$(dirname "$0")/lib.sh"
make_certs
cd "$ROOT" || exit 1

cc -O1 -g -Wall -pthread -o "$T/duowrite" tests/e2e/progs/duowrite.c || {
	fail "cannot build tests/e2e/progs/duowrite.c"
	finish
}
ROUNDS=${ATLAS_DUOWRITE_ROUNDS:-60}
WANT="^$ROUNDS rounds: both writers' bytes, in order, then the end of the stream"

duo() {
	timeout 300 "$PY" "$E2E_DIR/duowrite.py" "$@" 2>&1
}

port=$(free_port)
if start_server plain "$port" -- "$T/duowrite" "$port"; then
	is_match "plain TCP: both writers' bytes, each in order, then the FIN ($ROUNDS rounds)" \
		"$(duo "$port" --plain "$ROUNDS")" "$WANT"
	is_no_match "plain TCP: every write counted arrived" "$(cat "$(server_log plain)")" \
		"duowrite: "
	stop_server plain
else
	fail "duowrite starts"
fi

port=$(free_port)
if ! start_server tls "$port" -- ./atlas-preload.sh --cert "$EC_CERT" --key "$EC_KEY" \
	--ports "$port" -- "$T/duowrite" "$port"; then
	fail "duowrite starts under Atlas"
	finish
fi
is_match "under Atlas: both writers' bytes, each in order, then close_notify ($ROUNDS rounds)" \
	"$(duo "$port" "$CA" "$ROUNDS")" "$WANT"
is_no_match "under Atlas: every write counted arrived, and no write failed" \
	"$(cat "$(server_log tls)")" "duowrite: "
is_no_match "no warning or error from Atlas" "$(cat "$(server_log tls)")" "atlas: (warning|error)"
if server_alive tls; then
	pass "the server is still running"
else
	fail "the server is still running"
	note_file "$(server_log tls)"
fi
stop_server tls
finish
