#!/usr/bin/env bash
# `triplexctl drill` (issue 8): a short drill against a dev cluster, every
# fault (kill -9 of a replica's node, of the engine's node, an iptables
# partition, store latency and ENOSPC through POST /admin/fault), each
# holding 3 s. The report must show, per fault, that it landed (a replica
# left the in-sync set, another node took the volume over, delayed or
# failed store calls counted), that the cluster recovered, that writes
# were acknowledged and none lost, and that the replicas were identical.
# The drill's scratch volume is gone afterwards, volume demo's data is
# untouched (it moved with the engine's node, as every volume there does), no iptables rule is left, and /admin/fault is refused by a
# daemon without --fault-injection.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_triplexd "the drill"
require_root
require_tool iptables nbdcopy curl

D=$T/dev
on_exit "'$TPXCTL' dev down --dir '$D'"
ctl dev up --dir "$D" --size 16M >"$T/up.out" 2>&1 || { cat "$T/up.out" >&2; fail "dev up failed"; }
export TRIPLEX_META="sqlite:$D/meta.db"
uri=$(/usr/bin/python3 -c "import json; print(json.load(open('$D/cluster.json'))['volumes'][0]['nbd_uris'][0])")
head -c 16M /dev/urandom >"$T/demo.in"
nbdcopy --flush "$T/demo.in" "$uri" || fail "writing demo failed"

rc=0
ctl drill --dir "$D" --hold 3 --recover-timeout 60 --json >"$T/drill.json" 2>"$T/drill.err" || rc=$?
[[ -s $T/drill.json ]] || fail "drill printed no report (rc $rc): $(tail -n 5 "$T/drill.err")"
/usr/bin/python3 - "$T/drill.json" >"$T/drill.sum" <<'PY' || fail "drill report: $(cat "$T/drill.sum")"
import json, sys
r = json.load(open(sys.argv[1]))
want = ["kill", "kill-engine", "partition", "latency", "diskfull"]
got = [f["fault"] for f in r["faults"]]
bad = []
if got != want:
    bad.append("faults run: %s" % got)
for f in r["faults"]:
    name = f["fault"]
    for k in ("fault_landed", "healed_ok", "recovered", "identical"):
        if not f[k]:
            bad.append("%s: %s is false (%s)" % (name, k, f.get("problem")))
    if f["lost"] != 0:
        bad.append("%s: %d writes lost" % (name, f["lost"]))
    if f["acked"] < 10:
        bad.append("%s: only %d writes acknowledged" % (name, f["acked"]))
signs = {"kill": "left the in-sync set", "kill-engine": "took the volume over",
         "partition": "left the in-sync set", "latency": "delayed by 100 ms on",
         "diskfull": "failed with ENOSPC on"}
for f in r["faults"]:
    text = f["landed"] + "; " + f["healed"]
    if signs[f["fault"]] not in text:
        bad.append("%s: no sign it landed: %s" % (f["fault"], text))
if r["result"] != "PASS":
    bad.append("result %s" % r["result"])
if bad:
    print("; ".join(bad))
    sys.exit(1)
print(" ".join("%s %.1fs/%d acked" % (f["fault"], f["recover_s"], f["acked"]) for f in r["faults"]),
      "in %.0f s" % r["duration_s"])
PY
((rc == 0)) || fail "drill exited $rc with a passing report"

# Its own scratch volume only: deleted, demo intact, no rule left.
vols=$(ctl volume list --json)
grep -q '"drill-' <<<"$vols" && fail "the drill's scratch volume is still there: $vols"
# demo failed over with the engine's node: read it where it is served now.
at=$(ctl volume show demo --json | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["attached"])')
[[ -n $at ]] || fail "demo is attached nowhere after the drill"
nbdcopy "nbd+unix:///demo?socket=$D/$at/nbd.sock" "$T/demo.out" || fail "reading demo back from $at failed"
cmp "$T/demo.in" "$T/demo.out" || fail "volume demo changed under the drill"
rules=$(iptables -w -S INPUT)
grep -q 'tpx-drill' <<<"$rules" && fail "the drill left iptables rules: $rules"

# The admin call changes state: it needs the bearer token of
# --admin-token-file (401 without it or with another), and then still
# --fault-injection (403); with no token file, every admin call is 403.
mkdir -p "$T/plain"
"$TPXD" --data-dir "$T/plain" --create-volume v --size 4M >/dev/null 2>&1 || fail "create v failed"
printf 'tok-%s\n' "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$T/admin.token"
token=$(head -n 1 "$T/admin.token")
port=$(free_port)
_http_up() { curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; }
# plain_start ARGS...: the daemon on $port with ARGS; PLAIN its pid.
plain_start() {
	"$TPXD" --data-dir "$T/plain" --listen-unix "$T/plain/s" --listen-http "127.0.0.1:$port" \
		"$@" >>"$T/plain.log" 2>&1 &
	PLAIN=$!
	on_exit "kill $PLAIN"
	wait_for "the plain daemon's /healthz" 10 _http_up
}
# post [CURL-ARGS...]: the HTTP status of a fault request.
post() {
	curl -s -o "$T/post.out" -w '%{http_code}' -X POST "$@" \
		"http://127.0.0.1:$port/admin/fault?delay_ms=100&seconds=5"
}
plain_start --admin-token-file "$T/admin.token"
[[ $(post) == 401 ]] || fail "/admin/fault without a token: $(cat "$T/post.out")"
[[ $(post -H "Authorization: Bearer ${token}x") == 401 ]] || fail "/admin/fault with another token: $(cat "$T/post.out")"
[[ $(post -H "Authorization: Bearer $token") == 403 ]] && grep -q 'fault injection is off' "$T/post.out" ||
	fail "/admin/fault without --fault-injection: $(cat "$T/post.out")"
st=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/admin/fault")
[[ $st == 405 ]] || fail "GET /admin/fault answered $st, want 405"
grep -q 'admin call without the admin token was refused' "$T/plain.log" || fail "the refused calls were not logged"
kill "$PLAIN"
wait "$PLAIN" 2>/dev/null || true
plain_start --fault-injection
[[ $(post -H "Authorization: Bearer $token") == 403 ]] && grep -q 'need --admin-token-file' "$T/post.out" ||
	fail "/admin/fault with no token file: $(cat "$T/post.out")"
kill "$PLAIN"
log "figures: $(cat "$T/drill.sum")"
log PASS
