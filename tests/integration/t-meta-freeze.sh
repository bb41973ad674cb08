#!/usr/bin/env bash
# The metadata store stops answering for 10 s; I/O does not (issue 9: no
# metadata call ever blocks the I/O loop). Volume vol (3 replicas)
# attached to n1. A client writes through n1 at queue depth 1 and notes
# every write's start and latency. After 3 s another process takes the
# SQLite file's write lock for 10 s: every agent's keepalive and every
# other write to the store waits the busy timeout (5 s) and fails. Writes
# to vol need no in-sync change, so they must go on completing all along:
# a metadata call on the loop would stall them for seconds at each
# keepalive. Afterwards the nodes are registered again, the store answers,
# and the replicas are identical. With TPX_META_KIND=etcd the freeze is
# SIGSTOP of every etcd member: connections are accepted, nothing answers,
# each call runs into its deadline (5 s). TPX_META_FAULT=leader-kill
# (etcd only; bench/meta-fault-latency.sh): instead of the freeze, kill -9
# the etcd leader and measure for FREEZE_S while the others elect a new
# one; the member is started again afterwards.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

FREEZE_S=10
# Automatic failover on: the freeze expires every lease, and no node may
# take vol over for it (the holdoff after registering again).
CLUSTER_FAILOVER=auto
cluster_setup --io-timeout-ms 5000 --write-timeout-ms 20000
cluster_volume_create vol 16M
cluster_attach vol n1
cluster_wait_export vol 1

