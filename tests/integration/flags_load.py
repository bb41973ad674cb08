#!/usr/bin/python3
"""Every NBD command flag on every alignment, overlapping, checked exactly.

Run with /usr/bin/python3 (it needs the libnbd bindings, python3-libnbd).

  flags_load.py first --uri URI
  flags_load.py load  --uri URI [--connections C] [--inflight K]
                      [--rounds R] [--window W] [--seed S]
                      [--ctl TRIPLEXCTL --volume NAME]

first: the case of the issue: a 10-byte WRITE_ZEROES with NO_HOLE at
offset 0 (then with FUA too) over a written block; it must succeed and
zero exactly those bytes; with FAST_ZERO as well it must fail with ENOTSUP
and change nothing (a partial block is a read-modify-write, no faster
than writing zeroes).  Prints its latency.

load: R rounds.  In a round K requests are issued at once over C
connections (libnbd's async API), all inside two windows of W bytes (the
start and the end of the export), so that they overlap while in flight:
WRITE +-FUA, WRITE_ZEROES with every subset of {FUA, NO_HOLE, FAST_ZERO},
TRIM +-FUA, FLUSH +-FUA, CACHE +-FUA, READ (plain, and structured with DF)
+-FUA, BLOCK_STATUS +-REQ_ONE; lengths of 1 byte, within a block, across
one block boundary, several blocks with partial edges, whole blocks, at
offset 0 and up to the last byte.  FUA on commands that write nothing is
allowed by the protocol (the server must accept it), so libnbd's flag
checks are turned off.

The model is exact despite the overlaps.  After a round both windows are
read back; the windows are cut into segments at every edge of every
request of the round, and a segment must equal, byte for byte, the model
(if no request of the round covers it) or the bytes of one covering
request: a write's data, or zeroes for WRITE_ZEROES and for the whole
blocks of a TRIM (triplex zeroes the whole blocks of a trim and leaves its
partial blocks alone, so those are not covered).  Concurrent overlapping
requests may apply in any order; a segment that is none of these wholly
is checked byte by byte against the same candidates.  The read data then
becomes the model.  A READ issued in the round must hold, per segment,
the model or a covering request's bytes.  After the round, every
BLOCK_STATUS extent reported as zero must read as zeroes.  Every request
must succeed, except a WRITE_ZEROES with FAST_ZERO whose range has a
partial block: that must fail with ENOTSUP and leave the data alone
(whole blocks are an fallocate, partial ones a read-modify-write).

With --ctl, after every round `triplexctl volume show NAME --json` must
list every replica as in_sync.

Prints "S {json}" with the figures; exit 0 on success, 1 on a check
failure, 2 on a usage or connection error.
"""

import argparse
import errno
import json
import os
import random
import select
import subprocess
import sys
import time

import nbd

BLOCK = 4096
ZERO_FLAGS = [0, nbd.CMD_FLAG_FUA, nbd.CMD_FLAG_NO_HOLE, nbd.CMD_FLAG_FAST_ZERO]


class CheckFailed(Exception):
    pass


def dn(x):
    return x // BLOCK * BLOCK


def up(x):
    return dn(x + BLOCK - 1)


def connect(uri):
    h = nbd.NBD()
    h.set_strict_mode(h.get_strict_mode() & ~nbd.STRICT_FLAGS)
    h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    h.connect_uri(uri)
    for what, ok in (("structured replies", h.get_structured_replies_negotiated()),
                     ("base:allocation", h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION)),
                     ("FUA", h.can_fua()), ("WRITE_ZEROES", h.can_zero()),
                     ("FAST_ZERO", h.can_fast_zero()), ("TRIM", h.can_trim()),
                     ("FLUSH", h.can_flush()), ("CACHE", h.can_cache()),
                     ("DF", h.can_df())):
        if not ok:
            raise CheckFailed("server does not offer %s" % what)
    return h


def flag_names(kind, flags):
    names = [n for n, f in (("FUA", nbd.CMD_FLAG_FUA), ("NO_HOLE", nbd.CMD_FLAG_NO_HOLE),
                            ("FAST_ZERO", nbd.CMD_FLAG_FAST_ZERO),
                            ("DF", nbd.CMD_FLAG_DF), ("REQ_ONE", nbd.CMD_FLAG_REQ_ONE))
             if flags & f]
    return kind + ("+" + "+".join(names) if names else "")


