#!/usr/bin/env bash
# Fault: partition the engine's node, attach the volume elsewhere, heal
# (invariant 3, fencing).  Volume vol (3 replicas, min_replicas 2) attached
# to n1; checker.py writes to n1 over TCP from a client namespace.  n1 is
# partitioned (iptables DROP) and vol is attached to n2, which bumps the
# epoch; n2 starts serving and takes writes (checker.py, same log
# continued).  The old engine on n1 keeps running and keeps its export.
# A client on n1's host still reaches it through n1's Unix socket (Unix
# sockets are not network-namespaced): every write it sends after the
# attach, while n1 is partitioned and after the heal, must fail (n1's
# engine cannot drop the unreachable replicas: the metadata store's epoch
# no longer matches; once healed the replicas refuse its epoch with
# ESTALE).  Those writes go to blocks nobody else writes: after the run
# they read as zeros through n2 and are zeros in n2's and n3's replica
# files.  checker.py verify through n2 finds every write acknowledged by
# n1 before the partition and by n2 after the attach; after a FLUSH, the
# in-sync set (n2, n3, and n1 if catch-up brought it back) is identical.
# Note: the metadata store is a shared SQLite file, so the partitioned n1
# still reaches it (with etcd across hosts it would not); its epoch check
# is what fences n1 there.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"
require_tool nbdsh

IO_MS=3000
cluster_setup --io-timeout-ms "$IO_MS" --write-timeout-ms 4000
cluster_volume_create vol 16M
cluster_attach vol n1
cluster_wait_export vol 1
epoch1=$(cluster_field vol epoch)

# The checker writes blocks [0, 2048); the probes write blocks from 3000.
WLOG=$T/checker.log
CHK=(--blocks 2048 --inflight 16 --connections 2 --sub-block-fraction 0.1
	--flush-every 200 --op-timeout 3 --connect-timeout 2 --drain-timeout 10)
netns_bg "$CLUSTER_CLIENT" /usr/bin/python3 "$CHECKER" write \
	--uri "$(cluster_tcp_uri vol 1)" --log "$WLOG" --duration 60 "${CHK[@]}" \
	--seed "${TPX_CHECKER_SEED:-$RANDOM}" >"$T/write1.out" 2>"$T/write1.err"
CHECKER_PID=$NETNS_BG_PID
on_exit "kill -TERM $CHECKER_PID"
wait_acks "$WLOG" 3000 30

netns_partition 1
t_part=$(date +%s%N)
cluster_attach vol n2
t_attach=$(date +%s%N)
attach_ms=$(((t_attach - t_part) / 1000000))
# The attach must come before n1's engine times out on n2 and n3 (it
# could still drop one of them then, the metadata file being reachable).
((attach_ms < IO_MS)) || fail "the attach took ${attach_ms} ms after the partition, not under the ${IO_MS} ms I/O timeout: the test cannot tell what it wants"
states_at_attach=$(cluster_states vol)
[[ $states_at_attach == "n1=in_sync n2=in_sync n3=in_sync" ]] ||
	fail "a replica left the in-sync set before the attach: $states_at_attach"
epoch2=$(cluster_field vol epoch)
((epoch2 > epoch1)) || fail "attach to n2 did not bump the epoch ($epoch1 -> $epoch2)"
log "fault: n1 partitioned; vol attached to n2, epoch $epoch1 -> $epoch2"
checker_stop "$CHECKER_PID"
cat "$T/write1.out" >&2
acked1=$(log_acks "$WLOG")

# probe K N SECS: from the root namespace, through n1's Unix socket, write
# N probe blocks (pattern byte 0xE0+K) one after the other, each bounded
# by the client-side SECS; prints one line per write: "ms errno|ACKED".
export PROBE_BASE=$((3000 * 4096))
# Once the old engine has noticed the new attach it no longer offers the
# export at all: a connection refused at the handshake prints NOEXPORT.
probe() {
	local out rc=0
	out=$(_probe "$@" 2>&1) || rc=$?
	if [[ $rc -ne 0 && $out == *"has no export named"* ]]; then
		echo "0 NOEXPORT"
		return 0
	fi
	printf '%s\n' "$out"
	return "$rc"
}
_probe() {
	PROBE_K=$1 PROBE_N=$2 PROBE_SECS=$3 nbdsh -u "$(cluster_uri vol 1)" -c - <<'PY'
import os, time
k, n, secs = int(os.environ["PROBE_K"]), int(os.environ["PROBE_N"]), float(os.environ["PROBE_SECS"])
base = int(os.environ["PROBE_BASE"])
for i in range(n):
    off = base + (k * 64 + i) * 4096
    t0 = time.monotonic()
    try:
        c = h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray([0xE0 + k]) * 4096), off)
        while not h.aio_command_completed(c):
            if time.monotonic() - t0 > secs:
                raise TimeoutError
            h.poll(100)
        print("%d ACKED" % ((time.monotonic() - t0) * 1000), flush=True)
    except TimeoutError:
        print("%d NOREPLY" % ((time.monotonic() - t0) * 1000), flush=True)
        break
    except nbd.Error as e:
        print("%d %s" % ((time.monotonic() - t0) * 1000, e.errno), flush=True)
