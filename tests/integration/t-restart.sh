#!/usr/bin/env bash
# Data survives a clean restart: write (flushed, and also unflushed writes
# just before SIGTERM), stop the daemon with SIGTERM, start it again on the
# same data dir, read everything back byte for byte.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_tool nbdcopy
require_python_nbd

start_triplexd demo:32M
dd if=/dev/urandom of="$T/in.img" bs=1M count=32 status=none
nbdcopy --connections=4 --flush "$T/in.img" "$(uri demo)" || fail "nbdcopy in failed"

# Unflushed, unaligned writes right before SIGTERM: a clean shutdown must
# not drop acknowledged writes.
TPX_U=$(uri demo) TPX_IMG=$T/in.img /usr/bin/python3 - <<'PY' || fail "unflushed writes failed"
import nbd, os, random
rng = random.Random(7)
h = nbd.NBD(); h.connect_uri(os.environ["TPX_U"])
with open(os.environ["TPX_IMG"], "r+b") as f:
    for _ in range(200):
        n = rng.choice((1, 512, 4096, 5000, 65536))
        off = rng.randrange(0, h.get_size() - n)
        data = rng.randbytes(n)
        h.pwrite(data, off)
        f.seek(off); f.write(data)
h.shutdown()
PY

stop_server
start_server
truncate -s 0 "$T/out.img"
nbdcopy --connections=4 "$(uri demo)" "$T/out.img" || fail "nbdcopy out after restart failed"
cmp "$T/in.img" "$T/out.img" || fail "data differs after a clean restart"

# And a second restart with no I/O in between changes nothing.
stop_server
start_server
truncate -s 0 "$T/out2.img"
nbdcopy "$(uri demo)" "$T/out2.img" || fail "nbdcopy out after 2nd restart failed"
cmp "$T/in.img" "$T/out2.img" || fail "data differs after a second restart"
stop_server
log PASS
