"""What shutrace.py and duowrite.py share: clients that play seeded rounds,
one connection each, against tests/e2e/progs/shutrace.c and duowrite.c."""
import socket
import ssl


def context(ca):
    """A client context trusting ca, or None for plain TCP ("--plain")."""
    if ca == "--plain":
        return None
    ctx = ssl.create_default_context(cafile=ca)
    # Debian's python sets it by default: an EOF without close_notify would read as a clean end.
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    return ctx


def connect(port, ctx, tiny_window, timeout):
    """A connection to 127.0.0.1:port (TLS when ctx), its receive buffer the kernel's
    smallest when tiny_window, so that the server's writers soon wait for this client."""
    raw = socket.socket()
    if tiny_window:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    raw.settimeout(timeout)
    raw.connect(("127.0.0.1", port))
    if ctx is None:
        return raw
    return ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)


def read_to_end(s, take):
    """Reads s to its end, handing each chunk to take (which returns None, or what is
    wrong with it). None at a clean end (close_notify over TLS), else what ended it."""
    while True:
        try:
            chunk = s.recv(65536)
        except (socket.timeout, TimeoutError):
            return "timed out waiting for the end of the stream"
        except ssl.SSLError as e:  # SSLEOFError, or what a record cut short reads as
            return f"end without close_notify ({e.reason or e})"
        if not chunk:
            return None
        wrong = take(chunk)
        if wrong:
            return wrong


def play(one_round, first, rounds, success):
    """Plays the rounds (one_round(seed) returns None, or what went wrong) and prints
    "ROUNDS rounds: " and success, or how many failed, then up to five failed rounds,
    one per line, "seed S: what happened"."""
    failed = []
    for seed in range(first, first + rounds):
        try:
            why = one_round(seed)
        except OSError as e:
            why = f"{type(e).__name__}: {e}"
        if why:
            failed.append(f"seed {seed}: {why}")
    print(f"{rounds} rounds: {len(failed)} failed" if failed else f"{rounds} rounds: {success}")
    for line in failed[:5]:
        print(line)
