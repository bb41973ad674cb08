# shellcheck shell=bash
# A three-node triplex cluster for the replication fault tests
# (t-fault-*.sh), each triplexd in its own network namespace (netns.sh).
# Source it after lib.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$TPX_ITEST_DIR/cluster.sh"
#   cluster_setup --write-timeout-ms 3000     # nodes n1..n3 + client ns 4
#   cluster_volume_create vol 32M             # placed on n1, n2, n3
#   cluster_attach vol n1                     # bumps the epoch
#   cluster_wait_export vol 1                 # nbdinfo on n1's Unix socket
#   cluster_uri vol 1                         # nbd+unix:///vol?socket=...
#   cluster_kill 3 / cluster_stop 3 / cluster_freeze 3 / cluster_thaw 3
#   cluster_start_node 3                      # (re)start with the same args
#   netns_partition 1 / netns_heal 1          # from netns.sh
#   cluster_block_repl 1 3 / cluster_unblock_repl 1 3  # one connection
#   cluster_state vol n3                      # in_sync | out_of_sync | ...
#   cluster_replica_file vol 2                # $T/n2/replicas/vol/data
#
# Layout.  Namespaces 1..3 are the nodes n1..n3 (zones zone-a..zone-c),
# namespace 4 is a client host (CLUSTER_CLIENT) with nothing running in it.
# Node K:
#   data dir     $T/nK             (replicas in $T/nK/replicas/NAME/data)
#   log          $T/nK/triplexd.log
#   NBD          Unix $T/nK/nbd.sock, TCP  ADDR_K:10809
#   replication  ADDR_K:7100, HTTP ADDR_K:9100 (/healthz, /metrics)
# All nodes share one metadata file, sqlite:$T/meta.db (TRIPLEX_META is
# exported, so plain `triplexctl volume ...` uses it); with
# TPX_META_KIND=etcd, a three-member etcd instead (_cluster_etcd_setup).  The metadata store
# is a file: a partitioned node (iptables) still reaches it, unlike etcd
# across hosts.  Filesystem Unix sockets are not namespaced either: a
# client in the root namespace reaches a partitioned node's Unix socket
# (a client on the same host as the node).
#
# Replication is mutual TLS: $T/tls holds a cluster CA and nK's certificate
# (triplexctl dev cert); CLUSTER_INSECURE=1 runs it plaintext instead.
# Every node gets the same extra triplexd arguments (cluster_setup's);
# CLUSTER_PID[K] is node K's daemon pid (empty when it is not running).
# Teardown is registered with lib.sh's on_exit: every node still running
# is stopped (SIGTERM, then SIGKILL), then the namespaces go.
# `fail` is wrapped to print the tail of every node's log.

CLUSTER_NODES=3
# shellcheck disable=SC2034 # for the tests
CLUSTER_CLIENT=4
CLUSTER_REPL_PORT=7100
CLUSTER_NBD_PORT=10809
CLUSTER_HTTP_PORT=9100
CLUSTER_ARGS=()
CLUSTER_ZONES=(none zone-a zone-b zone-c)
declare -a CLUSTER_PID=()
export TRIPLEX_META=sqlite:$T/meta.db

# Same fail as lib.sh's, plus every node log's tail.
eval "$(declare -f fail | sed '1s/^fail/_lib_fail/')"
fail() {
	local k f
	for ((k = 1; k <= CLUSTER_NODES; k++)); do
		f=$T/n$k/triplexd.log
		[[ -s $f ]] || continue
		printf -- '--- last lines of %s ---\n' "$f" >&2
		tail -n 25 "$f" >&2 || true
	done
	_lib_fail "$@"
}

# cluster_setup [TRIPLEXD-ARGS...]: namespaces 1..4, start n1..n3 with the
# extra arguments, wait until all three are registered.
cluster_setup() {
	require_triplexd "the three-node cluster"
	require_tool ip iptables nbdinfo curl
	require_python_nbd
	[[ -x $TPXCTL ]] || fail "$TPXCTL not built"
	CLUSTER_ARGS=("$@")
	netns_setup $((CLUSTER_NODES + 1))
	[[ ${TPX_META_KIND:-sqlite} == etcd ]] && _cluster_etcd_setup
	on_exit cluster_teardown
	local k
	for ((k = 1; k <= CLUSTER_NODES; k++)); do
		cluster_start_node "$k"
	done
	netns_wait_for "3 nodes registered" 20 _cluster_all_registered
	log "cluster: n1..n3 up (pids ${CLUSTER_PID[*]}), args: ${CLUSTER_ARGS[*]:-none}"
}

