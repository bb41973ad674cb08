#!/usr/bin/env bash
# triplex-csi's Identity and Controller services, driven over the plugin's
# Unix socket by a Python gRPC client (tests/csi/test_controller.py)
# against a three-node cluster (triplexctl dev up; SQLite, or etcd with
# TPX_META_KIND=etcd): every RPC, the status codes for missing fields,
# unknown ids, unsupported capabilities and conflicts, idempotent repeats,
# topology, paging through many volumes, undecodable requests; two plugins
# racing on one volume (one wins, the other gets FAILED_PRECONDITION or
# ABORTED); then Probe fails with FAILED_PRECONDITION for a plugin whose
# metadata store is unreachable; SIGTERM exits 0.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/csi/csi.sh
. "$TPX_SRC/tests/csi/csi.sh"
csi_require
csi_dev_up

csi_start ctl --mode controller --meta "$TRIPLEX_META"
csi_py test_controller.py ctl --ctl "$TPXCTL" --meta "$TRIPLEX_META" ||
	fail "test_controller.py failed (plugin log: $T/ctl.log)"

# Two controller plugins race publishes (and an unpublish against a
# publish) of one volume to two nodes: one wins, the epoch rises once.
csi_start ctl2 --mode controller --meta "$TRIPLEX_META"
csi_py test_race.py ctl --endpoint2 "unix://$T/ctl2.sock" --ctl "$TPXCTL" \
	--meta "$TRIPLEX_META" || fail "test_race.py failed"
csi_stop ctl2
csi_stop ctl

# A store that does not answer: the plugin starts, Probe says why.
csi_start dead --mode controller --meta etcd://127.0.0.1:1
csi_py probe_check.py dead --want FAILED_PRECONDITION ||
	fail "Probe with an unreachable store did not fail as it should"
csi_stop dead
log PASS
