#!/usr/bin/env bash
# SIGTERM of the engine's node under load drains as documented (issue 9):
# the checker writes overlapping blocks (half of them to a hot set) over
# two connections to vol on n1, 16 in flight; n1 gets SIGTERM. Requests in
# flight complete, later ones get ESHUTDOWN, the connections close even
# though the client keeps sending, n1 exits 0 well within its 10 s grace,
# and it does not take its own replica (or any other) out of the in-sync
# set on the way out. n1 is started again and serves vol: every
# acknowledged write is there, and the three replicas are identical.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

cluster_setup --io-timeout-ms 2000
cluster_volume_create vol 16M
cluster_attach vol n1
cluster_wait_export vol 1
mono_ms() { /usr/bin/python3 -c 'import time; print(int(time.monotonic() * 1000))'; }

checker_load - "$(cluster_uri vol 1)" "$T/w.log" --hot-fraction 0.5
wait_acks "$T/w.log" 2000 30
# The fault lands in a running load: acknowledgements still coming.
a1=$(log_acks "$T/w.log")
sleep 0.3
a2=$(log_acks "$T/w.log")
((a2 > a1)) || fail "the load is not running ($a1 then $a2 acknowledged writes)"
t0=$(mono_ms)
cluster_stop 1 # fails unless n1 exits 0 within 20 s
stop_ms=$(($(mono_ms) - t0))
((stop_ms < 9000)) || fail "n1 took ${stop_ms} ms to stop: the drain did not end, the grace timer did"
checker_stop "$CHECKER_PID"

! grep -E "left the in-sync set|requests still in flight" "$(cluster_log 1)" ||
	fail "n1 took a replica out of the in-sync set, or gave up draining, on the way out"
states=$(cluster_states vol)
[[ $states == "n1=in_sync n2=in_sync n3=in_sync" ]] || fail "after the stop: $states"
shutdown_replies=$(grep -c '^F .*Cannot_send_after_transport_endpoint_shutdown' "$T/w.log" || true)
lost_conn=$(grep -c '^F .* conn ' "$T/w.log" || true)

cluster_start_node 1
cluster_wait_export vol 1 30
checker_verify vol 1 "$T/w.log"
cluster_flush vol 1
cmp_replicas vol 1 2 3
cluster_stop_all
log "figures: n1 stopped ${stop_ms} ms after SIGTERM with $(log_acks "$T/w.log") writes acknowledged, ${shutdown_replies} answered ESHUTDOWN, $((lost_conn - shutdown_replies)) without a reply; three replicas in sync and identical"
log PASS
