#!/usr/bin/env bash
# The handshake runs inside the server's own non-blocking read and write calls, which
# return EAGAIN until it is done; the server then waits for what IT wants, which may not
# be what the handshake needs (tests/e2e/progs/hssrv.c, in epoll-lt, epoll-et, poll and
# select modes):
#   banner  the server speaks first and waits only for writability, while the handshake
#           needs to read the ClientHello. The socket is writable all along: the server
#           must not spin (write, EAGAIN, writable, write...) while the client is silent.
#           Measured: the server's CPU time while clients wait 1.5 s before starting TLS.
#   sndbuf  the server waits only for readability, while the handshake must write a
#           ~20 KB certificate through a 2 KB send buffer to a client with a 2 KB receive
#           buffer: the rest of the flight must go out when the socket drains, or the
#           handshake hangs until its timeout. The client reads nothing for 0.5 s after
#           its ClientHello, so that the buffers fill up however fast it would drain them.
source "$(dirname "$0")/lib.sh"
make_certs
cd "$ROOT" || exit 1

cc -O1 -g -Wall -Wextra -o "$T/hssrv" tests/e2e/progs/hssrv.c || {
	fail "cannot build tests/e2e/progs/hssrv.c"
	finish
}

# A self-signed certificate for localhost whose DER is about 20 KB (800 more DNS names):
# with the rest of the server's flight, more than the send and receive buffers hold.
BIG_CERT=$T/big.pem BIG_KEY=$T/big.key
san="DNS:localhost,IP:127.0.0.1$(for i in $(seq 1 800); do printf ',DNS:h%03d.big.atlas-e2e.test' "$i"; done)"
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
	-subj /CN=localhost -addext "subjectAltName=$san" -keyout "$BIG_KEY" -out "$BIG_CERT" \
	>"$T/big.log" 2>&1; then
	note_file "$T/big.log"
	fail "cannot make the big certificate"
	finish
fi
note "big certificate: $(openssl x509 -in "$BIG_CERT" -outform DER | wc -c) bytes of DER"

CPU_LIMIT=0.3 # seconds of server CPU allowed while the clients stay silent for 1.5 s

