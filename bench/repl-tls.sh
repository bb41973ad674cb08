#!/usr/bin/env bash
# What mutual TLS on replication costs: a three-node dev cluster on
# loopback (triplexctl dev up), volume demo with three replicas, fio
# ioengine=nbd on n1's TCP export, 4k randwrite QD32 and 1M seqwrite QD8,
# once with --insecure (plaintext replication) and once with the default
# mutual TLS. Prints IOPS, MB/s, the TLS/plain ratio and the CPU
# microseconds of all three triplexd per replicated write. Figures, not a
# test: the three nodes and fio share this machine's cores.
#
#   BENCH_RUNTIME=10   seconds per job     BENCH_SIZE=1G
#   TPX_BUILD=build    where triplexctl is BENCH_TMPDIR=/var/tmp
set -euo pipefail
export PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${TPX_BUILD:-$SRC/build}
RUNTIME=${BENCH_RUNTIME:-10}
SIZE=${BENCH_SIZE:-1G}
W=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/tpx-bench-repl-tls.XXXXXX")
UP=
cleanup() {
	[[ -n $UP ]] && "$BUILD/triplexctl" dev down --dir "$UP" >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT

cluster() { /usr/bin/python3 -c "import json, sys; c = json.load(open('$1/cluster.json')); $2"; }
cpu_ticks() {
	local t=0 pid
	for pid in $(cluster "$UP" 'print(" ".join(str(n["pid"]) for n in c["nodes"]))'); do
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
	done
	echo "$t"
}

# run MODE JOB RW BS QD: one fio job on demo; prints a result line.
run() {
	local mode=$1 job=$2 rw=$3 bs=$4 qd=$5 t0 t1 out=$W/$1-$2.json uri
	uri=$(cluster "$UP" 'print(c["volumes"][0]["nbd_uris"][0])')
	t0=$(cpu_ticks)
	fio --name="$job" --ioengine=nbd --uri="$uri" --rw="$rw" --bs="$bs" \
		--iodepth="$qd" --size="$SIZE" --time_based --runtime="$RUNTIME" \
		--ramp_time=2 --output-format=json >"$out" 2>/dev/null
	t1=$(cpu_ticks)
	/usr/bin/python3 - "$out" "$mode" "$job" $((t1 - t0)) "$(getconf CLK_TCK)" <<'PY'
import json, sys
out, mode, job, ticks, hz = sys.argv[1:]
raw = open(out).read()
j = json.loads(raw[raw.index("{"):])["jobs"][0]["write"]  # fio may print notes first
ios = j["total_ios"] or 1
print("%-6s %-18s %9.0f IOPS %8.1f MB/s %7.1f us CPU/write (3 nodes)" % (
    mode, job, j["iops"], j["bw_bytes"] / 1e6, int(ticks) / int(hz) * 1e6 / ios))
PY
}

results=$W/results
for mode in plain tls; do
	UP=$W/$mode
	args=()
	[[ $mode == plain ]] && args=(--insecure)
	"$BUILD/triplexctl" dev up --dir "$UP" --size "$SIZE" "${args[@]}" >"$W/$mode.up" 2>&1 ||
		{ cat "$W/$mode.up" >&2; exit 1; }
	run "$mode" randwrite-4k-qd32 randwrite 4k 32 | tee -a "$results"
	run "$mode" seqwrite-1m-qd8 write 1M 8 | tee -a "$results"
	"$BUILD/triplexctl" dev down --dir "$UP" >/dev/null
	UP=
done
echo "--- TLS / plain (IOPS)"
awk '{ v[$1 " " $2] = $3 }
END { for (k in v) if (k ~ /^plain /) { j = substr(k, 7); printf "%-18s %.2fx\n", j, v["tls " j] / v[k] } }' \
	"$results" | sort
