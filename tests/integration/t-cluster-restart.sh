#!/usr/bin/env bash
# The whole cluster stopped and started at once (issue 9). Volume a (failover
# auto) is served by n1, volume b (failover manual) by n2, each with data
# written. Round 1: all three nodes killed with SIGKILL together (a power
# loss), started again in the order n3, n2, n1. Round 2: all three sent
# SIGTERM together, started in the order n2, n1, n3. After each round
# every volume is served again, by one node, with all three replicas in
# sync; its data reads back; a new write reaches all three replicas, which
# are identical. TPX_META_KIND=etcd: etcd, whose three members are killed
# and restarted with the nodes in round 1.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

cluster_setup --io-timeout-ms 2000
CLUSTER_FAILOVER=auto cluster_volume_create a 8M
CLUSTER_FAILOVER=manual cluster_volume_create b 8M
cluster_attach a n1
cluster_attach b n2
cluster_wait_export a 1
cluster_wait_export b 2
node_of() { cluster_field "$1" attached | sed 's/^n//'; }

# write_pattern VOL: 4 MiB of new random data; kept in $T/VOL.img.
write_pattern() {
	head -c 4M /dev/urandom >"$T/$1.img"
	nbdcopy --flush "$T/$1.img" "$(cluster_uri "$1" "$(node_of "$1")")" ||
		fail "write to $1 on n$(node_of "$1") failed"
}

# check_served VOL ROUND: served again with all three replicas in sync,
# its data intact, a new write on all three.
check_served() {
	local v=$1 k
	k=$(node_of "$v")
	[[ -n $k ]] || fail "round $2: $v is attached nowhere"
	cluster_wait_export "$v" "$k" 60
	for n in 1 2 3; do
		cluster_wait_state "$v" "n$n" in_sync 60
	done
	rm -f "$T/$v.back"
	nbdcopy "$(cluster_uri "$v" "$k")" "$T/$v.back" || fail "round $2: reading $v failed"
	cmp -n 4194304 "$T/$v.back" "$T/$v.img" ||
		fail "round $2: $v's data did not survive the restart"
	write_pattern "$v"
	cluster_flush "$v" "$k"
	cmp_replicas "$v" 1 2 3
	log "round $2: $v served by n$k at epoch $(cluster_field "$v" epoch), three replicas in sync, data intact"
}

# restart_all HOW ORDER...: stop all three at once, start them in ORDER.
restart_all() {
	local how=$1 k pids=()
	shift
	for k in 1 2 3; do pids+=("${CLUSTER_PID[k]}"); done
	if [[ $how == kill ]]; then
		kill -KILL "${pids[@]}"
	else
		kill -TERM "${pids[@]}"
	fi
	for k in 1 2 3; do
		wait "${CLUSTER_PID[k]}" 2>/dev/null || true
		CLUSTER_PID[k]=
	done
	log "fault: all three nodes stopped at once (SIG${how^^}), starting $*"
	# A power loss takes the etcd members down too.
	if [[ $how == kill && ${TPX_META_KIND:-sqlite} == etcd ]]; then
		for k in 1 2 3; do etcd_kill "$k"; done
		for k in 1 2 3; do etcd_start "$k"; done
		netns_wait_for "an etcd leader" 30 _etcd_has_leader
	fi
	for k in "$@"; do cluster_start_node "$k"; done
	netns_wait_for "3 nodes registered" 30 _cluster_all_registered
}

write_pattern a
write_pattern b
restart_all kill 3 2 1
check_served a 1
check_served b 1

restart_all term 2 1 3
check_served a 2
check_served b 2
for k in 1 2 3; do
	! grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$(cluster_log "$k")" ||
		fail "sanitizer report in $(cluster_log "$k")"
done
cluster_stop_all
log PASS
