#!/usr/bin/env bash
# The acknowledged-write checker against a daemon killed with SIGKILL in
# the middle of a write load: checker.py write runs (several connections,
# overlapping and sub-4KiB writes, FLUSHes), triplexd is kill -9'd, restarted
# on the same data dir, the checker reconnects and goes on, then
# checker.py verify reads the whole volume back: zero acknowledged writes
# lost.  Then the verifier is shown to fail: one acknowledged block is
# overwritten with garbage, another with an older acknowledged version of
# itself, a third with zeros, and verify must exit non-zero naming them.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_python_nbd

CHECKER=$TPX_ITEST_DIR/checker.py
DURATION=${TPX_CHECKER_DURATION:-40}     # upper bound of the write run
KILL_AFTER_ACKS=${TPX_CHECKER_KILL_ACKS:-3000}
MORE_ACKS=${TPX_CHECKER_MORE_ACKS:-3000} # acks wanted after the restart
BLOCKS=2048                              # 8 MiB of the 16 MiB volume

start_triplexd demo:16M
U=$(uri demo)
WLOG=$T/checker.log

# acks: acknowledged writes in the checker log so far.
acks() {
	local n
	n=$(grep -c "^A " "$WLOG" 2>/dev/null) || true
	echo "${n:-0}"
}
acks_at_least() { (($(acks) >= $1)); }
checker_gone() { ! kill -0 "$CHECKER_PID" 2>/dev/null; }

/usr/bin/python3 "$CHECKER" write --uri "$U" --log "$WLOG" \
	--duration "$DURATION" --max-ops 2000000 --inflight 16 --connections 3 \
	--blocks "$BLOCKS" --sub-block-fraction 0.2 --flush-every 200 \
	--connect-timeout 2 --reconnect-interval 0.1 --op-timeout 10 \
	--seed "${TPX_CHECKER_SEED:-$RANDOM}" \
	>"$T/write.out" 2>"$T/write.err" &
CHECKER_PID=$!
on_exit "kill -TERM $CHECKER_PID"

# Kill once the load is running (bounded wait: the checker log is fsync'd
# every 256 records or 0.2 s).
wait_for "$KILL_AFTER_ACKS acknowledged writes" 30 acks_at_least "$KILL_AFTER_ACKS"
checker_gone && fail "checker exited early: $(cat "$T/write.out" "$T/write.err")"
killed_pid=$SERVER_PID
kill_server
acks_at_kill=$(acks)
log "kill -9 of $TPX_SERVER pid $killed_pid after $acks_at_kill acknowledged writes"
sleep 1
start_server
log "restarted $TPX_SERVER as pid $SERVER_PID on the same data dir"
wait_for "$MORE_ACKS more acknowledged writes after the restart" 30 \
	acks_at_least $((acks_at_kill + MORE_ACKS))
kill -TERM "$CHECKER_PID"
# The checker drains for at most 10 s (--drain-timeout) after SIGTERM.
wait_for "the checker to stop" 30 checker_gone
rc=0
wait "$CHECKER_PID" || rc=$?
cat "$T/write.out" >&2
[[ $rc -eq 0 ]] || fail "checker write exited $rc: $(tail -n 5 "$T/write.err")"

# The run must have seen the crash and survived it.
summary=$(grep '^S ' "$WLOG" | tail -n 1 | cut -c3-)
fig() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$summary" "$1"; }
acked=$(fig acked) failed=$(fig failed) disconnects=$(fig disconnects)
connects=$(fig connects) sub=$(fig sub_block_acked) cross=$(fig cross_conn_overlaps)
((disconnects >= 1)) || fail "the checker saw no disconnect: kill -9 did not hit the load"
((connects >= 4)) || fail "the checker did not reconnect after the restart (connects=$connects)"
((acked >= acks_at_kill + MORE_ACKS)) || fail "acked=$acked, fewer than expected"
((sub > 0 && cross > 0)) || fail "no sub-block writes ($sub) or cross-connection overlaps ($cross)"

