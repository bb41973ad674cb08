#!/usr/bin/env bash
# Install what is missing, build, start the local three-node cluster
# serving volume `demo` over NBD, and run a short fio job against it. The
# cluster keeps running; the script prints how to stop it.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
# The cluster lives in this checkout's build directory: two checkouts on
# one machine do not share (or stop) each other's demo.
dir=${TPX_DEMO_DIR:-$src/build/demo}
export PATH=/usr/bin:$PATH

# build_progress: cmake's "[ 42%] ..." lines as one updating line on a
# terminal, a line per tenth otherwise; errors are shown in full.
build_progress() {
	local line pct last=-10
	while IFS= read -r line; do
		if [[ $line =~ ^\[\ *([0-9]+)%\] ]]; then
			pct=${BASH_REMATCH[1]}
			if [[ -t 1 ]]; then
				printf '\rquickstart: building %3d%%' "$pct"
			elif ((pct >= last + 10)); then
				echo "quickstart: building $pct%"
				last=$pct
			fi
		elif [[ $line == *error* || $line == *Error* ]]; then
			printf '\n%s\n' "$line" >&2
		fi
	done
	[[ -t 1 ]] && echo
	return 0
}

echo "quickstart: checking the Debian packages (tools/install-deps.sh)"
"$src/tools/install-deps.sh"
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$src/build" -j"$(nproc)" 2>&1 | build_progress
# The pipe hides cmake's status: check what it built.
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "quickstart: the build failed (above)" >&2; exit 1; }
bin=$src/build

if [ -f "$dir/cluster.json" ]; then
	echo "quickstart: stopping the previous demo cluster"
	"$bin/triplexctl" dev down --dir "$dir" || true
fi
rm -rf "$dir"
"$bin/triplexctl" dev up --dir "$dir" --size 1G

uri=$(/usr/bin/python3 -c "import json; print(json.load(open('$dir/cluster.json'))['volumes'][0]['nbd_uris'][0])")
echo "== volume demo: three replicas in zones a, b and c, served by n1"
TRIPLEX_META="sqlite:$dir/meta.db" "$bin/triplexctl" volume list
nbdinfo "$uri" | sed -n '1,6p'
echo "== fio: 4 KiB random writes with crc32c verify, then random reads (10 s each)"
cd "$dir"  # fio leaves its verify state file in the current directory
fio --name=demo --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k \
	--iodepth=32 --size=256M --time_based --runtime=10 --verify=crc32c \
	--verify_backlog=1024 --group_reporting --output-format=json \
	--output="$dir/fio-write.json" >/dev/null
fio --name=demo --ioengine=nbd --uri="$uri" --rw=randread --bs=4k \
	--iodepth=32 --size=256M --time_based --runtime=10 --group_reporting \
	--output-format=json --output="$dir/fio-read.json" >/dev/null
/usr/bin/python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
for name in ("write", "read"):
    job = json.load(open(f"{d}/fio-{name}.json"))["jobs"][0][name]
    print(f"rand{name:5} 4k QD32: {job['iops']:9.0f} IOPS, "
          f"p99 {job['clat_ns']['percentile']['99.000000'] / 1000:.0f} us")
PY
echo "== the cluster keeps running in $dir. To use it:"
echo "  export TRIPLEX_META=sqlite:$dir/meta.db"
echo "  $bin/triplexctl status"
echo "stop it with: $bin/triplexctl dev down --dir $dir"
