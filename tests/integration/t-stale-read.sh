#!/usr/bin/env bash
# No stale reads across a takeover (issue 9, rule (a)); etcd only, since n1
# must be cut off from the metadata store as well as from the replicas.
# vol (failover auto) is served by n1, block 0 holds "OLDOLDOL". A reader
# on n1's host reads block 0 through n1's Unix socket every 20 ms. n1's
# namespace is cut off (iptables: no replica, no etcd member with a
# quorum), so its agent never learns what happens next. n2 takes vol over
# once n1's lease has expired and writes "NEWNEWNE" to block 0. Every read
# that n1 answered started before that write was acknowledged: n1 stopped
# answering within its read lease (--read-lease-ms, 1 s here) of the cut,
# since it no longer holds a lease from a majority of the replicas: no
# read that started a lease after the cut was answered. After the heal n1 is
# fenced, catches up, and the three replicas are identical.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
[[ ${TPX_META_KIND:-sqlite} == etcd ]] ||
	skip "needs a metadata store that n1 can be cut off from (TPX_META_KIND=etcd)"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

CLUSTER_FAILOVER=auto
LEASE_MS=${TPX_READ_LEASE_MS:-1000}
cluster_setup --io-timeout-ms 2000 --write-timeout-ms 3000 --read-lease-ms "$LEASE_MS"
cluster_volume_create vol 16M
cluster_attach vol n1
cluster_wait_export vol 1
mono() { /usr/bin/python3 -c 'import time; print("%.4f" % time.monotonic())'; }
# put_tag K TAG: write TAG (8 bytes) repeated over block 0 through node K.
put_tag() {
	nbdsh -u "$(cluster_uri vol "$1")" -c "h.pwrite(b'$2' * 512, 0); h.flush()"
}
put_tag 1 OLDOLDOL || fail "writing block 0 through n1 failed"

/usr/bin/python3 "$TPX_ITEST_DIR/lease_reader.py" --uri "$(cluster_uri vol 1)" \
	--duration 60 --out "$T/reads" 2>"$T/reader.err" &
reader=$!
on_exit "kill $reader"
_reading() { grep -q " ok OLDOLDOL" "$T/reads" 2>/dev/null; }
wait_for "n1 to answer reads" 10 _reading

t_cut=$(mono)
netns_partition 1
t_cut_done=$(mono)  # the cut happened between t_cut and this
_taken() { local a; a=$(cluster_field vol attached 2>/dev/null) || return 1; [[ -n $a && $a != n1 ]]; }
netns_wait_for "another node to take vol over" 60 _taken
k=$(cluster_field vol attached | sed 's/^n//')
cluster_wait_export vol "$k" 30
put_tag "$k" NEWNEWNE || fail "writing block 0 through n$k failed"
t_ack=$(mono)
sleep 3
kill "$reader" 2>/dev/null || true
wait "$reader" 2>/dev/null || true

# The fault landed: n1 was answering until the cut.
last_ok=$(awk '$3 == "ok" { e = $2 } END { print e + 0 }' "$T/reads")
answered_after_cut=$(awk -v c="$t_cut" '$3 == "ok" && $1 > c' "$T/reads" | wc -l)
stale=$(awk -v t="$t_ack" '$3 == "ok" && $2 > t' "$T/reads" | wc -l)
((stale == 0)) || fail "n1 answered $stale reads after n$k acknowledged a write: $(awk -v t="$t_ack" '$3 == "ok" && $2 > t' "$T/reads" | head -n 3)"
# n1's last lease was asked before the cut, so it ran out less than
# LEASE_MS after it: a read that started later must not have been answered.
late=$(awk -v c="$t_cut_done" -v l="$LEASE_MS" '$3 == "ok" && $1 > c + l / 1000' "$T/reads" | wc -l)
((late == 0)) || fail "n1 answered $late reads that started more than its ${LEASE_MS} ms read lease after the cut"
grep -q "no read lease from a majority" "$(cluster_log 1)" ||
	fail "n1's log does not say it lost its read lease"
stop_ms=$(awk -v a="$t_cut" -v b="$last_ok" 'BEGIN { printf "%d", (b - a) * 1000 }')
gap_ms=$(awk -v a="$last_ok" -v b="$t_ack" 'BEGIN { printf "%d", (b - a) * 1000 }')
log "n1 answered its last read ${stop_ms} ms after the cut ($answered_after_cut reads after it), ${gap_ms} ms before n$k acknowledged its first write"

netns_heal 1
cluster_wait_state vol n1 in_sync 60
nbdsh -u "$(cluster_uri vol "$k")" -c 'assert h.pread(8, 0) == b"NEWNEWNE"' ||
	fail "block 0 does not hold the new engine's write"
cluster_flush vol "$k"
cmp_replicas vol 1 2 3
cluster_stop_all
log "figures: read lease ${LEASE_MS} ms; last read answered by the cut-off engine ${stop_ms} ms after the cut, first write by the new engine ${gap_ms} ms after that; 0 stale reads"
log PASS
