#!/usr/bin/env bash
# The shipped alert rules (deploy/prometheus/triplex-alerts.yml) load in
# Prometheus (promtool check rules), every alert has a unit test in
# triplex-alerts.test.yml, and those tests pass (promtool test rules: each
# alert fires on its series and stays quiet on healthy ones). Then a real
# triplexd's /metrics has every triplex_ series the rules name.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_tool promtool curl
D=$TPX_SRC/deploy/prometheus

promtool check rules "$D/triplex-alerts.yml" >"$T/check.out" 2>&1 ||
	fail "promtool check rules: $(cat "$T/check.out")"
alerts=$(sed -n 's/^ *- alert: *//p' "$D/triplex-alerts.yml" | sort -u)
tested=$(sed -n 's/.*alertname: *\([A-Za-z]*\).*/\1/p' "$D/triplex-alerts.test.yml" | sort -u)
untested=$(comm -23 <(echo "$alerts") <(echo "$tested"))
[[ -z $untested ]] || fail "alerts without a test: $untested"
(cd "$D" && promtool test rules triplex-alerts.test.yml) >"$T/test.out" 2>&1 ||
	fail "promtool test rules: $(head -c 2000 "$T/test.out")"

# Every triplex_ metric the rules use exists on a daemon.
[[ $TPX_SERVER == triplexd ]] || skip "the metric names are triplexd's"
HTTP=127.0.0.1:$(free_port)
# With a certificate, so that its expiry is on /metrics too.
require_tool openssl
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$T/key.pem" -out "$T/cert.pem" -days 2 -subj /CN=localhost 2>/dev/null ||
	fail "openssl: a certificate"
start_triplexd demo:16M -- --listen-http "$HTTP" --tls on \
	--tls-cert "$T/cert.pem" --tls-key "$T/key.pem"
nbdsh -u "$(uri demo)" -c 'h.pwrite(b"x" * 4096, 0)' || fail "a write to demo failed"
curl -sf "http://$HTTP/metrics" >"$T/metrics" || fail "curl /metrics failed"
stop_server
# Cluster-only families are not on a single daemon; t-fault-corrupt,
# t-epoch-forgery, t-repl-tls and t-metrics-replicas read them on cluster
# nodes.
cluster_only="triplex_replica_checksum_errors_total triplex_replica_epoch_refused_total"
cluster_only+=" triplex_replica_auth_refused_total triplex_node_cert_expiry_seconds"
cluster_only+=" triplex_volume_resync_done_bytes triplex_meta_up triplex_node_lease_age_seconds"
cluster_only+=" triplex_node_lease_ttl_seconds"
missing=
for m in $(grep -o 'triplex_[a-z_]*' "$D/triplex-alerts.yml" | sort -u); do
	[[ " $cluster_only " == *" $m "* ]] && continue
	grep -q "^# TYPE ${m%_bucket} " "$T/metrics" || missing="$missing $m"
done
[[ -z $missing ]] || fail "metrics the alert rules use are missing from /metrics:$missing"
n=$(echo "$alerts" | wc -l)
log "figures: $n alerts, each unit-tested by promtool; every single-node metric they use is served"
log PASS
