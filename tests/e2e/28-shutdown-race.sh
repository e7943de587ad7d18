#!/usr/bin/env bash
# shutdown(SHUT_WR) in one thread while another writes (mostly under TCP_CORK)
# and a third waits on the socket: the races around a shutdown that must wait
# for bytes not yet out (shim/engine.c: wr_closed, shut_wr; shim/tls.c: the send
# queue).
# tests/e2e/progs/shutrace.c is the server (a thread per connection, blocking
# sockets), tests/e2e/shutrace.py the client; each round is one connection,
# with its own pause before the shutdown, buffer sizes and writes. What TCP
# promises must hold over TLS too: every byte a write counted reaches the
# client, then the end of the stream (close_notify, then the FIN), never
# stuck behind bytes that had to wait; a write begun after shutdown() returned
# fails with EPIPE. Stalled rounds (the client reads nothing for 3 s, the
# writer waits for room) check that the shutdown releases the writer within 2 s
# (the kernel's does at once) and that what it counted still arrives once the
# client reads, then the end. The same rounds on plain TCP first show that the kernel keeps those
# promises, so that the test asks no more of Atlas than of it.
source "$(dirname "$0")/lib.sh"
make_certs
cd "$ROOT" || exit 1

cc -O1 -g -Wall -pthread -o "$T/shutrace" tests/e2e/progs/shutrace.c || {
	fail "cannot build tests/e2e/progs/shutrace.c"
	finish
}
ROUNDS=${ATLAS_SHUTRACE_ROUNDS:-600}

# race PORT CA|--plain ROUNDS [--stall]: the client's rounds.
race() {
	timeout 300 "$PY" "$E2E_DIR/shutrace.py" "$@" 2>&1
}

port=$(free_port)
if start_server plain "$port" -- "$T/shutrace" "$port"; then
	is_match "plain TCP: every byte counted, then the FIN" "$(race "$port" --plain 200)" \
		"^200 rounds: every byte, then the end of the stream"
	is_match "plain TCP, the client stalled: every byte counted, then the FIN" \
		"$(race "$port" --plain 3 1 --stall)" "^3 rounds: every byte, then the end of the stream"
	is_no_match "plain TCP: the server saw nothing wrong (stalled writers released within 2 s too)" \
		"$(cat "$(server_log plain)")" "shutrace: "
	stop_server plain
else
	fail "shutrace starts"
fi

port=$(free_port)
if ! start_server tls "$port" -- ./atlas-preload.sh --cert "$EC_CERT" --key "$EC_KEY" \
	--ports "$port" -- "$T/shutrace" "$port"; then
	fail "shutrace starts under Atlas"
	finish
fi
is_match "under Atlas: every byte counted, then close_notify and the FIN ($ROUNDS rounds)" \
	"$(race "$port" "$CA" "$ROUNDS")" "^$ROUNDS rounds: every byte, then the end of the stream"
is_match "under Atlas, the client stalled: every byte counted, then close_notify and the FIN" \
	"$(race "$port" "$CA" 3 1 --stall)" "^3 rounds: every byte, then the end of the stream"
is_no_match "under Atlas: the server saw nothing wrong (every write counted arrived; none after shutdown succeeded; stalled writers released within 2 s)" \
	"$(cat "$(server_log tls)")" "shutrace: "
survived tls
stop_server tls
finish