# Verify: zero lost.
vrc=0
/usr/bin/python3 "$CHECKER" verify --uri "$U" --log "$WLOG" --timeout 120 \
	>"$T/verify.out" 2>&1 || vrc=$?
cat "$T/verify.out" >&2
[[ $vrc -eq 0 ]] || fail "verify after kill -9 found lost or corrupt writes (exit $vrc)"
grep -q 'lost writes=0 lost segments=0 corrupt segments=0' "$T/verify.out" ||
	fail "verify output lacks the zero-loss figures"

# The verifier can fail: damage three acknowledged blocks on purpose.
TPX_U=$U TPX_LOG=$WLOG TPX_DIR=$TPX_ITEST_DIR /usr/bin/python3 - >"$T/damage.out" <<'PY' ||
import os, sys
sys.path.insert(0, os.environ["TPX_DIR"])
import nbd, checker
writes, _ = checker.parse_log(os.environ["TPX_LOG"], False)
B = checker.BLOCK
full = {}   # block -> acked whole-block writes that cover it, in issue order
for w in writes:
    if w[6] and w[0] % B == 0 and w[1] % B == 0:
        for b in range(w[0] // B, w[1] // B):
            full.setdefault(b, []).append(w)
touch = {}
for w in writes:
    for b in range(w[0] // B, (w[1] - 1) // B + 1):
        touch.setdefault(b, []).append(w)
# Blocks only ever written whole, with >= 2 acked writes and no failed one.
good = [b for b, ws in sorted(full.items())
        if len(ws) >= 2 and len(touch[b]) == len(ws)]
assert len(good) >= 3, "not enough whole-block-only blocks to damage"
stale_b, junk_b, zero_b = good[0], good[len(good) // 2], good[-1]
ws = full[stale_b]
last_iseq = max(w[4] for w in ws)
old = [w for w in ws if w[5] < last_iseq]   # definitely superseded
assert old, "no superseded write on block %d" % stale_b
o = old[0]
h = nbd.NBD()
h.connect_uri(os.environ["TPX_U"])
h.pwrite(checker.content(o[2], o[3], stale_b * B, B), stale_b * B)
h.pwrite(b"junk" * 5, junk_b * B + 1000)
h.pwrite(bytes(B), zero_b * B)
h.flush()
h.shutdown()
print(stale_b, junk_b, zero_b, o[2])
PY
	fail "could not damage the volume"
read -r stale_b junk_b zero_b old_wid <"$T/damage.out"
log "damaged: block $stale_b <- older acked wid $old_wid, block $junk_b <- 20 junk bytes, block $zero_b <- zeros"
vrc=0
/usr/bin/python3 "$CHECKER" verify --uri "$U" --log "$WLOG" --timeout 120 \
	>"$T/verify2.out" 2>&1 || vrc=$?
cat "$T/verify2.out" >&2
[[ $vrc -eq 1 ]] || fail "verify exited $vrc on a damaged volume (want 1)"
grep -q "^LOST: block $stale_b .*wid $old_wid (acked, superseded)" "$T/verify2.out" ||
	fail "verify did not report block $stale_b as holding superseded wid $old_wid"
grep -q "^CORRUPT: block $junk_b " "$T/verify2.out" ||
	fail "verify did not report block $junk_b as corrupt"
grep -q "^LOST: block $zero_b .*zeros (initial content)" "$T/verify2.out" ||
	fail "verify did not report block $zero_b (zeroed) as lost"
# A damaged block may have had two acknowledged writes in flight at once,
# so count segments, not writes.
grep -q 'lost writes=[23] lost segments=2 corrupt segments=1 .*FAILED' "$T/verify2.out" ||
	fail "verify figures on the damaged volume are not 2 lost segments, 1 corrupt"

stop_server
log "figures: acked=$acked failed=$failed (in flight at the kill or refused) disconnects=$disconnects connects=$connects sub-block-acked=$sub cross-conn-overlaps=$cross acked-before-kill=$acks_at_kill; verify: 0 lost; damaged volume: 2 lost + 1 corrupt detected"
log PASS
