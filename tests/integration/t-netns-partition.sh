#!/usr/bin/env bash
# Simulated hosts (netns.sh) and a partition: triplexd runs in node 1's
# namespace on TCP 10.77.<run>.1:10809 (and a Unix socket); clients run in
# node 2's namespace.  Before the partition nbdinfo and an nbdcopy round
# trip work over TCP; while node 1 is partitioned (iptables DROP) a new
# client fails within a bounded time and the checker's writes stop being
# acknowledged; after the heal everything works again, the checker
# reconnects by itself and checker.py verify finds nothing lost.  The root
# namespace gains no interface and cannot reach the nodes.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
require_tool nbdinfo nbdcopy timeout
require_python_nbd
require_triplexd "a TCP listener inside a network namespace"

CHECKER=$TPX_ITEST_DIR/checker.py
PART_SECS=${TPX_PARTITION_SECS:-6}

root_links() { ip -o link show | awk -F': ' '{print $2}' | sort; }
root_links >"$T/root-links.before"

netns_setup 2
root_links >"$T/root-links.after"
cmp -s "$T/root-links.before" "$T/root-links.after" ||
	fail "netns_setup changed the root namespace's links: $(diff "$T/root-links.before" "$T/root-links.after" | tr '\n' ' ')"

A1=$(netns_addr 1)
TCP_URI="nbd://$A1:10809/demo"
CHK_URI="nbd://$A1:10809/chk"
create_volume demo 8M
create_volume chk 16M
netns_start_server 1 --listen-tcp "$A1:10809"
[[ $(ip netns identify "$SERVER_PID") == "$(netns_name 1)" ]] ||
	fail "triplexd (pid $SERVER_PID) is not in $(netns_name 1)"

# tcp_ok: a new client from node 2 gets the export size within 5 s.
tcp_ok() { netns_exec 2 timeout 5 nbdinfo --size "$TCP_URI" >"$T/size" 2>/dev/null; }
netns_wait_for "nbdinfo over TCP from node 2" 20 tcp_ok
[[ $(<"$T/size") -eq $((8 << 20)) ]] || fail "size over TCP is $(<"$T/size")"
# Isolation: the root namespace has no route to the nodes.
if timeout 5 nbdinfo --size "$TCP_URI" >/dev/null 2>&1; then
	fail "the root namespace reached $TCP_URI: the nodes are not isolated"
fi

# nbdcopy round trip from node 2, over TCP both ways.
dd if=/dev/urandom of="$T/in.img" bs=1M count=8 status=none
netns_exec 2 timeout 60 nbdcopy --flush "$T/in.img" "$TCP_URI" ||
	fail "nbdcopy to $TCP_URI from node 2 failed"
truncate -s 0 "$T/out.img"
netns_exec 2 timeout 60 nbdcopy "$TCP_URI" "$T/out.img" ||
	fail "nbdcopy from $TCP_URI in node 2 failed"
cmp "$T/in.img" "$T/out.img" || fail "round trip over TCP from node 2 differs"

# A write load from node 2 across the partition.
WLOG=$T/checker.log
acks() {
	local n
	n=$(grep -c '^A ' "$WLOG" 2>/dev/null) || true
	echo "${n:-0}"
}
acks_at_least() { (($(acks) >= $1)); }
checker_gone() { ! kill -0 "$CHECKER_PID" 2>/dev/null; }
netns_bg 2 /usr/bin/python3 "$CHECKER" write --uri "$CHK_URI" --log "$WLOG" \
	--duration $((PART_SECS + 60)) --inflight 8 --connections 2 \
	--sub-block-fraction 0.1 --flush-every 100 --connect-timeout 2 \
	--reconnect-interval 0.2 --op-timeout 2 --drain-timeout 5 \
	--seed "${TPX_CHECKER_SEED:-$RANDOM}" >"$T/write.out" 2>"$T/write.err"
CHECKER_PID=$NETNS_BG_PID
on_exit "kill -TERM $CHECKER_PID"
wait_for "1000 acknowledged writes over TCP" 30 acks_at_least 1000

