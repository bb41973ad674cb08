#!/usr/bin/env bash
# Bad input on disk: a directory in DIR/volumes/ that is not a valid volume
# (garbage meta, missing files) is reported in the log and not served, and
# the daemon still serves the good volume next to it.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_triplexd "volume validation at start"
require_tool nbdinfo

create_volume good 1M
mkdir -p "$DATA_DIR/volumes/junk" "$DATA_DIR/volumes/empty"
head -c 8192 /dev/urandom >"$DATA_DIR/volumes/junk/meta"
echo "not a volume" >"$DATA_DIR/volumes/junk/data"
start_server
nbdinfo --size "$(uri good)" >"$T/size" 2>&1 || fail "good volume not served next to junk ones"
[[ $(<"$T/size") -eq $((1 << 20)) ]] || fail "good volume size is $(<"$T/size")"
for v in junk empty; do
	if nbdinfo --size "$(uri "$v")" >/dev/null 2>&1; then
		fail "invalid volume '$v' is being served"
	fi
done
nbdinfo --list --json "$(uri good)" >"$T/list.json" || fail "LIST failed"
grep -q '"export-name": "junk"' "$T/list.json" && fail "LIST shows the invalid volume"
stop_server
log PASS
