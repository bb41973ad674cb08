#!/usr/bin/env bash
# Fault: one replica's filesystem fills up (ENOSPC). n3's replicas live on
# a small loop-mounted ext4 that a ballast file fills; writes through n1
# keep being acknowledged, n3 leaves the in-sync set, and what was written
# reads back. The ballast goes, n3 catches up, and all three replicas end
# byte-identical. A catch-up tried while the filesystem is still full
# fails instead of skipping blocks n3 never stored.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"
require_root
require_tool mkfs.ext4 losetup mount umount fallocate

img=$T/small.img
mnt=$T/n3/replicas
truncate -s 48M "$img"
mkfs.ext4 -q -F "$img" || fail "mkfs.ext4 failed"
mkdir -p "$mnt"
mount -o loop "$img" "$mnt" || skip "cannot loop-mount a filesystem here"
on_exit "umount -l '$mnt'"

cluster_setup --io-timeout-ms 2000 --write-timeout-ms 10000
cluster_volume_create vol 32M
cluster_attach vol n1
cluster_wait_export vol 1

avail=$(df --output=avail -B1 "$mnt" | tail -n 1)
fallocate -l $((avail - (2 << 20))) "$mnt/ballast" || fail "cannot place the ballast"
log "n3's filesystem: $(df -h --output=avail "$mnt" | tail -n 1 | tr -d ' ') left"

head -c 16M /dev/urandom >"$T/in"
nbdcopy --flush "$T/in" "$(cluster_uri vol 1)" || fail "writes failed while n3's disk was full"
cluster_wait_state vol n3 out_of_sync 20
grep -q "No space left on device\|left the in-sync set" "$(cluster_log 1)" "$(cluster_log 3)" ||
	fail "no sign of ENOSPC in the logs"
nbdcopy "$(cluster_uri vol 1)" "$T/out" || fail "read back failed"
cmp -n $((16 << 20)) "$T/in" "$T/out" || fail "data read back differs"
cluster_flush vol 1
cmp "$(cluster_replica_file vol 1)" "$(cluster_replica_file vol 2)" ||
	fail "in-sync replicas n1 and n2 differ"
log "16 MiB acknowledged with n3 full; n3 out of sync: $(cluster_states vol)"

# While the filesystem stays full the catch-up must fail, not report n3
# in sync: a failed write leaves n3's checksums describing what is on its
# disk, so a resync cannot skip a block n3 does not hold.
_resync_failed() { grep -q "resync of n3 stopped.*No space left" "$(cluster_log 1)"; }
wait_for "a catch-up of n3 to fail with ENOSPC" 20 _resync_failed
[[ $(cluster_state vol n3) == out_of_sync ]] ||
	fail "n3 is $(cluster_state vol n3) while its filesystem is full"

# Free the space with n3 running: it catches up by itself.
rm -f "$mnt/ballast"
cluster_wait_state vol n3 in_sync 60
cluster_flush vol 1
cmp_replicas vol 1 2 3
log "space freed: n3 caught up; $(cluster_states vol)"
log PASS
