#!/usr/bin/env bash
# Benchmark triplexd against other NBD servers with fio ioengine=nbd over
# Unix sockets.  Builds nothing: expects build/triplexd and build/triplexctl
# (the triplexd row is skipped with a note if they are missing).
#
# Servers (each on its own 1 GiB volume or file, on the same filesystem):
#   triplexd       this project, one daemon, one unreplicated volume
#   triplex-3rep-etcd  the same with `dev up --etcd` (metadata in a
#                  three-member etcd); in BENCH_SERVERS only when asked for
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
#   BENCH_REBUILD=1   0: skip the triplex-3rep rebuild phase (below)
#   BENCH_REBUILD_TIMEOUT=300  seconds a rebuild may take before giving up
# Rebuild phase (triplex-3rep, after its jobs; raw/triplex-3rep.rebuild-*):
#   1. sequential write bandwidth of this filesystem: fio io_uring, direct,
#      1M writes at QD8 over a 1 GiB file in BENCH_TMPDIR; and the copy
#      ceiling: that file read while a sparse 1 GiB file is written, both
#      1M at QD4, at once (a rebuild with every replica on this one disk
#      cannot beat the slower of the two);
#   2. p99 during a rebuild: n3 is stopped (SIGTERM), its replica directory
#      deleted, and it is restarted with its original command line (n1, the
#      engine, at its default rate cap); fio's 4k randwrite QD1 (no ramp,
#      BENCH_RUNTIME s, every latency logged) starts at once, its writes take
#      n3 out of the in-sync set and the engine rebuilds it; report.py takes
#      the p99 of the writes completed between n1's log lines "resync of n3
#      from ... starting" and "resync of n3 done".  If the rebuild ended
#      before fio did, this is repeated (3 runs at most) to gather about
#      BENCH_RUNTIME s of writes during rebuilds;
#   3. unthrottled rebuild: n1 restarted with --resync-rate 0 (the engine
#      paces resyncs), n3 wiped and restarted with --resync-rate 0 added, one
#      4k write through n1; bytes copied / time between the same log lines.
# Default run (15 s + 3 s ramp, 5 servers x 5 jobs): about 8 minutes, plus
# about a minute for the rebuild phase.
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

BENCH_REBUILD=${BENCH_REBUILD:-1}
BENCH_REBUILD_TIMEOUT=${BENCH_REBUILD_TIMEOUT:-300}
[[ $BENCH_REBUILD_TIMEOUT =~ ^[0-9]+$ ]] || die "BENCH_REBUILD_TIMEOUT must be whole seconds"

mkdir -p "$BENCH_OUT/raw"
WORK=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/tpx-bench.XXXXXX")
SERVER_PID=
DEV_DIR=    # set while a triplex-3rep cluster may be running
RESTARTED=  # triplexd pids the rebuild phase restarted
FIO_PID=    # a background fio of the rebuild phase
cleanup() {
	[[ -z $FIO_PID ]] || kill -TERM "$FIO_PID" 2>/dev/null || true
	stop_server || true
	stop_cluster || true
	stop_restarted || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Run copies of the binaries: a rebuild of $BUILD during the run would
# otherwise leave the daemons on deleted files, and the node the rebuild
# phase restarts on a different binary than the others.
TPXD=$WORK/bin/triplexd
TPXCTL=$WORK/bin/triplexctl
mkdir -p "$WORK/bin"
for b in triplexd triplexctl; do
	[[ ! -x $BUILD/$b ]] || cp "$BUILD/$b" "$WORK/bin/$b"
done

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
		"$TPXCTL" dev down --dir "$DEV_DIR" >&2 || true
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
		"$TPXCTL" volume create bench --size "$BENCH_SIZE" --data-dir "$dd" >>"$log" 2>&1 ||
			die "triplexctl volume create failed: $(tail -3 "$log")"
		"$TPXD" --data-dir "$dd" --listen-unix "$SOCK" \
			--pid-file "$WORK/pid" --log-level warn >>"$log" 2>&1 &
		SERVER_PID=$!
		wait_socket "$log"
		nbdcopy --connections=4 --flush "$SEED" "nbd+unix:///bench?socket=$SOCK" ||
			die "prefill of triplexd failed"
		;;
	triplex-3rep | triplex-3rep-etcd)
		# -etcd: the same cluster with its metadata in a three-member etcd;
		# the store is off the I/O path, so the two rows should match.
		local up_args=()
		[[ $name == *-etcd ]] && up_args=(--etcd)
		DEV_DIR=$WORK/dev
		rm -rf "$DEV_DIR" "$BENCH_OUT"/raw/$name.*.sample.json \
			"$BENCH_OUT"/raw/triplex-3rep.rebuild* "$BENCH_OUT"/raw/seqwrite-baseline.json "$BENCH_OUT"/raw/copy-baseline.json
		TRIPLEXD=$TPXD "$TPXCTL" dev up --dir "$DEV_DIR" "${up_args[@]}" \
			--size "$BENCH_SIZE" >>"$log" 2>&1 ||
			die "triplexctl dev up ${up_args[*]} failed: $(tail -5 "$log")"
		BENCH_URI=$(cluster uri "$DEV_DIR") || die "cannot read $DEV_DIR/cluster.json"
		nbdcopy --connections=4 --flush "$SEED" "$BENCH_URI" ||
			die "prefill of $name failed"
		drop_caches
		# Peak RSS so far (the prefill's), then count the jobs' peak afresh.
		cluster sample "$DEV_DIR" "$BENCH_OUT/raw/$name.prefill.sample.json"
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

