#!/usr/bin/env bash
# A node of the cluster that is not the engine cannot lock a volume out or
# delete it (issue 11). vol (3 replicas) is served by n1 at epoch E. From
# the client namespace a raw client with n3's certificate (a valid node of
# the cluster CA, so past mutual TLS) sends n2's replica service a FENCE to epoch
# 2^64-1, which the metadata store never recorded: refused with EPERM
# after the replica asked its agent, n2 stays at E, and the refusal is
# counted. A DELETE is refused at once. At the current epoch a FENCE, a
# WRITE, a LEASE and a FLUSH (with a newer session) from n3 are refused
# with EACCES, and an OPEN that would create a replica is refused: the
# metadata store says n1 holds the attachment. Writes through n1 go on with all
# three in sync, and attaching vol to n2 (an epoch the store does record)
# is taken by every replica and serves. Without the check the forged epoch
# was persisted and no engine could ever serve vol again.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

cluster_setup --io-timeout-ms 2000 --write-timeout-ms 5000
cluster_volume_create vol 16M
cluster_attach vol n1
cluster_wait_export vol 1
vid=$(cluster_field vol id)
epoch=$(cluster_field vol epoch)
nbdsh -u "$(cluster_uri vol 1)" -c "h.pwrite(b'BEFORE__' * 512, 0); h.flush()" ||
	fail "writing vol through n1 failed"

forge() {
	FORGE_CERT=$T/tls/n3.crt FORGE_KEY=$T/tls/n3.key FORGE_CA=$T/tls/ca.crt \
		netns_exec "$CLUSTER_CLIENT" /usr/bin/python3 "$TPX_ITEST_DIR/repl_forge.py" \
		"$(netns_addr 2)" "$CLUSTER_REPL_PORT" "$@"
}
t0=$(date +%s%N)
got=$(forge fence "$vid" 18446744073709551615) || fail "the forged FENCE could not be sent"
fence_ms=$((($(date +%s%N) - t0) / 1000000))
[[ $got == "status -1 epoch $epoch" ]] ||
	fail "forged FENCE to 2^64-1: got '$got', want 'status -1 epoch $epoch' (EPERM, epoch unchanged)"
grep -q "epoch 18446744073709551615 asked (op 10) is not recorded in the metadata store: refused" \
	"$(cluster_log 2)" || fail "n2 does not log the refused epoch"
((  $(cluster_metric 2 triplex_replica_epoch_refused_total) >= 1 )) ||
	fail "triplex_replica_epoch_refused_total did not move on n2"
got=$(forge delete "$vid" "$epoch") || fail "the forged DELETE could not be sent"
[[ $got == "status -1 epoch 0" ]] || fail "forged DELETE: got '$got', want EPERM"
[[ -e $(cluster_replica_file vol 2) ]] || fail "n2's replica of vol is gone"
# At the current epoch (and a session newer than the engine's, which
# would cut the engine off if taken, even for a FLUSH), n3 does not hold
# vol's attachment: FENCE, WRITE, LEASE and FLUSH are refused with EACCES,
# counted as refused peers.
auth0=$(cluster_metric 2 triplex_replica_auth_refused_total)
for op in fence write lease flush; do
	got=$(FORGE_SESSION=18446744073709551615 forge "$op" "$vid" "$epoch") ||
		fail "the forged $op could not be sent"
	[[ $got == "status -13 epoch $epoch" ]] ||
		fail "forged $op at the current epoch from n3: got '$got', want 'status -13 epoch $epoch' (EACCES)"
done
grep -q "node 'n3' does not hold the attachment at epoch $epoch (op 4): refused" \
	"$(cluster_log 2)" || fail "n2 does not log the refused write"
(($(cluster_metric 2 triplex_replica_auth_refused_total) >= auth0 + 4)) ||
	fail "triplex_replica_auth_refused_total did not count the four refusals"
# Nor can n3 make a replica on n2 for a volume id it does not hold.
got=$(forge create 999999 1) || fail "the forged OPEN could not be sent"
[[ $got == "status -11 epoch 0" || $got == "status -13 epoch 0" ]] ||
	fail "forged OPEN+CREATE from n3: got '$got', want EAGAIN or EACCES"
[[ ! -e $(cluster_dir 2)/replicas/forged ]] || fail "n2 made the forged replica"

# The volume goes on at E with three replicas.
nbdsh -u "$(cluster_uri vol 1)" -c "h.pwrite(b'AFTER___' * 512, 4096); h.flush()" ||
	fail "writing vol through n1 failed after the forged requests"
[[ $(cluster_states vol) == "n1=in_sync n2=in_sync n3=in_sync" ]] ||
	fail "a replica left the in-sync set: $(cluster_states vol)"
cluster_flush vol 1
cmp_replicas vol 1 2 3

# A recorded epoch is taken.
cluster_attach vol n2
cluster_wait_export vol 2 30
nbdsh -u "$(cluster_uri vol 2)" -c 'assert h.pread(8, 0) == b"BEFORE__"; assert h.pread(8, 4096) == b"AFTER___"; h.pwrite(b"ONN2____" * 512, 8192); h.flush()' ||
	fail "vol attached to n2 does not serve its data"
new_epoch=$(cluster_field vol epoch)
cluster_stop_all
log "figures: the forged FENCE (epoch 2^64-1) refused by n2 in $fence_ms ms, the DELETE at once; vol kept epoch $epoch and three replicas in sync, then served by n2 at epoch $new_epoch"
log PASS
