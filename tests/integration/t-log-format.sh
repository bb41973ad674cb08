#!/usr/bin/env bash
# --log-format json: every line triplexd writes is one JSON object with ts,
# level, msg (and node when it has a node id); text lines name the node
# too; a bad format is a one-line error.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_tool nbdinfo
[[ $TPX_SERVER == triplexd ]] || skip "--log-format is triplexd's"

start_triplexd demo:4M -- --log-format json --log-level debug --node-id 'n"1'
nbdinfo --size "$(uri demo)" >/dev/null || fail "nbdinfo failed"
nbdinfo --size "nbd+unix:///nosuch?socket=$SOCK" 2>/dev/null && fail "unknown export served"
stop_server
/usr/bin/python3 - "$SERVER_LOG" <<'PY' || fail "--log-format json: bad lines (above)"
import json, sys
n = bad = 0
levels = set()
for line in open(sys.argv[1]):
    if line.startswith("=== start"):
        continue
    n += 1
    try:
        o = json.loads(line)
        assert set(o) == {"ts", "level", "node", "msg"}, sorted(o)
        assert o["node"] == 'n"1', o["node"]
        assert o["ts"].endswith("Z") and o["msg"], o
        levels.add(o["level"])
    except Exception as e:
        bad += 1
        print("not a log object (%s): %r" % (e, line), file=sys.stderr)
print("%d JSON lines, levels %s" % (n, sorted(levels)), file=sys.stderr)
sys.exit(1 if bad or n < 5 or "debug" not in levels else 0)
PY

: >"$SERVER_LOG"
start_server --node-id n7
stop_server
grep -q ' info node=n7 triplexd ready' "$SERVER_LOG" || fail "text lines do not name the node: $(head -3 "$SERVER_LOG")"

if "$TPXD" --data-dir "$DATA_DIR" --listen-unix "$T/x.sock" --log-format xml 2>"$T/err"; then
	fail "--log-format xml accepted"
fi
grep -qx "triplexd: --log-format wants text or json, got 'xml'" "$T/err" || fail "error: $(cat "$T/err")"
log PASS
