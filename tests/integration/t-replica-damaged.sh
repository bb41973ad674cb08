#!/usr/bin/env bash
# A damaged replica is moved aside and rebuilt by itself (issue 9). vol is
# served by n1 with data on it. Three times, n3 is stopped and its replica
# damaged: its data file truncated, its checksum file deleted, both of its
# superblock slots overwritten. When n3 starts again, with nothing else done,
# its replica service logs one line saying what it found and where it put
# the old files, the engine takes n3 out of the in-sync set (recorded),
# n3 gets a new replica rebuilt from the good copies, and all three are
# identical again. TPX_META_KIND=etcd: etcd.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

cluster_setup --io-timeout-ms 2000
cluster_volume_create vol 8M
cluster_attach vol n1
cluster_wait_export vol 1
head -c 4M /dev/urandom >"$T/data"
nbdcopy --flush "$T/data" "$(cluster_uri vol 1)" || fail "writing vol failed"
rdir=$(cluster_dir 3)/replicas/vol

damage() {
	case $1 in
	truncated) truncate -s 4096 "$rdir/data" ;;
	crc-lost) rm -f "$rdir/crc" ;;
	# Both slots: one bad slot alone is survived by design.
	bad-superblock) head -c 8192 /dev/urandom | dd of="$rdir/meta" conv=notrunc status=none ;;
	esac
}
_moved() { (($(grep -c "replica vol is damaged" "$(cluster_log 3)") >= $1)); }
_rebuilt() { (($(grep -c "resync of n3 done" "$(cluster_log 1)") >= $1)); }

round=0
for kind in truncated crc-lost bad-superblock; do
	round=$((round + 1))
	resyncs=$(grep -c "resync of n3 done" "$(cluster_log 1)" || true)
	cluster_stop 3
	damage "$kind"
	log "fault: n3's replica of vol $kind"
	cluster_start_node 3
	netns_wait_for "n3 to find its replica damaged ($kind)" 30 _moved "$round"
	line=$(grep "replica vol is damaged" "$(cluster_log 3)" | tail -n 1)
	aside=$(sed -n 's/.*moved aside to \([^;]*\);.*/\1/p' <<<"$line")
	[[ -d $aside ]] || fail "$kind: no replica moved aside at '$aside' ($line)"
	netns_wait_for "n3 to be rebuilt ($kind)" 60 _rebuilt $((resyncs + 1))
	cluster_wait_state vol n3 in_sync 60
	cluster_flush vol 1
	cmp_replicas vol 1 2 3
	cmp -n 4194304 "$T/data" "$(cluster_replica_file vol 3)" || fail "$kind: n3's rebuilt replica lacks the data"
	log "$kind: found and moved aside ($(sed 's/.*(its store does not open: \([^,]*\),.*/\1/' <<<"$line")), n3 rebuilt, three identical"
done
((round == 3)) || fail "ran $round rounds"
grep -q "left the in-sync set\|out of the in-sync set\|leaves the in-sync set" "$(cluster_log 1)" ||
	log "note: n1's log has no in-sync line"
cluster_stop_all
log PASS
