#!/usr/bin/env bash
# triplex-csi's Node service on n1 of a dev-up SQLite cluster, driven over
# its socket by a Python gRPC client (tests/csi/test_node.py): NodeGetInfo
# and capabilities, NodeStage through nbdfuse + a loop device (ext4 made on
# the blank volume), NodePublish as bind mounts (one read-only), files
# written, a raw block volume as a device file, stats, every call
# repeated, refused calls; a stage that hangs holds its volume (a second
# call on it is ABORTED) but not the plugin (Probe answers); Probe is ready only beside a registered
# triplexd; then the plugin is killed (-9) and restarted
# while all of it is staged and published, and the restarted plugin finds
# it, unpublishes and unstages it, stages it again (the files are there:
# no second mkfs), and grows the filesystem after ControllerExpandVolume.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/csi/csi.sh
. "$TPX_SRC/tests/csi/csi.sh"
require_root
require_tool nbdfuse fusermount3 losetup blkid mkfs.ext4 resize2fs findmnt mountpoint
[[ -e /dev/fuse ]] || skip "/dev/fuse missing"
[[ -e /dev/loop-control ]] || skip "/dev/loop-control missing"
csi_require
csi_dev_up
W=$T/work
mkdir -p "$W"
on_exit csi_node_cleanup "$T"

# A node plugin whose triplexd is not registered is not ready.
csi_start n9 --mode node --meta "$TRIPLEX_META" --node-id n9 --state-dir "$T/state9"
csi_py probe_check.py n9 --want FAILED_PRECONDITION || fail "Probe of node n9 (no triplexd) did not fail"
csi_stop n9

csi_start all --mode all --meta "$TRIPLEX_META" --node-id n1 --state-dir "$T/state"
csi_py probe_check.py all --want READY || fail "Probe of node n1 is not ready"
csi_py test_node.py all --ctl "$TPXCTL" --meta "$TRIPLEX_META" --work "$W" \
	--phase before || fail "test_node.py before the restart failed (log: $T/all.log)"

kill -KILL "${CSI_PID[all]}"
wait "${CSI_PID[all]}" 2>/dev/null || true
log "killed the plugin (-9) with everything staged and published"
csi_start all --mode all --meta "$TRIPLEX_META" --node-id n1 --state-dir "$T/state"
csi_py test_node.py all --ctl "$TPXCTL" --meta "$TRIPLEX_META" --work "$W" \
	--phase after || fail "test_node.py after the restart failed (log: $T/all.log)"
csi_stop all
if findmnt -rn -o TARGET | grep -F "$T" >&2; then
	fail "mounts left under $T"
fi
if pgrep -f "nbdfuse .*$T/" >&2; then
	fail "an nbdfuse of this test still runs"
fi
log PASS