# --- first: the issue's case ------------------------------------------------

def first(a):
    h = connect(a.uri)
    out = {}
    for flags in (nbd.CMD_FLAG_NO_HOLE, nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_FUA,
                  nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_FUA | nbd.CMD_FLAG_FAST_ZERO):
        data = bytes((7 + i * 13) % 251 + 1 for i in range(2 * BLOCK))
        h.pwrite(data, 0)
        fast = bool(flags & nbd.CMD_FLAG_FAST_ZERO)
        t0 = time.monotonic()
        try:
            h.zero(10, 0, flags)
            if fast:
                raise CheckFailed("%s of [0, +10) succeeded: a partial block "
                                  "must fail with ENOTSUP" % flag_names("WRITE_ZEROES", flags))
        except nbd.Error as e:
            if not fast or e.errno != "ENOTSUP":
                raise CheckFailed("%s of [0, +10) failed after %.1f s: %s" % (
                    flag_names("WRITE_ZEROES", flags), time.monotonic() - t0, e))
        ms = (time.monotonic() - t0) * 1000
        got = h.pread(2 * BLOCK, 0)
        want = data if fast else bytes(10) + data[10:]
        if got != want:
            bad = next(i for i in range(len(got)) if got[i] != want[i])
            raise CheckFailed("after %s of [0, +10): byte %d is %d, want %d" % (
                flag_names("WRITE_ZEROES", flags), bad, got[bad], want[bad]))
        out[flag_names("zero", flags)] = round(ms, 1)
        print("first: %s of [0, +10) done in %.1f ms, bytes 0..9 zero, 10..8191 kept"
              % (flag_names("WRITE_ZEROES", flags), ms), file=sys.stderr)
    h.flush()
    h.shutdown()
    print("S " + json.dumps({"latency_ms": out}))


# --- load ----------------------------------------------------------------------

class Req:
    __slots__ = ("kind", "off", "len", "flags", "conn", "data", "buf", "err",
                 "chunks", "extents", "t0", "t1", "key")

    def __init__(self, kind, off, length, flags, conn):
        self.kind, self.off, self.len, self.flags, self.conn = kind, off, length, flags, conn
        self.data = self.buf = None
        self.err = None
        self.chunks = []
        self.extents = []
        self.t0 = self.t1 = 0.0

    def name(self):
        return "%s [%d, +%d) on conn %d" % (flag_names(self.kind, self.flags),
                                            self.off, self.len, self.conn)

    def fast_zero_refused(self):
        """A WRITE_ZEROES with FAST_ZERO over a partial block: ENOTSUP."""
        return (self.kind == "zero" and self.flags & nbd.CMD_FLAG_FAST_ZERO and
                (self.off | self.len) % BLOCK != 0)

    def contribution(self):
        """(lo, hi, data or None for zeroes) the request leaves, or None."""
        if self.fast_zero_refused():
            return None
        if self.kind == "write":
            return (self.off, self.off + self.len, self.data)
        if self.kind == "zero":
            return (self.off, self.off + self.len, None)
        if self.kind == "trim" and up(self.off) < dn(self.off + self.len):
            return (up(self.off), dn(self.off + self.len), None)
        return None