# TPX_META_KIND=etcd: a three-member etcd instead of the SQLite file, member
# K in namespace K beside node nK (partitioning a node cuts its member off
# too), triplexctl run from the client namespace.
_cluster_etcd_setup() {
	# shellcheck source=etcd.sh
	. "$TPX_ITEST_DIR/etcd.sh"
	ETCD_CLIENT_NS=$(netns_name "$CLUSTER_CLIENT")
	etcd_setup "$(netns_addr 1)" "$(netns_addr 2)" "$(netns_addr 3)" \
		"$(netns_name 1)" "$(netns_name 2)" "$(netns_name 3)"
	export TRIPLEX_META=$ETCD_URL
	ctl() { ip netns exec "$ETCD_CLIENT_NS" "$TPXCTL" "$@"; }
}

_cluster_all_registered() {
	local n
	n=$(ctl node list --json 2>/dev/null | grep -o '"id": *"n[0-9]*"' | sort -u | wc -l)
	((n >= CLUSTER_NODES))
}

cluster_dir() { printf '%s/n%s' "$T" "$1"; }
cluster_log() { printf '%s/n%s/triplexd.log' "$T" "$1"; }
cluster_sock() { printf '%s/n%s/nbd.sock' "$T" "$1"; }

# cluster_uri NAME K: the export on node K's Unix socket.
cluster_uri() { printf 'nbd+unix:///%s?socket=%s' "$1" "$(cluster_sock "$2")"; }
# cluster_tcp_uri NAME K: the export on node K's TCP listener (reach it
# from a namespace, e.g. netns_exec "$CLUSTER_CLIENT" ...).
cluster_tcp_uri() { printf 'nbd://%s:%d/%s' "$(netns_addr "$2")" "$CLUSTER_NBD_PORT" "$1"; }
# cluster_replica_file NAME K: node K's replica data file of NAME.
cluster_replica_file() { printf '%s/replicas/%s/data' "$(cluster_dir "$2")" "$1"; }

# cluster_start_node K: start triplexd as node nK in namespace K, with the
# environment words of CLUSTER_NODE_ENV[K] if set (e.g. a faked clock).
cluster_start_node() {
	local k=$1 a d
	[[ -z ${CLUSTER_PID[k]:-} ]] || fail "cluster_start_node: n$k is already running (pid ${CLUSTER_PID[k]})"
	a=$(netns_addr "$k")
	d=$(cluster_dir "$k")
	mkdir -p "$d"
	rm -f "$(cluster_sock "$k")"
	printf '=== start n%s at %s\n' "$k" "$(date +%T.%N)" >>"$(cluster_log "$k")"
	# shellcheck disable=SC2086 # words, by design
	local tls=(--insecure)
	if [[ ${CLUSTER_INSECURE:-0} != 1 ]]; then
		[[ -s $T/tls/n$k.crt ]] || "$TPXCTL" dev cert "n$k" --dir "$T" >/dev/null ||
			fail "triplexctl dev cert n$k failed"
		tls=(--node-cert "$T/tls/n$k.crt" --node-key "$T/tls/n$k.key"
			--cluster-ca "$T/tls/ca.crt")
	fi
	netns_bg "$k" env ${CLUSTER_NODE_ENV[k]:-} "$TPXD" --data-dir "$d" --node-id "n$k" \
		--zone "${CLUSTER_ZONES[k]}" \
		--meta "$TRIPLEX_META" --listen-repl "$a:$CLUSTER_REPL_PORT" \
		--listen-tcp "$a:$CLUSTER_NBD_PORT" --listen-unix "$(cluster_sock "$k")" \
		--listen-http "$a:$CLUSTER_HTTP_PORT" \
		--log-level "${TPX_LOG_LEVEL:-info}" "${tls[@]}" "${CLUSTER_ARGS[@]}" \
		>>"$(cluster_log "$k")" 2>&1
	CLUSTER_PID[k]=$NETNS_BG_PID
	netns_wait_for "n$k's socket" 20 _cluster_node_up "$k"
}

