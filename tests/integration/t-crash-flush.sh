#!/usr/bin/env bash
# Flushed and FUA writes survive a crash (SIGKILL) of the daemon.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_python_nbd

start_triplexd demo:16M
dd if=/dev/urandom of="$T/model.img" bs=1M count=16 status=none

TPX_U=$(uri demo) TPX_IMG=$T/model.img /usr/bin/python3 - <<'PY' || fail "writes failed"
import nbd, os, random
rng = random.Random(11)
h = nbd.NBD(); h.connect_uri(os.environ["TPX_U"])
img = bytearray(open(os.environ["TPX_IMG"], "rb").read())
# Bulk data, then FLUSH.
for off in range(0, len(img), 1 << 20):
    h.pwrite(bytes(img[off:off + (1 << 20)]), off)
h.flush()
# Then FUA writes, each durable on its own (no FLUSH after them).
for _ in range(100):
    n = rng.choice((1, 700, 4096, 12288))
    off = rng.randrange(0, len(img) - n)
    data = rng.randbytes(n)
    h.pwrite(data, off, nbd.CMD_FLAG_FUA)
    img[off:off + n] = data
open(os.environ["TPX_IMG"], "wb").write(img)
PY
kill_server
start_server
truncate -s 0 "$T/out.img"
nbdcopy "$(uri demo)" "$T/out.img" || fail "nbdcopy out after crash failed"
cmp "$T/model.img" "$T/out.img" || fail "flushed/FUA data lost or changed by a crash"
stop_server
log PASS
