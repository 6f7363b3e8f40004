"""Packet probes with scapy, run inside a host namespace by the tests.

python probe.py syn DST PORT      -> prints the TCP flags of the answer (or "none")
python probe.py udp DST PORT      -> prints "icmp TYPE CODE" (or "none")
"""

from __future__ import annotations

import sys

from scapy.all import ICMP, IP, TCP, UDP, IPv6, conf, sr1  # type: ignore[attr-defined]
from scapy.layers.inet6 import ICMPv6DestUnreach

conf.verb = 0


def main() -> None:
    kind, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    l3 = IPv6(dst=dst) if ":" in dst else IP(dst=dst)
    if kind == "syn":
        ans = sr1(l3 / TCP(sport=40000 + port % 1000, dport=port, flags="S"), timeout=2)
        print(ans[TCP].sprintf("%TCP.flags%") if ans is not None and TCP in ans else "none")
    else:
        ans = sr1(l3 / UDP(sport=40001, dport=port) / b"\x00" * 32, timeout=2)
        if ans is None:
            print("none")
        elif ICMP in ans:
            print(f"icmp {ans[ICMP].type} {ans[ICMP].code}")
        elif ICMPv6DestUnreach in ans:
            print(f"icmp6 {ans[ICMPv6DestUnreach].type} {ans[ICMPv6DestUnreach].code}")
        else:
            print("other " + ans.summary())


if __name__ == "__main__":
    main()
