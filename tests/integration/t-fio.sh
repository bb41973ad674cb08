#!/usr/bin/env bash
# fio ioengine=nbd: two jobs, iodepth 16, random 4k writes with crc32c
# verify on distinct halves of the volume, then a verify-only read pass on
# fresh connections.  Any verify error fails fio and the test.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_tool fio
fio --enghelp 2>/dev/null | grep -qw nbd || skip "fio lacks the nbd engine"
require_python_nbd

start_triplexd demo:64M
U=$(uri demo)

cat >"$T/job.fio" <<JOB
[global]
ioengine=nbd
uri=$U
bs=4k
iodepth=16
rw=randwrite
size=32m
verify=crc32c
verify_fatal=1
verify_dump=0
verify_state_save=0
randrepeat=1
norandommap=0
group_reporting=0

[half0]
offset=0

[half1]
offset=32m
JOB

run_fio() {
	local out=$1
	shift
	(cd "$T" && timeout 300 fio --output-format=json --output="$out" "$@" "$T/job.fio") ||
		fail "fio $* exited with status $? ($(grep -m3 -iE 'verify|error' "$out" || true))"
	/usr/bin/python3 - "$out" "$@" <<'PY' || fail "fio $* reported errors"
import json, sys
raw = open(sys.argv[1]).read()
res = json.loads(raw[raw.index("{"):])      # fio may print notes first
bad = []
jobs = res["jobs"]
if len(jobs) != 2:
    bad.append("%d jobs ran, expected 2" % len(jobs))
for j in jobs:
    if j["error"]:
        bad.append("%s: error %d" % (j["jobname"], j["error"]))
    w, r = j["write"]["io_bytes"], j["read"]["io_bytes"]
    verify_only = "--verify_only" in sys.argv[2:]
    if not verify_only and w != 32 << 20:
        bad.append("%s wrote %d bytes, expected %d" % (j["jobname"], w, 32 << 20))
    if r != 32 << 20:
        bad.append("%s verified %d bytes, expected %d" % (j["jobname"], r, 32 << 20))
for b in bad: print("  -", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

run_fio "$T/write.json"
run_fio "$T/verify.json" --verify_only

# The verify pass must be able to fail: corrupt one block through NBD and
# expect fio to notice.
TPX_U=$U /usr/bin/python3 -c '
import nbd, os
h = nbd.NBD(); h.connect_uri(os.environ["TPX_U"])
b = bytearray(h.pread(4096, 40960)); b[100] ^= 0xff
h.pwrite(bytes(b), 40960); h.flush(); h.shutdown()'
if (cd "$T" && timeout 300 fio --output-format=json --output="$T/bad.json" --verify_only \
	"$T/job.fio") >/dev/null 2>&1; then
	fail "fio verify did not detect a corrupted block (test is blind)"
fi
stop_server
log PASS
