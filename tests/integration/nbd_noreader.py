#!/usr/bin/python3
"""An NBD client that sends writes and never reads a reply.

Usage: nbd_noreader.py SOCKET EXPORT SECONDS
Negotiates with NBD_OPT_EXPORT_NAME over a Unix socket, then sends 1 MiB
writes until the server stops taking them (a send blocks 2 s), and holds
the connection, still reading nothing, until SECONDS have passed or the
server closed it. Prints "sent N" (writes fully sent), then "closed" or
"open" at the end.
"""
import socket
import struct
import sys
import time

path, export, secs = sys.argv[1], sys.argv[2].encode(), float(sys.argv[3])
s = socket.socket(socket.AF_UNIX)
s.connect(path)
greeting = s.recv(18, socket.MSG_WAITALL)
assert greeting[:16] == b"NBDMAGICIHAVEOPT", greeting
s.sendall(struct.pack(">I", 1 | 2))            # FIXED_NEWSTYLE | NO_ZEROES
s.sendall(b"IHAVEOPT" + struct.pack(">II", 1, len(export)) + export)
size, _flags = struct.unpack(">QH", s.recv(10, socket.MSG_WAITALL))
payload = b"\xa5" * (1 << 20)
sent = 0
s.settimeout(2)
end = time.monotonic() + secs
try:
    while time.monotonic() < end:
        off = (sent << 20) % size
        s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, sent, off, len(payload)) + payload)
        sent += 1
except socket.timeout:
    pass
except OSError:
    print("sent", sent, flush=True)
    print("closed", flush=True)
    sys.exit(0)
print("sent", sent, flush=True)
# Hold on, reading nothing; a send of one more byte tells if it was closed.
s.setblocking(False)
while time.monotonic() < end:
    time.sleep(0.2)
    try:
        s.send(b"\0")
    except BlockingIOError:
        continue
    except OSError:
        print("closed", flush=True)
        sys.exit(0)
print("open", flush=True)
