#!/usr/bin/env bash
# Online resize (issue 9), grow only: with fio writing and verifying
# through the NBD export, `triplexctl volume resize --wait` grows the
# volume; afterwards a new connection sees the new size, a connection
# opened before keeps the old one (and a read past its end is refused),
# data written across the old end and beyond it reads back, fio's blocks
# verify, a shrink is refused with nothing changed, and all three
# replicas are identical. A replica whose node is down during a second
# resize grows when it returns, catches up, and is identical again.
# Three nodes in namespaces; TPX_META_KIND=etcd for etcd.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"
require_tool fio nbdcopy

MiB=$((1024 * 1024))
OLD=$((16 * MiB))
NEW=$((48 * MiB))
NEWER=$((64 * MiB))

cluster_setup --io-timeout-ms 2000 --write-timeout-ms 10000
cluster_volume_create vol 16M
cluster_attach vol n1
cluster_wait_export vol 1
# --wait reads the export over TCP: from the client namespace.
ctl_client() { ip netns exec "$(netns_name "$CLUSTER_CLIENT")" "$TPXCTL" "$@"; }
export_size() { timeout 10 nbdinfo --size "$(cluster_uri vol "$1")"; }
_size_is() { [[ $(export_size "$1" 2>/dev/null) == "$2" ]]; }

# fio_job NAME OFFSET SIZE RATE: a job file writing every 4 KiB block of
# [OFFSET, OFFSET+SIZE) once in random order with a crc32c verify header,
# RATE writes/s, then reading them all back and checking them.
fio_job() {
	cat >"$T/$1.fio" <<JOB
[global]
ioengine=nbd
uri=$(cluster_uri vol 1)
bs=4k
iodepth=16
rw=randwrite
offset=$2
size=$3
verify=crc32c
verify_fatal=1
verify_dump=0
verify_state_save=0
randrepeat=1

[$1]
rate_iops=0,$4
JOB
}
# fio_run NAME: run NAME's job file, JSON output in $T/NAME.json.
fio_run() { (cd "$T" && exec timeout 300 fio --output-format=json --output="$T/$1.json" "$T/$1.fio"); }

# A connection opened before the resize: it keeps the size it negotiated.
cat >"$T/oldconn.py" <<'PY'
import nbd, os, sys, time
uri, ready, go = sys.argv[1:4]
h = nbd.NBD()
h.connect_uri(uri)
old = h.get_size()
open(ready, "w").close()
for _ in range(1200):
    if os.path.exists(go):
        break
    time.sleep(0.1)
else:
    sys.exit("never told to go on")
h.pread(4096, old - 4096)
h.set_strict_mode(0)     # send it anyway: the server must refuse it
try:
    h.pread(4096, old)
    sys.exit("a read past this connection's size (%d) succeeded" % old)
except nbd.Error as e:
    print("past the end: refused (%s)" % e.string)
print("size %d" % h.get_size())
PY
/usr/bin/python3 "$T/oldconn.py" "$(cluster_uri vol 1)" "$T/old.ready" "$T/old.go" \
	>"$T/oldconn.out" 2>&1 &
OLDCONN_PID=$!
on_exit "kill $OLDCONN_PID"
_old_ready() { [[ -e $T/old.ready ]]; }
netns_wait_for "the old connection" 20 _old_ready

# fio over the whole old size, 800 writes/s (about 5 s of writes), and
# the resize in the middle of it.
fio_job load 0 $OLD 800
fio_run load &
FIO_PID=$!
on_exit "kill -TERM $FIO_PID"
sleep 1.5
t0=$(date +%s%N)
ctl_client volume resize vol --size 48M --wait >"$T/resize.out" 2>&1 || {
	cat "$T/resize.out" >&2
	fail "volume resize --wait failed"
}
resize_ms=$((($(date +%s%N) - t0) / 1000000))
kill -0 "$FIO_PID" 2>/dev/null || fail "fio ended before the resize was served: not under load"
grep -q "served at nbd://$(netns_addr 1):$CLUSTER_NBD_PORT/vol, $NEW bytes" "$T/resize.out" ||
	fail "resize --wait printed: $(cat "$T/resize.out")"
engine_ms=$(sed -n 's/.*volume vol: new connections see [0-9]* bytes (was [0-9]*), grown in \([0-9]*\) ms.*/\1/p' \
	"$(cluster_log 1)" | tail -n 1)
