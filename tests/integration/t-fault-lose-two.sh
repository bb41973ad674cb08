#!/usr/bin/env bash
# Fault: lose two of three replicas (invariant 1).  Volume vol (3 replicas,
# min_replicas 2) attached to n1; known data is written and flushed; then
# n2 and n3 are killed with SIGKILL.  The next write through n1 must not be
# acknowledged with one copy: it waits, then fails with EIO after
# --write-timeout-ms (3 s here), and so does the one after it.  Reads fail
# too (no read lease from a majority of the replicas), and return the data
# written before once n2 and n3 are back.  Exactly one of n2/n3
# left the in-sync set (the set never shrinks below min_replicas = 2).
# Then both come back and all three replicas must hold the same bytes.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"
require_tool nbdsh nbdcopy

WT_MS=3000
cluster_setup --io-timeout-ms 2000 --write-timeout-ms "$WT_MS"
cluster_volume_create vol 16M
cluster_attach vol n1
cluster_wait_export vol 1
[[ $(cluster_field vol min_replicas) -eq 2 ]] || fail "min_replicas is not 2"
URI=$(cluster_uri vol 1)

# Known data over the first 8 MiB, acknowledged by all three replicas.
head -c 8M /dev/urandom >"$T/known"
nbdcopy --flush "$T/known" "$URI" || fail "nbdcopy into vol through n1 failed"
cmp_replicas vol 1 2 3 # (the first 8 MiB only differ from zeros; all equal)

cluster_kill 2
cluster_kill 3

# One write after the other, each must fail with EIO after about WT_MS.
# Prints "ms errno" per write, or "ACKED ms" if one was acknowledged.
export WT_MS
nbdsh -u "$URI" -c - >"$T/writes.out" 2>"$T/writes.err" <<'PY' || fail "nbdsh failed: $(tail -n 5 "$T/writes.err")"
import os, time
for i in range(2):
    buf = bytes([0xA5 + i]) * 4096
    t0 = time.monotonic()
    try:
        h.pwrite(buf, (10 << 20) + i * 4096)
        print("ACKED %d" % ((time.monotonic() - t0) * 1000))
    except nbd.Error as e:
        print("%d %s" % ((time.monotonic() - t0) * 1000, e.errno))
PY
cat "$T/writes.out" >&2
n=0
while read -r ms err; do
	n=$((n + 1))
	[[ $ms != ACKED ]] || fail "write $n was acknowledged (after $err ms) with only n1 left: fewer than min_replicas copies"
	[[ $err == EIO ]] || fail "write $n failed with $err, want EIO"
	((ms >= WT_MS - 200)) || fail "write $n failed after $ms ms, before the write timeout ($WT_MS ms)"
	((ms <= WT_MS + 5000)) || fail "write $n took $ms ms to fail (write timeout $WT_MS ms)"
	fail_ms+=("$ms")
done <"$T/writes.out"
((n == 2)) || fail "expected 2 results from nbdsh, got $n"

# Reads still work from n1 and return what was acknowledged.
truncate -s 0 "$T/readback"
# Reads: n1 holds a read lease from one replica of three, so it cannot
# know that no other engine serves vol: it answers nothing (EIO after the
# write timeout) rather than possibly stale data.
if nbdcopy "$URI" "$T/readback" 2>"$T/readback.err"; then
	fail "a read through n1 was answered with one replica of three reachable"
fi
grep -q "no read lease from a majority" "$(cluster_log 1)" ||
	fail "n1's log does not say that requests wait for a read lease"

# The in-sync set shrank by exactly one: n1 and one of n2/n3 remain.
states=$(cluster_states vol)
[[ $(cluster_state vol n1) == in_sync ]] || fail "n1 left the in-sync set: $states"
s2=$(cluster_state vol n2) s3=$(cluster_state vol n3)
if [[ $s2 == out_of_sync && $s3 == in_sync ]] || [[ $s2 == in_sync && $s3 == out_of_sync ]]; then
	:
else
	fail "want exactly one of n2/n3 out_of_sync (never below min_replicas 2): $states"
fi
grep -q 'fewer than 2 replicas' "$(cluster_log 1)" ||
	fail "n1's log does not say why the write failed"
# n1 applied the failed writes, the one of n2/n3 still in the set did not:
# it is recorded in doubt, so that it is compared before it is read.
[[ $s2 == in_sync ]] && kept=n2 || kept=n3
doubt=$(cluster_show vol | /usr/bin/python3 -c 'import json, sys
v = json.load(sys.stdin)
print(" ".join(p["node"] for p in v["placement"] if p.get("doubt")))')
[[ $doubt == "$kept" ]] || fail "want $kept (in sync, missed the failed writes) in doubt, got '$doubt'"
# What TriplexVolumeWritesBlocked watches: one replica in sync and
# reachable, below min_replicas, though two are still in the set.
avail=$(cluster_metric 1 triplex_volume_available_replicas 'volume="vol"')
insync=$(cluster_metric 1 triplex_volume_in_sync_replicas 'volume="vol"')
((avail == 1 && insync == 2)) ||
	fail "n1's metrics: $avail replicas available, $insync in sync; want 1 and 2"

# n2 and n3 come back: the one that stayed in the in-sync set missed the
# two failed writes that n1 applied, so it must be brought level before it
# is trusted again; in the end all three hold the same bytes.
cluster_start_node 2
cluster_start_node 3
cluster_wait_state vol n2 in_sync 30
cluster_wait_state vol n3 in_sync 30
_no_doubt() { ! cluster_show vol | grep -q '"doubt"'; }
netns_wait_for "$kept to be compared and no longer in doubt" 30 _no_doubt
grep -q "replica $kept compared and brought level" "$(cluster_log 1)" ||
	fail "n1's log does not say $kept was compared"
nbdcopy "$URI" "$T/readback2" || fail "reading vol through n1 failed after n2 and n3 came back"
cmp -n $((8 << 20)) "$T/known" "$T/readback2" || fail "data read through n1 differs after n2 and n3 came back"
cluster_flush vol 1
cmp_replicas vol 1 2 3
cluster_stop_all
log "figures: writes acked after the faults=0, failed=2 (EIO after ${fail_ms[*]} ms, write timeout $WT_MS ms); faults: 2 (kill -9 n2, n3, both restarted); reads refused meanwhile, 8 MiB read back intact from n1 once n2 and n3 were back; states: $states; $kept in doubt until compared after its restart; n1's triplex_volume_available_replicas 1 (in sync 2) meanwhile; then n1 = n2 = n3"
log PASS
