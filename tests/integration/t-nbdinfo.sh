#!/usr/bin/env bash
# nbdinfo sees what triplexd advertises: size, block sizes, transmission
# flags, structured replies, base:allocation; LIST shows every export.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_tool nbdinfo

start_triplexd demo:64M other:3M

nbdinfo --json "$(uri demo)" >"$T/info.json" || fail "nbdinfo --json failed"
nbdinfo --list --json "$(uri demo)" >"$T/list.json" || fail "nbdinfo --list failed"
nbdinfo --map "$(uri demo)" >"$T/map.txt" || fail "nbdinfo --map failed"

# The stand-in's file plugin cannot do fast zero on every filesystem.
relax=
[[ $TPX_SERVER == triplexd ]] || relax=can_fast_zero

/usr/bin/python3 - "$T/info.json" "$T/list.json" "$relax" <<'PY' || fail "nbdinfo output is wrong (see above)"
import json, sys
info = json.load(open(sys.argv[1]))
lst = json.load(open(sys.argv[2]))
relax = set(sys.argv[3].split(",")) if sys.argv[3] else set()
errors = []
def check(cond, what):
    if not cond:
        errors.append(what)

check(info.get("protocol") == "newstyle-fixed", "protocol is %r" % info.get("protocol"))
check(info.get("structured") is True, "structured replies not negotiated")
check(len(info["exports"]) == 1, "nbdinfo URI shows %d exports" % len(info["exports"]))
e = info["exports"][0]
check(e["export-name"] == "demo", "export name %r" % e["export-name"])
check(e["export-size"] == 64 << 20, "size %r != 64 MiB" % e["export-size"])
check(e.get("block_size_minimum") == 1, "block_size_minimum %r" % e.get("block_size_minimum"))
check(e.get("block_size_preferred") == 4096, "block_size_preferred %r" % e.get("block_size_preferred"))
check(e.get("block_size_maximum") == 32 << 20, "block_size_maximum %r" % e.get("block_size_maximum"))
for flag in ("can_flush", "can_fua", "can_trim", "can_zero", "can_fast_zero",
             "can_cache", "can_multi_conn", "can_df"):
    if flag in relax:
        print("stand-in: not checking", flag, file=sys.stderr)
        continue
    check(e.get(flag) is True, "%s is %r" % (flag, e.get(flag)))
check(e.get("is_read_only") is False, "is_read_only is %r" % e.get("is_read_only"))
check("base:allocation" in e.get("contexts", []),
      "base:allocation not in contexts %r" % e.get("contexts"))

names = sorted(x["export-name"] for x in lst["exports"])
check(names == ["demo", "other"], "LIST shows %r, expected demo and other" % names)
for x in lst["exports"]:
    want = {"demo": 64 << 20, "other": 3 << 20}.get(x["export-name"])
    check(x.get("export-size") == want,
          "LIST: %s size %r != %r" % (x["export-name"], x.get("export-size"), want))
    check("base:allocation" in x.get("contexts", []),
          "LIST: %s lacks base:allocation" % x["export-name"])
for m in errors:
    print("  -", m, file=sys.stderr)
sys.exit(1 if errors else 0)
PY

# --map: the extents cover the whole export, contiguously, in the
# base:allocation context (nbdinfo --map uses it by default).
/usr/bin/python3 - "$T/map.txt" $((64 << 20)) <<'PY' || fail "nbdinfo --map output is wrong: $(head -5 "$T/map.txt")"
import sys
size = int(sys.argv[2])
pos = 0
for line in open(sys.argv[1]):
    f = line.split()
    off, length, typ = int(f[0]), int(f[1]), int(f[2])
    if off != pos or length <= 0 or typ & ~3:
        print("bad extent", line.strip(), file=sys.stderr); sys.exit(1)
    pos += length
if pos != size:
    print("extents cover %d of %d bytes" % (pos, size), file=sys.stderr); sys.exit(1)
PY

# An unknown export is refused.
if nbdinfo "$(uri nosuch)" >"$T/nosuch.out" 2>&1; then
	fail "nbdinfo of an unknown export succeeded"
fi
stop_server
log PASS
