#!/usr/bin/env bash
# Every request the NBD protocol says is an error gets the error code
# doc/proto.md names, requests of any alignment are served, block status
# follows the REQ_ONE rules, and the connection keeps working after each.
#
# Expected codes (doc/proto.md, "Error values" and "Request types"):
#   READ / TRIM / CACHE / BLOCK_STATUS past the end   EINVAL
#   WRITE / WRITE_ZEROES past the end                  ENOSPC
#   a flag not documented for the command              EINVAL
#   FUA on any command (SEND_FUA advertised)           accepted
#   zero-length requests: unspecified, but no disconnect and no data change
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_tool nbdsh
require_python_nbd

start_triplexd demo:64M

export TPX_NOSUCH_URI TPX_URI TPX_SERVER
TPX_NOSUCH_URI=$(uri nosuch)
TPX_URI=$(uri demo)

nbdsh_run "$(uri demo)" <<'PY' || fail "nbdsh checks failed (see above)"
import os, sys, random

problems = []
size = h.get_size()
assert size == 64 << 20, size
h.set_strict_mode(0)  # let libnbd send what the server must reject
rng = random.Random(1234)

def alive(after):
    try:
        h.pread(1, 0)
    except nbd.Error as e:
        problems.append("connection unusable after %s: %s" % (after, e))
        raise SystemExit(report())

def expect(name, want, fn):
    """want: an errno name, None for success, or a set of allowed outcomes."""
    got = None
    try:
        fn()
    except nbd.Error as e:
        got = e.errno or "no-errno(%s)" % e.string
    allowed = want if isinstance(want, set) else {want}
    if got not in allowed:
        problems.append("%s: got %s, expected %s" % (name, got or "success",
                        " or ".join(sorted(a or "success" for a in allowed))))
    alive(name)

def report():
    for p in problems:
        print("  -", p, file=sys.stderr)
    return 1 if problems else 0

# Background data so we can tell whether a bad request changed anything.
model = bytearray(rng.randbytes(256 << 10))
h.pwrite(bytes(model), 0)

# --- past the end (straddling the end, wholly beyond, offset overflow) ---
for label, off, n in (("straddling", size - 256, 512),
                      ("beyond", size + 4096, 512),
                      ("at end", size, 1),
                      ("overflow", (1 << 64) - 256, 512)):
    expect("READ %s end" % label, "EINVAL", lambda: h.pread(n, off))
    expect("WRITE %s end" % label, "ENOSPC", lambda: h.pwrite(b"x" * n, off))
    expect("WRITE_ZEROES %s end" % label, "ENOSPC", lambda: h.zero(n, off))
    expect("TRIM %s end" % label, "EINVAL", lambda: h.trim(n, off))
    expect("CACHE %s end" % label, "EINVAL", lambda: h.cache(n, off))
    expect("BLOCK_STATUS %s end" % label, "EINVAL",
           lambda: h.block_status(n, off, lambda *a: 0))
# The straddling write must not have written its in-range half.
if h.pread(256, size - 256) != bytes(256):
    problems.append("a WRITE past the end changed the last 256 bytes")

# --- longer than the 32 MiB maximum block size (doc/proto.md, "Block
# size constraints"): the client MUST NOT send READ, CACHE or WRITE_ZEROES
# (without FAST_ZERO) longer than it, and the server SHOULD answer EINVAL.
# A READ must be refused (its reply would exceed the limit).  CACHE and
# WRITE_ZEROES may be refused with EINVAL or served (nbdcopy 1.14 sends
# long WRITE_ZEROES), but if served, the zeroes must really be there.
# TRIM is not limited.  (A too-long WRITE may be answered by a disconnect,
# so it is not sent.)
big = (32 << 20) + 4096
expect("READ longer than max block size", "EINVAL", lambda: h.pread(big, 0))
if os.environ["TPX_SERVER"] == "triplexd":
    expect("CACHE longer than max block size", {"EINVAL", None}, lambda: h.cache(big, 0))
    zbase = 16 << 20
    h.pwrite(b"\xaa" * 4096, zbase)
    h.pwrite(b"\xbb" * 4096, zbase + big - 4096)
    h.pwrite(b"\xcc" * 4096, zbase + big)
    try:
        h.zero(big, zbase)
        if h.pread(4096, zbase) != bytes(4096) or \
           h.pread(4096, zbase + big - 4096) != bytes(4096):
            problems.append("long WRITE_ZEROES succeeded but did not zero")
    except nbd.Error as e:
        if e.errno != "EINVAL":
            problems.append("long WRITE_ZEROES: %s, expected success or EINVAL" % e.errno)
        elif h.pread(4096, zbase) != b"\xaa" * 4096:
            problems.append("a refused long WRITE_ZEROES changed data")
    alive("long WRITE_ZEROES")
    if h.pread(4096, zbase + big) != b"\xcc" * 4096:
        problems.append("long WRITE_ZEROES zeroed past its end")
