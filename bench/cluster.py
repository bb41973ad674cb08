#!/usr/bin/python3
"""Helper for bench/run.sh's triplex-3rep row (a `triplexctl dev up` cluster).

usage: cluster.py uri DEVDIR              print the volume's nbd+unix URI
       cluster.py pids DEVDIR             print the daemons' pids
       cluster.py sample DEVDIR OUT.json  per daemon: CPU seconds (/metrics
                                          and /proc/PID/stat), NBD requests
                                          served, VmRSS and VmHWM
       cluster.py reset-hwm DEVDIR        reset every daemon's VmHWM
                                          (echo 5 > /proc/PID/clear_refs)
       cluster.py node DEVDIR ID FIELD    print one field of node ID
       cluster.py set-pid DEVDIR ID PID   record a restarted node's pid in
                                          cluster.json (for dev down, sample)
       cluster.py state ID                print node ID's placement state from
                                          `triplexctl volume show --json` on stdin
       cluster.py resync-log LOG OFFSET ID  the engine log's resync lines for
                                          replica ID from byte OFFSET on, as
                                          JSON: first and last start, done
                                          time (epoch ms), bytes copied
"""
import calendar
import json
import os
import re
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


def node(devdir, nid):
    for n in cluster(devdir)["nodes"]:
        if n["id"] == nid:
            return n
    raise SystemExit("no node %s in %s/cluster.json" % (nid, devdir))


def set_pid(devdir, nid, pid):
    path = os.path.join(devdir, "cluster.json")
    c = cluster(devdir)
    for n in c["nodes"]:
        if n["id"] == nid:
            n["pid"] = pid
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(c, f, indent=2)
    os.replace(tmp, path)


LOG_TS = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z ")


def epoch_ms(line):
    m = LOG_TS.match(line)
    if not m:
        return None
    y, mo, d, h, mi, s, ms = (int(x) for x in m.groups())
    return calendar.timegm((y, mo, d, h, mi, s)) * 1000 + ms


def resync_log(path, offset, nid):
    """Resync lines for replica NID in the engine's log from byte OFFSET."""
    out = {"node": nid, "starts": [], "stops": [], "done_ms": None,
           "bytes_compared": None, "bytes_copied": None, "source": None}
    start_re = re.compile(r"resync of %s from (\S+) starting at (\d+)" % re.escape(nid))
    done_re = re.compile(r"resync of %s done: (\d+) bytes compared, (\d+) copied"
                         % re.escape(nid))
    stop_re = re.compile(r"resync of %s stopped at (\d+): (.*)" % re.escape(nid))
    with open(path, "rb") as f:
        f.seek(offset)
        for raw in f:
            line = raw.decode(errors="replace").rstrip("\n")
            t = epoch_ms(line)
            if t is None:
                continue
            m = start_re.search(line)
            if m and out["done_ms"] is None:
                out["starts"].append({"ms": t, "from": int(m.group(2))})
                out["source"] = m.group(1)
                continue
            m = stop_re.search(line)
            if m and out["done_ms"] is None:
                out["stops"].append({"ms": t, "at": int(m.group(1)), "why": m.group(2)})
                continue
            m = done_re.search(line)
            if m and out["done_ms"] is None:
                out["done_ms"] = t
                out["bytes_compared"] = int(m.group(1))
                out["bytes_copied"] = int(m.group(2))
    out["first_start_ms"] = out["starts"][0]["ms"] if out["starts"] else None
    out["last_start_ms"] = out["starts"][-1]["ms"] if out["starts"] else None
    return out


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    cmd, devdir = sys.argv[1], sys.argv[2]
    if cmd == "state":
        v = json.load(sys.stdin)
        print([p["state"] for p in v["placement"] if p["node"] == devdir][0])
    elif cmd == "resync-log" and len(sys.argv) == 5:
        print(json.dumps(resync_log(devdir, int(sys.argv[3]), sys.argv[4])))
    elif cmd == "node" and len(sys.argv) == 5:
        print(node(devdir, sys.argv[3])[sys.argv[4]])
    elif cmd == "set-pid" and len(sys.argv) == 5:
        set_pid(devdir, sys.argv[3], int(sys.argv[4]))
    elif cmd == "uri":
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
