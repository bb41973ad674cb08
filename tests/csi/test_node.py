"""triplex-csi's Node service on node n1 of a dev-up cluster, with the
nbdfuse + loop attacher: stage (mkfs only on a blank device), publish
(bind mount, read-only when asked, a raw block volume as a device file),
files written, stats, unpublish, unstage, each call repeated; the status
codes for missing fields and wrong state. Two phases, with the plugin
restarted (kill -9) between them while everything is staged and
published: phase "after" finds it all and takes it down.

usage: test_node.py --endpoint unix://... --proto P --stubs DIR
       --ctl triplexctl --meta URL --work DIR --phase before|after
"""
import argparse
import errno
import hashlib
import json
import os
import stat
import subprocess
import sys

import csi_client
from csi_client import Failed, wait_until

MiB = 1 << 20


def paths(work, vol):
    return ("%s/staging/%s" % (work, vol), "%s/target/%s" % (work, vol),
            "%s/target-ro/%s" % (work, vol))


def is_mount(path):
    return subprocess.run(["mountpoint", "-q", path]).returncode == 0


def setup(c, ctl, vol, size, block):
    pb = c.pb
    c.ctl.CreateVolume(pb.CreateVolumeRequest(
        name=vol, volume_capabilities=[c.cap(block=block)],
        capacity_range=pb.CapacityRange(required_bytes=size)))
    ctx = dict(c.ctl.ControllerPublishVolume(pb.ControllerPublishVolumeRequest(
        volume_id=vol, node_id="n1", volume_capability=c.cap(block=block)))
        .publish_context)
    wait_until("%s served on n1" % vol, 30, lambda: subprocess.run(
        ["nbdinfo", "--size", ctx["nbdUri"]], capture_output=True).returncode == 0)
    return ctx


def info(c):
    pb = c.pb
    i = c.node.NodeGetInfo(pb.NodeGetInfoRequest())
    c.ok(i.node_id == "n1" and i.max_volumes_per_node > 0 and
         dict(i.accessible_topology.segments) ==
         {"topology.kubernetes.io/zone": "zone-a"}, "NodeGetInfo: %s" % i)
    T = pb.NodeServiceCapability.RPC
    got = {x.rpc.type for x in c.node.NodeGetCapabilities(
        pb.NodeGetCapabilitiesRequest()).capabilities}
    c.ok(got == {T.STAGE_UNSTAGE_VOLUME, T.GET_VOLUME_STATS, T.EXPAND_VOLUME,
                 T.VOLUME_CONDITION}, "node capabilities %s" % got)


def refused(c, ctx, work):
    pb = c.pb
    st, tg, _ = paths(work, "pvc-fs")
    S, U = pb.NodeStageVolumeRequest, pb.NodeUnstageVolumeRequest
    P, UP = pb.NodePublishVolumeRequest, pb.NodeUnpublishVolumeRequest
    cap = c.cap()
    for code, fn, req, what in [
        ("INVALID_ARGUMENT", c.node.NodeStageVolume,
         S(staging_target_path=st, volume_capability=cap, publish_context=ctx), "no id"),
        ("INVALID_ARGUMENT", c.node.NodeStageVolume,
         S(volume_id="pvc-fs", volume_capability=cap, publish_context=ctx), "no path"),
        ("INVALID_ARGUMENT", c.node.NodeStageVolume,
         S(volume_id="pvc-fs", staging_target_path=st, publish_context=ctx), "no cap"),
        ("INVALID_ARGUMENT", c.node.NodeStageVolume,
         S(volume_id="pvc-fs", staging_target_path=st, publish_context=ctx,
           volume_capability=c.cap(mode=5)), "multi-node"),
        ("FAILED_PRECONDITION", c.node.NodeStageVolume,
         S(volume_id="pvc-fs", staging_target_path=st, volume_capability=cap),
         "no publish_context"),
        ("INVALID_ARGUMENT", c.node.NodeUnstageVolume, U(volume_id="pvc-fs"), "no path"),
        ("INVALID_ARGUMENT", c.node.NodeUnstageVolume, U(staging_target_path=st), "no id"),
        ("INVALID_ARGUMENT", c.node.NodePublishVolume,
         P(volume_id="pvc-fs", staging_target_path=st, volume_capability=cap), "no target"),
        ("FAILED_PRECONDITION", c.node.NodePublishVolume,
         P(volume_id="pvc-fs", staging_target_path=st, target_path=tg,
           volume_capability=cap), "not staged"),
        ("INVALID_ARGUMENT", c.node.NodeUnpublishVolume, UP(volume_id="pvc-fs"), "no target"),
        ("INVALID_ARGUMENT", c.node.NodeGetVolumeStats,
         pb.NodeGetVolumeStatsRequest(volume_id="pvc-fs"), "no path"),
        ("NOT_FOUND", c.node.NodeGetVolumeStats,
         pb.NodeGetVolumeStatsRequest(volume_id="pvc-fs", volume_path=work + "/none"),
         "missing path"),
        ("INVALID_ARGUMENT", c.node.NodeExpandVolume,
         pb.NodeExpandVolumeRequest(volume_id="pvc-fs"), "no path"),
    ]:
        c.expect_code(code, fn, req, what)
    c.ok(not is_mount(st) and not os.path.exists(tg), "a refused call left a mount")


