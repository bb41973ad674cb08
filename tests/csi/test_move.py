"""A volume moved the way Kubernetes moves it after a node loss, through
triplex-csi: phase "a" creates it, publishes it to n1 and stages and
publishes it there (node plugin A), writes files; the shell then kills
n1's triplexd and plugin A with -9. Phase "b" unpublishes it from n1 and
publishes it to n2 (node plugin B): the files are there, new ones are
written; the dead node's leftover mount cannot get a write to the volume.
Phase "c", after n1's triplexd is back: n1 does not serve the volume, a
write sent to n1 is not acknowledged, and a new plugin on n1 cleans up
plugin A's staging.

usage: test_move.py --endpoint CONTROLLER --node-a SOCK --node-b SOCK
       --proto P --stubs DIR --ctl triplexctl --meta URL --work DIR --phase a|b|c
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

import csi_client
from csi_client import Failed, wait_until

MiB = 1 << 20
VOL = "pvc-move"


def node_stub(c, endpoint):
    import grpc
    ch = grpc.insecure_channel(endpoint)
    grpc.channel_ready_future(ch).result(timeout=20)
    return importlib_grpc(c).NodeStub(ch)


def importlib_grpc(c):
    import importlib
    return importlib.import_module("csi_pb2_grpc")


def paths(work, who):
    return "%s/%s/staging" % (work, who), "%s/%s/target" % (work, who)


def stage_publish(c, node, ctx, work, who):
    pb = c.pb
    st, tg = paths(work, who)
    os.makedirs(st, exist_ok=True)
    node.NodeStageVolume(pb.NodeStageVolumeRequest(
        volume_id=VOL, staging_target_path=st, publish_context=ctx,
        volume_capability=c.cap()), timeout=120)
    node.NodePublishVolume(pb.NodePublishVolumeRequest(
        volume_id=VOL, staging_target_path=st, target_path=tg,
        volume_capability=c.cap()), timeout=60)
    return tg


def write(tg, name, n):
    data = os.urandom(n)
    with open(os.path.join(tg, name), "wb") as f:
        f.write(data)
        os.fsync(f.fileno())
    return hashlib.sha256(data).hexdigest()


def check(c, tg, sums):
    for name, want in sums.items():
        with open(os.path.join(tg, name), "rb") as f:
            c.ok(hashlib.sha256(f.read()).hexdigest() == want,
                 "%s differs after the move" % name)


def served(uri):
    return subprocess.run(["nbdinfo", "--size", uri], capture_output=True,
                          timeout=20).returncode == 0


def phase_a(c, work, nodes):
    pb = c.pb
    c.ctl.CreateVolume(pb.CreateVolumeRequest(
        name=VOL, volume_capabilities=[c.cap()],
        capacity_range=pb.CapacityRange(required_bytes=64 * MiB),
        accessibility_requirements=pb.TopologyRequirement(
            preferred=[c.topo("zone-a")])))
    ctx = dict(c.ctl.ControllerPublishVolume(pb.ControllerPublishVolumeRequest(
        volume_id=VOL, node_id="n1", volume_capability=c.cap())).publish_context)
    wait_until("n1 to serve the volume", 30, lambda: served(ctx["nbdUri"]))
    tg = stage_publish(c, nodes["a"], ctx, work, "a")
    sums = {"f%d" % i: write(tg, "f%d" % i, 200000 + i * 4099) for i in range(6)}
    subprocess.run(["sync"], check=True)
    json.dump({"sums": sums, "ctx_a": ctx}, open(work + "/move.json", "w"))


def stale_write_fails(tg):
    """A write through the dead node's mount, in a child bounded in time:
    True if it was not acknowledged (an error, or no answer)."""
    code = ("import os,sys\nf=os.open(sys.argv[1],os.O_WRONLY|os.O_CREAT)\n"
            "os.write(f,b'stale'*1000)\nos.fsync(f)\n")
    try:
        p = subprocess.run([sys.executable, "-c", code, os.path.join(tg, "stale")],
                           capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        return True
    return p.returncode != 0


def phase_b(c, ctl, work, nodes):
    pb = c.pb
    saved = json.load(open(work + "/move.json"))
    epoch = ctl.show(VOL)["epoch"]
    c.ctl.ControllerUnpublishVolume(pb.ControllerUnpublishVolumeRequest(
        volume_id=VOL, node_id="n1"))
    ctx = dict(c.ctl.ControllerPublishVolume(pb.ControllerPublishVolumeRequest(
        volume_id=VOL, node_id="n2", volume_capability=c.cap())).publish_context)
    rec = ctl.show(VOL)
    c.ok(rec["attached"] == "n2" and rec["epoch"] == epoch + 2, "record %s" % rec)
    c.ok(ctx["nbdUri"] != saved["ctx_a"]["nbdUri"], "same URI on n2: %s" % ctx)
    wait_until("n2 to serve the volume", 60, lambda: served(ctx["nbdUri"]))
    tg = stage_publish(c, nodes["b"], ctx, work, "b")
    check(c, tg, saved["sums"])
    saved["sums"]["after-move"] = write(tg, "after-move", 300000)
    c.ok(stale_write_fails(paths(work, "a")[1]),
         "a write through the dead node's mount was acknowledged")
    check(c, tg, saved["sums"])
    # n1's replica missed writes: the volume is degraded, and says so.
    wait_until("n1's replica out of sync", 60,
               lambda: ctl.show(VOL)["placement"] and any(
                   p["node"] == "n1" and p["state"] != "in_sync"
                   for p in ctl.show(VOL)["placement"]))
    st = nodes["b"].NodeGetVolumeStats(pb.NodeGetVolumeStatsRequest(
        volume_id=VOL, volume_path=tg))
    c.ok(st.volume_condition.abnormal and "2 of 3" in st.volume_condition.message,
         "NodeGetVolumeStats condition %s" % st.volume_condition)
    g = c.ctl.ControllerGetVolume(pb.ControllerGetVolumeRequest(volume_id=VOL))
    c.ok(g.status.volume_condition.abnormal and
         list(g.status.published_node_ids) == ["n2"], "ControllerGetVolume %s" % g)
    saved["ctx_b"] = ctx
    json.dump(saved, open(work + "/move.json", "w"))


def phase_c(c, ctl, work, nodes):
    pb = c.pb
    saved = json.load(open(work + "/move.json"))
    c.ok(ctl.show(VOL)["attached"] == "n2", "the restarted n1 took the volume")
    uri_a = saved["ctx_a"]["nbdUri"]
    c.ok(not served(uri_a), "the restarted n1 serves %s" % uri_a)
    p = subprocess.run(["nbdsh", "-u", uri_a, "-c", "h.pwrite(b'x' * 4096, 0); h.flush()"],
                       capture_output=True, timeout=30)
    c.ok(p.returncode != 0, "a write through the restarted n1 was acknowledged")
    # Plugin A's leftovers, cleaned by a new plugin on n1.
    st, tg = paths(work, "a")
    nodes["a"].NodeUnpublishVolume(pb.NodeUnpublishVolumeRequest(
        volume_id=VOL, target_path=tg), timeout=60)
    nodes["a"].NodeUnstageVolume(pb.NodeUnstageVolumeRequest(
        volume_id=VOL, staging_target_path=st), timeout=120)
    # Still whole on n2; n1's replica catches up, the condition clears.
    check(c, paths(work, "b")[1], saved["sums"])
    wait_until("the volume's condition to clear", 90, lambda: not c.ctl.ControllerGetVolume(
        pb.ControllerGetVolumeRequest(volume_id=VOL)).status.volume_condition.abnormal)
    st, tg = paths(work, "b")
    nodes["b"].NodeUnpublishVolume(pb.NodeUnpublishVolumeRequest(
        volume_id=VOL, target_path=tg), timeout=60)
    nodes["b"].NodeUnstageVolume(pb.NodeUnstageVolumeRequest(
        volume_id=VOL, staging_target_path=st), timeout=120)
    c.ctl.ControllerUnpublishVolume(pb.ControllerUnpublishVolumeRequest(volume_id=VOL))
    c.ctl.DeleteVolume(pb.DeleteVolumeRequest(volume_id=VOL))


def main():
    ap = argparse.ArgumentParser()
    for a in ("endpoint", "proto", "stubs", "ctl", "meta", "work", "phase"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--node-a")
    ap.add_argument("--node-b")
    args = ap.parse_args()
    c = csi_client.connect(args.endpoint, args.proto, args.stubs)
    ctl = csi_client.Ctl(args.ctl, args.meta)
    nodes = {k: node_stub(c, v) for k, v in (("a", args.node_a), ("b", args.node_b)) if v}
    try:
        if args.phase == "a":
            phase_a(c, args.work, nodes)
        elif args.phase == "b":
            phase_b(c, ctl, args.work, nodes)
        else:
            phase_c(c, ctl, args.work, nodes)
    except (Failed, csi_client.grpc.RpcError) as e:
        print("FAIL %s: %s" % (args.phase, e), file=sys.stderr)
        return 1
    print("PASS %s: %d checks" % (args.phase, c.checks), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
