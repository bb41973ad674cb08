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
	if [[ " $* " == *" --verify_only "* ]]; then
		fio_check "$out" - $((32 << 20)) 2
	else
		fio_check "$out" $((32 << 20)) $((32 << 20)) 2
	fi
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
