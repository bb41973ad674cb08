#!/usr/bin/env bash
# Fault: a replication connection the engine gave up on delivers its queued
# writes late (invariants 7 and 10). Volume vol (3 replicas) attached to
# n1, the checker writing through n1. n1's replication connection to n3 is
# blocked (iptables in n3's namespace, that one TCP connection only), so
# writes to n3 pile up in n1's socket until the request timeout (2 s): the
# engine drops the connection, n3 leaves the in-sync set, the engine
# reconnects on a new connection (n3 is reachable) and resyncs it. Only
# then is the old connection unblocked, and the kernel delivers what it had
# queued (a closed socket keeps retransmitting), over blocks the resync
# and newer writes have changed since. n3 must refuse those writes (an
# older session of the same epoch: its superseded counter moves), and the
# three replicas must end byte-identical. This is the divergence seen in
# t-fault-partition-replica, made to happen every time.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

require_tool ss
cluster_setup --io-timeout-ms 2000 --write-timeout-ms 20000
cluster_volume_create vol 32M
cluster_attach vol n1
cluster_wait_export vol 1

WLOG=$T/checker.log
checker_load - "$(cluster_uri vol 1)" "$WLOG" --op-timeout 25 --drain-timeout 25 \
	--blocks 1024
wait_acks "$WLOG" 3000 30
cluster_block_repl 1 3
kill -0 "$CHECKER_PID" 2>/dev/null || fail "the checker was done before the fault: it missed its load"
# n3 is out of the set only briefly (it is reachable on a new connection
# and resynced at once): its departure is seen in n1's log, not by polling.
_n3_left() { grep -q 'replica n3 left the in-sync set' "$(cluster_log 1)"; }
netns_wait_for "n1 to take n3 out of the in-sync set" 15 _n3_left
queued=$(cluster_blocked_queued 1)
((queued > 0)) || fail "nothing queued on n1's old connection to n3: the fault missed its load"
cluster_wait_state vol n3 in_sync 30
grep -q 'session 2 replaces 1' "$(cluster_log 3)" || fail "n3 did not see the engine's new session"
acks=$(log_acks "$WLOG")
wait_acks "$WLOG" $((acks + 1000)) 30
# Once n3 has all the old connection had queued, stop the load soon, so
# that a stale write applied over newer data would still show below.
cluster_unblock_repl 1 3
cluster_wait_metric 3 triplex_replica_superseded_total 10
superseded=$(cluster_metric 3 triplex_replica_superseded_total)
checker_stop "$CHECKER_PID"
cat "$T/write.out" >&2
acked=$(checker_fig "$WLOG" acked)
failed=$(checker_fig "$WLOG" failed)
((failed == 0)) || fail "$failed client writes failed although n1 and n2 stayed reachable"

checker_verify vol 1 "$WLOG"
states=$(cluster_states vol)
[[ $states == "n1=in_sync n2=in_sync n3=in_sync" ]] ||
	fail "a replica is not in sync: $states"
cmp_replicas vol 1 2 3
cluster_stop_all
log "figures: writes acked=$acked, failed=$failed; faults: 1 (n1's replication connection to n3 blocked, $queued bytes queued on it, unblocked after n3 was resynced on a new connection); catch-up copied $(cluster_copied 1 n3) bytes; stale requests n3 refused: $superseded; verify: 0 lost; n1 = n2 = n3"
log PASS
