#!/usr/bin/env python3
"""Writes held in flight across a SIGSTOP of the engine (t-fault-stopped-engine).

Connects to --uri, writes --blocks blocks of "B" at --first, prints "ready",
waits for --go to exist, then sends the same blocks again as "X" without
waiting (they sit in the stopped engine's socket), prints "sent", and
waits (at most --timeout s) for every reply. Prints one JSON line: acked,
failed, errors (their messages).
"""
import argparse, json, os, sys, time
import nbd

BS = 4096


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", required=True)
    ap.add_argument("--first", type=int, default=2048)
    ap.add_argument("--blocks", type=int, default=16)
    ap.add_argument("--go", required=True)
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()

    h = nbd.NBD()
    h.connect_uri(a.uri)
    for i in range(a.blocks):
        h.pwrite(b"B" * BS, (a.first + i) * BS)
    h.flush()
    print("ready", flush=True)
    end = time.monotonic() + a.timeout
    while not os.path.exists(a.go):
        if time.monotonic() > end:
            sys.exit("no go")
        time.sleep(0.05)
    done = {"acked": 0, "failed": 0, "errors": []}

    def cb(err, done=done):
        e = err.value if hasattr(err, "value") else int(err)
        if e == 0:
            done["acked"] += 1
        else:
            done["failed"] += 1
            done["errors"].append(os.strerror(e))
        return 1

    for i in range(a.blocks):
        h.aio_pwrite(b"X" * BS, (a.first + i) * BS, completion=cb)
    t_sent = time.monotonic() + 0.5
    while time.monotonic() < t_sent:
        h.poll(100)
    print("sent", flush=True)
    while done["acked"] + done["failed"] < a.blocks and time.monotonic() < end:
        try:
            h.poll(200)
        except nbd.Error:
            break
    done["unanswered"] = a.blocks - done["acked"] - done["failed"]
    print(json.dumps(done), flush=True)


if __name__ == "__main__":
    main()
