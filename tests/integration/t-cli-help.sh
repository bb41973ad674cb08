#!/usr/bin/env bash
# Every triplexctl command and subcommand, and triplexd, answer -h and
# --help with their usage, options and an example on stdout, exit 0 and
# nothing on stderr; --version prints the version and the git revision.
# An unknown command asking for help is still an error.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
[[ -x $TPXCTL && -x $TPXD ]] || fail "triplexctl/triplexd not built in $TPX_BUILD"

n_checked=0
# expect_help DESC CMD...: exit 0, a "usage:" first line and an
# "example" on stdout, nothing on stderr.
expect_help() {
	local desc=$1 rc=0
	shift
	timeout 10 "$@" </dev/null >"$T/out" 2>"$T/err" || rc=$?
	[[ $rc -eq 0 ]] || fail "$desc: exit $rc: $* -- $(head -c 300 "$T/err")"
	[[ ! -s $T/err ]] || fail "$desc: wrote to stderr: $(head -c 300 "$T/err")"
	head -1 "$T/out" | grep -q '^usage: ' || fail "$desc: no usage line: $(head -2 "$T/out")"
	grep -q '^example' "$T/out" || fail "$desc: no example"
	n_checked=$((n_checked + 1))
}

commands=("" status health "health detail" volume node dev)
for sub in create list show attach detach replace delete resize scrub; do
	commands+=("volume $sub")
done
commands+=("node list" "dev up" "dev down")
for c in "${commands[@]}"; do
	# shellcheck disable=SC2086 # words, by design
	for h in -h --help; do
		expect_help "triplexctl $c $h" "$TPXCTL" $c $h
	done
	# shellcheck disable=SC2086
	expect_help "triplexctl help $c" "$TPXCTL" help $c
done
# Help wins over everything else on the line, even a missing NAME.
expect_help "help after options" "$TPXCTL" volume create db --size 1G --help
expect_help "help with a NAME" "$TPXCTL" volume show demo -h
# Each option of volume create is documented with its default.
"$TPXCTL" volume create --help >"$T/create.help"
for opt in --size --replicas --min-replicas --domain --relaxed --failover \
	--data-dir --json --meta; do
	grep -q -- "$opt" "$T/create.help" || fail "volume create --help does not mention $opt"
done
grep -q 'default 3' "$T/create.help" || fail "volume create --help gives no default for --replicas"

for h in -h --help; do
	expect_help "triplexd $h" "$TPXD" $h
done
"$TPXD" --help >"$T/d.help"
# Every long option triplexd parses (its getopt table) is in its help.
mapfile -t dopts < <(grep -oE '^[[:space:]]*\{ "[a-z-]+", (no|required)_argument' \
	"$TPX_SRC/daemon/main.c" | grep -oE '"[a-z-]+"' | tr -d '"')
((${#dopts[@]} >= 20)) || fail "found only ${#dopts[@]} triplexd options in daemon/main.c"
for opt in "${dopts[@]}"; do
	grep -q -- "--$opt\b" "$T/d.help" || fail "triplexd --help does not mention --$opt"
done

# --version: "PROG X.Y.Z (git REV)", REV the tree's when built from git.
rev=unknown
if git -C "$TPX_SRC" rev-parse --short HEAD >/dev/null 2>&1; then
	rev=$(git -C "$TPX_SRC" rev-parse --short HEAD)
fi
for b in "$TPXCTL" "$TPXD"; do
	out=$("$b" --version 2>"$T/err") || fail "$b --version failed"
	[[ ! -s $T/err ]] || fail "$b --version wrote to stderr"
	grep -Eq "^triplex(ctl|d) [0-9]+\.[0-9]+\.[0-9]+ \(git [0-9a-f]+(-dirty)?\)$|\(git unknown\)$" \
		<<<"$out" || fail "$b --version: unexpected '$out'"
	# The build may be a commit or two behind the tree; the revision
	# must at least be a git object here.
	r=$(sed -E 's/.*\(git ([^)-]*).*/\1/' <<<"$out")
	if [[ $rev != unknown ]]; then
		git -C "$TPX_SRC" cat-file -e "$r^{commit}" 2>/dev/null ||
			fail "$b --version names $r, not a commit of $TPX_SRC"
	fi
	log "ok: $out"
done
"$TPXCTL" version | grep -q '^triplexctl ' || fail "triplexctl version does not print the version"

# Asking for help about something that does not exist is an error.
for c in "frobnicate" "volume frobnicate"; do
	rc=0
	# shellcheck disable=SC2086
	"$TPXCTL" $c --help >"$T/out" 2>"$T/err" || rc=$?
	[[ $rc -ne 0 ]] || fail "triplexctl $c --help succeeded"
	[[ $(wc -l <"$T/err") -eq 1 ]] || fail "triplexctl $c --help: not one line: $(<"$T/err")"
done

log "PASS ($n_checked help texts checked)"
