#!/usr/bin/python3
"""A stranger on the replication port: one request, its reply printed.

Usage: repl_forge.py HOST PORT OP VOLUME_ID EPOCH
OP is fence, delete, lease, flush, write (4 KiB of 'X' at offset 0,
with its crc32c) or create (an OPEN with the create flag of a 16 MiB
replica named "forged" under VOLUME_ID). FORGE_SESSION sets the request's session (default 1; the
replica answers ESTALE to one older than its engine's). Prints "status S epoch E" (the reply's
status, a negative errno, and the replica's epoch for the volume), or
"closed" if the replica closed the connection.

With FORGE_CERT, FORGE_KEY and FORGE_CA in the environment the request
goes over TLS with that client certificate (the server's must chain to
FORGE_CA; its name is not checked); a failed handshake prints
"tls refused: REASON".
"""
import os
import socket
import ssl
import struct
import sys

OPS = {"fence": 10, "delete": 11, "lease": 13, "write": 4, "flush": 5,
       "create": 2}


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
    payload, length, flags = b"", 0, 0
    if op == 2:
        payload, flags = struct.pack("<Q", 16 << 20) + b"forged".ljust(64, b"\0"), 4
    elif op == 13:
        payload = struct.pack("<Q", 2000)
    elif op == 4:
        data = b"X" * 4096
        payload, length = struct.pack("<I", crc32c(data)) + data, 4096
    session = int(os.environ.get("FORGE_SESSION", "1"))
    # magic, version 4, op, req_id, volume_id, epoch, session, offset,
    # length, flags, payload_len (docs/replication-protocol.md)
    hdr = struct.pack("<IHHQQQQQIII", 0x52585054, 4, op, 1, vid, epoch,
                      session, 0, length, flags, len(payload))
    s = socket.create_connection((host, port), timeout=15)
    if os.environ.get("FORGE_CERT"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(os.environ["FORGE_CA"])
        ctx.load_cert_chain(os.environ["FORGE_CERT"], os.environ["FORGE_KEY"])
        try:
            s = ctx.wrap_socket(s)
            s.sendall(b"")
        except (ssl.SSLError, OSError) as e:
            print("tls refused: %s" % e)
            return
    s.sendall(hdr + struct.pack("<I", crc32c(hdr)) + payload)
    rep = b""
    while len(rep) < 40:
        try:
            chunk = s.recv(40 - len(rep))
        except (ssl.SSLError, ConnectionResetError):
            chunk = b""
        if not chunk:
            print("closed")
            return
        rep += chunk
    _magic, _ver, _op, _rid, r_epoch, status = struct.unpack("<IHHQQi", rep[:28])
    print("status %d epoch %d" % (status, r_epoch))


main()
