#!/usr/bin/env bash
# Overlapping and sub-block writes under load on three replicas
# (invariants 9 and 10).  Volume vol (3 replicas) attached to n1.
# checker.py writes through n1 with 4 connections and 32 requests in
# flight, half of them aimed at 16 hot blocks (so overlapping writes are
# in flight at once, on the same and on different connections) and 30 %
# of them 1..4095-byte writes at any offset (read-modify-write in the
# engine).  Each replica completes its I/O in its own order, so without
# the engine's ordering the replicas would end up different.  Afterwards:
# checker.py verify finds every acknowledged write, and after a FLUSH the
# three replica data files are byte-identical (cmp), and a scrub through
# the engine finds nothing to repair.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

DUR=${TPX_FAULT_DURATION:-10}
cluster_setup --io-timeout-ms 5000 --write-timeout-ms 10000
cluster_volume_create vol 16M
cluster_attach vol n1
cluster_wait_export vol 1

WLOG=$T/checker.log
/usr/bin/python3 "$CHECKER" write --uri "$(cluster_uri vol 1)" --log "$WLOG" \
	--duration "$DUR" --blocks 1024 --inflight 32 --connections 4 \
	--sub-block-fraction 0.3 --hot-blocks 16 --hot-fraction 0.5 \
	--max-blocks-per-write 8 --flush-every 500 --op-timeout 20 \
	--seed "${TPX_CHECKER_SEED:-$RANDOM}" >"$T/write.out" 2>"$T/write.err" ||
	fail "checker write failed: $(tail -n 5 "$T/write.err")"
cat "$T/write.out" >&2
acked=$(checker_fig "$WLOG" acked)
failed=$(checker_fig "$WLOG" failed)
overlaps=$(checker_fig "$WLOG" overlaps)
xoverlaps=$(checker_fig "$WLOG" cross_conn_overlaps)
sub=$(checker_fig "$WLOG" sub_block)
((failed == 0)) || fail "$failed writes failed with all three replicas up"
((overlaps >= 1000 && xoverlaps >= 500 && sub >= 1000)) ||
	fail "the load did not overlap enough (overlaps=$overlaps cross-conn=$xoverlaps sub-block=$sub)"
[[ $(cluster_states vol) == "n1=in_sync n2=in_sync n3=in_sync" ]] ||
	fail "a replica left the in-sync set without a fault: $(cluster_states vol)"

checker_verify vol 1 "$WLOG"
cmp_in_sync vol 3
ctl volume scrub vol --json --meta "$TRIPLEX_META" >"$T/scrub.json" 2>"$T/scrub.err" ||
	fail "scrub failed: $(cat "$T/scrub.err" "$T/scrub.json")"
/usr/bin/python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))
assert r["bad_blocks"] == 0 and r["mismatched_blocks"] == 0 and r["repaired_blocks"] == 0, r' \
	"$T/scrub.json" || fail "scrub found differences: $(cat "$T/scrub.json")"

cluster_stop_all
log "figures: writes acked=$acked failed=$failed, overlapping in flight=$overlaps (across connections $xoverlaps), sub-block=$sub; faults: 0; verify: 0 lost; replicas n1 == n2 == n3 (cmp, 16 MiB; scrub: nothing to repair)"
log PASS
