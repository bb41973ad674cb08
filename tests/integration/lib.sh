# shellcheck shell=bash
# Common helpers for the integration tests (tests/integration/t-*.sh).
#
# Source it first thing:   . "$(dirname "$0")/lib.sh"
#
# Environment:
#   TPX_BUILD   build directory holding triplexd and triplexctl (ctest sets it)
#   TPX_SRC     source directory (ctest sets it)
#   TPX_SERVER  "triplexd" (default) or "nbdkit": run the same client checks
#               against an nbdkit file-plugin stand-in, to check the tests
#               themselves.  Behaviours only triplexd has are skipped there.
#   TPX_KEEP_TMP=1  keep the per-test temp dir (it is always kept on failure)
#   TPX_START_TIMEOUT  seconds to wait for the daemon socket (default 60)
#
# Every test gets its own temp dir ($T), Unix socket and data dir, so tests
# can run in parallel (ctest -j).  Every wait is bounded.  Processes are
# stopped by pid, never by name.

set -euo pipefail

# python3 from pyenv lacks the libnbd bindings; nbdsh runs "python3 -mnbd".
export PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH
export LC_ALL=C

TEST_NAME=$(basename "$0" .sh)
TPX_SRC=${TPX_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TPX_BUILD=${TPX_BUILD:-$TPX_SRC/build}
TPX_SERVER=${TPX_SERVER:-triplexd}
TPX_START_TIMEOUT=${TPX_START_TIMEOUT:-60}
TPX_STOP_TIMEOUT=${TPX_STOP_TIMEOUT:-30}
TPXD=$TPX_BUILD/triplexd
TPXCTL=$TPX_BUILD/triplexctl
# Our own helper scripts live beside this file.
TPX_ITEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Sanitizer settings for the daemon and CLI when they are ASan builds.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# Temp dir on a real filesystem (triplexd uses O_DIRECT; tmpfs refuses it).
T=$(mktemp -d "${TPX_TMPDIR:-/var/tmp}/tpx-$TEST_NAME.XXXXXX")
# triplexd's default config file, moved into $T (missing: no settings) so
# that this machine's /etc/triplex/triplexd.conf cannot change the tests.
export TRIPLEXD_CONFIG=$T/triplexd-default.conf
DATA_DIR=$T/data
SOCK=$T/nbd.sock
SERVER_PID=
SERVER_LOG=$T/server.log
_TPX_CLEANUP=()
_TPX_IN_EXIT=0
_TPX_LATE_FAIL=0

log() { printf '%s: %s\n' "$TEST_NAME" "$*" >&2; }

# fail MSG: print one clear line (and the daemon log tail) and exit 1.
fail() {
	printf 'FAIL: %s: %s\n' "$TEST_NAME" "$*" >&2
	if [[ -s $SERVER_LOG ]]; then
		printf -- '--- last lines of %s ---\n' "$SERVER_LOG" >&2
		tail -n 40 "$SERVER_LOG" >&2 || true
	fi
	# Inside the exit trap: record the failure and let cleanup go on.
	if [[ $_TPX_IN_EXIT == 1 ]]; then
		_TPX_LATE_FAIL=1
		return 1
	fi
	exit 1
}

# skip MSG: exit 77 (ctest SKIP_RETURN_CODE).  Only for a missing tool.
skip() {
	printf 'SKIP: %s: %s\n' "$TEST_NAME" "$*" >&2
	exit 77
}

# require_tool CMD...: skip unless every command is on PATH.
require_tool() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || skip "required tool '$t' is not installed"
	done
}

# require_python_nbd: skip unless /usr/bin/python3 can import libnbd.
require_python_nbd() {
	/usr/bin/python3 -c 'import nbd' 2>/dev/null ||
		skip "python3-libnbd is not installed"
}

# require_root: skip unless running as root (loop devices, mount).
require_root() {
	[[ $(id -u) -eq 0 ]] || skip "needs root"
}

# require_triplexd REASON: skip a behaviour that only triplexd has when the
# nbdkit stand-in is in use.
require_triplexd() {
	[[ $TPX_SERVER == triplexd ]] ||
		skip "TPX_SERVER=$TPX_SERVER: $* is a triplexd behaviour"
}

# on_exit CMD...: register a cleanup command (run in reverse order).
on_exit() {
	_TPX_CLEANUP+=("$*")
}

