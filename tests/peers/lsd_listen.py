#!/usr/bin/env python3
"""A stranger on the LAN who listens to local service discovery (BEP 14): joins
239.192.152.143:6771 on every interface and prints each datagram it hears as a JSON line,
{"event": "heard", "from": ADDR, "text": DATAGRAM}, after {"event": "listening"}.
Runs until killed. For spheres' security tests: what a sphere's nodes say on the LAN."""
import json
import socket
import struct

GROUP = "239.192.152.143"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("", 6771))
for index, name in socket.if_nameindex():
    if name == "lo":
        continue
    mreqn = struct.pack("4s4si", socket.inet_aton(GROUP), socket.inet_aton("0.0.0.0"), index)
    try:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    except OSError:
        pass
print(json.dumps({"event": "listening"}), flush=True)
while True:
    data, addr = s.recvfrom(2048)
    print(json.dumps({"event": "heard", "from": addr[0], "text": data.decode("latin-1")}), flush=True)
