#!/usr/bin/env bash
# Sizes on the command line: K/M/G/T (and KiB/MiB/GiB/TiB) are powers of
# 1024, KB/MB/GB/TB powers of 1000, and a size that is not a multiple of
# 4 KiB is rounded up with a one-line note on stderr, the same way in
# `triplexctl volume create` and `triplexd --create-volume`.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_triplexd "volume sizes"
[[ -x $TPXCTL && -x $TPXD ]] || fail "triplexctl/triplexd not built in $TPX_BUILD"

D=$DATA_DIR
mkdir -p "$D"
n=0
# expect_size SIZE BYTES ROUNDED(0|1) CMD: the volume made with SIZE holds
# BYTES, and a note was printed iff ROUNDED.
expect_size() {
	local size=$1 bytes=$2 rounded=$3 how=$4 name got
	n=$((n + 1))
	name=v$n
	if [[ $how == ctl ]]; then
		"$TPXCTL" volume create "$name" --size "$size" --data-dir "$D" >"$T/out" 2>"$T/err" ||
			fail "volume create --size $size failed: $(<"$T/err")"
	else
		"$TPXD" --data-dir "$D" --create-volume "$name" --size "$size" >"$T/out" 2>"$T/err" ||
			fail "triplexd --size $size failed: $(<"$T/err")"
	fi
	got=$(stat -c %s "$D/volumes/$name/data")
	[[ $got -eq $bytes ]] || fail "$how --size $size made $got bytes, not $bytes"
	if ((rounded)); then
		[[ $(wc -l <"$T/err") -eq 1 ]] && grep -q "note: --size $size is .*rounded up to $bytes bytes" "$T/err" ||
			fail "$how --size $size: no one-line rounding note: $(<"$T/err")"
	else
		[[ ! -s $T/err ]] || fail "$how --size $size: unexpected stderr: $(<"$T/err")"
	fi
	log "ok: $how --size $size -> $got bytes$( ((rounded)) && echo ' (rounded, noted)')"
}

for how in ctl daemon; do
	expect_size 2G $((2 << 30)) 0 $how
	expect_size 2GiB $((2 << 30)) 0 $how
	expect_size 2g $((2 << 30)) 0 $how
	expect_size 2GB 2000003072 1 $how       # 2000000000 is not a multiple of 4 KiB
	expect_size 512M $((512 << 20)) 0 $how
	expect_size 512MiB $((512 << 20)) 0 $how
	expect_size 4MB 4001792 1 $how          # 4000000 rounded up
	expect_size 4096000KB 4096000000 0 $how # a multiple of 4096 already
	expect_size 1T $((1 << 40)) 0 $how
	expect_size 1TB 1000000000000 0 $how    # 10^12 is 4096 * 244140625
	expect_size 8K 8192 0 $how
	expect_size 8KiB 8192 0 $how
	expect_size 5000 8192 1 $how
	expect_size 4096B 4096 0 $how
done
# A decimal size that happens to be 4 KiB aligned is not noted.
(( 4096000000 % 4096 == 0 )) || fail "test arithmetic"
log "PASS ($n sizes checked)"
