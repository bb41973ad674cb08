#!/usr/bin/env python3
"""Reads one block over and over (t-stale-read).

Reads block --block of --uri every --every s for --duration s, each read
one line of --out: "start end ok TAG" (TAG: the block's first 8 bytes as
text) or "start end err MESSAGE"; start and end are time.monotonic() (the
same clock for every process of the host). Reconnects when the
connection dies.
"""
import argparse, sys, time
import nbd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", required=True)
    ap.add_argument("--block", type=int, default=0)
    ap.add_argument("--every", type=float, default=0.02)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out = open(a.out, "w", buffering=1)
    end = time.monotonic() + a.duration
    h = None
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            if h is None:
                h = nbd.NBD()
                h.connect_uri(a.uri)
            b = h.pread(4096, a.block * 4096)
            tag = b[:8].decode("ascii", "replace").replace(" ", "_")
            print("%.4f %.4f ok %s" % (t0, time.monotonic(), tag), file=out)
        except nbd.Error as e:
            msg = str(e).replace(" ", "_")[:60]
            print("%.4f %.4f err %s" % (t0, time.monotonic(), msg), file=out)
            if h is not None and not h.aio_is_ready():
                h = None
        time.sleep(a.every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
