"""shutrace.py PORT CA|--plain ROUNDS [FIRST_SEED] [--stall|--stall-cut-ok]: the client of tests/e2e/progs/shutrace.c.

One connection per round, one after the other. Each sends "go SEED", waits a
moment (SEED says how long, and whether its receive buffer is tiny), reads the
stream to its end checking the pattern (byte i is i % 251), answers
"got N" with the count and closes. Over TLS the end must be close_notify; a
bare EOF, a timeout or a wrong byte fails the round.

With --stall the client sends "go SEED stall" and reads nothing for 3 s: the
server's writer waits for room when the shutdown comes, and the server checks
that the shutdown released it soon. Then the same as above: every byte the
writer counted, then the end (close_notify over TLS), then "got N".
--stall-cut-ok is --stall where the end may come cut short (an end without
close_notify over TLS), and no count goes back: the kernel path's limit, which
shutrace.c explains.

Prints one line, "ROUNDS rounds: ..." for 28-shutdown-race.sh to compare, then
up to five failed rounds, one per line, "seed S: what happened".
"""
import sys
import time

from rounds import connect, context, play, read_to_end

args = [a for a in sys.argv[1:] if a not in ("--stall", "--stall-cut-ok")]
CUT_OK = "--stall-cut-ok" in sys.argv
STALL = CUT_OK or "--stall" in sys.argv
port, ca, rounds = int(args[0]), args[1], int(args[2])
first = int(args[3]) if len(args) > 3 else 1
PATTERN = bytes(i % 251 for i in range(251)) * 300
ctx = context(ca)


def one_round(seed):
    """None when the round went right, else what went wrong."""
    s = connect(port, ctx, STALL or seed % 3 == 0, 10)
    try:
        word = " stallcut" if CUT_OK else " stall" if STALL else ""
        s.sendall(f"go {seed}{word}\n".encode())
        # 0 to 4 ms against the server's pause; 3 s when stalling
        time.sleep(3 if STALL else (seed * 7919 % 5) / 1000)
        got = 0

        def take(chunk):
            nonlocal got
            at = got % 251
            if chunk != PATTERN[at:at + len(chunk)] and not _matches(chunk, got):
                return f"a wrong byte within bytes {got}-{got + len(chunk)}"
            got += len(chunk)
            return None

        end = read_to_end(s, take)
        if CUT_OK and (end is None or end.startswith("end without close_notify")):
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


play(one_round, first, rounds, "every byte, then the end of the stream")
