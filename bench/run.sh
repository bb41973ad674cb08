#!/usr/bin/env bash
# Benchmark triplexd against other NBD servers with fio ioengine=nbd over
# Unix sockets.  Builds nothing: expects build/triplexd and build/triplexctl
# (the triplexd row is skipped with a note if they are missing).
#
# Servers (each on its own 1 GiB volume or file, on the same filesystem):
#   triplexd       this project, one daemon, one unreplicated volume
#   triplex-3rep   this project, three replicas: `triplexctl dev up` starts
#                  three triplexd on loopback (zones a, b, c), volume demo
#                  attached to n1 and served on n1's Unix socket; stopped
#                  with `triplexctl dev down` at the end.  Also measured:
#                  daemon CPU per I/O (per-daemon /metrics and /proc/PID/stat
#                  sampled around every job) and each daemon's peak RSS.
#   nbdkit-nocache nbdkit file plugin, cache=none
#   qemu-nbd       qemu-nbd --cache=none --aio=io_uring -f raw --shared=8
#   nbdkit-cache   nbdkit file plugin with default (page cache) caching:
#                  a reference row, not a peer
# Jobs (bench/jobs/*.fio): 4k randread QD32, 4k randwrite QD32, 4k randwrite
# QD1, 1M seqread, 1M seqwrite.
#
# Environment:
#   BENCH_RUNTIME=15  seconds per job      BENCH_RAMP=3   ramp seconds
#   BENCH_SIZE=1G     volume size          BENCH_OUT=bench/out
#   BENCH_SERVERS="triplexd triplex-3rep nbdkit-nocache qemu-nbd nbdkit-cache"
#   BENCH_JOBS="randread-4k-qd32 ..."      BENCH_TMPDIR=/var/tmp
#   TPX_BUILD=build   where triplexd and triplexctl are
# Default run (15 s + 3 s ramp, 5 servers x 5 jobs): about 8 minutes.
# Output: a table on stdout, $BENCH_OUT/results.csv, $BENCH_OUT/targets.csv
# (issue 3's three-replica targets), $BENCH_OUT/bench.png, raw fio JSON and
# daemon samples in $BENCH_OUT/raw/.
set -euo pipefail
export PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${TPX_BUILD:-$SRC/build}
export BENCH_RUNTIME=${BENCH_RUNTIME:-15}
export BENCH_RAMP=${BENCH_RAMP:-3}
export BENCH_SIZE=${BENCH_SIZE:-1G}
BENCH_OUT=${BENCH_OUT:-$SRC/bench/out}
BENCH_SERVERS=${BENCH_SERVERS:-triplexd triplex-3rep nbdkit-nocache qemu-nbd nbdkit-cache}
BENCH_JOBS=${BENCH_JOBS:-randread-4k-qd32 seqread-1m randwrite-4k-qd32 randwrite-4k-qd1 seqwrite-1m}
START_TIMEOUT=60

die() {
	echo "bench: $*" >&2
	exit 1
}
for t in fio nbdkit qemu-nbd nbdcopy gnuplot; do
	command -v "$t" >/dev/null || die "$t not installed (tools/install-deps.sh)"
done
fio --enghelp 2>/dev/null | grep -qw nbd || die "fio lacks the nbd engine"
[[ $BENCH_RUNTIME =~ ^[0-9]+$ && $BENCH_RAMP =~ ^[0-9]+$ ]] ||
	die "BENCH_RUNTIME and BENCH_RAMP must be whole seconds"

mkdir -p "$BENCH_OUT/raw"
WORK=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/tpx-bench.XXXXXX")
SERVER_PID=
DEV_DIR= # set while a triplex-3rep cluster may be running
cleanup() {
	stop_server || true
	stop_cluster || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SOCK=$WORK/nbd.sock
export BENCH_URI

# stop_server: SIGTERM by pid, bounded wait, then SIGKILL.
stop_server() {
	[[ -n $SERVER_PID ]] || return 0
	local i
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}

# stop_cluster: `triplexctl dev down` (SIGTERM, then SIGKILL after 15 s).  If
# dev up was interrupted before it wrote cluster.json, stop the daemons whose
# --data-dir is under this run's $DEV_DIR (a unique mktemp path).
stop_cluster() {
	[[ -n $DEV_DIR ]] || return 0
	if [[ -f $DEV_DIR/cluster.json ]]; then
		"$BUILD/triplexctl" dev down --dir "$DEV_DIR" >&2 || true
	else
		local p
		for p in /proc/[0-9]*; do
			tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "--data-dir $DEV_DIR/n" &&
				kill -TERM "${p#/proc/}" 2>/dev/null
		done
	fi
	DEV_DIR=
}

# wait_socket: until $SOCK exists; die with the log if the server exits.
wait_socket() {
	local log=$1 i
	for ((i = 0; i < START_TIMEOUT * 10; i++)); do
		[[ -S $SOCK ]] && return 0
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			tail -20 "$log" >&2
			die "server exited before its socket appeared"
		fi
		sleep 0.1
	done
	die "server socket $SOCK not there after ${START_TIMEOUT}s"
}

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}

# One random image, written into every server's storage so that reads
# return real data.
echo "bench: making a $BENCH_SIZE random image" >&2
SEED=$WORK/seed.img
size_bytes=$(numfmt --from=iec "$BENCH_SIZE")
head -c "$size_bytes" /dev/urandom >"$SEED"

