#!/usr/bin/env bash
# The HTTP endpoint: /healthz, /readyz and /metrics (valid Prometheus text,
# counters that follow NBD I/O), 404 and 405, garbage requests that leave
# the daemon serving, no CPU when idle, and a clean SIGTERM with an HTTP
# connection still open.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_triplexd "the HTTP endpoint"
require_tool curl nbdcopy nbdinfo promtool

# A bad address is refused up front with one line and status 2.
create_volume demo 16M
for bad in nocolon 127.0.0.1:0 127.0.0.1:65536 127.0.0.1:http; do
	rc=0
	"$TPXD" --data-dir "$DATA_DIR" --listen-unix "$SOCK" --listen-http "$bad" \
		2>"$T/err" || rc=$?
	[[ $rc -eq 2 && $(wc -l <"$T/err") -eq 1 ]] ||
		fail "--listen-http $bad: status $rc, stderr: $(head -c 300 "$T/err")"
done

port=$(free_port)
start_server --listen-http "127.0.0.1:$port"
BASE=http://127.0.0.1:$port

# get PATH [curl-args...]: body to $T/body, prints "status content-type".
get() {
	local path=$1
	shift
	curl -sS --max-time 10 -o "$T/body" -w '%{http_code} %{content_type}' \
		"$@" "$BASE$path"
}

# metric NAME{LABELS}: the sample's value in $T/metrics (empty if absent).
metric() {
	awk -v k="$1" '$1 == k { print $2 }' "$T/metrics"
}

scrape() {
	local r
	r=$(get /metrics) || fail "curl /metrics failed"
	[[ $r == "200 text/plain; version=0.0.4"* ]] ||
		fail "/metrics answered '$r', want 200 text/plain; version=0.0.4"
	cp "$T/body" "$T/metrics"
}

# A second daemon on the same HTTP port fails with a clear line.
mkdir -p "$T/data2"
ctl volume create other --size 1M --data-dir "$T/data2" >/dev/null ||
	fail "volume create in data2 failed"
rc=0
"$TPXD" --data-dir "$T/data2" --listen-unix "$T/nbd2.sock" \
	--listen-http "127.0.0.1:$port" 2>"$T/err2" || rc=$?
((rc != 0)) || fail "second daemon on a busy HTTP port started"
grep -q "cannot listen for HTTP on 127.0.0.1:$port: Address already in use" "$T/err2" ||
	fail "busy HTTP port: $(tail -n 2 "$T/err2")"

r=$(get /healthz) || fail "curl /healthz failed"
[[ ${r%% *} == 200 && $(<"$T/body") == ok ]] ||
	fail "/healthz: '$r' body '$(<"$T/body")', want 200 ok"
r=$(get /readyz) || fail "curl /readyz failed"
[[ ${r%% *} == 200 ]] || fail "/readyz: '$r', want 200"

# Counters follow NBD I/O.
scrape
w0=$(metric 'triplex_volume_write_bytes_total{volume="demo"}')
r0=$(metric 'triplex_volume_read_bytes_total{volume="demo"}')
n0=$(metric 'triplex_nbd_requests_total')
[[ -n $w0 && -n $r0 && -n $n0 ]] || fail "volume or NBD counters missing from /metrics"
dd if=/dev/urandom of="$T/in.img" bs=1M count=4 status=none
nbdcopy --flush "$T/in.img" "$(uri demo)" || fail "nbdcopy into demo failed"
truncate -s 0 "$T/out.img"
nbdcopy "$(uri demo)" "$T/out.img" || fail "nbdcopy out of demo failed"
scrape
w1=$(metric 'triplex_volume_write_bytes_total{volume="demo"}')
r1=$(metric 'triplex_volume_read_bytes_total{volume="demo"}')
n1=$(metric 'triplex_nbd_requests_total')
((w1 - w0 >= 4 << 20)) || fail "write_bytes_total moved by $((w1 - w0)), wrote 4 MiB"
# nbdcopy skips holes: only the 4 MiB written are read.
((r1 - r0 >= 4 << 20)) || fail "read_bytes_total moved by $((r1 - r0)), read 4 MiB"
((n1 > n0)) || fail "triplex_nbd_requests_total did not move ($n0 -> $n1)"
[[ $(metric 'triplex_volume_size_bytes{volume="demo"}') == $((16 << 20)) ]] ||
	fail "triplex_volume_size_bytes{volume=\"demo\"} is not 16 MiB"
