#!/usr/bin/env bash
# Fault: cut a replica node off the network (iptables in its namespace)
# during a write load, then heal. Volume vol (3 replicas, min 2) attached
# to n1, daemons with --io-timeout-ms 2000. Writes stall for at most the
# timeout, n3 is recorded out_of_sync, writes go on with n1 and n2; after
# the heal n3 reconnects and catches up (only what changed), the checker
# finds every acknowledged write, and all three replicas are identical.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

IO_MS=2000
cluster_setup --io-timeout-ms "$IO_MS" --write-timeout-ms 20000
cluster_volume_create vol 32M
cluster_attach vol n1
cluster_wait_export vol 1

WLOG=$T/checker.log
/usr/bin/python3 "$CHECKER" write --uri "$(cluster_uri vol 1)" --log "$WLOG" \
	--duration 60 --blocks 4096 --inflight 16 --connections 2 \
	--sub-block-fraction 0.1 --flush-every 200 --op-timeout 25 \
	--drain-timeout 25 --seed "${TPX_CHECKER_SEED:-$RANDOM}" \
	>"$T/write.out" 2>"$T/write.err" &
CHECKER_PID=$!
on_exit "kill -TERM $CHECKER_PID"
wait_acks "$WLOG" 3000 30

netns_partition 3
on_exit "netns_heal 3"
acks_at_cut=$(log_acks "$WLOG")
cluster_wait_state vol n3 out_of_sync $((IO_MS / 1000 + 10))
acks_at_drop=$(log_acks "$WLOG")
wait_acks "$WLOG" $((acks_at_drop + 2000)) 15
acks_at_heal=$(log_acks "$WLOG")
netns_heal 3
cluster_wait_state vol n3 in_sync 30
wait_acks "$WLOG" $((acks_at_heal + 1000)) 15
checker_stop "$CHECKER_PID"
cat "$T/write.out" >&2
acked=$(checker_fig "$WLOG" acked)
failed=$(checker_fig "$WLOG" failed)
((failed == 0)) || fail "$failed client writes failed although n1 and n2 stayed reachable"
copied=$(grep -o 'resync of n3 done: [0-9]* bytes compared, [0-9]* copied' "$(cluster_log 1)" |
	tail -n 1 | awk '{print $(NF-1)}')

cluster_flush vol 1
vrc=0
/usr/bin/python3 "$CHECKER" verify --uri "$(cluster_uri vol 1)" --log "$WLOG" \
	--timeout 60 >"$T/verify.out" 2>&1 || vrc=$?
cat "$T/verify.out" >&2
((vrc == 0)) || fail "checker verify found lost or corrupt writes (exit $vrc)"
cmp "$(cluster_replica_file vol 1)" "$(cluster_replica_file vol 3)" ||
	fail "n3 differs from n1 after the heal and catch-up"
cmp "$(cluster_replica_file vol 1)" "$(cluster_replica_file vol 2)" || fail "n2 differs from n1"
cluster_stop_all
log "figures: writes acked=$acked (before the cut $acks_at_cut, while n3 was cut off $((acks_at_heal - acks_at_cut))), failed=$failed; faults: 1 (partition n3, healed); catch-up copied ${copied:-?} bytes; verify: 0 lost; n1 = n2 = n3"
log PASS
