# shellcheck shell=bash
# Simulated hosts for the fault tests: one network namespace per node, all
# joined by a Linux bridge in a private "hub" namespace.  Source it after
# lib.sh:
#
#   . "$TPX_ITEST_DIR/netns.sh"
#   netns_setup 3                  # nodes 1..3, teardown registered (trap)
#   netns_addr 2                   # -> 10.77.<run>.2
#   netns_exec 2 nbdinfo "nbd://$(netns_addr 1):10809/demo"
#   netns_bg 2 long-running-client ...; pid=$NETNS_BG_PID
#   netns_start_server 1 --listen-tcp "$(netns_addr 1):10809"
#   netns_partition 1 ... netns_heal 1
#   netns_block_flow 3 ADDR PORT   # drop one TCP connection, both ways
#   netns_teardown                 # also runs from the exit trap
#
# Layout (nothing is created in the root namespace):
#   tpx<id>-hub   lo, bridge br0, veth ends v1..vN (enslaved to br0)
#   tpx<id>-nK    lo, eth0 = 10.77.<run>.K/24 (the peer of hub's vK)
# The veth pair is created from inside the hub namespace with its peer
# placed directly in the node namespace (ip -n HUB link add vK type veth
# peer name eth0 netns NODE), so no interface ever exists in the root
# namespace.  <id> is unique per test run (pid + random), so tests can run
# in parallel; <run> (1..250) is derived from it, and since every run has
# its own bridge two runs with the same <run> cannot see each other anyway.
# Nodes have no default route: only 10.77.<run>.0/24 is reachable.
#
# Partitions use iptables inside the node's namespace: policy DROP on INPUT
# and OUTPUT, loopback accepted.  Packets are dropped silently (no RST), as
# with a cut cable, so existing TCP connections stall rather than fail.
# Which iptables: the first of "iptables" (Debian 12: the nf_tables
# backend, iptables-nft), "iptables-legacy" that can list the filter table
# inside a fresh namespace; both work here (kernel 6.x, root), nft is used.
# (A missing iptables skips; one that exists but fails in a namespace fails.)
# NETNS_IPT holds the choice.
#
# Needs root, ip (iproute2) and iptables; netns_setup skips (exit 77) when
# one is missing.  A test killed with SIGKILL cannot run its trap: the
# namespace names are also listed in $T/netns.list for manual cleanup
# (ip netns del NAME).

NETNS_ID=
NETNS_RUN=
NETNS_N=0
NETNS_IPT=
NETNS_CREATED=()

# netns_name K: the namespace of node K ("hub" for the hub).
netns_name() {
	printf 'tpx%s-%s' "$NETNS_ID" "$([[ $1 == hub ]] && echo hub || echo "n$1")"
}

# netns_addr K: node K's IPv4 address.
netns_addr() {
	printf '10.77.%d.%d' "$NETNS_RUN" "$1"
}

_netns_add() {
	local name=$1
	ip netns add "$name" || fail "ip netns add $name failed"
	NETNS_CREATED+=("$name")
	printf '%s\n' "$name" >>"$T/netns.list"
	ip -n "$name" link set lo up || fail "lo up in $name failed"
}

# netns_setup N: create the hub and nodes 1..N; registers netns_teardown.
netns_setup() {
	local n=$1 k hub node ipt
	[[ -z $NETNS_ID ]] || fail "netns_setup: already set up"
	((n >= 1 && n <= 250)) || fail "netns_setup: bad node count $n"
	require_root
	require_tool ip iptables
	NETNS_ID=$$x$((RANDOM % 10000))
	NETNS_RUN=$((($$ + RANDOM) % 250 + 1))
	NETNS_N=$n
	on_exit netns_teardown
	hub=$(netns_name hub)
	_netns_add "$hub"
	# Pick an iptables that works inside a namespace.
	for ipt in iptables iptables-legacy; do
		command -v "$ipt" >/dev/null 2>&1 || continue
		if ip netns exec "$hub" "$ipt" -w 5 -t filter -S >/dev/null 2>&1; then
			NETNS_IPT=$ipt
			break
		fi
	done
	[[ -n $NETNS_IPT ]] || fail "neither iptables nor iptables-legacy works inside $hub"
	ip -n "$hub" link add br0 type bridge || fail "bridge in $hub failed"
	ip -n "$hub" link set br0 up || fail "br0 up failed"
	for ((k = 1; k <= n; k++)); do
		node=$(netns_name "$k")
		_netns_add "$node"
		ip -n "$hub" link add "v$k" type veth peer name eth0 netns "$node" ||
			fail "veth pair hub:v$k <-> $node:eth0 failed"
		ip -n "$hub" link set "v$k" master br0 up || fail "v$k into br0 failed"
		ip -n "$node" addr add "$(netns_addr "$k")/24" dev eth0 ||
			fail "address on $node failed"
		ip -n "$node" link set eth0 up || fail "eth0 up in $node failed"
	done
	log "netns: hub $hub, nodes $(netns_name 1)..$(netns_name "$n"), 10.77.$NETNS_RUN.0/24, $NETNS_IPT"
}

# netns_exec K CMD...: run CMD in node K's namespace.
netns_exec() {
	local k=$1
	shift
	if ! [[ $k =~ ^[0-9]+$ ]] || ((k < 1 || k > NETNS_N)); then
		fail "netns_exec: no node $k (nodes are 1..$NETNS_N)"
	fi
	ip netns exec "$(netns_name "$k")" "$@"
}