# --- rebuild phase (triplex-3rep) -------------------------------------------
REB_NODE=n3         # the replica that is wiped and rebuilt; n1 is the engine

# stop_pid PID: SIGTERM, up to 15 s, then SIGKILL.
stop_pid() {
	local i
	kill -TERM "$1" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
# stop_restarted: the nodes this phase restarted (dev down also stops them,
# through the pids recorded in cluster.json; this covers an early exit).
stop_restarted() {
	local p
	for p in $RESTARTED; do stop_pid "$p"; done
	RESTARTED=
}

ctl_meta() { TRIPLEX_META="sqlite:$DEV_DIR/meta.db" "$TPXCTL" "$@"; }
reb_state() { ctl_meta volume show demo --json | cluster state "$REB_NODE"; }
all_in_sync() {
	ctl_meta volume show demo --json | /usr/bin/python3 -c \
		"import json,sys; v=json.load(sys.stdin); sys.exit(0 if all(p['state']=='in_sync' for p in v['placement']) else 1)"
}
# wait_until SECONDS CMD...: poll CMD every 0.2 s; 1 on timeout.
wait_until() {
	local t=$1 i
	shift
	for ((i = 0; i < t * 5; i++)); do
		"$@" && return 0
		sleep 0.2
	done
	return 1
}
log_size() { stat -c %s "$DEV_DIR/n1/triplexd.log"; }
rebuild_done_since() { cluster resync-log "$DEV_DIR/n1/triplexd.log" "$1" "$REB_NODE" | grep -q '"done_ms": [0-9]'; }
# One 4k write through n1 (also: n1 serves again after its restart).
poke() { nbdcopy "$WORK/poke.4k" "$BENCH_URI" 2>/dev/null; }

# restart_node NODE WIPE EXTRA_ARGS...: stop NODE, delete its replica of demo
# if WIPE is 1, start it again with its original command line + EXTRA_ARGS.
restart_node() {
	local id=$1 wipe=$2 pid dir cmd
	shift 2
	pid=$(cluster node "$DEV_DIR" "$id" pid)
	dir=$(cluster node "$DEV_DIR" "$id" data_dir)
	# Its original command line, binary first, kept \0-separated.
	if [[ ! -f $WORK/cmdline.$id ]]; then
		local exe
		exe=$(readlink "/proc/$pid/exe") || die "cannot read /proc/$pid/exe"
		{
			printf '%s\0' "${exe% (deleted)}"
			tr '\0' '\n' <"/proc/$pid/cmdline" | tail -n +2 | tr '\n' '\0'
		} >"$WORK/cmdline.$id"
	fi
	mapfile -d '' -t cmd <"$WORK/cmdline.$id"
	stop_pid "$pid"
	[[ $wipe != 1 ]] || rm -rf "$dir/replicas/demo"
	printf '%q ' "${cmd[@]}" "$@" >>"$BENCH_OUT/raw/triplex-3rep.rebuild.cmdlines"
	echo >>"$BENCH_OUT/raw/triplex-3rep.rebuild.cmdlines"
	(cd / && exec "${cmd[@]}" "$@" >>"$dir/triplexd.log" 2>&1) &
	RESTARTED="$RESTARTED $!"
	cluster set-pid "$DEV_DIR" "$id" "$!"
}

# qd1_during_rebuild K: wipe and restart $REB_NODE (n1's rate cap as it
# is), with fio's 4k randwrite QD1 running from the restart on.
qd1_during_rebuild() {
	local k=$1 raw=$BENCH_OUT/raw off
	wait_until 60 all_in_sync || die "replicas not all in sync before rebuild $k"
	off=$(log_size)
	restart_node "$REB_NODE" 1
	# fio's own writes take the wiped replica out of the in-sync set.
	BENCH_LATLOG=$raw/triplex-3rep.rebuild-qd1.$k \
		timeout $((BENCH_RUNTIME + 120)) fio --output-format=json \
		--output="$raw/triplex-3rep.rebuild-qd1.$k.json" \
		"$SRC/bench/jobs/rebuild/randwrite-4k-qd1-lat.fio" &
	FIO_PID=$!
	wait "$FIO_PID" || die "fio during rebuild $k failed (see $raw/triplex-3rep.rebuild-qd1.$k.json)"
	FIO_PID=
	rm -f "$raw/triplex-3rep.rebuild-qd1.${k}_lat.1.log" "$raw/triplex-3rep.rebuild-qd1.${k}_slat.1.log"
	wait_until "$BENCH_REBUILD_TIMEOUT" rebuild_done_since "$off" ||
		die "rebuild $k of $REB_NODE not done after ${BENCH_REBUILD_TIMEOUT}s"
	cluster resync-log "$DEV_DIR/n1/triplexd.log" "$off" "$REB_NODE" \
		>"$raw/triplex-3rep.rebuild-qd1.$k.resync.json"
}

# rebuild_phase: the three measurements described at the top.
rebuild_phase() {
	local raw=$BENCH_OUT/raw off k
	: >"$raw/triplex-3rep.rebuild.cmdlines"
	head -c 4096 /dev/urandom >"$WORK/poke.4k"

	echo "bench:   sequential write bandwidth of $(df --output=target "$WORK" | tail -1)" >&2
	timeout 300 fio --output-format=json --output="$raw/seqwrite-baseline.json" \
		--name=seqwrite-baseline --filename="$WORK/seqwrite.img" --ioengine=io_uring \
		--direct=1 --rw=write --bs=1M --iodepth=8 --size=1G ||
		die "fio sequential write baseline failed (see $raw/seqwrite-baseline.json)"
	# The copy ceiling: what a rebuild does to this one disk, without
	# triplex: read a written 1 GiB file while writing a sparse one, both
	# 1M at QD4 (a rebuild's 4 lanes), at once.
	echo "bench:   copy ceiling (read + sparse write at once) of the same filesystem" >&2
	truncate -s 1G "$WORK/copy-target.img"
	timeout 300 fio --output-format=json --output="$raw/copy-baseline.json" \
		--ioengine=io_uring --direct=1 --bs=1M --iodepth=4 --size=1G \
		--name=copy-read --filename="$WORK/seqwrite.img" --rw=read \
		--name=copy-write --filename="$WORK/copy-target.img" --rw=write --fallocate=none ||
		die "fio copy baseline failed (see $raw/copy-baseline.json)"
	rm -f "$WORK/seqwrite.img" "$WORK/copy-target.img"

	# p99 during rebuilds at n1's default rate cap.  Repeated (3 at most)
	# while the rebuilds together covered less than BENCH_RUNTIME s of fio.
	for ((k = 1; k <= 3; k++)); do
		echo "bench:   rebuild of $REB_NODE at the default rate cap during 4k randwrite QD1 ($k)" >&2
		qd1_during_rebuild "$k"
		if /usr/bin/python3 "$SRC/bench/report.py" --rebuild-covered "$BENCH_OUT"; then
			break
		fi
	done

	# Unthrottled: the pacing is the engine's, so n1 is restarted with
	# --resync-rate 0 (it serves demo again at the same epoch), and n3 with
	# it too, as the runbook says (a replica does not pace anything).
	echo "bench:   rebuild of $REB_NODE, unthrottled" >&2
	wait_until 60 all_in_sync || die "replicas not all in sync before the unthrottled rebuild"
	restart_node n1 0 --resync-rate 0
	wait_until 60 poke || die "n1 does not serve demo after its restart"
	wait_until 60 all_in_sync || die "replicas not all in sync after n1's restart"
	off=$(log_size)
	restart_node "$REB_NODE" 1 --resync-rate 0
	# It comes back without files: its OPEN fails, and the next write
	# takes it out of the in-sync set.
	for ((k = 0; k < 100; k++)); do
		poke || die "write through n1 failed while $REB_NODE was away"
		[[ $(reb_state) == in_sync ]] || break
		sleep 0.3
	done
	[[ $(reb_state) != in_sync ]] || die "$REB_NODE never left the in-sync set"
	wait_until "$BENCH_REBUILD_TIMEOUT" rebuild_done_since "$off" ||
		die "rebuild of $REB_NODE not done after ${BENCH_REBUILD_TIMEOUT}s"
	cluster resync-log "$DEV_DIR/n1/triplexd.log" "$off" "$REB_NODE" \
		>"$raw/triplex-3rep.rebuild-unthrottled.json"
	wait_until 30 all_in_sync || die "replicas not all in sync after the rebuild"
	ctl_meta volume show demo --json >"$raw/triplex-3rep.rebuild.volume.json" || true
}

servers_run=()
for server in $BENCH_SERVERS; do
	if [[ $server == triplex* && ! -x $TPXD ]]; then
		echo "bench: $BUILD/triplexd not built: skipping the $server row" >&2
		continue
	fi
	if [[ $server == triplex-3rep* && ! -x $TPXCTL ]]; then
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
	if [[ $server == triplex-3rep && $BENCH_REBUILD != 0 ]]; then
		rebuild_phase
		cluster sample "$DEV_DIR" "$BENCH_OUT/raw/$server.rebuild.sample.json"
	fi
	stop_server
	stop_cluster
	stop_restarted
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