class Load:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.hs = [connect(a.uri) for _ in range(a.connections)]
        self.size = self.hs[0].get_size()
        w = a.window
        if self.size < 4 * w or w % BLOCK:
            raise CheckFailed("export of %d bytes too small for two %d-byte windows"
                              % (self.size, w))
        self.windows = [(0, w), (self.size - w, self.size)]
        self.model = {}
        self.zero_combo = 0
        self.st = dict(rounds=0, requests=0, fast_zero_refused=0, bytes_checked=0, overlapping_pairs=0,
                       cross_conn_overlapping_pairs=0, mixed_segments=0,
                       reads_checked=0, zero_extents_checked=0, max_ms=0.0)
        self.kinds = {}
        self.shapes = {}

    # -- generating

    def pick_range(self):
        lo, hi = self.rng.choice(self.windows)
        shape = self.rng.choice(["byte", "sub", "cross", "multi", "blocks",
                                 "start", "end"])
        r = self.rng
        if shape == "byte":
            off, n = r.randrange(lo, hi), 1
        elif shape == "sub":
            n = r.randrange(2, BLOCK)
            off = r.randrange(lo, hi, BLOCK) + r.randrange(0, BLOCK - n + 1)
        elif shape == "cross":
            b = r.randrange(lo + BLOCK, hi, BLOCK)
            a1, a2 = r.randrange(1, BLOCK), r.randrange(1, BLOCK)
            off, n = b - a1, a1 + a2
        elif shape == "multi":
            k = r.randrange(1, 7)
            off = r.randrange(lo, hi - (k + 2) * BLOCK, BLOCK) + r.randrange(1, BLOCK)
            n = k * BLOCK + r.randrange(1, BLOCK)
        elif shape == "blocks":
            k = r.randrange(1, 9)
            off, n = r.randrange(lo, hi - k * BLOCK + 1, BLOCK), k * BLOCK
        elif shape == "start":
            off, n = 0, r.randrange(1, 3 * BLOCK + 1)
        else:
            n = r.randrange(1, 3 * BLOCK + 1)
            off = self.size - n
        self.shapes[shape] = self.shapes.get(shape, 0) + 1
        return off, n

    def make(self, conn):
        r = self.rng
        kind = r.choices(["write", "zero", "trim", "read", "status", "cache", "flush"],
                         [30, 30, 10, 14, 6, 5, 5])[0]
        fua = nbd.CMD_FLAG_FUA if r.random() < 0.5 else 0
        off, n = self.pick_range()
        if kind == "zero":
            # Every subset of {FUA, NO_HOLE, FAST_ZERO}, in turn.
            self.zero_combo += 1
            flags = 0
            for i, f in enumerate(ZERO_FLAGS[1:]):
                if self.zero_combo & (1 << i):
                    flags |= f
        elif kind == "read":
            flags = fua | (nbd.CMD_FLAG_DF if r.random() < 0.5 else 0)
        elif kind == "status":
            flags = fua | (nbd.CMD_FLAG_REQ_ONE if r.random() < 0.5 else 0)
        else:
            flags = fua
        if kind == "flush":
            off, n = 0, 0
        q = Req(kind, off, n, flags, conn)
        if kind == "write":
            q.data = r.randbytes(n)
        key = flag_names(kind, flags)
        self.kinds[key] = self.kinds.get(key, 0) + 1
        return q

    # -- issuing and completing

    def issue(self, q, pending):
        h = self.hs[q.conn]

        def done(err, q=q):
            e = err.value if hasattr(err, "value") else int(err)
            q.err = e
            q.t1 = time.monotonic()
            pending.discard(q)
            return 1

        def chunk(sub, off, status, err, q=q):
            q.chunks.append((off, len(sub), status))
            return 0

        def extent(ctx, off, entries, err, q=q):
            q.extents.append((ctx, off, list(entries)))
            return 0

        q.t0 = time.monotonic()
        pending.add(q)
        if q.kind == "write":
            h.aio_pwrite(q.data, q.off, completion=done, flags=q.flags)
        elif q.kind == "zero":
            h.aio_zero(q.len, q.off, completion=done, flags=q.flags)
        elif q.kind == "trim":
            h.aio_trim(q.len, q.off, completion=done, flags=q.flags)
        elif q.kind == "flush":
            h.aio_flush(completion=done, flags=q.flags)
        elif q.kind == "cache":
            h.aio_cache(q.len, q.off, completion=done, flags=q.flags)
        elif q.kind == "status":
            h.aio_block_status(q.len, q.off, extent, completion=done, flags=q.flags)
        elif q.flags & nbd.CMD_FLAG_DF:
            q.buf = nbd.Buffer(q.len)
            h.aio_pread_structured(q.buf, q.off, chunk, completion=done, flags=q.flags)
        else:
            q.buf = nbd.Buffer(q.len)
            h.aio_pread(q.buf, q.off, completion=done, flags=q.flags)

    def drive(self, pending, what):
        deadline = time.monotonic() + self.a.round_timeout
        while pending:
            if time.monotonic() > deadline:
                raise CheckFailed("%s: %d requests without a reply after %d s: %s" % (
                    what, len(pending), self.a.round_timeout,
                    "; ".join(q.name() for q in list(pending)[:4])))
            rd, wr, by_fd = [], [], {}
            for h in self.hs:
                fd, d = h.aio_get_fd(), h.aio_get_direction()
                by_fd[fd] = h
                if d & nbd.AIO_DIRECTION_READ:
                    rd.append(fd)
                if d & nbd.AIO_DIRECTION_WRITE:
                    wr.append(fd)
            r, w, _ = select.select(rd, wr, [], 0.1)
            for fd in r:
                by_fd[fd].aio_notify_read()
            for fd in w:
                by_fd[fd].aio_notify_write()

    def sync_read(self, off, n, df):
        q = Req("read", off, n, nbd.CMD_FLAG_DF if df else 0, 0)
        pending = set()
        self.issue(q, pending)
        self.drive(pending, "read back")
        if q.err:
            raise CheckFailed("read back of [%d, +%d) failed: %s" % (off, n, os.strerror(q.err)))
        self.check_read_reply(q)
        return bytes(q.buf.to_bytearray())

    # -- checking

    def check_read_reply(self, q):
        if not q.flags & nbd.CMD_FLAG_DF:
            return
        if len(q.chunks) != 1 or q.chunks[0] != (q.off, q.len, nbd.READ_DATA):
            raise CheckFailed("%s: DF read not answered in one data chunk: %s"
                              % (q.name(), q.chunks))

    def check_status_reply(self, q):
        descs = [(e[0], e[1]) for ctx, off, ents in q.extents
                 for e in zip(ents[0::2], ents[1::2])]
        if [c for c, _, _ in q.extents] != [nbd.CONTEXT_BASE_ALLOCATION] or not descs:
            raise CheckFailed("%s: extents %s" % (q.name(), q.extents))
        if q.flags & nbd.CMD_FLAG_REQ_ONE and len(descs) != 1:
            raise CheckFailed("%s: REQ_ONE got %d extents" % (q.name(), len(descs)))
        total = sum(n for n, _ in descs)
        if total > q.len or any(n == 0 for n, _ in descs):
            raise CheckFailed("%s: extents %s for %d bytes" % (q.name(), descs, q.len))
        return descs

    def segments(self, lo, hi, contribs):
        edges = {lo, hi}
        for c_lo, c_hi, _ in contribs:
            if c_lo < hi and c_hi > lo:
                edges.add(max(lo, c_lo))
                edges.add(min(hi, c_hi))
        edges = sorted(edges)
        for s, e in zip(edges, edges[1:]):
            yield s, e, [c for c in contribs if c[0] <= s and c[1] >= e]

    def check_range(self, what, lo, got, contribs, model, also_model):
        """got holds [lo, lo+len(got)); model is the pre-round model of it."""
        hi = lo + len(got)
        for s, e, cover in self.segments(lo, hi, contribs):
            cands = [bytes(e - s) if d is None else d[s - c_lo:e - c_lo]
                     for c_lo, _, d in cover]
            if also_model or not cover:
                cands.append(model[s - lo:e - lo])
            seg = got[s - lo:e - lo]
            if seg in cands:
                continue
            self.st["mixed_segments"] += 1
            for i in range(e - s):
                if all(seg[i] != c[i] for c in cands):
                    raise CheckFailed(
                        "%s: byte %d is %d, allowed %s (segment [%d, %d) covered by %d "
                        "requests of the round%s)" % (
                            what, s + i, seg[i], sorted({c[i] for c in cands}), s, e,
                            len(cover), ", or the model" if also_model or not cover else ""))

    def model_of(self, off, n):
        for lo, hi in self.windows:
            if lo <= off and off + n <= hi:
                return self.model[lo][off - lo:off - lo + n]
        raise AssertionError("range outside the windows")

    def count_overlaps(self, reqs):
        ranged = [q for q in reqs if q.kind != "flush"]
        for i, q in enumerate(ranged):
            for p in ranged[i + 1:]:
                if q.kind not in ("write", "zero", "trim") and \
                        p.kind not in ("write", "zero", "trim"):
                    continue
                if dn(q.off) < up(p.off + p.len) and dn(p.off) < up(q.off + q.len):
                    self.st["overlapping_pairs"] += 1
                    if p.conn != q.conn:
                        self.st["cross_conn_overlapping_pairs"] += 1

    def states_ok(self):
        if not self.a.ctl:
            return
        out = subprocess.run([self.a.ctl, "volume", "show", self.a.volume, "--json"],
                             check=True, capture_output=True, text=True).stdout
        states = {p["node"]: p["state"] for p in json.loads(out)["placement"]}
        if any(s != "in_sync" for s in states.values()):
            raise CheckFailed("round %d: a replica left the in-sync set: %s"
                              % (self.st["rounds"], states))

    def round(self, k):
        reqs = [self.make(i % self.a.connections) for i in range(k)]
        pending = set()
        for q in reqs:
            self.issue(q, pending)
        self.count_overlaps(reqs)
        self.drive(pending, "round %d" % self.st["rounds"])
        self.st["requests"] += len(reqs)
        for q in reqs:
            ms = (q.t1 - q.t0) * 1000
            self.st["max_ms"] = max(self.st["max_ms"], round(ms, 1))
            if q.fast_zero_refused():
                if q.err != errno.ENOTSUP:
                    raise CheckFailed("round %d: %s: got %s, want ENOTSUP" % (
                        self.st["rounds"], q.name(),
                        os.strerror(q.err) if q.err else "success"))
                self.st["fast_zero_refused"] += 1
            elif q.err:
                raise CheckFailed("round %d: %s failed: %s" % (
                    self.st["rounds"], q.name(), os.strerror(q.err)))
        contribs = [c for c in (q.contribution() for q in reqs) if c]
        for q in reqs:
            if q.kind == "read":
                self.check_read_reply(q)
                self.check_range("round %d: %s" % (self.st["rounds"], q.name()), q.off,
                                 bytes(q.buf.to_bytearray()), contribs,
                                 self.model_of(q.off, q.len), True)
                self.st["reads_checked"] += 1
            elif q.kind == "status":
                self.check_status_reply(q)
        for lo, hi in self.windows:
            got = self.sync_read(lo, hi - lo, self.st["rounds"] % 2 == 1)
            self.check_range("round %d: window [%d, %d)" % (self.st["rounds"], lo, hi),
                             lo, got, contribs, self.model[lo], False)
            self.st["bytes_checked"] += hi - lo
            self.model[lo] = got
            self.check_zero_extents(lo, hi)
        self.st["rounds"] += 1
        self.states_ok()

    def check_zero_extents(self, lo, hi):
        q = Req("status", lo, hi - lo, 0, 0)
        pending = set()
        self.issue(q, pending)
        self.drive(pending, "block status")
        if q.err:
            raise CheckFailed("%s failed: %s" % (q.name(), os.strerror(q.err)))
        at = lo
        for n, flags in self.check_status_reply(q):
            if flags & nbd.STATE_ZERO and self.model[lo][at - lo:at - lo + n] != bytes(n):
                raise CheckFailed("[%d, +%d) reported zero by BLOCK_STATUS but reads "
                                  "otherwise" % (at, n))
            if flags & nbd.STATE_ZERO:
                self.st["zero_extents_checked"] += 1
            at += n

    def run(self):
        t0 = time.monotonic()
        for lo, hi in self.windows:
            self.model[lo] = self.sync_read(lo, hi - lo, False)
        for _ in range(self.a.rounds):
            self.round(self.a.inflight)
        for h in self.hs:
            h.flush()
            h.shutdown()
        self.st["seconds"] = round(time.monotonic() - t0, 1)
        self.st["kinds"] = len(self.kinds)
        print("S " + json.dumps(dict(self.st, by_kind=self.kinds, shapes=self.shapes),
                                sort_keys=True))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["first", "load"])
    p.add_argument("--uri", required=True)
    p.add_argument("--connections", type=int, default=2)
    p.add_argument("--inflight", type=int, default=32)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--window", type=int, default=128 * 1024)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--round-timeout", type=int, default=20)
    p.add_argument("--ctl")
    p.add_argument("--volume")
    a = p.parse_args()
    if a.seed is None:
        a.seed = random.randrange(1 << 30)
    try:
        if a.mode == "first":
            first(a)
        else:
            print("load: seed %d, %d rounds of %d requests on %d connections"
                  % (a.seed, a.rounds, a.inflight, a.connections), file=sys.stderr)
            Load(a).run()
    except CheckFailed as e:
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
    except nbd.Error as e:
        print("ERROR: %s" % e, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
