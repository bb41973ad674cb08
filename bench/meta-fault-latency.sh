#!/usr/bin/env bash
# Write latency while the metadata store fails: QD1 4 KiB writes to a
# three-replica volume during a 10 s fault, by tests/integration/
# t-meta-freeze.sh (which also checks that no write stalled and the
# replicas stayed identical). Faults: the SQLite write lock held by
# another process, SIGSTOP of all three etcd members, kill -9 of the etcd
# leader. Prints p50 / p99 / slowest during the fault and outside it, for
# RUNS runs of each. Figures, not a pass mark: the machines are shared.
#   RUNS=3 bench/meta-fault-latency.sh
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
export TPX_SRC=$SRC TPX_BUILD=${TPX_BUILD:-$SRC/build}
RUNS=${RUNS:-3}
for fault in sqlite:freeze etcd:freeze etcd:leader-kill; do
	for ((i = 1; i <= RUNS; i++)); do
		out=$(TPX_META_KIND=${fault%%:*} TPX_META_FAULT=${fault#*:} \
			bash "$SRC/tests/integration/t-meta-freeze.sh" 2>&1) || {
			printf '%s\n' "$out" | tail -n 20 >&2
			echo "meta-fault-latency: run $i of $fault failed" >&2
			exit 1
		}
		fig=$(sed -n 's/.*writes completed during it: \(.*\); n1\.\.n3.*/\1/p' <<<"$out")
		echo "$fault run $i: $fig"
	done
done