else:
    print("stand-in: nbdkit 1.32 enforces the maximum only on READ/WRITE", file=sys.stderr)
expect("TRIM longer than max block size", None, lambda: h.trim(big, 16 << 20))

# --- zero-length requests: unspecified result, no disconnect, no change ---
for name, fn in (("READ", lambda: h.pread(0, 4096)),
                 ("WRITE", lambda: h.pwrite(b"", 4096)),
                 ("WRITE_ZEROES", lambda: h.zero(0, 4096)),
                 ("TRIM", lambda: h.trim(0, 4096)),
                 ("CACHE", lambda: h.cache(0, 4096)),
                 ("BLOCK_STATUS", lambda: h.block_status(0, 4096, lambda *a: 0))):
    try:
        fn()
    except nbd.Error as e:
        print("zero-length %s -> %s (allowed)" % (name, e.errno), file=sys.stderr)
    alive("zero-length " + name)

# --- command flags ---
F = nbd
expect("READ with FUA (MUST be accepted)", None, lambda: h.pread(512, 0, F.CMD_FLAG_FUA))
expect("WRITE with FUA", None, lambda: h.pwrite(bytes(model[:4096]), 0, F.CMD_FLAG_FUA))
expect("CACHE with FUA", None, lambda: h.cache(4096, 0, F.CMD_FLAG_FUA))
expect("WRITE with NO_HOLE", "EINVAL", lambda: h.pwrite(b"y" * 512, 0, F.CMD_FLAG_NO_HOLE))
expect("WRITE with DF", "EINVAL", lambda: h.pwrite(b"y" * 512, 0, F.CMD_FLAG_DF))
expect("WRITE with REQ_ONE", "EINVAL", lambda: h.pwrite(b"y" * 512, 0, F.CMD_FLAG_REQ_ONE))
expect("READ with NO_HOLE", "EINVAL", lambda: h.pread(512, 0, F.CMD_FLAG_NO_HOLE))
expect("READ with REQ_ONE", "EINVAL", lambda: h.pread(512, 0, F.CMD_FLAG_REQ_ONE))
expect("READ with FAST_ZERO", "EINVAL", lambda: h.pread(512, 0, F.CMD_FLAG_FAST_ZERO))
expect("TRIM with FAST_ZERO", "EINVAL", lambda: h.trim(512, 0, F.CMD_FLAG_FAST_ZERO))
expect("TRIM with NO_HOLE", "EINVAL", lambda: h.trim(512, 0, F.CMD_FLAG_NO_HOLE))
expect("CACHE with NO_HOLE", "EINVAL", lambda: h.cache(512, 0, F.CMD_FLAG_NO_HOLE))
expect("BLOCK_STATUS with DF", "EINVAL",
       lambda: h.block_status(512, 0, lambda *a: 0, F.CMD_FLAG_DF))
expect("READ with unknown flag 0x80", "EINVAL", lambda: h.pread(512, 0, 0x80))
expect("WRITE with unknown flag 0x8000", "EINVAL", lambda: h.pwrite(b"y" * 512, 0, 0x8000))
expect("READ with DF", None, lambda: h.pread(65536, 0, F.CMD_FLAG_DF))
if h.pread(256 << 10, 0) != bytes(model):
    problems.append("a rejected request changed data")
    model[:] = h.pread(256 << 10, 0)

# WRITE_ZEROES with its own flags.
expect("WRITE_ZEROES with NO_HOLE", None, lambda: h.zero(8192, 8192, F.CMD_FLAG_NO_HOLE))
model[8192:16384] = bytes(8192)
if h.can_fast_zero():
    # MUST either succeed quickly or fail with ENOTSUP and leave data alone.
    try:
        h.zero(4096, 65536, F.CMD_FLAG_FAST_ZERO)
        model[65536:69632] = bytes(4096)
    except nbd.Error as e:
        if e.errno != "ENOTSUP":
            problems.append("WRITE_ZEROES FAST_ZERO: got %s, expected success or ENOTSUP" % e.errno)
    alive("WRITE_ZEROES FAST_ZERO")
    # A partial block is a read-modify-write: no faster than writing
    # zeroes, so FAST_ZERO must fail at once and change nothing.
    if os.environ["TPX_SERVER"] == "triplexd":
        expect("WRITE_ZEROES FAST_ZERO over a partial block", "ENOTSUP",
               lambda: h.zero(100, 65536 + 10, F.CMD_FLAG_FAST_ZERO))

