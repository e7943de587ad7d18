#!/usr/bin/python3
"""Clients for the Atlas TLS end-to-end scenarios (tests/e2e/NN-*.sh).

Each subcommand prints key=value lines the scenario checks; every socket has a
timeout, so nothing here can hang a test.

  get        one HTTPS GET with a verifying context (python's ssl module)
  raw        plain bytes to a port, then everything the server sends until it closes
  idle       hold N connections that send nothing (or a prefix), report who got closed
  drip       a TLS handshake whose ClientHello arrives a few bytes at a time
  churn      many connections of mixed kinds, concurrently (fd/memory leak hunting)
  wire       one GET, keeping the raw bytes: was anything sent in plaintext after the handshake?
"""
import argparse
import concurrent.futures
import hashlib
import os
import re
import select
import signal
import socket
import ssl
import sys
import threading
import time


def out(**kv):
    for k, v in kv.items():
        print(f"{k}={v}", flush=True)


def connect(args):
    s = socket.create_connection((args.addr, args.port), timeout=args.timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def strict_ctx(ca):
    """A verifying client context (chain and name) that tells close_notify from a bare end.

    Debian's python 3.11 sets OP_IGNORE_UNEXPECTED_EOF in create_default_context(): with it,
    a TCP FIN without close_notify, or after a record cut short, reads as a clean end (b"").
    Cleared, OpenSSL reports it as an error (see unexpected_eof)."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    return ctx


def unexpected_eof(e):
    """Whether an ssl error is the end of the stream without close_notify: SSLEOFError, or the
    plain SSLError (reason UNEXPECTED_EOF_WHILE_READING) that Debian's python 3.11.2 raises
    for it. Over Debian's python a reset (ECONNRESET) on an SSLSocket is an SSLEOFError too."""
    return isinstance(e, ssl.SSLEOFError) or getattr(e, "reason", None) == "UNEXPECTED_EOF_WHILE_READING"


def tls_socket(ctx, raw, host):
    """ctx.wrap_socket that reports an end without close_notify instead of returning b"" for it
    (suppress_ragged_eofs, on by default, turns SSLEOFError, a reset included, into b"")."""
    return ctx.wrap_socket(raw, server_hostname=host, suppress_ragged_eofs=False)


def make_ctx(args):
    ctx = strict_ctx(args.ca)
    if getattr(args, "tls", None) == "1.2":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif getattr(args, "tls", None) == "1.3":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    if getattr(args, "cipher", None):
        ctx.set_ciphers(args.cipher)
    return ctx


def read_until_close(sock):
    """Everything until the peer closes. Returns (data, how): eof (a plain socket's FIN),
    close_notify, eof_without_close_notify (a TLS socket's FIN, record cut short or reset;
    it must come from tls_socket), reset (a plain socket's), timeout, ssl_error:..., error:..."""
    chunks = []
    while True:
        try:
            b = sock.recv(65536)
        except ConnectionResetError:
            return b"".join(chunks), "reset"
        except (socket.timeout, TimeoutError):
            return b"".join(chunks), "timeout"
        except ssl.SSLError as e:
            if unexpected_eof(e):
                return b"".join(chunks), "eof_without_close_notify"
            return b"".join(chunks), f"ssl_error:{e.reason}"
        except OSError as e:
            return b"".join(chunks), f"error:{e.strerror}"
        if not b:
            return b"".join(chunks), "close_notify" if isinstance(sock, ssl.SSLSocket) else "eof"
        chunks.append(b)


def split_response(data):
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode("latin-1") if head else ""
    return status, body


def cmd_get(args):
    ctx = make_ctx(args)
    t0 = time.monotonic()
    raw = connect(args)
    out(local_port=raw.getsockname()[1])
    try:
        s = tls_socket(ctx, raw, args.host)
    except (ssl.SSLError, OSError) as e:
        out(handshake="failed", error=repr(e))
        return 1
    out(handshake="ok", version=s.version(), cipher=s.cipher()[0])
    s.sendall(f"GET {args.path} HTTP/1.0\r\nHost: {args.host}\r\n\r\n".encode())
    data, how = read_until_close(s)
    status, body = split_response(data)
    out(status=status, body_len=len(body), body_sha256=hashlib.sha256(body).hexdigest(),
        end=how, elapsed_ms=round((time.monotonic() - t0) * 1000, 1))
    if args.out:
        with open(args.out, "wb") as f:
            f.write(body)
    s.close()
    return 0


def payload(args):
    if args.hex:
        return bytes.fromhex(args.hex)
    if args.text is not None:
        return args.text.encode("latin-1").decode("unicode_escape").encode("latin-1")
    if args.garbage:
        # Never a TLS record (0x16) nor an HTTP method: the first byte is 0xff.
        return b"\xff" + os.urandom(args.garbage - 1)
    return b""


def send_dripped(sock, data, args):
    """The first --drip-first bytes (all with 0) in --drip byte segments, --drip-ms apart; then the rest."""
    if not args.drip:
        if data:
            sock.sendall(data)
        return
    head = len(data) if args.drip_first == 0 else min(args.drip_first, len(data))
    for i in range(0, head, args.drip):
        sock.sendall(data[i:min(i + args.drip, head)])
        time.sleep(args.drip_ms / 1000)
    if data[head:]:
        sock.sendall(data[head:])


def cmd_raw(args):
    """Send bytes (optionally a few at a time), then read until the server closes."""
    data = payload(args)
    t0 = time.monotonic()
    s = connect(args)
    try:
        send_dripped(s, data, args)
    except OSError as e:
        out(send_failed=e.strerror)
    if args.shut_wr:
        s.shutdown(socket.SHUT_WR)
    got, how = read_until_close(s)
    out(sent=len(data), received=len(got), end=how,
        elapsed_ms=round((time.monotonic() - t0) * 1000, 1))
    if args.out:
        with open(args.out, "wb") as f:
            f.write(got)
    s.close()
    return 0


def hello_bytes(host, ca):
    """The bytes of a real ClientHello, as a TLS client sends them first."""
    ctx = strict_ctx(ca)
    inc, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outb, server_hostname=host)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outb.read()