_cluster_node_up() {
	local k=$1
	kill -0 "${CLUSTER_PID[k]}" 2>/dev/null ||
		fail "n$k (pid ${CLUSTER_PID[k]}) exited during start-up"
	[[ -S $(cluster_sock "$k") ]]
}

# cluster_kill K: kill -9 node K (a crash).
cluster_kill() {
	local k=$1 pid=${CLUSTER_PID[$1]:-}
	[[ -n $pid ]] || fail "cluster_kill: n$k is not running"
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	CLUSTER_PID[k]=
	log "fault: kill -9 n$k (pid $pid)"
}

# cluster_freeze K / cluster_thaw K: SIGSTOP / SIGCONT node K.
cluster_freeze() {
	kill -STOP "${CLUSTER_PID[$1]}" || fail "SIGSTOP n$1 failed"
	log "fault: SIGSTOP n$1 (pid ${CLUSTER_PID[$1]})"
}
cluster_thaw() {
	kill -CONT "${CLUSTER_PID[$1]}" || fail "SIGCONT n$1 failed"
	log "SIGCONT n$1 (pid ${CLUSTER_PID[$1]})"
}

# cluster_stop K: SIGTERM node K; fail unless it exits 0 within 20 s and
# its log holds no sanitizer report.
cluster_stop() {
	local k=$1 pid=${CLUSTER_PID[$1]:-} i rc=0
	[[ -n $pid ]] || return 0
	kill -CONT "$pid" 2>/dev/null || true
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		CLUSTER_PID[k]=
		fail "n$k (pid $pid) ignored SIGTERM for 20 s; killed"
	fi
	wait "$pid" 2>/dev/null || rc=$?
	CLUSTER_PID[k]=
	if grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' \
		"$(cluster_log "$k")" 2>/dev/null; then
		fail "sanitizer report in $(cluster_log "$k")"
	fi
	[[ $rc -eq 0 ]] || fail "n$k exited with status $rc after SIGTERM"
}

# cluster_stop_all: cluster_stop every running node (checks exit status).
cluster_stop_all() {
	local k
	for ((k = 1; k <= CLUSTER_NODES; k++)); do
		cluster_stop "$k"
	done
}

