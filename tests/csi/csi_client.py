"""A CSI v1 test client: Python stubs generated from csi-shim/csi.proto at
test time (grpc_tools.protoc into a temporary directory), the three
services' stubs on the plugin's Unix socket, and small checks.

    c = csi_client.connect(endpoint, proto, stub_dir)
    c.identity.Probe(c.pb.ProbeRequest())
    c.expect_code("INVALID_ARGUMENT", c.ctl.CreateVolume, c.pb.CreateVolumeRequest())
"""
import importlib
import json
import subprocess
import sys
import time

import grpc


class Failed(Exception):
    pass


def gen_stubs(proto, out):
    """Generate csi_pb2 and csi_pb2_grpc for proto into directory out."""
    import os
    from grpc_tools import protoc
    inc = os.path.dirname(os.path.abspath(proto))
    rc = protoc.main(["protoc", "-I" + inc, "--python_out=" + out,
                      "--grpc_python_out=" + out, os.path.abspath(proto)])
    if rc != 0:
        raise SystemExit("grpc_tools.protoc failed on %s" % proto)
    sys.path.insert(0, out)


class Client:
    def __init__(self, endpoint, proto, stub_dir):
        gen_stubs(proto, stub_dir)
        self.pb = importlib.import_module("csi_pb2")
        g = importlib.import_module("csi_pb2_grpc")
        self.channel = grpc.insecure_channel(endpoint)
        grpc.channel_ready_future(self.channel).result(timeout=20)
        self.identity = g.IdentityStub(self.channel)
        self.ctl = g.ControllerStub(self.channel)
        self.node = g.NodeStub(self.channel)
        self.checks = 0

    def ok(self, cond, what):
        self.checks += 1
        if not cond:
            raise Failed(what)

    def call(self, fn, req, timeout=30):
        return fn(req, timeout=timeout)

    def expect_code(self, code, fn, req, what=""):
        """fn(req) must fail with status code (a grpc.StatusCode name)."""
        self.checks += 1
        try:
            resp = fn(req, timeout=30)
        except grpc.RpcError as e:
            if e.code().name != code:
                raise Failed("%s%s: got %s (%s), expected %s" % (
                    what and what + ": ", fn._method.decode(), e.code().name,
                    e.details(), code))
            return e.details()
        raise Failed("%s%s: succeeded (%s), expected %s" % (
            what and what + ": ", fn._method.decode(), str(resp)[:200], code))

    def raw(self, method, data):
        """Send raw bytes as the request of method (a path): the status
        code name and details."""
        f = self.channel.unary_unary(method, request_serializer=None,
                                     response_deserializer=None)
        try:
            f(data, timeout=10)
            return "OK", ""
        except grpc.RpcError as e:
            return e.code().name, e.details()

    # -- request builders ----------------------------------------------
    def cap(self, mode=1, fs="ext4", block=False):
        pb = self.pb
        am = pb.VolumeCapability.AccessMode(mode=mode)
        if block:
            return pb.VolumeCapability(block=pb.VolumeCapability.BlockVolume(),
                                       access_mode=am)
        return pb.VolumeCapability(
            mount=pb.VolumeCapability.MountVolume(fs_type=fs), access_mode=am)

    def topo(self, zone, key="topology.kubernetes.io/zone"):
        return self.pb.Topology(segments={key: zone})


def connect(endpoint, proto, stub_dir):
    return Client(endpoint, proto, stub_dir)


class Ctl:
    """triplexctl, to check what the plugin did to the cluster records."""

    def __init__(self, path, meta):
        self.path, self.meta = path, meta

    def run(self, *args):
        return subprocess.run([self.path, *args, "--meta", self.meta],
                              capture_output=True, text=True, timeout=60)

    def show(self, name):
        p = self.run("volume", "show", name, "--json")
        return json.loads(p.stdout) if p.returncode == 0 else None

    def names(self):
        p = self.run("volume", "list", "--json")
        return sorted(v["name"] for v in json.loads(p.stdout))


def wait_until(what, secs, fn):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if fn():
            return
        time.sleep(0.1)
    raise Failed("timed out after %ss waiting for %s" % (secs, what))
