#!/usr/bin/python3
"""tests/bench/report.py OUTDIR: the statistics, the markdown table and the plot of `make bench`.

Reads OUTDIR/raw.csv (rep,flavour,workload,figure,value), OUTDIR/uml.csv (the kernel path,
inside User-Mode Linux), OUTDIR/checks.csv, OUTDIR/meta.txt and OUTDIR/idle-rss.md (where
tests/bench/idle-rss.sh ran) and OUTDIR/instructions.md (tests/bench/instructions.sh); writes OUTDIR/results.md and
OUTDIR/results.png.

Every host figure is given as min / median / max over the repetitions, and its median as a
ratio to nginx's own TLS (the ratio of medians). The kernel path inside UML is paired: its
ratio is the median of Atlas's figure over nginx's in the same repetition and TLS version
(see uml_pairs). Exits 1, naming them, when a cell that the run should have filled is empty:
a flavour that failed, a workload that gave nothing.
"""
import csv
import os
import statistics
import sys
from collections import defaultdict

OUT = sys.argv[1]
BASE = "nginx-tls"

# (workload, figure, label, unit, better): better is "low" or "high".
FIGURES = [
    ("big", "MBps", "big file, throughput", "MiB/s", "high"),
    ("big", "cpu_s_per_GB", "big file, server CPU", "s/GiB", "low"),
    ("small", "req_per_s", "4 KiB file, wrk -c32", "req/s", "high"),
    ("small", "cpu_us_per_req", "4 KiB file, server CPU", "us/req", "low"),
    ("hs_ec", "hs_per_s", "handshakes ECDSA P-256", "hs/s", "high"),
    ("hs_ec", "cpu_us_per_hs", "handshake ECDSA, server CPU", "us/hs", "low"),
    ("hs_rsa", "hs_per_s", "handshakes RSA-2048", "hs/s", "high"),
    ("hs_rsa", "cpu_us_per_hs", "handshake RSA, server CPU", "us/hs", "low"),
]
FLAVOURS = [
    ("nginx-plain", "nginx plain (no TLS)", {"big", "small"}),
    ("nginx-tls", "nginx's own TLS", {"big", "small", "hs_ec", "hs_rsa"}),
    ("stunnel", "stunnel4 + nginx", {"big", "small", "hs_ec", "hs_rsa"}),
    ("haproxy", "haproxy + nginx", {"big", "small", "hs_ec", "hs_rsa"}),
    ("hitch", "hitch + nginx", {"big", "small", "hs_ec", "hs_rsa"}),
    ("atlas", "nginx under Atlas", {"big", "small", "hs_ec", "hs_rsa"}),
    ("atlas-noport", "nginx, Atlas loaded, no TLS port", {"big", "small"}),
    ("py-plain", "python http.server plain", {"small"}),
    ("py-stunnel", "python behind stunnel4", {"small"}),
    ("py-atlas", "python under Atlas", {"small"}),
]
LABEL = {f: lab for f, lab, _ in FLAVOURS}


def read_csv(name):
    path = os.path.join(OUT, name)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_meta():
    meta = {}
    path = os.path.join(OUT, "meta.txt")
    if os.path.exists(path):
        for line in open(path):
            k, _, v = line.rstrip("\n").partition("=")
            meta[k] = v
    return meta


def fmt(x):
    if x is None:
        return "-"
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def stats(values):
    if not values:
        return None
    return (min(values), statistics.median(values), max(values))


def uml_pairs(uml, tls, fig):
    """The paired ratios of the kernel path: for each repetition in which both servers gave
    FIG in TLS version TLS, Atlas's value over nginx's (tests/bench/uml-inner.sh measures
    the two back to back, in alternating order). Inside UML both throughput and CPU time
    follow the shared host's load, which moves over seconds to minutes: the two transfers
    of a pair saw nearly the same load, so their ratio cancels most of it, where a ratio of
    medians would divide figures taken at different moments. Returns (min, median, max, n)
    of the ratios, or None when no repetition has both."""
    a = {r["rep"]: float(r["value"]) for r in uml
         if (r["flavour"], r["tls"], r["figure"]) == ("atlas-ktls", tls, fig)}
    n = {r["rep"]: float(r["value"]) for r in uml
         if (r["flavour"], r["tls"], r["figure"]) == ("nginx-ktls", tls, fig)}
    ratios = [a[rep] / n[rep] for rep in a if rep in n and n[rep] > 0]
    if not ratios:
        return None
    return (min(ratios), statistics.median(ratios), max(ratios), len(ratios))


