#!/usr/bin/env bash
# The Debian package: cpack builds triplex_VERSION_ARCH.deb from this build,
# dpkg installs it into a scratch root (never the machine's own: the
# machine is shared, and an installed /usr/bin/triplexd would be found by
# everyone's PATH), the installed triplexd and triplexctl run and report
# the project version, the man pages, units (checked by systemd-analyze
# verify), completion and config example are in place, every dependency
# is a package this machine has, and dpkg -r removes every file again.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_tool cpack dpkg dpkg-deb
[[ -f $TPX_BUILD/CPackConfig.cmake ]] || fail "no CPackConfig.cmake in $TPX_BUILD"
version=$(sed -n 's/^project(triplex VERSION \([0-9.]*\).*/\1/p' "$TPX_SRC/CMakeLists.txt")
[[ -n $version ]] || fail "no project version in CMakeLists.txt"

# cpack installs the build tree into its own staging dir under -B.
(cd "$T" && timeout 120 cpack -G DEB --config "$TPX_BUILD/CPackConfig.cmake" \
	-B "$T/pkg") >"$T/cpack.log" 2>&1 || fail "cpack failed: $(tail -5 "$T/cpack.log")"
deb=$T/pkg/triplex_${version}_$(dpkg --print-architecture).deb
[[ -f $deb ]] || fail "no $deb: $(ls "$T/pkg")"
[[ $(dpkg-deb -f "$deb" Package) == triplex ]] || fail "package name: $(dpkg-deb -f "$deb" Package)"
[[ $(dpkg-deb -f "$deb" Version) == "$version" ]] || fail "version: $(dpkg-deb -f "$deb" Version)"

# Dependencies: the runtime libraries, each one installed here (so the
# installed binaries below run against exactly what the package asks for).
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libinih1 liburing2 libsqlite3-0; do
	grep -qE "(^|, )$lib( |,|$)" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
for p in $(tr ',' '\n' <<<"$depends" | sed 's/(.*)//; s/|.*//; s/ //g'); do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		fail "dependency $p is not installed on this machine"
done

# A scratch root with an empty dpkg database. --force-depends: the
# dependencies are checked above against the machine, not this root.
ROOT=$T/root
mkdir -p "$ROOT/var/lib/dpkg/info" "$ROOT/var/lib/dpkg/updates" "$ROOT/var/lib/dpkg/triggers"
: >"$ROOT/var/lib/dpkg/status"
: >"$ROOT/var/lib/dpkg/available"
dpkg --root="$ROOT" --force-depends --log=/dev/null -i "$deb" >"$T/dpkg-i.log" 2>&1 ||
	fail "dpkg -i failed: $(tail -5 "$T/dpkg-i.log")"
dpkg --root="$ROOT" -s triplex 2>/dev/null | grep -q '^Status: install ok installed' ||
	fail "triplex not installed in the scratch root"

"$ROOT/usr/bin/triplexd" --version >"$T/v1" || fail "installed triplexd --version failed"
"$ROOT/usr/bin/triplexctl" --version >"$T/v2" || fail "installed triplexctl --version failed"
grep -q "^triplexd $version (git " "$T/v1" || fail "triplexd --version: $(cat "$T/v1")"
grep -q "^triplexctl $version (git " "$T/v2" || fail "triplexctl --version: $(cat "$T/v2")"

for f in usr/share/man/man8/triplexd.8 usr/share/man/man1/triplexctl.1 \
	usr/lib/systemd/system/triplexd.service \
	usr/share/bash-completion/completions/triplexctl \
	usr/share/bash-completion/completions/triplexd \
	usr/share/doc/triplex/triplexd.conf.example usr/share/doc/triplex/operations.md; do
	[[ -s $ROOT/$f ]] || fail "the package does not install /$f"
done
if [[ -x $ROOT/usr/bin/triplex-csi ]]; then
	[[ -s $ROOT/usr/share/man/man8/triplex-csi.8 && -s $ROOT/usr/lib/systemd/system/triplex-csi.service ]] ||
		fail "triplex-csi without its man page or unit"
fi

# The man pages render and hold the options of --help.
if command -v man >/dev/null; then
	man -l "$ROOT/usr/share/man/man8/triplexd.8" >"$T/man.txt" 2>"$T/man.err" || fail "man triplexd failed"
	grep -q -- '--config' "$T/man.txt" || fail "triplexd.8 does not document --config"
	man -l "$ROOT/usr/share/man/man1/triplexctl.1" >"$T/man.txt" 2>/dev/null || fail "man triplexctl failed"
	grep -q 'triplexctl volume create' "$T/man.txt" || fail "triplexctl.1 lacks volume create's help"
fi

# The units: systemd-analyze verify, with ExecStart pointed at the
# scratch root's binaries (verify checks that they exist) and no man
# lookup (the pages are not on this machine's MANPATH).
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$T/units"
	for u in "$ROOT"/usr/lib/systemd/system/*.service; do
		sed "s|/usr/bin/|$ROOT/usr/bin/|" "$u" >"$T/units/$(basename "$u")"
	done
	systemd-analyze verify --man=no "$T"/units/*.service >"$T/verify.log" 2>&1 ||
		fail "systemd-analyze verify: $(cat "$T/verify.log")"
	# verify only warns about an unknown or misspelt directive.
	! grep -v 'sysinit.target' "$T/verify.log" | grep -q . ||
		fail "systemd-analyze verify: $(cat "$T/verify.log")"
else
	log "no systemd-analyze: units checked for syntax only"
fi
for u in "$ROOT"/usr/lib/systemd/system/*.service; do
	if ! grep -q '^Type=' "$u" || ! grep -q '^Restart=on-failure' "$u"; then
		fail "$(basename "$u"): no Type= or Restart=on-failure"
	fi
done
grep -q '^Type=notify' "$ROOT/usr/lib/systemd/system/triplexd.service" || fail "triplexd.service is not Type=notify"

# Completion, from the installed file and binaries.
complete_words() {
	bash -c '. "$1"; shift; PATH=$R/usr/bin:$PATH; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		"_${1//-/_}"; echo "${COMPREPLY[*]}"' _ \
		"$ROOT/usr/share/bash-completion/completions/triplexctl" "$@"
}
export R=$ROOT
[[ $(complete_words triplexctl volume cr) == create ]] || fail "completion of 'triplexctl volume cr': $(complete_words triplexctl volume cr)"
[[ $(complete_words triplexctl volume create --repl) == --replicas ]] || fail "completion of volume create --repl"
[[ $(complete_words triplexctl dr) == drill ]] || fail "completion of 'triplexctl dr': $(complete_words triplexctl dr)"
[[ $(complete_words triplexctl dev re) == restart ]] || fail "completion of 'triplexctl dev re': $(complete_words triplexctl dev re)"
[[ $(complete_words triplexctl drill --ho) == --hold ]] || fail "completion of 'triplexctl drill --ho': $(complete_words triplexctl drill --ho)"
[[ $(complete_words triplexd --conf) == --config ]] || fail "completion of 'triplexd --conf': $(complete_words triplexd --conf)"

# Removal: every file of the package is gone.
dpkg --root="$ROOT" --log=/dev/null -r triplex >"$T/dpkg-r.log" 2>&1 || fail "dpkg -r failed: $(tail -5 "$T/dpkg-r.log")"
left=$(find "$ROOT/usr" -type f 2>/dev/null | head -5 || true)
[[ -z $left ]] || fail "files left after dpkg -r: $left"
if dpkg --root="$ROOT" -s triplex 2>/dev/null | grep -q '^Status: install ok installed'; then
	fail "triplex still installed after dpkg -r"
fi
log PASS
