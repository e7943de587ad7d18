#!/usr/bin/env bash
# Readiness on the userspace path: an event-loop server that reads 100 bytes per
# wake-up (tests/e2e/progs/evsrv.c) leaves the rest of each TLS record decrypted in
# OpenSSL, where the socket shows nothing. epoll (level- and edge-triggered), poll and
# select, and their variants with a signal mask (epoll_pwait, epoll_pwait2, ppoll,
# pselect), must still report the fd readable until the server has read it all.
source "$(dirname "$0")/lib.sh"
make_certs
cd "$ROOT" || exit 1

cc -O1 -g -Wall -o "$T/evsrv" tests/e2e/progs/evsrv.c || {
	fail "cannot build tests/e2e/progs/evsrv.c"
	finish
}

# echo_check PORT SIZE [RECORDS]: sends SIZE random bytes over TLS, expects them back
# within 10 s. With RECORDS, the bytes go as that many records corked into one
# segment: the server's read-ahead takes them all from the socket in one read, and
# after its first 100-byte read the rest wait whole in Atlas, not in the socket.
echo_check() {
	"$PY" - "$1" "$CA" "$2" "${3:-0}" <<'PYEOF'
import os, socket, ssl, sys, time
port, ca, size, records = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                    server_hostname="localhost")
payload = os.urandom(size)
if records:
    step = -(-size // records)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    for i in range(0, size, step):
        s.sendall(payload[i:i + step])
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
else:
    s.sendall(payload)
got, deadline = b"", time.time() + 10
try:
    while len(got) < size and time.time() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
except socket.timeout:
    pass
print("echoed" if got == payload else f"short: {len(got)} of {size} bytes back")
PYEOF
}

for mode in epoll-lt epoll-et epoll-pwait epoll-pwait2 poll ppoll select pselect; do
	port=$(free_port)
	if ! start_server "$mode" "$port" -- ./atlas-preload.sh --cert "$EC_CERT" --key "$EC_KEY" \
		--ports "$port" -- "$T/evsrv" "$port" "$mode"; then
		fail "$mode: the server starts"
		continue
	fi
	# One record (5000 bytes), then many records (200 KB) on one connection each.
	for size in 5000 200000; do
		is_eq "$mode: $size bytes come back whole while the server reads 100 per wake-up" \
			"$(echo_check "$port" "$size" 2>&1)" echoed
	done
	is_eq "$mode: 50 records of 40 bytes in one segment come back whole" \
		"$(echo_check "$port" 2000 50 2>&1)" echoed
	stop_server "$mode"
done
finish
