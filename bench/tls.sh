#!/usr/bin/env bash
# What NBD over TLS costs: fio ioengine=nbd on a Unix socket, 4k randwrite
# QD32 and 1M seqwrite QD8, against one triplexd (an unreplicated volume)
# and nbdkit's file plugin, each in plaintext and with --tls require (X.509:
# fio's nbd engine may not name a PSK file, so libnbd reads certificates
# from $HOME/.pki/libnbd). Prints IOPS, MB/s, the TLS/plain ratio and the
# server's CPU microseconds per I/O. Figures, not a test.
#
#   BENCH_RUNTIME=10   seconds per job     BENCH_SIZE=1G
#   TPX_BUILD=build    where triplexd is   BENCH_TMPDIR=/var/tmp
set -euo pipefail
export PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${TPX_BUILD:-$SRC/build}
RUNTIME=${BENCH_RUNTIME:-10}
SIZE=${BENCH_SIZE:-1G}
W=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/tpx-bench-tls.XXXXXX")
PID=
cleanup() {
	[[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

# Credentials: a CA, a server certificate for localhost, a client one.
P=$W/pki
mkdir -p "$P/nbdkit" "$W/home/.pki/libnbd"
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$P/ca-key.pem" -out "$P/ca-cert.pem" -days 1 -subj /CN=bench-ca
for who in server client; do
	ossl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$P/$who-key.pem" -out "$P/$who.csr" -subj "/CN=$who"
	printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=%sAuth\n' "$who" >"$P/$who.ext"
	ossl x509 -req -in "$P/$who.csr" -CA "$P/ca-cert.pem" -CAkey "$P/ca-key.pem" \
		-CAcreateserial -out "$P/$who-cert.pem" -days 1 -extfile "$P/$who.ext"
done
cp "$P/ca-cert.pem" "$P/server-cert.pem" "$P/server-key.pem" "$P/nbdkit/"
cp "$P/ca-cert.pem" "$P/client-cert.pem" "$P/client-key.pem" "$W/home/.pki/libnbd/"

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# run NAME TLS(0|1) JOB RW BS QD: one fio job; prints a result line.
run() {
	local name=$1 tls=$2 job=$3 rw=$4 bs=$5 qd=$6 t0 t1 out=$W/$1-$2-$3.json
	local uri="nbd+unix:///demo?socket=$W/sock"
	((tls)) && uri="nbds+unix:///demo?socket=$W/sock"
	t0=$(cpu_ticks "$PID")
	HOME=$W/home fio --name="$job" --ioengine=nbd --uri="$uri" --rw="$rw" --bs="$bs" \
		--iodepth="$qd" --size="$SIZE" --time_based --runtime="$RUNTIME" \
		--ramp_time=2 --output-format=json >"$out" 2>/dev/null
	t1=$(cpu_ticks "$PID")
	/usr/bin/python3 - "$out" "$name" "$tls" "$job" $((t1 - t0)) "$(getconf CLK_TCK)" <<'PY'
import json, sys
out, name, tls, job, ticks, hz = sys.argv[1:]
raw = open(out).read()
j = json.loads(raw[raw.index("{"):])["jobs"][0]["write"]  # fio may print notes first
ios = j["total_ios"] or 1
print("%-8s %-5s %-18s %9.0f IOPS %8.1f MB/s %7.1f us CPU/IO" % (
    name, "tls" if tls == "1" else "plain", job, j["iops"], j["bw_bytes"] / 1e6,
    int(ticks) / int(hz) * 1e6 / ios))
PY
}

start_triplexd() {
	rm -rf "$W/data" "$W/sock"
	"$BUILD/triplexd" --data-dir "$W/data" --create-volume demo --size "$SIZE" >/dev/null
	"$BUILD/triplexd" --data-dir "$W/data" --listen-unix "$W/sock" --log-level warn "$@" &
	PID=$!
	for _ in $(seq 100); do [[ -S $W/sock ]] && return; sleep 0.1; done
	echo "triplexd did not start" >&2
	exit 1
}
start_nbdkit() {
	rm -f "$W/sock" "$W/disk"
	truncate -s "$SIZE" "$W/disk"
	nbdkit --unix "$W/sock" --foreground --exportname demo "$@" file "$W/disk" cache=none &
	PID=$!
	for _ in $(seq 100); do [[ -S $W/sock ]] && return; sleep 0.1; done
	echo "nbdkit did not start" >&2
	exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }

results=$W/results
for tls in 0 1; do
	args=()
	((tls)) && args=(--tls require --tls-cert "$P/server-cert.pem" --tls-key "$P/server-key.pem")
	start_triplexd "${args[@]}"
	run triplexd $tls randwrite-4k-qd32 randwrite 4k 32 | tee -a "$results"
	run triplexd $tls seqwrite-1m-qd8 write 1M 8 | tee -a "$results"
	stop
	args=()
	((tls)) && args=(--tls=require --tls-certificates="$P/nbdkit")
	start_nbdkit "${args[@]}"
	run nbdkit $tls randwrite-4k-qd32 randwrite 4k 32 | tee -a "$results"
	run nbdkit $tls seqwrite-1m-qd8 write 1M 8 | tee -a "$results"
	stop
done
echo "--- TLS / plain (IOPS)"
awk '{ v[$1 " " $3 " " $2] = $4 }
END {
	for (k in v) if (k ~ / plain$/) {
		base = substr(k, 1, length(k) - 6)
		if ((base " tls") in v)
			printf "%-30s %.2fx\n", base, v[base " tls"] / v[k]
	}
}' "$results" | sort
