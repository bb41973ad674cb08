#!/usr/bin/env python3
"""A client that follows its volume across an automatic failover.

Writes 4 KiB blocks (block b, sequence s: the 8-byte pair repeated) at
queue depth 1 to the URI the metadata store names (`triplexctl volume show
--json`, field nbd_uris); when a request fails it asks again every 0.2 s
and reconnects to the new URI. Stops after --after acknowledged writes on
the new engine (with --no-failover: after --after writes), or --duration seconds. Then reads every block back from
where it ended up and checks it holds the last acknowledged write or a
later attempted one (an unacknowledged write may or may not have landed).

Prints one JSON line: acked, failed, t_fail (monotonic s of the first
failure), t_back (first ack on the new URI), uris, lost (blocks that read
back wrong; must be 0).
"""
import argparse, json, struct, subprocess, sys, time
import nbd

BS = 4096


def current_uri(ctl, name):
    try:
        out = subprocess.run([ctl, "volume", "show", name, "--json"],
                             capture_output=True, text=True, timeout=10)
        v = json.loads(out.stdout)
        uris = v.get("nbd_uris") or []
        return uris[0] if uris else None
    except Exception:
        return None


def connect(uri):
    h = nbd.NBD()
    h.set_handshake_flags(nbd.HANDSHAKE_FLAG_FIXED_NEWSTYLE)
    h.connect_uri(uri)
    return h


def payload(b, s):
    return struct.pack("<QQ", b, s) * (BS // 16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--volume", required=True)
    ap.add_argument("--blocks", type=int, default=1024)
    ap.add_argument("--after", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=90)
    ap.add_argument("--no-failover", action="store_true",
                    help="count --after from the first write (no URI change expected)")
    ap.add_argument("--progress", required=True)
    a = ap.parse_args()

    uri = current_uri(a.ctl, a.volume)
    h = connect(uri)
    uris = [uri]
    acked = {}      # block -> last acknowledged sequence
    tried = {}      # block -> set of sequences attempted since that ack
    n_acked = n_failed = after = 0
    t_fail = t_back = None
    seq = 0
    end = time.monotonic() + a.duration
    prog = open(a.progress, "w", buffering=1)
    while time.monotonic() < end and after < a.after:
        seq += 1
        b = seq % a.blocks
        tried.setdefault(b, set()).add(seq)
        try:
            h.pwrite(payload(b, seq), b * BS)
        except Exception as e:
            n_failed += 1
            if t_fail is None:
                t_fail = time.monotonic()
                print("F %.3f %s" % (t_fail, e), file=prog)
            h = None
            while time.monotonic() < end and h is None:
                time.sleep(0.2)
                u = current_uri(a.ctl, a.volume)
                if u and u != uris[-1]:
                    try:
                        h = connect(u)
                        uris.append(u)
                        print("C %.3f %s" % (time.monotonic(), u), file=prog)
                    except Exception:
                        h = None
            if h is None:
                break
            continue
        acked[b] = seq
        tried[b] = set()
        n_acked += 1
        if a.no_failover:
            after += 1
        elif len(uris) > 1:
            if t_back is None:
                t_back = time.monotonic()
                print("B %.3f" % t_back, file=prog)
            after += 1
        if n_acked % 100 == 0:
            print("A %d" % n_acked, file=prog)
    lost = 0
    if h is not None:
        h.flush()
        for b, s in acked.items():
            got = struct.unpack("<QQ", h.pread(16, b * BS))
            if got[0] != b or (got[1] != s and got[1] not in tried.get(b, ())):
                lost += 1
    print(json.dumps({"acked": n_acked, "failed": n_failed, "t_fail": t_fail,
                      "t_back": t_back, "uris": uris, "lost": lost,
                      "after": after}))
    return 0 if h is not None else 1


if __name__ == "__main__":
    sys.exit(main())
