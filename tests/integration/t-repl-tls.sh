#!/usr/bin/env bash
# Replication is mutual TLS (issue 11). vol (3 replicas) is served by n1.
# From the client namespace: a plaintext client, and a client with a
# certificate of another CA that names n2, each send n2's replica service a
# FENCE; both are closed before any reply, n2's epoch is unchanged and
# triplex_replica_auth_refused_total counts them. Then n3 comes back with
# n2's certificate (a valid node of the cluster CA, but not the node the
# metadata store names at that address): n1's engine refuses it, n3 stays
# out of sync while writes go on with n1 and n2. Back with its own
# certificate, n3 catches up and all three replicas are equal. Bounded:
# with --max-repl-connections 8, clients that connect and say nothing
# fill n2's cap beside the engine's connection, one more is closed at
# once, the engine's connection keeps serving, and the idle ones are
# closed by the 10 s TLS handshake timeout.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$TPX_ITEST_DIR/netns.sh"
# shellcheck source=tests/integration/cluster.sh
. "$TPX_ITEST_DIR/cluster.sh"

cluster_setup --io-timeout-ms 2000 --write-timeout-ms 5000 --max-repl-connections 8
for k in 1 2 3; do
	grep -q "node certificate valid for" "$(cluster_log "$k")" ||
		fail "n$k did not start with its node certificate"
done
# dev cert's certificates: valid for a year from a day back.
expiry=$(cluster_metric 1 triplex_node_cert_expiry_seconds)
((expiry > 363 * 86400 && expiry <= 365 * 86400)) ||
	fail "triplex_node_cert_expiry_seconds on n1 is $expiry, want about 364 days"
cluster_volume_create vol 16M
cluster_attach vol n1
cluster_wait_export vol 1
vid=$(cluster_field vol id)
epoch=$(cluster_field vol epoch)
nbdsh -u "$(cluster_uri vol 1)" -c "h.pwrite(b'BEFORE__' * 512, 0); h.flush()" ||
	fail "writing vol through n1 failed"
[[ $(cluster_states vol) == "n1=in_sync n2=in_sync n3=in_sync" ]] ||
	fail "not all in sync over TLS: $(cluster_states vol)"

# forge WHAT [ENV...]: a FENCE to epoch+5 at n2 from the client namespace.
forge() {
	local what=$1 got
	shift
	got=$(netns_exec "$CLUSTER_CLIENT" env "$@" /usr/bin/python3 "$TPX_ITEST_DIR/repl_forge.py" \
		"$(netns_addr 2)" "$CLUSTER_REPL_PORT" fence "$vid" $((epoch + 5))) ||
		fail "$what: repl_forge.py failed"
	[[ $got == closed || $got == "tls refused:"* ]] ||
		fail "$what was answered: '$got' (want the connection closed)"
	log "$what: $got"
}
refused0=$(cluster_metric 2 triplex_replica_auth_refused_total)
forge "a plaintext client"
mkdir -p "$T/other"
"$TPXCTL" dev cert n2 --dir "$T/other" >/dev/null || fail "dev cert (other CA) failed"
forge "a certificate of another CA naming n2" FORGE_CERT="$T/other/tls/n2.crt" \
	FORGE_KEY="$T/other/tls/n2.key" FORGE_CA="$T/tls/ca.crt"
refused=$(($(cluster_metric 2 triplex_replica_auth_refused_total) - refused0))
((refused >= 2)) || fail "auth_refused moved by $refused on n2, want at least 2"
[[ $(cluster_field vol epoch) == "$epoch" ]] || fail "vol's epoch moved: $(cluster_field vol epoch)"
nbdsh -u "$(cluster_uri vol 1)" -c "h.pwrite(b'AFTER___' * 512, 4096); h.flush()" ||
	fail "writing vol through n1 failed after the refused clients"
[[ $(cluster_states vol) == "n1=in_sync n2=in_sync n3=in_sync" ]] ||
	fail "a refused client moved a replica: $(cluster_states vol)"

