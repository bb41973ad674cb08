#!/usr/bin/env bash
# The shipped Grafana dashboard and alert rules work against real data
# (issue 8). Debian's Prometheus scrapes a dev cluster (three triplexd,
# mutual TLS) every second and evaluates deploy/prometheus/triplex-alerts.yml;
# after a short fio load on demo, every dashboard query must run through
# Prometheus' HTTP API and return data, and every alert rule must be loaded
# and evaluated without error (prom_eval.py). Nothing is firing on a
# healthy cluster.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_triplexd "the local three-node cluster"
require_tool prometheus fio curl
fio --enghelp 2>/dev/null | grep -qw nbd || skip "fio lacks the nbd engine"

D=$T/dev
on_exit "'$TPXCTL' dev down --dir '$D'"
ctl dev up --dir "$D" --size 128M >"$T/up.out" 2>&1 || {
	cat "$T/up.out" >&2
	fail "dev up failed"
}
json() { /usr/bin/python3 -c "import json,sys; d=json.load(open('$D/cluster.json')); print($1)"; }
targets=$(json '", ".join("\"%s\"" % n["http"] for n in d["nodes"])')
uri=$(json 'd["volumes"][0]["nbd_uris"][0]')

port=$(free_port)
cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $TPX_SRC/deploy/prometheus/triplex-alerts.yml
scrape_configs:
  - job_name: triplex
    static_configs:
      - targets: [$targets]
EOF
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom" \
	--web.listen-address="127.0.0.1:$port" >"$T/prometheus.log" 2>&1 &
PROM_PID=$!
on_exit "kill $PROM_PID"
PROM=http://127.0.0.1:$port
_prom_ready() {
	kill -0 "$PROM_PID" 2>/dev/null || fail "prometheus exited: $(tail -5 "$T/prometheus.log")"
	curl -sf "$PROM/-/ready" >/dev/null
}
wait_for "prometheus to be ready" 30 _prom_ready
_all_up() {
	curl -sf "$PROM/api/v1/query" --data-urlencode 'query=sum(up{job="triplex"})' |
		grep -q '"value":\[[0-9.]*,"3"\]'
}
wait_for "prometheus to scrape all three nodes" 30 _all_up

# A short mixed load, so that rates, latencies and bytes have data.
fio --name=load --ioengine=nbd --uri="$uri" --rw=randrw --bs=4k --iodepth=8 \
	--size=64M --time_based --runtime=8 --output="$T/fio.out" ||
	fail "fio failed: $(tail -5 "$T/fio.out")"
sleep 3 # two more scrapes after the load, for the rates' windows

/usr/bin/python3 "$TPX_ITEST_DIR/prom_eval.py" "$PROM" \
	"$TPX_SRC/deploy/grafana/triplex-dashboard.json" \
	"$TPX_SRC/deploy/prometheus/triplex-alerts.yml" >"$T/eval.out" ||
	fail "dashboard or alert evaluation: $(cat "$T/eval.out")"
summary=$(tail -1 "$T/eval.out")
[[ $summary == *"firing: none" ]] || fail "alerts fire on a healthy cluster: $summary"
log "figures: $summary"
log PASS
