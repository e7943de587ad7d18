#!/usr/bin/python3
"""Hostile clients for tests/e2e/12-hostile-peers.sh and 14-alloc-failure.sh.

Each subcommand prints key=value lines the scenario checks (bad=N is the number
of connections that misbehaved, each then described by a bad=... line); every
socket has a timeout, so nothing here can hang a test.

  hellos     malformed and truncated ClientHellos, one connection each: the server
             answers with TLS records only (an alert, or a server flight the
             client then drops), closes, or waits; never plaintext
  random     random bytes (several lengths, TLS-looking first bytes or not)
  midhs      disconnects mid-handshake: after the ClientHello, after the server
             flight; by FIN and by RST
  midreq     TLS up, half a request, then FIN or RST
  middl      TLS up, GET a large file, read part of it, then FIN or RST
  flood      COUNT full handshakes (and a tiny GET on each), as fast as WORKERS go
  hold       COUNT TLS connections, handshake done, no request, held until SIGTERM
             or --hold seconds; then closed (close_notify)
  faults     COUNT GETs (small and --big; or --echo N bytes to an echo server) whose every outcome is classified:
             ok (the right body), refused/reset/closed/alert (a clean failure),
             or bad (plaintext, a wrong body, a hang past --deadline)
"""
import argparse
import concurrent.futures
import hashlib
import os
import random
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time

RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a reset


def out(**kv):
    for k, v in kv.items():
        print(f"{k}={v}", flush=True)


def connect(args, timeout=None):
    s = socket.create_connection((args.addr, args.port), timeout=timeout or args.timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def close(s, how):
    if how == "rst":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST)
    s.close()


def ctx_for(args):
    ctx = ssl.create_default_context(cafile=args.ca)
    if args.tls == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def tls_records_only(data):
    """None when data is a run of TLS records (a last one may be cut short), else why not."""
    i = 0
    while i + 5 <= len(data):
        typ, major, length = data[i], data[i + 1], struct.unpack(">H", data[i + 3:i + 5])[0]
        # An alert may carry the client's own record version (2.0 included).
        if typ not in (20, 21, 22, 23) or major not in (2, 3) or length > 16384 + 2048:
            return f"not a TLS record at byte {i}: {data[i:i + 16]!r}"
        i += 5 + length
    if b"HTTP/" in data:
        return "HTTP/ in the bytes"
    return None


def read_all(s, idle):
    """Reads until the peer closes or stays silent for idle seconds: (bytes, end)."""
    s.settimeout(idle)
    chunks = []
    while True:
        try:
            b = s.recv(65536)
        except (socket.timeout, TimeoutError):
            return b"".join(chunks), "silent"
        except ConnectionResetError:
            return b"".join(chunks), "reset"
        except OSError as e:
            return b"".join(chunks), f"error:{e.strerror}"
        if not b:
            return b"".join(chunks), "eof"
        chunks.append(b)


# ---- ClientHello construction --------------------------------------------------------------------

def ext(typ, body):
    return struct.pack(">HH", typ, len(body)) + body


def vec(n, body):
    """A TLS vector: a length of n bytes, then the body."""
    return len(body).to_bytes(n, "big") + body


def default_exts(rng):
    return [
        ext(0, vec(2, b"\x00" + vec(2, b"localhost"))),                  # server_name
        ext(10, vec(2, struct.pack(">HH", 0x1d, 0x17))),                  # groups: x25519, P-256
        ext(11, vec(1, b"\x00")),                                         # ec_point_formats
        ext(13, vec(2, struct.pack(">HHH", 0x0403, 0x0804, 0x0401))),     # signature_algorithms
        ext(43, vec(1, struct.pack(">HH", 0x0304, 0x0303))),              # supported_versions
        ext(51, vec(2, struct.pack(">HH", 0x1d, 32) + rng.randbytes(32))),  # key_share x25519
    ]


def client_hello(rng, version=0x0303, suites=(0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f), sid=None,
                 comp=b"\x00", exts=None, hs_type=1, hs_len_delta=0, ext_len_delta=0,
                 rec_version=0x0301, rec_len=None):
    body = struct.pack(">H", version) + rng.randbytes(32)
    body += vec(1, rng.randbytes(32) if sid is None else sid)
    body += vec(2, b"".join(struct.pack(">H", c) for c in suites))
    body += vec(1, comp)
    e = b"".join(default_exts(rng) if exts is None else exts)
    body += (len(e) + ext_len_delta).to_bytes(2, "big") + e
    hs = bytes([hs_type]) + (len(body) + hs_len_delta).to_bytes(3, "big") + body
    length = len(hs) if rec_len is None else rec_len
    return struct.pack(">BHH", 22, rec_version, length) + hs


