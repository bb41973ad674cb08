#!/usr/bin/env bash
# Fault: cut a replica node off the network (iptables in its namespace)
# during a write load, then heal. Volume vol (3 replicas, min 2) attached
# to n1, daemons with --io-timeout-ms 2000. Writes stall for at most the
# timeout, n3 is recorded out_of_sync, writes go on with n1 and n2; after
# the heal n3 reconnects and catches up (only what changed), the checker
# finds every acknowledged write, and all three replicas are identical.
# A second volume, fv, takes a fio load (crc32c verify headers) across the
# cut and is read back and compared the same way.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

require_tool fio numfmt
fio --enghelp 2>/dev/null | grep -qw nbd || skip "fio lacks the nbd engine"

IO_MS=2000
cluster_setup --io-timeout-ms "$IO_MS" --write-timeout-ms 20000
for name in vol fv; do
	cluster_volume_create "$name" 32M
	cluster_attach "$name" n1
	cluster_wait_export "$name" 1
done

WLOG=$T/checker.log
checker_load - "$(cluster_uri vol 1)" "$WLOG" --op-timeout 25 --drain-timeout 25
wait_acks "$WLOG" 3000 30
fio_load fv 1 24M
sleep 1

netns_partition 3
on_exit "netns_heal 3"
kill -0 "$FIO_PID" 2>/dev/null || fail "fio was done before the cut: the fault missed its load"
acks_at_cut=$(log_acks "$WLOG")
cluster_wait_state vol n3 out_of_sync $((IO_MS / 1000 + 10))
acks_at_drop=$(log_acks "$WLOG")
wait_acks "$WLOG" $((acks_at_drop + 2000)) 15
acks_at_heal=$(log_acks "$WLOG")
netns_heal 3
cluster_wait_state vol n3 in_sync 30
fio_load_wait
cluster_wait_state fv n3 in_sync 30
wait_acks "$WLOG" $((acks_at_heal + 1000)) 15
checker_stop "$CHECKER_PID"
cat "$T/write.out" >&2
acked=$(checker_fig "$WLOG" acked)
failed=$(checker_fig "$WLOG" failed)
((failed == 0)) || fail "$failed client writes failed although n1 and n2 stayed reachable"
copied=$(cluster_copied 1 n3)
((copied > 0)) || fail "n3 came back in sync without copying anything"

checker_verify vol 1 "$WLOG"
cluster_flush fv 1
fio_verify fv 1
cmp_replicas vol 1 3 2
cmp_replicas fv 1 3 2
cluster_stop_all
log "figures: writes acked=$acked (before the cut $acks_at_cut, while n3 was cut off $((acks_at_heal - acks_at_cut))), failed=$failed; faults: 1 (partition n3, healed); catch-up of both volumes copied $copied bytes; verify: 0 lost; fio: $(numfmt --to=iec-i "$(_fio_size_bytes)")B of 4 KiB writes across the cut verified (crc32c); n1 = n2 = n3 for vol and fv"
log PASS
