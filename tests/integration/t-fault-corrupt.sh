#!/usr/bin/env bash
# Fault: corrupt bytes of one replica's data on disk (invariant 6).
# Volume vol (3 replicas) attached to n1; 8 MiB of known data is written
# and flushed through n1.  Then 16 bytes of one block of n1's replica data
# file are overwritten on disk (n1's engine reads its own replica first).
# A read of that block through NBD returns the good data (the engine finds
# the checksum mismatch and reads another in-sync replica), n1's replica
# file holds the good bytes again afterwards (the bad copy was rewritten),
# a second read is clean, and the whole volume reads back as written.
# The counters on n1's /metrics (checksum errors and repairs of vol) must
# move; the test fails if they cannot be read.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"
require_tool nbdsh nbdcopy dd

cluster_setup --io-timeout-ms 2000 --write-timeout-ms 10000
cluster_volume_create vol 16M
cluster_attach vol n1
cluster_wait_export vol 1
URI=$(cluster_uri vol 1)

head -c 8M /dev/urandom >"$T/known"
nbdcopy --flush "$T/known" "$URI" || fail "nbdcopy into vol through n1 failed"
cmp_replicas vol 1 2 3

BLK=777 # a block inside the known data
F1=$(cluster_replica_file vol 1)
# metric NAME: its value for volume vol on n1, or "absent".
vol_metric() {
	local v
	v=$(cluster_metrics 1 | awk -v m="$1" 'index($1, m "{volume=\"vol\"") == 1 { print $2 }')
	echo "${v:-absent}"
}
csum_before=$(vol_metric triplex_volume_checksum_errors_total)
rep_before=$(vol_metric triplex_volume_repairs_total)

# Corrupt 16 bytes at offset 1000 of block BLK on n1's disk.  The store
# uses O_DIRECT: write the whole block with O_DIRECT too.
dd if="$F1" of="$T/blk" bs=4096 skip="$BLK" count=1 status=none
/usr/bin/python3 - "$T/blk" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
for i in range(1000, 1016):
    b[i] ^= 0xFF
open(p, "wb").write(b)
PY
dd if="$T/blk" of="$F1" bs=4096 seek="$BLK" count=1 conv=notrunc oflag=direct status=none ||
	fail "cannot write the corrupt block into $F1"
bad=$(cmp -l "$F1" "$(cluster_replica_file vol 2)" | wc -l) || true
((bad == 16)) || fail "after corrupting, n1's replica differs from n2's in $bad bytes, want 16"
log "fault: 16 bytes of block $BLK of n1's replica corrupted on disk"
warn_before=$(grep -c "from n1 failed" "$(cluster_log 1)") || true

# Read the block (and its neighbours) through n1: the good bytes.
export BLK T
nbdsh -u "$URI" -c - >"$T/read.out" 2>&1 <<'PY' || fail "reading the corrupted block through n1 failed: $(tail -n 3 "$T/read.out")"
import os
blk = int(os.environ["BLK"])
known = open(os.environ["T"] + "/known", "rb").read()
got = h.pread(3 * 4096, (blk - 1) * 4096)
if got != known[(blk - 1) * 4096:(blk + 2) * 4096]:
    raise SystemExit("read returned bad data")
print("read ok")
PY
grep -q "read ok" "$T/read.out" || fail "read check did not run: $(cat "$T/read.out")"
warn_after=$(grep -c "from n1 failed" "$(cluster_log 1)") || true
((warn_after > warn_before)) || fail "n1's log does not show the failed read of its own replica: was the corrupt copy read at all?"
grep "from n1 failed" "$(cluster_log 1)" | tail -n 1 >&2

# The bad copy was rewritten with the good bytes.
cmp "$F1" "$(cluster_replica_file vol 2)" || fail "n1's replica was not repaired (differs from n2's)"
cmp -n $((8 << 20)) "$T/known" "$F1" || fail "n1's replica does not hold the written data"

# A second read is clean, and the whole volume reads back as written.
truncate -s 0 "$T/readback"
nbdcopy "$URI" "$T/readback" || fail "reading vol through n1 failed"
cmp -n $((8 << 20)) "$T/known" "$T/readback" || fail "data read back differs from what was written"
warn_end=$(grep -c "from n1 failed" "$(cluster_log 1)") || true
((warn_end == warn_after)) || fail "the repaired block failed again on a later read"

csum_after=$(vol_metric triplex_volume_checksum_errors_total)
rep_after=$(vol_metric triplex_volume_repairs_total)
[[ $(vol_metric triplex_volume_size_bytes) != absent ]] ||
	fail "n1's /metrics has no series for volume vol: the repair counters cannot be read"
if [[ $csum_after == absent ]] || ((csum_after <= csum_before)); then
	fail "triplex_volume_checksum_errors_total{volume=vol} did not move: $csum_before -> $csum_after"
fi
[[ $rep_after != absent ]] ||
	fail "no triplex_volume_repairs_total{volume=vol} metric on n1"
((rep_after > rep_before)) ||
	fail "triplex_volume_repairs_total{volume=vol} did not move: $rep_before -> $rep_after"
counters="checksum errors $csum_before -> $csum_after, repairs $rep_before -> $rep_after"

cmp_replicas vol 1 2 3
cluster_stop_all
log "figures: 8 MiB written; faults: 1 (16 bytes of block $BLK on n1's disk); read returned good data; n1's replica repaired (n1 = n2 = n3); failed reads of n1's copy logged: $((warn_after - warn_before)); counters: $counters"
log PASS
