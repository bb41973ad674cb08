#!/usr/bin/env bash
# ext4 on the export (nbdfuse file -> loop device): mkfs, mount, write files
# with known checksums, umount, e2fsck -fn is clean; then detach everything,
# attach again through a fresh nbdfuse + loop, mount, checksums still equal.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_root
require_tool nbdfuse fusermount3 losetup mkfs.ext4 e2fsck mount umount
[[ -e /dev/fuse ]] || skip "/dev/fuse missing"
[[ -e /dev/loop-control ]] || skip "/dev/loop-control missing"

start_triplexd demo:256M
FUSE_DIR=$T/fuse
MNT=$T/mnt
mkdir -p "$FUSE_DIR" "$MNT"
FUSE_PID=
LOOP=

attach() {
	rm -f "$T/fuse.pid"
	nbdfuse -P "$T/fuse.pid" "$FUSE_DIR/disk" "$(uri demo)" >>"$T/nbdfuse.log" 2>&1 &
	FUSE_PID=$!
	wait_for "nbdfuse ready" 30 test -s "$T/fuse.pid"
	[[ -f $FUSE_DIR/disk ]] || fail "nbdfuse did not expose $FUSE_DIR/disk"
	LOOP=$(losetup --find --show "$FUSE_DIR/disk") || fail "losetup failed"
}

detach() {
	if mountpoint -q "$MNT"; then umount "$MNT" || fail "umount failed"; fi
	if [[ -n $LOOP ]]; then
		losetup -d "$LOOP" || fail "losetup -d $LOOP failed"
		LOOP=
	fi
	if [[ -n $FUSE_PID ]]; then
		fusermount3 -u "$FUSE_DIR" || fail "fusermount3 -u failed"
		local i
		for ((i = 0; i < 100; i++)); do
			kill -0 "$FUSE_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$FUSE_PID" 2>/dev/null && kill -KILL "$FUSE_PID"
		wait "$FUSE_PID" 2>/dev/null || true
		FUSE_PID=
	fi
}

# Cleanup even on failure, before the daemon is stopped.
ext4_cleanup() {
	if mountpoint -q "$MNT"; then umount "$MNT" || umount -l "$MNT"; fi
	if [[ -n $LOOP ]]; then losetup -d "$LOOP"; fi
	if [[ -n $FUSE_PID ]]; then
		fusermount3 -u "$FUSE_DIR" || fusermount3 -uz "$FUSE_DIR"
		kill "$FUSE_PID"
	fi
	return 0
}
on_exit ext4_cleanup

attach
mkfs.ext4 -q -F -E nodiscard "$LOOP" >"$T/mkfs.log" 2>&1 ||
	fail "mkfs.ext4 failed: $(cat "$T/mkfs.log")"
mount -t ext4 "$LOOP" "$MNT" || fail "mount failed"
mkdir -p "$MNT/dir/sub"
dd if=/dev/urandom of="$MNT/big" bs=1M count=24 status=none
for i in $(seq 1 40); do
	dd if=/dev/urandom of="$MNT/dir/f$i" bs=$((i * 1531)) count=1 status=none
done
for i in 1 2 3; do
	head -c $((i * 100000 + 7)) /dev/urandom >"$MNT/dir/sub/odd$i"
done
(cd "$MNT" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$T/sums"
[[ $(wc -l <"$T/sums") -eq 44 ]] || fail "expected 44 files, wrote $(wc -l <"$T/sums")"
# Delete one file so the filesystem issues discards/zeroes on fstrim.
rm "$MNT/dir/f7"
sed -i '/\.\/dir\/f7$/d' "$T/sums"
fstrim "$MNT" 2>/dev/null || log "fstrim not supported here (ignored)"
umount "$MNT"
e2fsck -fn "$LOOP" >"$T/fsck.log" 2>&1 || fail "e2fsck -fn not clean: $(tail -5 "$T/fsck.log")"
detach

# Fresh attach: the data must come from the server, not a cache.
attach
e2fsck -fn "$LOOP" >"$T/fsck2.log" 2>&1 || fail "e2fsck after re-attach not clean"
mount -t ext4 "$LOOP" "$MNT" || fail "mount after re-attach failed"
(cd "$MNT" && sha256sum --quiet -c "$T/sums") >"$T/check.log" 2>&1 ||
	fail "checksums differ after re-attach: $(head -5 "$T/check.log")"
[[ ! -e $MNT/dir/f7 ]] || fail "deleted file is back"
detach
stop_server
log PASS
