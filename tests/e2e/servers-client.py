#!/usr/bin/python3
"""Clients for the real-server scenarios (tests/e2e/40-*.sh, 41-*.sh, servers-ktls.sh).

Each subcommand prints key=value lines that tests/e2e/servers-lib.sh checks;
every socket has a deadline (--timeout, whole seconds of wall time), so
nothing here can hang a test. --plain talks plaintext TCP instead of TLS:
the same request against a server's plaintext port is the baseline.

  pipeline   several GETs written at once (one TLS record), read the responses
  bigreq     one GET whose headers are larger than a server's read buffer
With --delay-ms, the requests go out a while after the handshake, once the
server waits for them in poll/epoll: they then arrive as one new event.
  echo       a payload to an echo service, in large writes, read back concurrently
"""
import argparse
import hashlib
import os
import socket
import ssl
import sys
import time


def out(**kv):
    for k, v in kv.items():
        print(f"{k}={v}", flush=True)


def strict_ctx(ca):
    """A verifying client context that tells close_notify from a bare end: Debian's python 3.11
    sets OP_IGNORE_UNEXPECTED_EOF by default, with which a TCP FIN without close_notify (or
    after a record cut short) reads as a clean end. Cleared, OpenSSL reports it as an error."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    return ctx


def unexpected_eof(e):
    """SSLEOFError, or the plain SSLError (reason UNEXPECTED_EOF_WHILE_READING) that Debian's
    python 3.11.2 raises for an end without close_notify. A reset on an SSLSocket is an
    SSLEOFError there too."""
    return isinstance(e, ssl.SSLEOFError) or getattr(e, "reason", None) == "UNEXPECTED_EOF_WHILE_READING"


class Conn:
    """A TCP or TLS connection with one overall deadline."""

    def __init__(self, args):
        self.deadline = time.monotonic() + args.timeout
        raw = socket.create_connection((args.addr, args.port), timeout=args.timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if args.plain:
            self.s = raw
        else:
            # suppress_ragged_eofs (on by default) would read SSLEOFError, a reset included, as b"".
            self.s = strict_ctx(args.ca).wrap_socket(raw, server_hostname=args.host, suppress_ragged_eofs=False)
        self.buf = b""
        self.end = None

    def left(self):
        return self.deadline - time.monotonic()

    def fill(self):
        """More bytes into buf; False at the end of the stream (self.end says how)."""
        if self.end:
            return False
        left = self.left()
        if left <= 0:
            self.end = "timeout"
            return False
        self.s.settimeout(left)
        try:
            b = self.s.recv(1 << 16)
        except (socket.timeout, TimeoutError):
            self.end = "timeout"
            return False
        except ConnectionResetError:
            self.end = "reset"
            return False
        except (ssl.SSLError, OSError) as e:
            if unexpected_eof(e):
                self.end = "eof_without_close_notify"
            else:
                self.end = f"error:{e}".replace(" ", "_")
            return False
        if not b:  # TLS: close_notify; plaintext: the FIN
            self.end = "eof"
            return False
        self.buf += b
        return True

    def take(self, n):
        while len(self.buf) < n:
            if not self.fill():
                return None
        b, self.buf = self.buf[:n], self.buf[n:]
        return b

    def line(self):
        while b"\r\n" not in self.buf:
            if not self.fill():
                return None
        b, _, self.buf = self.buf.partition(b"\r\n")
        return b

    def response(self):
        """One HTTP response: (status line, body) or None if the stream ended first."""
        status = self.line()
        if status is None:
            return None
        headers = {}
        while True:
            h = self.line()
            if h is None:
                return None
            if not h:
                break
            k, _, v = h.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            body = self.take(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = self.line()
                if size is None:
                    return None
                n = int(size.split(b";")[0], 16)
                chunk = self.take(n + 2)
                if chunk is None:
                    return None
                if n == 0:
                    break
                body += chunk[:-2]
        else:  # delimited by the end of the stream
            while self.fill():
                pass
            body, self.buf = self.buf, b""
        if body is None:
            return None
        return status.decode("latin-1"), body


def pad_headers(n):
    """n bytes of extra header lines (lines of up to 1000 bytes)."""
    lines, i = [], 0
    while n > 0:
        k = min(n, 1000)
        lines.append(f"X-Pad-{i}: " + "p" * max(1, k - 12) + "\r\n")
        n -= k
        i += 1
    return "".join(lines)


def request(args, path, last, extra=""):
    close = "Connection: close\r\n" if last else ""
    return f"GET {path} HTTP/1.1\r\nHost: {args.host}\r\n{extra}{close}\r\n".encode()


def cmd_pipeline(args):
    """All requests in one write: a TLS client sends them in one record."""
    paths = args.paths.split(",")
    pad = pad_headers(args.pad)
    t0 = time.monotonic()
    c = Conn(args)
    time.sleep(args.delay_ms / 1000)
    c.s.sendall(b"".join(request(args, p, i == len(paths) - 1, pad) for i, p in enumerate(paths)))
    got = 0
    for i, p in enumerate(paths):
        r = c.response()
        if r is None:
            break
        got += 1
        out(**{f"response{i}": f"{r[0].replace(' ', '_')} path={p} len={len(r[1])} sha256={hashlib.sha256(r[1]).hexdigest()}"})
    out(responses=got, end=c.end or "complete", elapsed_ms=round((time.monotonic() - t0) * 1000))
    return 0


def cmd_bigreq(args):
    """One GET with --pad bytes of extra headers (lines of 1000 bytes), in one write."""
    req = request(args, args.path, True, pad_headers(args.pad))
    t0 = time.monotonic()
    c = Conn(args)
    time.sleep(args.delay_ms / 1000)
    c.s.sendall(req)
    r = c.response()
    if r is None:
        out(status="none", request_bytes=len(req), end=c.end, elapsed_ms=round((time.monotonic() - t0) * 1000))
        return 0
    out(status=r[0].replace(" ", "_"), request_bytes=len(req), len=len(r[1]),
        sha256=hashlib.sha256(r[1]).hexdigest(), elapsed_ms=round((time.monotonic() - t0) * 1000))
    return 0


def cmd_echo(args):
    """--size random bytes to an echo service, written --chunk bytes at a time (TLS:
    records of up to 16 KiB), read back as they come, by one thread with select
    (a TLS connection runs over memory BIOs). Then the client closes."""
    import select
    data = os.urandom(args.size)
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    s = socket.create_connection((args.addr, args.port), timeout=args.timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    obj = None
    if not args.plain:
        ctx = strict_ctx(args.ca)
        inc, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, outb, server_hostname=args.host)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            s.sendall(outb.read())
            s.settimeout(max(0.01, deadline - time.monotonic()))
            b = s.recv(1 << 16)
            if not b:
                out(handshake="failed")
                return 1
            inc.write(b)
        s.sendall(outb.read())
    s.setblocking(False)
    sent, pending, got, end = 0, b"", bytearray(), None
    while len(got) < len(data):
        if sent < len(data) and len(pending) < (1 << 18):
            piece = data[sent:sent + args.chunk]
            sent += len(piece)
            if obj:
                obj.write(piece)
                pending += outb.read()
            else:
                pending += piece
        left = deadline - time.monotonic()
        if left <= 0:
            end = "timeout"
            break
        want_more = sent < len(data) and len(pending) < (1 << 18)
        r, w, _ = select.select([s], [s] if pending else [], [], 0 if want_more else left)
        if w:
            try:
                n = s.send(pending)
                pending = pending[n:]
            except BlockingIOError:
                pass
            except OSError as e:
                end = f"send_error:{e.strerror}".replace(" ", "_")
                break
        if r:
            try:
                b = s.recv(1 << 16)
            except BlockingIOError:
                continue
            except OSError as e:
                end = f"recv_error:{e.strerror}".replace(" ", "_")
                break
            if not b:
                end = "eof"
                break
            if obj:
                inc.write(b)
                try:
                    while True:
                        d = obj.read(1 << 16)
                        if not d:
                            end = "close_notify"
                            break
                        got += d
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError as e:  # the stream's FIN is never fed in: "eof" above
                    end = "eof" if unexpected_eof(e) else f"ssl_error:{e.reason}"
                if end:
                    break
            else:
                got += b
    out(sent=sent, received=len(got), equal=int(bytes(got) == data),
        end=end or "complete", elapsed_ms=round((time.monotonic() - t0) * 1000))
    if obj:
        try:
            obj.unwrap()
        except ssl.SSLError:
            pass
        try:
            s.setblocking(True)
            s.sendall(outb.read())
        except OSError:
            pass
    s.close()
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("pipeline", "bigreq", "echo"):
        q = sub.add_parser(name)
        q.add_argument("--port", type=int, required=True)
        q.add_argument("--addr", default="127.0.0.1")
        q.add_argument("--host", default="localhost")
        q.add_argument("--ca")
        q.add_argument("--plain", action="store_true", help="plaintext TCP, no TLS")
        q.add_argument("--timeout", type=float, default=10)
        q.add_argument("--paths", default="/")
        q.add_argument("--path", default="/")
        q.add_argument("--pad", type=int, default=0, help="bytes of extra headers (per request)")
        q.add_argument("--delay-ms", type=float, default=0,
                       help="wait after connecting (and the handshake) before sending: the server is back in its wait")
        q.add_argument("--size", type=int, default=1 << 20)
        q.add_argument("--chunk", type=int, default=1 << 16)
    args = p.parse_args()
    return {"pipeline": cmd_pipeline, "bigreq": cmd_bigreq, "echo": cmd_echo}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
