#!/usr/bin/env python3
"""tests/fuzz/seeds.py: writes the seed corpora of tests/fuzz/corpus/<target>/.

Each seed is a small, readable starting point in the input format its target
documents at the top of tests/fuzz/fuzz_<target>.c: valid and invalid values,
real record headers, each kind of control record. The files are committed;
run this again (from anywhere) after changing a format. Seeds named regress-*
are reproducers of bugs the fuzzers found, and seeds named by their SHA-1 were
added by `tests/fuzz/run.sh merge` from longer runs (they reach code these do
not); this script never touches either.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))


# ---- config: flags (bit i: variable i unset), error buffer size, then
# PORTS, CERT, KEY, KTLS, TIMEOUT, LOG_LEVEL[, SSLKEYLOGFILE, ATLAS_KEY_MODE_WARNED]
# separated by NUL bytes (the last two only when given: unset otherwise).
def config(name, ports=b"8443", cert=b"/etc/atlas/cert.pem", key=b"/etc/atlas/key.pem",
           ktls=b"", timeout=b"", log=b"", unset=0, errlen=199, keylog=None, warned=None):
    values = [ports, cert, key, ktls, timeout, log]
    if keylog is not None or warned is not None:
        values += [keylog or b"", warned or b""]
    write("config", name, bytes([unset, errlen]) + b"\0".join(values))


config("valid-minimal")
config("valid-full", ports=b"443,8443,65535,1", ktls=b"require", timeout=b"3600000", log=b"debug")
config("valid-leading-zeros", ports=b"0008443", timeout=b"0001")
config("valid-duplicates", ports=b"8443,8443,443")
for i, bad in enumerate([b"0", b"65536", b"8443,", b",8443", b"84 43", b"+443", b"-1", b"8443x",
                         b"00000000443", b"18446744073709552059", b"", b"443,,8443", b"84\n43"]):
    config("ports-bad-%02d" % i, ports=bad)
config("ports-unset", unset=1)
config("cert-unset", unset=2)
config("key-empty", key=b"")
config("ktls-off", ktls=b"off")
config("ktls-bad", ktls=b"Auto")
config("ktls-newline", ktls=b"off\natlas: info: forged")
config("timeout-1", timeout=b"1")
config("timeout-0", timeout=b"0")
config("timeout-too-big", timeout=b"3600001")
config("timeout-units", timeout=b"10s")
config("log-error", log=b"error")
config("log-bad", log=b"verbose\x1b[2J")
config("small-error-buffer", ktls=b"a-much-longer-value-than-sixteen-bytes", errlen=15)
config("tiny-error-buffer", ports=b"x", errlen=0)
config("keylog-set", keylog=b"/tmp/keys.log", warned=b"1")
config("keylog-empty-warned-other", keylog=b"", warned=b"yes")
config("keylog-too-long", keylog=b"/" + b"k" * 4200)
config("keylog-with-bad-ports", ports=b"8443,", keylog=b"/tmp/k", warned=b"1")

# ---- sniff: the first bytes a client sends.
for m in [b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE"]:
    write("sniff", "http-" + m.decode().lower(), m + b" / HTTP/1.1\r\nHost: localhost\r\n\r\n")
write("sniff", "http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
write("sniff", "http-partial-method", b"OPTIO")
write("sniff", "http-lowercase", b"get / HTTP/1.1\r\n\r\n")
write("sniff", "http-no-space", b"GETX / HTTP/1.1\r\n\r\n")
# A TLS 1.2/1.3 ClientHello's record and handshake headers (RFC 8446 sections 5.1, 4.1.2).
write("sniff", "tls-clienthello", b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03" + bytes(range(32)))
write("sniff", "tls-record-version-0301", b"\x16\x03\x01")
write("sniff", "tls-one-byte", b"\x16")
write("sniff", "tls-bad-major", b"\x16\x02\x00")
write("sniff", "sslv2-hello", b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10")
write("sniff", "ssh-banner", b"SSH-2.0-OpenSSH_9.2\r\n")
write("sniff", "nul", b"\x00")
write("sniff", "big-request", b"POST / HTTP/1.1\r\nContent-Length: 3000\r\n\r\n" + b"x" * 3000)


# ---- control: a setup byte (bit 0: the client's FIN after the last event;
# bits 1-2: the peer's address family), then ops: 0-4 a record (data, alert,
# handshake, any type, any type without its cmsg), 5 a kernel error, 6 the
# host's close_notify, 7-9 a host read (flags, iovec count, iovec sizes).
def rec(kind, body, rtype=None):
    out = [kind]
    if kind >= 3:
        out.append(rtype)
    if len(body) < 255:
        out.append(len(body))
    else:
        out += [255] + list(struct.pack(">H", len(body)))
    return bytes(out) + bytes(body[:64])


def read(flags=0, sizes=(16384,)):
    # flags: 0 none, 1 MSG_DONTWAIT, 2 MSG_PEEK, 3 both
    shape = flags | ((len(sizes) - 1) << 2)
    return bytes([7, shape]) + b"".join(struct.pack(">H", s) for s in sizes)


def err(i):  # EAGAIN, EINTR, EBADMSG, ECONNRESET, ETIMEDOUT, EIO, ENOMEM
    return bytes([5, i])


CLOSE_NOTIFY = [1, 0]
KEY_UPDATE = [24, 0, 0, 1, 0]  # update_not_requested
NEW_SESSION_TICKET = [4, 0, 0, 8, 0, 0, 0, 60, 1, 2, 3, 4]
control = {
    "data": [0, rec(0, b"hello"), read()],
    "data-then-close-notify": [1, rec(0, b"GET / HTTP/1.1\r\n\r\n"), rec(1, CLOSE_NOTIFY), read(), read(), read()],
    "close-notify": [0, rec(1, CLOSE_NOTIFY), read(), read(1)],
    "close-notify-fatal-level": [0, rec(1, [2, 0]), read()],
    "alert-handshake-failure": [2, rec(1, [2, 40]), read(), read()],
    "alert-one-byte": [4, rec(1, [2]), read()],
    "key-update": [0, rec(2, KEY_UPDATE), read(), read()],
    "key-update-after-close": [0, bytes([6]), rec(2, KEY_UPDATE), read()],
    "key-update-requested": [1, rec(0, b"abc"), rec(2, [24, 0, 0, 1, 1]), read(), read()],
    "new-session-ticket": [0, rec(2, NEW_SESSION_TICKET), read()],
    "change-cipher-spec": [0, rec(3, [1], 20), read()],
    "heartbeat": [0, rec(3, [1, 0, 16], 24), read()],
    "no-cmsg": [0, rec(4, [1, 0], 21), read()],
    "bad-record-mac": [0, err(2), rec(0, b"after"), read(), read()],
    "eagain": [0, err(0), read(1), rec(0, b"later"), read(1)],
    "eintr": [1, err(1), read(), read()],
    "spurious-eio": [0, err(5), rec(0, b"data"), read()],
    "peek": [0, rec(0, b"peekaboo"), read(2, (3,)), read(2), read(0, (4, 4))],
    "iovecs": [0, rec(0, b"0123456789"), rec(0, b"abcdef"), read(0, (4, 0, 20))],
    "full-record": [0, rec(0, bytes(range(64)) * 256), read(0, (16384,)), read()],
    "eof": [1, read()],
    "zero-length-read": [0, rec(0, b"x"), read(0, (0,))],
}
for name, parts in control.items():
    write("control", name, b"".join(bytes([p]) if isinstance(p, int) else p for p in parts))


# ---- emul: a setup byte (0 mod 16: the file cannot be read at an offset;
# bit 1: the pipe's writer is gone; bit 2: the client closed; bits 4-5: how
# the file size is picked), the size and the file position (8 bytes each), the
# out pipe's size (/256), then ops: 0-1 sendfile, 2 splice into the
# connection, 3-4 splice out of it, 5 move the file position. Each call's
# fakes then read one byte each to decide what they do (2: all of it).
def u64(v):
    return struct.pack(">Q", v)


def sendfile(offset=None, count=100000, pick_off=0, pick_count=0):
    how = (1 if offset is not None else 0) | (pick_off << 1) | (pick_count << 3)
    return bytes([0, how]) + u64(offset or 0) + u64(count)


FULL = bytes([2]) * 40  # every pread and send takes everything
emul = {
    "sendfile-offset": bytes([0x11]) + u64(50000) + u64(0) + bytes([16]) + sendfile(0) + FULL,
    "sendfile-position": bytes([0x11]) + u64(50000) + u64(1000) + bytes([16]) + sendfile() + FULL,
    "sendfile-eagain-retry": bytes([0x11]) + u64(40000) + u64(0) + bytes([16]) + sendfile(0)
    + bytes([2, 2, 2, 0x1b, 2, 0]) + sendfile(0) + FULL,
    "sendfile-short-reads": bytes([0x11]) + u64(40000) + u64(0) + bytes([16]) + sendfile(7)
    + bytes([0x22, 2, 0x12, 2, 1, 2]) * 4,
    "sendfile-near-off-max": bytes([0x21]) + u64(100) + u64(0) + bytes([16])
    + sendfile(500, pick_off=2) + FULL,
    "sendfile-negative-offset": bytes([0x11]) + u64(100) + u64(0) + bytes([16])
    + sendfile(2**64 - 5, pick_off=3) + FULL,
    "sendfile-unseekable": bytes([0x00]) + u64(100) + u64(0) + bytes([16]) + sendfile() + FULL,
    "sendfile-eof": bytes([0x11]) + u64(1000) + u64(999) + bytes([16]) + sendfile() + FULL,
    "splice-to": bytes([0x11]) + u64(0) + u64(0) + bytes([16]) + bytes([2]) + struct.pack(">H", 20000)
    + bytes([0]) + u64(20000) + bytes([1, 1, 2]) * 3,
    "splice-to-nonblock-empty": bytes([0x11]) + u64(0) + u64(0) + bytes([16]) + bytes([2, 0, 0, 1])
    + u64(100) + bytes([1, 1, 2]),
    "splice-to-offset": bytes([0x11]) + u64(0) + u64(0) + bytes([16]) + bytes([2, 0, 16, 2])
    + u64(100) + FULL,
    "splice-from": bytes([0x11]) + u64(0) + u64(0) + bytes([16]) + bytes([3]) + struct.pack(">H", 30000)
    + bytes([1]) + u64(30000) + bytes([2]) * 8,
    "splice-from-full-pipe": bytes([0x11]) + u64(0) + u64(0) + bytes([0]) + bytes([3, 0x40, 0, 1])
    + u64(10000) + bytes([2]) * 4 + bytes([3, 0x40, 0, 1]) + u64(10000) + bytes([2]) * 4
    + bytes([4, 0x10, 0, 1]) + u64(10000) + bytes([2]) * 4,
    "splice-from-peer-closed": bytes([0x15]) + u64(0) + u64(0) + bytes([16]) + bytes([3, 0, 0, 0])
    + u64(100) + bytes([2]),
}
for name, data in emul.items():
    write("emul", name, data)
