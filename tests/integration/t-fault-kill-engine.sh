#!/usr/bin/env bash
# Fault: the engine's node crashes (kill -9) during a write load and comes
# back (invariants 3 and 4). Volume vol (3 replicas) attached to n1, the
# checker writing through n1. First n1's replication connection to n3 is
# blocked (iptables in n3's namespace, that one TCP connection only), so
# n1's writes to n3 pile up in n1's socket; then n1 is killed with writes
# in flight and restarted with the same arguments. The new engine reaches
# n3 on a new connection. Once the old connection is unblocked, the kernel
# delivers what the dead process had queued (an orphaned socket keeps
# retransmitting) to n3, long after the new engine has reconciled it. So
# the restarted engine must not serve at the epoch of its previous
# incarnation: it takes epoch + 1, and n3 refuses those writes (its fenced
# counter moves; at the old epoch they would overwrite newer data). It
# also reconciles the regions that had writes in flight before serving.
# Afterwards every acknowledged write is there and the three replicas are
# byte-identical.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

cluster_setup --io-timeout-ms 2000 --write-timeout-ms 20000
cluster_volume_create vol 32M
cluster_attach vol n1
cluster_wait_export vol 1
epoch1=$(cluster_field vol epoch)

WLOG=$T/checker.log
checker_load - "$(cluster_uri vol 1)" "$WLOG" --op-timeout 25 --drain-timeout 25 \
	--connect-timeout 30 --blocks 1024
wait_acks "$WLOG" 3000 30
cluster_block_repl 1 3
sleep 0.5  # writes to n3 queue up in n1's socket (io timeout 2 s)
kill -0 "$CHECKER_PID" 2>/dev/null || fail "the checker was done before the crash: the fault missed its load"
queued=$(cluster_blocked_queued 1)
((queued > 0)) || fail "no writes queued for n3 on the blocked connection: the fault missed its load"
acks_at_kill=$(log_acks "$WLOG")
cluster_kill 1
cluster_start_node 1
cluster_wait_export vol 1 30
epoch2=$(cluster_field vol epoch)
((epoch2 > epoch1)) || fail "the restarted engine serves at epoch $epoch2, the epoch of its previous incarnation ($epoch1)"
grep -q "served here before at epoch $epoch1, now $epoch2" "$(cluster_log 1)" ||
	fail "n1's log does not say it took a new epoch"
grep -q 'replicas reconciled' "$(cluster_log 1)" ||
	fail "the restarted engine served without reconciling"
reconciled=$(sed -n 's/.*replicas reconciled, \([0-9]*\) bytes copied.*/\1/p' "$(cluster_log 1)" | tail -n 1)
wait_acks "$WLOG" $((acks_at_kill + 1000)) 60
# The dead process's socket, orphaned in n1's kernel, delivers its queue
# at its next retransmission; once n3 has it all, stop the load soon, so
# that a stale write applied over newer data would still show below.
cluster_unblock_repl 1 3
cluster_wait_metric 3 triplex_replica_fenced_total 10
fenced=$(cluster_metric 3 triplex_replica_fenced_total)
checker_stop "$CHECKER_PID"
cat "$T/write.out" >&2
acked=$(checker_fig "$WLOG" acked)
failed=$(checker_fig "$WLOG" failed)

checker_verify vol 1 "$WLOG"
states=$(cluster_states vol)
[[ $states == "n1=in_sync n2=in_sync n3=in_sync" ]] ||
	fail "a replica is not in sync although all three are back: $states"
cmp_replicas vol 1 2 3
cluster_stop_all
log "figures: writes acked=$acked (before the crash $acks_at_kill), failed or cut off by the crash=$failed; faults: 2 (n1's connection to n3 blocked with $queued bytes queued, then kill -9 of the engine's node n1, restarted; unblocked); epoch $epoch1 -> $epoch2; reconcile copied $reconciled bytes; stale writes n3 refused once unblocked: $fenced; verify: 0 lost; n1 = n2 = n3"
log PASS
