#!/usr/bin/env bash
# qemu's NBD client: convert a raw image in, compare, map shows data and
# zero extents; qemu-io with concurrent out-of-order, same-block and
# overlapping aio writes, then flush and read back with patterns.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_tool qemu-img qemu-io
require_python_nbd

start_triplexd demo:64M aio:16M
U=$(uri demo)

# Image: 16 MiB random data, then 48 MiB hole.
dd if=/dev/urandom of="$T/in.img" bs=1M count=16 status=none
truncate -s 64M "$T/in.img"
qemu-img convert -n -f raw -O raw "$T/in.img" "$U" || fail "qemu-img convert -n failed"
qemu-img compare -f raw -F raw "$T/in.img" "$U" >"$T/compare.out" 2>&1 ||
	fail "qemu-img compare: $(cat "$T/compare.out")"

qemu-img map --output=json -f raw "$U" >"$T/map.json" || fail "qemu-img map failed"
/usr/bin/python3 - "$T/map.json" <<'PY' || fail "qemu-img map is wrong: $(tr -d '\n ' <"$T/map.json" | head -c 600)"
import json, sys
M = 1 << 20
bad, pos, seen_zero = [], 0, False
for e in json.load(open(sys.argv[1])):
    s, n = e["start"], e["length"]
    if s != pos:
        bad.append("not contiguous at %d" % s)
    pos = s + n
    if s < 16 * M and (e["zero"] or not e["data"]):
        bad.append("[%d,+%d) holds data but map says data=%s zero=%s" % (s, n, e["data"], e["zero"]))
    if s + n > 16 * M and s >= 16 * M:
        if not e["zero"]:
            bad.append("[%d,+%d) is a hole but map says zero=false" % (s, n))
        seen_zero = True
if pos != 64 * M: bad.append("map covers %d bytes" % pos)
if not seen_zero: bad.append("no zero extent at all")
for b in bad: print("  -", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY

# qemu-io: several writes in flight at once, issued in descending offset
# order; sub-4K writes that share 4 KiB blocks (read-modify-write inside
# the server) must all land.  One pair overlaps (checked below).
U=$(uri aio)
cmds=(
	-c "aio_write -P 0x11 1M 64k"
	-c "aio_write -P 0x22 512k 4k"
	-c "aio_write -P 0x31 256k 512"
	-c "aio_write -P 0x32 257k 512"
	-c "aio_write -P 0x33 258k 1k"
	-c "aio_write -P 0x34 259k 1k"
	-c "aio_write -P 0x35 255k 1k"
	-c "aio_write -P 0x41 12289 100"
	-c "aio_write -P 0x42 12389 4000"
	-c "aio_write -P 0x51 2M 64k"
	-c "aio_write -P 0x52 2080k 64k"
	-c "aio_flush"
	-c "read -P 0x11 1M 64k"
	-c "read -P 0x22 512k 4k"
	-c "read -P 0x35 255k 1k"
	-c "read -P 0x31 256k 512"
	-c "read -P 0x00 256.5k 512"
	-c "read -P 0x32 257k 512"
	-c "read -P 0x00 257.5k 512"
	-c "read -P 0x33 258k 1k"
	-c "read -P 0x34 259k 1k"
	-c "read -P 0x00 260k 4k"
	-c "read -P 0x00 12288 1"
	-c "read -P 0x41 12289 100"
	-c "read -P 0x42 12389 4000"
	-c "read -P 0x00 16389 1"
	-c "read -P 0x51 2M 32k"
	-c "read -P 0x52 2112k 32k"
)
qemu-io -f raw "${cmds[@]}" "$U" >"$T/qemu-io.out" 2>&1 ||
	fail "qemu-io exited non-zero: $(grep -iE 'fail|error' "$T/qemu-io.out" | head -5)"
if grep -qiE 'fail|error|mismatch' "$T/qemu-io.out"; then
	fail "qemu-io reported: $(grep -iE 'fail|error|mismatch' "$T/qemu-io.out" | head -5)"
fi
n=$(grep -c '^read ' "$T/qemu-io.out" || true)
[[ $n -eq 16 ]] || fail "expected 16 successful reads from qemu-io, saw $n"

# The overlap [2080k,2112k) was written by two requests in flight at once:
# either may win, but every 512-byte sector must be wholly one of them.
TPX_U=$U /usr/bin/python3 - <<'PY' || fail "overlapping writes left mixed sectors"
import nbd, os, sys
h = nbd.NBD()
h.connect_uri(os.environ["TPX_U"])
buf = h.pread(32 << 10, 2080 << 10)
bad = [i for i in range(0, len(buf), 512)
       if buf[i:i + 512] not in (b"\x51" * 512, b"\x52" * 512)]
if bad:
    print("mixed sectors at offsets", bad[:8], file=sys.stderr)
h.shutdown()
sys.exit(1 if bad else 0)
PY
stop_server
log PASS
