#!/usr/bin/env python3
"""How a server's close ends the TLS stream, for 28-shutdown-race (userspace path)
and 32-ktls-apps (kernel path, inside UML).

  closer.py serve PORT MODE     a plaintext server (run under Atlas): each connection
                                sends one line; the server answers and closes:
      full    non-blocking writes until EAGAIN, and again after 0.2 s until a
              write still gets EAGAIN then (the client's window is closed: the
              socket stays full, as a client slower than the server keeps it),
              then close(); says "closer: wrote N" on stderr; full-stall is
              the same, for a client that waits 5 s: longer than Atlas keeps a
              closed socket for close_notify alone (3 s), so the FIN alone ends it;
      abort   1000 bytes, then SO_LINGER on with 0 s and close(): an abortive
              close, which must reach the client as a reset, not as an end;
      abort-shut  the same, but shutdown(SHUT_WR) before the close, which waits
              for the client's end: the FIN the server asked for must come (no
              close_notify: the socket is set to close abortively).
  closer.py fetch PORT CA MODE  the client: sends its line, waits 2 s before
                                reading (full; full-stall: 5 s) and reads to the end; prints
                                "got N, END", END one of close_notify, eof (a FIN
                                without close_notify), reset, timeout.
                                For tests/e2e/progs/txrace.c's modes (write-close,
                                sendfile-close, write-shut, sendfile-shut, and the
                                dup- and cancel ones) the line is
                                the mode, the receive buffer 64 KiB, and the wait 1 s
                                (*-shut: no wait, but a slow reader: 64 KiB each 20 ms).
"""
import socket
import ssl
import struct
import sys
import time

def serve(port, mode):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(8)
    while True:
        s, _ = ls.accept()
        try:
            s.settimeout(30)
            s.recv(100)
            if mode.startswith("full"):
                s.setblocking(False)
                total, piece, full = 0, b"f" * 65536, False
                while True:
                    try:
                        total += s.send(piece)
                        full = False
                    except BlockingIOError:
                        if full:
                            break
                        full = True
                        time.sleep(0.2)  # the bytes in flight land, and are acked
                print(f"closer: wrote {total}", file=sys.stderr, flush=True)
            else:
                s.sendall(b"a" * 1000)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                if mode == "abort-shut":
                    s.shutdown(socket.SHUT_WR)
                    while s.recv(100):  # until the client's end
                        pass
        except OSError as e:
            print(f"closer: {e}", file=sys.stderr, flush=True)
        s.close()


def fetch(port, ca, mode):
    ctx = ssl.create_default_context(cafile=ca)
    # Debian's python 3.11 sets this by default: a FIN without close_notify would read as b"".
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    txrace = mode in ("write-close", "sendfile-close", "write-shut", "sendfile-shut",
                      "dup-write-close", "dup-sendfile-close", "write-cancel")
    raw = socket.socket()
    if txrace:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    raw.settimeout(10)
    raw.connect(("127.0.0.1", port))
    n, end = 0, "?"
    try:
        # A FIN without close_notify is an error here, not an end.
        s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
        s.sendall(f"{mode}\n".encode() if txrace else b"go\n")
        if mode.startswith("full"):
            time.sleep(2 if mode == "full" else 5)
        elif txrace and not mode.endswith("-shut"):
            time.sleep(1)
        # *-shut: a slow reader (64 KiB each 20 ms), so that room comes and goes while
        # the server's one send of 8 MiB runs, and its shutdown comes 0.3 s in.
        pause = 0.02 if mode.endswith("-shut") else 0
        while True:
            chunk = s.recv(65536)
            if not chunk:
                end = "close_notify"
                break
            n += len(chunk)
            if pause:
                time.sleep(pause)
    except ssl.SSLZeroReturnError:
        end = "close_notify"
    except ssl.SSLEOFError:
        end = "eof"
    except ConnectionResetError:
        end = "reset"
    except (socket.timeout, TimeoutError):
        end = "timeout"
    except ssl.SSLError as e:
        # Debian's python 3.11 raises some of OpenSSL's "unexpected eof" as a plain SSLError.
        end = "eof" if "UNEXPECTED_EOF" in str(e.reason).upper() else f"SSLError {e.reason}"
    except OSError as e:
        end = type(e).__name__
    raw.close()
    print(f"got {n}, {end}")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    else:
        fetch(int(sys.argv[2]), sys.argv[3], sys.argv[4])
