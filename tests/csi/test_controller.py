"""triplex-csi's Identity and Controller services over its socket, against
a three-node cluster in zones zone-a, zone-b, zone-c (triplexctl dev up):
every RPC, the status codes for missing fields, unknown ids, unsupported
capabilities and conflicts, idempotent repeats, topology, paging.

usage: test_controller.py --endpoint unix://... --proto csi.proto
       --stubs DIR --ctl triplexctl --meta URL --cluster cluster.json
"""
import argparse
import json
import subprocess
import sys

import csi_client
from csi_client import Failed, wait_until

MiB = 1 << 20


def identity(c):
    pb = c.pb
    info = c.identity.GetPluginInfo(pb.GetPluginInfoRequest())
    c.ok(info.name == "triplex.csi.io" and info.vendor_version,
         "GetPluginInfo: %s" % info)
    caps = c.identity.GetPluginCapabilities(pb.GetPluginCapabilitiesRequest())
    svc = {x.service.type for x in caps.capabilities if x.HasField("service")}
    exp = {x.volume_expansion.type for x in caps.capabilities
           if x.HasField("volume_expansion")}
    S = pb.PluginCapability.Service
    c.ok(svc == {S.CONTROLLER_SERVICE, S.VOLUME_ACCESSIBILITY_CONSTRAINTS},
         "plugin capabilities: %s" % caps)
    c.ok(exp == {pb.PluginCapability.VolumeExpansion.ONLINE},
         "expansion: %s" % caps)
    pr = c.identity.Probe(pb.ProbeRequest())
    c.ok(pr.HasField("ready") and pr.ready.value, "Probe: %s" % pr)
    T = pb.ControllerServiceCapability.RPC
    got = {x.rpc.type for x in c.ctl.ControllerGetCapabilities(
        pb.ControllerGetCapabilitiesRequest()).capabilities}
    want = {T.CREATE_DELETE_VOLUME, T.PUBLISH_UNPUBLISH_VOLUME,
            T.LIST_VOLUMES, T.GET_CAPACITY, T.EXPAND_VOLUME,
            T.LIST_VOLUMES_PUBLISHED_NODES, T.VOLUME_CONDITION, T.GET_VOLUME}
    c.ok(got == want, "controller capabilities %s, want %s" % (got, want))


