#!/usr/bin/python3
"""Acknowledged-write checker for the triplex fault tests.

Run with /usr/bin/python3 (it needs the libnbd bindings, python3-libnbd).

  checker.py write  --uri URI --log FILE [--duration S] [--max-ops N]
                    [--inflight K] [--blocks B] [--sub-block-fraction F]
                    [--connections C] [--flush-every M] [--hot-fraction H]
                    [--max-blocks-per-write X] [--seed S] [--append] ...
  checker.py verify --uri URI --log FILE [--initial zero|any]
                    [--unknown-until-end] [--timeout S]

write: a workload of random writes with K requests in flight over C NBD
connections.  Every write has a unique id ("generation", wid) and a random
64-bit tag, and its bytes are a pure function of (wid, tag, absolute byte
offset), so the log needs no data: one 32-byte unit at absolute offset
32*u holds

    b"TPXC" | u32 unit index in its 4 KiB block | u64 block index
           | u64 wid | u64 tag                               (little endian)

and a write of [off, off+len) carries the bytes of those units in that
range (a sub-block write at an odd offset is a slice of the units).

Log (text, one event a line, appended in completion order, fsync'd in
batches):
    H {json}                      header of one write run
    A wid conn iseq dseq off len tag               acknowledged write
    F wid conn iseq dseq off len tag kind msg      failed write: kind is
        err     the server replied with an error,
        conn    no reply: the connection died with the write in flight,
        timeout no reply within --op-timeout (the connection was dropped),
        stop    still in flight when the run ended (drain timed out)
    L conn iseq dseq ok|err       a FLUSH (informative only)
    S {json}                      summary of the run
iseq/dseq are values of one logical clock, taken just before the request
is handed to libnbd and just after its reply (or failure) is seen.  A
write w2 is "definitely after" w1 when iseq(w2) > dseq(w1).

verify: reads the whole volume and checks every byte range against the
model below; prints the figures; exit 0 only if nothing acknowledged was
lost and nothing unexplained was found.

The model (exact at byte granularity).  For each block, the block is cut
into segments at every boundary of every logged write touching it.  For a
segment, the covering writes are the logged writes containing it.  A
covering write w is a *candidate* iff no ACKNOWLEDGED covering write w'
is definitely after it (dseq(w) >= max iseq of the acked covering writes).
The initial content (zeros, or anything with --initial any) is a
candidate iff no acknowledged write covers the segment.  The segment's
bytes must equal the bytes of one candidate.  So: the last acknowledged
write, or one concurrent with it (NBD lets overlapping requests in flight
at the same time complete in either order), or a failed/unknown write
that was not definitely followed by an acknowledged one; never an older
acknowledged write ("lost"), never anything else ("corrupt").  Each
segment is judged on its own, so a failed multi-block or sub-block write
may have landed in part, at segment granularity; a tear inside one
segment is corruption.  A write that ended with no reply is taken to
have ended when the client saw that (correct when the server process
died); --unknown-until-end treats such writes as able to land at any
later time (for a server that may still be running, e.g. partitioned).

The checker must be stopped with SIGINT/SIGTERM (or by --duration or
--max-ops), not SIGKILL: writes are logged when they complete, so writes
in flight at a SIGKILL of the checker would be unexplained.
"""

import argparse
import json
import os
import random
import selectors
import signal
import struct
import sys
import time

try:
    import nbd
except ImportError:  # pragma: no cover
    sys.stderr.write("checker.py: needs the libnbd python bindings "
                     "(python3-libnbd); run it with /usr/bin/python3\n")
    sys.exit(77)

BLOCK = 4096
UNIT = 32
UNITS_PER_BLOCK = BLOCK // UNIT
MAGIC = b"TPXC"
_UNIT = struct.Struct("<4sIQQQ")
_PREFIX = struct.Struct("<4sIQ")
_SUFFIX = struct.Struct("<QQ")
ZERO_BLOCK = bytes(BLOCK)


def die(msg, rc=2):
    sys.stderr.write("checker.py: %s\n" % msg)
    sys.exit(rc)


# --------------------------------------------------------------------------
# Content

_prefix_cache = {}


def _block_prefixes(blk):
    p = _prefix_cache.get(blk)
    if p is None:
        if len(_prefix_cache) > 4096:
            _prefix_cache.clear()
        p = [_PREFIX.pack(MAGIC, i, blk) for i in range(UNITS_PER_BLOCK)]
        _prefix_cache[blk] = p
    return p


