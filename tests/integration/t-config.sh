#!/usr/bin/env bash
# triplexd's config file: a value from the file is used, a flag overrides
# it, the default file is read without --config and is no error when
# missing (every other test runs without one), and an unknown key, a bad value or a missing --config FILE is a
# one-line FILE:LINE error with a non-zero exit. Then sd_notify: with
# NOTIFY_SOCKET set (a path, then an abstract @name), READY=1 arrives only
# once the NBD socket accepts, and STOPPING=1 on SIGTERM.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_triplexd "the config file and sd_notify"
require_tool nbdinfo

# expect_error DESC PATTERN ARGS...: triplexd exits 2 with exactly one
# line on stderr matching PATTERN.
expect_error() {
	local desc=$1 pat=$2 rc=0
	shift 2
	timeout 10 "$TPXD" "$@" >"$T/out" 2>"$T/err" || rc=$?
	[[ $rc -eq 2 ]] || fail "$desc: exit $rc, want 2: $(head -c 300 "$T/err")"
	[[ $(wc -l <"$T/err") -eq 1 ]] || fail "$desc: not one line: $(cat "$T/err")"
	grep -qE "$pat" "$T/err" || fail "$desc: '$(cat "$T/err")' does not match '$pat'"
}

conf=$T/triplexd.conf
printf 'data-dir = %s\nlisten-unix = %s\nbogus-option = 1\n' "$DATA_DIR" "$SOCK" >"$conf"
expect_error "unknown key" "^triplexd: $conf:3: unknown option 'bogus-option'" --config "$conf"
printf '# timeouts\n\nio-timeout-ms = 0\n' >"$conf"
expect_error "bad value" "^triplexd: $conf:3: --io-timeout-ms wants milliseconds" \
	--config "$conf" --data-dir "$DATA_DIR" --listen-unix "$SOCK"
printf 'log-level = loud\n' >"$conf"
expect_error "bad log level" "^triplexd: $conf:1: unknown log level 'loud'" --config="$conf"
printf 'version = 1\n' >"$conf"
expect_error "a flag as a key" "^triplexd: $conf:1: 'version' is not a setting" --config "$conf"
printf 'config = /etc/other.conf\n' >"$conf"
expect_error "config in a config file" "^triplexd: $conf:1: 'config' is not a setting" --config "$conf"
printf 'data-dir /x\n' >"$conf"
expect_error "not key = value" "^triplexd: $conf:1: not an 'option = value' line" --config "$conf"
expect_error "missing --config file" "^triplexd: config file $T/nope.conf: No such file" \
	--config "$T/nope.conf" --data-dir "$DATA_DIR" --listen-unix "$SOCK"
# A bad value on the command line still says what is wrong, no FILE:LINE.
expect_error "bad flag" "^triplexd: --io-timeout-ms wants" --config /dev/null \
	--io-timeout-ms 0 --data-dir "$DATA_DIR" --listen-unix "$SOCK"
# --help and --version do not read the file: a broken one cannot hide them.
printf 'junk\n' >"$conf"
"$TPXD" --config "$conf" --version | grep -q '^triplexd ' || fail "--version read the config file"

# deploy/triplexd.conf.example: every option of --help is in it, and its
# example values, uncommented, all parse (the only error is the last line).
example=$TPX_SRC/deploy/triplexd.conf.example
sed -n 's/^#\([a-z][a-z-]* = .*\)/\1/p' "$example" >"$conf"
for opt in $("$TPXD" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
	case $opt in --help | --version | --config | --insecure | --fault-injection) continue ;; esac
	grep -q "^${opt#--} = " "$conf" || fail "$opt is not in $example"
done
echo 'not-an-option = 1' >>"$conf"
expect_error "example values" "^triplexd: $conf:$(wc -l <"$conf"): unknown option 'not-an-option'" \
	--config "$conf"

# Precedence. The file says data dir $T/other (no volumes), pid file
# $T/file.pid and a TCP listener; the flags (start_server's --data-dir,
# --pid-file) override the first two, the TCP listener comes from the file.
port=$(free_port)
mkdir -p "$T/other"
cat >"$conf" <<CONF
; every key is a long option of triplexd
data-dir = $T/other
pid-file = $T/file.pid
listen-tcp = 127.0.0.1:$port   ; from the file only
CONF
create_volume demo 4M
start_server --config "$conf"
nbdinfo --size "nbd://127.0.0.1:$port/demo" >"$T/size" ||
	fail "no TCP listener from the config file's listen-tcp"
[[ $(<"$T/size") -eq $((4 << 20)) ]] || fail "size over TCP: $(<"$T/size")"
[[ ! -e $T/file.pid ]] || fail "the file's pid-file was used despite --pid-file"
stop_server

# The default file ($TRIPLEXD_CONFIG, set by lib.sh; else
# /etc/triplex/triplexd.conf): read without --config, and --config FILE
# replaces it rather than adding to it.
printf 'io-timeout-ms = 0\n' >"$TRIPLEXD_CONFIG"
expect_error "default file" "^triplexd: $TRIPLEXD_CONFIG:1: --io-timeout-ms" \
	--data-dir "$DATA_DIR" --listen-unix "$SOCK"
start_server --config /dev/null
stop_server
rm -f "$TRIPLEXD_CONFIG"

# sd_notify, to a socket path and to an abstract name.
for addr in "$T/notify.sock" "@tpx-notify-$$-$RANDOM"; do
	rm -f "$T/notify.out" "$T/listening"
	/usr/bin/python3 "$TPX_ITEST_DIR/notify_listen.py" "$addr" "$SOCK" \
		"$T/listening" >"$T/notify.out" 2>&1 &
	lpid=$!
	on_exit "kill $lpid"
	wait_for "notify listener" 10 test -s "$T/listening"
	NOTIFY_SOCKET=$addr start_server --config /dev/null
	wait_for "READY=1 on $addr" 20 grep -q '^msg READY=1' "$T/notify.out"
	stop_server
	wait "$lpid" || fail "notify listener failed: $(cat "$T/notify.out")"
	[[ $(grep '^msg ' "$T/notify.out" | tr '\n' ' ') == "msg READY=1 msg STOPPING=1 " ]] ||
		fail "notify messages on $addr: $(cat "$T/notify.out")"
	grep -q '^nbd-accepts' "$T/notify.out" ||
		fail "READY=1 before the NBD socket accepted: $(cat "$T/notify.out")"
done
log PASS
