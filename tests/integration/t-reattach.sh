#!/usr/bin/env bash
# Fencing a live engine (invariant 3): with a client connected to n1, the
# volume is attached to n2. n1's engine is fenced: the write it receives
# next fails (never acknowledged), n1 stops offering the export, n2 serves
# it, and n2 holds what n1 acknowledged before. The replicas end identical.
. "$(dirname "$0")/lib.sh"
require_triplexd "fencing a live engine"
require_python_nbd

D=$T/dev
on_exit "'$TPXCTL' dev down --dir '$D'"
ctl dev up --dir "$D" --size 16M >"$T/up.out" 2>&1 || { cat "$T/up.out" >&2; fail "dev up failed"; }
export TRIPLEX_META="sqlite:$D/meta.db"
sock() { /usr/bin/python3 -c "import json; d=json.load(open('$D/cluster.json')); print([n['nbd_unix'] for n in d['nodes'] if n['id']=='$1'][0])"; }
uri1="nbd+unix:///demo?socket=$(sock n1)"
uri2="nbd+unix:///demo?socket=$(sock n2)"

/usr/bin/python3 - "$uri1" "$uri2" "$TPXCTL" <<'PY' || fail "fencing check failed"
import subprocess, sys, time, nbd
uri1, uri2, ctl = sys.argv[1:4]
h1 = nbd.NBD(); h1.connect_uri(uri1)
before = b"acknowledged by n1" * 200
h1.pwrite(before, 0); h1.flush()
subprocess.run([ctl, "volume", "attach", "demo", "--node", "n2"], check=True,
               stdout=subprocess.DEVNULL)
# n2 serves once it has reconciled; n1 notices on its next poll.
for _ in range(100):
    try:
        h2 = nbd.NBD(); h2.connect_uri(uri2); break
    except nbd.Error:
        time.sleep(0.2)
else:
    sys.exit("n2 never served demo")
time.sleep(2.5)
try:
    h1.pwrite(b"late write from the old engine" * 100, 8192)
    sys.exit("n1 acknowledged a write after n2 attached")
except nbd.Error as e:
    print("old engine's write refused:", e.string.strip(), file=sys.stderr)
assert h2.pread(len(before), 0) == before, "n2 lost what n1 acknowledged"
assert h2.pread(4096, 8192) == bytes(4096), "the fenced write reached the volume"
try:
    h = nbd.NBD(); h.connect_uri(uri1)
    sys.exit("n1 still offers demo to new clients")
except nbd.Error:
    pass
h2.pwrite(b"n2" * 2048, 4096); h2.flush()
print("fenced: n1 refused, n2 serves", file=sys.stderr)
PY
grep -q "no longer served here" "$D/n1/triplexd.log" || fail "n1 did not log that it was fenced"
# n2 flushed last: the three replicas agree byte for byte.
all_in_sync() {
	ctl volume show demo --json | /usr/bin/python3 -c 'import json, sys
v = json.load(sys.stdin)
sys.exit(0 if all(p["state"] == "in_sync" for p in v["placement"]) else 1)'
}
wait_for "every replica in sync" 30 all_in_sync
for k in 2 3; do
	cmp "$D/n1/replicas/demo/data" "$D/n$k/replicas/demo/data" ||
		fail "replicas on n1 and n$k differ after the re-attach"
done
log "figures: faults: 1 (attach to n2 while n1 serves a client); n1's late write refused; n1 = n2 = n3"
log PASS
