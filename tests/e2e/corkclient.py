"""corkclient.py PORT CA COMMAND: one corksrv (tests/e2e/progs/corksrv.c) exchange
over TLS, done in memory (ssl.MemoryBIO) so that the records on the wire can be
counted. Prints one line: what came back and how, for 25-cork.sh to compare.

A ping first, so that whatever the server sends after the handshake (TLS 1.3
session tickets) is in before the records of the answer are counted."""
import socket
import ssl
import sys
import time

port, ca, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3]
TINY = cmd in ("full", "blockfull", "close", "shut")


def pattern(n):
    return bytes(i % 251 for i in range(n))


class Conn:
    def __init__(self):
        self.sock = socket.socket()
        if TINY:  # the smallest window: the server's last record cannot all go out
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        ctx = ssl.create_default_context(cafile=ca)
        # Debian's python sets it by default: after write_eof, an end without close_notify
        # (or a record cut short) would read as b"", the same as close_notify.
        ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
        self.inb, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inb, self.outb, server_hostname="localhost")
        self.wire, self.records, self.closed = b"", 0, False
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                self.pump()
        self.flush()

    def flush(self):
        data = self.outb.read()
        if data:
            self.sock.sendall(data)

    def pump(self):
        data = self.sock.recv(65536)
        if not data:
            self.closed = True
            self.inb.write_eof()
            return
        self.wire += data
        while len(self.wire) >= 5:
            n = 5 + int.from_bytes(self.wire[3:5], "big")
            if len(self.wire) < n:
                break
            self.records += 1
            self.wire = self.wire[n:]
        self.inb.write(data)

    def send(self, text):
        self.tls.write(text.encode() + b"\n")
        self.flush()

    def read(self, n, timeout=10):
        """Up to n bytes within timeout; what came and how it ended."""
        got, end, deadline = b"", "", time.time() + timeout
        self.sock.settimeout(timeout)
        while len(got) < n and time.time() < deadline:
            try:
                chunk = self.tls.read(n - len(got))
                if not chunk:  # an SSLObject reads close_notify as b""
                    end = "close_notify"
                    break
                got += chunk
            except ssl.SSLWantReadError:
                if self.closed:
                    end = "EOF without close_notify"
                    break
                try:
                    self.pump()
                except socket.timeout:
                    end = "timed out"
                    break
                except ConnectionResetError:
                    end = "reset"
                    break
            except ssl.SSLError as e:
                # SSLEOFError, or the plain SSLError that Debian's python 3.11.2 raises for an
                # end without close_notify once OP_IGNORE_UNEXPECTED_EOF is clear.
                if not (isinstance(e, ssl.SSLEOFError) or e.reason == "UNEXPECTED_EOF_WHILE_READING"):
                    raise
                end = "EOF without close_notify"
                break
        return got, end

    def read_end(self):
        got, end = self.read(1, 5)
        return f"{len(got)} more bytes" if got else end


c = Conn()
c.send("ping")
got, _ = c.read(5)
if got != b"pong\n":
    print(f"no pong: {got!r}")
    sys.exit(0)
c.records = 0
c.send(cmd)
if cmd == "getcork":
    got, end = c.read(4)
    print(f"getsockopt says {got.decode(errors='replace').strip()}")
    sys.exit(0)
size = {"small": 4100, "nocork": 4100, "sendfile": 4196, "forget": 500}.get(cmd, 10000)
# sendfile: 100 bytes written, then the file, whose bytes follow the same pattern from 0.
want = pattern(100) + pattern(4096) if cmd == "sendfile" else pattern(size)
if TINY:
    time.sleep(1)  # the server has written, uncorked or closed meanwhile
t0 = time.time()
got, end = c.read(size)
took = time.time() - t0
if got != want:
    print(f"{cmd}: {len(got)} of {size} bytes, {'right' if want.startswith(got) else 'wrong'} so far ({end or 'stopped'})")
    sys.exit(0)
out = f"{cmd}: all {size} bytes"
if cmd in ("small", "nocork", "sendfile"):
    out += f" in {c.records} record{'s' if c.records != 1 else ''}"
if cmd == "forget":
    out += " within 1 s" if took < 1 else f" after {took:.1f} s"
if cmd in ("full", "blockfull"):
    c.send("ping")
    got, end = c.read(5)
    out += ", then pong" if got == b"pong\n" else f", then {got!r} ({end})"
if cmd in ("close", "shut"):
    out += ", then " + c.read_end()
print(out)