def stage(c, vol, ctx, work, block=False, fs="ext4"):
    pb = c.pb
    st = paths(work, vol)[0]
    os.makedirs(st, exist_ok=True)
    cap = c.cap(block=block, fs=fs)
    if not block:
        cap.mount.mount_flags.extend(["noatime", "nodiratime"])
    req = pb.NodeStageVolumeRequest(volume_id=vol, staging_target_path=st,
                                    publish_context=ctx, volume_capability=cap)
    c.node.NodeStageVolume(req, timeout=120)
    c.node.NodeStageVolume(req, timeout=120)     # again: nothing changes
    c.ok(block or is_mount(st), "%s not mounted after NodeStage" % st)
    if not block:
        opts = subprocess.run(["findmnt", "-n", "-o", "OPTIONS", st],
                              capture_output=True, text=True).stdout
        c.ok("noatime" in opts.split(","), "mount flags not applied: %s" % opts)
    req.staging_target_path = st + "-other"
    c.expect_code("ALREADY_EXISTS", c.node.NodeStageVolume, req, "other path")


def publish(c, vol, work, ro=False, block=False, fs="ext4"):
    pb = c.pb
    st, tg, tro = paths(work, vol)
    target = tro if ro else tg
    os.makedirs(os.path.dirname(target), exist_ok=True)
    req = pb.NodePublishVolumeRequest(volume_id=vol, staging_target_path=st,
                                      target_path=target, readonly=ro,
                                      volume_capability=c.cap(block=block, fs=fs))
    c.node.NodePublishVolume(req)
    c.node.NodePublishVolume(req)
    c.ok(is_mount(target), "%s not mounted after NodePublish" % target)
    if block:
        c.ok(stat.S_ISBLK(os.stat(target).st_mode), "%s is no block device" % target)
    req.readonly = not ro
    c.expect_code("ALREADY_EXISTS", c.node.NodePublishVolume, req,
                  "published again with the other readonly")
    return target


def write_files(c, target, work):
    sums = {}
    for i in range(8):
        data = os.urandom(100000 * (i + 1) + 17)
        with open("%s/f%d" % (target, i), "wb") as f:
            f.write(data)
            os.fsync(f.fileno())
        sums["f%d" % i] = hashlib.sha256(data).hexdigest()
    return sums


