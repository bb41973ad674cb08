#!/usr/bin/env python3
"""Raw NBD handshakes around STARTTLS that the real clients never send.

nbd_starttls.py require HOST PORT         --tls require: plaintext options
                                          get TLS_REQD, EXPORT_NAME closes
nbd_starttls.py inject HOST PORT          plaintext behind STARTTLS in one
                                          packet is never answered
nbd_starttls.py reset HOST PORT CA EXPORT --tls on: what was negotiated in
                                          plaintext does not survive STARTTLS
"""
import socket
import ssl
import struct
import sys

IHAVEOPT = 0x49484156454F5054
REP_MAGIC = 0x3E889045565A9
SIMPLE_MAGIC = 0x67446698
OPT_EXPORT_NAME, OPT_LIST, OPT_STARTTLS, OPT_GO = 1, 3, 5, 7
OPT_STRUCTURED, OPT_SET_META = 8, 10
REP_ACK, REP_META = 1, 4
ERR_INVALID, ERR_TLS_REQD = 0x80000003, 0x80000005


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            fail("server closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def option(opt, data=b""):
    return struct.pack(">QII", IHAVEOPT, opt, len(data)) + data


def reply(s):
    magic, opt, typ, n = struct.unpack(">QIII", recv_exact(s, 20))
    if magic != REP_MAGIC:
        fail("reply magic %#x" % magic)
    return opt, typ, recv_exact(s, n)


def greet(host, port):
    s = socket.create_connection((host, int(port)), timeout=10)
    hdr = recv_exact(s, 18)
    if hdr[:8] != b"NBDMAGIC":
        fail("no greeting")
    s.sendall(struct.pack(">I", 3))  # FIXED_NEWSTYLE | NO_ZEROES
    return s


def meta_request(name):
    q = b"base:allocation"
    return (struct.pack(">I", len(name)) + name + struct.pack(">I", 1) +
            struct.pack(">I", len(q)) + q)


def go_request(name):
    return struct.pack(">I", len(name)) + name + struct.pack(">H", 0)


def closed_without_reply(s):
    """Read until EOF; the bytes must hold no option reply."""
    got = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    if struct.pack(">Q", REP_MAGIC) in got:
        fail("a plaintext option reply came after STARTTLS: %r" % got[:64])
    return got


def case_require(host, port):
    s = greet(host, port)
    for opt, data in ((OPT_LIST, b""), (OPT_GO, go_request(b"demo")),
                      (OPT_STRUCTURED, b"")):
        s.sendall(option(opt, data))
        _, typ, _ = reply(s)
        if typ != ERR_TLS_REQD:
            fail("option %d before STARTTLS answered %#x, not TLS_REQD" % (opt, typ))
    s.sendall(option(OPT_EXPORT_NAME, b"demo"))
    s.settimeout(5)
    got = closed_without_reply(s)
    if got:
        fail("EXPORT_NAME before STARTTLS got %d bytes" % len(got))
    print("require: LIST, GO, STRUCTURED_REPLY got TLS_REQD; EXPORT_NAME closed")


def case_inject(host, port):
    s = greet(host, port)
    # STARTTLS and a LIST in the same packet: the LIST must not be
    # answered in plaintext (it becomes bad TLS input).
    s.sendall(option(OPT_STARTTLS) + option(OPT_LIST))
    opt, typ, _ = reply(s)
    if (opt, typ) != (OPT_STARTTLS, REP_ACK):
        fail("STARTTLS answered %d/%#x" % (opt, typ))
    s.settimeout(5)
    got = closed_without_reply(s)
    print("inject: STARTTLS acknowledged, then %d bytes and close, no reply" % len(got))


def case_reset(host, port, ca, export):
    s = greet(host, port)
    name = export.encode()
    s.sendall(option(OPT_STRUCTURED))
    if reply(s)[1] != REP_ACK:
        fail("plaintext STRUCTURED_REPLY refused")
    s.sendall(option(OPT_SET_META, meta_request(name)))
    types = [reply(s)[1] for _ in range(2)]
    if types != [REP_META, REP_ACK]:
        fail("plaintext SET_META_CONTEXT answered %r" % types)
    s.sendall(option(OPT_STARTTLS))
    if reply(s)[1:2] != (REP_ACK,):
        fail("STARTTLS refused")
    ctx = ssl.create_default_context(cafile=ca)
    t = ctx.wrap_socket(s, server_hostname="localhost")
    # Structured replies were agreed in plaintext only: forgotten.
    t.sendall(option(OPT_SET_META, meta_request(name)))
    _, typ, _ = reply(t)
    if typ != ERR_INVALID:
        fail("SET_META_CONTEXT over TLS answered %#x: structured replies "
             "survived STARTTLS" % typ)
    t.sendall(option(OPT_GO, go_request(name)))
    while True:
        _, typ, _ = reply(t)
        if typ == REP_ACK:
            break
        if typ & 0x80000000:
            fail("GO over TLS refused: %#x" % typ)
    # A READ gets a simple reply: no structured replies in this session.
    t.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, 7, 0, 512))
    magic, err, cookie = struct.unpack(">IIQ", recv_exact(t, 16))
    if magic != SIMPLE_MAGIC or err or cookie != 7:
        fail("READ over TLS: magic %#x err %d cookie %d" % (magic, err, cookie))
    recv_exact(t, 512)
    print("reset: structured replies and meta context forgotten at STARTTLS")


if __name__ == "__main__":
    cases = {"require": case_require, "inject": case_inject, "reset": case_reset}
    cases[sys.argv[1]](*sys.argv[2:])