def create_refused(c, ctl):
    pb = c.pb
    R = pb.CreateVolumeRequest
    cap = c.cap()
    cr = pb.CapacityRange
    bad = [
        ("INVALID_ARGUMENT", R(volume_capabilities=[cap]), "no name"),
        ("INVALID_ARGUMENT", R(name="r1"), "no capabilities"),
        ("INVALID_ARGUMENT", R(name="r1", volume_capabilities=[
            pb.VolumeCapability(mount=pb.VolumeCapability.MountVolume())]),
         "no access mode"),
        ("INVALID_ARGUMENT", R(name="r1", volume_capabilities=[
            pb.VolumeCapability(access_mode=pb.VolumeCapability.AccessMode(
                mode=1))]), "neither block nor mount"),
        ("INVALID_ARGUMENT", R(name="r1", volume_capabilities=[c.cap(mode=5)]),
         "multi-node writer"),
        ("INVALID_ARGUMENT", R(name="r1", volume_capabilities=[cap, c.cap(mode=3)]),
         "one of two capabilities multi-node"),
        ("INVALID_ARGUMENT", R(name="r1", volume_capabilities=[c.cap(fs="btrfs")]),
         "fs_type btrfs"),
        ("INVALID_ARGUMENT", R(name="r1", volume_capabilities=[cap],
                               parameters={"replica": "3"}), "unknown parameter"),
        ("INVALID_ARGUMENT", R(name="r1", volume_capabilities=[cap],
                               parameters={"replicas": "x"}), "bad replicas"),
        ("INVALID_ARGUMENT", R(name="r1", volume_capabilities=[cap],
                               parameters={"replicas": "2", "minReplicas": "3"}),
         "minReplicas over replicas"),
        ("INVALID_ARGUMENT", R(name="r1", volume_capabilities=[cap],
                               parameters={"failureDomain": "planet"}),
         "bad failureDomain"),
        ("INVALID_ARGUMENT", R(name="r1", volume_capabilities=[cap],
                               parameters={"fsType": "ntfs"}), "bad fsType"),
        ("INVALID_ARGUMENT", R(name="r1", volume_capabilities=[cap],
                               volume_content_source=pb.VolumeContentSource(
                                   volume=pb.VolumeContentSource.VolumeSource(
                                       volume_id="demo"))), "content source"),
        ("INVALID_ARGUMENT", R(name="bad name!", volume_capabilities=[cap]),
         "name not a volume name"),
        ("INVALID_ARGUMENT", R(name="r1", volume_capabilities=[cap],
                               capacity_range=cr(required_bytes=-1)), "negative"),
        ("OUT_OF_RANGE", R(name="r1", volume_capabilities=[cap],
                           capacity_range=cr(required_bytes=8 * MiB,
                                             limit_bytes=4 * MiB)),
         "required over limit"),
        ("OUT_OF_RANGE", R(name="r1", volume_capabilities=[cap],
                           capacity_range=cr(limit_bytes=1000)), "limit < 4 KiB"),
        ("OUT_OF_RANGE", R(name="r1", volume_capabilities=[cap],
                           capacity_range=cr(required_bytes=4097,
                                             limit_bytes=5000)),
         "no 4 KiB multiple in range"),
        ("OUT_OF_RANGE", R(name="r1", volume_capabilities=[cap],
                           capacity_range=cr(required_bytes=1 << 51)), "over 1 PiB"),
        ("RESOURCE_EXHAUSTED", R(name="r1", volume_capabilities=[cap],
                                 capacity_range=cr(required_bytes=4 * MiB),
                                 parameters={"replicas": "4"}),
         "4 replicas on 3 zones"),
        ("RESOURCE_EXHAUSTED", R(name="r1", volume_capabilities=[cap],
                                 capacity_range=cr(required_bytes=4 * MiB),
                                 accessibility_requirements=pb.TopologyRequirement(
                                     requisite=[c.topo("zone-x")])),
         "requisite zone without nodes"),
        ("INVALID_ARGUMENT", R(name="r1", volume_capabilities=[cap],
                               accessibility_requirements=pb.TopologyRequirement(
                                   requisite=[c.topo("zone-a", key="rack")])),
         "unknown topology key"),
    ]
    for code, req, what in bad:
        c.expect_code(code, c.ctl.CreateVolume, req, what)
    c.ok(ctl.show("r1") is None, "a refused CreateVolume left volume r1")


def zones_of(vol):
    return sorted(t.segments["topology.kubernetes.io/zone"]
                  for t in vol.accessible_topology)


