#!/usr/bin/env bash
# Progress of long jobs (issue 8). vol (16 MiB, 3 replicas, resync and
# scrub capped at 4 MB/s) is served by n1; a fourth node n4 joins in
# zone-d. `volume replace vol --from n3 --to n4 --wait` runs on a
# terminal (script(1)): while n4 is rebuilt, `status` shows the rebuild
# with its percentage, rate and ETA and `status --json` its figures; the
# terminal shows a bar, and the command ends with its final line once n4
# is in sync. `volume scrub` draws a bar on a terminal and none when
# stderr is a file; while it runs, n1's /metrics has its progress. Once all is done no job is left. A progress record
# that stopped moving is a JOB_STALLED problem in `health detail`.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"
require_tool script

cluster_setup --io-timeout-ms 2000 --write-timeout-ms 10000 --resync-rate 4M
cluster_volume_create vol 16M
cluster_attach vol n1
cluster_wait_export vol 1
nbdsh -u "$(cluster_uri vol 1)" -c "import os; h.pwrite(os.urandom(16 << 20), 0); h.flush()" ||
	fail "writing 16 MiB failed"

# n4 in the client's namespace, in a zone of its own.
CLUSTER_ZONES[4]=zone-d
cluster_start_node 4
on_exit "kill -KILL ${CLUSTER_PID[4]}"
_n4_up() { ctl node list | grep -Eq '^n4 +up '; }
wait_for "n4 to register" 20 _n4_up

# on_tty OUT CMD...: CMD on a pseudo-terminal, its output in OUT.
on_tty() {
	local out=$1
	shift
	script -qfec "$(printf '%q ' "$@")" "$out" >/dev/null 2>&1
}
# tty_lines OUT: what the terminal showed, a line per redraw, without the
# erase-line sequences.
tty_lines() { tr '\r' '\n' <"$1" | sed 's/\x1b\[K//g'; }
on_tty "$T/replace.tty" "$TPXCTL" volume replace vol --from n3 --to n4 --wait &
REPLACE=$!
on_exit "kill $REPLACE"

_rebuild_shown() {
	ctl status >"$T/status.out" 2>&1 || return 1
	grep -Eq '^ +rebuild of vol onto n4 by n1: [0-9]+% \(.* of 16\.0 MiB\), [0-9.]+ [KM]iB/s, ETA [0-9]+s' "$T/status.out"
}
wait_for "status to show n4's rebuild" 20 _rebuild_shown
grep -q '^  jobs:     1 running' "$T/status.out" || fail "no jobs line: $(cat "$T/status.out")"
ctl status --json >"$T/status.json" || fail "status --json failed"
read -r kind done total rate < <(/usr/bin/python3 -c "import json,sys
j = json.load(open(sys.argv[1]))['jobs'][0]
print(j['kind'], j['done_bytes'], j['total_bytes'], j['rate_bytes_per_second'])" "$T/status.json") ||
	fail "no job in status --json: $(cat "$T/status.json")"
[[ $kind == rebuild ]] || fail "status --json: the job is a '$kind', want rebuild"
((total == 16 << 20 && done < total)) || fail "status --json: done $done of $total"
awk -v r="$rate" 'BEGIN { exit !(r > 0 && r < 8000000) }' ||
	fail "status --json: rate $rate B/s (capped at 4 MB/s)"
[[ $(grep -c . "$T/status.out") -gt 0 ]] && log "during the rebuild: $(grep 'rebuild of' "$T/status.out" | sed 's/^ *//')"

wait "$REPLACE" || fail "replace --wait failed: $(tty_lines "$T/replace.tty" | tail -n 3)"
tty=$(tty_lines "$T/replace.tty")
grep -Eq '^rebuild of vol onto n4 \[#*\.*\] +[0-9]+% .* of 16\.0 MiB, [0-9.]+ [KM]iB/s, ETA ' <<<"$tty" ||
	fail "no progress bar on the terminal: $tty"
grep -Eq '^replica of vol on n4 in sync after [0-9.]+ s \(16\.0 MiB, ' <<<"$tty" ||
	fail "no final line: $tty"
[[ $(cluster_state vol n4) == in_sync ]] || fail "replace --wait returned with n4 $(cluster_state vol n4)"
bars=$(grep -c '^rebuild of vol onto n4 \[' <<<"$tty")

# scrub: a bar on a terminal, none into a file; both end with the report.
on_tty "$T/scrub.tty" "$TPXCTL" volume scrub vol &
SCRUB=$!
on_exit "kill $SCRUB"
# Meanwhile the engine's node has the scrub's progress on /metrics.
scrubbed() { cluster_metric 1 triplex_volume_scrub_done_bytes 'volume="vol"'; }
_scrub_moving() { (($(scrubbed) > 0)); }
netns_wait_for "triplex_volume_scrub_done_bytes on n1" 10 _scrub_moving
scrub_seen=$(scrubbed)
wait "$SCRUB" || fail "scrub on a terminal failed: $(cat "$T/scrub.tty")"
m=$(cluster_metrics 1)
grep -q '^triplex_volume_scrub_done_bytes{' <<<"$m" && fail "a scrub progress series is left after the scrub"
tty=$(tty_lines "$T/scrub.tty")
grep -Eq '^scrub of vol \[#*\.*\] +[0-9]+% ' <<<"$tty" || fail "no scrub bar on the terminal: $tty"
grep -q '^scrub of vol: done, 16777216 bytes' <<<"$tty" || fail "no scrub report: $tty"
ctl volume scrub vol >"$T/scrub.out" 2>"$T/scrub.err" || fail "scrub failed: $(cat "$T/scrub.err")"
grep -q $'\r' "$T/scrub.err" && fail "a bar went to a stderr that is not a terminal"
grep -q '^scrub of vol: done' "$T/scrub.out" || fail "no scrub report: $(cat "$T/scrub.out")"

# Nothing left running: the engine deleted its record.
_no_jobs() {
	ctl status --json >"$T/status.json" &&
		/usr/bin/python3 -c "import json,sys; sys.exit(len(json.load(open(sys.argv[1]))['jobs']))" "$T/status.json"
}
wait_for "the jobs to be gone from status" 10 _no_jobs

# A record that has not moved for two minutes (as an engine stuck on a
# replica would publish it) is a problem; the test's own key, in the
# store's own table.
/usr/bin/python3 - "$T/meta.db" "$(date +%s)" <<'PY' || fail "cannot put a progress record"
import json, sqlite3, sys
rec = {"node": "n1", "epoch": 1, "updated": int(sys.argv[2]), "jobs": [
    {"kind": "rebuild", "replica": "n2", "done": 1 << 20, "total": 24 << 20,
     "rate_bps": 0, "elapsed_s": 130.0, "stalled_s": 120.0}]}
c = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
c.execute("INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?, ?, 1, 1)",
          ("/triplex-progress/stuck", json.dumps(rec).encode()))
PY
ctl health detail >"$T/health.out" || fail "health detail failed"
grep -q '^HEALTH_WARN JOB_STALLED volume=stuck node=n2$' "$T/health.out" ||
	fail "no JOB_STALLED for a rebuild stalled for 120 s: $(cat "$T/health.out")"
grep -q 'not moved for 120 s' "$T/health.out" || fail "the stall's length is not said: $(cat "$T/health.out")"
cluster_stop 4
cluster_stop_all
log "figures: $bars bar frames on the terminal during n4's rebuild; scrub seen at $scrub_seen bytes on n1's /metrics; $(grep -o 'in sync after [0-9.]* s ([^)]*)' <<<"$(tty_lines "$T/replace.tty")")"
log PASS
