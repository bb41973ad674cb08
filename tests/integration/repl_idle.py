#!/usr/bin/python3
"""Idle clients on a replication port: they connect and never say a word.

Usage: repl_idle.py HOST PORT N
Opens N connections, then one more; prints "extra: closed" if the extra
one was closed at once (the cap), "extra: open" if not. Then waits (at
most 30 s) for the N to be closed by the replica (its TLS handshake
timeout) and prints "idle: K closed after S s" (K of N, S the slowest).
"""
import select
import socket
import sys
import time


def closed_now(s, wait):
    r, _, _ = select.select([s], [], [], wait)
    if not r:
        return False
    try:
        return s.recv(1) == b""
    except OSError:
        return True


def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    t0 = time.monotonic()
    socks = [socket.create_connection((host, port), timeout=5) for _ in range(n)]
    time.sleep(0.5)  # every one accepted before the extra arrives
    extra = socket.create_connection((host, port), timeout=5)
    print("extra: %s" % ("closed" if closed_now(extra, 2) else "open"))
    extra.close()
    left, slowest = set(range(n)), 0.0
    deadline = t0 + 30
    while left and time.monotonic() < deadline:
        r, _, _ = select.select([socks[i] for i in left], [], [], 1)
        for s in r:
            i = socks.index(s)
            if closed_now(s, 0):
                left.discard(i)
                slowest = time.monotonic() - t0
    print("idle: %d closed after %.1f s" % (n - len(left), slowest))


main()