def hello_variants(rng):
    """(name, bytes, expect): expect 'refused' (an alert or a close, never a flight),
    'any' (a flight is fine too: the hello may be acceptable), 'hold' (held open)."""
    x = lambda: default_exts(rng)  # noqa: E731
    v = [
        ("well-formed (control: the server answers with a flight)", client_hello(rng), "flight"),
        ("no cipher suite in common (RC4, 3DES)", client_hello(rng, suites=(0x0005, 0x000a), exts=x()[:4]), "refused"),
        ("an empty cipher suite list", client_hello(rng, suites=()), "refused"),
        ("client_version SSL 3.0, no supported_versions", client_hello(rng, version=0x0300, exts=x()[:4]), "refused"),
        ("client_version 2.0", client_hello(rng, version=0x0200, exts=x()[:4]), "refused"),
        ("supported_versions naming only an unknown version 0x0305",
         client_hello(rng, exts=x()[:4] + [ext(43, vec(1, b"\x03\x05"))]), "refused"),
        ("a handshake length 1 byte short of the body", client_hello(rng, hs_len_delta=-1), "refused"),
        ("an extensions block length past the end", client_hello(rng, ext_len_delta=40), "refused"),
        ("an extension whose length runs past the block",
         client_hello(rng, exts=x() + [b"\xfa\xfa\x01\x00" + rng.randbytes(20)]), "refused"),
        ("the same extension twice", client_hello(rng, exts=x() + [ext(10, vec(2, b"\x00\x1d"))]), "refused"),
        ("a 5-byte x25519 key share",
         client_hello(rng, exts=x()[:5] + [ext(51, vec(2, struct.pack(">HH", 0x1d, 5) + rng.randbytes(5)))]), "refused"),
        ("a session id of 33 bytes", client_hello(rng, sid=rng.randbytes(33)), "refused"),
        ("no compression method", client_hello(rng, comp=b""), "refused"),
        ("only DEFLATE compression", client_hello(rng, comp=b"\x01"), "refused"),
        ("a ServerHello sent by the client", client_hello(rng, hs_type=2), "refused"),
        ("a record length of 0 (an empty record: OpenSSL waits for more)", client_hello(rng)[:3] + b"\x00\x00", "any"),
        ("a record length over 2^14 + 2048 (record_overflow)",
         struct.pack(">BHH", 22, 0x0301, 0x4900) + rng.randbytes(0x4900), "refused"),
        ("unknown extensions full of random bytes (ignored: a flight)",
         client_hello(rng, exts=x() + [ext(0x0a0a + 0x1010 * i, rng.randbytes(40)) for i in range(4)]), "any"),
        ("a server_name of 255 random bytes", client_hello(rng, exts=[ext(0, vec(2, b"\x00" + vec(2, rng.randbytes(255))))] + x()[1:]), "any"),
    ]
    real = client_hello(rng)
    for i in range(int(os.environ.get("HOSTILE_FUZZ", "30"))):
        b = bytearray(real)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(5, len(b))] = rng.randrange(256)
        v.append((f"fuzzed ClientHello #{i} (bytes flipped after the record header)", bytes(b), "any"))
    return v


def one_hello(args, name, data, expect):
    """Sends data, reads what comes back; a description of what went wrong, or None."""
    t0 = time.monotonic()
    try:
        s = connect(args)
        s.sendall(data)
    except OSError as e:
        return None if expect != "flight" else f"{name}: {e!r}"
    got, end = read_all(s, args.idle)
    s.close()
    why = tls_records_only(got)
    ms = round((time.monotonic() - t0) * 1000)
    if why:
        return f"{name}: {why}"
    flight = got[:1] == b"\x16"
    if expect == "flight" and not flight:
        return f"{name}: no server flight ({len(got)} bytes, {end})"
    if expect == "refused" and (flight or end == "silent"):
        return f"{name}: not refused ({len(got)} bytes back, first {got[:6].hex()}, {end} after {ms} ms)"
    return None