def main():
    raw = read_csv("raw.csv")
    meta = read_meta()
    checks = read_csv("checks.csv")
    # The flavours this run was asked for (all of them, unless BENCH_FLAVOURS chose).
    wanted = meta.get("flavours", "").split() or [f for f, _, _ in FLAVOURS]
    present = [f for f, _, _ in FLAVOURS if f in wanted]
    data = defaultdict(list)
    for r in raw:
        data[(r["flavour"], r["workload"], r["figure"])].append(float(r["value"]))
    missing = []
    md = []
    md.append("# Atlas TLS benchmark (`make bench`)\n")
    md.append(f"Run {meta.get('date', '?')} on {meta.get('host', '?')}; {meta.get('settings', '')}; "
              f"took {meta.get('duration_s', '?')} s.  ")
    md.append(f"Load average at start {meta.get('loadavg_start', '?')}, after the host part "
              f"{meta.get('loadavg_host_end', '?')}, at the end {meta.get('loadavg_end', '?')} "
              "(the machine is shared: client, server and other jobs compete for the same cores).  ")
    md.append(f"Software: {meta.get('versions', '?')}.\n")
    md.append("Every TLS flavour: TLS 1.3, TLS_AES_128_GCM_SHA256, the same ECDSA P-256 certificate "
              "(RSA-2048 for the RSA handshakes), checked per flavour with `openssl s_client` and `curl -v`. "
              "Server CPU = utime+stime of every process of the flavour (proxy and backend alike), "
              "from /proc/PID/stat; client CPU is not counted. Cells: median (min-max) over the "
              "repetitions; ratio = median / median of nginx's own TLS (inside UML: the median of "
              "paired ratios, see there).\n")

    md.append("## Host, userspace TLS\n")
    big = meta.get("settings", "").split("big=")[-1].split()[0] if "big=" in meta.get("settings", "") else "?"
    secs = meta.get("settings", "").split("secs=")[-1].split()[0] if "secs=" in meta.get("settings", "") else "?"
    md.append(f"big file: {big} with curl, one connection; 4 KiB file: `wrk -t2 -c32 -d{secs}s`, keep-alive "
              f"(python: HTTP/1.0, a connection and so a handshake per request); handshakes: "
              f"`openssl s_time -new -time {secs}`, each fetching a 3-byte file.\n")
    head = "| flavour | " + " | ".join(f"{lab} ({unit})" for _, _, lab, unit, _ in FIGURES) + " |"
    md.append(head)
    md.append("|---" * (len(FIGURES) + 1) + "|")
    for f, lab, wls in FLAVOURS:
        if f not in present:
            continue
        cells = []
        for wl, fig, _, _, _ in FIGURES:
            if wl not in wls:
                cells.append("")
                continue
            s = stats(data.get((f, wl, fig), []))
            b = stats(data.get((BASE, wl, fig), []))
            if s is None:
                missing.append(f"{f} {wl} {fig}")
                cells.append("**missing**")
                continue
            cell = f"{fmt(s[1])} ({fmt(s[0])}-{fmt(s[2])})"
            if b is not None and b[1] > 0 and f != BASE:
                cell += f" **{s[1] / b[1]:.2f}x**"
            cells.append(cell)
        md.append(f"| {lab} | " + " | ".join(cells) + " |")
    md.append("")
    errs = {f: sum(data.get((f, "small", "socket_errors"), [])) for f in present}
    errs = {f: n for f, n in errs.items() if n > 0}
    if errs:
        md.append("wrk socket errors (summed over the repetitions; a run fails past 5% of its requests): "
                  + ", ".join(f"{f} {n:.0f}" for f, n in errs.items()) + ".\n")
    wrong = [c for c in checks if c["result"] == "WRONG"]
    ok = sorted({f"{c['flavour']} ({c['check']}): {c['result']}" for c in checks if c["result"] != "WRONG"})
    md.append("Negotiated, per flavour: " + "; ".join(ok) + ".\n")
    if wrong:
        md.append("**Wrong version or suite:** " + ", ".join(f"{c['flavour']} {c['check']}" for c in wrong) + "\n")

    # The targets, as measured in this run (never asserted).
    def med(f, wl, fig, src=data):
        s = stats(src.get((f, wl, fig), []))
        return None if s is None else s[1]

    targets = []

    def target(desc, num, den, op, limit, spread=""):
        if num is None or den is None or den == 0:
            targets.append((desc, None, op, limit, "no figure", ""))
            return
        r = num / den
        met = r <= limit if op == "<=" else r >= limit
        targets.append((desc, r, op, limit, "met" if met else "MISSED", spread))

    for wl, fig, lab in (("big", "cpu_s_per_GB", "CPU per GB"), ("small", "cpu_us_per_req", "CPU per request"),
                         ("hs_ec", "cpu_us_per_hs", "CPU per ECDSA handshake"),
                         ("hs_rsa", "cpu_us_per_hs", "CPU per RSA handshake")):
        target(f"Atlas/nginx TLS, {lab}", med("atlas", wl, fig), med(BASE, wl, fig), "<=", 1.05)
        for other in ("stunnel", "haproxy", "hitch"):
            target(f"Atlas/{other}, {lab}", med("atlas", wl, fig), med(other, wl, fig), "<=", 0.6)
    target("python under Atlas / behind stunnel4, req/s", med("py-atlas", "small", "req_per_s"),
           med("py-stunnel", "small", "req_per_s"), ">=", 2.0)
    target("nginx with Atlas and no TLS port / nginx plain, req/s", med("atlas-noport", "small", "req_per_s"),
           med("nginx-plain", "small", "req_per_s"), ">=", 0.99)

    # The kernel path, inside UML: paired ratios only.
    uml = read_csv("uml.csv")
    u = defaultdict(list)
    if uml or os.path.exists(os.path.join(OUT, "uml.csv")):
        for r in uml:
            u[(r["flavour"], r["tls"], r["figure"])].append(float(r["value"]))
        md.append("## Kernel TLS, inside User-Mode Linux: ratios only\n")
        md.append("One CPU shared by client (curl) and server, the kernel's generic C AES-GCM: absolute "
                  "figures mean nothing, so only Atlas (plain nginx, `--ktls require`) against nginx's own "
                  "kTLS (`ssl_conf_command Options KTLS`, sendfile on) is shown, same file, same "
                  "version and suite. kTLS engaged: the /proc/net/tls_stat counters that rose on each "
                  "measured connection.\n")
        md.append("Paired: each repetition measures nginx and Atlas back to back in each TLS version, "
                  "nginx first in odd repetitions and Atlas first in even ones, and each pair gives one "
                  "ratio, Atlas's figure over nginx's. Inside UML throughput and CPU time both follow "
                  "the shared host's load, in episodes of seconds to minutes: a UML task is charged for "
                  "the time the host preempts it, and other jobs slow the work itself (shared cores and "
                  "caches). The two transfers of a pair saw nearly the same load, so their ratio cancels "
                  "most of it, and the alternating order cancels a steady drift. The ratio shown, and the "
                  "one the targets use, is the median of the paired ratios: one pair that an episode hit "
                  "on one side only does not move it. With n independent pairs the true median lies "
                  "between the smallest and the largest paired ratio with confidence 1 - 2/2^n (98% for "
                  "7 pairs, by the sign test): a verdict is firm only when that whole range is on one "
                  "side of the target. Each server's own min-max (MiB/s, s/GiB) is shown too.\n")
        md.append("Server CPU per GB is the server's utime+stime as UML counts it, preemption by the host "
                  "included. Whole UML host CPU per GB is the host's count for all of UML's processes "
                  "during the transfer (tests/bench/uml-hostcpu.py): time on a CPU only, so preemption "
                  "does not move it (other jobs slowing the work still do), but it covers the client, the "
                  "kernel's encryption and UML's system-call interception as well, the same work for both "
                  "servers, which dilutes the difference between them. It is shown beside the targets, "
                  "not used by them.\n")
        md.append("| TLS | Atlas/nginx kTLS throughput | Atlas/nginx kTLS server CPU per GB | "
                  "Atlas/nginx kTLS whole UML host CPU per GB | "
                  "kTLS engaged (nginx) | kTLS engaged (Atlas) | pairs |")
        md.append("|---|---|---|---|---|---|---|")
        for tls, name in (("13", "TLS 1.3 AES-128-GCM"), ("12", "TLS 1.2 ECDHE-ECDSA-AES128-GCM")):
            row = [name]
            npairs = 0
            for fig in ("MBps", "cpu_s_per_GB", "host_cpu_s_per_GB"):
                p = uml_pairs(uml, tls, fig)
                a = stats(u.get(("atlas-ktls", tls, fig), []))
                n = stats(u.get(("nginx-ktls", tls, fig), []))
                if p is None:
                    missing.append(f"uml TLS{tls} {fig}")
                    row.append("**missing**")
                else:
                    npairs = p[3]
                    row.append(f"**{p[1]:.2f}x** (pairs {p[0]:.2f}-{p[2]:.2f}; Atlas {fmt(a[0])}-{fmt(a[2])}, "
                               f"nginx {fmt(n[0])}-{fmt(n[2])})")
            for f in ("nginx-ktls", "atlas-ktls"):
                tx = u.get((f, tls, "ktls_tx"), [])
                rx = u.get((f, tls, "ktls_rx"), [])
                if not tx:
                    row.append("**not measured**")
                else:
                    row.append(f"TX {'yes' if min(tx) >= 1 else 'NO'}, RX {'yes' if rx and min(rx) >= 1 else 'no'}"
                               f" (every run)")
            row.append(str(npairs))
            md.append("| " + " | ".join(row) + " |")
            for fig, lab, op, limit in (("MBps", "throughput", ">=", 0.97),
                                        ("cpu_s_per_GB", "server CPU per GB", "<=", 1.03)):
                p = uml_pairs(uml, tls, fig)
                desc = f"kTLS (UML) TLS{tls[0]}.{tls[1]}: Atlas/nginx kTLS {lab}, median of paired ratios"
                if p is None:
                    target(desc, None, None, op, limit)
                else:
                    target(desc, p[1], 1.0, op, limit, f"pairs {p[0]:.2f}-{p[2]:.2f}, n={p[3]}")
        md.append("")

    md.append("## Idle connections: memory\n")
    idle = os.path.join(OUT, "idle-rss.md")
    if os.path.exists(idle) and open(idle).read().strip():
        md.append(open(idle).read().strip() + "\n")
    else:
        md.append("Not measured in this run (tests/bench/idle-rss.sh was not there, or BENCH_IDLE=0).\n")

    md.append("## Instructions per unit of work (callgrind): a figure machine load does not move\n")
    instr = os.path.join(OUT, "instructions.md")
    if os.path.exists(instr) and open(instr).read().strip():
        md.append("nginx as one process under `valgrind --tool=callgrind` (tests/bench/instructions.sh): "
                  "user-space instructions of the server over the requests or handshakes its client "
                  "completed; the kernel's work is not counted.\n")
        md.append(open(instr).read().strip() + "\n")
    else:
        md.append("Not measured in this run (BENCH_INSTR=0).\n")

    md.append("## Targets (issue 6), as measured in this run\n")
    md.append("| target | ratio | wanted | |")
    md.append("|---|---|---|---|")
    for desc, r, op, limit, verdict, spread in targets:
        ratio = "-" if r is None else f"{r:.2f}" + (f" ({spread})" if spread else "")
        md.append(f"| {desc} | {ratio} | {op} {limit} | {verdict} |")
    md.append("")
    md.append("![benchmark](results.png)\n")
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write("\n".join(md))

    plot(data, present, uml)
    if missing:
        print("missing cells: " + ", ".join(missing))
        return 1
    return 0