# client PID PORT CAFILE KIND N: N concurrent clients of one KIND against the server,
# whose CPU time (utime + stime of /proc/PID/stat) is taken just before the clients
# connect and after the last one finishes. Prints three lines:
#   result: ok | client I: what went wrong; ...
#   cpu: SECONDS
#   cert: the DER size of the certificate each client was shown (none: no handshake done)
# banner: TCP connect, 1.5 s of silence, TLS, "HELLO atlas", "ping", "ECHO ping";
#         4 s for everything after the silence.
# sndbuf: SO_RCVBUF 2048 before connect, ClientHello, 0.5 s without reading, the rest of
#         the handshake, "ping", "ECHO ping", all within 6 s; the certificate must be the
#         big one (more than 15000 bytes).
client() {
	timeout -k 2 12 "$PY" - "$@" <<'PYEOF'
import os, socket, ssl, sys, threading, time
pid, port, ca, kind, n = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
ctx = ssl.create_default_context(cafile=ca)
tick = os.sysconf("SC_CLK_TCK")

def cpu():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick  # utime, stime

results, certs = [None] * n, [0] * n

class Banner:
    """Over ssl's own socket: TCP, 1.5 s of silence, then TLS."""
    def __init__(self, left, stage):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.settimeout(left())
        raw.connect(("127.0.0.1", port))
        time.sleep(1.5)
        self.left = Deadline(4)
        stage("handshake")
        raw.settimeout(self.left())
        self.s = ctx.wrap_socket(raw, server_hostname="localhost")
    def cert(self):
        return self.s.getpeercert(binary_form=True) or b""
    def send(self, data):
        self.s.settimeout(self.left())
        self.s.sendall(data)
    def recv(self):
        self.s.settimeout(self.left())
        return self.s.recv(4096)

class Sndbuf:
    """Over memory BIOs, to pause 0.5 s after the ClientHello: the server's whole flight
    then meets full buffers (a client reading at once may drain them fast enough)."""
    def __init__(self, left, stage):
        self.left = left
        self.raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        self.raw.settimeout(left())
        self.raw.connect(("127.0.0.1", port))
        stage("handshake")
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.o = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")
        paused = False
        while True:
            try:
                self.o.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                if not paused:
                    time.sleep(0.5)
                    paused = True
                self.fill()
        self.flush()
    def flush(self):
        data = self.out.read()
        if data:
            self.raw.settimeout(self.left())
            self.raw.sendall(data)
    def fill(self):
        self.raw.settimeout(self.left())
        data = self.raw.recv(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self.inc.write(data)
    def cert(self):
        return self.o.getpeercert(binary_form=True) or b""
    def send(self, data):
        self.o.write(data)
        self.flush()
    def recv(self):
        while True:
            try:
                return self.o.read(4096)
            except ssl.SSLWantReadError:
                self.fill()
            except ssl.SSLZeroReturnError:
                return b""

class Deadline:
    def __init__(self, secs):
        self.end = time.monotonic() + secs
    def __call__(self):
        return max(0.01, self.end - time.monotonic())

def one(i):
    stage = "connect"
    def set_stage(s):
        nonlocal stage
        stage = s
    try:
        c = (Banner if kind == "banner" else Sndbuf)(Deadline(6), set_stage)
        certs[i] = len(c.cert())
        buf = b""
        def line(what):
            nonlocal buf
            set_stage(f"waiting for {what}")
            while b"\n" not in buf:
                chunk = c.recv()
                if not chunk:
                    raise EOFError(f"end of stream after {buf!r}")
                buf += chunk
            got, buf = buf.split(b"\n", 1)
            return got.decode(errors="replace")
        if kind == "banner":
            got = line("the banner")
            if got != "HELLO atlas":
                raise ValueError(f"banner {got!r}")
        set_stage("sending ping")
        c.send(b"ping\n")
        got = line("the echo")
        if got != "ECHO ping":
            raise ValueError(f"echo {got!r}")
        if kind == "sndbuf" and certs[i] <= 15000:
            raise ValueError(f"the certificate is {certs[i]} bytes, not the big one")
        results[i] = "ok"
    except (socket.timeout, TimeoutError):
        results[i] = f"client {i + 1}: timed out ({stage})"
    except Exception as e:
        results[i] = f"client {i + 1}: {stage}: {type(e).__name__}: {e}"

before = cpu()
threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
after = cpu()
bad = [r for r in results if r != "ok"]
print("result: " + ("; ".join(bad) if bad else "ok"))
print(f"cpu: {after - before:.2f}")
print("cert: " + (",".join(str(c) for c in certs if c) or "none"))
PYEOF
}

field() { sed -n "s/^$1: //p" <<<"$2" | head -n 1; }

for mode in epoll-lt epoll-et poll select; do
	for kind in banner sndbuf; do
		name=$mode-$kind
		port=$(free_port)
		if [ "$kind" = banner ]; then
			cert=$EC_CERT key=$EC_KEY ca=$CA
		else
			cert=$BIG_CERT key=$BIG_KEY ca=$BIG_CERT
		fi
		if ! start_server "$name" "$port" -- ./atlas-preload.sh --cert "$cert" --key "$key" \
			--ports "$port" -- "$T/hssrv" "$port" "$mode" "$kind"; then
			fail "$name: the server starts"
			continue
		fi
		pid=$(server_pid "$name")
		for n in 1 3; do
			t0=$(now_ms)
			out=$(client "$pid" "$port" "$ca" "$kind" "$n" 2>&1)
			secs=$(awk -v ms=$(($(now_ms) - t0)) 'BEGIN { printf "%.1f", ms / 1000 }')
			result=$(field result "$out")
			cpu=$(field cpu "$out")
			if [ -z "$result" ]; then
				fail "$name, $n client(s): the client printed no result (after $secs s)"
				note "$out"
				continue
			fi
			if [ "$kind" = banner ]; then
				desc="$mode banner, $n client(s) silent 1.5 s before TLS: $result; server CPU $cpu s (limit $CPU_LIMIT s); $secs s in all"
				if [ "$result" = ok ] && awk -v c="$cpu" -v l="$CPU_LIMIT" 'BEGIN { exit !(c < l) }'; then
					pass "$desc"
				else
					fail "$desc"
				fi
			else
				certs=$(field cert "$out")
				[ "$certs" = none ] && certs="no certificate seen" || certs="certificate of $certs bytes"
				desc="$mode sndbuf, $n client(s), 2 KB buffers, $certs: $result; $secs s (limit 6 s); server CPU $cpu s"
				if [ "$result" = ok ]; then
					pass "$desc"
				else
					fail "$desc"
				fi
			fi
		done
		if ! server_alive "$name"; then
			note "$name: the server died"
			note_file "$(server_log "$name")"
		elif [ -s "$(server_log "$name")" ]; then
			note_file "$(server_log "$name")" 5
		fi
		stop_server "$name"
	done
done
finish
