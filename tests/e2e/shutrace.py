"""shutrace.py PORT CA|--plain ROUNDS [FIRST_SEED]: the client of tests/e2e/progs/shutrace.c.

One connection per round, one after the other. Each sends "go SEED", waits a
moment (SEED says how long, and whether its receive buffer is tiny), reads the
stream to its end checking the pattern (byte i is i % 251), answers
"got N" with the count and closes. Over TLS the end must be close_notify; a
bare EOF, a timeout or a wrong byte fails the round. Prints one line,
"ROUNDS rounds: ..." for 28-shutdown-race.sh to compare, then up to five
failed rounds, one per line, "seed S: what happened".
"""
import socket
import ssl
import sys
import time

port, ca, rounds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
first = int(sys.argv[4]) if len(sys.argv) > 4 else 1
PATTERN = bytes(i % 251 for i in range(251)) * 300
ctx = None
if ca != "--plain":
    ctx = ssl.create_default_context(cafile=ca)


def one_round(seed):
    """None when the round went right, else what went wrong."""
    raw = socket.socket()
    if seed % 3 == 0:  # the smallest window: the server's writer waits for this client
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    raw.settimeout(10)
    raw.connect(("127.0.0.1", port))
    s = raw
    if ctx is not None:
        s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    try:
        s.sendall(f"go {seed}\n".encode())
        time.sleep((seed * 7919 % 5) / 1000)  # 0 to 4 ms, against the server's pause
        got, end = 0, None
        while end is None:
            try:
                chunk = s.recv(65536)
            except ssl.SSLEOFError:
                end = "EOF without close_notify"
                break
            except (socket.timeout, TimeoutError):
                end = "timed out waiting for the end of the stream"
                break
            if not chunk:
                break
            at = got % 251
            if chunk != PATTERN[at:at + len(chunk)] and not _matches(chunk, got):
                end = f"a wrong byte within bytes {got}-{got + len(chunk)}"
                break
            got += len(chunk)
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