def plot(data, present, uml):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = FIGURES + ([("uml", None, "kernel TLS in UML: Atlas / nginx kTLS\n"
                                     "median of the paired ratios, their min-max", "ratio", None)] if uml else [])
    cols = 3
    rows = (len(figs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.2 * rows))
    axes = axes.flatten()
    for ax, (wl, figname, lab, unit, better) in zip(axes, figs):
        if wl == "uml":
            names, vals, lo, hi = [], [], [], []
            for tls in ("13", "12"):
                for fg, short in (("MBps", "throughput"), ("cpu_s_per_GB", "server CPU/GB"),
                                  ("host_cpu_s_per_GB", "UML host CPU/GB")):
                    p = uml_pairs(uml, tls, fg)
                    if p:
                        names.append(f"TLS 1.{tls[1]} {short}")
                        vals.append(p[1])
                        lo.append(p[1] - p[0])
                        hi.append(p[2] - p[1])
            ax.barh(names, vals, xerr=[lo, hi], color="#4c72b0", capsize=2)
            ax.axvline(1.0, color="grey", lw=0.8)
            for i, v in enumerate(vals):
                ax.text(v + hi[i], i, f" {v:.2f}", va="center", fontsize=8)
            ax.set_title(lab, fontsize=10)
            ax.tick_params(axis="y", labelsize=8)
            ax.invert_yaxis()
            continue
        names, meds, lo, hi, colours = [], [], [], [], []
        for f, flab, _ in FLAVOURS:
            s = stats(data.get((f, wl, figname), []))
            if f not in present or s is None:
                continue
            names.append(flab)
            meds.append(s[1])
            lo.append(s[1] - s[0])
            hi.append(s[2] - s[1])
            colours.append("#dd8452" if f.startswith("atlas") or f == "py-atlas" else
                           "#55a868" if f == BASE else "#8c8c8c")
        ax.barh(names, meds, xerr=[lo, hi], color=colours, capsize=2)
        for i, v in enumerate(meds):
            ax.text(v, i, f" {fmt(v)}", va="center", fontsize=7)
        ax.set_title(f"{lab} ({unit}, {'lower' if better == 'low' else 'higher'} is better)", fontsize=10)
        ax.tick_params(axis="y", labelsize=7)
        ax.invert_yaxis()
    for ax in axes[len(figs):]:
        ax.axis("off")
    fig.suptitle("Atlas TLS benchmark: median, min-max bars (orange: Atlas; green: nginx's own TLS)", fontsize=11)
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, "results.png"), dpi=90)


if __name__ == "__main__":
    sys.exit(main())