def cmd_idle(args):
    """Open N connections; send nothing (or a prefix); hold them; report closes by the server."""
    prefix = payload(args)
    socks, opened = [], []
    for _ in range(args.count):
        s = connect(args)
        if prefix:
            s.sendall(prefix)
        s.setblocking(False)
        socks.append(s)
        opened.append(time.monotonic())
    out(connected=len(socks))
    closed = {}
    stop = time.monotonic() + args.hold
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    while time.monotonic() < stop and not stopping and len(closed) < len(socks):
        live = [s for i, s in enumerate(socks) if i not in closed]
        r, _, _ = select.select(live, [], [], 0.05)
        for s in r:
            i = socks.index(s)
            try:
                b = s.recv(4096)
            except (ConnectionResetError, BlockingIOError, OSError):
                b = b""
            if not b:
                closed[i] = time.monotonic() - opened[i]
                out(closed_after_ms=round(closed[i] * 1000, 1))
    out(still_open=len(socks) - len(closed), closed=len(closed))
    for s in socks:
        s.close()
    return 0


def cmd_drip(args):
    """A TLS client whose ClientHello goes out args.drip bytes per segment, then a GET."""
    ctx = make_ctx(args)
    s = connect(args)
    inc, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outb, server_hostname=args.host)
    first = True
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
        data = outb.read()
        if data and first:
            send_dripped(s, data, args)
            first = False
        elif data:
            s.sendall(data)
        b = s.recv(65536)
        if not b:
            out(handshake="failed", error="server closed during the handshake")
            return 1
        inc.write(b)
    s.sendall(outb.read())
    out(handshake="ok", version=obj.version(), cipher=obj.cipher()[0])
    obj.write(f"GET {args.path} HTTP/1.0\r\nHost: {args.host}\r\nConnection: close\r\n\r\n".encode())
    s.sendall(outb.read())
    body = b""
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            chunk = obj.read(65536)
            if not chunk:
                break
            body += chunk
            continue
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break
        b = s.recv(65536)
        if not b:
            break
        inc.write(b)
    status, content = split_response(body)
    out(status=status, body_sha256=hashlib.sha256(content).hexdigest(), body_len=len(content))
    return 0


def cmd_wire(args):
    """One HTTPS GET that also keeps every raw byte the server sent after the handshake:
    a response that went out unencrypted shows as plaintext "HTTP/1." on the wire."""
    ctx = make_ctx(args)
    s = connect(args)
    inc, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outb, server_hostname=args.host)
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
        s.sendall(outb.read())
        b = s.recv(65536)
        if not b:
            out(handshake="failed")
            return 1
        inc.write(b)
    s.sendall(outb.read())
    obj.write(f"GET {args.path} HTTP/1.0\r\nHost: {args.host}\r\n\r\n".encode())
    s.sendall(outb.read())
    raw = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            raw += b
    except OSError as e:
        out(recv_error=e.strerror)
    i = raw.find(b"HTTP/1.")
    out(handshake="ok", wire_bytes=len(raw), plaintext_http_on_wire="yes" if i >= 0 else "no")
    if i >= 0:
        out(plaintext=repr(raw[i:i + 60]))
    inc.write(raw)
    data = b""
    try:
        while True:
            chunk = obj.read(65536)
            if not chunk:
                break
            data += chunk
    except ssl.SSLError as e:
        out(tls_error=e.reason or str(e))
    status, body = split_response(data)
    out(status=status, body=body.decode("latin-1").strip())
    return 0


