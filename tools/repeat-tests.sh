#!/usr/bin/env bash
# Run tests many times, each run with its own seed, to find rare failures.
#
#   REPEAT=10 tools/repeat-tests.sh                # the fault suite, build/
#   REPEAT=10 TPX_BUILD=build-asan tools/repeat-tests.sh
#   REPEAT=20 tools/repeat-tests.sh -R partition   # ctest -R instead of -L fault
#
# Every test of the ctest label (default "fault") runs REPEAT times (one
# test at a time), each with TPX_CHECKER_SEED set to a new seed, which the
# tests pass to their load generators. Prints one line a run, then a table
# of passes and failures per test with the seeds that failed; the output of
# each failed run is kept in $TPX_BUILD/repeat-logs/. Exits non-zero if any
# run failed. A failure here is a bug until shown otherwise: rerun it with
# TPX_CHECKER_SEED=SEED to look at it.
set -uo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${TPX_BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$SRC/$BUILD
REPEAT=${REPEAT:-10}
export PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH
if [[ $REPEAT =~ [^0-9] || $REPEAT -lt 1 ]]; then
	echo "repeat-tests.sh: REPEAT must be a positive integer, got '$REPEAT'" >&2
	exit 2
fi
[[ -f $BUILD/CTestTestfile.cmake ]] || {
	echo "repeat-tests.sh: $BUILD is not a configured build directory (set TPX_BUILD)" >&2
	exit 2
}
select=(-L fault)
(($#)) && select=("$@")
LOGS=$BUILD/repeat-logs
mkdir -p "$LOGS"

mapfile -t tests < <(cd "$BUILD" && ctest -N "${select[@]}" |
	sed -n 's/^ *Test *#[0-9]*: *//p')
if ((${#tests[@]} == 0)); then
	echo "repeat-tests.sh: no test matches ${select[*]}" >&2
	exit 2
fi
echo "repeat-tests.sh: ${#tests[@]} tests x $REPEAT runs in $BUILD"

declare -A pass fail seeds
start=$SECONDS
total_fail=0
for ((i = 1; i <= REPEAT; i++)); do
	for t in "${tests[@]}"; do
		seed=$(((RANDOM << 15 | RANDOM) % 1000000 + 1))
		t0=$SECONDS
		log=$LOGS/${t//\//_}.seed$seed.log
		if (cd "$BUILD" && TPX_CHECKER_SEED=$seed ctest -R "^${t}\$" \
			--output-on-failure >"$log" 2>&1); then
			pass[$t]=$((${pass[$t]:-0} + 1))
			rm -f "$log"
			res=pass
		else
			fail[$t]=$((${fail[$t]:-0} + 1))
			seeds[$t]="${seeds[$t]:-} $seed"
			total_fail=$((total_fail + 1))
			res="FAIL (log: $log)"
		fi
		printf 'run %d/%d %-40s seed %-7d %3ds %s\n' "$i" "$REPEAT" "$t" \
			"$seed" $((SECONDS - t0)) "$res"
	done
done

printf '\n%-40s %6s %6s  %s\n' test passed failed "failed seeds"
for t in "${tests[@]}"; do
	printf '%-40s %6d %6d %s\n' "$t" "${pass[$t]:-0}" "${fail[$t]:-0}" "${seeds[$t]:-}"
done
echo "($((SECONDS - start)) s) $((${#tests[@]} * REPEAT - total_fail)) passed, $total_fail failed"
((total_fail == 0))
