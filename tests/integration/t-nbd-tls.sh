#!/usr/bin/env bash
# NBD over TLS (STARTTLS) with the real clients: nbdinfo, nbdsh, nbdcopy,
# qemu-img, qemu-io and fio with X.509 certificates and with pre-shared
# keys, over TCP and Unix sockets. --tls require refuses every plaintext
# option, a wrong key or an untrusted CA fails the handshake and gets no
# data, --tls-allow limits an export to named identities, plaintext behind
# STARTTLS is never answered, nothing negotiated before STARTTLS survives
# it (--tls on), and SIGHUP reloads the certificate (or keeps the old one
# if the new one does not load).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_tool nbdinfo
require_tool nbdsh
require_tool nbdcopy
require_tool qemu-img
require_tool qemu-io
require_tool fio
require_tool openssl
[[ $TPX_SERVER == triplexd ]] || skip "TLS options are triplexd's"

# --- credentials ---------------------------------------------------------

P=$T/pki
mkdir -p "$P"
# new_ca NAME: a self-signed CA in $P/NAME-ca-{cert,key}.pem
new_ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$P/$1-ca-key.pem" -out "$P/$1-ca-cert.pem" -days 2 \
		-subj "/CN=$1 test CA" 2>/dev/null || fail "openssl: CA $1"
}
# new_cert CA NAME CN USAGE [DAYS]: $P/NAME-{cert,key}.pem signed by CA
new_cert() {
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$P/$2-key.pem" -out "$P/$2.csr" -subj "/CN=$3" 2>/dev/null ||
		fail "openssl: key $2"
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=%s\n' "$4" >"$P/$2.ext"
	openssl x509 -req -in "$P/$2.csr" -CA "$P/$1-ca-cert.pem" -CAkey "$P/$1-ca-key.pem" \
		-CAcreateserial -out "$P/$2-cert.pem" -days "${5:-2}" -extfile "$P/$2.ext" \
		2>/dev/null || fail "openssl: sign $2"
}
# client_dir DIR CA CERT: the layout libnbd and qemu read (tls-certificates=)
client_dir() {
	mkdir -p "$1"
	cp "$P/$2-ca-cert.pem" "$1/ca-cert.pem"
	if [[ -n ${3:-} ]]; then
		cp "$P/$3-cert.pem" "$1/client-cert.pem"
		cp "$P/$3-key.pem" "$1/client-key.pem"
	fi
}
new_ca good
new_ca evil
new_cert good server localhost serverAuth
new_cert good alice alice clientAuth
new_cert evil mallory alice clientAuth
client_dir "$P/alice" good alice
client_dir "$P/anon" good
client_dir "$P/evil" evil mallory
printf 'alice:%s\nbob:%s\n' "$(openssl rand -hex 32)" "$(openssl rand -hex 32)" >"$P/keys.psk"
grep '^alice:' "$P/keys.psk" >"$P/alice.psk"
grep '^bob:' "$P/keys.psk" >"$P/bob.psk"
printf 'alice:%s\n' "$(openssl rand -hex 32)" >"$P/wrong.psk"
mkdir -p "$P/qpsk" && cp "$P/alice.psk" "$P/qpsk/keys.psk"

PORT=$(free_port)
HTTP=$(free_port)
TLS_ARGS=(--tls-cert "$P/server-cert.pem" --tls-key "$P/server-key.pem"
	--tls-ca "$P/good-ca-cert.pem" --tls-psk "$P/keys.psk")
start_triplexd demo:32M secret:4M -- --listen-tcp "127.0.0.1:$PORT" \
	--listen-http "127.0.0.1:$HTTP" --tls require "${TLS_ARGS[@]}" \
	--tls-allow secret=bob

