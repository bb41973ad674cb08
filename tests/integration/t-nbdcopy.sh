#!/usr/bin/env bash
# nbdcopy with 4 connections copies 64 MiB in and out byte for byte, and a
# sparse copy leaves the holes reading as zero in base:allocation.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_tool nbdcopy nbdinfo

start_triplexd demo:64M sparse:64M

dd if=/dev/urandom of="$T/in.img" bs=1M count=64 status=none
nbdcopy --connections=4 --flush "$T/in.img" "$(uri demo)" ||
	fail "nbdcopy into the export failed"
truncate -s 0 "$T/out.img"
nbdcopy --connections=4 "$(uri demo)" "$T/out.img" ||
	fail "nbdcopy out of the export failed"
cmp "$T/in.img" "$T/out.img" || fail "data copied out differs from data copied in"

# Sparse: fill the volume with random data first, then copy an image that
# has data only in [0,4M), [24M,28M) and [52M,56M); the rest must become
# zero and be reported as zero by base:allocation.  (Holes are kept under
# the 32 MiB maximum block size: nbdcopy 1.14 sends one WRITE_ZEROES per
# hole, and the spec lets the server refuse longer ones with EINVAL.)
nbdcopy --connections=4 --flush "$T/in.img" "$(uri sparse)" || fail "prefill failed"
truncate -s 64M "$T/sparse.img"
for start in 0 24 52; do
	dd if="$T/in.img" of="$T/sparse.img" bs=1M count=4 skip=$start seek=$start \
		conv=notrunc status=none
done
nbdcopy --connections=4 --flush "$T/sparse.img" "$(uri sparse)" ||
	fail "sparse nbdcopy failed"
truncate -s 0 "$T/sparse.out"
nbdcopy "$(uri sparse)" "$T/sparse.out" || fail "nbdcopy out of sparse failed"
cmp "$T/sparse.img" "$T/sparse.out" || fail "sparse copy reads back different data"

nbdinfo --map --json "$(uri sparse)" >"$T/map.json" || fail "nbdinfo --map failed"
/usr/bin/python3 - "$T/map.json" <<'PY' || fail "holes not preserved: $(tr -d '\n\t' <"$T/map.json" | head -c 600)"
import json, sys
M = 1 << 20
data = [(0, 4 * M), (24 * M, 28 * M), (52 * M, 56 * M)]
holes = [(4 * M, 24 * M), (28 * M, 52 * M), (56 * M, 64 * M)]
ext = json.load(open(sys.argv[1]))
bad = []
pos = 0
for e in ext:
    off, n, t = e["offset"], e["length"], e["type"]
    if off != pos:
        bad.append("extents not contiguous at %d" % off)
    pos = off + n
    for a, b in data:
        if off < b and off + n > a and t & 2:
            bad.append("data range [%d,+%d) reported zero" % (off, n))
    for a, b in holes:
        if off < b and off + n > a and not t & 2:
            bad.append("hole range [%d,+%d) not reported zero (type %d)" % (off, n, t))
if pos != 64 * M:
    bad.append("map covers %d bytes" % pos)
for b in bad:
    print("  -", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
stop_server
log PASS
