#!/usr/bin/env bash
# The etcd store over TLS with client certificates: a one-member etcd on
# loopback serving https only and requiring a client certificate signed by
# the test's CA. triplexd (--etcd-cacert/--etcd-cert/--etcd-key) registers
# through it and triplexctl lists the node; without a client certificate,
# with another CA, or over plain http, both are refused with a clear error.
. "$(dirname "$0")/lib.sh"
require_triplexd "cluster mode on etcd over TLS"
require_tool etcd openssl curl

P=$T/pki
mkdir -p "$P"
# cert NAME SUBJECT CA-NAME: a key and a certificate signed by CA-NAME,
# for 127.0.0.1, usable as server and client (etcd's gateway needs both).
cert() {
	openssl req -new -newkey rsa:2048 -nodes -keyout "$P/$1.key" \
		-subj "/CN=$2" -out "$P/$1.csr" 2>/dev/null || fail "csr $1"
	printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$P/$1.ext"
	openssl x509 -req -in "$P/$1.csr" -CA "$P/$3.crt" -CAkey "$P/$3.key" \
		-CAcreateserial -days 2 -extfile "$P/$1.ext" -out "$P/$1.crt" 2>/dev/null ||
		fail "sign $1"
}
ca() {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/$1.key" -days 2 \
		-subj "/CN=$1" -out "$P/$1.crt" 2>/dev/null || fail "ca $1"
}
ca ca
ca other-ca
cert server 127.0.0.1 ca
cert client triplex-node ca
cert stranger triplex-node other-ca

cport=$(free_port)
pport=$(free_port)
[[ $cport != "$pport" ]] || pport=$(free_port)
etcd --name e1 --data-dir "$T/etcd" \
	--listen-client-urls "https://127.0.0.1:$cport" \
	--advertise-client-urls "https://127.0.0.1:$cport" \
	--listen-peer-urls "http://127.0.0.1:$pport" \
	--initial-advertise-peer-urls "http://127.0.0.1:$pport" \
	--initial-cluster "e1=http://127.0.0.1:$pport" \
	--cert-file "$P/server.crt" --key-file "$P/server.key" \
	--client-cert-auth --trusted-ca-file "$P/ca.crt" >"$T/etcd.log" 2>&1 &
ETCD_PID=$!
on_exit "kill $ETCD_PID"
_etcd_up() {
	curl -sf --cacert "$P/ca.crt" --cert "$P/client.crt" --key "$P/client.key" \
		-X POST "https://127.0.0.1:$cport/v3/maintenance/status" -d '{}' >/dev/null
}
wait_for "etcd over TLS" 30 _etcd_up

URL=https://127.0.0.1:$cport
TLS=(--etcd-cacert "$P/ca.crt" --etcd-cert "$P/client.crt" --etcd-key "$P/client.key")

# triplexd registers through TLS.
mkdir -p "$T/n1" "$T/n2"
repl=$(free_port)
"$TPXD" --data-dir "$T/n1" --node-id n1 --zone zone-a --meta "$URL" "${TLS[@]}" \
	--listen-repl "127.0.0.1:$repl" --listen-unix "$T/n1.sock" --insecure >"$T/n1.log" 2>&1 &
N1=$!
on_exit "kill $N1"
_registered() { ctl node list --meta "$URL" "${TLS[@]}" 2>/dev/null | grep -Eq '^n1 +up '; }
wait_for "n1 registered over TLS" 30 _registered
ctl node list --meta "$URL" --etcd-cacert="$P/ca.crt" --etcd-cert="$P/client.crt" \
	--etcd-key="$P/client.key" | grep -q zone-a || fail "the =FILE form of the options does not work"
TRIPLEX_ETCD_CACERT=$P/ca.crt TRIPLEX_ETCD_CERT=$P/client.crt TRIPLEX_ETCD_KEY=$P/client.key \
	ctl node list --meta "$URL" | grep -q zone-a || fail "the TRIPLEX_ETCD_* variables do not work"

# refused URL-OPTIONS... WHAT: triplexctl must fail with a one-line error.
refused() {
	local what=$1 out
	shift
	if out=$(ctl node list --meta "$URL" "$@" 2>&1); then
		fail "node list $what succeeded: $out"
	fi
	grep -q 'cannot open metadata store' <<<"$out" || fail "node list $what: unclear error: $out"
	log "refused $what: $out"
}
refused "without a client certificate" --etcd-cacert "$P/ca.crt"
refused "with a certificate of another CA" --etcd-cacert "$P/ca.crt" \
	--etcd-cert "$P/stranger.crt" --etcd-key "$P/stranger.key"
refused "trusting another CA" --etcd-cacert "$P/other-ca.crt" \
	--etcd-cert "$P/client.crt" --etcd-key "$P/client.key"
out=$(ctl node list --meta "etcd://127.0.0.1:$cport" 2>&1) && fail "plain http to a TLS member worked: $out"
out=$(ctl node list --meta "etcd://127.0.0.1:$cport" "${TLS[@]}" 2>&1) && fail "certificates with etcd:// were taken: $out"
grep -q 'need https' <<<"$out" || fail "unclear error for certificates with etcd://: $out"

# triplexd without the certificates exits with the reason.
"$TPXD" --data-dir "$T/n2" --node-id n2 --zone zone-b --meta "$URL" \
	--etcd-cacert "$P/ca.crt" --listen-repl "127.0.0.1:$(free_port)" --insecure \
	--listen-unix "$T/n2.sock" >"$T/n2.log" 2>&1 && fail "triplexd without a client certificate started"
grep -q 'cannot open metadata store' "$T/n2.log" || fail "triplexd gave no reason: $(cat "$T/n2.log")"

kill -TERM "$N1"
wait "$N1" || fail "n1 exited with status $? after SIGTERM"
log PASS