def content(wid, tag, off, length):
    """The bytes write (wid, tag) puts at absolute [off, off+length)."""
    if length <= 0:
        return b""
    suffix = _SUFFIX.pack(wid, tag)
    first = off // UNIT
    last = (off + length - 1) // UNIT
    parts = []
    u = first
    while u <= last:
        blk = u // UNITS_PER_BLOCK
        pre = _block_prefixes(blk)
        i = u % UNITS_PER_BLOCK
        j = min(UNITS_PER_BLOCK, i + (last - u) + 1)
        parts.append(b"".join(pre[k] + suffix for k in range(i, j)))
        u += j - i
    data = b"".join(parts)
    s = off - first * UNIT
    return data[s:s + length]


def describe(data, abs_off):
    """A short human description of 32 bytes read at abs_off."""
    if not any(data):
        return "zeros"
    skip = (-abs_off) % UNIT
    if len(data) >= skip + UNIT:
        u = (abs_off + skip) // UNIT
        magic, idx, blk, wid, tag = _UNIT.unpack_from(data, skip)
        if (magic == MAGIC and idx == u % UNITS_PER_BLOCK and
                blk == u // UNITS_PER_BLOCK):
            return "an intact unit of wid %d tag %016x" % (wid, tag)
    return "bytes %s" % bytes(data[:UNIT]).hex()


# --------------------------------------------------------------------------
# Log

class LogWriter:
    def __init__(self, path, append, batch, interval):
        if os.path.exists(path) and os.path.getsize(path) > 0 and not append:
            die("log %s exists and is not empty (use --append to continue it)"
                % path)
        self.f = open(path, "a", encoding="ascii")
        self.pending = 0
        self.batch = batch
        self.interval = interval
        self.last_sync = time.monotonic()
        self.syncs = 0

    def line(self, s):
        self.f.write(s + "\n")
        self.pending += 1
        if self.pending >= self.batch:
            self.sync()

    def maybe_sync(self):
        if self.pending and time.monotonic() - self.last_sync >= self.interval:
            self.sync()

    def sync(self):
        self.f.flush()
        os.fsync(self.f.fileno())
        self.pending = 0
        self.syncs += 1
        self.last_sync = time.monotonic()

    def close(self):
        self.sync()
        self.f.close()


def scan_log_tail(path):
    """(max wid, max seq) already used in an existing log."""
    wid = seq = 0
    if not os.path.exists(path):
        return wid, seq
    with open(path, encoding="ascii", errors="replace") as f:
        for ln in f:
            p = ln.split()
            if not p:
                continue
            if p[0] in ("A", "F") and len(p) >= 8:
                try:
                    wid = max(wid, int(p[1]))
                    seq = max(seq, int(p[3]), int(p[4]))
                except ValueError:
                    pass
            elif p[0] == "L" and len(p) >= 4:
                try:
                    seq = max(seq, int(p[2]), int(p[3]))
                except ValueError:
                    pass
    return wid, seq


# --------------------------------------------------------------------------
# write

_CONN_ERRNOS = {getattr(__import__("errno"), n) for n in (
    "ENOTCONN", "ECONNRESET", "EPIPE", "ESHUTDOWN", "ECONNABORTED")}


def err_kind(e):
    """Kind of a failed reply: libnbd fails in-flight commands with
    ENOTCONN & co when the connection dies (no reply from the server)."""
    return "conn" if e in _CONN_ERRNOS else "err"


class Conn:
    def __init__(self, idx):
        self.idx = idx
        self.h = None
        self.state = "down"      # down | connecting | ready
        self.deadline = 0.0
        self.retry_at = 0.0
        self.out = {}            # op key -> op
        self.since_flush = 0
        self.connects = 0


class Writer:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        wid0, seq0 = scan_log_tail(a.log) if a.append else (0, 0)
        self.wid = wid0
        self.seq = seq0
        self.log = LogWriter(a.log, a.append, a.fsync_batch, 0.2)
        self.conns = [Conn(i) for i in range(a.connections)]
        self.per_conn = max(1, -(-a.inflight // a.connections))
        self.stop = False
        self.stop_reason = ""
        self.sel = selectors.DefaultSelector()
        self.size = None
        self.hot = []
        self.inflight_blocks = {}    # block -> {conn idx: count}
        self.st = dict(issued=0, acked=0, failed=0, failed_err=0,
                       failed_conn=0, failed_timeout=0, failed_stop=0,
                       sub_block=0, sub_block_acked=0, multi_block=0,
                       overlaps=0, cross_conn_overlaps=0,
                       flushes=0, flushes_failed=0, connects=0,
                       connect_failures=0, disconnects=0, bytes_acked=0)
        self.first_error = None
        self.opkey = 0

    def tick(self):
        self.seq += 1
        return self.seq

    # -- connections ------------------------------------------------------
    def start_connect(self, c, now):
        h = nbd.NBD()
        try:
            h.set_strict_mode(h.get_strict_mode())
            h.aio_connect_uri(self.a.uri)
        except nbd.Error as e:
            self.note_error("connect: %s" % e)
            self.st["connect_failures"] += 1
            c.retry_at = now + self.a.reconnect_interval
            return
        c.h = h
        c.state = "connecting"
        c.deadline = now + self.a.connect_timeout

    def drop(self, c, kind, msg, now):
        """Forget a connection; its in-flight writes end as failed."""
        if c.h is not None:
            try:
                self.sel.unregister(c.h.aio_get_fd())
            except Exception:
                pass
        for op in list(c.out.values()):
            self.finish(c, op, False, kind, msg)
        c.out.clear()
        c.h = None  # nbd_close happens when the handle is freed
        if c.state == "ready":
            self.st["disconnects"] += 1
        c.state = "down"
        c.retry_at = now + self.a.reconnect_interval

    def note_error(self, msg):
        if self.first_error is None:
            self.first_error = msg
        if self.a.verbose:
            sys.stderr.write("checker.py: %s\n" % msg)

    def check_connecting(self, c, now):
        h = c.h
        try:
            if h.aio_is_ready():
                size = h.get_size()
                if self.size is None:
                    self.size = size
                    self.setup_geometry()
                elif size != self.size:
                    die("export size changed from %d to %d"
                        % (self.size, size), 1)
                c.state = "ready"
                c.connects += 1
                self.st["connects"] += 1
                return
            if h.aio_is_dead() or h.aio_is_closed():
                raise nbd.Error("connection failed", 0)
        except nbd.Error as e:
            self.note_error("connect: %s" % e)
            self.st["connect_failures"] += 1
            self.drop(c, "conn", "connect", now)
            return
        if now >= c.deadline:
            self.note_error("connect: timed out after %.1fs"
                            % self.a.connect_timeout)
            self.st["connect_failures"] += 1
            self.drop(c, "conn", "connect-timeout", now)

    def setup_geometry(self):
        a = self.a
        nblocks = self.size // BLOCK
        if a.blocks <= 0:
            a.blocks = nblocks
        if a.blocks > nblocks:
            die("--blocks %d is more than the export holds (%d)"
                % (a.blocks, nblocks))
        nhot = min(a.blocks, a.hot_blocks)
        self.hot = self.rng.sample(range(a.blocks), nhot)
        self.log.line("H " + json.dumps(dict(
            version=1, block=BLOCK, size=self.size, blocks=a.blocks,
            uri=a.uri, seed=a.seed, connections=a.connections,
            inflight=a.inflight, sub_block_fraction=a.sub_block_fraction,
            hot=sorted(self.hot), first_wid=self.wid + 1,
            time=time.time()), sort_keys=True))
        self.log.sync()

    # -- ops --------------------------------------------------------------
    def pick_extent(self):
        a = self.a
        r = self.rng
        if r.random() < a.sub_block_fraction:
            length = r.randint(1, BLOCK - 1)
            if self.hot and r.random() < a.hot_fraction:
                blk = r.choice(self.hot)
                off = blk * BLOCK + r.randrange(0, BLOCK)
                off = min(off, a.blocks * BLOCK - length)
            else:
                off = r.randrange(0, a.blocks * BLOCK - length + 1)
            return off, length, True
        n = r.randint(1, min(a.max_blocks_per_write, a.blocks))
        if self.hot and r.random() < a.hot_fraction:
            blk = min(r.choice(self.hot), a.blocks - n)
        else:
            blk = r.randrange(0, a.blocks - n + 1)
        return blk * BLOCK, n * BLOCK, False

    def blocks_of(self, off, length):
        return range(off // BLOCK, (off + length - 1) // BLOCK + 1)

    def issue(self, c):
        off, length, sub = self.pick_extent()
        self.wid += 1
        wid = self.wid
        tag = self.rng.getrandbits(64)
        buf = content(wid, tag, off, length)
        overlap = cross = False
        for b in self.blocks_of(off, length):
            d = self.inflight_blocks.get(b)
            if d:
                overlap = True
                if any(k != c.idx for k in d):
                    cross = True
        self.opkey += 1
        op = dict(key=self.opkey, wid=wid, off=off, len=length, tag=tag,
                  sub=sub, buf=buf, flush=False, t=time.monotonic())
        op["iseq"] = self.tick()
        c.out[op["key"]] = op

        def cb(err, c=c, op=op):
            if op["key"] in c.out:
                del c.out[op["key"]]
                e = err.value if hasattr(err, "value") else int(err)
                self.finish(c, op, e == 0, err_kind(e),
                            os.strerror(e) if e else "")
            return 1

        try:
            c.h.aio_pwrite(buf, off, completion=cb)
        except nbd.Error as e:
            # Not sent (handle dead or request refused): it cannot land,
            # so it is not logged at all (its wid is simply unused).
            c.out.pop(op["key"], None)
            self.note_error("write not sent: %s" % e)
            self.drop(c, "conn", "dead", time.monotonic())
            return
        self.st["issued"] += 1
        if sub:
            self.st["sub_block"] += 1
        if length > BLOCK:
            self.st["multi_block"] += 1
        if overlap:
            self.st["overlaps"] += 1
        if cross:
            self.st["cross_conn_overlaps"] += 1
        for b in self.blocks_of(off, length):
            d = self.inflight_blocks.setdefault(b, {})
            d[c.idx] = d.get(c.idx, 0) + 1
        c.since_flush += 1
        if self.a.flush_every and c.since_flush >= self.a.flush_every:
            c.since_flush = 0
            self.issue_flush(c)

    def issue_flush(self, c):
        self.opkey += 1
        op = dict(key=self.opkey, flush=True, t=time.monotonic())
        op["iseq"] = self.tick()
        c.out[op["key"]] = op

        def cb(err, c=c, op=op):
            if op["key"] in c.out:
                del c.out[op["key"]]
                e = err.value if hasattr(err, "value") else int(err)
                self.finish(c, op, e == 0, "err", os.strerror(e) if e else "")
            return 1

        try:
            c.h.aio_flush(completion=cb)
        except nbd.Error:
            c.out.pop(op["key"], None)
            self.drop(c, "conn", "dead", time.monotonic())

    def finish(self, c, op, ok, kind, msg):
        dseq = self.tick()
        if op["flush"]:
            self.st["flushes" if ok else "flushes_failed"] += 1
            self.log.line("L %d %d %d %s" % (c.idx, op["iseq"], dseq,
                                             "ok" if ok else "err"))
            return
        if "counted" not in op:
            for b in self.blocks_of(op["off"], op["len"]):
                d = self.inflight_blocks.get(b)
                if d and c.idx in d:
                    d[c.idx] -= 1
                    if d[c.idx] <= 0:
                        del d[c.idx]
                    if not d:
                        del self.inflight_blocks[b]
        op["counted"] = True
        op["buf"] = None
        rec = "%d %d %d %d %d %d %d" % (op["wid"], c.idx, op["iseq"], dseq,
                                        op["off"], op["len"], op["tag"])
        if ok:
            self.st["acked"] += 1
            self.st["bytes_acked"] += op["len"]
            if op["sub"]:
                self.st["sub_block_acked"] += 1
            self.log.line("A " + rec)
        else:
            self.st["failed"] += 1
            self.st["failed_" + kind] = self.st.get("failed_" + kind, 0) + 1
            safe = (msg or "-").replace(" ", "_")[:80]
            self.log.line("F %s %s %s" % (rec, kind, safe))
            self.note_error("write wid %d failed (%s): %s"
                            % (op["wid"], kind, msg))

    # -- loop -------------------------------------------------------------
    def pump(self, timeout):
        """One round of the event loop over every live connection."""
        now = time.monotonic()
        regs = {}
        for c in self.conns:
            if c.h is None:
                continue
            try:
                fd = c.h.aio_get_fd()
                d = c.h.aio_get_direction()
            except nbd.Error:
                # No socket yet (still resolving) or dead.
                if c.h.aio_is_dead() or c.h.aio_is_closed():
                    self.drop(c, "conn", "dead", now)
                continue
            ev = 0
            if d & nbd.AIO_DIRECTION_READ:
                ev |= selectors.EVENT_READ
            if d & nbd.AIO_DIRECTION_WRITE:
                ev |= selectors.EVENT_WRITE
            if ev == 0:
                continue
            regs[fd] = c
            try:
                self.sel.register(fd, ev, c)
            except KeyError:
                self.sel.modify(fd, ev, c)
            except ValueError:
                continue
        try:
            ready = self.sel.select(timeout) if regs else []
            if not regs:
                time.sleep(timeout)
        finally:
            for fd in regs:
                try:
                    self.sel.unregister(fd)
                except (KeyError, ValueError):
                    pass
        now = time.monotonic()
        for key, ev in ready:
            c = key.data
            if c.h is None:
                continue
            try:
                if ev & selectors.EVENT_READ:
                    c.h.aio_notify_read()
                if ev & selectors.EVENT_WRITE and c.h is not None:
                    c.h.aio_notify_write()
            except nbd.Error as e:
                self.note_error("connection %d: %s" % (c.idx, e))
                self.drop(c, "conn", str(e), now)
                continue
            if c.h is not None and (c.h.aio_is_dead() or c.h.aio_is_closed()):
                self.drop(c, "conn", "dead", now)

    def run(self):
        a = self.a
        t0 = time.monotonic()
        end = t0 + a.duration
        drain_end = None

        def on_signal(signum, frame):
            self.stop = True
            self.stop_reason = "signal %d" % signum
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

        while True:
            now = time.monotonic()
            if not self.stop:
                if now >= end:
                    self.stop, self.stop_reason = True, "duration"
                elif a.max_ops and self.st["issued"] >= a.max_ops:
                    self.stop, self.stop_reason = True, "max-ops"
            # One reading of self.stop per turn: the signal handler may
            # set it between two lines.
            stopping = self.stop
            if stopping and drain_end is None:
                drain_end = now + a.drain_timeout
            busy = any(c.out for c in self.conns)
            if stopping and (not busy or now >= drain_end):
                break
            for c in self.conns:
                if c.state == "down" and not self.stop and now >= c.retry_at:
                    self.start_connect(c, now)
                if c.state == "connecting":
                    self.check_connecting(c, now)
                if c.state == "ready":
                    if c.h.aio_is_dead() or c.h.aio_is_closed():
                        self.drop(c, "conn", "dead", now)
                        continue
                    # Per-request timeout: give up on this connection.
                    if a.op_timeout and c.out:
                        oldest = min(op["t"] for op in c.out.values())
                        if now - oldest > a.op_timeout:
                            self.note_error("connection %d: no reply for %.1fs"
                                            % (c.idx, now - oldest))
                            self.drop(c, "timeout", "no-reply", now)
                            continue
                    while (not self.stop and len(c.out) < self.per_conn and
                           c.h is not None and
                           not (a.max_ops and self.st["issued"] >= a.max_ops)):
                        self.issue(c)
            self.pump(0.05)
            self.log.maybe_sync()
            if a.progress and int(now - t0) != int(time.monotonic() - t0):
                sys.stderr.write("checker.py: %ds acked=%d failed=%d\n" % (
                    int(time.monotonic() - t0), self.st["acked"],
                    self.st["failed"]))
        now = time.monotonic()
        for c in self.conns:
            if c.out:
                self.drop(c, "stop", "in-flight-at-end", now)
            elif c.h is not None:
                try:
                    c.h.shutdown(nbd.SHUTDOWN_ABANDON_PENDING)
                except nbd.Error:
                    pass
                c.h = None
        secs = time.monotonic() - t0
        st = dict(self.st)
        st.update(seconds=round(secs, 3), stop=self.stop_reason,
                  ops_per_sec=round(st["acked"] / secs, 1) if secs else 0,
                  last_wid=self.wid, log_fsyncs=self.log.syncs + 1,
                  first_error=self.first_error)
        self.log.line("S " + json.dumps(st, sort_keys=True))
        self.log.close()
        print("checker write: acked=%d failed=%d (err=%d conn=%d timeout=%d "
              "stop=%d) sub-block=%d multi-block=%d overlaps=%d "
              "cross-conn-overlaps=%d flushes=%d connects=%d disconnects=%d "
              "connect-failures=%d %.1fs %.0f acked/s stop=%s" % (
                  st["acked"], st["failed"], st["failed_err"],
                  st["failed_conn"], st["failed_timeout"], st["failed_stop"],
                  st["sub_block"], st["multi_block"], st["overlaps"],
                  st["cross_conn_overlaps"], st["flushes"], st["connects"],
                  st["disconnects"], st["connect_failures"], secs,
                  st["ops_per_sec"], self.stop_reason))
        sys.stdout.flush()
        if st["acked"] == 0:
            sys.stderr.write("checker.py: no write was acknowledged (%s)\n"
                             % self.first_error)
            return 1
        return 0


# --------------------------------------------------------------------------
# verify

INF = float("inf")


def parse_log(path, unknown_until_end):
    """Writes (list of tuples) and the header geometry from a log."""
    writes = []
    headers = []
    nlines = bad = 0
    with open(path, encoding="ascii", errors="replace") as f:
        lines = f.read().split("\n")
    # A last line without its newline is a torn append: ignore it.
    if lines and lines[-1] != "":
        sys.stderr.write("checker.py: ignoring a torn last log line\n")
        bad += 1
    lines = lines[:-1]
    for ln in lines:
        nlines += 1
        p = ln.split()
        if not p:
            continue
        try:
            if p[0] == "H":
                headers.append(json.loads(ln[2:]))
            elif p[0] == "A":
                wid, conn, iseq, dseq, off, ln_, tag = map(int, p[1:8])
                writes.append((off, off + ln_, wid, tag, iseq, dseq, True, ""))
            elif p[0] == "F":
                wid, conn, iseq, dseq, off, ln_, tag = map(int, p[1:8])
                kind = p[8]
                d = dseq
                if unknown_until_end and kind != "err":
                    d = INF
                writes.append((off, off + ln_, wid, tag, iseq, d, False, kind))
            elif p[0] in ("L", "S"):
                pass
            else:
                raise ValueError("unknown record")
        except (ValueError, IndexError) as e:
            die("%s:%d: bad log line (%s): %r" % (path, nlines, e, ln[:100]),
                1)
    if not headers:
        die("%s holds no write run (no H line)" % path, 1)
    return writes, headers


def read_volume(h, size, chunk, deadline):
    """Yield (offset, bytes) for the whole export, a few reads in flight."""
    pending = {}
    results = {}
    off = nxt = 0
    while nxt < size:
        while off < size and len(pending) < 8:
            n = min(chunk, size - off)
            buf = nbd.Buffer(n)
            pending[h.aio_pread(buf, off)] = (off, buf)
            off += n
        progressed = False
        for ck in list(pending):
            if h.aio_command_completed(ck):  # raises on a read error
                o, buf = pending.pop(ck)
                results[o] = buf.to_bytearray()
                progressed = True
        while nxt in results:
            data = results.pop(nxt)
            yield nxt, data
            nxt += len(data)
        if time.monotonic() > deadline:
            raise TimeoutError("reading the volume took too long")
        if not progressed and nxt < size:
            h.poll(1000)


def verify(a):
    t0 = time.monotonic()
    deadline = t0 + a.timeout
    writes, headers = parse_log(a.log, a.unknown_until_end)
    geo = headers[0]
    if geo.get("block") != BLOCK:
        die("log block size %r is not %d" % (geo.get("block"), BLOCK), 1)
    acked = sum(1 for w in writes if w[6])
    failed = len(writes) - acked
    # Index writes by block.
    by_block = {}
    for w in writes:
        for b in range(w[0] // BLOCK, (w[1] - 1) // BLOCK + 1):
            by_block.setdefault(b, []).append(w)

    h = nbd.NBD()
    h.aio_connect_uri(a.uri)
    while not h.aio_is_ready():
        if h.aio_is_dead() or h.aio_is_closed():
            die("cannot connect to %s" % a.uri, 1)
        if time.monotonic() > deadline:
            die("connect to %s timed out" % a.uri, 1)
        h.poll(500)
    size = h.get_size()
    if size != geo.get("size"):
        die("export size %d differs from the logged %r"
            % (size, geo.get("size")), 1)

    f = dict(blocks_checked=0, blocks_written=0, blocks_untouched=0,
             segments=0, sub_block_segments=0, ambiguous_segments=0,
             matched_last_acked=0, matched_concurrent_acked=0,
             matched_unknown=0, matched_initial=0,
             lost_segments=0, corrupt_segments=0)
    lost_wids = set()
    problems = []

    def report(kind, b, s, e, cands, data, abs_s, extra=""):
        if len(problems) < a.max_report:
            problems.append("%s: block %d bytes [%d,%d) of the block: "
                            "at byte %d found %s;"
                            " allowed: %s%s" % (
                                kind, b, s - b * BLOCK, e - b * BLOCK,
                                abs_s - b * BLOCK, describe(data, abs_s),
                                ", ".join(cands) or "nothing", extra))

    try:
        for off, data in read_volume(h, size, 1 << 20, deadline):
            mv = memoryview(data)
            for boff in range(0, len(data) - len(data) % BLOCK, BLOCK):
                b = (off + boff) // BLOCK
                blk = mv[boff:boff + BLOCK]
                f["blocks_checked"] += 1
                ws = by_block.get(b)
                if not ws:
                    f["blocks_untouched"] += 1
                    f["segments"] += 1
                    if a.initial == "zero" and blk != ZERO_BLOCK:
                        f["corrupt_segments"] += 1
                        report("CORRUPT", b, b * BLOCK, (b + 1) * BLOCK,
                               ["zeros (never written)"], bytes(blk),
                               b * BLOCK)
                    else:
                        f["matched_initial"] += 1
                    continue
                f["blocks_written"] += 1
                check_block(a, b, blk, ws, f, lost_wids, report)
            if len(data) % BLOCK:
                # A partial last block (export size not a multiple of 4K).
                pass
    except (nbd.Error, TimeoutError) as e:
        die("reading %s failed: %s" % (a.uri, e), 1)
    try:
        h.shutdown()
    except nbd.Error:
        pass
    secs = time.monotonic() - t0
    for p in problems:
        print(p)
    ok = f["lost_segments"] == 0 and f["corrupt_segments"] == 0
    print("checker verify: acked writes=%d failed writes=%d blocks checked=%d "
          "written=%d untouched=%d segments=%d (sub-block %d, ambiguous %d) "
          "matched: last-acked=%d concurrent-acked=%d unknown=%d initial=%d; "
          "lost writes=%d lost segments=%d corrupt segments=%d  %.1fs  %s" % (
              acked, failed, f["blocks_checked"], f["blocks_written"],
              f["blocks_untouched"], f["segments"], f["sub_block_segments"],
              f["ambiguous_segments"], f["matched_last_acked"],
              f["matched_concurrent_acked"], f["matched_unknown"],
              f["matched_initial"], len(lost_wids), f["lost_segments"],
              f["corrupt_segments"], secs, "OK" if ok else "FAILED"))
    sys.stdout.flush()
    return 0 if ok else 1


def check_block(a, b, blk, ws, f, lost_wids, report):
    bs = b * BLOCK
    be = bs + BLOCK
    cuts = {bs, be}
    for w in ws:
        if w[0] > bs:
            cuts.add(w[0])
        if w[1] < be:
            cuts.add(w[1])
    cuts = sorted(cuts)
    sub = len(cuts) > 2
    bad = []          # (kind, s, e, allowed names, stale description)
    for i in range(len(cuts) - 1):
        s, e = cuts[i], cuts[i + 1]
        f["segments"] += 1
        if sub:
            f["sub_block_segments"] += 1
        cov = [w for w in ws if w[0] <= s and w[1] >= e]
        data = blk[s - bs:e - bs]
        ack_cov = [w for w in cov if w[6]]
        max_iseq = max((w[4] for w in ack_cov), default=-1)
        last_acked = max(ack_cov, key=lambda w: w[5]) if ack_cov else None
        cands = [w for w in cov if w[5] >= max_iseq]
        initial_ok = not ack_cov
        if len(cands) + (1 if initial_ok else 0) > 1:
            f["ambiguous_segments"] += 1
        matched = None
        for w in sorted(cands, key=lambda w: -w[5]):
            if data == content(w[2], w[3], s, e - s):
                matched = w
                break
        if matched is not None:
            if not matched[6]:
                f["matched_unknown"] += 1
            elif matched is last_acked:
                f["matched_last_acked"] += 1
            else:
                f["matched_concurrent_acked"] += 1
            continue
        if initial_ok and (a.initial == "any" or not any(data)):
            f["matched_initial"] += 1
            continue
        names = ["wid %d (%s)" % (w[2], "acked" if w[6] else "failed:" + w[7])
                 for w in cands]
        if initial_ok:
            names.append("zeros (initial)")
        # Stale (an older write, or the initial zeros) or garbage?
        stale = None
        for w in cov:
            if w not in cands and data == content(w[2], w[3], s, e - s):
                stale = "wid %d (%s, superseded)" % (
                    w[2], "acked" if w[6] else "failed")
                break
        # Where the bytes first differ from the preferred candidate.
        exp = (content(cands[0][2], cands[0][3], s, e - s) if cands
               else bytes(e - s))
        first = next((i for i in range(e - s) if data[i] != exp[i]), 0)
        if stale is None and ack_cov and not any(data):
            stale = "zeros (initial content)"
        if stale is not None:
            f["lost_segments"] += 1
            for w in cands:
                if w[6]:
                    lost_wids.add(w[2])
            bad.append(("LOST", s, e, names, stale, s + first))
        else:
            f["corrupt_segments"] += 1
            bad.append(("CORRUPT", s, e, names, None, s + first))
    if bad:
        kind = "CORRUPT" if any(x[0] == "CORRUPT" for x in bad) else "LOST"
        k, s, e, names, stale, at = next(x for x in bad if x[0] == kind)
        u = (at - bs) // UNIT * UNIT
        report(kind, b, s, e, names, bytes(blk[u:u + UNIT]), bs + u,
               "%s; %d of the block's %d segments are bad" % (
                   "; it is " + stale if stale else "", len(bad),
                   len(cuts) - 1))


# --------------------------------------------------------------------------

def main(argv):
    ap = argparse.ArgumentParser(
        prog="checker.py",
        description="write a logged NBD workload / verify a volume against it")
    sp = ap.add_subparsers(dest="mode", required=True)
    w = sp.add_parser("write", help="run the logged write workload")
    w.add_argument("--uri", required=True)
    w.add_argument("--log", required=True)
    w.add_argument("--duration", type=float, default=30.0,
                   help="seconds to run (default 30)")
    w.add_argument("--max-ops", type=int, default=1000000,
                   help="stop after this many writes issued (0 = no limit)")
    w.add_argument("--inflight", type=int, default=16,
                   help="requests in flight, over all connections")
    w.add_argument("--blocks", type=int, default=0,
                   help="write blocks [0, B) (default: the whole export)")
    w.add_argument("--sub-block-fraction", type=float, default=0.0,
                   help="fraction of writes of 1..4095 bytes at any offset")
    w.add_argument("--connections", type=int, default=1)
    w.add_argument("--flush-every", type=int, default=0,
                   help="FLUSH after every M writes on a connection")
    w.add_argument("--hot-blocks", type=int, default=8,
                   help="size of the hot set that overlapping writes hit")
    w.add_argument("--hot-fraction", type=float, default=0.2,
                   help="fraction of writes aimed at the hot set")
    w.add_argument("--max-blocks-per-write", type=int, default=4)
    w.add_argument("--seed", type=int, default=None)
    w.add_argument("--append", action="store_true",
                   help="continue an existing log (wids and clock go on)")
    w.add_argument("--connect-timeout", type=float, default=5.0)
    w.add_argument("--reconnect-interval", type=float, default=0.2)
    w.add_argument("--op-timeout", type=float, default=30.0,
                   help="drop a connection whose oldest request has had no "
                        "reply for this long (0 = never)")
    w.add_argument("--drain-timeout", type=float, default=10.0,
                   help="at the end, wait this long for in-flight writes")
    w.add_argument("--fsync-batch", type=int, default=256)
    w.add_argument("--progress", action="store_true")
    w.add_argument("--verbose", action="store_true")
    v = sp.add_parser("verify", help="read the volume back and check it")
    v.add_argument("--uri", required=True)
    v.add_argument("--log", required=True)
    v.add_argument("--initial", choices=("zero", "any"), default="zero",
                   help="content of never-acknowledged ranges (default zero)")
    v.add_argument("--unknown-until-end", action="store_true",
                   help="writes that got no reply may land at any later time")
    v.add_argument("--timeout", type=float, default=300.0)
    v.add_argument("--max-report", type=int, default=20)
    a = ap.parse_args(argv)
    if a.mode == "write":
        if a.seed is None:
            a.seed = random.SystemRandom().getrandbits(32)
        if a.inflight < 1 or a.connections < 1 or a.duration <= 0:
            die("--inflight, --connections and --duration must be positive")
        if not 0 <= a.sub_block_fraction <= 1 or not 0 <= a.hot_fraction <= 1:
            die("fractions must be in [0, 1]")
        if a.max_blocks_per_write < 1:
            die("--max-blocks-per-write must be at least 1")
        if a.connections > a.inflight:
            a.connections = a.inflight
        return Writer(a).run()
    return verify(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
