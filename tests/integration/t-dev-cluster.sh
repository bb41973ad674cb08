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

ctl dev down --dir "$D" || fail "dev down failed"
for pid in $(json '" ".join(str(n["pid"]) for n in d["nodes"] + d.get("etcd", []))'); do
	! kill -0 "$pid" 2>/dev/null || fail "pid $pid still running after dev down"
done
log PASS
