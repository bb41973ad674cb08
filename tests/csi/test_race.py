"""Two controller plugins (two sockets, one store) race: publish of one
volume to n1 through the first and to n2 through the second at once, many
times. Exactly one publish wins each round, the loser gets
FAILED_PRECONDITION (it saw the winner) or ABORTED (it lost the
compare-and-swap), the epoch rises by exactly one, and the record names
the winner. Then unpublish races publish the same way.

usage: test_race.py --endpoint A --endpoint2 B --proto P --stubs DIR
       --ctl triplexctl --meta URL
"""
import argparse
import sys
import threading
import time

import grpc

import csi_client
from csi_client import Failed

ROUNDS = 30


def race(fns):
    """Run every fn at once; their outcomes ("OK" or a code name)."""
    out = [None] * len(fns)
    go = threading.Barrier(len(fns))

    def run(i):
        go.wait()
        try:
            fns[i]()
            out[i] = "OK"
        except grpc.RpcError as e:
            out[i] = e.code().name

    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def unpublish_all(a, U):
    """Between rounds: unpublish everywhere. ABORTED means the record
    changed meanwhile (the engine's agent writes served_epoch once it
    serves); a CO retries that, and so does this, a bounded number of
    times."""
    for _ in range(20):
        try:
            a.ctl.ControllerUnpublishVolume(U(volume_id="pvc-race"), timeout=30)
            return
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.ABORTED:
                raise
            time.sleep(0.1)
    raise Failed("unpublish of pvc-race ABORTED 20 times in a row")


def main():
    ap = argparse.ArgumentParser()
    for a in ("endpoint", "endpoint2", "proto", "stubs", "ctl", "meta"):
        ap.add_argument("--" + a, required=True)
    args = ap.parse_args()
    a = csi_client.connect(args.endpoint, args.proto, args.stubs)
    b = csi_client.connect(args.endpoint2, args.proto, args.stubs)
    ctl = csi_client.Ctl(args.ctl, args.meta)
    pb = a.pb
    a.ctl.CreateVolume(pb.CreateVolumeRequest(
        name="pvc-race", volume_capabilities=[a.cap()],
        capacity_range=pb.CapacityRange(required_bytes=4 << 20)))
    P = pb.ControllerPublishVolumeRequest
    U = pb.ControllerUnpublishVolumeRequest
    outcomes = {}
    try:
        for r in range(ROUNDS):
            e0 = ctl.show("pvc-race")["epoch"]
            got = race([
                lambda: a.ctl.ControllerPublishVolume(P(
                    volume_id="pvc-race", node_id="n1", volume_capability=a.cap()), timeout=30),
                lambda: b.ctl.ControllerPublishVolume(P(
                    volume_id="pvc-race", node_id="n2", volume_capability=b.cap()), timeout=30)])
            rec = ctl.show("pvc-race")
            wins = [i for i, g in enumerate(got) if g == "OK"]
            a.ok(len(wins) == 1, "round %d: outcomes %s" % (r, got))
            loser = got[1 - wins[0]]
            a.ok(loser in ("FAILED_PRECONDITION", "ABORTED"), "round %d: loser %s" % (r, loser))
            a.ok(rec["attached"] == ["n1", "n2"][wins[0]] and rec["epoch"] == e0 + 1,
                 "round %d: %s won, record %s (epoch before %d)" % (r, got, rec, e0))
            outcomes[loser] = outcomes.get(loser, 0) + 1
            # Unpublish from the winner's node races a publish to the other.
            winner, other = ["n1", "n2"][wins[0]], ["n2", "n1"][wins[0]]
            got = race([
                lambda: a.ctl.ControllerUnpublishVolume(U(
                    volume_id="pvc-race", node_id=winner), timeout=30),
                lambda: b.ctl.ControllerPublishVolume(P(
                    volume_id="pvc-race", node_id=other, volume_capability=b.cap()), timeout=30)])
            rec = ctl.show("pvc-race")
            a.ok(got[0] in ("OK", "ABORTED"), "round %d: unpublish %s" % (r, got))
            # ABORTED: the record changed under the unpublish (the winner's
            # agent wrote served_epoch), so the winner keeps it and the
            # publish elsewhere must have been refused.
            if got[0] == "OK":
                a.ok(rec["attached"] in ("", other), "round %d: record %s" % (r, rec))
            else:
                a.ok(rec["attached"] == winner and got[1] != "OK",
                     "round %d: unpublish ABORTED, %s, record %s" % (r, got, rec))
            a.ok(got[1] != "OK" or rec["attached"] == other or got[0] == "OK",
                 "round %d: publish to %s won but record says %s" % (r, other, rec))
            unpublish_all(a, U)
    except Failed as e:
        print("FAIL race: %s" % e, file=sys.stderr)
        return 1
    a.ctl.DeleteVolume(pb.DeleteVolumeRequest(volume_id="pvc-race"))
    print("PASS race: %d rounds, losers %s, %d checks" % (ROUNDS, outcomes, a.checks),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
