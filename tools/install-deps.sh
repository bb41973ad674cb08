#!/usr/bin/env bash
# Install the Debian 12 packages triplex needs to build, test and benchmark.
# Idempotent and quiet: a fast no-op when everything is installed; runs
# "apt-get update" only when something is missing.  Run as root.
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

PACKAGES=(
	build-essential cmake pkg-config git
	liburing-dev libssl-dev openssl libisal-dev
	libnbd-dev libnbd-bin python3-libnbd libcmocka-dev
	nbdkit qemu-utils fio
	clang-14 libclang-rt-14-dev
	gnuplot-nox fuse3 e2fsprogs iptables iproute2
	sqlite3 libsqlite3-dev libjansson-dev libmicrohttpd-dev
	util-linux procps curl
	# The etcd metadata store (client through its JSON gateway) and the
	# three-member etcd that tests and "dev up --etcd" start on loopback.
	etcd-server etcd-client libcurl4-openssl-dev
	# libfaketime: one node's wall clock an hour off (t-clock-skew).
	faketime
	# The CSI plugin (gRPC core C API, protobuf-c and its compiler) and
	# its tests' client (python grpcio, stubs generated at test time).
	libgrpc-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
	python3-grpcio python3-grpc-tools xfsprogs
	# Offline checks of csi-shim/deploy/ (t-csi-deploy): YAML to JSON
	# here; npm's kubernetes-models below (install_npm_models).
	python3-yaml
	# triplexd's config file parser; man pages from the --help texts.
	libinih-dev help2man
	# For promtool (metrics format check in the tests). On a systemd host
	# this also enables prometheus.service on :9090; stop it if unwanted.
	prometheus
)

# missing_packages: print the packages of PACKAGES not fully installed.
missing_packages() {
	local installed
	installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' \
		"${PACKAGES[@]}" 2>/dev/null | awk '$1 == "ii" { sub(/:.*/, "", $2); print $2 }' || true)
	local p
	for p in "${PACKAGES[@]}"; do
		grep -qxF "$p" <<<"$installed" || echo "$p"
	done
}

# npm's kubernetes-models@4.5.1 (the 5.x line needs a newer Node) into
# NPM_DIR, for t-csi-deploy. Node.js and npm come with the machine; where
# npm is missing, Debian's.
NPM_DIR=${TPX_NPM_DIR:-/var/cache/triplex/npm}
install_npm_models() {
	[[ -d $NPM_DIR/node_modules/kubernetes-models ]] && return 0
	if ! command -v npm >/dev/null; then
		apt-get update -qq >/dev/null
		apt-get install -y -qq --no-install-recommends npm >/dev/null
	fi
	mkdir -p "$NPM_DIR"
	echo "install-deps.sh: npm install kubernetes-models@4.5.1 into $NPM_DIR" >&2
	npm install --silent --no-audit --no-fund --prefix "$NPM_DIR" \
		kubernetes-models@4.5.1 >/dev/null
}

mapfile -t missing < <(missing_packages)

if ((${#missing[@]} == 0)); then
	install_npm_models
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	echo "install-deps.sh: missing packages (${missing[*]}); run as root" >&2
	exit 1
fi

echo "install-deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Check that it worked.
mapfile -t still < <(missing_packages)
if ((${#still[@]})); then
	echo "install-deps.sh: not installed after apt-get: ${still[*]}" >&2
	exit 1
fi
install_npm_models
