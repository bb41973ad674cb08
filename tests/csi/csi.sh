# shellcheck shell=bash
# Helpers for the CSI plugin's tests (tests/integration/t-csi-*.sh). Source
# after lib.sh:
#
#   . "$TPX_SRC/tests/csi/csi.sh"
#   csi_require                       # skip without the plugin or grpcio
#   csi_dev_up                        # triplexctl dev up in $T/dev (SQLite)
#   csi_start NAME ARGS...            # triplex-csi on $T/NAME.sock, CSI_PID[NAME]
#   csi_py SCRIPT ARGS...             # a tests/csi script, --endpoint etc. added
#   csi_stop NAME                     # SIGTERM: exit 0 within 10 s, no sanitizer report
#
# Every plugin's log is $T/NAME.log; stopped by pid, never by name.

TPX_CSI=${TPX_CSI:-$TPX_BUILD/triplex-csi}
CSI_DIR=$TPX_SRC/tests/csi
declare -A CSI_PID=()

csi_require() {
	[[ -x $TPX_CSI ]] || skip "triplex-csi not built (needs libgrpc-dev, libprotobuf-c-dev)"
	/usr/bin/python3 -c 'import grpc, grpc_tools' 2>/dev/null ||
		skip "python3-grpcio / python3-grpc-tools not installed"
	require_tool nbdinfo
}

# csi_dev_up: the three-node cluster of `triplexctl dev up` (zones zone-a,
# zone-b, zone-c; SQLite store, or with TPX_META_KIND=etcd a three-member
# etcd), stopped at exit; sets TRIPLEX_META.
csi_dev_up() {
	local up=()
	if [[ ${TPX_META_KIND:-sqlite} == etcd ]]; then
		require_tool etcd
		up=(--etcd)
	fi
	on_exit "'$TPXCTL' dev down --dir '$T/dev'"
	ctl dev up --dir "$T/dev" --size 16M "${up[@]}" >"$T/up.out" 2>&1 || {
		cat "$T/up.out" >&2
		fail "dev up failed"
	}
	TRIPLEX_META=$(/usr/bin/python3 -c "import json; print(json.load(open('$T/dev/cluster.json'))['meta'])")
	export TRIPLEX_META
}

_csi_up() { [[ -S $T/$1.sock ]] || { kill -0 "${CSI_PID[$1]}" 2>/dev/null || fail "triplex-csi $1 exited at start: $(tail -5 "$T/$1.log")"; false; }; }

# csi_start NAME ARGS...: start triplex-csi with ARGS on $T/NAME.sock.
csi_start() {
	local name=$1
	shift
	rm -f "$T/$name.sock"
	"$TPX_CSI" --endpoint "unix://$T/$name.sock" --log-level debug "$@" \
		>>"$T/$name.log" 2>&1 &
	CSI_PID[$name]=$!
	on_exit "kill -KILL ${CSI_PID[$name]}"
	wait_for "triplex-csi $name's socket" 20 _csi_up "$name"
}

# csi_stop NAME: SIGTERM; fail unless it exits 0 within 10 s.
csi_stop() {
	local name=$1 pid=${CSI_PID[$1]} i rc=0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && fail "triplex-csi $name ignored SIGTERM for 10 s"
	wait "$pid" || rc=$?
	((rc == 0)) || fail "triplex-csi $name exited $rc after SIGTERM: $(tail -5 "$T/$name.log")"
	if grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$T/$name.log"; then
		fail "sanitizer report in $T/$name.log"
	fi
}

# csi_py SCRIPT NAME ARGS...: run tests/csi/SCRIPT against plugin NAME.
csi_py() {
	local script=$1 name=$2
	shift 2
	mkdir -p "$T/stubs"
	PYTHONPATH=$CSI_DIR /usr/bin/python3 "$CSI_DIR/$script" \
		--endpoint "unix://$T/$name.sock" --proto "$TPX_SRC/csi-shim/csi.proto" \
		--stubs "$T/stubs" "$@"
}

# csi_node_cleanup DIR: from the exit trap, after a failure: unmount
# everything under DIR (deepest first), detach the loop devices on its
# nbdfuse files, unmount nbdfuse and stop it.
csi_node_cleanup() {
	local dir=$1 m f
	for m in $(findmnt -rn -o TARGET | grep -F "$dir" | sort -r); do
		[[ $m == */fuse/* ]] && continue
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	for f in "$dir"/state/fuse/*/disk; do
		[[ -e $f ]] || continue
		for m in $(losetup -j "$f" -O NAME -n 2>/dev/null); do
			losetup -d "$m" 2>/dev/null
		done
	done
	for m in $(findmnt -rn -o TARGET | grep -F "$dir" | sort -r); do
		fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
	done
	# An nbdfuse whose server died does not exit on its unmount: stop the
	# ones this test's plugins started (their pid files).
	for f in "$dir"/state*/fuse/*.pid; do
		[[ -s $f ]] && kill -TERM "$(<"$f")" 2>/dev/null
	done
	return 0
}