def create(c, ctl):
    pb = c.pb
    req = pb.CreateVolumeRequest(
        name="pvc-a", volume_capabilities=[c.cap()],
        capacity_range=pb.CapacityRange(required_bytes=8 * MiB + 1),
        parameters={"replicas": "3", "minReplicas": "2", "fsType": "ext4"})
    v = c.ctl.CreateVolume(req).volume
    c.ok(v.volume_id == "pvc-a" and v.capacity_bytes == 8 * MiB + 4096,
         "CreateVolume rounds to 4 KiB: %s" % v)
    c.ok(zones_of(v) == ["zone-a", "zone-b", "zone-c"], "topology %s" % v)
    c.ok(dict(v.volume_context) == {"replicas": "3", "minReplicas": "2",
                                    "failureDomain": "zone", "fsType": "ext4"},
         "volume_context %s" % v.volume_context)
    rec = ctl.show("pvc-a")
    c.ok(rec and rec["size"] == 8 * MiB + 4096 and rec["replicas"] == 3 and
         rec["failover"] == "manual", "record %s" % rec)
    again = c.ctl.CreateVolume(req).volume
    c.ok(again == v, "a repeated CreateVolume answered %s, then %s" % (v, again))
    c.ok(ctl.show("pvc-a")["id"] == rec["id"], "the repeat made a new volume")
    req.capacity_range.required_bytes = 64 * MiB
    c.expect_code("ALREADY_EXISTS", c.ctl.CreateVolume, req, "bigger size")
    req.capacity_range.required_bytes = 8 * MiB
    req.parameters["replicas"] = "2"
    c.expect_code("ALREADY_EXISTS", c.ctl.CreateVolume, req, "other replicas")
    # No capacity_range: a limit alone picks the limit (under 1 GiB).
    v = c.ctl.CreateVolume(pb.CreateVolumeRequest(
        name="pvc-lim", volume_capabilities=[c.cap(block=True)],
        parameters={"csi.storage.k8s.io/pvc/name": "data-db-0"},
        capacity_range=pb.CapacityRange(limit_bytes=4 * MiB + 100))).volume
    c.ok(v.capacity_bytes == 4 * MiB, "limit only: %s" % v)


def topology(c, ctl):
    pb = c.pb
    for zone in ("zone-c", "zone-b"):
        name = "pvc-one-" + zone
        req = pb.CreateVolumeRequest(
            name=name, volume_capabilities=[c.cap()],
            capacity_range=pb.CapacityRange(required_bytes=4 * MiB),
            parameters={"replicas": "1"},
            accessibility_requirements=pb.TopologyRequirement(
                requisite=[c.topo("zone-a"), c.topo("zone-b"), c.topo("zone-c")],
                preferred=[c.topo(zone), c.topo("zone-a")]))
        v = c.ctl.CreateVolume(req).volume
        c.ok(zones_of(v) == [zone], "preferred %s: %s" % (zone, v))
        rec = ctl.show(name)
        c.ok(rec["placement"][0]["domain"] == zone, "record %s" % rec)
    # Requisite only: the replica lands in one of them.
    v = c.ctl.CreateVolume(pb.CreateVolumeRequest(
        name="pvc-req", volume_capabilities=[c.cap()],
        capacity_range=pb.CapacityRange(required_bytes=4 * MiB),
        parameters={"replicas": "1"},
        accessibility_requirements=pb.TopologyRequirement(
            requisite=[c.topo("zone-x"), c.topo("zone-b")]))).volume
    c.ok(zones_of(v) == ["zone-b"], "requisite zone-b: %s" % v)
    for name in ("pvc-one-zone-c", "pvc-one-zone-b", "pvc-req"):
        c.ctl.DeleteVolume(pb.DeleteVolumeRequest(volume_id=name))


def nbd_size(uri):
    p = subprocess.run(["nbdinfo", "--size", uri], capture_output=True,
                       text=True, timeout=10)
    return int(p.stdout) if p.returncode == 0 else -1


