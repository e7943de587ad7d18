#!/usr/bin/python3
"""tests/bench/uml-hostcpu.py: the host CPU of the whole User-Mode Linux, per transfer of
tests/bench/uml-inner.sh. Run on the host by tests/bench/run.sh.

  uml-hostcpu.py sample LAUNCHER_PID SAMPLES.csv
      LAUNCHER_PID is tests/uml/run.sh, whose child linux.uml is the UML kernel. Every
      50 ms until it exits, appends "time,ticks" to SAMPLES.csv: the host's wall clock
      and the utime+stime, in clock ticks, of linux.uml and every one of its children
      (UML runs each of its address spaces, its own userspace processes, as a child on
      the host), plus the children it has reaped.
  uml-hostcpu.py merge SAMPLES.csv UML.csv
      For every transfer in UML.csv (its t0 and t1 figures: UML's wall clock just
      before and just after the transfer; its bytes figure), appends the figure
      host_cpu_s_per_GB: the host CPU seconds the whole UML used in that window, per GiB
      (interpolated linearly between the two samples around each end).

Why: inside UML, the CPU time a process is charged includes whatever time the host
preempts UML while that process runs, so on a shared machine it follows the host's load.
The host's own count for UML's processes is time on a CPU only. It covers the whole UML
(the server, curl, the kernel's encryption, UML's system-call interception), the same
client and kernel work for both servers, so the ratio between two servers is diluted, but
not moved by preemption. UML's wall clock is the host's (UML reads the host's clock: a
file UML created on hostfs got a host mtime within 40 ms of UML's own time around it), and
an offset would shift both ends of a window alike.
"""
import csv
import os
import sys
import time

INTERVAL = 0.05


def stat_ticks(pid):
    """utime+stime+cutime+cstime of PID (all its threads), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the ")" that ends the command name, utime..cstime are fields 12-15 (1-based).
    return sum(int(x) for x in fields[11:15])


def children(pid):
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += f.read().split()
    except OSError:
        pass
    return kids


def find_uml(launcher):
    """linux.uml, once the launcher has exec'd it (setsid and setpriv exec in place)."""
    while os.path.exists(f"/proc/{launcher}"):
        for kid in children(launcher):
            try:
                with open(f"/proc/{kid}/comm") as f:
                    if f.read().strip() == "linux.uml":
                        return kid
            except OSError:
                pass
        time.sleep(INTERVAL)
    return None


def uml_ticks(main):
    """A consistent total: a child reaped while its siblings are read moves its ticks into
    main's cutime/cstime, so main is read before and after, and the sample taken again
    when they differ."""
    for _ in range(10):
        before = stat_ticks(main)
        if before is None:
            return None
        kids = sum(t for t in (stat_ticks(k) for k in children(main)) if t is not None)
        after = stat_ticks(main)
        if after == before:
            return before + kids
    return None


def sample(launcher, path):
    main = find_uml(launcher)
    if main is None:
        print(f"uml-hostcpu: no linux.uml under process {launcher}", file=sys.stderr)
        return 1
    with open(path, "w") as out:
        out.write("time,ticks\n")
        while True:
            t = time.time()
            ticks = uml_ticks(main)
            if ticks is None:
                break
            out.write(f"{t:.6f},{ticks}\n")
            out.flush()
            time.sleep(INTERVAL)
    return 0


def at(samples, t):
    """The ticks at time t, interpolated between the samples around it; None outside."""
    for (t_a, c_a), (t_b, c_b) in zip(samples, samples[1:]):
        if t_a <= t <= t_b:
            return c_a if t_b == t_a else c_a + (c_b - c_a) * (t - t_a) / (t_b - t_a)
    return None


def merge(samples_path, uml_path):
    with open(samples_path, newline="") as f:
        samples = [(float(r["time"]), int(r["ticks"])) for r in csv.DictReader(f)]
    with open(uml_path, newline="") as f:
        rows = list(csv.DictReader(f))
    fig = {(r["rep"], r["flavour"], r["tls"], r["figure"]): float(r["value"]) for r in rows}
    hz = os.sysconf("SC_CLK_TCK")
    added = missed = 0
    with open(uml_path, "a") as out:
        for (rep, flav, tls, name), t0 in sorted(fig.items()):
            if name != "t0":
                continue
            t1 = fig.get((rep, flav, tls, "t1"))
            size = fig.get((rep, flav, tls, "bytes"))
            c0 = at(samples, t0)
            c1 = None if t1 is None else at(samples, t1)
            if c0 is None or c1 is None or not size:
                missed += 1
                continue
            out.write(f"{rep},{flav},{tls},host_cpu_s_per_GB,{(c1 - c0) / hz / (size / 2**30):.6g}\n")
            added += 1
    print(f"uml-hostcpu: {added} transfers measured, {missed} outside the samples "
          f"({len(samples)} samples)")
    return 0 if added and not missed else 1


def main(argv):
    if len(argv) == 4 and argv[1] == "sample":
        return sample(argv[2], argv[3])
    if len(argv) == 4 and argv[1] == "merge":
        return merge(argv[2], argv[3])
    print(__doc__.split("\n\n")[0], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