# --- unaligned I/O (minimum block size is 1) ---
for off, n in ((1, 1), (4095, 1), (4096 * 3 + 7, 1), (4096 * 5 - 100, 512),
               (12345, 512), (4096 * 9 + 511, 3), (4096 * 11 - 1, 4098),
               (100003, 70001)):
    data = rng.randbytes(n)
    expect("WRITE %d bytes at %d" % (n, off), None, lambda: h.pwrite(data, off))
    model[off:off + n] = data
for off, n in ((4096 * 20 + 3, 100), (4096 * 21 - 50, 100), (4096 * 22 + 1, 4096 * 2)):
    expect("WRITE_ZEROES %d at %d" % (n, off), None, lambda: h.zero(n, off))
    model[off:off + n] = bytes(n)
got = h.pread(256 << 10, 0)
if got != bytes(model):
    bad = next(i for i in range(len(model)) if got[i] != model[i])
    problems.append("unaligned writes read back wrong, first bad byte at %d" % bad)
for off, n in ((1, 1), (4095, 2), (5000, 513), (4096 * 7 + 9, 9000)):
    if h.pread(n, off) != bytes(model[off:off + n]):
        problems.append("unaligned READ %d at %d is wrong" % (n, off))
# A trim may discard or not, but must not touch bytes outside its range.
h.trim(1000, 4096 * 30 + 17)
if h.pread(17, 4096 * 30) != bytes(model[4096 * 30:4096 * 30 + 17]) or \
   h.pread(100, 4096 * 30 + 1017) != bytes(model[4096 * 30 + 1017:4096 * 30 + 1117]):
    problems.append("an unaligned TRIM changed bytes outside its range")
h.flush()

# --- block status, with and without REQ_ONE ---
data_off, data_len = 2 << 20, 256 << 10
h.pwrite(rng.randbytes(data_len) + b"", data_off)
def collect(length, offset, flags=0):
    out = []
    def cb(meta, off, entries, err):
        if meta == "base:allocation":
            out.append((off, list(entries)))
        return 0
    h.block_status(length, offset, cb, flags)
    return out

req = 8 << 20
chunks = collect(req, data_off - (1 << 20))
if len(chunks) != 1:
    problems.append("BLOCK_STATUS: %d base:allocation chunks, expected 1" % len(chunks))
else:
    off, e = chunks[0]
    lens, flags = e[0::2], e[1::2]
    if off != data_off - (1 << 20):
        problems.append("BLOCK_STATUS: chunk offset %d" % off)
    if not lens or any(l == 0 for l in lens):
        problems.append("BLOCK_STATUS: empty or zero-length extent %r" % e)
    elif sum(lens[:-1]) >= req:
        problems.append("BLOCK_STATUS: first N-1 extents cover >= request")
    pos = off
    for l, f in zip(lens, flags):
        if f & ~3:
            problems.append("BLOCK_STATUS: reserved flag bits 0x%x" % f)
        if pos < data_off + data_len and pos + l > data_off and f & 2:
            problems.append("BLOCK_STATUS: written data [%d,+%d) reported as ZERO" % (pos, l))
        pos += l

chunks = collect(req, data_off, nbd.CMD_FLAG_REQ_ONE)
if len(chunks) != 1 or len(chunks[0][1]) != 2:
    problems.append("BLOCK_STATUS REQ_ONE: expected exactly one extent, got %r" % chunks)
else:
    l, f = chunks[0][1]
    if l == 0 or l > req:
        problems.append("BLOCK_STATUS REQ_ONE: extent length %d not in (0, %d]" % (l, req))
    if f & 2:
        problems.append("BLOCK_STATUS REQ_ONE: written data reported as ZERO")
# An unaligned status query also works.
chunks = collect(1000, data_off + 3, nbd.CMD_FLAG_REQ_ONE)
if len(chunks) != 1 or not (0 < chunks[0][1][0] <= 1000):
    problems.append("BLOCK_STATUS REQ_ONE unaligned: %r" % chunks)

# --- unknown export: the connection attempt fails, others unaffected ---
h2 = nbd.NBD()
try:
    h2.connect_uri(os.environ["TPX_NOSUCH_URI"])
    problems.append("connecting to an unknown export succeeded")
except nbd.Error:
    pass
del h2
alive("unknown export on another connection")

# A second client sees the first one's writes (multi-conn + flush).
h3 = nbd.NBD()
h3.connect_uri(os.environ["TPX_URI"])
if h3.pread(256 << 10, 0) != h.pread(256 << 10, 0):
    problems.append("a second connection reads different data")
h3.shutdown()
sys.exit(report())
PY
stop_server
log PASS
