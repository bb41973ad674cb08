#!/usr/bin/env bash
# Scrub: corrupt a block of a replica that reads never touch (n2; n1 serves
# reads), then `triplexctl volume scrub`: the bad copy is found by its
# checksum, rewritten from a good replica, the report says so in blocks
# (block 300 of n2, one block: the chunk it was read in is read again block
# by block), all replicas end identical, and a second scrub finds nothing.
# The same report in words without --json.
. "$(dirname "$0")/lib.sh"
require_triplexd "scrub"
require_tool nbdcopy curl

D=$T/dev
on_exit "'$TPXCTL' dev down --dir '$D'"
ctl dev up --dir "$D" --size 16M >"$T/up.out" 2>&1 || { cat "$T/up.out" >&2; fail "dev up failed"; }
export TRIPLEX_META="sqlite:$D/meta.db"
uri=$(/usr/bin/python3 -c "import json; print(json.load(open('$D/cluster.json'))['volumes'][0]['nbd_uris'][0])")
head -c 8M /dev/urandom >"$T/in"
nbdcopy --flush "$T/in" "$uri" || fail "write failed"

# Flip bytes inside block 300 of n2's copy (O_DIRECT store: bypass caches).
printf 'garbage!' | dd of="$D/n2/replicas/demo/data" bs=1 seek=$((300 * 4096 + 17)) \
	conv=notrunc status=none
cmp -s "$D/n1/replicas/demo/data" "$D/n2/replicas/demo/data" && fail "corruption did not land"

ctl volume scrub demo --json >"$T/scrub1.json" || { cat "$T/scrub1.json" >&2; fail "scrub failed"; }
cat "$T/scrub1.json" >&2
field() { /usr/bin/python3 -c "import json; print(json.load(open('$1'))['$2'])"; }
(($(field "$T/scrub1.json" bad_blocks) == 1)) || fail "scrub did not count exactly the one bad block"
(($(field "$T/scrub1.json" repaired_blocks) == 1)) || fail "scrub did not repair exactly one block"
finding=$(/usr/bin/python3 -c "
import json
f = json.load(open('$T/scrub1.json'))['findings']
print(len(f), f[0]['node'], f[0]['first_block'], f[0]['blocks'], f[0]['problem'], f[0]['repaired_from'])")
[[ $finding == "1 n2 300 1 checksum n1" || $finding == "1 n2 300 1 checksum n3" ]] ||
	fail "the report's findings: '$finding', want 1 finding: n2 block 300, 1 block, checksum, from n1 or n3"
(($(field "$T/scrub1.json" unrepaired_blocks) == 0)) || fail "scrub left blocks unrepaired"
cmp "$D/n1/replicas/demo/data" "$D/n2/replicas/demo/data" || fail "n2 still differs after scrub"
# The bad block counts on the node whose copy it was, and only there.
store_csum() {
	local http
	http=$(/usr/bin/python3 -c "import json; print([n['http'] for n in json.load(open('$D/cluster.json'))['nodes'] if n['id'] == '$1'][0])")
	curl -sf "http://$http/metrics" | awk '$1 == "triplex_store_checksum_errors_total{volume=\"demo\"}" { print $2; found = 1 }
		END { if (!found) print "none" }'
}
csum1=$(store_csum n1) csum2=$(store_csum n2) csum3=$(store_csum n3)
[[ $csum2 != none ]] && ((csum2 >= 1)) || fail "n2's triplex_store_checksum_errors_total for demo is $csum2 after its bad block was found"
[[ $csum1 == 0 && $csum3 == 0 ]] || fail "checksum errors counted on nodes with good copies: n1 $csum1, n3 $csum3"
# status says so too, from n2's heartbeat (one every 5 s).
_csum_problem() {
	ctl health detail >"$T/health.out"
	grep -q '^HEALTH_WARN CHECKSUM_ERRORS node=n2$' "$T/health.out"
}
wait_for "health detail to name n2's checksum errors" 15 _csum_problem
grep -q 'CHECKSUM_ERRORS node=n[13]' "$T/health.out" && fail "checksum errors reported for a good node: $(cat "$T/health.out")"
cmp "$D/n1/replicas/demo/data" "$D/n3/replicas/demo/data" || fail "n3 differs from n1"

ctl volume scrub demo --json >"$T/scrub2.json" || fail "second scrub failed"
(($(field "$T/scrub2.json" bad_blocks) == 0 && $(field "$T/scrub2.json" repaired_blocks) == 0)) ||
	fail "second scrub still found problems: $(cat "$T/scrub2.json")"
# The report in words, on a block damaged on n3 this time.
printf 'garbage!' | dd of="$D/n3/replicas/demo/data" bs=1 seek=$((1000 * 4096)) \
	conv=notrunc status=none
ctl volume scrub demo >"$T/scrub3.txt" || { cat "$T/scrub3.txt" >&2; fail "third scrub failed"; }
cat "$T/scrub3.txt" >&2
grep -Eq '^  n3: block 1000 \(bytes 4096000\+4096\): failed its checksum, rewritten from n[12]$' "$T/scrub3.txt" ||
	fail "the report in words does not name n3's block 1000"
grep -q '^1 blocks failed their checksum, 0 differed, 1 repaired, 0 not repaired$' "$T/scrub3.txt" ||
	fail "the report's last line is wrong"
nbdcopy "$uri" "$T/out" && cmp -n $((8 << 20)) "$T/in" "$T/out" || fail "volume contents changed"
log "figures: n2's triplex_store_checksum_errors_total $csum2 after the first scrub (n1 $csum1, n3 $csum3)"
log PASS