# cluster_teardown: from the exit trap; no checks, never hangs.
cluster_teardown() {
	local k pid i
	for ((k = 1; k <= CLUSTER_NODES; k++)); do
		pid=${CLUSTER_PID[k]:-}
		[[ -n $pid ]] || continue
		kill -CONT "$pid" 2>/dev/null
		kill -TERM "$pid" 2>/dev/null
	done
	for ((i = 0; i < 100; i++)); do
		local alive=0
		for ((k = 1; k <= CLUSTER_NODES; k++)); do
			pid=${CLUSTER_PID[k]:-}
			[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && alive=1
		done
		((alive)) || break
		sleep 0.1
	done
	for ((k = 1; k <= CLUSTER_NODES; k++)); do
		pid=${CLUSTER_PID[k]:-}
		[[ -n $pid ]] || continue
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		CLUSTER_PID[k]=
	done
	return 0
}

# cluster_volume_create NAME SIZE [ARGS...]: triplexctl volume create,
# with --failover manual unless CLUSTER_FAILOVER=auto: most fault tests
# attach by hand and must not see a takeover.
cluster_volume_create() {
	local name=$1 size=$2
	shift 2
	ctl volume create "$name" --size "$size" --meta "$TRIPLEX_META" \
		--failover "${CLUSTER_FAILOVER:-manual}" "$@" >"$T/create-$name.out" 2>&1 || {
		cat "$T/create-$name.out" >&2
		fail "triplexctl volume create $name --size $size $* failed"
	}
}

# cluster_attach NAME NODE-ID: triplexctl volume attach (bumps the epoch).
cluster_attach() {
	ctl volume attach "$1" --node "$2" --meta "$TRIPLEX_META" >"$T/attach.out" 2>&1 || {
		cat "$T/attach.out" >&2
		fail "triplexctl volume attach $1 --node $2 failed"
	}
	log "attached $1 to $2 (epoch $(cluster_field "$1" epoch))"
}

_cluster_export_ok() {
	timeout 5 nbdinfo --size "$(cluster_uri "$1" "$2")" >/dev/null 2>&1
}

# cluster_wait_export NAME K [SECS]: until node K's Unix socket serves NAME.
cluster_wait_export() {
	netns_wait_for "export $1 on n$2" "${3:-20}" _cluster_export_ok "$1" "$2"
}

# cluster_show NAME: `triplexctl volume show NAME --json` (fails the test
# if the command fails).
cluster_show() {
	ctl volume show "$1" --json --meta "$TRIPLEX_META" 2>"$T/show.err" || {
		cat "$T/show.err" >&2
		fail "triplexctl volume show $1 --json failed"
	}
}

# cluster_field NAME KEY: one top-level field of the volume record
# (epoch, attached, min_replicas, ...).
cluster_field() {
	cluster_show "$1" | /usr/bin/python3 -c 'import json,sys
v = json.load(sys.stdin)
print(v[sys.argv[1]])' "$2"
}

# cluster_state NAME NODE-ID: the placement state of NODE-ID's replica.
cluster_state() {
	cluster_show "$1" | /usr/bin/python3 -c 'import json,sys
v = json.load(sys.stdin)
s = [p["state"] for p in v["placement"] if p["node"] == sys.argv[1]]
print(s[0] if s else "none")' "$2"
}

# cluster_states NAME: "n1=in_sync n2=... n3=..." (for the figures).
cluster_states() {
	cluster_show "$1" | /usr/bin/python3 -c 'import json,sys
v = json.load(sys.stdin)
print(" ".join("%s=%s" % (p["node"], p["state"]) for p in sorted(v["placement"], key=lambda p: p["node"])))'
}

_cluster_state_is() { [[ $(cluster_state "$1" "$2") == "$3" ]]; }

# cluster_wait_state NAME NODE-ID STATE SECS
cluster_wait_state() {
	netns_wait_for "$2's replica of $1 to be $3 (now: $(cluster_states "$1"))" "$4" \
		_cluster_state_is "$1" "$2" "$3"
}

# cluster_metrics K: node K's /metrics (curl from inside namespace K).
cluster_metrics() {
	netns_exec "$1" curl -sf --max-time 5 \
		"http://$(netns_addr "$1"):$CLUSTER_HTTP_PORT/metrics"
}

# cluster_metric K NAME [LABEL-FILTER]: sum of the samples of metric NAME
# on node K whose line contains LABEL-FILTER (0 when there is none).
cluster_metric() {
	cluster_metrics "$1" | awk -v m="$2" -v f="${3:-}" '
		$1 == m || index($1, m "{") == 1 { if (f == "" || index($1, f)) s += $2; n++ }
		END { printf "%d\n", s }'
}

# cluster_wait_metric K NAME SECS: until node K's metric NAME is above 0.
cluster_wait_metric() {
	netns_wait_for "$2 on n$1 to move" "$3" _cluster_metric_moved "$1" "$2"
}
_cluster_metric_moved() { (($(cluster_metric "$1" "$2") > 0)); }

# cluster_block_repl FROM TO: drop node FROM's replication connection to
# node TO, that one TCP connection only (iptables in TO's namespace), so
# that what FROM sends on it piles up in FROM's kernel; new connections
# pass. Sets CLUSTER_BLOCKED_PORT (FROM's local port of it).
cluster_block_repl() {
	CLUSTER_BLOCKED_PORT=$(netns_flow_port "$1" "$(netns_addr "$2")" "$CLUSTER_REPL_PORT")
	[[ -n $CLUSTER_BLOCKED_PORT ]] || fail "no replication connection from n$1 to n$2"
	netns_block_flow "$2" "$(netns_addr "$1")" "$CLUSTER_BLOCKED_PORT"
}

# cluster_blocked_queued FROM: bytes FROM's kernel holds unsent or unacked
# on the blocked connection (also after its process closed it or died).
cluster_blocked_queued() {
	netns_exec "$1" ss -Htn "( sport = :$CLUSTER_BLOCKED_PORT )" |
		awk '{s += $3} END {print s + 0}'
}
_cluster_blocked_drained() { (($(cluster_blocked_queued "$1") == 0)); }

# cluster_unblock_repl FROM TO: let the blocked connection through again,
# then wait until TO has acknowledged every byte FROM's kernel had queued
# on it (it delivers at its next retransmission).
cluster_unblock_repl() {
	netns_unblock_flow "$2" "$(netns_addr "$1")" "$CLUSTER_BLOCKED_PORT"
	netns_wait_for "what n$1 had queued for n$2 to be delivered" 60 \
		_cluster_blocked_drained "$1"
}

# cluster_flush NAME K: one NBD FLUSH through node K's Unix socket.
cluster_flush() {
	nbdsh -u "$(cluster_uri "$1" "$2")" -c 'h.flush()' ||
		fail "FLUSH of $1 through n$2 failed"
}

# Checker helpers -------------------------------------------------------

# shellcheck disable=SC2034 # for the tests
CHECKER=$TPX_ITEST_DIR/checker.py

# log_acks LOG: acknowledged writes in a checker log so far.
log_acks() {
	local n
	n=$(grep -c '^A ' "$1" 2>/dev/null) || true
	echo "${n:-0}"
}
_acks_at_least() { (($(log_acks "$1") >= $2)); }

# wait_acks LOG N SECS: until LOG holds N acknowledged writes.
wait_acks() {
	netns_wait_for "$2 acknowledged writes in $1 (have $(log_acks "$1"))" "$3" \
		_acks_at_least "$1" "$2"
}

# cluster_copied K NODE [OFFSET]: bytes node K's engine copied to NODE in
# the resyncs its log reports done (from byte OFFSET of the log on).
cluster_copied() {
	tail -c +$((${3:-0} + 1)) "$(cluster_log "$1")" |
		sed -n "s/.*resync of $2 done: [0-9]* bytes compared, \([0-9]*\) copied.*/\1/p" |
		awk '{s += $1} END {print s + 0}'
}

# checker_load NS URI LOG ARGS...: start checker.py write against URI
# with the fault tests' usual load (60 s at most, 4096 blocks, 16 in
# flight on 2 connections, 10 % sub-block writes, a FLUSH every 200) plus
# ARGS, in the background: in network namespace NS, or here if NS is "-".
# Output goes to $T/write.out and $T/write.err; CHECKER_PID is its pid.
checker_load() {
	local ns=$1 uri=$2 wlog=$3
	shift 3
	local cmd=(/usr/bin/python3 "$CHECKER" write --uri "$uri" --log "$wlog"
		--duration 60 --blocks 4096 --inflight 16 --connections 2
		--sub-block-fraction 0.1 --flush-every 200
		--seed "${TPX_CHECKER_SEED:-$RANDOM}" "$@")
	if [[ $ns == - ]]; then
		"${cmd[@]}" >"$T/write.out" 2>"$T/write.err" &
		CHECKER_PID=$!
	else
		netns_bg "$ns" "${cmd[@]}" >"$T/write.out" 2>"$T/write.err"
		CHECKER_PID=$NETNS_BG_PID
	fi
	on_exit "kill -TERM $CHECKER_PID"
}

# fio helpers: a second load beside the checker, verified by fio itself.
# fio_load NAME K SIZE: through node K's Unix socket, write every 4 KiB
# block of NAME's first SIZE bytes once in random order, each with a
# crc32c verify header (16 in flight, writes capped at 1500/s so that it
# runs for a few seconds, long enough for a fault to land in it), then read
# them all back and check them; in the background, FIO_PID.
fio_load() {
	local name=$1 k=$2 size=$3
	cat >"$T/fio-$name.fio" <<JOB
[global]
ioengine=nbd
uri=$(cluster_uri "$name" "$k")
bs=4k
iodepth=16
rw=randwrite
size=$size
verify=crc32c
verify_fatal=1
verify_dump=0
verify_state_save=0
randrepeat=1

[load]
rate_iops=0,1500
JOB
	(cd "$T" && exec timeout 300 fio --output-format=json --output="$T/fio-load.json" \
		"$T/fio-$name.fio") &
	FIO_PID=$!
	on_exit "kill -TERM $FIO_PID"
	FIO_SIZE=$size
}

_fio_size_bytes() { numfmt --from=iec "${FIO_SIZE^^}"; }

# fio_load_wait: wait for fio_load's fio (bounded by its timeout); fail
# unless it wrote and verified every block without an error.
fio_load_wait() {
	local rc=0
	wait "$FIO_PID" || rc=$?
	((rc == 0)) || fail "fio load exited $rc: $(grep -m3 -iE 'verify|error' "$T/fio-load.json" || true)"
	fio_check "$T/fio-load.json" "$(_fio_size_bytes)" "$(_fio_size_bytes)" 1
}

# fio_verify NAME K: read fio_load's blocks of NAME back through node K
# and check every one against its verify header.
fio_verify() {
	local name=$1 k=$2 out=$T/fio-verify-$2.json
	sed -i "s|^uri=.*|uri=$(cluster_uri "$name" "$k")|" "$T/fio-$name.fio"
	(cd "$T" && timeout 300 fio --output-format=json --output="$out" --verify_only \
		"$T/fio-$name.fio") ||
		fail "fio verify through n$k failed: $(grep -m3 -iE 'verify|error' "$out" || true)"
	fio_check "$out" - "$(_fio_size_bytes)" 1
}

# checker_verify NAME K LOG: FLUSH through node K, then read every block
# of LOG's history back through node K's Unix socket; fail on any lost or
# corrupt acknowledged write.
checker_verify() {
	local name=$1 k=$2 wlog=$3 vrc=0
	cluster_flush "$name" "$k"
	/usr/bin/python3 "$CHECKER" verify --uri "$(cluster_uri "$name" "$k")" \
		--log "$wlog" --timeout 60 >"$T/verify.out" 2>&1 || vrc=$?
	cat "$T/verify.out" >&2
	((vrc == 0)) || fail "checker verify through n$k found lost or corrupt writes (exit $vrc)"
}

# checker_stop PID: SIGTERM the checker, wait (bounded), fail if it exited
# non-zero.
checker_stop() {
	local pid=$1 i rc=0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && fail "checker (pid $pid) did not stop within 30 s"
	wait "$pid" || rc=$?
	((rc == 0)) || fail "checker write exited $rc"
}

# checker_fig LOG KEY: a figure from the last summary (S) line of LOG.
checker_fig() {
	grep '^S ' "$1" | tail -n 1 | cut -c3- |
		/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

# cmp_replicas NAME K...: fail unless node K's replica files are identical.
cmp_replicas() {
	local name=$1 first=$2 k out
	shift 2
	for k in "$@"; do
		out=$(cmp "$(cluster_replica_file "$name" "$first")" \
			"$(cluster_replica_file "$name" "$k")" 2>&1) ||
			fail "replicas of $name on n$first and n$k differ: $out ($(cmp -l "$(cluster_replica_file "$name" "$first")" "$(cluster_replica_file "$name" "$k")" 2>/dev/null | wc -l) bytes differ)"
	done
}

# cmp_in_sync NAME MIN: fail unless at least MIN replicas of NAME are
# in_sync in the metadata store and their replica files are identical
# (stop the load and FLUSH first).  Sets CMP_IN_SYNC to the nodes compared
# ("n1 n2 ...").  Replicas that are not in sync (dead, or being resynced)
# are left out.
cmp_in_sync() {
	local name=$1 min=$2 p ks=()
	for p in $(cluster_states "$name"); do
		[[ ${p#*=} == in_sync ]] && ks+=("${p%%=*}")
	done
	((${#ks[@]} >= min)) || fail "only ${#ks[@]} replicas of $name in sync (${ks[*]}), want >= $min: $(cluster_states "$name")"
	cmp_replicas "$name" "${ks[@]#n}"
	# shellcheck disable=SC2034 # for the caller
	CMP_IN_SYNC="${ks[*]}"
}
