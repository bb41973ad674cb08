#!/usr/bin/env bash
# Catch-up and rebuild (invariant 7) on the local three-node cluster:
# kill -9 n3, keep writing (n3 leaves the in-sync set), restart it: it
# copies only what changed while it was away and is in sync again. Then
# wipe n2's replica and restart it: it is rebuilt in full. Every replica
# ends byte-identical.
. "$(dirname "$0")/lib.sh"
require_triplexd "replica resync"
require_tool nbdcopy nbdsh

D=$T/dev
on_exit "'$TPXCTL' dev down --dir '$D'"
ctl dev up --dir "$D" --size 64M >"$T/up.out" 2>&1 || { cat "$T/up.out" >&2; fail "dev up failed"; }
export TRIPLEX_META="sqlite:$D/meta.db"
json() { /usr/bin/python3 -c "import json; d=json.load(open('$D/cluster.json')); print($1)"; }
uri=$(json 'd["volumes"][0]["nbd_uris"][0]')
pid_of() { json "[n['pid'] for n in d['nodes'] if n['id']=='$1'][0]"; }
state_of() {
	ctl volume show demo --json | /usr/bin/python3 -c \
		"import json,sys; v=json.load(sys.stdin); print([p['state'] for p in v['placement'] if p['node']=='$1'][0])"
}
# pwrite SEED OFFSET MIB: write MIB MiB of data derived from SEED, flushed.
pwrite() {
	/usr/bin/python3 - "$uri" "$1" "$2" "$3" <<'PY'
import nbd, random, sys
uri, seed, off, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
h = nbd.NBD(); h.connect_uri(uri)
rnd = random.Random(seed)
for i in range(mib):
    h.pwrite(rnd.randbytes(1 << 20), off + (i << 20))
h.flush(); h.shutdown()
PY
}
# Restart a node with the command line it had (cluster.json keeps its pid).
# Gone: no such process, or a zombie (its files, sockets too, are closed).
_gone() { [[ ! -e /proc/$1 || $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]; }
# kill9 PID: SIGKILL and wait until it is gone (its listening sockets with
# it: a restart too early finds its ports still in use).
kill9() {
	kill -9 "$1"
	wait_for "pid $1 to exit" 20 _gone "$1"
}
restart() {
	local id=$1 cmdline=$2 dir
	dir=$(json "[n['data_dir'] for n in d['nodes'] if n['id']=='$id'][0]")
	# shellcheck disable=SC2086
	(cd / && exec $cmdline >>"$dir/triplexd.log" 2>&1) &
	RESTARTED+=($!)
	on_exit "kill -TERM $!"
}
all_in_sync() {
	ctl volume show demo --json | /usr/bin/python3 -c \
		"import json,sys; v=json.load(sys.stdin); sys.exit(0 if all(p['state']=='in_sync' for p in v['placement']) else 1)"
}
same_replicas() {
	local a
	a=$(sha256sum <"$D/n1/replicas/demo/data")
	[[ $(sha256sum <"$D/n2/replicas/demo/data") == "$a" ]] &&
		[[ $(sha256sum <"$D/n3/replicas/demo/data") == "$a" ]]
}

pwrite 1 0 16 || fail "initial write failed"
# The command line a node runs with, its binary path first.
cmdline_of() {
	echo "$(readlink "/proc/$1/exe") $(tr '\0' ' ' <"/proc/$1/cmdline" | cut -d' ' -f2-)"
}
n3=$(pid_of n3)
cmd3=$(cmdline_of "$n3")
kill9 "$n3"
pwrite 2 $((32 << 20)) 8 || fail "writes stopped after one replica died"
[[ $(state_of n3) == out_of_sync ]] || fail "n3 did not leave the in-sync set"
log "n3 killed; 8 MiB written with n1 and n2 in sync"

restart n3 "$cmd3"
wait_for "n3 back in sync" 60 all_in_sync
copied=$(grep -o 'resync of n3 done: [0-9]* bytes compared, [0-9]* copied' "$D/n1/triplexd.log" |
	tail -n 1 | awk '{print $(NF-1)}')
log "catch-up of n3 copied $copied bytes (8 MiB changed while it was away)"
[[ -n $copied ]] || fail "no resync summary in n1's log"
((copied >= 8 << 20 && copied <= 9 << 20)) || fail "catch-up copied $copied bytes, expected about 8 MiB"
wait_for "replicas identical after catch-up" 20 same_replicas

# A lost replica: n2's files are gone; it must be rebuilt, never trusted.
n2=$(pid_of n2)
cmd2=$(cmdline_of "$n2")
kill9 "$n2"
rm -rf "$D/n2/replicas/demo"
restart n2 "$cmd2"
pwrite 3 $((48 << 20)) 4 || fail "writes failed while n2 was rebuilding"
wait_for "n2 rebuilt and in sync" 60 all_in_sync
copied=$(grep -o 'resync of n2 done: [0-9]* bytes compared, [0-9]* copied' "$D/n1/triplexd.log" |
	tail -n 1 | awk '{print $(NF-1)}')
log "rebuild of n2 copied $copied bytes"
((copied >= 24 << 20)) || fail "rebuild copied only $copied bytes of 28 MiB of data"
wait_for "replicas identical after rebuild" 20 same_replicas
nbdcopy "$uri" "$T/vol.img" || fail "read back failed"
cmp "$T/vol.img" "$D/n2/replicas/demo/data" || fail "the volume's contents differ from the rebuilt replica"
log PASS
