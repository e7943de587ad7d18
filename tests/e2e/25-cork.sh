#!/usr/bin/env bash
# TCP_CORK on the userspace path (shim/engine.c): what a server writes while
# corked goes out as one TLS record when it uncorks, and bytes the server
# counts as written always reach the client, whatever it does next: uncork into
# a full socket and wait for the next request, close, shut down, or wait without
# uncorking. tests/e2e/progs/corksrv.c is the server (one thread, epoll,
# non-blocking), tests/e2e/corkclient.py the client (it counts records on the
# wire). Against the 04/40 checks, which show nginx (tcp_nopush on) serving
# files whole, these pin down each case on its own.
source "$(dirname "$0")/lib.sh"
make_certs
cd "$ROOT" || exit 1

cc -O1 -g -Wall -o "$T/corksrv" tests/e2e/progs/corksrv.c || {
	fail "cannot build tests/e2e/progs/corksrv.c"
	finish
}
"$PY" -c 'import sys; sys.stdout.buffer.write(bytes(i % 251 for i in range(4096)))' >"$T/file"

port=$(free_port)
if ! start_server cork "$port" -- ./atlas-preload.sh --cert "$EC_CERT" --key "$EC_KEY" \
	--ports "$port" --log-level info -- "$T/corksrv" "$port" "$T/file"; then
	fail "corksrv starts under Atlas"
	finish
fi
ask() { timeout 30 "$PY" "$E2E_DIR/corkclient.py" "$port" "$CA" "$1" 2>&1; }

is_eq "cork, write, write, uncork: one record" "$(ask small)" "small: all 4100 bytes in 1 record"
is_eq "the same writes uncorked: a record each" "$(ask nocork)" "nocork: all 4100 bytes in 2 records"
is_eq "cork, writev, sendfile, uncork (nginx's tcp_nopush): one record" "$(ask sendfile)" \
	"sendfile: all 4196 bytes in 1 record"
is_eq "getsockopt(TCP_CORK) says what the server set" "$(ask getcork)" "getsockopt says 1 0"
is_eq "corked bytes go out when the server waits without uncorking" "$(ask forget)" \
	"forget: all 500 bytes within 1 s"
is_eq "uncorked into a full socket, then waiting for a request: the bytes still arrive" \
	"$(ask full)" "full: all 10000 bytes, then pong"
is_eq "the same on a blocking fd (the uncork waits for room): the bytes still arrive" \
	"$(ask blockfull)" \
	"blockfull: all 10000 bytes, then pong"
is_eq "shutdown(SHUT_WR) with the socket full: the bytes, then close_notify" "$(ask shut)" \
	"shut: all 10000 bytes, then close_notify"
for i in 1 2 3; do
	is_eq "closed with the socket full ($i): the bytes, then close_notify" "$(ask close)" \
		"close: all 10000 bytes, then close_notify"
done
is_match "the close with bytes unsent handed them on (linger.c), logged" \
	"$(cat "$(server_log cork)")" "closed with [0-9]+ bytes unsent: sending them after close"
is_no_match "no warning or error from Atlas" "$(cat "$(server_log cork)")" "atlas: (warn|error|fatal)"
is_no_match "the server saw nothing wrong (an uncork on a non-blocking fd never waits; a write after shutdown fails with EPIPE)" \
	"$(cat "$(server_log cork)")" "corksrv: "
if server_alive cork; then
	pass "the server is still running (no event for an fd it closed)"
else
	fail "the server is still running (no event for an fd it closed)"
	note_file "$(server_log cork)"
fi
stop_server cork

# nginx itself (tcp_nopush, sendfile, a 16 KiB send buffer), to readers that wait
# before reading: a response's last bytes, written while the record before them
# still waits for room, must get EAGAIN (nginx then waits for room and writes them
# again), not be counted and left behind the queue while nginx waits for the next
# request. 9385a0a left 21 of 57 such responses short until keepalive_timeout.
mkdir -p "$T/ngx/www"
for k in 40 64 66 70 78 96 100 110 112 120; do
	head -c $((k * 1024 + 123)) /dev/urandom >"$T/ngx/www/f$k.bin"
done
nport=$(free_port)
cat >"$T/ngx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $T/ngx/nginx.pid;
error_log stderr warn;
events { use epoll; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_timeout 60s;
	client_body_temp_path $T/ngx/body;
	proxy_temp_path $T/ngx/proxy;
	fastcgi_temp_path $T/ngx/fastcgi;
	uwsgi_temp_path $T/ngx/uwsgi;
	scgi_temp_path $T/ngx/scgi;
	default_type application/octet-stream;
	server { listen 127.0.0.1:$nport sndbuf=16k; root $T/ngx/www; }
}
EOF
if start_server nginx "$nport" -- ./atlas-preload.sh --cert "$EC_CERT" --key "$EC_KEY" \
	--ports "$nport" -- /usr/sbin/nginx -c "$T/ngx/nginx.conf"; then
	out=$(timeout 120 "$PY" - "$nport" "$CA" "$T/ngx/www" <<'PYEOF' 2>&1
import os, socket, ssl, sys, time
port, ca, www = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
short = []
names = sorted(os.listdir(www))
for name in names:
    want = os.path.getsize(os.path.join(www, name))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    s.sendall(f"GET /{name} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    time.sleep(0.3)
    s.settimeout(3)
    buf, got = b"", 0
    try:
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        got = len(buf.split(b"\r\n\r\n", 1)[1])
        while got < want:
            got += len(s.recv(65536))
    except (socket.timeout, TimeoutError):
        short.append(f"{name} {got}/{want}")
    s.close()
print(f"{len(names) - len(short)} of {len(names)} whole within 3 s" + (": short " + ", ".join(short) if short else ""))
PYEOF
	)
	is_eq "nginx (tcp_nopush, 16 KiB send buffer) to readers that wait: every response whole, without waiting for the next request" \
		"$out" "10 of 10 whole within 3 s"
	stop_server nginx
else
	fail "nginx starts under Atlas"
fi
finish