_tpx_exit() {
	local rc=$? i
	set +e
	_TPX_IN_EXIT=1
	for ((i = ${#_TPX_CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${_TPX_CLEANUP[i]}" >/dev/null 2>&1
	done
	if [[ -n $SERVER_PID ]]; then
		stop_server
	fi
	if [[ $rc -eq 0 && $_TPX_LATE_FAIL == 1 ]]; then
		rc=1
	fi
	if [[ $rc -ne 0 && $rc -ne 77 ]] || [[ ${TPX_KEEP_TMP:-0} == 1 ]]; then
		printf '%s: temp dir kept: %s\n' "$TEST_NAME" "$T" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap _tpx_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for DESC SECONDS CMD...: run CMD every 0.1 s until it succeeds;
# fail once SECONDS have passed (by the clock, however long CMD takes).
wait_for() {
	local desc=$1 secs=$2 deadline
	shift 2
	deadline=$((SECONDS + secs))
	while ((SECONDS < deadline)); do
		if "$@"; then
			return 0
		fi
		sleep 0.1
	done
	fail "timed out after ${secs}s waiting for $desc"
}

# ctl ARGS...: run triplexctl.
ctl() {
	"$TPXCTL" "$@"
}

# create_volume NAME SIZE: create volume NAME in $DATA_DIR.
create_volume() {
	local name=$1 size=$2
	mkdir -p "$DATA_DIR"
	case $TPX_SERVER in
	triplexd)
		[[ -x $TPXCTL ]] || fail "$TPXCTL not built"
		ctl volume create "$name" --size "$size" --data-dir "$DATA_DIR" ||
			fail "triplexctl volume create $name --size $size failed"
		;;
	nbdkit)
		# truncate's K/M/G suffixes are powers of 1024, like triplexctl's.
		mkdir -p "$DATA_DIR/volumes/$name"
		truncate -s "$size" "$DATA_DIR/volumes/$name/data"
		;;
	*) fail "unknown TPX_SERVER=$TPX_SERVER" ;;
	esac
}

_server_ready() {
	if ! kill -0 "$SERVER_PID" 2>/dev/null; then
		local rc=0
		wait "$SERVER_PID" || rc=$?
		SERVER_PID=
		fail "$TPX_SERVER exited (status $rc) before its socket appeared"
	fi
	[[ -S $SOCK ]]
}

# start_server [EXTRA-ARGS...]: serve every volume in $DATA_DIR on $SOCK.
# Sets SERVER_PID.  EXTRA-ARGS go to triplexd (e.g. --listen-tcp H:P).
start_server() {
	[[ -z $SERVER_PID ]] || fail "start_server: a server is already running"
	rm -f "$SOCK" "$T/server.pid"
	mkdir -p "$DATA_DIR"
	printf '=== start %s at %s\n' "$TPX_SERVER" "$(date +%T)" >>"$SERVER_LOG"
	case $TPX_SERVER in
	triplexd)
		[[ -x $TPXD ]] || fail "$TPXD not built"
		"$TPXD" --data-dir "$DATA_DIR" --listen-unix "$SOCK" \
			--pid-file "$T/server.pid" --log-level "${TPX_LOG_LEVEL:-info}" \
			"$@" >>"$SERVER_LOG" 2>&1 &
		SERVER_PID=$!
		;;
	nbdkit)
		require_tool nbdkit
		local exports=$T/exports v
		rm -rf "$exports"
		mkdir -p "$exports"
		for v in "$DATA_DIR"/volumes/*/; do
			[[ -e $v/data ]] || continue
			ln -s "$v/data" "$exports/$(basename "$v")"
		done
		# nbdkit listens on one socket only.
		(($# == 0)) || skip "stand-in cannot do: $*"
		# Same block size constraints as triplexd.
		nbdkit --unix "$SOCK" --foreground \
			--pidfile "$T/server.pid" --filter=blocksize-policy \
			file dir="$exports" blocksize-minimum=1 \
			blocksize-preferred=4096 blocksize-maximum=32M \
			blocksize-error-policy=error \
			>>"$SERVER_LOG" 2>&1 &
		SERVER_PID=$!
		;;
	*) fail "unknown TPX_SERVER=$TPX_SERVER" ;;
	esac
	wait_for "$TPX_SERVER socket $SOCK" "$TPX_START_TIMEOUT" _server_ready
	# The pid file must name the process we started.
	wait_for "pid file $T/server.pid" 10 test -s "$T/server.pid"
	local filepid
	filepid=$(<"$T/server.pid")
	[[ $filepid == "$SERVER_PID" ]] ||
		fail "pid file says $filepid, started pid is $SERVER_PID"
}

# start_triplexd NAME:SIZE... [-- EXTRA-ARGS...]: create the volumes, then
# start the server.
start_triplexd() {
	while (($#)); do
		if [[ $1 == -- ]]; then
			shift
			break
		fi
		create_volume "${1%%:*}" "${1#*:}"
		shift
	done
	start_server "$@"
}

_server_gone() { ! kill -0 "$SERVER_PID" 2>/dev/null; }

# check_server_log: fail if the log holds a sanitizer report.
check_server_log() {
	if grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' \
		"$SERVER_LOG" 2>/dev/null; then
		fail "sanitizer report in $SERVER_LOG"
	fi
}

# stop_server: SIGTERM, wait (bounded), then SIGKILL.  Fails the test if the
# daemon needed SIGKILL, exited non-zero, or left a sanitizer report.
stop_server() {
	[[ -n $SERVER_PID ]] || return 0
	local pid=$SERVER_PID rc=0 i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < TPX_STOP_TIMEOUT * 10; i++)); do
		_server_gone && break
		sleep 0.1
	done
	if ! _server_gone; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		SERVER_PID=
		fail "$TPX_SERVER (pid $pid) ignored SIGTERM for ${TPX_STOP_TIMEOUT}s; killed"
	fi
	wait "$pid" 2>/dev/null || rc=$?
	SERVER_PID=
	check_server_log
	[[ $rc -eq 0 ]] || fail "$TPX_SERVER exited with status $rc after SIGTERM"
	if [[ -e $SOCK && $TPX_SERVER == triplexd ]]; then
		log "note: socket $SOCK still exists after shutdown"
	fi
}

# kill_server: SIGKILL (a crash), no checks.
kill_server() {
	[[ -n $SERVER_PID ]] || return 0
	kill -KILL "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}

# uri NAME: the NBD URI of export NAME on our Unix socket.
uri() {
	printf 'nbd+unix:///%s?socket=%s' "$1" "$SOCK"
}

# free_port: a TCP port on 127.0.0.1 that is free right now, below the
# kernel's ephemeral range, so that no outgoing connection (of this test
# or another one) takes it before the server binds it.
free_port() {
	/usr/bin/python3 -c 'import random, socket
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(1000):
    port = random.randrange(1024, lo)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(port)
    break
else:
    raise SystemExit("no free port")'
}

# nbdsh_run URI [nbdsh-args...] < script: run a Python script in nbdsh with
# handle h connected to URI (base:allocation requested).
nbdsh_run() {
	local u=$1
	shift
	nbdsh --base-allocation -u "$u" "$@" -c -
}

# tpx_py SCRIPT ARGS...: run a helper script beside lib.sh with the system
# python (which has the libnbd bindings).
tpx_py() {
	local script=$1
	shift
	/usr/bin/python3 "$TPX_ITEST_DIR/$script" "$@"
}

# sha FILE: sha256 of a file.
sha() {
	sha256sum "$1" | cut -d' ' -f1
}

log "server=$TPX_SERVER build=$TPX_BUILD tmp=$T"

# fio_check OUT WRITE READ [JOBS]: fail unless fio's JSON in OUT has JOBS
# jobs (when given), none with an error, each having written WRITE and
# read READ bytes ("-" skips that check).
fio_check() {
	/usr/bin/python3 - "$@" <<'PY' || fail "fio run $1 reported errors"
import json, sys
out, want_w, want_r = sys.argv[1:4]
raw = open(out).read()
res = json.loads(raw[raw.index("{"):])      # fio may print notes first
jobs, bad = res["jobs"], []
if len(sys.argv) > 4 and len(jobs) != int(sys.argv[4]):
    bad.append("%d jobs ran, expected %s" % (len(jobs), sys.argv[4]))
for j in jobs:
    if j["error"]:
        bad.append("%s: error %d" % (j["jobname"], j["error"]))
    for kind, want in (("write", want_w), ("read", want_r)):
        if want != "-" and j[kind]["io_bytes"] != int(want):
            bad.append("%s: %s %d bytes, expected %s" % (j["jobname"], kind, j[kind]["io_bytes"], want))
for b in bad:
    print("  -", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}
