#!/usr/bin/env bash
# Fault: freeze a replica node with SIGSTOP for longer than the I/O timeout
# (invariants 1, 2).  Volume vol (3 replicas, min_replicas 2) attached to
# n1, daemons started with --io-timeout-ms 2000.  checker.py writes through
# n1; n3 is stopped with SIGSTOP.  Its kernel still accepts TCP, so only
# the engine's request timeout can notice: writes stall for about the
# timeout, then n3 is recorded out_of_sync and writes are acknowledged
# again while n3 is still frozen.  After SIGCONT the load goes on; no
# client write failed, checker.py verify finds every acknowledged write,
# n3 catches up, and after a FLUSH the three replica files are identical.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

IO_MS=2000
FREEZE_S=6
cluster_setup --io-timeout-ms "$IO_MS" --write-timeout-ms 20000
cluster_volume_create vol 32M
cluster_attach vol n1
cluster_wait_export vol 1

WLOG=$T/checker.log
checker_load - "$(cluster_uri vol 1)" "$WLOG" --op-timeout 25 --drain-timeout 25
wait_acks "$WLOG" 3000 30

cluster_freeze 3
on_exit "kill -CONT ${CLUSTER_PID[3]}"
t_stop=$(date +%s%N)
acks_at_stop=$(log_acks "$WLOG")
cluster_wait_state vol n3 out_of_sync $((IO_MS / 1000 + 10))
drop_ms=$((($(date +%s%N) - t_stop) / 1000000))
acks_at_drop=$(log_acks "$WLOG")
((drop_ms >= IO_MS - 300)) ||
	fail "n3 was dropped ${drop_ms} ms after SIGSTOP, before the ${IO_MS} ms I/O timeout: why?"
# Writes are acknowledged again while n3 is still frozen.
wait_acks "$WLOG" $((acks_at_drop + 2000)) 15
kill -0 "${CLUSTER_PID[3]}" || fail "n3 died while stopped"
[[ $(ps -o stat= -p "${CLUSTER_PID[3]}") == T* ]] || fail "n3 is not stopped"
frozen_ms=$((($(date +%s%N) - t_stop) / 1000000))
sleep_left=$((FREEZE_S * 1000 - frozen_ms))
((sleep_left <= 0)) || sleep "$((sleep_left / 1000)).$(printf %03d $((sleep_left % 1000)))"
acks_at_cont=$(log_acks "$WLOG")
frozen_ms=$((($(date +%s%N) - t_stop) / 1000000))
cluster_thaw 3

wait_acks "$WLOG" $((acks_at_cont + 2000)) 15
cluster_wait_state vol n3 in_sync 30
checker_stop "$CHECKER_PID"
cat "$T/write.out" >&2
acked=$(checker_fig "$WLOG" acked)
failed=$(checker_fig "$WLOG" failed)
((failed == 0)) || fail "$failed client writes failed although n1 and n2 stayed up"
states=$(cluster_states vol)
[[ $(cluster_state vol n1) == in_sync && $(cluster_state vol n2) == in_sync ]] ||
	fail "n1 and n2 must stay in sync: $states"

checker_verify vol 1 "$WLOG"
# n3 caught up after SIGCONT: all three replicas are identical.
cmp_in_sync vol 3

cluster_stop_all
log "figures: writes acked=$acked (before SIGSTOP $acks_at_stop, while n3 was frozen $((acks_at_cont - acks_at_stop)), after SIGCONT $((acked - acks_at_cont))), failed=$failed; faults: 1 (SIGSTOP n3 for ${frozen_ms} ms); n3 out_of_sync ${drop_ms} ms after SIGSTOP (io timeout ${IO_MS} ms); states: $states; verify: 0 lost; in-sync replicas identical (cmp: $CMP_IN_SYNC)"
log PASS
