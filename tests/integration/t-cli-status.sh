#!/usr/bin/env bash
# triplexctl status, health detail, volume list, volume show and node list
# on a three-node cluster (cluster.sh): HEALTH_OK with every node up and
# the volume healthy; HEALTH_WARN once n3 is killed and its replica has
# gone out of sync (n3 listed down, the volume degraded); HEALTH_ERR once
# n2 is killed too (the volume below min_replicas: faulted).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

# A short lease: a killed node's record is gone 2 s later.
cluster_setup --io-timeout-ms 1000 --write-timeout-ms 3000 --lease-ttl 2
cluster_volume_create vol 32M
cluster_attach vol n1
cluster_wait_export vol 1

# expect_out DESC FILE PATTERN...: FILE matches every extended regex.
expect_out() {
	local desc=$1 file=$2 p
	shift 2
	for p in "$@"; do
		grep -Eq -- "$p" "$file" || fail "$desc: no /$p/ in: $(cat "$file")"
	done
}
run() { # run OUT CMD...: CMD's stdout to $T/OUT, exit status 0 required
	local out=$1
	shift
	ctl "$@" >"$T/$out" 2>"$T/$out.err" || fail "triplexctl $* failed: $(cat "$T/$out.err")"
}
json_get() { # json_get FILE PYEXPR (of j)
	/usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# --- all well --------------------------------------------------------
run st status
expect_out "status, all up" "$T/st" '^  health: +HEALTH_OK$' '3: 3 up, 0 down' \
	'up: +n1 \(zone-a\), n2 \(zone-b\), n3 \(zone-c\)' 'volumes: +1: 1 healthy'
run stj status --json
[[ $(json_get "$T/stj" 'j["health"]') == HEALTH_OK ]] || fail "status --json: $(cat "$T/stj")"
[[ $(json_get "$T/stj" 'len(j["checks"])') == 0 ]] || fail "status --json has checks: $(cat "$T/stj")"
# --watch: a screen per interval, --count of them, a dated rule each.
t0=$SECONDS
run stw status --watch --interval 1 --count 3
(($(grep -c '^--- .*, every 1s' "$T/stw") == 3)) || fail "status --watch: $(cat "$T/stw")"
(($(grep -Ec '^  health: +HEALTH_OK$' "$T/stw") == 3)) || fail "status --watch: $(cat "$T/stw")"
((SECONDS - t0 >= 2)) || fail "status --watch --count 3 took $((SECONDS - t0)) s, not 2 intervals"
ctl status --count 2 >/dev/null 2>"$T/stw.err" && fail "status --count without --watch accepted"
grep -q 'go with --watch' "$T/stw.err" || fail "status --count alone: $(cat "$T/stw.err")"
run hd health detail
expect_out "health detail, all up" "$T/hd" '^HEALTH_OK: 0 problem'
run vl volume list
expect_out "volume list, all up" "$T/vl" '^NAME +STATE ' '^vol +healthy +32 MiB +3/2 .* n1 '
run vs volume show vol
expect_out "volume show, all up" "$T/vs" '^volume vol$' 'state: +healthy' \
	'size: +32 MiB \(33554432 bytes\)' 'policy: +3 replicas, min 2 in sync.*failover manual' \
	'epoch: +[1-9]' "served by: +n1" "nbd: +nbd://$(netns_addr 1):$CLUSTER_NBD_PORT/vol" \
	'^  n1 +zone-a +up +in sync$' '^  n2 +zone-b +up +in sync$' '^  n3 +zone-c +up +in sync$'
run nl node list
expect_out "node list, all up" "$T/nl" '^n1 +up +zone-a ' '^n2 +up +zone-b ' '^n3 +up +zone-c '
log "ok: HEALTH_OK, vol healthy, 3 nodes up"

# --- n3 killed, its replica out of sync -------------------------------
cluster_kill 3
head -c 1M /dev/urandom >"$T/data"
timeout 30 nbdcopy "$T/data" "$(cluster_uri vol 1)" || fail "a write with n3 down failed"
cluster_wait_state vol n3 out_of_sync 15
_n3_down() { ctl node list 2>/dev/null | grep -Eq '^n3 +down +zone-c'; }
wait_for "n3 listed down" 15 _n3_down
run st status
expect_out "status, n3 down" "$T/st" '^  health: +HEALTH_WARN$' \
	'1 node\(s\) down: n3$' '1 replica\(s\) out of sync: vol on n3$' \
	'3: 2 up, 1 down' 'down: n3 \(zone-c\)' 'volumes: +1: 1 degraded'
run stj status --json
[[ $(json_get "$T/stj" 'j["health"]') == HEALTH_WARN ]] || fail "status --json: $(cat "$T/stj")"
[[ $(json_get "$T/stj" 'sorted(c["code"] for c in j["checks"])') == "['NODE_DOWN', 'REPLICA_OUT_OF_SYNC']" ]] ||
	fail "status --json checks: $(cat "$T/stj")"
[[ $(json_get "$T/stj" '[n["state"] for n in j["nodes"] if n["id"] == "n3"][0]') == down ]] ||
	fail "status --json: n3 not down: $(cat "$T/stj")"
[[ $(json_get "$T/stj" 'j["volumes"][0]["state"]') == degraded ]] || fail "status --json: vol not degraded"
run hd health detail
expect_out "health detail, n3 down" "$T/hd" '^HEALTH_WARN: 2 problem' \
	'^HEALTH_WARN NODE_DOWN node=n3$' '^HEALTH_WARN REPLICA_OUT_OF_SYNC volume=vol node=n3$' \
	'replica of vol on n3 \(zone-c\): out of sync, node down' '^    do: start n3 again'
run hdj health detail --json
[[ $(json_get "$T/hdj" '[c["volume"] for c in j["checks"] if c["code"] == "REPLICA_OUT_OF_SYNC"][0]') == vol ]] ||
	fail "health detail --json: $(cat "$T/hdj")"
run vl volume list
expect_out "volume list, n3 down" "$T/vl" '^vol +degraded .* n3:out_of_sync\(down\)'
run vs volume show vol
expect_out "volume show, n3 down" "$T/vs" 'state: +degraded' '^  n3 +zone-c +down +out of sync, node down$' \
	'\(2 now on live nodes\)'
run nl node list
expect_out "node list, n3 down" "$T/nl" '^n1 +up ' '^n2 +up ' '^n3 +down +zone-c +\(since about [0-9-]+ [0-9:]+, last heard ([0-9]+m )?[0-9]+s ago; 1 replica'
# Scripts' forms keep their shape: volume show --json is the record.
[[ $(cluster_state vol n3) == out_of_sync ]] || fail "volume show --json changed"
log "ok: HEALTH_WARN (n3 down, its replica out of sync), vol degraded"

# --- n2 killed too: below min_replicas ---------------------------------
cluster_kill 2
_n2_down() { ctl node list 2>/dev/null | grep -Eq '^n2 +down '; }
wait_for "n2 listed down" 15 _n2_down
run st status
expect_out "status, n2 and n3 down" "$T/st" '^  health: +HEALTH_ERR$' \
	'volume\(s\) below min_replicas: writes blocked: vol' 'volumes: +1: 1 faulted'
run vl volume list
expect_out "volume list, n2 and n3 down" "$T/vl" '^vol +faulted '
log "ok: HEALTH_ERR (vol below min_replicas), vol faulted"

# A scrub of a volume that is not attached fails at once, in one line.
run det volume detach vol
run vl volume list
rc=0
timeout 10 "$TPXCTL" volume scrub vol >"$T/scrub" 2>"$T/scrub.err" || rc=$?
[[ $rc -ne 0 && $rc -ne 124 ]] || fail "scrub of a detached volume: exit $rc (124: still waiting)"
[[ $(wc -l <"$T/scrub.err") -eq 1 ]] && grep -q "'vol' is not attached" "$T/scrub.err" ||
	fail "scrub of a detached volume: $(cat "$T/scrub.err")"
log "ok: scrub of detached vol refused: $(cat "$T/scrub.err")"
# A volume record that does not decode is reported as broken, not hidden.
/usr/bin/python3 - "${TRIPLEX_META#sqlite:}" <<'PY' || fail "cannot plant a broken record"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
with db:
    rev = db.execute("SELECT rev FROM revision WHERE id = 0").fetchone()[0] + 1
    db.execute("UPDATE revision SET rev = ? WHERE id = 0", (rev,))
    db.execute("INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?, ?, ?, ?)",
               ("/triplex/volumes/bad", b"{not json", rev, rev))
PY
run st status
expect_out "status, a broken record" "$T/st" '^  health: +HEALTH_ERR$' \
	'1 volume record\(s\) that cannot be read: bad$' 'volumes: +2: 1 faulted, 1 broken'
run vl volume list
expect_out "volume list, a broken record" "$T/vl" '^bad +broken +\(its record cannot be read: ' '^vol +faulted '
run hd health detail
expect_out "health detail, a broken record" "$T/hd" \
	'^HEALTH_ERR VOLUME_RECORD_BROKEN volume=bad$' 'volume record /triplex/volumes/bad cannot be read'
log "ok: the broken record of bad is reported"
log "PASS"