def publish(c, ctl):
    pb = c.pb
    P = pb.ControllerPublishVolumeRequest
    U = pb.ControllerUnpublishVolumeRequest
    cap = c.cap()
    for code, req, what in [
        ("INVALID_ARGUMENT", P(node_id="n2", volume_capability=cap), "no volume_id"),
        ("INVALID_ARGUMENT", P(volume_id="pvc-a", volume_capability=cap), "no node_id"),
        ("INVALID_ARGUMENT", P(volume_id="pvc-a", node_id="n2"), "no capability"),
        ("NOT_FOUND", P(volume_id="nope", node_id="n2", volume_capability=cap),
         "unknown volume"),
        ("NOT_FOUND", P(volume_id="pvc-a", node_id="n9", volume_capability=cap),
         "unknown node"),
        ("INVALID_ARGUMENT", P(volume_id="pvc-a", node_id="n2",
                               volume_capability=c.cap(mode=5)),
         "multi-node capability"),
    ]:
        c.expect_code(code, c.ctl.ControllerPublishVolume, req, what)
    epoch0 = ctl.show("pvc-a")["epoch"]
    c.ok(ctl.show("pvc-a")["attached"] == "", "refused publishes attached it")
    req = P(volume_id="pvc-a", node_id="n2", volume_capability=cap)
    ctx = dict(c.ctl.ControllerPublishVolume(req).publish_context)
    rec = ctl.show("pvc-a")
    c.ok(rec["attached"] == "n2" and rec["epoch"] == epoch0 + 1,
         "publish: record %s" % rec)
    c.ok(ctx.get("exportName") == "pvc-a" and ctx.get("nbdUri", "").startswith("nbd://")
         and ctx.get("epoch") == str(epoch0 + 1), "publish_context %s" % ctx)
    wait_until("the engine on n2 to serve " + ctx["nbdUri"], 30,
               lambda: nbd_size(ctx["nbdUri"]) == 8 * MiB + 4096)
    again = dict(c.ctl.ControllerPublishVolume(req).publish_context)
    c.ok(again == ctx and ctl.show("pvc-a")["epoch"] == epoch0 + 1,
         "a repeated publish changed something: %s" % again)
    c.expect_code("FAILED_PRECONDITION", c.ctl.ControllerPublishVolume,
                  P(volume_id="pvc-a", node_id="n3", volume_capability=cap),
                  "published elsewhere")
    c.ok(ctl.show("pvc-a")["attached"] == "n2", "the refused publish moved it")
    c.expect_code("FAILED_PRECONDITION", c.ctl.DeleteVolume,
                  pb.DeleteVolumeRequest(volume_id="pvc-a"), "delete while published")
    c.ok(ctl.show("pvc-a") is not None, "deleted while published")
    c.ctl.ControllerUnpublishVolume(U(volume_id="pvc-a", node_id="n3"))
    c.ok(ctl.show("pvc-a")["attached"] == "n2", "unpublish from n3 detached n2")
    return ctx


def unpublish(c, ctl):
    pb = c.pb
    U = pb.ControllerUnpublishVolumeRequest
    epoch = ctl.show("pvc-a")["epoch"]
    c.ctl.ControllerUnpublishVolume(U(volume_id="pvc-a", node_id="n2"))
    rec = ctl.show("pvc-a")
    c.ok(rec["attached"] == "" and rec["epoch"] == epoch + 1, "unpublish: %s" % rec)
    c.ctl.ControllerUnpublishVolume(U(volume_id="pvc-a", node_id="n2"))
    c.ok(ctl.show("pvc-a")["epoch"] == epoch + 1, "a repeated unpublish bumped the epoch")
    c.ctl.ControllerUnpublishVolume(U(volume_id="gone", node_id="n2"))
    c.expect_code("INVALID_ARGUMENT", c.ctl.ControllerUnpublishVolume,
                  U(node_id="n2"), "no volume_id")
    # node_id empty: off every node.
    c.ctl.ControllerPublishVolume(pb.ControllerPublishVolumeRequest(
        volume_id="pvc-a", node_id="n1", volume_capability=c.cap()))
    c.ctl.ControllerUnpublishVolume(U(volume_id="pvc-a"))
    c.ok(ctl.show("pvc-a")["attached"] == "", "unpublish without node_id")


