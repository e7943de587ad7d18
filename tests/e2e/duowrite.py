"""duowrite.py PORT CA|--plain ROUNDS [FIRST_SEED]: the client of tests/e2e/progs/duowrite.c.

One connection per round, one after the other. Each sends "go SEED", waits a
moment (SEED says how long, and whether its receive buffer is tiny, so that
the server's writers wait for room), reads the stream to its end and splits
it by the lowest bit of each byte into the two writers' streams, in each of
which byte i must be 2 * (i % 128) + writer. Over TLS the end must be
close_notify. It answers "got N0 N1" (each writer's count) and closes; the
server compares those with what its writes counted.

Prints one line, "ROUNDS rounds: ..." for 29-two-writers.sh to compare, then
up to five failed rounds, one per line, "seed S: what happened".
"""
import sys
import time

from rounds import connect, context, play, read_to_end

port, ca, rounds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
first = int(sys.argv[4]) if len(sys.argv) > 4 else 1
ctx = context(ca)
# What each writer's next byte must be, for each of its counts modulo 128.
EXPECT = [bytes(2 * (i % 128) + t for i in range(128)) for t in (0, 1)]


def check(data, counts):
    """Counts data's bytes into counts per writer; None, or where the first wrong byte was."""
    for t in (0, 1):
        mine = bytes(b for b in data if b & 1 == t)
        at = counts[t] % 128
        want = (EXPECT[t][at:] + EXPECT[t] * (len(mine) // 128 + 2))[:len(mine)]
        if mine != want:
            bad = next(i for i in range(len(mine)) if mine[i] != want[i])
            return f"writer {t}: byte {counts[t] + bad} is {mine[bad]}, not {want[bad]}"
        counts[t] += len(mine)
    return None


def one_round(seed):
    """None when the round went right, else what went wrong."""
    s = connect(port, ctx, seed % 3 == 0, 20)
    try:
        s.sendall(f"go {seed}\n".encode())
        time.sleep((seed * 7919 % 5) / 100)  # 0 to 40 ms: let the writers fill the socket
        counts = [0, 0]
        end = read_to_end(s, lambda chunk: check(chunk, counts))
        if end is None:
            s.sendall(f"got {counts[0]} {counts[1]}\n".encode())
            return None
        return f"after {counts[0]} and {counts[1]} bytes: {end}"
    finally:
        s.close()


play(one_round, first, rounds, "both writers' bytes, in order, then the end of the stream")
