"""shutrace.py PORT CA|--plain ROUNDS [FIRST_SEED] [--stall]: the client of tests/e2e/progs/shutrace.c.

One connection per round, one after the other. Each sends "go SEED", waits a
moment (SEED says how long, and whether its receive buffer is tiny), reads the
stream to its end checking the pattern (byte i is i % 251), answers
"got N" with the count and closes. Over TLS the end must be close_notify; a
bare EOF, a timeout or a wrong byte fails the round.

With --stall the client sends "go SEED stall" and reads nothing for 3 s: the
server's writer waits for room when the shutdown comes, and the server checks
that the shutdown released it soon (the kernel: at once; Atlas: within the
second it gives the write to finish its record). The bytes may then end cut
short, which over TLS reads as an end without close_notify: allowed here, and
no count goes back (the connection may be over).

Prints one line, "ROUNDS rounds: ..." for 28-shutdown-race.sh to compare, then
up to five failed rounds, one per line, "seed S: what happened".
"""
import socket
import ssl
import sys
import time

args = [a for a in sys.argv[1:] if a != "--stall"]
STALL = "--stall" in sys.argv
port, ca, rounds = int(args[0]), args[1], int(args[2])
first = int(args[3]) if len(args) > 3 else 1
PATTERN = bytes(i % 251 for i in range(251)) * 300
ctx = None
if ca != "--plain":
    ctx = ssl.create_default_context(cafile=ca)
    # Debian's python sets it by default: an EOF without close_notify would read as a clean end.
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)


def one_round(seed):
    """None when the round went right, else what went wrong."""
    raw = socket.socket()
    if STALL or seed % 3 == 0:  # the smallest window: the server's writer waits for this client
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    raw.settimeout(10)
    raw.connect(("127.0.0.1", port))
    s = raw
    if ctx is not None:
        s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    try:
        s.sendall(f"go {seed}{' stall' if STALL else ''}\n".encode())
        # 0 to 4 ms against the server's pause; 3 s when stalling
        time.sleep(3 if STALL else (seed * 7919 % 5) / 1000)
        got, end = 0, None
        while end is None:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, TimeoutError):
                end = "timed out waiting for the end of the stream"
                break
            except ssl.SSLError as e:  # SSLEOFError, or what a record cut short reads as
                end = f"end without close_notify ({e.reason or e})"
                break
            if not chunk:
                break
            at = got % 251
            if chunk != PATTERN[at:at + len(chunk)] and not _matches(chunk, got):
                end = f"a wrong byte within bytes {got}-{got + len(chunk)}"
                break
            got += len(chunk)
        if STALL and (end is None or end.startswith("end without close_notify")):
            return None  # the server checks when its writer was released, not the count
        if end is None:
            s.sendall(f"got {got}\n".encode())
            return None
        return f"after {got} bytes: {end}"
    finally:
        s.close()


def _matches(chunk, offset):
    """The pattern check for chunks longer than PATTERN holds."""
    return all(b == (offset + i) % 251 for i, b in enumerate(chunk))


failed = []
for seed in range(first, first + rounds):
    try:
        why = one_round(seed)
    except OSError as e:
        why = f"{type(e).__name__}: {e}"
    if why:
        failed.append(f"seed {seed}: {why}")
if failed:
    print(f"{rounds} rounds: {len(failed)} failed")
else:
    print(f"{rounds} rounds: every byte, then the end of the stream")
for line in failed[:5]:
    print(line)
