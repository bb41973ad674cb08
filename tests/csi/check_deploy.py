"""What csi-shim/deploy/ must say (issue 7), beyond schema validity: the
driver, the high-availability StorageClass (with only parameters the
plugin takes), the controller's three replicas with leader-electing
sidecars, the node DaemonSet's registrar and liveness probe, triplexd,
the metadata Secret, and the example StatefulSet spread over zones."""
import sys

import yaml

PLUGIN_PARAMS = {"replicas", "minReplicas", "failureDomain", "fsType"}
ZONE = "topology.kubernetes.io/zone"


def load(files):
    objs = {}
    for path in files:
        with open(path) as f:
            for d in yaml.safe_load_all(f):
                if d:
                    objs[(d["kind"], d["metadata"]["name"])] = d
    return objs


def containers(d):
    return {c["name"]: c for c in d["spec"]["template"]["spec"]["containers"]}


def main():
    objs = load(sys.argv[1:])
    bad = []

    def need(cond, what):
        if not cond:
            bad.append(what)

    def get(kind, name):
        d = objs.get((kind, name))
        need(d is not None, "no %s %s" % (kind, name))
        return d or {}

    drv = get("CSIDriver", "triplex.csi.io").get("spec", {})
    need(drv.get("attachRequired") is True, "CSIDriver: attachRequired must be true")
    need("podInfoOnMount" in drv and "fsGroupPolicy" in drv,
         "CSIDriver: podInfoOnMount and fsGroupPolicy")
    sc = get("StorageClass", "high-availability")
    p = sc.get("parameters", {})
    need(sc.get("provisioner") == "triplex.csi.io", "StorageClass: provisioner")
    need(p.get("replicas") == "3" and p.get("failureDomain") == "zone",
         "StorageClass: replicas 3, failureDomain zone")
    for k in p:
        need(k in PLUGIN_PARAMS or k.startswith("csi.storage.k8s.io/"),
             "StorageClass: parameter %s is refused by triplex-csi" % k)
    need(sc.get("volumeBindingMode") == "WaitForFirstConsumer" and
         sc.get("allowVolumeExpansion") is True and
         sc.get("reclaimPolicy") == "Retain",
         "StorageClass: WaitForFirstConsumer, expansion, Retain")
    ctl = get("Deployment", "triplex-csi-controller")
    need(ctl.get("spec", {}).get("replicas") == 3, "controller: 3 replicas")
    cs = containers(ctl) if ctl else {}
    for side in ("csi-provisioner", "csi-attacher", "csi-resizer"):
        need(side in cs and "--leader-election" in cs[side].get("args", []),
             "controller: %s with --leader-election" % side)
    need("--mode=controller" in cs.get("triplex-csi", {}).get("args", []),
         "controller: triplex-csi --mode=controller")
    node = get("DaemonSet", "triplex-csi-node")
    ns = containers(node) if node else {}
    need("node-driver-registrar" in ns and "liveness-probe" in ns,
         "node: registrar and liveness-probe sidecars")
    plug = ns.get("triplex-csi", {})
    need("--mode=node" in plug.get("args", []) and "livenessProbe" in plug,
         "node: triplex-csi --mode=node with a livenessProbe")
    need(any(m.get("mountPropagation") == "Bidirectional"
             for m in plug.get("volumeMounts", [])), "node: Bidirectional kubelet mount")
    get("DaemonSet", "triplexd")
    need("url" in get("Secret", "triplex-meta").get("stringData", {}),
         "Secret triplex-meta: url")
    ss = get("StatefulSet", "db").get("spec", {})
    need(ss.get("replicas") == 3, "StatefulSet: replicas 3")
    need(any(t["spec"].get("storageClassName") == "high-availability"
             for t in ss.get("volumeClaimTemplates", [])),
         "StatefulSet: a claim on high-availability")
    need(any(t.get("topologyKey") == ZONE for t in
             ss.get("template", {}).get("spec", {}).get("topologySpreadConstraints", [])),
         "StatefulSet: spread over %s" % ZONE)
    for b in bad:
        print("  - " + b, file=sys.stderr)
    print("%d objects, %d problems" % (len(objs), len(bad)), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