cluster() { /usr/bin/python3 "$SRC/bench/cluster.py" "$@"; }

# start SERVER: start it on $SOCK with a prefilled volume named "bench".
start() {
	local name=$1 log=$BENCH_OUT/raw/$1.log
	rm -f "$SOCK"
	: >"$log"
	case $name in
	triplexd)
		local dd=$WORK/triplexd-data
		rm -rf "$dd"
		"$BUILD/triplexctl" volume create bench --size "$BENCH_SIZE" --data-dir "$dd" >>"$log" 2>&1 ||
			die "triplexctl volume create failed: $(tail -3 "$log")"
		"$BUILD/triplexd" --data-dir "$dd" --listen-unix "$SOCK" \
			--pid-file "$WORK/pid" --log-level warn >>"$log" 2>&1 &
		SERVER_PID=$!
		wait_socket "$log"
		nbdcopy --connections=4 --flush "$SEED" "nbd+unix:///bench?socket=$SOCK" ||
			die "prefill of triplexd failed"
		;;
	triplex-3rep)
		DEV_DIR=$WORK/dev
		rm -rf "$DEV_DIR" "$BENCH_OUT"/raw/triplex-3rep.*.sample.json
		TRIPLEXD=$BUILD/triplexd "$BUILD/triplexctl" dev up --dir "$DEV_DIR" \
			--size "$BENCH_SIZE" >>"$log" 2>&1 ||
			die "triplexctl dev up failed: $(tail -5 "$log")"
		BENCH_URI=$(cluster uri "$DEV_DIR") || die "cannot read $DEV_DIR/cluster.json"
		nbdcopy --connections=4 --flush "$SEED" "$BENCH_URI" ||
			die "prefill of triplex-3rep failed"
		drop_caches
		# Peak RSS so far (the prefill's), then count the jobs' peak afresh.
		cluster sample "$DEV_DIR" "$BENCH_OUT/raw/triplex-3rep.prefill.sample.json"
		cluster reset-hwm "$DEV_DIR"
		return 0
		;;
	nbdkit-nocache | nbdkit-cache | qemu-nbd)
		local f=$WORK/$name.img
		rm -f "$f"
		dd if="$SEED" of="$f" bs=1M oflag=direct status=none
		drop_caches
		case $name in
		nbdkit-nocache)
			nbdkit --unix "$SOCK" --foreground -e bench file "$f" cache=none >>"$log" 2>&1 &
			;;
		nbdkit-cache)
			nbdkit --unix "$SOCK" --foreground -e bench file "$f" >>"$log" 2>&1 &
			;;
		qemu-nbd)
			qemu-nbd --cache=none --aio=io_uring -f raw --socket "$SOCK" \
				--shared=8 --persistent -x bench "$f" >>"$log" 2>&1 &
			;;
		esac
		SERVER_PID=$!
		wait_socket "$log"
		;;
	*) die "unknown server '$name'" ;;
	esac
	BENCH_URI="nbd+unix:///bench?socket=$SOCK"
}

servers_run=()
for server in $BENCH_SERVERS; do
	if [[ $server == triplex* && ! -x $BUILD/triplexd ]]; then
		echo "bench: $BUILD/triplexd not built: skipping the $server row" >&2
		continue
	fi
	if [[ $server == triplex-3rep && ! -x $BUILD/triplexctl ]]; then
		echo "bench: $BUILD/triplexctl not built: skipping the $server row" >&2
		continue
	fi
	echo "bench: $server" >&2
	start "$server"
	for job in $BENCH_JOBS; do
		[[ -f $SRC/bench/jobs/$job.fio ]] || die "no job file bench/jobs/$job.fio"
		out=$BENCH_OUT/raw/$server.$job.json
		sample=$BENCH_OUT/raw/$server.$job
		[[ -z $DEV_DIR ]] || cluster sample "$DEV_DIR" "$sample.before.sample.json"
		timeout $((BENCH_RUNTIME + BENCH_RAMP + 120)) \
			fio --output-format=json --output="$out" "$SRC/bench/jobs/$job.fio" ||
			die "fio $job against $server failed (see $out)"
		[[ -z $DEV_DIR ]] || cluster sample "$DEV_DIR" "$sample.after.sample.json"
		echo "bench:   $job done" >&2
	done
	[[ -z $DEV_DIR ]] || cluster sample "$DEV_DIR" "$BENCH_OUT/raw/$server.end.sample.json"
	stop_server
	stop_cluster
	servers_run+=("$server")
done
((${#servers_run[@]})) || die "no server was benchmarked"

/usr/bin/python3 "$SRC/bench/report.py" "$BENCH_OUT" "${servers_run[*]}" "$BENCH_JOBS"
n1m=0
for job in $BENCH_JOBS; do [[ $job == *-1m* ]] && n1m=$((n1m + 1)); done
n4k=$(($(wc -w <<<"$BENCH_JOBS") - n1m))
gnuplot -e "datafile='$BENCH_OUT/plot.dat'; outfile='$BENCH_OUT/bench.png'; nservers=${#servers_run[@]}; n4k=$n4k; n1m=$n1m" \
	"$SRC/bench/plot.gp" || die "gnuplot failed"
echo "bench: results in $BENCH_OUT/results.csv and $BENCH_OUT/bench.png" >&2
