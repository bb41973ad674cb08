#!/usr/bin/env bash
# Volume lifecycle (issue 9): attach refuses a node that is not alive and
# changes nothing; attach --wait returns once the export is served;
# delete refuses an attached volume; detach stops the engine; delete
# removes every replica's data, a node that was down meanwhile removes its
# own when it returns; a volume re-created with the same name is served,
# in sync, with none of the old data; delete --force takes an attached
# volume down. Three nodes in namespaces; TPX_META_KIND=etcd for etcd.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"
require_tool nbdcopy

cluster_setup --io-timeout-ms 2000 --write-timeout-ms 10000
cluster_volume_create vol 8M
vdir() { printf '%s/replicas/vol' "$(cluster_dir "$1")"; }
# attach --wait connects to the node's TCP listener: from the client
# namespace, which reaches the nodes (and the SQLite file).
ctl_client() { ip netns exec "$(netns_name "$CLUSTER_CLIENT")" "$TPXCTL" "$@"; }

# A node that does not exist: refused, nothing changed.
epoch0=$(cluster_field vol epoch)
if out=$(ctl volume attach vol --node n9 2>&1); then
	fail "attach to n9 succeeded: $out"
fi
grep -q "node 'n9' is not registered or not alive" <<<"$out" || fail "unclear error: $out"
[[ $(cluster_field vol epoch) == "$epoch0" && -z $(cluster_field vol attached) ]] ||
	fail "the refused attach changed the record (epoch $(cluster_field vol epoch), attached '$(cluster_field vol attached)')"

# attach --wait: served when it returns.
ctl_client volume attach vol --node n1 --wait >"$T/attach.out" 2>&1 || {
	cat "$T/attach.out" >&2
	fail "attach --wait failed"
}
grep -q "served at nbd://$(netns_addr 1):$CLUSTER_NBD_PORT/vol" "$T/attach.out" ||
	fail "attach --wait printed no URI: $(cat "$T/attach.out")"
_cluster_export_ok vol 1 || fail "attach --wait returned before the export was served"
head -c 8M /dev/urandom >"$T/old"
nbdcopy --flush "$T/old" "$(cluster_uri vol 1)" || fail "write failed"

# Attached: delete is refused.
if out=$(ctl volume delete vol 2>&1); then
	fail "delete of an attached volume succeeded: $out"
fi
grep -q "attached to n1: detach it first" <<<"$out" || fail "unclear error: $out"
[[ $(cluster_field vol attached) == n1 ]] || fail "the refused delete changed the record"

# n3 is down; detach, delete.
cluster_stop 3
ctl volume detach vol >"$T/detach.out" || fail "detach failed"
_unexported() { ! _cluster_export_ok vol 1; }
netns_wait_for "n1 to stop serving vol" 20 _unexported
[[ -z $(cluster_field vol attached) ]] || fail "detach left vol attached"
ctl volume delete vol >"$T/delete.out" || fail "delete failed: $(cat "$T/delete.out")"
_gone() { [[ ! -e $(vdir "$1") ]]; }
netns_wait_for "n1 to delete its replica" 20 _gone 1
netns_wait_for "n2 to delete its replica" 20 _gone 2
[[ -e $(vdir 3) ]] || fail "n3's replica went although n3 was down"
cluster_start_node 3
netns_wait_for "n3 to delete its replica once back" 30 _gone 3
log "delete: n1 and n2 deleted their replicas at once, n3 when it returned"

# The same name again: a new volume, served, in sync, without old data.
cluster_volume_create vol 8M
ctl_client volume attach vol --node n2 --wait >/dev/null || fail "attach of the new vol failed"
cluster_wait_state vol n1 in_sync 20
nbdcopy "$(cluster_uri vol 2)" "$T/new" || fail "read of the new vol failed"
cmp -s "$T/new" <(head -c 8M /dev/zero) || fail "the re-created vol serves old data"
head -c 4M /dev/urandom >"$T/new-data"
nbdcopy --flush "$T/new-data" "$(cluster_uri vol 2)" || fail "write to the new vol failed"
[[ $(cluster_states vol) == "n1=in_sync n2=in_sync n3=in_sync" ]] ||
	fail "the new vol's replicas are $(cluster_states vol)"
cmp_replicas vol 1 2 3

# --force: attached, deleted anyway, the engine stops, the data goes.
ctl volume delete vol --force >/dev/null || fail "delete --force failed"
_unexported2() { ! _cluster_export_ok vol 2; }
netns_wait_for "n2 to stop serving the deleted vol" 20 _unexported2
for k in 1 2 3; do
	netns_wait_for "n$k to delete its replica after --force" 20 _gone "$k"
done
cluster_stop_all
log PASS
