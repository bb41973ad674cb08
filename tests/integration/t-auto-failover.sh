#!/usr/bin/env bash
# Automatic failover (issue 9). Volume vol (failover auto) is served by n1;
# a client in the client namespace writes to the URI the metadata store
# names (failover_client.py). n1 is killed with SIGKILL: once its lease
# has expired, n2 (the first live node in the placement with an in-sync
# replica) takes the volume over by compare-and-swap with a new epoch,
# reconciles and serves; the client finds the new URI through `triplexctl
# volume show` and goes on writing. No acknowledged write is lost; the
# time from the kill to the first write acknowledged by n2 is printed. n1
# comes back: it does not serve vol (n2 owns it), its replica catches up,
# and all three are identical. Then n3 is stopped and n2 killed: n1 (the
# only in-sync survivor) takes over, and writes need n3, which rejoins by
# itself when it is started again (no attach). TPX_META_KIND=etcd: etcd.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

CLUSTER_FAILOVER=auto
# TPX_LEASE_TTL: the nodes' lease TTL (bench/failover-time.sh), default 5 s.
cluster_setup --io-timeout-ms 2000 --write-timeout-ms 30000 ${TPX_LEASE_TTL:+--lease-ttl "$TPX_LEASE_TTL"}
cluster_volume_create vol 16M
[[ $(cluster_field vol failover) == auto ]] || fail "vol's failover is not auto"
cluster_attach vol n1
cluster_wait_export vol 1
mono() { /usr/bin/python3 -c 'import time; print("%.3f" % time.monotonic())'; }

# client NAME AFTER [ARGS]: the failover client in the client namespace.
client() {
	netns_bg "$CLUSTER_CLIENT" env TRIPLEX_META="$TRIPLEX_META" /usr/bin/python3 \
		"$TPX_ITEST_DIR/failover_client.py" --ctl "$TPXCTL" --volume vol \
		--after "$2" --duration 120 --progress "$T/$1.progress" "${@:3}" \
		>"$T/$1.out" 2>"$T/$1.err"
	CLIENT_PID=$NETNS_BG_PID
	on_exit "kill $CLIENT_PID"
}
_acks() { grep -q '^A 5' "$T/$1.progress" 2>/dev/null; }
field() { /usr/bin/python3 -c "import json,sys; print(json.load(open('$T/$1.out'))['$2'])"; }

# --- 1: kill -9 the engine's node ------------------------------------------
client one 1000
wait_for "the client's first writes" 30 _acks one
epoch1=$(cluster_field vol epoch)
t_kill=$(mono)
cluster_kill 1
wait "$CLIENT_PID" || fail "the client failed: $(tail -n 3 "$T/one.err") $(cat "$T/one.out")"
[[ $(field one lost) == 0 ]] || fail "$(field one lost) acknowledged writes lost across the failover"
[[ $(cluster_field vol attached) == n2 ]] || fail "vol is attached to '$(cluster_field vol attached)', not n2"
(($(cluster_field vol epoch) > epoch1)) || fail "the takeover did not bump the epoch"
grep -q "taken over here at epoch" "$(cluster_log 2)" || fail "n2 logged no takeover"
! grep -q "taken over here" "$(cluster_log 3)" || fail "n3 took vol over too"
t_back=$(field one t_back)
[[ $t_back != None ]] || fail "no write was acknowledged by the new engine"
failover_ms=$(awk -v a="$t_kill" -v b="$t_back" 'BEGIN { printf "%d", (b - a) * 1000 }')
log "failover: first write acknowledged by n2 ${failover_ms} ms after kill -9 of n1 ($(field one acked) acked, $(field one failed) failed, uris $(field one uris))"

# n1 returns: fenced, caught up.
cluster_start_node 1
cluster_wait_state vol n1 in_sync 60
! _cluster_export_ok vol 1 || fail "the old engine's node serves vol again"
cluster_flush vol 2
cmp_replicas vol 1 2 3

# --- 2: a replica down during the failover, rejoining by itself ------------
cluster_stop 3
# A write makes n2 notice and record n3 leaving.
head -c 1M /dev/urandom | nbdcopy --flush - "$(cluster_uri vol 2)" || fail "write with n3 down failed"
cluster_wait_state vol n3 out_of_sync 30
t_kill2=$(mono)
cluster_kill 2
_taken_by_n1() { [[ $(cluster_field vol attached) == n1 ]]; }
netns_wait_for "n1 to take vol over" 60 _taken_by_n1
# n1 alone is in sync, n2 (in sync) is dead and cannot leave below
# min_replicas: n1 serves once n3, started again without an attach,
# has caught up from it and n2 can leave.
cluster_start_node 3
cluster_wait_export vol 1 90
takeover2_ms=$(awk -v a="$t_kill2" -v b="$(mono)" 'BEGIN { printf "%d", (b - a) * 1000 }')
client two 300 --no-failover
wait "$CLIENT_PID" || fail "the second client failed: $(tail -n 3 "$T/two.err")"
[[ $(field two lost) == 0 ]] || fail "writes lost after the second failover"
((${#CLUSTER_PID[3]} > 0)) || fail "n3 is not running"
cluster_wait_state vol n3 in_sync 60
grep -q "replica node n3 registered: connecting" "$(cluster_log 1)" ||
	fail "n1 never connected n3 by itself"
cluster_start_node 2
cluster_wait_state vol n2 in_sync 60
cluster_flush vol 1
cmp_replicas vol 1 2 3
cluster_stop_all
log "figures: failover (kill -9 of the engine's node to the first write acknowledged by the new engine) ${failover_ms} ms with a ${TPX_LEASE_TTL:-5} s lease; second failover with n3 down: n1 served vol ${takeover2_ms} ms after the kill of n2, n3 rejoined on its own start, all three identical"
log PASS