# Idle clients fill n2's cap of 8 beside the engine's connection; one
# more is closed on arrival.
hs0=$(cluster_metric 2 triplex_replica_handshake_timeouts_total)
open=$(cluster_metric 2 triplex_replica_connections_open)
((open >= 1 && open < 8)) || fail "n2 has $open replication connections, want 1..7"
idle=$((8 - open))
netns_exec "$CLUSTER_CLIENT" /usr/bin/python3 "$TPX_ITEST_DIR/repl_idle.py" \
	"$(netns_addr 2)" "$CLUSTER_REPL_PORT" "$idle" >"$T/idle.out" &
idle_pid=$!
sleep 1.5 # the eight are open, the ninth was refused
nbdsh -u "$(cluster_uri vol 1)" -c "h.pwrite(b'CAPPED__' * 512, 12288); h.flush()" ||
	fail "writing vol failed while n2's replication cap was full"
[[ $(cluster_states vol) == "n1=in_sync n2=in_sync n3=in_sync" ]] ||
	fail "the idle clients cost a replica: $(cluster_states vol)"
wait "$idle_pid" || fail "repl_idle.py failed"
log "idle clients: $(tr '\n' ' ' <"$T/idle.out")"
grep -qx "extra: closed" "$T/idle.out" || fail "a ninth connection over the cap was served"
grep -qE "^idle: $idle closed after (9|1[0-9])\." "$T/idle.out" ||
	fail "the idle connections were not closed by the handshake timeout: $(cat "$T/idle.out")"
(($(cluster_metric 2 triplex_replica_connections_refused_total) >= 1)) ||
	fail "triplex_replica_connections_refused_total did not move"
(($(cluster_metric 2 triplex_replica_handshake_timeouts_total) >= hs0 + idle)) ||
	fail "triplex_replica_handshake_timeouts_total did not count the $idle"

# n3 with n2's certificate: the engine on n1 wants the name n3.
cluster_stop 3
cp "$T/tls/n3.crt" "$T/n3.crt.own" && cp "$T/tls/n3.key" "$T/n3.key.own"
cp "$T/tls/n2.crt" "$T/tls/n3.crt" && cp "$T/tls/n2.key" "$T/tls/n3.key"
log_off=$(stat -c %s "$(cluster_log 1)")
cluster_start_node 3
nbdsh -u "$(cluster_uri vol 1)" -c "h.pwrite(b'NOT-ON-3' * 512, 8192); h.flush()" ||
	fail "writing vol with two replicas failed"
_n1_refused_n3() { tail -c +"$log_off" "$(cluster_log 1)" | grep -q "replica client: .*TLS"; }
wait_for "n1's engine to refuse n3's certificate" 20 _n1_refused_n3
sleep 2 # the engine's reconnect backoff: give it a second try too
[[ $(cluster_state vol n3) == out_of_sync ]] ||
	fail "n3 with n2's certificate is $(cluster_state vol n3), want out_of_sync"
log "n1's engine: $(tail -c +"$log_off" "$(cluster_log 1)" | grep -m1 "replica client: .*TLS")"

# Its own certificate again: n3 catches up.
cluster_stop 3
mv "$T/n3.crt.own" "$T/tls/n3.crt" && mv "$T/n3.key.own" "$T/tls/n3.key"
cluster_start_node 3
cluster_wait_state vol n3 in_sync 60
nbdsh -u "$(cluster_uri vol 1)" -c 'assert h.pread(8, 0) == b"BEFORE__"; assert h.pread(8, 4096) == b"AFTER___"; assert h.pread(8, 8192) == b"NOT-ON-3"; assert h.pread(8, 12288) == b"CAPPED__"' ||
	fail "vol lost data"
cluster_flush vol 1
cmp_replicas vol 1 2 3
cluster_stop_all
log "figures: $refused strangers refused by n2's replication port (plaintext, another CA), n3 under another node's name refused by the engine, vol kept epoch $epoch"
log PASS