PY
}
# check_probe FILE WHAT: every probe write failed with an error.
check_probe() {
	local ms res n=0
	while read -r ms res; do
		n=$((n + 1))
		[[ $res != ACKED ]] || fail "$2: write $n to the fenced old engine on n1 was ACKNOWLEDGED (after $ms ms)"
		[[ $res != NOREPLY ]] || fail "$2: write $n to n1 got no reply within the probe's bound ($ms ms)"
		[[ $res == EIO || $res == ESTALE || $res == NOEXPORT ]] ||
			fail "$2: write $n failed with $res, want EIO, ESTALE, or no export"
	done <"$1"
	((n >= 1)) || fail "$2: no probe result"
	probe_n=$((probe_n + n))
}
probe_n=0

# While n1 is partitioned: the old engine cannot get a write acknowledged.
probe 1 3 15 >"$T/probe1.out" 2>&1 || fail "probe 1 failed: $(tail -n 3 "$T/probe1.out")"
cat "$T/probe1.out" >&2
check_probe "$T/probe1.out" "n1 partitioned, after the attach"

# n2 serves; the checker goes on through n2 (same log: one history).
cluster_wait_export vol 2 20
t_serve_ms=$((($(date +%s%N) - t_attach) / 1000000))
netns_bg "$CLUSTER_CLIENT" /usr/bin/python3 "$CHECKER" write --append \
	--uri "$(cluster_tcp_uri vol 2)" --log "$WLOG" --duration 60 "${CHK[@]}" \
	--seed "${TPX_CHECKER_SEED:-$RANDOM}" >"$T/write2.out" 2>"$T/write2.err"
CHECKER_PID=$NETNS_BG_PID
on_exit "kill -TERM $CHECKER_PID"
wait_acks "$WLOG" $((acked1 + 3000)) 30

# Heal n1 while n2 takes writes; n1's engine is fenced by the replicas.
netns_heal 1
log "n1 healed"
sleep 1
probe 2 10 15 >"$T/probe2.out" 2>&1 || fail "probe 2 failed: $(tail -n 3 "$T/probe2.out")"
cat "$T/probe2.out" >&2
check_probe "$T/probe2.out" "n1 healed, after the attach"
acked_mid=$(log_acks "$WLOG")
wait_acks "$WLOG" $((acked_mid + 2000)) 30
# n1's replica left the in-sync set at the attach (unreachable); healed,
# it catches up from n2's engine.
cluster_wait_state vol n1 in_sync 30
checker_stop "$CHECKER_PID"
cat "$T/write2.out" >&2
acked=$(log_acks "$WLOG")
acked2=$((acked - acked1))
grep -qE "fenced|no longer served here" "$(cluster_log 1)" || fail "n1's log never says its engine was fenced"
fenced_lines=$(grep -cE "fenced|no longer served here" "$(cluster_log 1)") || true
states=$(cluster_states vol)
[[ $(cluster_state vol n2) == in_sync && $(cluster_state vol n3) == in_sync ]] ||
	fail "n2 and n3 must be in sync: $states"
[[ $(cluster_field vol attached) == n2 ]] || fail "vol is not attached to n2"

# Nothing acknowledged is lost: by n1 before the partition, by n2 after.
cluster_flush vol 2
vrc=0
netns_exec "$CLUSTER_CLIENT" /usr/bin/python3 "$CHECKER" verify \
	--uri "$(cluster_tcp_uri vol 2)" --log "$WLOG" --unknown-until-end \
	--timeout 60 >"$T/verify.out" 2>&1 || vrc=$?
cat "$T/verify.out" >&2
((vrc == 0)) || fail "checker verify through n2 found lost or corrupt writes (exit $vrc)"

# The fenced writes landed nowhere in the new in-sync set.
nbdsh -u "$(cluster_uri vol 2)" -c - <<'PY' || fail "probe blocks through n2 are not zeros: a fenced write landed"
import os
base = int(os.environ["PROBE_BASE"])
data = h.pread(256 * 4096, base)
assert data == bytes(len(data)), "non-zero bytes in the probe blocks"
PY
for k in 2 3; do
	cmp -n $((256 * 4096)) -i "$PROBE_BASE:0" "$(cluster_replica_file vol "$k")" /dev/zero ||
		fail "n$k's replica holds bytes of a write sent to the fenced engine on n1"
done
cmp_in_sync vol 3

cluster_stop_all
log "figures: writes acked=$acked (n1 before the partition $acked1, n2 after the attach $acked2), checker failures: $(checker_fig "$WLOG" failed) (last run); faults: 2 (partition n1, attach on n2 = epoch $epoch1 -> $epoch2 ${attach_ms} ms after the partition, then heal); n2 served $t_serve_ms ms after the attach; writes sent to the old engine after the attach: $probe_n, acknowledged: 0 (n1 logged 'fenced' $fenced_lines times); states: $states; verify through n2: 0 lost; in-sync replicas identical (cmp: $CMP_IN_SYNC); probe blocks zero on n2, n3"
log PASS