def cmd_hellos(args):
    rng = random.Random(args.seed)
    bad, kinds = [], {}
    for name, data, expect in hello_variants(rng):
        r = one_hello(args, name, data, expect)
        kinds[expect] = kinds.get(expect, 0) + 1
        if r:
            bad.append(r)
    # Truncated: a record header announcing more than is sent, then FIN.
    real = client_hello(rng)
    for cut in (1, 3, 5, 6, 40, len(real) - 1):
        s = connect(args)
        s.sendall(real[:cut])
        s.shutdown(socket.SHUT_WR)
        got, end = read_all(s, args.idle)
        s.close()
        kinds["truncated"] = kinds.get("truncated", 0) + 1
        if tls_records_only(got) or end == "silent":
            bad.append(f"truncated at {cut} then FIN: {len(got)} bytes back, {end}")
    out(variants=sum(kinds.values()), kinds=",".join(f"{k}:{v}" for k, v in sorted(kinds.items())),
        bad=len(bad))
    for b in bad:
        out(bad=b)
    return 0


def cmd_random(args):
    rng = random.Random(args.seed)
    bad, n = [], 0
    for length in (1, 2, 5, 7, 100, 4096, 16389, 40000, 70000):
        for first in (b"", b"\x16\x03\x01", b"\x16\x03\x03\xff\xff"):
            data = first + rng.randbytes(max(0, length - len(first)))
            n += 1
            try:
                s = connect(args)
                s.sendall(data)
            except OSError:
                continue  # the server closed on the first bytes: fine
            got, end = read_all(s, args.idle)
            s.close()
            why = tls_records_only(got)
            if why or (end == "silent" and first == b"" and length > 8):
                bad.append(f"{length} random bytes after {first.hex() or 'nothing'}: {why or end}")
    out(sent=n, bad=len(bad))
    for b in bad:
        out(bad=b)
    return 0


def tls_handshake_bio(args):
    """A client on memory BIOs over a plain socket: (socket, SSLObject, in, out)."""
    ctx = ctx_for(args)
    s = connect(args)
    inc, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    return s, ctx.wrap_bio(inc, outb, server_hostname=args.host), inc, outb


