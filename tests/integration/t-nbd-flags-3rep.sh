#!/usr/bin/env bash
# Every NBD command flag on every alignment the protocol allows, under
# overlapping load, against a three-replica volume.  Volume vol (3
# replicas) attached to n1.
#
# First the issue's case: a 10-byte WRITE_ZEROES with NO_HOLE at offset 0
# (its edge block is a read-modify-write; the engine once sent that WRITE
# with NO_HOLE, every replica refused it, one left the in-sync set and the
# zero waited for the write timeout, then failed with EIO).  It must
# succeed, zero exactly those bytes, and no write may wait (the engine's
# triplex_volume_write_waits_total) nor any replica leave the set.
#
# Then flags_load.py: rounds of 32 requests in flight at once on two
# connections inside two 128 KiB windows (the start and the end of the
# volume): WRITE +-FUA, WRITE_ZEROES with each subset of {FUA, NO_HOLE,
# FAST_ZERO}, TRIM +-FUA, FLUSH/CACHE/READ/BLOCK_STATUS +-FUA, READ with
# and without DF, BLOCK_STATUS with and without REQ_ONE; 1 byte, within a
# block, across a boundary, blocks with partial edges, whole blocks, at
# offset 0 and up to the last byte.  After each round the windows are read
# back and checked byte for byte against an exact model (see
# flags_load.py): bytes no request touched are unchanged; touched bytes
# hold one of the overlapping requests' bytes; trimmed whole blocks read
# as zeroes and trimmed partial blocks are left alone.  Every request must
# succeed except a FAST_ZERO over a partial block, which must fail with
# ENOTSUP and change nothing (a read-modify-write), every replica
# stays in sync after every round, nothing waits, nothing fails, and after
# a FLUSH the three replicas are byte-identical.
# TPX_CHECKER_SEED fixes the seed (else $RANDOM); TPX_FLAGS_ROUNDS the
# number of rounds (default 150).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

SEED=${TPX_CHECKER_SEED:-$RANDOM}
ROUNDS=${TPX_FLAGS_ROUNDS:-150}
cluster_setup --io-timeout-ms 5000 --write-timeout-ms 10000
cluster_volume_create vol 16M
cluster_attach vol n1
cluster_wait_export vol 1
log "seed $SEED, $ROUNDS rounds"

ALL_IN_SYNC="n1=in_sync n2=in_sync n3=in_sync"
LABEL='volume="vol"'
vol_metric() { cluster_metric 1 "triplex_volume_$1" "$LABEL"; }
states_ok() {
	local s
	s=$(cluster_states vol)
	[[ $s == "$ALL_IN_SYNC" ]] || fail "$1: a replica left the in-sync set: $s"
}

states_ok "before the load"
waits0=$(vol_metric write_waits_total)
isr0=$(vol_metric isr_removals_total)
errs0=$(vol_metric io_errors_total)

tpx_py flags_load.py first --uri "$(cluster_uri vol 1)" >"$T/first.out" 2>"$T/first.err" ||
	fail "the 10-byte NO_HOLE zero at offset 0: $(cat "$T/first.err")"
cat "$T/first.err" >&2
first_ms=$(sed -n 's/^S //p' "$T/first.out" | /usr/bin/python3 -c 'import json,sys
print(json.load(sys.stdin)["latency_ms"]["zero+NO_HOLE"])')
waits=$(vol_metric write_waits_total)
isr=$(vol_metric isr_removals_total)
((waits == waits0 && isr == isr0)) ||
	fail "the 10-byte NO_HOLE zero at offset 0 waited ($((waits - waits0)) write waits) or dropped a replica ($((isr - isr0)) ISR removals)"
states_ok "after the 10-byte NO_HOLE zero at offset 0"

tpx_py flags_load.py load --uri "$(cluster_uri vol 1)" --seed "$SEED" \
	--rounds "$ROUNDS" --inflight 32 --connections 2 --window 131072 \
	--ctl "$TPXCTL" --volume vol >"$T/load.out" 2>"$T/load.err" ||
	fail "flags load (seed $SEED): $(tail -n 5 "$T/load.err")"
cat "$T/load.err" >&2
fig() {
	sed -n 's/^S //p' "$T/load.out" | /usr/bin/python3 -c 'import json,sys
print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
reqs=$(fig requests)
kinds=$(fig kinds)
pairs=$(fig overlapping_pairs)
xpairs=$(fig cross_conn_overlapping_pairs)
reads=$(fig reads_checked)
checked=$(fig bytes_checked)
mixed=$(fig mixed_segments)
maxms=$(fig max_ms)
secs=$(fig seconds)
fz=$(fig fast_zero_refused)
((fz > 0)) || fail "no FAST_ZERO over a partial block was sent (none refused)"
((kinds == 24)) || fail "only $kinds of the 24 command/flag combinations were sent"
((pairs >= 10 * ROUNDS && xpairs >= 5 * ROUNDS)) ||
	fail "the load did not overlap enough (pairs=$pairs, across connections $xpairs)"

states_ok "after the load"
waits=$(vol_metric write_waits_total)
isr=$(vol_metric isr_removals_total)
errs=$(vol_metric io_errors_total)
((waits == waits0 && isr == isr0 && errs == errs0)) ||
	fail "with every replica up: write waits +$((waits - waits0)), ISR removals +$((isr - isr0)), I/O errors +$((errs - errs0))"

cluster_flush vol 1
cmp_in_sync vol 3
cluster_stop_all
log "figures: seed $SEED; 10-byte NO_HOLE zero at 0: ${first_ms} ms; $ROUNDS rounds, $reqs requests (24 command/flag combinations) in ${secs} s, max latency ${maxms} ms; overlapping pairs in flight $pairs (across connections $xpairs); $reads in-flight reads and $checked window bytes checked, $mixed mixed segments; $fz FAST_ZERO over partial blocks refused with ENOTSUP; write waits 0, ISR removals 0, I/O errors 0; replicas n1 == n2 == n3 (cmp, 16 MiB)"
log PASS
