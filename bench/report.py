#!/usr/bin/python3
"""Summarise bench/run.sh's fio JSON: table on stdout, results.csv, plot.dat,
and, when triplex-3rep ran, issue 3's three-replica targets (targets.csv).

usage: report.py OUTDIR "SERVER..." "JOB..."
       report.py --rebuild-covered OUTDIR   exit 0 when the rebuild runs so
                                            far covered BENCH_RUNTIME s of fio
"""
import glob
import math
import csv
import json
import os
import sys

PEERS = ("nbdkit-nocache", "qemu-nbd")  # the no-cache peers triplex is held to
REP3 = "triplex-3rep"
MIB = 1024.0
NA_REBUILD = "n/a (rebuild phase not run)"


def load(path):
    raw = open(path).read()
    return json.loads(raw[raw.index("{"):])  # fio may print notes first


def metrics(outdir, server, job):
    j = load(os.path.join(outdir, "raw", "%s.%s.json" % (server, job)))["jobs"][0]
    if j.get("error"):
        raise SystemExit("fio error %d in %s/%s" % (j["error"], server, job))
    side = j["write"] if "write" in job else j["read"]
    clat = side["clat_ns"]
    pct = clat.get("percentile", {})
    return {
        "ios": side["total_ios"],
        "iops": side["iops"],
        "mbps": side["bw_bytes"] / 1e6,
        "lat_mean_us": clat["mean"] / 1e3,
        "lat_p99_us": pct.get("99.000000", 0) / 1e3,
    }


def primary(job):
    """The figure a job is judged by: MB/s for 1M jobs, IOPS for 4k."""
    return "mbps" if "-1m" in job else "iops"