_netns_ipt() {
	local k=$1
	shift
	netns_exec "$k" "$NETNS_IPT" -w 5 "$@" ||
		fail "$NETNS_IPT $* in $(netns_name "$k") failed"
}

# netns_bg K CMD...: start CMD in node K's namespace in the background and
# set NETNS_BG_PID to its pid (the command's own pid: ip execs it).  Use it
# instead of "netns_exec K CMD &": a function run with & is a subshell, and
# signalling that subshell's pid would not reach CMD.  Redirect as needed:
#   netns_bg 2 cmd ... >"$T/out" 2>&1; pid=$NETNS_BG_PID
# shellcheck disable=SC2034 # set for the caller
NETNS_BG_PID=
netns_bg() {
	local k=$1
	shift
	netns_exec "$k" true # validates K
	ip netns exec "$(netns_name "$k")" "$@" &
	# shellcheck disable=SC2034 # read by the caller
	NETNS_BG_PID=$!
}

# netns_wait_for DESC SECONDS CMD...: like lib.sh's wait_for, but bounded
# by wall-clock time, for commands that themselves take seconds (a client
# with a timeout against a partitioned node): lib.sh's wait_for counts 0.1 s
# rounds, so a CMD taking 5 s would stretch it 50-fold.
netns_wait_for() {
	local desc=$1 secs=$2 end
	shift 2
	end=$((SECONDS + secs))
	while ((SECONDS < end)); do
		if "$@"; then
			return 0
		fi
		sleep 0.2
	done
	fail "timed out after ${secs}s waiting for $desc"
}

# netns_partition K: drop every packet in and out of node K (loopback
# excepted).  Existing connections stall; new ones time out.
netns_partition() {
	local k=$1
	_netns_ipt "$k" -F INPUT
	_netns_ipt "$k" -F OUTPUT
	_netns_ipt "$k" -A INPUT -i lo -j ACCEPT
	_netns_ipt "$k" -A OUTPUT -o lo -j ACCEPT
	_netns_ipt "$k" -P INPUT DROP
	_netns_ipt "$k" -P OUTPUT DROP
}

# netns_heal K: undo netns_partition K.
netns_heal() {
	local k=$1
	_netns_ipt "$k" -P INPUT ACCEPT
	_netns_ipt "$k" -P OUTPUT ACCEPT
	_netns_ipt "$k" -F INPUT
	_netns_ipt "$k" -F OUTPUT
}

# netns_flow_port K DST-ADDR DST-PORT: the local port of node K's
# established TCP connection to DST-ADDR:DST-PORT (the first if several).
netns_flow_port() {
	netns_exec "$1" ss -Htn state established dst "$2" dport = ":$3" |
		awk 'NR == 1 { n = split($3, a, ":"); print a[n] }'
}

# netns_block_flow K PEER-ADDR PEER-PORT / netns_unblock_flow (same args):
# in node K's namespace, drop one TCP connection's packets both ways (those
# from and to PEER-ADDR:PEER-PORT), leaving every other connection alone.
# The peer's kernel keeps retransmitting what it had queued on it.
netns_block_flow() {
	_netns_ipt "$1" -I INPUT -p tcp -s "$2" --sport "$3" -j DROP
	_netns_ipt "$1" -I OUTPUT -p tcp -d "$2" --dport "$3" -j DROP
}
netns_unblock_flow() {
	_netns_ipt "$1" -D INPUT -p tcp -s "$2" --sport "$3" -j DROP
	_netns_ipt "$1" -D OUTPUT -p tcp -d "$2" --dport "$3" -j DROP
}

# netns_is_partitioned K: true if node K's INPUT policy is DROP.
netns_is_partitioned() {
	netns_exec "$1" "$NETNS_IPT" -w 5 -S INPUT 2>/dev/null | grep -qx -- '-P INPUT DROP'
}

# netns_start_server K [EXTRA-ARGS...]: lib.sh's start_server, with the
# daemon running inside node K's namespace.  SERVER_PID is the daemon's
# own pid (ip netns exec execs it), so stop_server/kill_server work as usual.
netns_start_server() {
	local k=$1 real=$TPXD wrap
	shift
	[[ $TPX_SERVER == triplexd ]] || skip "netns_start_server needs TPX_SERVER=triplexd"
	wrap=$T/triplexd-in-$(netns_name "$k")
	printf '#!/bin/sh\nexec ip netns exec %q %q "$@"\n' \
		"$(netns_name "$k")" "$real" >"$wrap"
	chmod +x "$wrap"
	TPXD=$wrap
	start_server "$@"
	TPXD=$real
}

# netns_teardown: stop what still runs in our namespaces and delete them.
# Idempotent; safe from the exit trap.
netns_teardown() {
	local name pid i left
	((${#NETNS_CREATED[@]})) || return 0
	for name in "${NETNS_CREATED[@]}"; do
		for pid in $(ip netns pids "$name" 2>/dev/null); do
			kill -TERM "$pid" 2>/dev/null || true
		done
	done
	for ((i = 0; i < 50; i++)); do
		left=0
		for name in "${NETNS_CREATED[@]}"; do
			[[ -z $(ip netns pids "$name" 2>/dev/null) ]] || left=1
		done
		((left)) || break
		sleep 0.1
	done
	for name in "${NETNS_CREATED[@]}"; do
		for pid in $(ip netns pids "$name" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null || true
		done
	done
	# Nodes first, then the hub (which takes br0 and the veth ends with it).
	for ((i = ${#NETNS_CREATED[@]} - 1; i >= 0; i--)); do
		ip netns del "${NETNS_CREATED[i]}" 2>/dev/null || true
	done
	NETNS_CREATED=()
}
