# shellcheck shell=bash
# A three-member etcd (Debian's etcd-server) for the tests, with the tuning
# of the reference HA design. Source it after lib.sh (and netns.sh when the
# members live in namespaces):
#
#   etcd_setup ADDR1 ADDR2 ADDR3 [NS1 NS2 NS3]  # start, wait for a leader
#   ETCD_URL                                    # etcd://a1:2379,a2:2379,...
#   etcd_leader                                 # -> member index 1..3
#   etcd_kill K / etcd_start K                  # kill -9 / restart member K
#   etcd_freeze_all / etcd_thaw_all             # SIGSTOP / SIGCONT all
#   etcd_curl K PATH JSON                       # POST to member K's gateway
#
# Member K listens on ADDR_K:2379 (clients) and ADDR_K:2380 (peers), data
# in $T/etcdK, log $T/etcdK.log. With namespaces, member K runs inside NS_K
# (in the fault tests, beside node nK, as etcd would run on the same
# hosts), and every curl to it runs in the namespace named by
# ETCD_CLIENT_NS (a namespace that reaches all members). Stopped by pid at
# exit. Loopback addresses need distinct ports: pass 127.0.0.1:PORT pairs
# as "127.0.0.1:C:P" (client and peer port).

ETCD_URL=
declare -ga ETCD_PID=() ETCD_ADDR=() ETCD_CPORT=() ETCD_PPORT=() ETCD_NS=()
ETCD_CLIENT_NS=
ETCD_TUNING=(--heartbeat-interval=500 --election-timeout=2500
	--snapshot-count=10000 --auto-compaction-retention=1h)

_etcd_in() {
	local ns=$1
	shift
	if [[ -n $ns ]]; then
		ip netns exec "$ns" "$@"
	else
		"$@"
	fi
}

# etcd_setup SPEC1 SPEC2 SPEC3 [NS1 NS2 NS3]: SPEC is ADDR or ADDR:C:P.
etcd_setup() {
	require_tool etcd curl
	local k spec cluster="" urls=""
	for k in 1 2 3; do
		spec=${!k}
		ETCD_NS[k]=${@:k+3:1}
		if [[ $spec == *:*:* ]]; then
			IFS=: read -r ETCD_ADDR[k] ETCD_CPORT[k] ETCD_PPORT[k] <<<"$spec"
		else
			ETCD_ADDR[k]=$spec ETCD_CPORT[k]=2379 ETCD_PPORT[k]=2380
		fi
		cluster+="${cluster:+,}e$k=http://${ETCD_ADDR[k]}:${ETCD_PPORT[k]}"
		urls+="${urls:+,}${ETCD_ADDR[k]}:${ETCD_CPORT[k]}"
	done
	ETCD_CLUSTER=$cluster
	ETCD_URL=etcd://$urls
	on_exit etcd_teardown
	for k in 1 2 3; do
		etcd_start "$k"
	done
	wait_for "an etcd leader" 30 _etcd_has_leader
	log "etcd: 3 members up (pids ${ETCD_PID[*]}), leader e$(etcd_leader), $ETCD_URL"
}

# etcd_start K: start (or restart, on its data) member K. Started
# directly, not through a function, so that ETCD_PID is etcd's own pid.
etcd_start() {
	local k=$1 a=${ETCD_ADDR[$1]} cmd
	[[ -z ${ETCD_PID[k]:-} ]] || fail "etcd_start: e$k is running"
	cmd=(etcd --name "e$k" --data-dir "$T/etcd$k"
		--listen-client-urls "http://$a:${ETCD_CPORT[k]}"
		--advertise-client-urls "http://$a:${ETCD_CPORT[k]}"
		--listen-peer-urls "http://$a:${ETCD_PPORT[k]}"
		--initial-advertise-peer-urls "http://$a:${ETCD_PPORT[k]}"
		--initial-cluster "$ETCD_CLUSTER" --initial-cluster-state new
		--initial-cluster-token "tpx-$$" "${ETCD_TUNING[@]}")
	if [[ -n ${ETCD_NS[k]} ]]; then
		ip netns exec "${ETCD_NS[k]}" "${cmd[@]}" >>"$T/etcd$k.log" 2>&1 &
	else
		"${cmd[@]}" >>"$T/etcd$k.log" 2>&1 &
	fi
	ETCD_PID[k]=$!
}

# etcd_curl K PATH [JSON]: POST JSON to member K's gateway; prints the body.
etcd_curl() {
	local k=$1 body=${3:-'{}'}
	_etcd_in "$ETCD_CLIENT_NS" curl -s -m 3 -X POST \
		"http://${ETCD_ADDR[k]}:${ETCD_CPORT[k]}$2" -d "$body"
}

_etcd_status_field() {
	etcd_curl "$1" /v3/maintenance/status 2>/dev/null |
		/usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(d.get('$2') or d.get('header',{}).get('$2',''))" 2>/dev/null
}

# etcd_leader: the index of the member that is leader, or nothing.
etcd_leader() {
	local k leader member
	for k in 1 2 3; do
		[[ -n ${ETCD_PID[k]:-} ]] || continue
		leader=$(_etcd_status_field "$k" leader)
		member=$(_etcd_status_field "$k" member_id)
		if [[ -n $leader && $leader == "$member" ]]; then
			echo "$k"
			return 0
		fi
	done
	return 1
}

_etcd_has_leader() { etcd_leader >/dev/null; }

# etcd_kill K: kill -9 member K.
etcd_kill() {
	local k=$1 pid=${ETCD_PID[$1]:-}
	[[ -n $pid ]] || fail "etcd_kill: e$k is not running"
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	ETCD_PID[k]=
	log "fault: kill -9 etcd member e$k (pid $pid)"
}

etcd_freeze_all() {
	local k
	for k in 1 2 3; do
		kill -STOP "${ETCD_PID[k]}" || fail "SIGSTOP e$k failed"
	done
	log "fault: SIGSTOP every etcd member (pids ${ETCD_PID[*]})"
}

etcd_thaw_all() {
	local k
	for k in 1 2 3; do
		kill -CONT "${ETCD_PID[k]}" 2>/dev/null || true
	done
	log "SIGCONT every etcd member"
}

etcd_teardown() {
	local k pid i
	for k in 1 2 3; do
		pid=${ETCD_PID[k]:-}
		[[ -n $pid ]] || continue
		kill -CONT "$pid" 2>/dev/null
		kill -TERM "$pid" 2>/dev/null
	done
	# A member cut off from its peers can take long to stop: bounded.
	for k in 1 2 3; do
		pid=${ETCD_PID[k]:-}
		[[ -n $pid ]] || continue
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		ETCD_PID[k]=
	done
	return 0
}
