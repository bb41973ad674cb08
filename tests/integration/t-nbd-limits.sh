#!/usr/bin/env bash
# Bounded resources on the NBD listener (issue 11). (1) With
# --max-connections 4, four idle connections are served; a fifth is closed
# at once and counted in /metrics, the four still work, and once one
# closes a new client gets in. (2) With the daemon's file descriptors
# nearly used up (prlimit), idle connections make accept fail with
# EMFILE: the listener backs off instead of spinning, logs at most about
# once a second, counts the failures, and serves again once the
# connections close. (3) A client that sends 1 MiB writes and never reads
# a reply: the daemon stops reading from it, holds a bounded amount for it
# (RSS printed), serves others, and closes it after --reply-timeout-ms.
# (4) 1000 idle connections: RSS printed, another client still served.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_tool nbdinfo curl prlimit
[[ $TPX_SERVER == triplexd ]] || skip "limits are triplexd's"

HTTP=127.0.0.1:$(free_port)
metric() { curl -sf "http://$HTTP/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

# hold_conns N FILE: open N NBD connections (handshake done, then idle)
# in the background; FILE gets one line per connection's outcome.
hold_conns() {
	/usr/bin/python3 - "$SOCK" "$1" >"$2" 2>&1 <<'PY' &
import socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    try:
        s.connect(path)
        magic = s.recv(18)   # server's newstyle greeting
        print("open" if len(magic) == 18 else "closed", flush=True)
    except OSError as e:
        print("error", e, flush=True)
    socks.append(s)
time.sleep(60)
PY
	HOLDER=$!
	on_exit "kill $HOLDER"
}

# --- (1) the connection cap
start_triplexd demo:16M -- --max-connections 4 --listen-http "$HTTP"
hold_conns 4 "$T/hold1"
_four() { (($(grep -c '^open' "$T/hold1") == 4)); }
wait_for "4 connections greeted" 10 _four
nbdinfo "$(uri demo)" >/dev/null 2>"$T/fifth.err" &&
	fail "a fifth connection was served past --max-connections 4"
refused=$(metric triplex_nbd_connections_refused_total)
((refused >= 1)) || fail "triplex_nbd_connections_refused_total is '$refused', want >= 1"
grep -q "connections open (--max-connections): new ones are closed" "$SERVER_LOG" ||
	fail "no warning about the refused connection"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null || true
_served() { nbdinfo "$(uri demo)" >/dev/null 2>&1; }
wait_for "a new client served once the connections closed" 10 _served
stop_server

# --- (2) accept failing with EMFILE
max_fds=64
start_server --listen-http "$HTTP"
prlimit --pid "$SERVER_PID" --nofile="$max_fds:$max_fds" || fail "prlimit on the daemon failed"
hold_conns 120 "$T/hold2"
_emfile() { grep -q "accept: Too many open files" "$SERVER_LOG"; }
wait_for "accept to fail with EMFILE" 20 _emfile
t0=$SECONDS
sleep 4
fails=$(grep -c "accept: Too many open files" "$SERVER_LOG")
secs=$((SECONDS - t0 + 2))
((fails <= secs + 2)) || fail "$fails EMFILE warnings in about $secs s: the listener spins and floods the log"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null || true
wait_for "a client served after the fds were freed" 20 _served
failures=$(metric triplex_nbd_accept_failures_total)
((failures >= 1)) || fail "triplex_nbd_accept_failures_total is '$failures', want >= 1"
opened=$(grep -c '^open' "$T/hold2") || true
stop_server
# --- (3) a client that never reads its replies, (4) 1000 idle ones
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"; }
start_server --listen-http "$HTTP" --reply-timeout-ms 2000
rss0=$(rss_kib)
/usr/bin/python3 "$TPX_ITEST_DIR/nbd_noreader.py" "$SOCK" demo 20 >"$T/noreader" 2>&1 &
NOREADER=$!
on_exit "kill $NOREADER"
wait_for "the non-reading client to stall" 20 grep -q '^sent' "$T/noreader"
rss_stuck=$(rss_kib)
_served || fail "another client was not served while one did not read its replies"
wait "$NOREADER" || fail "the non-reading client failed: $(cat "$T/noreader")"
grep -q '^closed' "$T/noreader" || fail "the non-reading client was never disconnected: $(cat "$T/noreader")"
timeouts=$(metric triplex_nbd_reply_timeouts_total)
((timeouts >= 1)) || fail "triplex_nbd_reply_timeouts_total is '$timeouts', want >= 1"
grep -q "took no reply for 2000 ms" "$SERVER_LOG" || fail "no warning for the reply timeout"
stuck_writes=$(awk '/^sent/ { print $2 }' "$T/noreader")
rss_pre=$(rss_kib)  # after the writes: ASan keeps freed buffers in quarantine
hold_conns 1000 "$T/hold3"
_thousand() { (($(grep -c '^open' "$T/hold3") == 1000)); }
wait_for "1000 idle connections greeted" 60 _thousand
rss_idle=$(rss_kib)
_served || fail "a client was not served beside 1000 idle connections"
growth=$(((rss_idle - rss_pre) / 1024))
((growth < 200)) || fail "1000 idle connections grew the daemon by $growth MiB"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null || true
stop_server

log "figures: RSS at start $((rss0 / 1024)) MiB; a client that never read: $stuck_writes 1 MiB writes taken, RSS $((rss_stuck / 1024)) MiB, disconnected after the 2 s reply timeout; 1000 idle connections: RSS $((rss_pre / 1024)) -> $((rss_idle / 1024)) MiB"
log "figures: cap 4: the fifth connection closed, $refused refused; fd limit $max_fds: $opened of 120 idle connections greeted, $fails EMFILE warnings logged, $failures accept failures counted, served again after"
log PASS