def cmd_midhs(args):
    bad, n = [], 0
    for i in range(args.count):
        where = ("hello", "flight")[i % 2]
        how = ("fin", "rst")[(i // 2) % 2]
        n += 1
        try:
            s, obj, inc, outb = tls_handshake_bio(args)
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
            s.sendall(outb.read())
            if where == "flight":
                # Read the server's flight (ServerHello .. Finished), then leave.
                s.settimeout(args.timeout)
                got = b""
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    got += b
                    inc.write(b)
                    try:
                        obj.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        pass
                    if outb.pending:
                        break  # our Finished is ready: the flight is all here
                if not got:
                    bad.append(f"#{i} no server flight")
            close(s, how)
        except OSError as e:
            bad.append(f"#{i} {where}/{how}: {e!r}")
    out(connections=n, bad=len(bad))
    for b in bad[:10]:
        out(bad=b)
    return 0


def cmd_midreq(args):
    bad = []
    for i in range(args.count):
        how = ("fin", "rst")[i % 2]
        try:
            s = connect(args)
            t = ctx_for(args).wrap_socket(s, server_hostname=args.host)
            t.sendall(f"GET {args.path} HTTP/1.1\r\nHost: loc".encode())  # half a request
            close(socket.socket(fileno=t.detach()), how)
        except OSError as e:
            bad.append(f"#{i} {how}: {e!r}")
    out(connections=args.count, bad=len(bad))
    for b in bad[:10]:
        out(bad=b)
    return 0


def cmd_middl(args):
    bad, read_total = [], 0
    for i in range(args.count):
        how = ("fin", "rst")[i % 2]
        want = args.read_mb * 1024 * 1024
        try:
            s = connect(args)
            t = ctx_for(args).wrap_socket(s, server_hostname=args.host)
            t.sendall(f"GET {args.path} HTTP/1.1\r\nHost: {args.host}\r\n\r\n".encode())
            head, n = b"", 0
            while n < want:
                b = t.recv(1 << 20)
                if not b:
                    break
                head, n = head or b, n + len(b)
            if not re.match(rb"HTTP/1\.[01] 200", head) or n < want:
                bad.append(f"#{i}: {n} bytes, status {head[:20]!r}")
            read_total += n
            close(socket.socket(fileno=t.detach()), how)
        except OSError as e:
            bad.append(f"#{i} {how}: {e!r}")
    out(connections=args.count, read_mb=round(read_total / 1048576, 1), bad=len(bad))
    for b in bad[:10]:
        out(bad=b)
    return 0


def get_small(args, ctx):
    with connect(args) as s, ctx.wrap_socket(s, server_hostname=args.host) as t:
        t.sendall(f"GET {args.path} HTTP/1.0\r\nHost: {args.host}\r\n\r\n".encode())
        data = b""
        while True:
            b = t.recv(65536)
            if not b:
                break
            data += b
    return data


def cmd_flood(args):
    ctx = ctx_for(args)
    bad, lock = [], threading.Lock()
    ok = [0]

    def job(i):
        try:
            data = get_small(args, ctx)
            if re.match(rb"HTTP/1\.[01] 200", data):
                with lock:
                    ok[0] += 1
                return
            why = f"#{i}: {data[:30]!r}"
        except (OSError, ssl.SSLError) as e:
            why = f"#{i}: {e!r}"
        with lock:
            bad.append(why)

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.workers) as ex:
        list(ex.map(job, range(args.count)))
    el = time.monotonic() - t0
    out(handshakes=args.count, ok=ok[0], bad=len(bad), elapsed_s=round(el, 1),
        per_s=round(args.count / el))
    for b in bad[:10]:
        out(bad=b)
    return 0


def cmd_hold(args):
    ctx = ctx_for(args)
    held, bad = [], []
    for i in range(args.count):
        try:
            s = connect(args)
            held.append(ctx.wrap_socket(s, server_hostname=args.host))
        except (OSError, ssl.SSLError) as e:
            bad.append(f"#{i}: {e!r}")
    out(held=len(held), bad=len(bad))
    for b in bad[:10]:
        out(bad=b)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGUSR1, lambda *_: stopping.append(1))
    end = time.monotonic() + args.hold
    while not stopping and time.monotonic() < end:
        time.sleep(0.05)
    closed_by_server = 0
    for t in held:
        t.setblocking(False)
        try:
            if t.recv(1) == b"":
                closed_by_server += 1
        except (ssl.SSLWantReadError, BlockingIOError):
            pass
        except (OSError, ssl.SSLError):
            closed_by_server += 1
        try:
            t.close()
        except OSError:
            pass
    out(released=len(held), closed_by_server_meanwhile=closed_by_server)
    return 0


