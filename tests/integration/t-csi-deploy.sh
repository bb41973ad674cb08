#!/usr/bin/env bash
# csi-shim/deploy/, offline: every object valid against its kind's schema
# (npm kubernetes-models@4.5.1) with no field the schema does not know
# (a misspelled field is caught, which the schema alone lets pass); and
# what issue 7 asks of the manifests (tests/csi/check_deploy.py). The npm
# package is looked for in TPX_NPM_DIR (default /var/cache/triplex/npm):
#   npm install --prefix /var/cache/triplex/npm kubernetes-models@4.5.1
# Then the validator is checked on a copy with one field misspelled.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
require_tool node
/usr/bin/python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"
NPM_DIR=${TPX_NPM_DIR:-/var/cache/triplex/npm}
[[ -d $NPM_DIR/node_modules/kubernetes-models ]] ||
	skip "kubernetes-models not in $NPM_DIR (npm install --prefix $NPM_DIR kubernetes-models@4.5.1)"
D=$TPX_SRC/csi-shim/deploy
CSI=$TPX_SRC/tests/csi

validate() {
	/usr/bin/python3 "$CSI/manifests_json.py" "$@" |
		NODE_PATH=$NPM_DIR/node_modules node "$CSI/validate_manifests.js"
}

validate "$D"/*.yaml || fail "manifests do not validate"
/usr/bin/python3 "$CSI/check_deploy.py" "$D"/*.yaml || fail "manifests lack what issue 7 asks"
sed 's/mountPropagation:/mountPropogation:/' "$D/06-node.yaml" >"$T/typo.yaml"
if validate "$T/typo.yaml" 2>"$T/typo.out"; then
	fail "a misspelled field passed the validator"
fi
grep -q "unknown field .*mountPropogation" "$T/typo.out" || fail "typo not named: $(cat "$T/typo.out")"
log PASS
