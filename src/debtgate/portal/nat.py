"""Was this connection brought here by the gateway's DNAT?

The daemon's ruleset DNATs ``tcp/80`` to the portal only for restricted subscribers
and warned ones that have not acknowledged (``nat_prerouting`` in debtgate.nft), and
it cuts the tracked flows of an address whose state changes (unblock,
acknowledgement). So a connection the kernel still tracks as "dialled somebody else,
DNATed here" comes from an address the network itself treats as captive: the portal
can answer its OS detection probe with the sign-in redirect without asking the daemon.

The kernel says where a connection was going before NAT (``SO_ORIGINAL_DST``, the
conntrack entry of the accepted socket; no privilege needed). A connection counts as
DNATed only when that address is another host's: the pre-NAT address differs from the
socket's own. A plain connection to the portal (no conntrack entry, or an entry whose
destination is the portal itself), a port redirect on the portal's own address, a
connection from a reverse proxy, a portal on another host than the DNAT: all read as
"not DNATed", and the portal asks the daemon as before.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

SO_ORIGINAL_DST = 80
"""``SO_ORIGINAL_DST`` (linux/netfilter_ipv4.h) at ``SOL_IP``; the IPv6 one
(``IP6T_SO_ORIGINAL_DST``, linux/netfilter_ipv6/ip6_tables.h) has the same number at
``SOL_IPV6``."""


def original_destination(sock: Any) -> str | None:
    """The address the peer dialled before NAT, as the kernel's conntrack entry of
    ``sock`` says; None when there is no entry (or the socket is not TCP/IP)."""
    try:
        family = sock.family
        if family == socket.AF_INET:
            raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            return socket.inet_ntop(socket.AF_INET, raw[4:8])
        if family == socket.AF_INET6:
            raw = sock.getsockopt(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28)
            return socket.inet_ntop(socket.AF_INET6, raw[8:24])
    except (OSError, AttributeError, ValueError):
        return None
    return None


def reached_by_dnat(transport: Any) -> bool:
    """True when the connection of ``transport`` was dialled to another host and
    brought to this socket by destination NAT (see the module docstring)."""
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    local = transport.get_extra_info("sockname")
    if sock is None or not local:
        return False
    before = original_destination(sock)
    if before is None:
        return False
    try:
        return ipaddress.ip_address(before) != ipaddress.ip_address(str(local[0]).split("%")[0])
    except ValueError:
        return False