def fault_echo(args, s, obj, inc, outb, t0):
    """--echo N: N random bytes in records of 1000, each read back before the next (an echo
    server never closes): ok when every byte came back; a close or reset is clean."""
    raw = b""
    for _ in range(max(1, args.echo // 1000)):
        msg = os.urandom(1000)
        obj.write(msg)
        s.sendall(outb.read())
        got = b""
        while len(got) < len(msg):
            try:
                got += obj.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            b = s.recv(65536)  # the caller's handlers turn errors and timeouts into outcomes
            if not b:
                why = tls_records_only(raw)
                return ("bad", f"plaintext? {why}") if why else ("closed", f"after {len(got)} echoed bytes")
            raw += b
            inc.write(b)
        if got != msg:
            return "bad", f"the echo differs ({len(got)} bytes)"
    why = tls_records_only(raw)
    return ("bad", f"plaintext? {why}") if why else ("ok", round((time.monotonic() - t0) * 1000))


def fault_one(args, ctx, path, want_sha):
    """One GET; (outcome, detail). Reads raw bytes so that plaintext would show."""
    t0 = time.monotonic()
    try:
        s = connect(args)
    except OSError as e:
        return "refused", repr(e)
    inc, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outb, server_hostname=args.host)
    raw = b""
    body = b""
    state = "handshake"
    try:
        s.settimeout(args.deadline)
        while state == "handshake":
            try:
                obj.do_handshake()
                state = "request"
            except ssl.SSLWantReadError:
                pass
            if outb.pending:
                s.sendall(outb.read())
            if state != "handshake":
                break
            b = s.recv(65536)
            if not b:
                return "closed", "in the handshake"
            raw += b
            inc.write(b)
        if args.echo:
            return fault_echo(args, s, obj, inc, outb, t0)
        obj.write(f"GET {path} HTTP/1.0\r\nHost: {args.host}\r\n\r\n".encode())
        s.sendall(outb.read())
        while True:
            try:
                chunk = obj.read(1 << 20)
                if not chunk:
                    break
                body += chunk
                continue
            except ssl.SSLWantReadError:
                pass
            b = s.recv(1 << 20)
            if not b:
                break
            raw += b
            inc.write(b)
    except ssl.SSLZeroReturnError:
        pass
    except ssl.SSLError as e:
        why = tls_records_only(raw)
        if why:
            return "bad", f"plaintext? {why}"
        return ("alert" if "ALERT" in str(e) else "tls_error"), f"{state}: {e.reason}"
    except ConnectionResetError:
        return ("reset" if state == "handshake" else "reset_after"), state
    except (socket.timeout, TimeoutError):
        return "bad", f"hang: nothing for {args.deadline} s in the {state} ({len(raw)} raw bytes)"
    except OSError as e:
        return "tls_error", f"{state}: {e!r}"
    finally:
        s.close()
    why = tls_records_only(raw)
    if why:
        return "bad", f"plaintext? {why}"
    head, _, content = body.partition(b"\r\n\r\n")
    if not head:
        return "closed", f"after the {state}, no response"
    if hashlib.sha256(content).hexdigest() == want_sha and head.startswith(b"HTTP/1.") and b" 200 " in head[:13]:
        return "ok", round((time.monotonic() - t0) * 1000)
    m = re.search(rb"Content-Length: *(\d+)", head, re.I)
    if m and len(content) < int(m.group(1)):
        return "cut", f"{len(content)} of {m.group(1).decode()} body bytes (the connection failed mid-body)"
    return "bad", f"wrong body: {head[:40]!r}, {len(content)} bytes"


def cmd_faults(args):
    ctx = ctx_for(args)
    shas = {}
    for p in (args.path, args.big):
        if p and not args.echo:
            with open(os.path.join(args.dir, p.lstrip("/")), "rb") as f:
                shas[p] = hashlib.sha256(f.read()).hexdigest()
    paths = [args.path] * max(1, args.big_every - 1) + ([args.big] if args.big else [])
    counts, bads, lock = {}, [], threading.Lock()

    def job(i):
        p = paths[i % len(paths)]
        k, d = fault_one(args, ctx, p, shas.get(p))
        with lock:
            counts[k] = counts.get(k, 0) + 1
            if k == "bad":
                bads.append(f"#{i} {p}: {d}")

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.workers) as ex:
        list(ex.map(job, range(args.count)))
    out(total=args.count, outcomes=",".join(f"{k}:{v}" for k, v in sorted(counts.items())),
        ok=counts.get("ok", 0), bad=len(bads), elapsed_s=round(time.monotonic() - t0, 1))
    for b in bads[:10]:
        out(bad=b)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    cmds = {"hellos": cmd_hellos, "random": cmd_random, "midhs": cmd_midhs, "midreq": cmd_midreq,
            "middl": cmd_middl, "flood": cmd_flood, "hold": cmd_hold, "faults": cmd_faults}
    for name in cmds:
        q = sub.add_parser(name)
        q.add_argument("--port", type=int, required=True)
        q.add_argument("--addr", default="127.0.0.1")
        q.add_argument("--host", default="localhost")
        q.add_argument("--ca")
        q.add_argument("--tls", choices=("1.2", "1.3"))
        q.add_argument("--path", default="/")
        q.add_argument("--big", help="faults: a large file to fetch too")
        q.add_argument("--big-every", type=int, default=10, help="faults: one GET in N is --big")
        q.add_argument("--dir", help="faults: the server's root, to know the bodies")
        q.add_argument("--timeout", type=float, default=10)
        q.add_argument("--idle", type=float, default=3, help="silence after which a reader gives up")
        q.add_argument("--deadline", type=float, default=8, help="faults: silence that counts as a hang")
        q.add_argument("--seed", type=int, default=5)
        q.add_argument("--count", type=int, default=1)
        q.add_argument("--workers", type=int, default=8)
        q.add_argument("--hold", type=float, default=60)
        q.add_argument("--read-mb", type=int, default=4)
        q.add_argument("--echo", type=int, default=0, help="faults: an echo server, N bytes each")
    args = p.parse_args()
    return cmds[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
