"""Probe a plugin and check the answer: --want READY, NOT_READY or a status
code name (FAILED_PRECONDITION, ...)."""
import argparse
import sys

import grpc

import csi_client


def main():
    ap = argparse.ArgumentParser()
    for a in ("endpoint", "proto", "stubs", "want"):
        ap.add_argument("--" + a, required=True)
    args = ap.parse_args()
    c = csi_client.connect(args.endpoint, args.proto, args.stubs)
    try:
        r = c.identity.Probe(c.pb.ProbeRequest(), timeout=30)
        got = "READY" if r.ready.value else "NOT_READY"
    except grpc.RpcError as e:
        got = e.code().name
        print("Probe: %s: %s" % (got, e.details()), file=sys.stderr)
    if got != args.want:
        print("FAIL: Probe answered %s, expected %s" % (got, args.want),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