def churn_one(kind, args, hello, want_sha):
    """One connection of the given kind. Returns None when it behaved, else a description."""
    s = connect(args)
    try:
        if kind == "tls":
            ctx = make_ctx(args)
            with tls_socket(ctx, s, args.host) as t:
                t.sendall(f"GET {args.path} HTTP/1.0\r\nHost: {args.host}\r\n\r\n".encode())
                data, how = read_until_close(t)
            status, body = split_response(data)
            if not re.match(r"HTTP/1\.[01] 200", status) or hashlib.sha256(body).hexdigest() != want_sha:
                return f"tls: status {status!r}, {len(body)} body bytes, end {how}"
        elif kind == "tls_abort":
            ctx = make_ctx(args)
            t = ctx.wrap_socket(s, server_hostname=args.host)
            t.sendall(b"GET / HTTP/1.0\r\n")  # half a request, then a TCP close: no close_notify
            t.detach()
        elif kind == "plain":
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data, how = read_until_close(s)
            if not data.startswith(b"HTTP/1.1 400"):
                return f"plain: got {data[:40]!r}, end {how}"
        elif kind == "close":
            pass
        elif kind == "garbage":
            s.sendall(b"\xff" + os.urandom(99))
            data, how = read_until_close(s)
            if data or how == "timeout":
                return f"garbage: got {len(data)} bytes back, end {how}"
        elif kind == "half_hello":
            s.sendall(hello[: len(hello) // 2])
        elif kind == "reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        return None
    except Exception as e:  # noqa: BLE001 - every failure is a finding
        return f"{kind}: {e!r}"
    finally:
        s.close()


def cmd_churn(args):
    kinds = args.kinds.split(",")
    hello = hello_bytes(args.host, args.ca)
    with open(args.expect, "rb") as f:
        want_sha = hashlib.sha256(f.read()).hexdigest()
    counts, failures = {}, []
    lock = threading.Lock()
    t0 = time.monotonic()

    def job(i):
        kind = kinds[i % len(kinds)]
        r = churn_one(kind, args, hello, want_sha)
        with lock:
            counts[kind] = counts.get(kind, 0) + 1
            if r:
                failures.append(r)

    with concurrent.futures.ThreadPoolExecutor(args.workers) as ex:
        list(ex.map(job, range(args.count)))
    out(total=sum(counts.values()), failures=len(failures),
        kinds=",".join(f"{k}:{v}" for k, v in sorted(counts.items())),
        elapsed_s=round(time.monotonic() - t0, 1))
    for f in failures[:10]:
        out(failure=f)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("get", "raw", "idle", "drip", "churn", "wire"):
        q = sub.add_parser(name)
        q.add_argument("--port", type=int, required=True)
        q.add_argument("--addr", default="127.0.0.1")
        q.add_argument("--host", default="localhost")
        q.add_argument("--ca")
        q.add_argument("--path", default="/")
        q.add_argument("--timeout", type=float, default=10)
        q.add_argument("--tls", choices=("1.2", "1.3"))
        q.add_argument("--cipher")
        q.add_argument("--out")
        q.add_argument("--hex")
        q.add_argument("--text")
        q.add_argument("--garbage", type=int, default=0)
        q.add_argument("--drip", type=int, default=0, help="bytes per segment")
        q.add_argument("--drip-ms", type=float, default=50)
        q.add_argument("--drip-first", type=int, default=0, help="drip only the first N bytes (0: all)")
        q.add_argument("--shut-wr", action="store_true", help="raw: half-close after sending")
        q.add_argument("--count", type=int, default=1)
        q.add_argument("--hold", type=float, default=60)
        q.add_argument("--workers", type=int, default=16)
        q.add_argument("--kinds", default="tls,plain,close,garbage,tls_abort,half_hello,reset")
        q.add_argument("--expect", help="file whose content the tls kind must receive")
    args = p.parse_args()
    cmds = {"get": cmd_get, "raw": cmd_raw, "idle": cmd_idle, "drip": cmd_drip, "churn": cmd_churn, "wire": cmd_wire}
    return cmds[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
