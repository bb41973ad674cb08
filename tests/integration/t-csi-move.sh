#!/usr/bin/env bash
# A volume moved through triplex-csi the way Kubernetes moves a pod's
# volume after its node died (tests/csi/test_move.py): created in zone-a,
# published to n1, staged and published by n1's node plugin, files
# written; n1's triplexd and node plugin killed (-9); ControllerUnpublish
# from n1, ControllerPublish to n2 (epoch + 2), staged and published by
# n2's node plugin: the files are there, a new one is written, a write
# through n1's leftover mount is not acknowledged; n1's triplexd
# restarted: it does not serve the volume and a write sent to it is not
# acknowledged; a new plugin on n1 unpublishes and unstages what the dead
# one had. On a dev-up cluster on loopback (SQLite; TPX_META_KIND=etcd:
# a three-member etcd).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/csi/csi.sh
. "$TPX_SRC/tests/csi/csi.sh"
require_root
require_tool nbdfuse fusermount3 losetup blkid mkfs.ext4 resize2fs findmnt nbdsh
[[ -e /dev/fuse ]] || skip "/dev/fuse missing"
[[ -e /dev/loop-control ]] || skip "/dev/loop-control missing"
csi_require
csi_dev_up
W=$T/work
mkdir -p "$W"
on_exit csi_node_cleanup "$T"

csi_start ctl --mode controller --meta "$TRIPLEX_META"
csi_start a --mode node --meta "$TRIPLEX_META" --node-id n1 --state-dir "$T/state-a"
csi_start b --mode node --meta "$TRIPLEX_META" --node-id n2 --state-dir "$T/state-b"
move() {
	csi_py test_move.py ctl --ctl "$TPXCTL" --meta "$TRIPLEX_META" --work "$W" "$@"
}
move --node-a "unix://$T/a.sock" --phase a || fail "phase a failed"

# n1 dies: its triplexd and its node plugin.
n1() { /usr/bin/python3 -c "import json; n = json.load(open('$T/dev/cluster.json'))['nodes'][0]; print(n['$1'])"; }
N1_PID=$(n1 pid)
kill -KILL "$N1_PID" "${CSI_PID[a]}"
log "killed n1's triplexd (pid $N1_PID) and its node plugin (pid ${CSI_PID[a]})"
move --node-b "unix://$T/b.sock" --phase b || fail "phase b failed"

# n1 comes back (the same command line as dev up's).
"$TPXD" --data-dir "$(n1 data_dir)" --node-id n1 --zone zone-a --meta "$TRIPLEX_META" \
	--listen-repl "$(n1 repl)" --listen-tcp "$(n1 nbd_tcp)" --listen-unix "$(n1 nbd_unix)" \
	--listen-http "$(n1 http)" --node-cert "$T/dev/tls/n1.crt" --node-key "$T/dev/tls/n1.key" \
	--cluster-ca "$T/dev/tls/ca.crt" >>"$(n1 data_dir)/triplexd.log" 2>&1 &
N1_NEW=$!
on_exit "kill -TERM $N1_NEW"
_n1_up() { ctl node list --json | grep -q '"id": *"n1"'; }
wait_for "n1 registered again" 30 _n1_up
csi_start a2 --mode node --meta "$TRIPLEX_META" --node-id n1 --state-dir "$T/state-a"
move --node-a "unix://$T/a2.sock" --node-b "unix://$T/b.sock" --phase c || fail "phase c failed"
csi_stop a2
csi_stop b
csi_stop ctl
kill -TERM "$N1_NEW"
if findmnt -rn -o TARGET | grep -F "$T" >&2; then
	fail "mounts left under $T"
fi
# The dead node's nbdfuse (its server gone) was stopped by the unstage.
if pgrep -f "nbdfuse .*$T/" >&2; then
	fail "an nbdfuse of this test still runs"
fi
log PASS
