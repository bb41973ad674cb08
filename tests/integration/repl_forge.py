#!/usr/bin/python3
"""A stranger on the replication port: one request, its reply printed.

Usage: repl_forge.py HOST PORT OP VOLUME_ID EPOCH
OP is fence, delete or lease. Prints "status S epoch E" (the reply's
status, a negative errno, and the replica's epoch for the volume), or
"closed" if the replica closed the connection.
"""
import socket
import struct
import sys

OPS = {"fence": 10, "delete": 11, "lease": 13}


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def main():
    host, port, op = sys.argv[1], int(sys.argv[2]), OPS[sys.argv[3]]
    vid, epoch = int(sys.argv[4]), int(sys.argv[5])
    payload = struct.pack("<Q", 2000) if op == 13 else b""
    # magic, version 4, op, req_id, volume_id, epoch, session, offset,
    # length, flags, payload_len (docs/replication-protocol.md)
    hdr = struct.pack("<IHHQQQQQIII", 0x52585054, 4, op, 1, vid, epoch, 1,
                      0, 0, 0, len(payload))
    s = socket.create_connection((host, port), timeout=15)
    s.sendall(hdr + struct.pack("<I", crc32c(hdr)) + payload)
    rep = b""
    while len(rep) < 40:
        chunk = s.recv(40 - len(rep))
        if not chunk:
            print("closed")
            return
        rep += chunk
    _magic, _ver, _op, _rid, r_epoch, status = struct.unpack("<IHHQQi", rep[:28])
    print("status %d epoch %d" % (status, r_epoch))


main()