tcp_uri() { printf 'nbds://%slocalhost:%s/%s' "${3:-}" "$PORT" "$1"; }
unix_uri() { printf 'nbds+unix:///%s?socket=%s' "$1" "$SOCK"; }
metric() {
	curl -sf "http://127.0.0.1:$HTTP/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}

# --- X.509 and PSK with libnbd's tools -------------------------------------

size=$(nbdinfo --size "$(tcp_uri demo)?tls-certificates=$P/alice") ||
	fail "nbdinfo over TLS (X.509, TCP) failed"
[[ $size == $((32 << 20)) ]] || fail "nbdinfo over TLS: size $size"
nbdinfo --size "$(unix_uri demo)&tls-certificates=$P/anon" >/dev/null ||
	fail "nbdinfo over TLS (X.509 without a client certificate, Unix) failed"
nbdinfo --size "$(tcp_uri demo "" alice@)?tls-psk-file=$P/alice.psk" >/dev/null ||
	fail "nbdinfo over TLS (PSK) failed"
log "ok X.509 and PSK with nbdinfo"

# A pattern through nbdsh with a PSK, read back with a certificate.
# (nbdsh -u refuses file names in URIs; the script allows them.)
U="$(tcp_uri demo "" alice@)?tls-psk-file=$P/alice.psk" nbdsh -c '
import os
h.set_uri_allow_local_file(True)
h.connect_uri(os.environ["U"])
assert h.get_tls_negotiated()
h.pwrite(b"\xa5" * 65536 + b"tls!" * 1024, 1 << 20)' || fail "nbdsh write over TLS failed"
U="$(unix_uri demo)&tls-certificates=$P/alice" nbdsh -c '
import os
h.set_uri_allow_local_file(True)
h.connect_uri(os.environ["U"])
assert h.get_tls_negotiated()
assert h.pread(69632, 1 << 20) == b"\xa5" * 65536 + b"tls!" * 1024' ||
	fail "nbdsh read over TLS does not see what was written"
log "ok nbdsh write (PSK) and read back (X.509)"

# nbdcopy a random image in and out.
head -c $((8 << 20)) /dev/urandom >"$T/img"
nbdcopy "$T/img" "nbds+unix://alice@/demo?socket=$SOCK&tls-psk-file=$P/alice.psk" ||
	fail "nbdcopy into the volume over TLS failed"
nbdcopy "$(tcp_uri demo)?tls-certificates=$P/alice" "$T/back" ||
	fail "nbdcopy out of the volume over TLS failed"
cmp -n $((8 << 20)) "$T/img" "$T/back" || fail "nbdcopy over TLS: data differs"
log "ok nbdcopy in and out"

# qemu with tls-creds-x509 and tls-creds-psk.
qemu-img info --object "tls-creds-psk,id=t0,endpoint=client,dir=$P/qpsk,username=alice" \
	--image-opts "driver=nbd,host=127.0.0.1,port=$PORT,export=demo,tls-creds=t0" \
	>"$T/qinfo" || fail "qemu-img info over TLS (PSK) failed"
grep -q 'virtual size: 32 MiB' "$T/qinfo" || fail "qemu-img info: $(cat "$T/qinfo")"
qemu-io --object "tls-creds-x509,id=t0,endpoint=client,dir=$P/alice" \
	--image-opts "driver=nbd,host=localhost,port=$PORT,export=demo,tls-creds=t0" \
	-c 'write -P 0x5c 4M 1M' -c 'read -P 0x5c 4M 1M' >"$T/qio" ||
	fail "qemu-io over TLS (X.509) failed: $(cat "$T/qio")"
grep -q 'read 1048576/1048576' "$T/qio" || fail "qemu-io read: $(cat "$T/qio")"
log "ok qemu-img (PSK) and qemu-io (X.509)"

# fio's nbd engine may not name files in its URI: libnbd then reads the
# certificates from $HOME/.pki/libnbd.
client_dir "$T/home/.pki/libnbd" good alice
HOME=$T/home fio --name=tls --ioengine=nbd --uri="$(unix_uri demo)" --rw=randwrite \
	--bs=4k --size=8M --iodepth=16 --verify=crc32c --output-format=json \
	>"$T/fio.json" 2>"$T/fio.err" || fail "fio over TLS failed: $(cat "$T/fio.err")"
fio_check "$T/fio.json" $((8 << 20)) -
log "ok fio ioengine=nbd over TLS with verify"

# --- refusals ----------------------------------------------------------------

failed_before=$(metric triplex_nbd_tls_handshakes_failed_total)
# must_fail WHAT CMD...: the client fails and reads nothing.
must_fail() {
	local what=$1
	shift
	if "$@" >"$T/refused.out" 2>&1; then
		fail "$what: the client succeeded: $(cat "$T/refused.out")"
	fi
	if grep -q 'export-size\|content:' "$T/refused.out"; then
		fail "$what: the client got export details: $(cat "$T/refused.out")"
	fi
}
must_fail "plaintext client" nbdinfo "nbd://localhost:$PORT/demo"
must_fail "plaintext list" nbdinfo --list "nbd+unix:///?socket=$SOCK"
must_fail "wrong PSK" nbdinfo "$(tcp_uri demo "" alice@)?tls-psk-file=$P/wrong.psk"
must_fail "certificate of another CA" nbdinfo "$(tcp_uri demo)?tls-certificates=$P/evil"
must_fail "qemu-img plaintext" qemu-img info "nbd://127.0.0.1:$PORT/demo"
failed_after=$(metric triplex_nbd_tls_handshakes_failed_total)
((failed_after >= failed_before + 1)) ||
	fail "handshake failures counted $failed_before -> $failed_after"
tpx_py nbd_starttls.py require 127.0.0.1 "$PORT" || fail "--tls require: plaintext options"
tpx_py nbd_starttls.py inject 127.0.0.1 "$PORT" || fail "plaintext after STARTTLS was answered"
log "ok plaintext, wrong PSK and foreign CA refused; injection not answered"

# --tls-allow secret=bob: alice neither lists nor opens it; bob does.
nbdinfo --list --json "$(tcp_uri "" "" alice@)?tls-psk-file=$P/alice.psk" >"$T/list-alice" ||
	fail "alice's list failed"
grep -q '"secret"' "$T/list-alice" && fail "alice's LIST shows the export only bob may use"
must_fail "alice opens bob's export" nbdinfo "$(tcp_uri secret "" alice@)?tls-psk-file=$P/alice.psk"
must_fail "a certificate named alice opens bob's export" \
	nbdinfo "$(tcp_uri secret)?tls-certificates=$P/alice"
[[ $(nbdinfo --size "$(tcp_uri secret "" bob@)?tls-psk-file=$P/bob.psk") == $((4 << 20)) ]] ||
	fail "bob cannot use his export"
log "ok --tls-allow: only bob sees and opens secret"

# --- SIGHUP reload -------------------------------------------------------------

exp_before=$(metric triplex_tls_cert_expiry_seconds)
[[ -n $exp_before ]] || fail "no triplex_tls_cert_expiry_seconds"
new_cert good server localhost serverAuth 30
kill -HUP "$SERVER_PID"
wait_for "the reloaded certificate in /metrics" 10 \
	bash -c "[[ \$(curl -sf http://127.0.0.1:$HTTP/metrics | awk '\$1 == \"triplex_tls_cert_expiry_seconds\" { print int(\$2) }') -gt $((20 * 86400)) ]]"
nbdinfo --size "$(tcp_uri demo)?tls-certificates=$P/alice" >/dev/null ||
	fail "TLS after reload failed"
echo garbage >"$P/server-cert.pem"
kill -HUP "$SERVER_PID"
wait_for "the failed reload in the log" 10 grep -q 'TLS credentials not reloaded' "$SERVER_LOG"
nbdinfo --size "$(tcp_uri demo)?tls-certificates=$P/alice" >/dev/null ||
	fail "TLS after a failed reload failed (the old credentials should stay)"
kill -0 "$SERVER_PID" || fail "triplexd died on SIGHUP"
log "ok SIGHUP reloads the certificate, keeps the old one when the new is bad"
stop_server

# --- --tls on: optional, and nothing survives STARTTLS ---------------------------

new_cert good server localhost serverAuth
start_server --listen-tcp "127.0.0.1:$PORT" --tls on "${TLS_ARGS[@]}"
nbdinfo --size "nbd://localhost:$PORT/demo" >/dev/null || fail "--tls on: plaintext refused"
nbdinfo --size "$(tcp_uri demo)?tls-certificates=$P/alice" >/dev/null || fail "--tls on: TLS refused"
tpx_py nbd_starttls.py reset 127.0.0.1 "$PORT" "$P/good-ca-cert.pem" demo ||
	fail "negotiation state survived STARTTLS"
stop_server

# --- bad options are one-line errors -----------------------------------------

bad_opts() {
	local want=$1
	shift
	if "$TPXD" --data-dir "$DATA_DIR" --listen-unix "$T/x.sock" "$@" 2>"$T/err"; then
		fail "triplexd $* started"
	fi
	grep -q -- "$want" "$T/err" || fail "triplexd $*: $(cat "$T/err")"
}
bad_opts "wants off, on or require" --tls maybe "${TLS_ARGS[@]}"
bad_opts "needs --tls-cert" --tls require
bad_opts "go together" --tls-cert "$P/server-cert.pem"
bad_opts "needs --tls-ca" --tls-psk "$P/keys.psk" --tls-verify-peer yes
bad_opts "wants yes or no" --tls-psk "$P/keys.psk" --tls-verify-peer maybe
bad_opts "EXPORT=ID" --tls-psk "$P/keys.psk" --tls-allow demo
bad_opts "names export 'demo' twice" --tls-psk "$P/keys.psk" --tls-allow demo=a --tls-allow demo=b
printf 'alice:xyz\n' >"$P/bad.psk"
bad_opts "line 1: key is not" --tls-psk "$P/bad.psk"
log "PASS"
