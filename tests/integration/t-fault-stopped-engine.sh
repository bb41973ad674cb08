#!/usr/bin/env bash
# Fault: the old engine still believes it is attached, with writes in
# flight (issue 9, fencing). vol (failover manual) is served by n1. A
# client has written blocks "B" through n1; n1 is paused with SIGSTOP; the
# client sends 16 more writes ("X", same blocks), which wait in the paused
# engine's socket. vol is attached to n2 meanwhile (epoch + 1), which serves
# it. n1 resumes: its engine, still believing it is attached at the old
# epoch, takes the writes in; its read lease ran out while it was paused,
# so they wait while it asks the replicas for a new one at the old epoch;
# n2's and n3's replicas refuse it by epoch (triplex_replica_fenced_total
# moves on both: without read leases the writes themselves are what they
# refuse), and the client gets no acknowledgement for any of them. The
# blocks read "B" through n2, n1
# stops serving, and once n1 is restarted all three replicas are
# identical.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

cluster_setup --io-timeout-ms 2000 --write-timeout-ms 4000
cluster_volume_create vol 16M
cluster_attach vol n1
cluster_wait_export vol 1
epoch1=$(cluster_field vol epoch)

/usr/bin/python3 "$TPX_ITEST_DIR/stopped_client.py" --uri "$(cluster_uri vol 1)" \
	--go "$T/go" >"$T/client.out" 2>"$T/client.err" &
client=$!
on_exit "kill $client"
_said() { grep -qx "$1" "$T/client.out"; }
wait_for "the client's first writes" 30 _said ready

fenced_before() { cluster_metric "$1" triplex_replica_fenced_total; }
f2=$(fenced_before 2)
f3=$(fenced_before 3)
kill -STOP "${CLUSTER_PID[1]}"
log "fault: SIGSTOP n1 (pid ${CLUSTER_PID[1]})"
touch "$T/go"
wait_for "the client's writes to be sent" 30 _said sent
cluster_attach vol n2
cluster_wait_export vol 2 30
(($(cluster_field vol epoch) > epoch1)) || fail "the attach did not raise the epoch"
kill -CONT "${CLUSTER_PID[1]}"
log "n1 resumed with 16 writes of epoch $epoch1 waiting"
# (n1's LEASE or, without leases, its writes reach the epoch check.)
wait "$client" || fail "the client failed: $(cat "$T/client.err")"
result=$(tail -n 1 "$T/client.out")
acked=$(/usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])['acked'])" "$result")
((acked == 0)) || fail "the old engine acknowledged $acked writes after the new attach: $result"

# The writes reached the replicas' epoch check on both other nodes.
_fenced_moved() { (($(cluster_metric 2 triplex_replica_fenced_total) > f2 &&
	$(cluster_metric 3 triplex_replica_fenced_total) > f3)); }
netns_wait_for "n2's and n3's replicas to refuse the old epoch" 10 _fenced_moved
f2b=$(cluster_metric 2 triplex_replica_fenced_total)
f3b=$(cluster_metric 3 triplex_replica_fenced_total)
nbdsh -u "$(cluster_uri vol 2)" -c '
for i in range(16):
    b = h.pread(4096, (2048 + i) * 4096)
    assert b == b"B" * 4096, "block %d holds a write the old engine sent" % (2048 + i)
' || fail "the old engine's writes landed on the in-sync replicas"
_n1_hidden() { ! _cluster_export_ok vol 1; }
netns_wait_for "n1 to stop serving vol" 30 _n1_hidden

cluster_stop 1
cluster_start_node 1
cluster_wait_state vol n1 in_sync 60
cluster_flush vol 2
cmp_replicas vol 2 1 3
cluster_stop_all
log "figures: 16 writes held across SIGSTOP and the attach elsewhere: 0 acknowledged ($result); refused by epoch: n2 $f2 -> $f2b, n3 $f3 -> $f3b"
log PASS
