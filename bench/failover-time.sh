#!/usr/bin/env bash
# Failover time: kill -9 of a volume's engine node to the first write
# acknowledged by the node that took it over automatically, over RUNS runs
# of tests/integration/t-auto-failover.sh (its first phase is the
# measurement; the test checks that no acknowledged write was lost).
# Prints each run and min / median / max, for the SQLite store and, with
# STORES="sqlite etcd", for a three-member etcd too, and for each node
# lease TTL of TTLS (triplexd --lease-ttl, default 5 s). Figures, not a
# pass mark: the machines are shared.
#   RUNS=5 STORES="sqlite etcd" TTLS="3 5" bench/failover-time.sh
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
export TPX_SRC=$SRC TPX_BUILD=${TPX_BUILD:-$SRC/build}
RUNS=${RUNS:-5}
for ttl in ${TTLS:-5}; do
for store in ${STORES:-sqlite etcd}; do
	ms=()
	for ((i = 1; i <= RUNS; i++)); do
		out=$(TPX_LEASE_TTL=$ttl TPX_META_KIND=$store bash "$SRC/tests/integration/t-auto-failover.sh" 2>&1) || {
			printf '%s\n' "$out" | tail -n 20 >&2
			echo "failover-time: run $i on $store failed" >&2
			exit 1
		}
		m=$(sed -n 's/.*first write acknowledged by n2 \([0-9]*\) ms after kill.*/\1/p' <<<"$out" | head -n 1)
		echo "$store lease ${ttl} s run $i: $m ms"
		ms+=("$m")
	done
	sorted=$(printf '%s\n' "${ms[@]}" | sort -n)
	echo "$store: failover over $RUNS runs (lease ${ttl} s): min $(head -n 1 <<<"$sorted") ms, median $(sed -n "$(((RUNS + 1) / 2))p" <<<"$sorted") ms, max $(tail -n 1 <<<"$sorted") ms"
done
done
