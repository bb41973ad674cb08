#!/usr/bin/env bash
# Engine failover (invariants 3 and 4): write load through n1, kill -9 n1
# mid-load, attach the volume to n2 (new epoch). n2 reconciles the regions
# that may have had writes in flight before it serves; afterwards n2 and n3
# hold identical bytes and no acknowledged write is lost. n1 comes back,
# is caught up, and all three replicas are identical.
. "$(dirname "$0")/lib.sh"
require_triplexd "engine failover"
require_python_nbd

D=$T/dev
CHECKER=$TPX_SRC/tests/integration/checker.py
on_exit "'$TPXCTL' dev down --dir '$D'"
ctl dev up --dir "$D" --size 32M >"$T/up.out" 2>&1 || { cat "$T/up.out" >&2; fail "dev up failed"; }
export TRIPLEX_META="sqlite:$D/meta.db"
json() { /usr/bin/python3 -c "import json; d=json.load(open('$D/cluster.json')); print($1)"; }
node() { json "[n['$2'] for n in d['nodes'] if n['id']=='$1'][0]"; }
volume_field() {
	ctl volume show demo --json | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)$1)"
}
uri1="nbd+unix:///demo?socket=$(node n1 nbd_unix)"
uri2="nbd+unix:///demo?socket=$(node n2 nbd_unix)"
n1=$(node n1 pid)
cmd1="$(readlink "/proc/$n1/exe") $(tr '\0' ' ' <"/proc/$n1/cmdline" | cut -d' ' -f2-)"

/usr/bin/python3 "$CHECKER" write --uri "$uri1" --log "$T/w.log" --duration 20 \
	--max-ops 200000 --inflight 16 --blocks 4096 --sub-block-fraction 0.1 \
	--connect-timeout 1 --op-timeout 5 >"$T/write.out" 2>&1 &
CHK=$!
on_exit "kill -TERM $CHK"
sleep 2
kill -9 "$n1"
log "n1 (engine) killed during the write load"
ctl volume attach demo --node n2 >/dev/null || fail "attach to n2 failed"
ready2() { nbdinfo --size "$uri2" >/dev/null 2>&1; }
wait_for "n2 to serve demo" 30 ready2
kill -TERM "$CHK"
wait "$CHK" || true
cat "$T/write.out" >&2
grep -q "reconcil" "$D/n2/triplexd.log" || fail "n2 served without reconciling"
grep -E "reconcil" "$D/n2/triplexd.log" | tail -n 3 >&2
[[ $(volume_field '["epoch"]') -ge 2 ]] || fail "attach did not bump the epoch"

# Nothing acknowledged is lost; n2 and n3 agree byte for byte.
/usr/bin/python3 "$CHECKER" verify --uri "$uri2" --log "$T/w.log" >"$T/verify.out" 2>&1 ||
	{ cat "$T/verify.out" >&2; fail "acknowledged writes lost after failover"; }
cat "$T/verify.out" >&2
nbdsh -u "$uri2" -c 'h.flush()'
cmp "$D/n2/replicas/demo/data" "$D/n3/replicas/demo/data" ||
	fail "in-sync replicas n2 and n3 differ after failover"

# n1 returns: caught up, then all three agree.
# shellcheck disable=SC2086
(cd / && exec $cmd1 >>"$D/n1/triplexd.log" 2>&1) &
on_exit "kill -TERM $!"
all_in_sync() {
	volume_field '["placement"]' | grep -vq out_of_sync
}
wait_for "n1 back in sync" 60 all_in_sync
nbdsh -u "$uri2" -c 'h.flush()'
cmp "$D/n1/replicas/demo/data" "$D/n2/replicas/demo/data" ||
	fail "n1 differs from n2 after catching up"
log PASS
