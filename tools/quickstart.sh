#!/usr/bin/env bash
# Install what is missing, build, serve volume `demo` over NBD and run a
# short fio job against it. Leaves the daemon running; prints how to stop it.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
dir=${TPX_DEMO_DIR:-/tmp/triplex-demo}
export PATH=/usr/bin:$PATH

"$src/tools/install-deps.sh"
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$src/build" -j"$(nproc)" >/dev/null
bin=$src/build

if [ -f "$dir/triplexd.pid" ] && kill -0 "$(cat "$dir/triplexd.pid")" 2>/dev/null; then
	echo "quickstart: stopping the previous demo daemon"
	kill "$(cat "$dir/triplexd.pid")"
	for _ in $(seq 50); do [ -f "$dir/triplexd.pid" ] || break; sleep 0.1; done
fi
rm -rf "$dir"
mkdir -p "$dir"
"$bin/triplexctl" volume create demo --size 1G --data-dir "$dir/node1"
sock=$dir/node1/nbd.sock
"$bin/triplexd" --data-dir "$dir/node1" --listen-unix "$sock" \
	--listen-tcp 127.0.0.1:10809 --pid-file "$dir/triplexd.pid" \
	2>"$dir/triplexd.log" &
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { cat "$dir/triplexd.log"; echo "quickstart: triplexd did not start" >&2; exit 1; }

uri="nbd+unix:///demo?socket=$sock"
echo "== serving volume demo at $uri and nbd://127.0.0.1:10809/demo"
nbdinfo "$uri" | sed -n '1,12p'
echo "== fio: 4 KiB random writes then reads with crc32c verify (10 s each)"
fio --name=demo --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k \
	--iodepth=32 --size=256M --time_based --runtime=10 --verify=crc32c \
	--verify_backlog=1024 --group_reporting --output-format=json \
	>"$dir/fio-write.json"
fio --name=demo --ioengine=nbd --uri="$uri" --rw=randread --bs=4k \
	--iodepth=32 --size=256M --time_based --runtime=10 --group_reporting \
	--output-format=json >"$dir/fio-read.json"
/usr/bin/python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
for name, kind in (("write", "write"), ("read", "read")):
    job = json.load(open(f"{d}/fio-{name}.json"))["jobs"][0][kind]
    print(f"rand{name:5} 4k QD32: {job['iops']:9.0f} IOPS, "
          f"p99 {job['clat_ns']['percentile']['99.000000'] / 1000:.0f} us")
PY
echo "== the daemon keeps running; stop it with: kill \$(cat $dir/triplexd.pid)"