[[ -n $engine_ms ]] || fail "n1 logged no completed resize"
wait "$FIO_PID" || fail "fio under the resize failed: $(grep -m3 -iE 'verify|error' "$T/load.json" || true)"
fio_check "$T/load.json" $OLD $OLD 1
log "resize under fio load: $resize_ms ms from the command to --wait's return, $engine_ms ms in the engine"

# The sizes: the record, a new connection, the old connection.
[[ $(cluster_field vol size) == "$NEW" ]] || fail "record size $(cluster_field vol size), want $NEW"
[[ $(export_size 1) == "$NEW" ]] || fail "a new connection sees $(export_size 1) bytes, want $NEW"
touch "$T/old.go"
wait "$OLDCONN_PID" || fail "the old connection: $(cat "$T/oldconn.out")"
grep -q "^size $OLD$" "$T/oldconn.out" || fail "the old connection: $(cat "$T/oldconn.out")"

# Across the old end and beyond it, through a new connection, verified.
fio_job grown $((OLD - 2 * MiB)) $((NEW - OLD + 2 * MiB)) 0
fio_run grown || fail "fio across the old end failed: $(grep -m3 -iE 'verify|error' "$T/grown.json" || true)"
fio_check "$T/grown.json" $((NEW - OLD + 2 * MiB)) $((NEW - OLD + 2 * MiB)) 1
# The load's blocks below the overlap, again through a new connection.
fio_job load 0 $((OLD - 2 * MiB)) 0
(cd "$T" && timeout 300 fio --output-format=json --output="$T/reverify.json" --verify_only "$T/load.fio") ||
	fail "fio verify of the load after the resize failed"
fio_check "$T/reverify.json" - $((OLD - 2 * MiB)) 1

# Shrinking is refused and changes nothing; the same size is a no-op.
epoch=$(cluster_field vol epoch)
if out=$(ctl volume resize vol --size 16M 2>&1); then
	fail "a shrink succeeded: $out"
fi
grep -q "cannot shrink volume 'vol' from $NEW to $OLD bytes" <<<"$out" || fail "unclear error: $out"
ctl volume resize vol --size 48M >"$T/same.out" 2>&1 || fail "resize to the same size failed: $(cat "$T/same.out")"
grep -q "already $NEW bytes; nothing changed" "$T/same.out" || fail "same size: $(cat "$T/same.out")"
[[ $(cluster_field vol size) == "$NEW" && $(cluster_field vol epoch) == "$epoch" ]] ||
	fail "the refused shrink changed the record"
[[ $(export_size 1) == "$NEW" ]] || fail "the refused shrink changed the export"

cluster_flush vol 1
[[ $(cluster_states vol) == "n1=in_sync n2=in_sync n3=in_sync" ]] ||
	fail "after the resize: $(cluster_states vol)"
for k in 1 2 3; do
	[[ $(stat -c %s "$(cluster_replica_file vol "$k")") == "$NEW" ]] ||
		fail "n$k's replica is $(stat -c %s "$(cluster_replica_file vol "$k")") bytes"
done
cmp_replicas vol 1 2 3

# n3 is down while the volume grows again: the resize goes on without it,
# a write past the old end makes it leave the in-sync set, and when it
# returns its OPEN grows it, it catches up, and all three are identical.
cluster_stop 3
ctl_client volume resize vol --size 64M --wait >"$T/resize2.out" 2>&1 || {
	cat "$T/resize2.out" >&2
	fail "resize with n3 down failed"
}
[[ $(export_size 1) == "$NEWER" ]] || fail "with n3 down, the export is $(export_size 1) bytes"
head -c 4M /dev/urandom >"$T/tail"
nbdsh -u "$(cluster_uri vol 1)" -c "
h.pwrite(open('$T/tail', 'rb').read(), $NEWER - 4 * 1024 * 1024)
h.flush()" || fail "write at the new end failed"
[[ $(stat -c %s "$(cluster_replica_file vol 3)") == "$NEW" ]] ||
	fail "n3's replica changed while n3 was down"
cluster_start_node 3
cluster_wait_state vol n3 in_sync 60
[[ $(stat -c %s "$(cluster_replica_file vol 3)") == "$NEWER" ]] ||
	fail "n3's replica did not grow when it returned"
grep -q "replication: vol grown from $NEW to $NEWER bytes" "$(cluster_log 3)" ||
	fail "n3 did not log its grow"
nbdcopy "$(cluster_uri vol 1)" - | tail -c 4M | cmp -s - "$T/tail" ||
	fail "the data at the new end does not read back"
cluster_flush vol 1
cmp_replicas vol 1 2 3
log "n3, down during the resize to 64M, grew on its return and caught up"

cluster_stop_all
log PASS
