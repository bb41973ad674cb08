#!/usr/bin/env bash
# `triplexctl volume replace`: a fourth node joins in a new zone, n3's
# replica is moved to it, the engine rebuilds it in full while serving,
# and it ends in sync and byte-identical to the others.
. "$(dirname "$0")/lib.sh"
require_triplexd "replica replacement"
require_tool nbdcopy curl

D=$T/dev
on_exit "'$TPXCTL' dev down --dir '$D'"
ctl dev up --dir "$D" --size 32M >"$T/up.out" 2>&1 || { cat "$T/up.out" >&2; fail "dev up failed"; }
export TRIPLEX_META="sqlite:$D/meta.db"
uri=$(/usr/bin/python3 -c "import json; print(json.load(open('$D/cluster.json'))['volumes'][0]['nbd_uris'][0])")
head -c 24M /dev/urandom >"$T/in"
nbdcopy --flush "$T/in" "$uri" || fail "write failed"

mkdir -p "$D/n4"
# n4's certificate of the cluster's CA, as an operator adding a node makes it.
read -ra n4_tls <<<"$(ctl dev cert n4 --dir "$D")" || fail "dev cert n4 failed"
"$TPXD" --data-dir "$D/n4" --node-id n4 --zone zone-d --meta "sqlite:$D/meta.db" \
	--listen-repl "127.0.0.1:$(free_port)" --listen-unix "$D/n4/nbd.sock" "${n4_tls[@]}" \
	>"$D/n4/triplexd.log" 2>&1 &
N4=$!
on_exit "kill -TERM $N4"
n4_up() { ctl node list | grep -Eq '^n4 +up '; }
wait_for "n4 to register" 20 n4_up

ctl volume replace demo --from n3 --to n4 --json >"$T/replace.json" || fail "replace failed"
in_sync_on_n4() {
	ctl volume show demo --json | /usr/bin/python3 -c "import json,sys
v = json.load(sys.stdin)
sys.exit(0 if any(p['node'] == 'n4' and p['state'] == 'in_sync' for p in v['placement']) else 1)"
}
# Writes keep being served while n4 is rebuilt.
head -c 4M /dev/urandom >"$T/more"
nbdcopy --flush "$T/more" "$uri" || fail "write during rebuild failed"
wait_for "n4 rebuilt and in sync" 60 in_sync_on_n4
ctl volume show demo --json | grep -q '"n3"' && fail "n3 still holds a replica of demo"
grep -o 'resync of n4 done: [0-9]* bytes compared, [0-9]* copied' "$D/n1/triplexd.log" >&2 ||
	fail "no rebuild summary for n4"
cmp "$D/n1/replicas/demo/data" "$D/n4/replicas/demo/data" || fail "n4 differs from n1"
cmp "$D/n2/replicas/demo/data" "$D/n4/replicas/demo/data" || fail "n4 differs from n2"
log PASS
