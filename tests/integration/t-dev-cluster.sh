#!/usr/bin/env bash
# `triplexctl dev up`: three triplexd in three zones share one metadata
# file; volume demo is placed on all three, attached to n1 and exported.
# Data written through n1 lands, byte for byte, on every replica's disk;
# cluster.json describes the cluster; `dev down` stops every node. With
# TPX_META_KIND=etcd, `dev up --etcd`: the store is a three-member etcd
# that dev up starts and dev down stops.
. "$(dirname "$0")/lib.sh"
require_triplexd "the local three-node cluster"
require_tool nbdcopy nbdinfo

D=$T/dev
UP_ARGS=()
if [[ ${TPX_META_KIND:-sqlite} == etcd ]]; then
	require_tool etcd
	UP_ARGS=(--etcd)
fi
on_exit "'$TPXCTL' dev down --dir '$D'"
ctl dev up --dir "$D" --size 64M "${UP_ARGS[@]}" >"$T/up.out" 2>&1 || {
	cat "$T/up.out" >&2
	fail "dev up failed"
}
cat "$T/up.out" >&2

json() { /usr/bin/python3 -c "import json,sys; d=json.load(open('$D/cluster.json')); print($1)"; }
[[ $(json 'len(d["nodes"])') -eq 3 ]] || fail "cluster.json does not list 3 nodes"
[[ $(json 'len({n["zone"] for n in d["nodes"]})') -eq 3 ]] || fail "nodes are not in 3 zones"
for pid in $(json '" ".join(str(n["pid"]) for n in d["nodes"])'); do
	kill -0 "$pid" || fail "node pid $pid from cluster.json is not running"
done
uri=$(json 'd["volumes"][0]["nbd_uris"][0]')
log "demo at $uri"

TRIPLEX_META=$(json 'd["meta"]')
export TRIPLEX_META
if ((${#UP_ARGS[@]})); then
	[[ $TRIPLEX_META == etcd://* ]] || fail "cluster.json names $TRIPLEX_META, not etcd"
	[[ $(json 'len(d["etcd"])') -eq 3 ]] || fail "cluster.json does not list 3 etcd members"
	[[ ! -e $D/meta.db ]] || fail "dev up --etcd made an SQLite file"
	# The records really are in etcd: the volume key, read with etcdctl.
	ETCDCTL_API=3 etcdctl --endpoints "${TRIPLEX_META#etcd://}" get --prefix \
		--keys-only /triplex/ >"$T/keys" || fail "etcdctl get failed"
	grep -q demo "$T/keys" || fail "no key of volume demo in etcd: $(cat "$T/keys")"
	log "etcd holds $(grep -c . "$T/keys") triplex keys"
else
	[[ $TRIPLEX_META == "sqlite:$D/meta.db" ]] || fail "cluster.json names $TRIPLEX_META"
fi
ctl volume show demo --json >"$T/show.json" || fail "volume show failed"
/usr/bin/python3 - "$T/show.json" <<'PY' || fail "volume record is not as expected"
import json, sys
v = json.load(open(sys.argv[1]))
assert v["attached"] == "n1", v
assert v["epoch"] >= 1, v
nodes = sorted(p["node"] for p in v["placement"])
assert nodes == ["n1", "n2", "n3"], nodes
assert all(p["state"] == "in_sync" for p in v["placement"]), v["placement"]
PY
ctl node list | grep -c zone- | grep -qx 3 || fail "node list does not show 3 nodes"

head -c 32M /dev/urandom >"$T/in"
nbdcopy --flush "$T/in" "$uri" || fail "nbdcopy into demo failed"
nbdcopy "$uri" "$T/out" || fail "nbdcopy out of demo failed"
cmp -n $((32 << 20)) "$T/in" "$T/out" || fail "data read back differs"

# Every replica holds exactly the bytes written (invariant 1).
for n in n1 n2 n3; do
	f=$D/$n/replicas/demo/data
	[[ -f $f ]] || fail "no replica of demo on $n"
	cmp -n $((32 << 20)) "$T/in" "$f" || fail "replica on $n differs from what was written"
done
log "32 MiB written through n1 is identical on n1, n2 and n3"

# The engine's node reports the volume and its replicas in /metrics.
http=$(json '[n["http"] for n in d["nodes"] if n["id"]=="n1"][0]')
curl -sf "http://$http/metrics" >"$T/metrics" || fail "no /metrics on n1"
grep -qx 'triplex_volume_in_sync_replicas{volume="demo"} 3' "$T/metrics" ||
	fail "metrics do not show 3 in-sync replicas of demo"
grep -q '^triplex_volume_write_bytes_total{volume="demo"} [1-9]' "$T/metrics" ||
	fail "metrics do not count demo's writes"
if command -v promtool >/dev/null; then
	promtool check metrics <"$T/metrics" || fail "promtool rejects the metrics"
fi

# dev restart: n3 killed -9 comes back with its own command line, its new
# pid in cluster.json, and catches up; one restarted by hand (outside
# dev) is still found and stopped by dev down, through its data dir's lock.
old3=$(json '[n["pid"] for n in d["nodes"] if n["id"]=="n3"][0]')
kill -KILL "$old3"
ctl dev restart n3 --dir "$D" >"$T/restart.out" 2>&1 || fail "dev restart n3: $(cat "$T/restart.out")"
new3=$(json '[n["pid"] for n in d["nodes"] if n["id"]=="n3"][0]')
[[ $new3 != "$old3" ]] && kill -0 "$new3" || fail "cluster.json has n3 at pid $new3 (was $old3)"
grep -q "restarted n3 (pid $new3)" "$T/restart.out" || fail "dev restart said: $(cat "$T/restart.out")"
nbdcopy --flush "$T/in" "$uri" || fail "write after the restart failed"
in_sync3() { ctl volume show demo --json | /usr/bin/python3 -c 'import json,sys; v=json.load(sys.stdin); sys.exit(0 if all(p["state"] == "in_sync" for p in v["placement"]) else 1)'; }
wait_for "n3 in sync again" 60 in_sync3
ctl dev restart n9 --dir "$D" 2>"$T/r9" && fail "dev restart n9 succeeded"
grep -q 'names no node n9' "$T/r9" || fail "dev restart n9: $(cat "$T/r9")"
# n2 stopped and started again by hand: a pid cluster.json does not know.
old2=$(json '[n["pid"] for n in d["nodes"] if n["id"]=="n2"][0]')
mapfile -d '' -t n2cmd <"/proc/$old2/cmdline"
kill -TERM "$old2"
wait_for "n2 stopped" 20 bash -c "! kill -0 $old2 2>/dev/null"
"$TPXD" "${n2cmd[@]:1}" >>"$D/n2/triplexd.log" 2>&1 &
hand2=$!
wait_for "n2 serving again" 20 test -S "$D/n2/nbd.sock"
log "n3 restarted by dev restart (pid $old3 -> $new3) and in sync; n2 restarted by hand (pid $hand2)"

ctl dev down --dir "$D" || fail "dev down failed"
! kill -0 "$hand2" 2>/dev/null || fail "dev down left the n2 started by hand (pid $hand2) running"
for pid in $(json '" ".join(str(n["pid"]) for n in d["nodes"] + d.get("etcd", []))'); do
	! kill -0 "$pid" 2>/dev/null || fail "pid $pid still running after dev down"
done
log PASS
