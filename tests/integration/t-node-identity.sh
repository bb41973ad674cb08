#!/usr/bin/env bash
# Node identity (issue 9). n1 serves volume vol (one replica) from data
# directory A. Then, each refused with a clear error and nothing changed:
#  - a second triplexd claiming node id n1 from directory B (n1's log
#    reports the refused claim too);
#  - a second triplexd on directory A under another id (the flock);
#  - directory A started as n2 once n1 is stopped (A belongs to n1).
# And allowed: n1 killed with SIGKILL and restarted on A at once registers
# again at once, although its old lease is still running, and serves the
# data it had. With TPX_META_KIND=etcd the store is a three-member etcd.
. "$(dirname "$0")/lib.sh"
require_triplexd "node identity"
require_tool nbdinfo nbdcopy

if [[ ${TPX_META_KIND:-sqlite} == etcd ]]; then
	. "$TPX_ITEST_DIR/etcd.sh"
	etcd_setup "127.0.0.1:$(free_port):$(free_port)" \
		"127.0.0.1:$(free_port):$(free_port)" "127.0.0.1:$(free_port):$(free_port)"
	export TRIPLEX_META=$ETCD_URL
else
	export TRIPLEX_META=sqlite:$T/meta.db
fi
mkdir -p "$T/A" "$T/B"

# node DIR ID LOG: start triplexd; sets NODE_PID.
node() {
	"$TPXD" --data-dir "$1" --node-id "$2" --zone zone-a --meta "$TRIPLEX_META" \
		--listen-repl "127.0.0.1:$(free_port)" --listen-unix "$1/nbd.sock" --insecure \
		>>"$3" 2>&1 &
	NODE_PID=$!
}
# refused DIR ID LOG WHAT PATTERN: that daemon must exit non-zero within
# 30 s, its log matching PATTERN.
refused() {
	local i
	node "$1" "$2" "$3"
	for ((i = 0; i < 300; i++)); do
		kill -0 "$NODE_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$NODE_PID" 2>/dev/null; then
		kill -KILL "$NODE_PID"
		fail "$4: the daemon is still running after 30 s"
	fi
	wait "$NODE_PID" && fail "$4: the daemon exited 0"
	grep -qE "$5" "$3" || fail "$4: no clear error in $3: $(tail -n 3 "$3")"
	log "refused $4: $(grep -E "$5" "$3" | tail -n 1)"
}
repl_addr() { ctl node list --json | /usr/bin/python3 -c 'import json,sys; print([n["addresses"]["repl"] for n in json.load(sys.stdin) if n["id"]=="n1"][0])'; }
_n1_listed() { ctl node list 2>/dev/null | grep -Eq '^n1 +up '; }
_served() { nbdinfo --size "nbd+unix:///vol?socket=$T/A/nbd.sock" >/dev/null 2>&1; }

node "$T/A" n1 "$T/n1.log"
N1=$NODE_PID
on_exit "kill -KILL \$N1"
wait_for "n1 registered" 30 _n1_listed
ctl volume create vol --size 8M --replicas 1 --min-replicas 1 >/dev/null || fail "volume create failed"
ctl volume attach vol --node n1 >/dev/null || fail "attach failed"
wait_for "vol served by n1" 30 _served
head -c 8M /dev/urandom >"$T/data"
nbdcopy --flush "$T/data" "nbd+unix:///vol?socket=$T/A/nbd.sock" || fail "write failed"
addr=$(repl_addr)

refused "$T/B" n1 "$T/dup.log" "a second daemon as n1" \
	"node id n1 is registered by another live triplexd"
[[ $(repl_addr) == "$addr" ]] || fail "the refused daemon changed n1's record: $(repl_addr) != $addr"
wait_for "n1 to report the refused claim" 15 \
	grep -q "tried to register as node n1 and was refused" "$T/n1.log"
[[ ! -e $T/B/replicas/vol ]] || fail "the refused daemon made a replica of vol"

refused "$T/A" n7 "$T/lock.log" "a second daemon on n1's directory" \
	"data directory .* is in use by another triplexd \(pid $N1\)"
_served || fail "n1 stopped serving after the refused daemons"

# kill -9 and restart at once: the old lease still runs, the instance in
# A/node.json is the same, so n1 takes its record back without waiting.
kill -KILL "$N1"
wait "$N1" 2>/dev/null || true
t0=$(date +%s%N)
node "$T/A" n1 "$T/n1.log"
N1=$NODE_PID
wait_for "vol served again by the restarted n1" 30 _served
back_ms=$((($(date +%s%N) - t0) / 1000000))
nbdcopy "nbd+unix:///vol?socket=$T/A/nbd.sock" "$T/back" || fail "read back failed"
cmp "$T/data" "$T/back" || fail "the restarted n1 serves other data"
grep -q "node id n1 is registered by another" "$T/n1.log" &&
	fail "the restarted n1 was refused its own id"

kill -TERM "$N1"
wait "$N1" || fail "n1 exited with status $? after SIGTERM"
refused "$T/A" n2 "$T/as-n2.log" "n1's directory started as n2" \
	"belongs to node n1, not n2"
log "figures: restarted n1 served again ${back_ms} ms after its kill -9 (lease 10 s still running); 3 bad starts refused"
log PASS