def validate(c):
    pb = c.pb
    V = pb.ValidateVolumeCapabilitiesRequest
    for code, req, what in [
        ("INVALID_ARGUMENT", V(volume_capabilities=[c.cap()]), "no volume_id"),
        ("INVALID_ARGUMENT", V(volume_id="pvc-a"), "no capabilities"),
        ("NOT_FOUND", V(volume_id="nope", volume_capabilities=[c.cap()]), "unknown"),
        ("INVALID_ARGUMENT", V(volume_id="pvc-a", volume_capabilities=[
            pb.VolumeCapability(block=pb.VolumeCapability.BlockVolume())]),
         "no access mode"),
    ]:
        c.expect_code(code, c.ctl.ValidateVolumeCapabilities, req, what)
    r = c.ctl.ValidateVolumeCapabilities(V(volume_id="pvc-a", volume_capabilities=[
        c.cap(), c.cap(mode=2, block=True)]))
    c.ok(r.HasField("confirmed") and len(r.confirmed.volume_capabilities) == 2,
         "supported capabilities not confirmed: %s" % r)
    for caps, params, what in [([c.cap(mode=3)], {}, "multi-node reader"),
                               ([c.cap(fs="vfat")], {}, "vfat"),
                               ([c.cap()], {"speed": "fast"}, "unknown parameter")]:
        r = c.ctl.ValidateVolumeCapabilities(V(
            volume_id="pvc-a", volume_capabilities=caps, parameters=params))
        c.ok(not r.HasField("confirmed") and r.message, "%s confirmed: %s" % (what, r))


