#!/usr/bin/env bash
# Two threads write one connection at once (shim/tls.c: the send queue).
# OpenSSL's SSL_write would hold a record it could only partly send, and its
# retry must offer the same bytes; a second thread's write, or a retry of another
# length after EAGAIN, must not be taken for that retry (it would count bytes
# it never sent, and the first write's bytes would go twice). Atlas's BIO takes
# every record whole, queues what the socket has no room for, and counts it as
# written, as the kernel does with its queue. tests/e2e/progs/duowrite.c is the server (blocking writers, or
# non-blocking ones that retry with a new length after EAGAIN; tiny or default
# send buffers), tests/e2e/duowrite.py the client, which splits the stream back
# into the two writers' streams and checks each byte. The same rounds on plain
# TCP first show that the kernel keeps these promises. Then what queueing a record
# must not cost: a blocking write still returns only once its bytes are in
# the kernel (a server that writes, then sleeps or exits), a server whose echo
# waits for room still sees the data its peer sends meanwhile, and its waits
# neither spin nor re-arm a one-shot registration.
source "$(dirname "$0")/lib.sh"
make_certs
cd "$ROOT" || exit 1

cc -O1 -g -Wall -pthread -o "$T/duowrite" tests/e2e/progs/duowrite.c || {
	fail "cannot build tests/e2e/progs/duowrite.c"
	finish
}
cc -O1 -g -std=c11 -Wall -Wextra -Werror -o "$T/tlsclient" tests/e2e/progs/tlsclient.c -lssl -lcrypto || {
	fail "cannot build tests/e2e/progs/tlsclient.c"
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
survived tls
stop_server tls

# A blocking write returns once its bytes are in the kernel, as the kernel's does: a
# server that writes and then sleeps, or exits at once (os._exit: no atexit, no linger
# thread), must not leave its last record behind in Atlas. (What follows an exit is
# the kernel's FIN alone: no close_notify, as no call of the process's ends it.) tests/e2e/serve.py send-then
# sends 1,000,000 bytes through an 8 KiB send buffer to a client that reads nothing
# for 1.5 s.
port=$(free_port)
if start_server then "$port" -- ./atlas-preload.sh --cert "$EC_CERT" --key "$EC_KEY" \
	--ports "$port" -- "$PY" "$SERVE" send-then --port "$port"; then
	for then in sleep exit; do
		out=$(timeout 30 "$PY" - "$port" "$CA" "$then" <<'PYEOF' 2>&1
import socket, ssl, sys, time
port, ca, then = int(sys.argv[1]), sys.argv[2], sys.argv[3]
n = 1000000
ctx = ssl.create_default_context(cafile=ca)
ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
raw = socket.create_connection(("127.0.0.1", port), timeout=10)
s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
s.sendall(f"{n} {then}\n".encode())
time.sleep(1.5)
got = bytearray()
try:
    while len(got) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    end = "-"
except (socket.timeout, TimeoutError):
    end = "timed out"
except ssl.SSLError as e:
    end = f"end without close_notify ({e.reason})"
ok = bytes(got) == (bytes(i % 251 for i in range(251)) * (n // 251 + 1))[:n]
print(f"{len(got)} bytes{' right' if ok else ''}, end: {end}")
PYEOF
		)
		want="1000000 bytes right, end: -"
		is_eq "a server that sends, then $([ "$then" = exit ] && echo "exits at once" || echo "sleeps"): every byte arrives" "$out" "$want"
	done
	stop_server then
else
	fail "serve.py send-then starts under Atlas"
fi

# While bytes the server counts as written wait for room, its waits must still see the
# peer's data: a client that sends 8 MiB before it reads anything, to an echo server
# (asyncio, epoll) that keeps reading while its echo waits. Were the server's EPOLLIN
# put aside until there is room, neither side would ever move again.
port=$(free_port)
if start_server echo "$port" -- ./atlas-preload.sh --cert "$EC_CERT" --key "$EC_KEY" \
	--ports "$port" -- "$PY" "$SERVE" echo --port "$port"; then
	out=$(timeout 60 "$PY" - "$port" "$CA" <<'PYEOF' 2>&1
import hashlib, os, socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
data = os.urandom(8 << 20)
ctx = ssl.create_default_context(cafile=ca)
raw = socket.create_connection(("127.0.0.1", port), timeout=30)
s = ctx.wrap_socket(raw, server_hostname="localhost")
try:
    s.sendall(data)
    got = bytearray()
    while len(got) < len(data):
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        got += chunk
    print("echoed intact" if got == data else f"echoed {len(got)} bytes, not the same")
except (socket.timeout, TimeoutError):
    print("stuck: timed out")
PYEOF
	)
	is_eq "a client that sends 8 MiB before reading: the echo server keeps reading" "$out" "echoed intact"
	# A TLS 1.3 KeyUpdate that asks for the server's, arriving while its echo waits for
	# room (tests/e2e/progs/tlsclient.c --flood: 16 MiB out, the KeyUpdate after 8, a
	# 16 KiB receive buffer, nothing read until all is out): the server's KeyUpdate must
	# queue behind the record its socket had no room for, not end the connection.
	out=$(timeout 90 "$T/tlsclient" --port "$port" --ca "$CA" --tls 1.3 --flood $((16 << 20)) 2>&1)
	is_eq "a KeyUpdate the client requests while the echo waits for room: all 16 MiB echoed intact" \
		"$(grep '^flood:' <<<"$out")" "flood: sent=16777216 received=16777216 keyupdate=requested match=yes"
	stop_server echo
else
	fail "serve.py echo starts under Atlas"
fi

# The host's waits while such bytes wait for room (tests/e2e/progs/owedwait.c, one
# connection, non-blocking, an 8 KiB send buffer): a fired EPOLLONESHOT registration
# stays disarmed; a poll loop that reads with splice() is woken a few times, not
# hundreds of thousands, and the bytes go out; the same after shutdown(SHUT_WR); a
# blocking write under TCP_CORK behind them waits for room without spinning (9385a0a
# spun there for ever); a server registered for EPOLLIN|EPOLLOUT|EPOLLET (nginx) that
# then only waits for a request still gets them out, with one connection and with
# 20 whose room comes back at once, and after shutdown(SHUT_WR) its close_notify and
# FIN follow them (the client reads to its end), also when the epoll loop is a thread
# of its own that was already waiting when the bytes began to wait for room, and
# when the room's edge reached that thread before they began to wait (et-late:
# tests/e2e/progs/slowsend.c, preloaded after Atlas, holds the send that met the
# full socket while the client reads; the server writes nothing more, so only
# Atlas's re-arm of the registration sends them). Plain TCP first, for the
# kernel's answer.
cc -O1 -g -std=c11 -Wall -Wextra -Werror -pthread -o "$T/owedwait" tests/e2e/progs/owedwait.c &&
	cc -O1 -g -std=c11 -Wall -Wextra -Werror -shared -fPIC -o "$T/slowsend.so" \
		tests/e2e/progs/slowsend.c || {
	fail "cannot build tests/e2e/progs/owedwait.c and slowsend.c"
	finish
}
owed_client() { # PORT CA|--plain MODE: how many bytes came
	timeout 30 "$PY" - "$@" <<'PYEOF' 2>&1
import os, socket, ssl, sys, threading, time
port, ca, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
got, ends = [], []
def one():
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    s = raw
    if ca != "--plain":
        # A FIN without close_notify is an error, not an end (Debian's python 3.11
        # sets OP_IGNORE_UNEXPECTED_EOF by default, which would read it as b"").
        ctx = ssl.create_default_context(cafile=ca)
        ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
        s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    s.sendall(b"go\n")
    if mode == "oneshot":
        time.sleep(0.3)
        s.sendall(b"more\n")
        time.sleep(1)
        s.sendall(b"more\n")
    time.sleep(1)
    s.settimeout(2)
    n, end = 0, "silence"
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                # close_notify (or, on plain TCP, the FIN): then the FIN on the socket itself.
                end = "no FIN"
                tcp = socket.socket(fileno=os.dup(s.fileno()))
                tcp.settimeout(2)
                end = "end" if tcp.recv(1) == b"" else "bytes after the end"
                tcp.close()
                break
            n += len(chunk)
    except (socket.timeout, TimeoutError, ssl.SSLError) as e:
        end = end if end == "no FIN" else type(e).__name__
    got.append(n)
    ends.append(end)
# et-many: 20 connections at once, whose room comes back in one epoll_wait.
threads = [threading.Thread(target=one) for _ in range(20 if mode == "et-many" else 1)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"got {sum(got)}" + (f", {ends[0]}" if mode in ("et-shut", "et-thread") else ""))
PYEOF
}
for mode in oneshot splice-read shut-splice cork-block et-inout et-many et-shut et-thread et-late; do
	for how in plain atlas; do
		port=$(free_port)
		if [ $how = plain ]; then
			start_server "owed-$mode-$how" "$port" -- "$T/owedwait" "$port" "$mode"
			got=$(owed_client "$port" --plain "$mode")
		else
			after=${ATLAS_PRELOAD_AFTER:-} # a sanitizer's runtime (tests/sanitize-e2e.sh)
			[ $mode = et-late ] && after+=" $T/slowsend.so"
			start_server "owed-$mode-$how" "$port" -- env "ATLAS_PRELOAD_AFTER=$after" \
				./atlas-preload.sh --cert "$EC_CERT" --key "$EC_KEY" --ports "$port" -- \
				"$T/owedwait" "$port" "$mode"
			got=$(owed_client "$port" "$CA" "$mode")
		fi
		wait_until 10 grep -q "^$mode: " "$(server_log "owed-$mode-$how")"
		said=$(grep "^$mode: " "$(server_log "owed-$mode-$how")")
		if [ $mode = oneshot ]; then
			is_eq "$how: a fired one-shot registration stays disarmed while bytes wait for room" \
				"$said" "oneshot: 0 events"
		else
			if [ $mode = cork-block ]; then
				is_match "$how: a blocking corked write behind bytes that wait for room takes little CPU" \
					"$said" "^cork-block: little CPU, wrote [0-9]+\$"
			elif [ "${mode#et-}" != "$mode" ]; then
				is_match "$how, $mode: registered for EPOLLIN|EPOLLOUT|EPOLLET, waiting for the client" \
					"$said" "^$mode: wrote [0-9]+\$"
			else
				is_match "$how, $mode: a poll loop reading with splice wakes a few times" "$said" \
					"^$mode: a few wake-ups, wrote [0-9]+\$"
			fi
			# After a shutdown, the end (close_notify and the FIN) follows them.
			end=""
			case $mode in et-shut | et-thread) end=", end" ;; esac
			is_eq "$how, $mode: every byte counted arrives" "$got" "got ${said##* }$end"
		fi
		stop_server "owed-$mode-$how"
	done
done
finish
