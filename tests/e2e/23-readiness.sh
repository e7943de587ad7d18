#!/usr/bin/env bash
# Readiness on the userspace path: an event-loop server that reads 100 bytes per
# wake-up (tests/e2e/progs/evsrv.c) leaves the rest of each TLS record decrypted in
# OpenSSL, where the socket shows nothing. epoll (level- and edge-triggered), poll and
# select must still report the fd readable until the server has read it all.
source "$(dirname "$0")/lib.sh"
make_certs
cd "$ROOT" || exit 1

cc -O1 -g -Wall -o "$T/evsrv" tests/e2e/progs/evsrv.c || {
	fail "cannot build tests/e2e/progs/evsrv.c"
	finish
}

# echo_check PORT SIZE: sends SIZE random bytes over TLS, expects them back within 10 s.
echo_check() {
	"$PY" - "$1" "$CA" "$2" <<'PYEOF'
import os, socket, ssl, sys, time
port, ca, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                    server_hostname="localhost")
payload = os.urandom(size)
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

for mode in epoll-lt epoll-et poll select; do
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
	stop_server "$mode"
done
finish