# The writer: QD1 4 KiB writes for FREEZE_S + 8 s; one line per write:
# start time (s, monotonic) and latency (ms).
/usr/bin/python3 - "$(cluster_uri vol 1)" $((FREEZE_S + 8)) >"$T/lat.txt" 2>"$T/writer.err" <<'PY' &
import os, random, sys, time, nbd
uri, secs = sys.argv[1], float(sys.argv[2])
h = nbd.NBD()
h.connect_uri(uri)
size = h.get_size()
buf = os.urandom(4096)
end = time.monotonic() + secs
while time.monotonic() < end:
    t0 = time.monotonic()
    h.pwrite(buf, random.randrange(size // 4096) * 4096)
    print("%.3f %.1f" % (t0, (time.monotonic() - t0) * 1000), flush=True)
h.flush()
PY
WRITER=$!
on_exit "kill $WRITER"
sleep 3

# The outage shows in n1's metrics: the store is not up, the lease is
# older than its TTL (5 s). META_DOWN: "up age" as seen.
meta_metrics_down() {
	local up age
	up=$(cluster_metric 1 triplex_meta_up)
	age=$(cluster_metric 1 triplex_node_lease_age_seconds)
	((up == 0)) || fail "triplex_meta_up is $up on n1 while the store is frozen"
	((age >= 5)) || fail "n1's lease age is $age s while the store has been frozen for $((FREEZE_S - 3)) s"
	META_DOWN="triplex_meta_up 0, lease age $age s"
}

mono() { /usr/bin/python3 -c 'import time; print("%.3f" % time.monotonic())'; }
FAULT=${TPX_META_FAULT:-freeze}
if [[ $FAULT == leader-kill ]]; then
	[[ ${TPX_META_KIND:-sqlite} == etcd ]] || fail "TPX_META_FAULT=leader-kill wants TPX_META_KIND=etcd"
	old_leader=$(etcd_leader) || fail "no etcd leader before the fault"
	echo "locked $(mono)" >"$T/freeze.out"
	etcd_kill "$old_leader"
	sleep "$FREEZE_S"
	echo "released $(mono)" >>"$T/freeze.out"
	new_leader=$(etcd_leader) || fail "no etcd leader ${FREEZE_S} s after the kill"
	[[ $new_leader != "$old_leader" ]] || fail "the killed e$old_leader is still leader"
	etcd_start "$old_leader"
	FREEZE_WHAT="kill -9 of the etcd leader e$old_leader, e$new_leader elected"
elif [[ ${TPX_META_KIND:-sqlite} == etcd ]]; then
	echo "locked $(mono)" >"$T/freeze.out"
	etcd_freeze_all
	on_exit etcd_thaw_all
	sleep $((FREEZE_S - 3))
	meta_metrics_down
	sleep 3
	echo "released $(mono)" >>"$T/freeze.out"
	etcd_thaw_all
	FREEZE_WHAT="SIGSTOP of all three etcd members"
else
	# Hold the store's write lock (WAL: readers go on, writers wait).
	/usr/bin/python3 - "$T/meta.db" "$FREEZE_S" >"$T/freeze.out" 2>&1 <<'PY' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
print("locked %.3f" % time.monotonic(), flush=True)
time.sleep(float(sys.argv[2]))
c.execute("ROLLBACK")
print("released %.3f" % time.monotonic(), flush=True)
PY
	FREEZER=$!
	on_exit "kill $FREEZER"
	sleep $((FREEZE_S - 3))
	meta_metrics_down
	wait "$FREEZER" || fail "the lock holder failed: $(cat "$T/freeze.out")"
	FREEZE_WHAT="the SQLite write lock held by another process"
fi
wait "$WRITER" || fail "the writer failed: $(tail -n 3 "$T/writer.err")"

t_lock=$(awk '/^locked/ {print $2}' "$T/freeze.out")
t_free=$(awk '/^released/ {print $2}' "$T/freeze.out")
[[ -n $t_lock && -n $t_free ]] || fail "no lock times: $(cat "$T/freeze.out")"
read -r n_during max_during < <(awk -v a="$t_lock" -v b="$t_free" '
	$1 + $2 / 1000 >= a && $1 <= b { n++; if ($2 > m) m = $2 }
	END { printf "%d %.1f\n", n, m }' "$T/lat.txt")
# pct IN|OUT P: the P-th percentile latency (ms) of the writes that
# overlapped the freeze (IN) or did not (OUT).
pct() {
	awk -v a="$t_lock" -v b="$t_free" -v w="$1" '
		{ inside = $1 + $2 / 1000 >= a && $1 <= b }
		(w == "IN" && inside) || (w == "OUT" && !inside) { print $2 }' "$T/lat.txt" |
		sort -n | awk -v p="$2" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; printf "%.1f", v[i] }'
}
# The fault landed: the agents' writes to the store failed meanwhile.
if [[ $FAULT == freeze ]]; then
	grep -qE 'keepalive failed|cannot read the metadata store' "$(cluster_log 1)" ||
		fail "no metadata call of n1 failed: the store was not frozen for it"
fi
((n_during >= 100)) || fail "only $n_during writes completed during the ${FREEZE_S} s freeze"
# 2 s: far above a write's normal latency here, far below the busy
# timeout or etcd call deadline (5 s) that a metadata call on the loop
# would cost.
awk -v m="$max_during" 'BEGIN { exit !(m < 2000) }' ||
	fail "a write took $max_during ms while the store was frozen: the I/O loop waited for it"

# The store answers again: the nodes come back, the volume is intact.
netns_wait_for "n1..n3 registered again" 30 _cluster_all_registered
_meta_metrics_up() {
	(($(cluster_metric 1 triplex_meta_up) == 1 &&
	  $(cluster_metric 1 triplex_node_lease_age_seconds) < 5))
}
netns_wait_for "n1's metrics to show the store up" 15 _meta_metrics_up
[[ $(cluster_field vol attached) == n1 ]] ||
	fail "vol moved to $(cluster_field vol attached) after a metadata outage alone"
grep -q "taking it over" "$(cluster_log 2)" "$(cluster_log 3)" &&
	fail "a node tried to take vol over after a metadata outage alone"
[[ $(cluster_states vol) == "n1=in_sync n2=in_sync n3=in_sync" ]] ||
	fail "a replica left the in-sync set: $(cluster_states vol)"
cluster_flush vol 1
cmp_replicas vol 1 2 3
cluster_stop_all
log "figures: $FAULT ${FREEZE_S} s ($FREEZE_WHAT); writes completed during it: $n_during, p50 $(pct IN 50) ms, p99 $(pct IN 99) ms, slowest $max_during ms (outside it: p50 $(pct OUT 50) ms, p99 $(pct OUT 99) ms); n1..n3 registered again afterwards; n1 = n2 = n3; n1's metrics during it: ${META_DOWN:-not sampled (leader kill)}, after: triplex_meta_up 1"
log PASS
