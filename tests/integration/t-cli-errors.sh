#!/usr/bin/env bash
# triplexctl and triplexd reject bad input with a non-zero exit and exactly
# one line on stderr, and a rejected command changes nothing on disk.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_triplexd "CLI input checking"
[[ -x $TPXCTL && -x $TPXD ]] || fail "triplexctl/triplexd not built in $TPX_BUILD"

# expect_reject DESC CMD...: CMD must exit 1..125 within 20 s (not by a
# signal, not by the timeout) and print exactly one non-empty stderr line.
n_checked=0
expect_reject() {
	local desc=$1 rc=0
	shift
	timeout 20 "$@" </dev/null >"$T/out" 2>"$T/err" || rc=$?
	n_checked=$((n_checked + 1))
	[[ $rc -ne 0 ]] || fail "$desc: accepted (exit 0): $*"
	[[ $rc -ne 124 ]] || fail "$desc: still running after 20 s: $*"
	[[ $rc -lt 126 ]] || fail "$desc: exit status $rc (crash or signal): $* -- $(head -3 "$T/err")"
	# The daemon may log info lines before it finds the problem; what must
	# be there is exactly one line saying what is wrong, and nothing else.
	grep -vE '^[0-9TZ:.-]+ (info|debug) ' "$T/err" >"$T/err.lines" || true
	local lines
	lines=$(wc -l <"$T/err.lines")
	if [[ $lines -ne 1 || ! -s $T/err.lines ]]; then
		fail "$desc: expected one line on stderr, got $lines: $(head -c 400 "$T/err")"
	fi
	log "ok: $desc -> exit $rc: $(<"$T/err.lines")"
}

D=$DATA_DIR
mkdir -p "$D"
ctl volume create good --size 1M --data-dir "$D" 2>"$T/err" ||
	fail "creating a valid volume failed: $(<"$T/err")"
[[ -d $D/volumes/good ]] || fail "volume dir $D/volumes/good not created"
snapshot() { (cd "$D" && find . -printf '%p %s %T@\n' | sort); }
snapshot >"$T/before"

# Bad sizes.
for size in "" 0 -1 abc 12Q 1.5G " 1M" 1M2 0x100 99999999999999999999 16777216T; do
	expect_reject "size '$size'" "$TPXCTL" volume create bad --size "$size" --data-dir "$D"
done
[[ ! -e $D/volumes/bad ]] || fail "a rejected create left $D/volumes/bad behind"

# Bad names (must not escape DIR/volumes or be empty).
for name in "" "../escape" "a/b" "." ".."; do
	expect_reject "name '$name'" "$TPXCTL" volume create "$name" --size 1M --data-dir "$D"
done
[[ ! -e $D/escape ]] || fail "volume name escaped the volumes dir"

# Duplicate volume.
expect_reject "duplicate volume" "$TPXCTL" volume create good --size 2M --data-dir "$D"

# Missing or empty options, unknown options and commands.
expect_reject "no --data-dir" "$TPXCTL" volume create x --size 1M
expect_reject "no --size" "$TPXCTL" volume create x --data-dir "$D"
expect_reject "--size without value" "$TPXCTL" volume create x --data-dir "$D" --size
expect_reject "unknown option" "$TPXCTL" volume create x --size 1M --data-dir "$D" --bogus
expect_reject "unknown subcommand" "$TPXCTL" volume frobnicate
expect_reject "unknown command" "$TPXCTL" frobnicate
expect_reject "extra argument" "$TPXCTL" volume create x y --size 1M --data-dir "$D"

snapshot >"$T/after"
diff -u "$T/before" "$T/after" >&2 || fail "rejected commands changed the data dir"

# A mistyped metadata path is an error, never a new empty store; an
# unreachable etcd too. ($TRIPLEX_META is not set here.)
M=$T/no-such-dir-or-file.db
for cmd in "volume list" "volume show demo" "volume create v --size 1G" \
	"volume attach demo --node n1" "volume detach demo" "volume delete demo" \
	"volume resize demo --size 2G" "volume scrub demo" "volume replace demo --from n1" \
	"node list" "status" "health detail"; do
	# shellcheck disable=SC2086 # words, by design
	expect_reject "missing store: $cmd" "$TPXCTL" $cmd --meta "sqlite:$M"
	grep -q 'mistyped path' "$T/err.lines" || fail "missing store: $cmd: unclear error: $(<"$T/err.lines")"
	[[ ! -e $M ]] || fail "triplexctl $cmd created the store $M"
	# shellcheck disable=SC2086
	expect_reject "missing store via TRIPLEX_META: $cmd" env TRIPLEX_META="sqlite:$T/nodir/meta.db" "$TPXCTL" $cmd
	[[ ! -e $T/nodir ]] || fail "triplexctl $cmd created $T/nodir"
done
expect_reject "no store at all" env -u TRIPLEX_META "$TPXCTL" volume list
expect_reject "etcd unreachable" "$TPXCTL" volume list --meta "etcd://127.0.0.1:$(free_port)"
grep -q 'cannot open metadata store' "$T/err.lines" || fail "etcd unreachable: unclear error"
# status says HEALTH_ERR on stdout too.
"$TPXCTL" status --meta "sqlite:$M" >"$T/st" 2>/dev/null && fail "status of a missing store exited 0"
grep -q 'HEALTH_ERR' "$T/st" && grep -q 'UNREACHABLE' "$T/st" || fail "status of a missing store: $(<"$T/st")"
# An existing (empty) store: scrub of an unknown volume fails at once.
: >"$T/empty.db"
expect_reject "scrub of an unknown volume" "$TPXCTL" volume scrub nosuch --meta "sqlite:$T/empty.db"
grep -q "no volume named 'nosuch'" "$T/err.lines" || fail "scrub nosuch: unclear error"

# triplexd.
expect_reject "daemon: unknown option" "$TPXD" --data-dir "$D" --listen-unix "$T/s1" --bogus
expect_reject "daemon: missing data dir" "$TPXD" --data-dir "$T/does-not-exist" --listen-unix "$T/s2"
expect_reject "daemon: no --data-dir" "$TPXD" --listen-unix "$T/s3"
expect_reject "daemon: bad log level" "$TPXD" --data-dir "$D" --listen-unix "$T/s4" --log-level shouty
expect_reject "daemon: bad TCP address" "$TPXD" --data-dir "$D" --listen-tcp "127.0.0.1:99999"
expect_reject "daemon: TCP address without port" "$TPXD" --data-dir "$D" --listen-tcp "127.0.0.1"
expect_reject "daemon: socket path too long" "$TPXD" --data-dir "$D" \
	--listen-unix "$T/$(printf 'x%.0s' $(seq 1 200))"
for s in s1 s2 s3 s4; do
	[[ ! -e $T/$s ]] || fail "a rejected daemon left socket $T/$s behind"
done

log "PASS ($n_checked rejections checked)"