def main():
    outdir, servers, jobs = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
    res = {(s, j): metrics(outdir, s, j) for s in servers for j in jobs}

    rows = []
    for j in jobs:
        key = primary(j)
        peers = [res[(p, j)][key] for p in PEERS if (p, j) in res]
        best = max(peers) if peers else None
        for s in servers:
            m = res[(s, j)]
            ratio = m[key] / best if (s.startswith("triplex") and best) else None
            rows.append((j, s, m, ratio))

    hdr = "%-18s %-15s %10s %9s %10s %10s %8s" % (
        "job", "server", "IOPS", "MB/s", "mean us", "p99 us", "vs peer")
    print(hdr)
    print("-" * len(hdr))
    last = None
    for j, s, m, ratio in rows:
        if last and last != j:
            print()
        last = j
        print("%-18s %-15s %10.0f %9.1f %10.1f %10.1f %8s" % (
            j, s, m["iops"], m["mbps"], m["lat_mean_us"], m["lat_p99_us"],
            "%.2fx" % ratio if ratio is not None else ""))
    print("\n'vs peer' = triplexd or triplex-3rep / the better of %s (IOPS for 4k"
          " jobs, MB/s for 1M)." % " and ".join(PEERS))
    print("nbdkit-cache serves from the page cache: a reference, not a peer.")

    with open(os.path.join(outdir, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["job", "server", "iops", "mb_per_s", "lat_mean_us",
                    "lat_p99_us", "ratio_vs_best_nocache_peer"])
        for j, s, m, ratio in rows:
            w.writerow([j, s, "%.0f" % m["iops"], "%.1f" % m["mbps"],
                        "%.1f" % m["lat_mean_us"], "%.1f" % m["lat_p99_us"],
                        "%.3f" % ratio if ratio is not None else ""])

    if REP3 in servers:
        replicated(outdir, jobs, res)

    # plot.dat: block 0 = 4k jobs (IOPS), block 1 = 1M jobs (MB/s).
    with open(os.path.join(outdir, "plot.dat"), "w") as f:
        for block, (want, key) in enumerate(((False, "iops"), (True, "mbps"))):
            if block:
                f.write("\n\n")
            f.write("job " + " ".join(servers) + "\n")
            for j in jobs:
                if ("-1m" in j) == want:
                    f.write(j + " " + " ".join("%.1f" % res[(s, j)][key]
                                               for s in servers) + "\n")


def sample(outdir, name):
    path = os.path.join(outdir, "raw", "%s.%s.sample.json" % (REP3, name))
    if not os.path.exists(path):
        return None
    return {n["id"]: n for n in json.load(open(path))["nodes"]}


def cpu(node):
    """CPU seconds: /metrics (getrusage, us resolution), else /proc ticks."""
    v = node.get("cpu_s_metrics")
    return v if v is not None else node["cpu_s_proc"]


def cpu_per_io(outdir, job, res):
    """Daemon CPU across one fio run of JOB on the three-replica volume.

    Returns (cpu_s per node, requests the engine node served in the same
    window, fio's completed I/Os) or None when the samples are missing."""
    before, after = sample(outdir, job + ".before"), sample(outdir, job + ".after")
    if not before or not after or (REP3, job) not in res:
        return None
    per_node = {i: cpu(after[i]) - cpu(before[i]) for i in sorted(after)}
    # The engine node (volume attached there) counts every NBD request; the
    # window includes fio's ramp, like the CPU sample.
    served = None
    for i in sorted(after):
        a, b = after[i].get("nbd_requests"), before[i].get("nbd_requests")
        if a is not None and b is not None and a - b > 0:
            served = (served or 0) + (a - b)
    return per_node, served, res[(REP3, job)]["ios"]


def verdict(value, target, higher_is_better):
    if value is None:
        return "n/a"
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "MISSED"


def replicated(outdir, jobs, res):
    """Issue 3's targets for the three-replica volume."""
    runtime = int(os.environ.get("BENCH_RUNTIME", "0") or 0)
    ramp = int(os.environ.get("BENCH_RAMP", "0") or 0)
    rows = []  # (figure, value text, target text, verdict, note)

    def peer_best(job, key, pick):
        got = [(res[(p, job)][key], p) for p in PEERS if (p, job) in res]
        return pick(got) if got else (None, None)

    for job, what, target in (("randwrite-4k-qd32", "4k randwrite QD32 IOPS vs peer", 0.6),
                              ("randread-4k-qd32", "4k randread QD32 IOPS vs peer", 1.0)):
        best, peer = peer_best(job, "iops", max)
        if (REP3, job) not in res or not best:
            rows.append((what, "n/a", ">= %.1fx" % target, "n/a",
                         "job or peers not run"))
            continue
        r = res[(REP3, job)]["iops"] / best
        rows.append((what, "%.2fx" % r, ">= %.1fx" % target, verdict(r, target, True),
                     "%.0f vs %s %.0f" % (res[(REP3, job)]["iops"], peer, best)))

    job = "randwrite-4k-qd1"
    best, peer = peer_best(job, "lat_p99_us", min)
    if (REP3, job) in res and best:
        r = res[(REP3, job)]["lat_p99_us"] / best
        rows.append(("4k randwrite QD1 p99 vs peer", "%.2fx" % r, "<= 2.0x",
                     verdict(r, 2.0, False), "%.0f us vs %s %.0f us (the lower peer p99)"
                     % (res[(REP3, job)]["lat_p99_us"], peer, best)))
    else:
        rows.append(("4k randwrite QD1 p99 vs peer", "n/a", "<= 2.0x", "n/a",
                     "job or peers not run"))

    c = cpu_per_io(outdir, "randwrite-4k-qd32", res)
    if c:
        per_node, served, fio_ios = c
        total = sum(per_node.values())
        split = " + ".join("%s %.2f" % (i, v) for i, v in per_node.items())
        if served:
            us = total / served * 1e6
            rows.append(("daemon CPU per replicated 4k write", "%.1f us" % us, "<= 100 us",
                         verdict(us, 100, False),
                         "%.2f s CPU (%s) / %d writes served in the same window"
                         % (total, split, served)))
        us_fio = total / fio_ios * 1e6 if fio_ios else None
        rows.append(("  same, / fio's completed writes",
                     "%.1f us" % us_fio if us_fio else "n/a", "(info)", "",
                     "/ %d writes fio counted after its %d s ramp: CPU window is "
                     "%d+%d s, I/O window %d s, so this overstates"
                     % (fio_ios, ramp, ramp, runtime, runtime)))
    else:
        rows.append(("daemon CPU per replicated 4k write", "n/a", "<= 100 us", "n/a",
                     "randwrite-4k-qd32 not run"))

    pre, end = sample(outdir, "prefill"), sample(outdir, "end")
    if pre and end:
        for i in sorted(end):
            peak = max(pre[i]["hwm_kib"], end[i]["hwm_kib"]) / MIB
            rows.append(("peak RSS %s (VmHWM)" % i, "%.1f MiB" % peak, "<= 55 MiB",
                         verdict(peak, 55, False),
                         "prefill %.1f MiB, fio jobs %.1f MiB, RSS at end %.1f MiB"
                         % (pre[i]["hwm_kib"] / MIB, end[i]["hwm_kib"] / MIB,
                            end[i]["rss_kib"] / MIB)))
    else:
        rows.append(("peak RSS per daemon", "n/a", "<= 55 MiB", "n/a", "no samples"))

    rows += rebuild_rows(outdir, res)

    print("\nthree-replica volume (triplex-3rep), issue 3 targets:")
    hdr = "%-36s %-24s %-10s %-7s %s" % ("figure", "measured", "target", "verdict", "detail")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(("%-36s %-24s %-10s %-7s %s" % r).rstrip())

    # CPU per I/O for every job, for the record.
    lines = []
    for job in jobs:
        c = cpu_per_io(outdir, job, res)
        if not c or not c[1]:
            continue
        per_node, served, _ = c
        total = sum(per_node.values())
        after = sample(outdir, job + ".after")
        lines.append("  %-18s %7.1f us/request  (%s; %d requests, %.2f s CPU)"
                     "  RSS after: %s MiB" % (
            job, total / served * 1e6,
            ", ".join("%s %.1f" % (i, v / served * 1e6) for i, v in per_node.items()),
            served, total,
            "/".join("%.0f" % (after[i]["rss_kib"] / MIB) for i in sorted(after))))
    if lines:
        print("\ndaemon CPU per NBD request, summed over n1 (engine) + n2 + n3,"
              " in fio's whole run (ramp included), and n1/n2/n3 RSS after the job:")
        print("\n".join(lines))

    with open(os.path.join(outdir, "targets.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["figure", "measured", "target", "verdict", "detail"])
        for r in rows:
            w.writerow([x.strip() for x in r])


def p99(values):
    v = sorted(values)
    return v[max(0, math.ceil(0.99 * len(v)) - 1)] if v else None


def rebuild_cycles(outdir):
    """The QD1-during-rebuild runs: per run, the rebuild window, fio's span
    and the completion latencies (us) of the writes inside the window."""
    out = []
    for k in (1, 2, 3):
        base = os.path.join(outdir, "raw", "%s.rebuild-qd1.%d" % (REP3, k))
        logf, rf = base + "_clat.1.log", base + ".resync.json"
        if not (os.path.exists(logf) and os.path.exists(rf)):
            break
        r = json.load(open(rf))
        lat = []
        for line in open(logf):
            f = line.split(",")
            if len(f) >= 2:
                lat.append((int(f[0]), int(f[1]) / 1e3))
        if not lat or r["first_start_ms"] is None:
            out.append({"k": k, "resync": r, "inside": [], "covered_s": 0.0,
                        "fio_s": 0.0, "outlasted": False, "rebuild_s": None})
            continue
        f0, f1 = lat[0][0], lat[-1][0]
        w0 = r["first_start_ms"]
        w1 = r["done_ms"] if r["done_ms"] is not None else float("inf")
        out.append({
            "k": k, "resync": r,
            "inside": [l for t, l in lat if w0 <= t <= w1],
            "outside_after": [l for t, l in lat if t > w1],
            "covered_s": max(0.0, min(w1, f1) - max(w0, f0)) / 1e3,
            "fio_s": (f1 - f0) / 1e3,
            "outlasted": w1 > f1,
            "rebuild_s": (w1 - w0) / 1e3 if r["done_ms"] is not None else None,
            "lead_s": (w0 - f0) / 1e3,
        })
    return out


def rebuild_covered(outdir):
    runtime = int(os.environ.get("BENCH_RUNTIME", "0") or 0)
    cyc = rebuild_cycles(outdir)
    covered = sum(c["covered_s"] for c in cyc)
    return any(c["outlasted"] for c in cyc) or covered >= 0.9 * runtime


def rebuild_rows(outdir, res):
    rows = []
    raw = os.path.join(outdir, "raw")
    seqf = os.path.join(raw, "seqwrite-baseline.json")
    rebf = os.path.join(raw, "%s.rebuild-unthrottled.json" % REP3)
    if os.path.exists(seqf) and os.path.exists(rebf):
        seq = load(seqf)["jobs"][0]["write"]["bw_bytes"] / 1e6
        r = json.load(open(rebf))
        secs = (r["done_ms"] - r["first_start_ms"]) / 1e3
        mbps = r["bytes_copied"] / secs / 1e6 if secs > 0 else 0.0
        pct = mbps / seq * 100 if seq else None
        restarts = ("; the job started %d times" % len(r["starts"])
                    if len(r["starts"]) > 1 else "")
        rows.append(("rebuild bandwidth vs seqwrite",
                     "%.0f%%" % pct if pct is not None else "n/a", ">= 80%",
                     verdict(pct, 80, True),
                     "%.0f MB/s: %.0f MiB copied from %s in %.2f s (n1 --resync-rate 0)"
                     " vs %.0f MB/s fio io_uring direct 1M QD8 write, same filesystem%s"
                     % (mbps, r["bytes_copied"] / 2**20, r["source"], secs, seq, restarts)))
        copyf = os.path.join(raw, "copy-baseline.json")
        if os.path.exists(copyf):
            jobs = load(copyf)["jobs"]
            rd = next(j["read"] for j in jobs if j["jobname"] == "copy-read")
            wr = next(j["write"] for j in jobs if j["jobname"] == "copy-write")
            ceil = min(rd["bw_bytes"], wr["bw_bytes"]) / 1e6
            rows.append(("  rebuild vs copy ceiling", "%.0f%%" % (mbps / ceil * 100),
                         "(info)", "", "%.0f MB/s vs %.0f MB/s: fio reading a 1 GiB file"
                         " (%.0f MB/s) while writing a sparse one (%.0f MB/s), 1M QD4"
                         " each, same filesystem: all replicas share this disk"
                         % (mbps, ceil, rd["bw_bytes"] / 1e6, wr["bw_bytes"] / 1e6)))
    else:
        rows.append(("rebuild bandwidth vs seqwrite", NA_REBUILD, ">= 80%", "n/a", ""))

    cyc = rebuild_cycles(outdir)
    inside = [l for c in cyc for l in c["inside"]]
    if inside:
        p = p99(inside)
        covered = sum(c["covered_s"] for c in cyc)
        runs = "; ".join(
            "run %d: rebuild %s, started %.1f s into fio's %.1f s%s" % (
                c["k"], "%.1f s" % c["rebuild_s"] if c["rebuild_s"] is not None
                else "not started",
                c.get("lead_s", 0), c["fio_s"],
                ", outlasted fio" if c["outlasted"] else
                ", ended before fio" if c["rebuild_s"] is not None else "")
            for c in cyc)
        rows.append(("4k randwrite QD1 p99 during rebuild", "%.0f us" % p,
                     "none set", "info",
                     "%d writes completed during %d rebuild(s) at n1's default"
                     " cap (256 MiB/s), %.1f s in all (%s)"
                     % (len(inside), len(cyc), covered, runs)))
        base = res.get((REP3, "randwrite-4k-qd1"))
        if base and base["lat_p99_us"]:
            rows.append(("  vs QD1 p99 without rebuild", "%.2fx" % (p / base["lat_p99_us"]),
                         "(info)", "", "%.0f us during rebuild vs %.0f us in the"
                         " randwrite-4k-qd1 job (fio's p99; during-rebuild p99 is"
                         " exact, from the latency log)" % (p, base["lat_p99_us"])))
        else:
            rows.append(("  vs QD1 p99 without rebuild", "n/a", "(info)", "",
                         "randwrite-4k-qd1 not in BENCH_JOBS"))
        after = [l for c in cyc for l in c.get("outside_after", [])]
        if len(after) >= 1000:
            rows.append(("  same fio runs, after the rebuild", "%.0f us" % p99(after),
                         "(info)", "", "p99 of %d writes completed after the"
                         " rebuild ended" % len(after)))
        peers = [(res[(q, "randwrite-4k-qd1")]["lat_p99_us"], q) for q in PEERS
                 if (q, "randwrite-4k-qd1") in res]
        if peers:
            best, peer = min(peers)
            rows.append(("  vs peer QD1 p99", "%.2fx" % (p / best), "(info)", "",
                         "%s %.0f us (the QD1 target, <= 2x, is for no rebuild)"
                         % (peer, best)))
    else:
        rows.append(("4k randwrite QD1 p99 during rebuild", NA_REBUILD, "none set",
                     "n/a", ""))
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--rebuild-covered":
        sys.exit(0 if rebuild_covered(sys.argv[2]) else 1)
    main()