def list_volumes(c, ctl):
    pb = c.pb
    L = pb.ListVolumesRequest
    for i in range(23):
        c.ctl.CreateVolume(pb.CreateVolumeRequest(
            name="pvc-many-%02d" % i, volume_capabilities=[c.cap()],
            capacity_range=pb.CapacityRange(required_bytes=4 * MiB),
            parameters={"replicas": "1"}))
    c.ctl.ControllerPublishVolume(pb.ControllerPublishVolumeRequest(
        volume_id="pvc-many-05", node_id="n3", volume_capability=c.cap()))
    seen, token, pages = [], "", 0
    while True:
        r = c.ctl.ListVolumes(L(max_entries=7, starting_token=token))
        c.ok(len(r.entries) <= 7, "page of %d entries" % len(r.entries))
        seen += [e.volume.volume_id for e in r.entries]
        for e in r.entries:
            want = ["n3"] if e.volume.volume_id == "pvc-many-05" else \
                ([ctl.show(e.volume.volume_id)["attached"]]
                 if ctl.show(e.volume.volume_id)["attached"] else [])
            c.ok(list(e.status.published_node_ids) == want,
                 "%s published on %s" % (e.volume.volume_id, e.status))
        pages += 1
        token = r.next_token
        if not token:
            break
        c.ok(pages < 100, "paging does not end")
    names = ctl.names()
    c.ok(seen == names, "pages listed %s, the store has %s" % (seen, names))
    c.ok(pages == (len(names) + 6) // 7, "%d pages for %d volumes" % (pages, len(names)))
    every = [e.volume.volume_id for e in c.ctl.ListVolumes(L()).entries]
    c.ok(every == names, "one page: %s" % every)
    c.expect_code("ABORTED", c.ctl.ListVolumes, L(starting_token="!!bad!!"), "bad token")
    c.expect_code("INVALID_ARGUMENT", c.ctl.ListVolumes, L(max_entries=-1), "negative")
    c.ctl.ControllerUnpublishVolume(pb.ControllerUnpublishVolumeRequest(
        volume_id="pvc-many-05", node_id="n3"))
    for i in range(23):
        c.ctl.DeleteVolume(pb.DeleteVolumeRequest(volume_id="pvc-many-%02d" % i))
    c.ok(not [n for n in ctl.names() if n.startswith("pvc-many")], "not all deleted")


def capacity(c):
    pb = c.pb
    G = pb.GetCapacityRequest
    all_ = c.ctl.GetCapacity(G())
    c.ok(all_.available_capacity > 0 and all_.minimum_volume_size.value == 4096,
         "GetCapacity: %s" % all_)
    za = c.ctl.GetCapacity(G(accessible_topology=c.topo("zone-a"),
                             volume_capabilities=[c.cap()]))
    after = c.ctl.GetCapacity(G())
    # Both read the nodes' filesystems with statvfs, which other tests on
    # this machine fill and free meanwhile: bound zone-a by the larger of
    # the two whole-cluster figures around it, with 256 MiB of slack.
    bound = max(all_.available_capacity, after.available_capacity) + (256 << 20)
    c.ok(0 < za.available_capacity <= bound,
         "zone-a: %s (cluster: %d then %d)" % (za, all_.available_capacity,
                                               after.available_capacity))
    zx = c.ctl.GetCapacity(G(accessible_topology=c.topo("zone-x")))
    c.ok(zx.available_capacity == 0, "zone-x (no nodes): %s" % zx)
    four = c.ctl.GetCapacity(G(parameters={"replicas": "4"}))
    c.ok(four.available_capacity == 0, "4 replicas on 3 zones: %s" % four)
    multi = c.ctl.GetCapacity(G(volume_capabilities=[c.cap(mode=5)]))
    c.ok(multi.available_capacity == 0, "multi-writer: %s" % multi)
    c.expect_code("INVALID_ARGUMENT", c.ctl.GetCapacity, G(parameters={"x": "1"}),
                  "unknown parameter")
    c.expect_code("INVALID_ARGUMENT", c.ctl.GetCapacity,
                  G(accessible_topology=c.topo("a", key="region")), "unknown key")


def expand(c, ctl, ctx):
    pb = c.pb
    E = pb.ControllerExpandVolumeRequest
    cr = pb.CapacityRange
    for code, req, what in [
        ("INVALID_ARGUMENT", E(capacity_range=cr(required_bytes=MiB)), "no volume_id"),
        ("INVALID_ARGUMENT", E(volume_id="pvc-a"), "no capacity_range"),
        ("NOT_FOUND", E(volume_id="nope", capacity_range=cr(required_bytes=MiB)),
         "unknown"),
        ("OUT_OF_RANGE", E(volume_id="pvc-a", capacity_range=cr(
            required_bytes=16 * MiB, limit_bytes=12 * MiB)), "required over limit"),
    ]:
        c.expect_code(code, c.ctl.ControllerExpandVolume, req, what)
    # Online: published on n2, grown; a new connection sees the size.
    c.ctl.ControllerPublishVolume(pb.ControllerPublishVolumeRequest(
        volume_id="pvc-a", node_id="n2", volume_capability=c.cap()))
    wait_until("pvc-a served on n2", 30, lambda: nbd_size(ctx["nbdUri"]) > 0)
    r = c.ctl.ControllerExpandVolume(E(volume_id="pvc-a", capacity_range=cr(
        required_bytes=16 * MiB), volume_capability=c.cap()))
    c.ok(r.capacity_bytes == 16 * MiB and r.node_expansion_required,
         "expand: %s" % r)
    c.ok(ctl.show("pvc-a")["size"] == 16 * MiB, "record not grown")
    wait_until("the engine to serve 16 MiB", 30,
               lambda: nbd_size(ctx["nbdUri"]) == 16 * MiB)
    r = c.ctl.ControllerExpandVolume(E(volume_id="pvc-a", capacity_range=cr(
        required_bytes=16 * MiB)))
    c.ok(r.capacity_bytes == 16 * MiB, "repeated expand: %s" % r)
    r = c.ctl.ControllerExpandVolume(E(volume_id="pvc-a", capacity_range=cr(
        required_bytes=8 * MiB)))
    c.ok(r.capacity_bytes == 16 * MiB, "smaller expand: %s" % r)
    c.expect_code("OUT_OF_RANGE", c.ctl.ControllerExpandVolume, E(
        volume_id="pvc-a", capacity_range=cr(required_bytes=8 * MiB,
                                             limit_bytes=12 * MiB)),
        "limit under the current size")
    r = c.ctl.ControllerExpandVolume(E(volume_id="pvc-lim", capacity_range=cr(
        required_bytes=8 * MiB), volume_capability=c.cap(block=True)))
    c.ok(r.capacity_bytes == 8 * MiB and not r.node_expansion_required,
         "block expand: %s" % r)


def get_volume(c):
    pb = c.pb
    G = pb.ControllerGetVolumeRequest
    c.expect_code("INVALID_ARGUMENT", c.ctl.ControllerGetVolume, G(), "no id")
    c.expect_code("NOT_FOUND", c.ctl.ControllerGetVolume, G(volume_id="nope"), "unknown")
    r = c.ctl.ControllerGetVolume(G(volume_id="pvc-a"))
    c.ok(r.volume.volume_id == "pvc-a" and r.volume.capacity_bytes == 16 * MiB and
         list(r.status.published_node_ids) == ["n2"] and
         not r.status.volume_condition.abnormal, "ControllerGetVolume: %s" % r)


def delete(c, ctl):
    pb = c.pb
    D = pb.DeleteVolumeRequest
    c.expect_code("INVALID_ARGUMENT", c.ctl.DeleteVolume, D(), "no volume_id")
    c.ctl.ControllerUnpublishVolume(pb.ControllerUnpublishVolumeRequest(
        volume_id="pvc-a", node_id="n2"))
    for name in ("pvc-a", "pvc-a", "pvc-lim", "never-was", "bad name!"):
        c.ctl.DeleteVolume(D(volume_id=name))
    c.ok(ctl.show("pvc-a") is None and ctl.show("pvc-lim") is None, "not deleted")
    c.expect_code("NOT_FOUND", c.ctl.ControllerGetVolume,
                  pb.ControllerGetVolumeRequest(volume_id="pvc-a"), "deleted")


def bad_requests(c):
    for method in ("/csi.v1.Controller/CreateVolume",
                   "/csi.v1.Controller/ControllerPublishVolume",
                   "/csi.v1.Identity/GetPluginInfo"):
        for junk in (b"\xff\xff\xff", b"\x0a\x05ab", b"\x12\x80\x80\x80\x80\x10"):
            code, _ = c.raw(method, junk)
            c.ok(code == "INVALID_ARGUMENT", "%s with %r: %s" % (method, junk, code))
    code, _ = c.raw("/csi.v1.Controller/NoSuchThing", b"")
    c.ok(code == "UNIMPLEMENTED", "unknown method: %s" % code)
    code, _ = c.raw("/csi.v1.Node/NodeGetInfo", b"")
    c.ok(code == "UNIMPLEMENTED", "node RPC on a controller plugin: %s" % code)
    c.ok(c.identity.Probe(c.pb.ProbeRequest()).ready.value, "Probe after junk")


def main():
    ap = argparse.ArgumentParser()
    for a in ("endpoint", "proto", "stubs", "ctl", "meta"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    c = csi_client.connect(args.endpoint, args.proto, args.stubs)
    ctl = csi_client.Ctl(args.ctl, args.meta)
    steps = [("identity", lambda: identity(c)),
             ("create-refused", lambda: create_refused(c, ctl)),
             ("create", lambda: create(c, ctl)),
             ("topology", lambda: topology(c, ctl)),
             ("validate", lambda: validate(c)),
             ("publish", lambda: publish(c, ctl)),
             ("unpublish", lambda: unpublish(c, ctl)),
             ("list", lambda: list_volumes(c, ctl)),
             ("capacity", lambda: capacity(c)),
             ("expand", lambda: expand(c, ctl, ctx)),
             ("get", lambda: get_volume(c)),
             ("delete", lambda: delete(c, ctl)),
             ("bad-requests", lambda: bad_requests(c))]
    ctx = None
    for name, fn in steps:
        try:
            out = fn()
            if name == "publish":
                ctx = out
        except Failed as e:
            print("FAIL %s: %s" % (name, e), file=sys.stderr)
            return 1
        print("ok %s (%d checks so far)" % (name, c.checks), file=sys.stderr)
    print("PASS: %d checks" % c.checks, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