# Partition node 1.
netns_partition 1
netns_is_partitioned 1 || fail "node 1 is not partitioned after netns_partition"
t0=$(date +%s%N)
rc=0
netns_exec 2 timeout 5 nbdinfo --size "$TCP_URI" >/dev/null 2>&1 || rc=$?
fail_ms=$((($(date +%s%N) - t0) / 1000000))
[[ $rc -ne 0 ]] || fail "nbdinfo from node 2 succeeded while node 1 is partitioned"
((fail_ms <= 7000)) || fail "the partitioned client took ${fail_ms} ms to give up"
log "partitioned: nbdinfo from node 2 failed (exit $rc) after ${fail_ms} ms"
# Nothing can be acknowledged through the partition (the log is fsync'd
# every 0.2 s, so 1 s in it holds every write acknowledged before).
sleep 1
acks_part_start=$(acks)
sleep $((PART_SECS - 1))
acks_part_end=$(acks)
((acks_part_end == acks_part_start)) ||
	fail "$((acks_part_end - acks_part_start)) writes acknowledged through the partition"
checker_gone && fail "checker gave up during the partition: $(tail -n 3 "$T/write.err")"

# Heal: new clients work again, the checker reconnects and goes on.
netns_heal 1
netns_is_partitioned 1 && fail "node 1 is still partitioned after netns_heal"
t0=$(date +%s%N)
netns_wait_for "nbdinfo over TCP after the heal" 30 tcp_ok
heal_ms=$((($(date +%s%N) - t0) / 1000000))
wait_for "the checker to resume after the heal" 30 acks_at_least $((acks_part_end + 1000))
truncate -s 0 "$T/out2.img"
netns_exec 2 timeout 60 nbdcopy "$TCP_URI" "$T/out2.img" ||
	fail "nbdcopy from $TCP_URI after the heal failed"
cmp "$T/in.img" "$T/out2.img" || fail "data read after the heal differs"

kill -TERM "$CHECKER_PID"
wait_for "the checker to stop" 20 checker_gone
rc=0
wait "$CHECKER_PID" || rc=$?
cat "$T/write.out" >&2
[[ $rc -eq 0 ]] || fail "checker write exited $rc: $(tail -n 5 "$T/write.err")"
summary=$(grep '^S ' "$WLOG" | tail -n 1 | cut -c3-)
fig() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$summary" "$1"; }
acked=$(fig acked) failed=$(fig failed) disconnects=$(fig disconnects)
timeouts=$(fig failed_timeout) connects=$(fig connects)
((disconnects >= 1)) || fail "the checker never dropped a stalled connection"
((connects >= 3)) || fail "the checker did not reconnect after the heal (connects=$connects)"

# The server was alive all along, so writes cut off by the partition may
# have landed at any time: --unknown-until-end.
vrc=0
netns_exec 2 /usr/bin/python3 "$CHECKER" verify --uri "$CHK_URI" --log "$WLOG" \
	--unknown-until-end --timeout 120 >"$T/verify.out" 2>&1 || vrc=$?
cat "$T/verify.out" >&2
[[ $vrc -eq 0 ]] || fail "verify after the partition found lost or corrupt writes (exit $vrc)"

stop_server
netns_teardown
for n in hub 1 2; do
	if ip netns list | grep -qw -- "$(NETNS_N=2 netns_name "$n")"; then
		fail "namespace $(netns_name "$n") left behind by netns_teardown"
	fi
done
root_links >"$T/root-links.end"
cmp -s "$T/root-links.before" "$T/root-links.end" || fail "root namespace links changed"
log "figures: partition ${PART_SECS}s; partitioned nbdinfo failed in ${fail_ms} ms; service back ${heal_ms} ms after the heal; checker acked=$acked failed=$failed (timeouts $timeouts) disconnects=$disconnects connects=$connects, acks during the partition=$((acks_part_end - acks_part_start)); verify: 0 lost"
log PASS