def check_files(c, target, sums):
    for name, want in sums.items():
        with open("%s/%s" % (target, name), "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        c.ok(got == want, "%s/%s changed" % (target, name))


def check_ro(c, target):
    try:
        with open(target + "/nope", "wb") as f:
            f.write(b"x")
    except OSError as e:
        c.ok(e.errno == errno.EROFS, "read-only write failed with %s" % e)
        return
    raise Failed("wrote to the read-only publication %s" % target)


def stats(c, vol, path, block=False):
    pb = c.pb
    r = c.node.NodeGetVolumeStats(pb.NodeGetVolumeStatsRequest(
        volume_id=vol, volume_path=path))
    U = pb.VolumeUsage
    units = {u.unit: u for u in r.usage}
    if block:
        c.ok(units[U.BYTES].total > 0, "block stats %s" % r)
    else:
        b, i = units.get(U.BYTES), units.get(U.INODES)
        c.ok(b and i and b.total > 32 * MiB and 0 < b.used < b.total and
             i.total > 0 and i.used > 0, "stats %s" % r)
    c.ok(r.HasField("volume_condition") and not r.volume_condition.abnormal,
         "condition %s" % r)
    return r


def block_write(c, target):
    data = os.urandom(MiB)
    fd = os.open(target, os.O_RDWR)
    os.pwrite(fd, data, 3 * MiB)
    os.fsync(fd)
    os.close(fd)
    return hashlib.sha256(data).hexdigest()


def block_read(target):
    fd = os.open(target, os.O_RDONLY)
    data = os.pread(fd, MiB, 3 * MiB)
    os.close(fd)
    return hashlib.sha256(data).hexdigest()


def busy(c, work):
    """A NodeStage that hangs (its NBD server accepts and never speaks)
    holds its volume: a second call on it is ABORTED, other calls are
    answered meanwhile; when the server goes, the stage fails and leaves
    nothing behind."""
    import socket
    import threading
    import time
    pb = c.pb
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    conns = []
    threading.Thread(target=lambda: conns.append(srv.accept()[0]), daemon=True).start()
    st = paths(work, "pvc-busy")[0]
    os.makedirs(st, exist_ok=True)
    req = pb.NodeStageVolumeRequest(
        volume_id="pvc-busy", staging_target_path=st, volume_capability=c.cap(),
        publish_context={"nbdUri": "nbd://127.0.0.1:%d/pvc-busy" % srv.getsockname()[1]})
    slow = c.node.NodeStageVolume.future(req, timeout=120)
    wait_until("nbdfuse to connect to the silent server", 20, lambda: conns)
    time.sleep(0.5)
    c.expect_code("ABORTED", c.node.NodeStageVolume, req, "second stage while one runs")
    c.expect_code("ABORTED", c.node.NodeUnstageVolume, pb.NodeUnstageVolumeRequest(
        volume_id="pvc-busy", staging_target_path=st), "unstage while staging")
    t0 = time.monotonic()
    pr = c.identity.Probe(pb.ProbeRequest(), timeout=10)
    c.node.NodeGetInfo(pb.NodeGetInfoRequest(), timeout=10)
    c.ok(pr.ready.value and time.monotonic() - t0 < 3, "Probe waited for the stage")
    c.ok(not slow.done(), "the stage did not wait for its server")
    for conn in conns:
        conn.close()
    srv.close()
    try:
        slow.result()
        raise Failed("a stage with no NBD server succeeded")
    except csi_client.grpc.RpcError as e:
        c.ok(e.code().name == "INTERNAL", "hung stage ended with %s" % e.code())
    c.ok(not is_mount(st) and not os.path.exists(
        os.path.join(work, "..", "state", "staged", "pvc-busy.json")),
        "the failed stage left its mount or record")
    c.node.NodeUnstageVolume(pb.NodeUnstageVolumeRequest(
        volume_id="pvc-busy", staging_target_path=st), timeout=60)


def phase_before(c, ctl, work):
    info(c)
    busy(c, work)
    ctx = setup(c, ctl, "pvc-fs", 64 * MiB, False)
    refused(c, ctx, work)
    stage(c, "pvc-fs", ctx, work)
    p = subprocess.run(["blkid", "-o", "value", "-s", "TYPE",
                        subprocess.run(["findmnt", "-n", "-o", "SOURCE",
                                        paths(work, "pvc-fs")[0]],
                                       capture_output=True, text=True).stdout.strip()],
                       capture_output=True, text=True)
    c.ok(p.stdout.strip() == "ext4", "staged fs is %r" % p.stdout)
    tg = publish(c, "pvc-fs", work)
    sums = write_files(c, tg, work)
    tro = publish(c, "pvc-fs", work, ro=True)
    check_files(c, tro, sums)
    check_ro(c, tro)
    stats(c, "pvc-fs", tg)
    bctx = setup(c, ctl, "pvc-blk", 16 * MiB, True)
    stage(c, "pvc-blk", bctx, work, block=True)
    btg = publish(c, "pvc-blk", work, block=True)
    stats(c, "pvc-blk", btg, block=True)
    bsum = block_write(c, btg)
    json.dump({"ctx": ctx, "bctx": bctx, "sums": sums, "bsum": bsum},
              open(work + "/state.json", "w"))


def take_down(c, vol, work, block=False):
    pb = c.pb
    st, tg, tro = paths(work, vol)
    for target in (tg, tro):
        req = pb.NodeUnpublishVolumeRequest(volume_id=vol, target_path=target)
        c.node.NodeUnpublishVolume(req)
        c.node.NodeUnpublishVolume(req)
        c.ok(not is_mount(target) and not os.path.exists(target),
             "%s still there after NodeUnpublish" % target)
    req = pb.NodeUnstageVolumeRequest(volume_id=vol, staging_target_path=st)
    c.node.NodeUnstageVolume(req, timeout=120)
    c.node.NodeUnstageVolume(req, timeout=120)
    c.ok(not is_mount(st), "%s mounted after NodeUnstage" % st)
    fuse = subprocess.run(["findmnt", "-n", "-t", "fuse,fuse.nbdfuse"],
                          capture_output=True, text=True).stdout
    c.ok(vol not in fuse, "nbdfuse still mounted for %s: %s" % (vol, fuse))


def xfs_round(c, ctl, work):
    """xfs (if mkfs.xfs is there): made, written, restaged, still there."""
    import shutil
    if not shutil.which("mkfs.xfs"):
        print("note: no mkfs.xfs, xfs not checked", file=sys.stderr)
        return
    ctx = setup(c, ctl, "pvc-xfs", 320 * MiB, False)
    stage(c, "pvc-xfs", ctx, work, fs="xfs")
    tg = publish(c, "pvc-xfs", work, fs="xfs")
    c.ok(subprocess.run(["findmnt", "-n", "-o", "FSTYPE", tg], capture_output=True,
                        text=True).stdout.strip() == "xfs", "not xfs")
    sums = write_files(c, tg, work)
    take_down(c, "pvc-xfs", work)
    stage(c, "pvc-xfs", ctx, work, fs="xfs")
    check_files(c, publish(c, "pvc-xfs", work, fs="xfs"), sums)
    take_down(c, "pvc-xfs", work)
    c.ctl.ControllerUnpublishVolume(c.pb.ControllerUnpublishVolumeRequest(
        volume_id="pvc-xfs", node_id="n1"))
    c.ctl.DeleteVolume(c.pb.DeleteVolumeRequest(volume_id="pvc-xfs"))


def phase_after(c, ctl, work):
    pb = c.pb
    saved = json.load(open(work + "/state.json"))
    # The restarted plugin finds what it staged: the same calls succeed.
    stage(c, "pvc-fs", saved["ctx"], work)
    tg = publish(c, "pvc-fs", work)
    check_files(c, tg, saved["sums"])
    stats(c, "pvc-fs", tg)
    take_down(c, "pvc-fs", work)
    take_down(c, "pvc-blk", work, block=True)
    # Staged anew (a new nbdfuse): the filesystem is kept, not remade.
    stage(c, "pvc-fs", saved["ctx"], work)
    tg = publish(c, "pvc-fs", work)
    check_files(c, tg, saved["sums"])
    stage(c, "pvc-blk", saved["bctx"], work, block=True)
    btg = publish(c, "pvc-blk", work, block=True)
    c.ok(block_read(btg) == saved["bsum"], "block data changed across restage")
    take_down(c, "pvc-blk", work, block=True)
    # Grown while published; the filesystem follows at the next stage.
    r = c.ctl.ControllerExpandVolume(pb.ControllerExpandVolumeRequest(
        volume_id="pvc-fs", capacity_range=pb.CapacityRange(
            required_bytes=96 * MiB), volume_capability=c.cap()))
    c.ok(r.node_expansion_required, "expand: %s" % r)
    wait_until("n1 to serve 96 MiB", 30, lambda: subprocess.run(
        ["nbdinfo", "--size", saved["ctx"]["nbdUri"]], capture_output=True,
        text=True).stdout.strip() == str(96 * MiB))
    take_down(c, "pvc-fs", work)
    stage(c, "pvc-fs", saved["ctx"], work)
    tg = publish(c, "pvc-fs", work)
    e = c.node.NodeExpandVolume(pb.NodeExpandVolumeRequest(
        volume_id="pvc-fs", volume_path=tg,
        capacity_range=pb.CapacityRange(required_bytes=96 * MiB)))
    c.ok(e.capacity_bytes == 96 * MiB, "NodeExpandVolume: %s" % e)
    total = os.statvfs(tg).f_blocks * os.statvfs(tg).f_frsize
    c.ok(total > 80 * MiB, "filesystem is %d bytes after growing to 96 MiB" % total)
    check_files(c, tg, saved["sums"])
    take_down(c, "pvc-fs", work)
    for vol in ("pvc-fs", "pvc-blk"):
        c.ctl.ControllerUnpublishVolume(pb.ControllerUnpublishVolumeRequest(
            volume_id=vol, node_id="n1"))
        c.ctl.DeleteVolume(pb.DeleteVolumeRequest(volume_id=vol))
    xfs_round(c, ctl, work)


def main():
    ap = argparse.ArgumentParser()
    for a in ("endpoint", "proto", "stubs", "ctl", "meta", "work", "phase"):
        ap.add_argument("--" + a, required=True)
    args = ap.parse_args()
    c = csi_client.connect(args.endpoint, args.proto, args.stubs)
    ctl = csi_client.Ctl(args.ctl, args.meta)
    try:
        (phase_before if args.phase == "before" else phase_after)(c, ctl, args.work)
    except (Failed, csi_client.grpc.RpcError) as e:
        print("FAIL %s: %s" % (args.phase, e), file=sys.stderr)
        return 1
    print("PASS %s: %d checks" % (args.phase, c.checks), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
