#!/usr/bin/env python3
"""memscan.py PID KEYLOG [LAST]: which secrets of an NSS key log are in PID's memory.

Reads /proc/PID/maps and /proc/PID/mem (root, or the process's owner with
ptrace rights) over every writable private mapping (heap, anonymous, data),
and looks for each secret (the third field of each key log line) as raw bytes:
the traffic secrets (TLS 1.3 *_TRAFFIC_SECRET_0, TLS 1.2 CLIENT_RANDOM's master
secret) of the LAST (default 50) sessions in the file, and of its first 10.
Prints "found LABEL CLIENT_RANDOM_PREFIX" per secret present, then a summary
line "secrets N found M"; exit status 0.
"""
import sys

WANTED = ("CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0", "CLIENT_RANDOM")


def regions(pid):
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            perms = parts[1]
            if perms[0] == "r" and perms[1] == "w" and perms[3] == "p":
                yield lo, hi


def main():
    pid, keylog = sys.argv[1], sys.argv[2]
    secrets = []
    with open(keylog) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[0] in WANTED:
                secrets.append((parts[0], parts[1][:16], bytes.fromhex(parts[2])))
    last = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    per = 2 if any(s[0] != "CLIENT_RANDOM" for s in secrets) else 1
    if len(secrets) > (last + 10) * per:
        secrets = secrets[: 10 * per] + secrets[-last * per :]
    found = 0
    blobs = []
    with open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for lo, hi in regions(pid):
            try:
                mem.seek(lo)
                blobs.append(mem.read(hi - lo))
            except OSError:
                continue
    for label, random, secret in secrets:
        if any(secret in b for b in blobs):
            found += 1
            print(f"found {label} {random}")
    print(f"secrets {len(secrets)} found {found}")


main()
