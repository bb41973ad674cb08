#!/usr/bin/env bash
# Fault: kill -9 one replica node during a write load, keep writing,
# restart it, catch up, compare (invariants 1, 2, 5).
# Three triplexd, each in its own network namespace. Two volumes attached
# to n1: vol takes checker.py's load (over TCP from a client namespace, every
# acknowledged write recorded), fv takes fio's (every 4 KiB block written
# once with a crc32c verify header). n3 is killed with SIGKILL while both
# loads run. Writes go on being acknowledged with two replicas, n3 is
# recorded out_of_sync, no client write fails; n3 is restarted while the
# checker keeps writing, catches up (the bytes it copies are counted), and
# afterwards checker.py and fio read everything back and all three replica
# files of each volume are byte-identical.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"
require_tool fio numfmt
fio --enghelp 2>/dev/null | grep -qw nbd || skip "fio lacks the nbd engine"

PRE_ACKS=${TPX_FAULT_PRE_ACKS:-3000}
POST_ACKS=${TPX_FAULT_POST_ACKS:-3000}

cluster_setup --io-timeout-ms 2000 --write-timeout-ms 10000
for name in vol fv; do
	cluster_volume_create "$name" 32M
	cluster_attach "$name" n1
	cluster_wait_export "$name" 1
done
[[ $(cluster_field vol min_replicas) -eq 2 ]] || fail "min_replicas is not 2"

WLOG=$T/checker.log
checker_load "$CLUSTER_CLIENT" "$(cluster_tcp_uri vol 1)" "$WLOG" \
	--op-timeout 15 --drain-timeout 15
wait_acks "$WLOG" "$PRE_ACKS" 30
fio_load fv 1 24M
sleep 1

cluster_kill 3
t_kill=$(date +%s%N)
acks_at_kill=$(log_acks "$WLOG")
kill -0 "$FIO_PID" 2>/dev/null || fail "fio was done before the kill: the fault missed its load"
cluster_wait_state vol n3 out_of_sync 15
drop_ms=$((($(date +%s%N) - t_kill) / 1000000))
wait_acks "$WLOG" $((acks_at_kill + POST_ACKS)) 30
fio_load_wait
[[ $(cluster_state fv n3) == out_of_sync ]] || fail "fv's n3 is $(cluster_state fv n3) after writes it missed"

# n3 comes back while the checker keeps writing: it catches up.
log_off=$(stat -c %s "$(cluster_log 1)")
t_start=$(date +%s%N)
cluster_start_node 3
cluster_wait_state vol n3 in_sync 60
cluster_wait_state fv n3 in_sync 60
resync_ms=$((($(date +%s%N) - t_start) / 1000000))
acks_at_sync=$(log_acks "$WLOG")
wait_acks "$WLOG" $((acks_at_sync + 1000)) 30
checker_stop "$CHECKER_PID"
cat "$T/write.out" >&2

acked=$(checker_fig "$WLOG" acked)
failed=$(checker_fig "$WLOG" failed)
((failed == 0)) || fail "$failed client writes failed although 2 of 3 replicas (min_replicas 2) stayed up"
copied=$(cluster_copied 1 n3 "$log_off")
((copied > 0)) || fail "n3 came back in sync without copying anything"

cluster_flush fv 1
checker_verify vol 1 "$WLOG"
fio_verify fv 1
cmp_replicas vol 1 2 3
cmp_replicas fv 1 2 3

states=$(cluster_states vol)
cluster_stop_all
log "figures: writes acked=$acked (before the kill $acks_at_kill, while n3 was away $((acks_at_sync - acks_at_kill)), after it caught up $((acked - acks_at_sync))), failed=$failed; fio: $(numfmt --to=iec-i "$(_fio_size_bytes)")B of 4 KiB writes verified (crc32c); faults: 1 (kill -9 n3); n3 out_of_sync ${drop_ms} ms after the kill; catch-up of both volumes: $copied bytes copied, in sync ${resync_ms} ms after the restart; states: $states; verify: 0 lost; replicas n1 == n2 == n3 (cmp) for vol and fv"
log PASS
