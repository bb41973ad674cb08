#!/usr/bin/env bash
# Per replica state and rebuild progress on the engine's node's /metrics
# (issue 8). vol (3 replicas, resync capped at 2 MB/s) is served by n1:
# triplex_volume_replica_state says in_sync for all three; n3 is killed
# and 8 MiB written: n3 is out_of_sync; n3 comes back: it is rebuilding,
# triplex_volume_resync_done_bytes for n3 moves forward between two
# scrapes, and once n3 is in sync again the progress series is gone.
# triplex_build_info names the version.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

cluster_setup --io-timeout-ms 2000 --write-timeout-ms 10000 --resync-rate 2M
cluster_volume_create vol 32M
cluster_attach vol n1
cluster_wait_export vol 1

# state NODE: the state whose series is 1 for NODE's replica of vol.
state() {
	cluster_metrics 1 | awk -v n="node=\"$1\"" '
		index($1, "triplex_volume_replica_state{volume=\"vol\"") == 1 && index($1, n) && $2 == 1 {
			sub(/.*state="/, "", $1); sub(/".*/, "", $1); print $1 }'
}
for n in n1 n2 n3; do
	[[ $(state $n) == in_sync ]] || fail "$n's replica state is '$(state $n)', want in_sync"
done
m=$(cluster_metrics 1)
grep -q '^triplex_build_info{version="[0-9.]*",revision="[^"]*"} 1$' <<<"$m" ||
	fail "no triplex_build_info on n1"

cluster_kill 3
nbdsh -u "$(cluster_uri vol 1)" -c "h.pwrite(b'R' * (8 << 20), 0); h.flush()" ||
	fail "writing 8 MiB with n3 down failed"
cluster_wait_state vol n3 out_of_sync 15
[[ $(state n3) == out_of_sync ]] || fail "n3's replica state is '$(state n3)', want out_of_sync"

progress() { cluster_metric 1 triplex_volume_resync_done_bytes 'node="n3"'; }
_rebuilding() { [[ $(state n3) == rebuilding ]]; }
cluster_start_node 3
netns_wait_for "n3 to be rebuilding on n1's /metrics" 20 _rebuilding
p1=$(progress)
sleep 1.5
p2=$(progress)
[[ $(state n3) == rebuilding ]] || fail "n3 finished before its progress could be read twice (p1 $p1)"
((p2 > p1)) || fail "n3's resync progress did not move: $p1 then $p2 bytes"
log "n3 rebuilding: $p1 then $p2 bytes of $((32 << 20))"
cluster_wait_state vol n3 in_sync 60
_synced() { [[ $(state n3) == in_sync ]]; }
netns_wait_for "n3 to be in_sync on n1's /metrics" 10 _synced
m=$(cluster_metrics 1)
! grep -q '^triplex_volume_resync_done_bytes{' <<<"$m" ||
	fail "a resync progress series is left after the resync"
cluster_stop_all
log "figures: n3's rebuild seen at $p1 and $p2 bytes 1.5 s apart (capped at 2 MB/s)"
log PASS
