"""A DNS server on loopback that answers nothing useful: the health bench's unresolvable names.

StubDNS(hang=names).start() serves UDP on 127.0.0.1:53 (inside the bench's own network
namespace: see run.py) and answers every query with NXDOMAIN, except queries for a name in
``hang``, which it reads and never answers, as a DNS server that is down or firewalled does
(glibc then waits its timeout, 5 s, twice). Nothing is forwarded anywhere. Standard library only.
"""

import socket
import struct
import threading

NXDOMAIN = 3


def query_name(packet):
    """The first question's name of a DNS query, lower case, without the final dot; None if unparsable."""
    labels, offset = [], 12
    try:
        while packet[offset]:
            length = packet[offset]
            labels.append(packet[offset + 1:offset + 1 + length].decode("ascii").lower())
            offset += 1 + length
    except (IndexError, UnicodeDecodeError):
        return None, None
    return ".".join(labels), offset + 5  # the name's end, QTYPE and QCLASS


def nxdomain(packet, question_end):
    """The answer "no such name" to ``packet``: its ID and question, QR and RA set, RCODE 3."""
    (query_id, flags) = struct.unpack("!HH", packet[:4])
    flags = 0x8000 | (flags & 0x0100) | 0x0080 | NXDOMAIN  # response, RD copied, RA, NXDOMAIN
    return struct.pack("!HHHHHH", query_id, flags, 1, 0, 0, 0) + packet[12:question_end]


class StubDNS(object):
    def __init__(self, hang=(), host="127.0.0.1", port=53):
        self.hang = {name.lower().rstrip(".") for name in hang}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.queries = {"hung": 0, "nxdomain": 0}
        self._thread = threading.Thread(target=self._serve, name="stub-dns", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _serve(self):
        while True:
            try:
                packet, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            name, question_end = query_name(packet)
            if name is None:
                continue
            if name in self.hang:
                self.queries["hung"] += 1
                continue
            self.queries["nxdomain"] += 1
            self.sock.sendto(nxdomain(packet, question_end), peer)

    def stop(self):
        self.sock.close()
