#!/usr/bin/env bash
# The same export over TCP on loopback and over the Unix socket: data
# written over one reads back over the other.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_tool nbdcopy nbdinfo

port=$(free_port)
start_triplexd demo:8M -- --listen-tcp "127.0.0.1:$port"
TCP_URI="nbd://127.0.0.1:$port/demo"

nbdinfo --size "$TCP_URI" >"$T/size" || fail "nbdinfo over TCP failed"
[[ $(<"$T/size") -eq $((8 << 20)) ]] || fail "size over TCP is $(<"$T/size")"
dd if=/dev/urandom of="$T/in.img" bs=1M count=8 status=none
nbdcopy --flush "$T/in.img" "$TCP_URI" || fail "nbdcopy over TCP failed"
truncate -s 0 "$T/out.img"
nbdcopy "$(uri demo)" "$T/out.img" || fail "nbdcopy over Unix failed"
cmp "$T/in.img" "$T/out.img" || fail "TCP write / Unix read differ"
nbdinfo "nbd://127.0.0.1:$port/nosuch" >/dev/null 2>&1 &&
	fail "unknown export accepted over TCP"
stop_server
log PASS
