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

# A close, not a shutdown (tests/e2e/closer.py): the server writes until the socket is
# full (EAGAIN, and still after 0.2 s), to a client that waits 2 s before reading, and closes; close_notify
# must still follow the bytes, as the kernel's FIN follows a closed socket's queue (on
# this path the bytes Atlas holds always take it with them; 32 runs the same on the
# kernel path, where 3eda4fa dropped it). An abortive close (SO_LINGER on, 0 s) must reach the client as a reset or a bare
# FIN, never as close_notify, which would make the bytes before it look complete.
for mode in full abort; do
	port=$(free_port)
	for how in plain atlas; do
		if [ $how = plain ]; then
			start_server "close-$mode-$how" "$port" -- "$PY" "$E2E_DIR/closer.py" serve "$port" "$mode"
		else
			start_server "close-$mode-$how" "$port" -- ./atlas-preload.sh --cert "$EC_CERT" \
				--key "$EC_KEY" --ports "$port" -- "$PY" "$E2E_DIR/closer.py" serve "$port" "$mode"
		fi
		if [ $how = plain ]; then
			# The kernel's answer, read with TLS off: the same server, a TCP client.
			got=$(timeout 30 "$PY" - "$port" "$mode" <<'PYEOF' 2>&1
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"go\n")
if sys.argv[2] == "full":
    time.sleep(1)
n, end = 0, "eof"
try:
    while chunk := s.recv(65536):
        n += len(chunk)
except ConnectionResetError:
    end = "reset"
print(f"got {n}, {end}")
PYEOF
			)
		else
			got=$(timeout 30 "$PY" "$E2E_DIR/closer.py" fetch "$port" "$CA" "$mode")
		fi
		wrote=$(sed -n 's/^closer: wrote //p' "$(server_log "close-$mode-$how")")
		case $mode/$how in
		full/plain) is_eq "plain TCP: close with the socket full: every byte, then the FIN" "$got" "got $wrote, eof" ;;
		full/atlas) is_eq "under Atlas: close with the socket full: every byte, then close_notify" "$got" \
			"got $wrote, close_notify" ;;
		abort/plain) is_match "plain TCP: an abortive close reaches the client as a reset" "$got" ", reset$" ;;
		abort/atlas) is_match "under Atlas: an abortive close reaches the client as a reset or a bare FIN, not close_notify" \
			"$got" ", (reset|eof)$" ;;
		esac
		stop_server "close-$mode-$how"
	done
done

# Closed connections with bytes owed wait (linger.c) for at most a quarter of the fds
# the process may open: clients that never read must not take the host's fds. The
# same server under `ulimit -n 64`: 24 clients that send their line and read nothing;
# 16 closes wait, the other 8 end at once, with one warning each, and the server goes
# on accepting.
port=$(free_port)
start_server close-cap "$port" -- bash -c 'ulimit -n 64 && exec "$@"' - ./atlas-preload.sh --log-level info \
	--cert "$EC_CERT" --key "$EC_KEY" --ports "$port" -- "$PY" "$E2E_DIR/closer.py" serve "$port" full
got=$(timeout 60 "$PY" - "$port" "$CA" <<'PYEOF' 2>&1
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
silent = []
for _ in range(24):  # each one's handshake waits for the server's previous close
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20),
                        server_hostname="localhost")
    s.sendall(b"go\n")
    silent.append(s)
last = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20),
                       server_hostname="localhost")
last.sendall(b"go\n")
print("handshake", last.version(), "first bytes", len(last.recv(65536)))
last.close()
PYEOF
)
is_match "ulimit -n 64: the server still accepts and answers after 24 silent clients" "$got" \
	"^handshake TLSv1.3 first bytes [1-9]"
# The last client left after its first bytes: its close may fill the socket first, or not.
wait_until 10 eval '[ "$(grep -c "^closer: " "$(server_log close-cap)")" -ge 25 ]'
log=$(cat "$(server_log close-cap)")
is_eq "ulimit -n 64: 16 closes wait for their bytes to go (a quarter of RLIMIT_NOFILE)" \
	"$(grep -c 'bytes unsent: sending them after close' <<<"$log")" 16
over=$(($(grep -c '^closer: wrote' <<<"$log") - 16))
is_between "ulimit -n 64: the other closes with bytes owed (8 or 9) end at once" "$over" 8 9
is_eq "ulimit -n 64: ... each with one warning" \
	"$(grep -c '^atlas: warn: .*closed with bytes unsent: 16 closed connections wait already (a quarter of RLIMIT_NOFILE)$' <<<"$log")" "$over"
stop_server close-cap
finish
