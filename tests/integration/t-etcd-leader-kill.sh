#!/usr/bin/env bash
# Fault: kill -9 the etcd leader during a write load, and kill a replica
# node right after it, so that an in-sync change must be recorded while
# etcd has no leader (issue 9). The store is a three-member etcd, member K
# beside node nK. The checker writes to vol (attached to n1) over TCP from
# the client namespace. Writes must stall at most until the surviving
# members elect a leader and n3's departure is recorded, none may fail,
# none may be lost; the killed member and n3 come back, n3 catches up, and
# all three replicas are identical.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
export TPX_META_KIND=etcd
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

PRE_ACKS=${TPX_FAULT_PRE_ACKS:-3000}

cluster_setup --io-timeout-ms 2000 --write-timeout-ms 20000
cluster_volume_create vol 32M
cluster_attach vol n1
cluster_wait_export vol 1

WLOG=$T/checker.log
checker_load "$CLUSTER_CLIENT" "$(cluster_tcp_uri vol 1)" "$WLOG" \
	--op-timeout 30 --drain-timeout 30
wait_acks "$WLOG" "$PRE_ACKS" 30

old_leader=$(etcd_leader) || fail "no etcd leader before the fault"
t_kill=$(date +%s%N)
etcd_kill "$old_leader"
cluster_kill 3
acks_at_kill=$(log_acks "$WLOG")
kill -0 "$CHECKER_PID" 2>/dev/null || fail "the checker was done before the kill"

# Writes park until n3's departure is recorded, then go on.
wait_acks "$WLOG" $((acks_at_kill + 500)) 60
stall_ms=$((($(date +%s%N) - t_kill) / 1000000))
new_leader=$(etcd_leader) || fail "no etcd leader after the writes resumed"
[[ $new_leader != "$old_leader" ]] || fail "e$old_leader is leader again although it is dead"
leader_ms=$((($(date +%s%N) - t_kill) / 1000000))
cluster_wait_state vol n3 out_of_sync 30
grep -q "replica n3 left the in-sync set" "$(cluster_log 1)" ||
	fail "n1 never recorded n3 leaving: no in-sync change was needed"
# status asks each member on its own: the dead one is named.
dead_ep=${ETCD_ADDR[old_leader]}:${ETCD_CPORT[old_leader]}
ctl health detail >"$T/hd" 2>&1 || fail "health detail failed with one member down: $(cat "$T/hd")"
grep -q "^HEALTH_WARN META_DEGRADED$" "$T/hd" && grep -q "etcd member $dead_ep does not answer (1 of 3 down)" "$T/hd" ||
	fail "health detail does not name the dead member $dead_ep: $(cat "$T/hd")"

# Both come back: the member rejoins, n3 catches up under load.
etcd_start "$old_leader"
log_off=$(stat -c %s "$(cluster_log 1)")
cluster_start_node 3
cluster_wait_state vol n3 in_sync 60
acks_at_sync=$(log_acks "$WLOG")
wait_acks "$WLOG" $((acks_at_sync + 1000)) 30
checker_stop "$CHECKER_PID"
cat "$T/write.out" >&2

acked=$(checker_fig "$WLOG" acked)
failed=$(checker_fig "$WLOG" failed)
((failed == 0)) || fail "$failed client writes failed across the leader kill"
copied=$(cluster_copied 1 n3 "$log_off")
((copied > 0)) || fail "n3 came back in sync without copying anything"
checker_verify vol 1 "$WLOG"
cmp_replicas vol 1 2 3
cluster_stop_all
log "figures: writes acked=$acked (before the faults $acks_at_kill), failed=$failed; faults: kill -9 of etcd leader e$old_leader, then kill -9 of n3; 500 writes acked again ${stall_ms} ms after the kill (leader e$new_leader seen at ${leader_ms} ms); n3 out_of_sync, then caught up ($copied bytes); verify: 0 lost; n1 = n2 = n3"
log PASS
