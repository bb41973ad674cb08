#!/usr/bin/env bash
# Volume identity is never reused (issue 9). Volume v holds data; the
# cluster is stopped and its metadata is lost (the SQLite file removed, or
# every etcd key deleted); the nodes start on the new, empty store and a
# new volume of the same name is created and attached. Its replicas on the
# nodes are the old volume's, whose id does not match the new one: every
# node refuses them with a clear log line, and the new volume never
# serves the old volume's bytes. TPX_META_KIND=etcd: etcd.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

# A short write timeout: a read with no replica to lease from fails after
# it (plus the lease wait) instead of the 15 s default.
cluster_setup --io-timeout-ms 2000 --write-timeout-ms 1000
cluster_volume_create v 8M
cluster_attach v n1
cluster_wait_export v 1
old_id=$(cluster_field v id)
nbdsh -u "$(cluster_uri v 1)" -c "h.pwrite(b'OLDVOLUM' * 512, 0); h.flush()" ||
	fail "writing v failed"
cluster_stop_all

# The metadata is lost.
if [[ ${TPX_META_KIND:-sqlite} == etcd ]]; then
	etcd_curl 1 /v3/kv/deleterange \
		"{\"key\": \"$(printf /triplex/ | base64)\", \"range_end\": \"$(printf /triplex0 | base64)\"}" >/dev/null ||
		fail "cannot empty etcd"
else
	rm -f "${TRIPLEX_META#sqlite:}" "${TRIPLEX_META#sqlite:}-wal" "${TRIPLEX_META#sqlite:}-shm"
fi
log "fault: the metadata store lost (v had id $old_id)"
for k in 1 2 3; do cluster_start_node "$k"; done
netns_wait_for "3 nodes registered" 30 _cluster_all_registered
! ctl volume show v >/dev/null 2>&1 || fail "v survived the loss of the store"
cluster_volume_create v 8M
new_id=$(cluster_field v id)
[[ $new_id != "$old_id" ]] || fail "the new v got the old v's id $old_id"
cluster_attach v n1

# Bounded: for 10 s the new v serves nothing of the old one. Each read
# either fails (no replica grants a lease) or returns the new v's bytes.
_refused_everywhere() {
	local k
	for k in 1 2 3; do
		grep -q "replica v on disk belongs to volume id $old_id, not $new_id" \
			"$(cluster_log "$k")" || return 1
	done
}
netns_wait_for "every node to refuse the old replica" 20 _refused_everywhere
reads=0 end=$((SECONDS + 10))
while ((SECONDS < end)); do
	got=$(timeout 10 nbdsh -u "$(cluster_uri v 1)" -c 'print(h.pread(8, 0).decode("ascii", "replace"))' 2>/dev/null) || got=
	[[ $got != OLDVOLUM ]] || fail "the new volume v (id $new_id) served the old v's data"
	((++reads))
	sleep 0.5
done
((reads >= 2)) || fail "only $reads reads tried in 10 s"
! _cluster_export_ok v 1 || log "note: n1 exports the new v"
cluster_stop_all
log "figures: old id $old_id, new id $new_id; the old replicas refused on n1..n3, $reads reads never got the old data"
log PASS
