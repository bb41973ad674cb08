"""Listen on a Unix datagram socket as systemd does for NOTIFY_SOCKET.

usage: notify_listen.py ADDR NBD_SOCK OUT   (ADDR: a path, or @name)

Writes "ready" to OUT once listening. For every datagram prints a line
"msg STATE"; on READY=1 it connects to NBD_SOCK at once and prints
"nbd-accepts" or "nbd-refused", so the test knows READY=1 came only after
the NBD listener was up. Exits after STOPPING=1 or 60 s.
"""
import socket
import sys

addr, nbd_sock, out = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
s.settimeout(60)
open(out, "w").write("ready\n")
while True:
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        print("timeout", flush=True)
        break
    for line in msg.splitlines():
        print("msg", line, flush=True)
    if "READY=1" in msg.splitlines():
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            c.connect(nbd_sock)
            print("nbd-accepts", flush=True)
        except OSError as e:
            print("nbd-refused", e, flush=True)
        c.close()
    if "STOPPING=1" in msg.splitlines():
        break
