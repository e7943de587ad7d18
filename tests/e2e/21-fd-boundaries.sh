#!/usr/bin/env bash
# A TLS connection's fd never carries plaintext, whichever way the host hands it on:
# stdio on fdopen() goes through TLS, SCM_RIGHTS passing is refused (to the process
# itself, and to a worker forked before accept, which then answers nothing: the
# userspace path; tests/e2e/32-ktls-apps.sh hands a kernel-path fd over), and a
# program started with exec() cannot write to it (the fd is close-on-exec while its
# TLS state lives in the process); recvmmsg and sendmmsg go through TLS as recvmsg
# and sendmsg do.
set -uo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ok() { echo "ok - fd boundaries: $*"; }
bad() { echo "not ok - fd boundaries: $*"; }

cc -O1 -g -Wall -o "$tmp/fdsrv" tests/e2e/progs/fdsrv.c || { bad "cannot build the test server"; exit 1; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null

serve() { # serve MODE: start fdsrv under the shim, wait for its port; sets port
	port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	timeout 20 ./atlas-preload.sh --cert "$tmp/cert.pem" --key "$tmp/key.pem" --ports "$port" \
		--log-level info -- "$tmp/fdsrv" "$port" "$1" >"$tmp/$1.out" 2>"$tmp/$1.err" &
	pids+=($!)
	for _ in $(seq 100); do
		grep -q "listening with TLS on port $port" "$tmp/$1.err" 2>/dev/null && return 0
		sleep 0.05
	done
	bad "$1: the server did not start: $(cat "$tmp/$1.err")"
	return 1
}

fetch() { # fetch: the body over TLS into $tmp/body, curl's status into rc
	rm -f "$tmp/body"
	curl -sS --max-time 10 --cacert "$tmp/cert.pem" "https://localhost:$port/" -o "$tmp/body" 2>"$tmp/curl.err"
	rc=$?
}

if serve stdio; then
	fetch
	if [ "$rc" -eq 0 ] && grep -q '^stdio: hello through fprintf$' "$tmp/body"; then
		ok "stdio on fdopen() writes through TLS"
	else
		bad "stdio on fdopen(): curl status $rc, body: $(head -c 200 "$tmp/body" 2>/dev/null)"
	fi
fi

if serve pass; then
	fetch
	if [ "$rc" -eq 0 ] && grep -q '^pass: refused with EPERM$' "$tmp/body"; then
		ok "sendmsg with SCM_RIGHTS refuses to pass a TLS fd (EPERM)"
	else
		bad "SCM_RIGHTS: curl status $rc, body: $(cat "$tmp/body" 2>/dev/null)"
	fi
	wait "${pids[-1]}" 2>/dev/null
	grep -q 'atlas: error: fd [0-9]*: a TLS connection cannot be passed to another process' "$tmp/pass.err" &&
		ok "the refusal is logged" || bad "no log line for the SCM_RIGHTS refusal: $(cat "$tmp/pass.err")"
fi

if serve handoff; then
	# The acceptor answers itself after the refusal; its worker, forked before accept,
	# reads end of file and exits 0, and so does the acceptor.
	fetch
	if [ "$rc" -eq 0 ] && grep -q '^handoff: refused with EPERM$' "$tmp/body"; then
		ok "sendmsg with SCM_RIGHTS refuses to hand a TLS fd to a worker process (EPERM)"
	else
		bad "SCM_RIGHTS to a worker: curl status $rc, body: $(cat "$tmp/body" 2>/dev/null)"
	fi
	wait "${pids[-1]}"
	status=$?
	if [ "$status" -eq 0 ] &&
		grep -q 'atlas: error: fd [0-9]*: a TLS connection cannot be passed to another process' "$tmp/handoff.err"; then
		ok "the refused handoff is logged, and the worker exits on end of file"
	else
		bad "handoff: server exit $status (0: the worker saw end of file), log: $(cat "$tmp/handoff.err")"
	fi
fi

if serve mmsg; then
	# recvmmsg and sendmmsg, which b8a31dd let through in clear: each message through TLS, and
	# an fd passed with sendmmsg is refused as with sendmsg.
	fetch
	if [ "$rc" -eq 0 ] && grep -q '^mmsg: hello through sendmmsg$' "$tmp/body"; then
		ok "recvmmsg and sendmmsg on a TLS fd go through TLS"
	else
		bad "recvmmsg/sendmmsg: curl status $rc, body: $(head -c 200 "$tmp/body" 2>/dev/null)"
	fi
	if grep -q '^mmsg: passing refused with EPERM$' "$tmp/body"; then
		ok "sendmmsg with SCM_RIGHTS refuses to pass a TLS fd (EPERM)"
	else
		bad "SCM_RIGHTS through sendmmsg: body: $(cat "$tmp/body" 2>/dev/null)"
	fi
	wait "${pids[-1]}"
	status=$?
	[ "$status" -eq 0 ] && ok "mmsg: every message was counted whole (sendmmsg's msg_len)" ||
		bad "mmsg: the server exited $status (a message short, or a call failed)"
fi

if serve mmsg-partial; then
	# A message that goes only in part ends sendmmsg there, as in the kernel: a server
	# that resumes it, then sends the next, keeps the stream in order (ea634bf went on
	# to the next message, and the marker came inside the 8 MiB).
	got=$(timeout 30 /usr/bin/python3 - "$port" "$tmp/cert.pem" <<'PYEOF' 2>&1
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20),
                    server_hostname="localhost")
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
time.sleep(0.5)
data = bytearray()
while chunk := s.recv(1 << 20):
    data += chunk
want = b"a" * (8 << 20) + b"MARKER\n"
print("in order" if data == want else f"got {len(data)} bytes, marker at {data.find(b'MARKER')}")
PYEOF
	)
	wait "${pids[-1]}"
	status=$?
	if [ "$got" = "in order" ] && [ "$status" -eq 0 ] &&
		grep -q '^mmsg-partial: sendmmsg returned 1$' "$tmp/mmsg-partial.err"; then
		ok "sendmmsg stops at a message sent in part (returns 1), and the resumed stream is in order"
	else
		bad "sendmmsg cut by SO_SNDTIMEO: client: $got; server exit $status; $(grep mmsg-partial "$tmp/mmsg-partial.err")"
	fi
fi

if serve exec; then
	# Raw bytes on the wire: nothing the exec'd child wrote may appear in clear, and the
	# client must see an error (a reset), not a response that looks complete.
	timeout 10 openssl s_client -connect "127.0.0.1:$port" -quiet -CAfile "$tmp/cert.pem" \
		<<<$'GET / HTTP/1.0\r\n\r\n' >"$tmp/sclient.out" 2>&1
	fetch_text=$(cat "$tmp/sclient.out")
	if ! grep -q 'plaintext from the child' <<<"$fetch_text"; then
		ok "an exec'd child does not get the TLS fd"
	else
		bad "the exec'd child's output reached the client"
	fi
	wait "${pids[-1]}" 2>/dev/null
	grep -q 'atlas: error: fd 1: /usr/bin/printf was to be handed a TLS connection, which cannot follow exec' "$tmp/exec.err" &&
		ok "exec logs that the TLS fd on stdout could not be handed over" ||
		bad "no exec log line: $(cat "$tmp/exec.err")"
fi
