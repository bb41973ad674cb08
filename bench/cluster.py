#!/usr/bin/python3
"""Helper for bench/run.sh's triplex-3rep row (a `triplexctl dev up` cluster).

usage: cluster.py uri DEVDIR              print the volume's nbd+unix URI
       cluster.py pids DEVDIR             print the daemons' pids
       cluster.py sample DEVDIR OUT.json  per daemon: CPU seconds (/metrics
                                          and /proc/PID/stat), NBD requests
                                          served, VmRSS and VmHWM
       cluster.py reset-hwm DEVDIR        reset every daemon's VmHWM
                                          (echo 5 > /proc/PID/clear_refs)
"""
import json
import os
import sys
import time
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")


def cluster(devdir):
    return json.load(open(os.path.join(devdir, "cluster.json")))


def uri(devdir):
    c = cluster(devdir)
    vol = c["volumes"][0]
    for u in vol["nbd_uris"]:
        if u.startswith("nbd+unix:"):
            return u
    return vol["nbd_uris"][0]


def scrape(addr):
    """Metric samples without labels from http://ADDR/metrics ({} on error)."""
    out = {}
    try:
        with urllib.request.urlopen("http://%s/metrics" % addr, timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("#") or "{" in line:
                    continue
                parts = line.split()
                if len(parts) == 2:
                    out[parts[0]] = float(parts[1])
    except OSError as e:
        print("bench: cannot scrape %s: %s" % (addr, e), file=sys.stderr)
    return out


def proc_status(pid):
    kb = {}
    for line in open("/proc/%d/status" % pid):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            kb[k] = int(v.split()[0])
    return kb


def proc_cpu(pid):
    stat = open("/proc/%d/stat" % pid).read()
    f = stat[stat.rindex(")") + 2:].split()  # fields from 3 (state) on
    return (int(f[11]) + int(f[12])) / TICK  # utime + stime (fields 14, 15)


def sample(devdir):
    nodes = []
    for n in cluster(devdir)["nodes"]:
        pid = n["pid"]
        m = scrape(n["http"])
        st = proc_status(pid)
        nodes.append({
            "id": n["id"],
            "pid": pid,
            "cpu_s_metrics": m.get("triplex_process_cpu_seconds_total"),
            "cpu_s_proc": proc_cpu(pid),
            "nbd_requests": m.get("triplex_nbd_requests_total"),
            "rss_kib": st.get("VmRSS"),
            "hwm_kib": st.get("VmHWM"),
        })
    return {"time": time.time(), "nodes": nodes}


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    cmd, devdir = sys.argv[1], sys.argv[2]
    if cmd == "uri":
        print(uri(devdir))
    elif cmd == "pids":
        print(" ".join(str(n["pid"]) for n in cluster(devdir)["nodes"]))
    elif cmd == "sample" and len(sys.argv) == 4:
        with open(sys.argv[3], "w") as f:
            json.dump(sample(devdir), f, indent=1)
    elif cmd == "reset-hwm":
        for n in cluster(devdir)["nodes"]:
            with open("/proc/%d/clear_refs" % n["pid"], "w") as f:
                f.write("5")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
