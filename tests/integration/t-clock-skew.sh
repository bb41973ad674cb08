#!/usr/bin/env bash
# Leases are decided without comparing clocks (issue 9). n2's wall clock is
# an hour behind and n3's an hour ahead (libfaketime; monotonic clocks are
# left alone, as a real skew would). For three lease TTLs, while vol
# (failover auto) serves writes on n1, no node's lease expires: no node
# logs that it had to register again, nobody takes vol over, its epoch
# stays. Then n1 is killed: its lease does expire, and n2 (an hour behind)
# takes vol over as the failover rule says. TPX_META_KIND=etcd: etcd.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[[ -r $FAKETIME_LIB ]] || skip "libfaketime is not installed (package faketime)"
# An ASan build must accept a preloaded library ahead of its runtime.
skewed() {
	printf 'LD_PRELOAD=%s FAKETIME=%s FAKETIME_DONT_FAKE_MONOTONIC=1 ASAN_OPTIONS=%s' \
		"$FAKETIME_LIB" "$1" "${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}
CLUSTER_NODE_ENV[2]=$(skewed -1h)
CLUSTER_NODE_ENV[3]=$(skewed +1h)
CLUSTER_FAILOVER=auto
cluster_setup --io-timeout-ms 2000

# The fault landed: the nodes' own wall clocks are an hour apart.
now=$(date +%s)
for k in 1 2 3; do
	started[k]=$(cluster_metric "$k" triplex_process_start_time_seconds)
done
((started[2] < now - 3000 && started[2] > now - 4200)) ||
	fail "n2's clock is not an hour behind (start time ${started[2]}, now $now)"
((started[3] > now + 3000 && started[3] < now + 4200)) ||
	fail "n3's clock is not an hour ahead (start time ${started[3]}, now $now)"
((started[1] > now - 600 && started[1] <= now)) || fail "n1's clock is off"
# What TriplexClockSkew compares with the scraper's clock.
for k in 1 2 3; do
	skew[k]=$(($(cluster_metric "$k" triplex_time_seconds) - $(date +%s)))
done
((skew[1] > -5 && skew[1] < 5)) || fail "n1's triplex_time_seconds is ${skew[1]} s off"
((skew[2] < -3500 && skew[2] > -3700)) || fail "n2's triplex_time_seconds is ${skew[2]} s off, want about -3600"
((skew[3] > 3500 && skew[3] < 3700)) || fail "n3's triplex_time_seconds is ${skew[3]} s off, want about +3600"

cluster_volume_create vol 16M
cluster_attach vol n1
cluster_wait_export vol 1
epoch=$(cluster_field vol epoch)

# Three TTLs (5 s) of writes, one a second, with every node checked.
_lease_trouble() {
	grep -hE "node lease expired|lease keepalive failed|taken over here|registered again" \
		"$(cluster_log 1)" "$(cluster_log 2)" "$(cluster_log 3)"
}
for ((i = 0; i < 15; i++)); do
	head -c 64K /dev/urandom |
		nbdcopy --flush - "$(cluster_uri vol 1)" || fail "write $i to vol failed"
	! trouble=$(_lease_trouble) || fail "a lease expired under skewed clocks: $trouble"
	[[ $(cluster_field vol attached) == n1 ]] || fail "vol moved to $(cluster_field vol attached)"
	sleep 1
done
[[ $(cluster_field vol epoch) == "$epoch" ]] || fail "vol's epoch moved"
_cluster_all_registered || fail "a node is no longer registered"
log "15 s (3 lease TTLs) with clocks -1 h and +1 h: no lease expired, vol stayed on n1 at epoch $epoch"

# status compares each node's heartbeat with its own clock: n2 and n3
# are off, n1 is not.
ctl health detail >"$T/health.out" || fail "health detail failed: $(cat "$T/health.out")"
skews=$(grep -o '^HEALTH_WARN CLOCK_SKEW node=n[0-9]' "$T/health.out" | sort | tr '\n' ' ')
[[ $skews == "HEALTH_WARN CLOCK_SKEW node=n2 HEALTH_WARN CLOCK_SKEW node=n3 " ]] ||
	fail "health detail's clock problems: '$skews', want n2 and n3: $(cat "$T/health.out")"
grep -Eq "n3's clock is about 3[56][0-9]{2} s ahead of this host's" "$T/health.out" ||
	fail "n3's skew is not said in seconds: $(cat "$T/health.out")"

# Leases still expire when renewals stop, seen by the skewed nodes.
cluster_kill 1
_taken_by_n2() { [[ $(cluster_field vol attached) == n2 ]]; }
netns_wait_for "n2 (an hour behind) to take vol over" 40 _taken_by_n2
cluster_wait_export vol 2 30
head -c 64K /dev/urandom | nbdcopy --flush - "$(cluster_uri vol 2)" ||
	fail "write to vol on n2 failed"
! grep -q "taken over here" "$(cluster_log 3)" || fail "n3 took vol over too"
cluster_stop_all
log "figures: $(grep -o "n[23]'s clock is [^(]*" "$T/health.out" | tr '\n' ';')"
log PASS
