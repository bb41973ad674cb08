#!/usr/bin/env bash
# A flipped byte in a stored block is caught by its crc32c: reading that
# block fails with EIO (a single-replica volume has no good copy to repair
# from), the blocks around it read fine, and the connection keeps working.
# Assumes block N of a volume is at byte N*4096 of DIR/volumes/NAME/data
# (docs/on-disk-format.md).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_triplexd "checksum verification"
require_tool nbdcopy
require_python_nbd

start_triplexd demo:16M
dd if=/dev/urandom of="$T/in.img" bs=1M count=16 status=none
nbdcopy --flush "$T/in.img" "$(uri demo)" || fail "nbdcopy in failed"
stop_server

DATA=$DATA_DIR/volumes/demo/data
[[ -f $DATA ]] || fail "$DATA does not exist: on-disk layout changed?"
BAD=1000 # block number to corrupt (~3.9 MiB in)
cmp -n $((16 << 20)) "$T/in.img" "$DATA" ||
	fail "$DATA does not hold the volume's bytes at offset 0: layout changed?"
/usr/bin/python3 - "$DATA" $((BAD * 4096 + 123)) <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1)
    f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x5a]))
PY
start_server

TPX_U=$(uri demo) TPX_IMG=$T/in.img TPX_BAD=$BAD /usr/bin/python3 - <<'PY' || fail "corruption not handled as expected"
import nbd, os, sys
bad = int(os.environ["TPX_BAD"]) * 4096
img = open(os.environ["TPX_IMG"], "rb").read()
h = nbd.NBD(); h.connect_uri(os.environ["TPX_U"])
problems = []
def expect_eio(what, n, off):
    try:
        data = h.pread(n, off)
    except nbd.Error as e:
        if e.errno != "EIO":
            problems.append("%s: errno %s, expected EIO" % (what, e.errno))
        return
    problems.append("%s: read succeeded%s" % (what,
        " with the CORRUPT byte" if data != img[off:off + n] else ""))
expect_eio("whole bad block", 4096, bad)
expect_eio("1 byte of the bad block (not the flipped one)", 1, bad + 4000)
expect_eio("range spanning the bad block", 3 * 4096, bad - 4096)
for what, n, off in (("block before", 4096, bad - 4096),
                     ("block after", 4096, bad + 4096),
                     ("first 1 MiB", 1 << 20, 0),
                     ("last 1 MiB", 1 << 20, len(img) - (1 << 20))):
    try:
        if h.pread(n, off) != img[off:off + n]:
            problems.append("%s: wrong data" % what)
    except nbd.Error as e:
        problems.append("%s: %s" % (what, e))
# Overwriting the whole bad block makes it good again.
new = os.urandom(4096)
try:
    h.pwrite(new, bad)
    if h.pread(4096, bad) != new:
        problems.append("rewritten block reads back wrong")
except nbd.Error as e:
    problems.append("rewriting the bad block: %s" % e)
h.shutdown()
for p in problems: print("  -", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
stop_server
log PASS