# The latency histogram counts every request, its buckets cumulative.
c1=$(metric 'triplex_volume_request_duration_seconds_count{volume="demo"}')
inf=$(metric 'triplex_volume_request_duration_seconds_bucket{volume="demo",le="+Inf"}')
[[ -n $c1 && $c1 == "$inf" ]] || fail "latency histogram: count '$c1', +Inf bucket '$inf'"
vreqs=$(awk '$1 ~ /^triplex_volume_requests_total\{volume="demo"/ { s += $2 } END { print s + 0 }' "$T/metrics")
((c1 == vreqs)) || fail "latency histogram counts $c1 requests, triplex_volume_requests_total $vreqs"
awk '$1 ~ /^triplex_volume_request_duration_seconds_bucket\{volume="demo"/ {
	if ($2 < prev) bad = 1; prev = $2 } END { exit bad }' "$T/metrics" ||
	fail "latency histogram buckets are not cumulative"
[[ $(metric 'triplex_disk_avail_bytes') =~ ^[0-9.e+]+$ ]] || fail "no triplex_disk_avail_bytes"
promtool check metrics <"$T/metrics" >"$T/promtool.out" 2>&1 ||
	fail "promtool check metrics: $(head -c 600 "$T/promtool.out")"

# Wrong path and wrong method.
r=$(get /nosuch) || fail "curl /nosuch failed"
[[ ${r%% *} == 404 ]] || fail "/nosuch answered '$r', want 404"
r=$(get /metrics -X POST -d x=1 -D "$T/headers") || fail "curl POST failed"
[[ ${r%% *} == 405 ]] || fail "POST /metrics answered '$r', want 405"
grep -qi '^Allow: GET, HEAD' "$T/headers" || fail "405 without an Allow header"
r=$(get /healthz -I) || fail "curl HEAD failed"
[[ ${r%% *} == 200 ]] || fail "HEAD /healthz answered '$r', want 200"

# Garbage: a 10 KB request line, binary junk, and a request left half-sent
# while others are served.
/usr/bin/python3 - "$port" <<'PY' || fail "garbage requests: $(tail -n 3 "$T/garbage.log" 2>/dev/null)"
import socket, sys
port = int(sys.argv[1])

def send(data, want_reply=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    got = s.recv(4096) if want_reply else b""
    return s, got

for junk in (b"GET /" + b"A" * 10240 + b" HTTP/1.1\r\n\r\n",
             b"X" * 10240 + b"\r\n\r\n",
             bytes(range(256)) * 40 + b"\r\n\r\n"):
    s, got = send(junk)
    s.close()
    # A reply (an error status) or a closed connection; never a hang.
    assert got == b"" or got.startswith(b"HTTP/1."), got[:80]
half, _ = send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n", want_reply=False)
s, got = send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
assert got.startswith(b"HTTP/1.1 200"), got[:80]
half.close()
PY
kill -0 "$SERVER_PID" 2>/dev/null || fail "triplexd died on garbage HTTP input"
r=$(get /healthz) || fail "curl /healthz after garbage failed"
[[ ${r%% *} == 200 ]] || fail "/healthz after garbage answered '$r'"
nbdinfo --size "$(uri demo)" >/dev/null || fail "NBD not served after garbage HTTP input"

# Idle: no busy polling. utime+stime over 2 s stays within a few ticks, and
# the loop completes no more work over 2 idle seconds than between two
# back-to-back scrapes (a scrape's own cost), give or take a timer.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
cqes() { scrape && metric triplex_loop_cqes_completed_total; }
sleep 0.5
c0=$(cpu_ticks)
q0=$(cqes)
q1=$(cqes)
sleep 2
q2=$(cqes)
c1=$(cpu_ticks)
((c1 - c0 <= 5)) || fail "idle daemon used $((c1 - c0)) ticks of CPU in 2 s"
((q2 - q1 <= q1 - q0 + 2)) ||
	fail "idle loop completed $((q2 - q1 - (q1 - q0))) more CQEs in 2 s than a scrape costs"

# SIGTERM with an HTTP connection open (keep-alive, mid-request) still
# stops promptly and cleanly.
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n' >&3
t0=$SECONDS
stop_server
exec 3<&-
((SECONDS - t0 <= 5)) || fail "shutdown took $((SECONDS - t0)) s with an HTTP connection open"
log PASS
