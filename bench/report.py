#!/usr/bin/python3
"""Summarise bench/run.sh's fio JSON: table on stdout, results.csv, plot.dat.

usage: report.py OUTDIR "SERVER..." "JOB..."
"""
import csv
import json
import os
import sys

PEERS = ("nbdkit-nocache", "qemu-nbd")  # the no-cache peers triplexd is held to


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
            ratio = m[key] / best if (s == "triplexd" and best) else None
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
    print("\n'vs peer' = triplexd / the better of %s (IOPS for 4k jobs, MB/s for 1M)."
          % " and ".join(PEERS))
    print("nbdkit-cache serves from the page cache: a reference, not a peer.")

    with open(os.path.join(outdir, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["job", "server", "iops", "mb_per_s", "lat_mean_us",
                    "lat_p99_us", "ratio_vs_best_nocache_peer"])
        for j, s, m, ratio in rows:
            w.writerow([j, s, "%.0f" % m["iops"], "%.1f" % m["mbps"],
                        "%.1f" % m["lat_mean_us"], "%.1f" % m["lat_p99_us"],
                        "%.3f" % ratio if ratio is not None else ""])

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


if __name__ == "__main__":
    main()
