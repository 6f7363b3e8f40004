"""A tiny authoritative DNS server for the tests (dnspython), run in a namespace.

python dns_server.py ZONEFILE  -- ZONEFILE is JSON {"name.": {"A": [...], "AAAA": [...], "ttl": n}},
re-read on every query so a test can change the answers.
"""

from __future__ import annotations

import json
import socket
import sys

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


def main() -> None:
    zone_path = sys.argv[1]
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", 53))
    while True:
        wire, peer = sock.recvfrom(4096)
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # noqa: BLE001
            continue
        with open(zone_path) as fh:
            zone = json.load(fh)
        response = dns.message.make_response(query)
        question = query.question[0]
        entry = zone.get(question.name.to_text().lower())
        if entry is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            rdtype = dns.rdatatype.to_text(question.rdtype)
            values = entry.get(rdtype, [])
            if values:
                response.answer.append(dns.rrset.from_text_list(
                    question.name, entry.get("ttl", 60), "IN", rdtype, values))
        sock.sendto(response.to_wire(), peer)


if __name__ == "__main__":
    main()
