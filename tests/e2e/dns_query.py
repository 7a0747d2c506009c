#!/usr/bin/env python3
"""dns_query.py SERVER NAME: one UDP DNS A query; prints the addresses answered (exit 1 on none)."""
import random
import socket
import struct
import sys

server, name = sys.argv[1], sys.argv[2]
qid = random.randrange(1 << 16)
q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
q += struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(q, (server, 53))
r, _ = s.recvfrom(4096)
rid, flags, qd, an = struct.unpack(">HHHH", r[:8])
if rid != qid or flags & 0xF:
    sys.exit("dns: bad reply (rcode %d)" % (flags & 0xF))
off = len(q)
addrs = []
for _ in range(an):
    while r[off] != 0:  # a name: labels or a pointer
        if r[off] & 0xC0 == 0xC0:
            off += 1
            break
        off += r[off] + 1
    off += 1
    typ, _, _, ln = struct.unpack(">HHIH", r[off:off + 10])
    off += 10
    if typ == 1:
        addrs.append(socket.inet_ntoa(r[off:off + ln]))
    off += ln
if not addrs:
    sys.exit("dns: no A record for %s" % name)
print(" ".join(addrs))
