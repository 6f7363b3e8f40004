"""A prefix never covers another account's address (pure).

When one account's prefix (``100.72.1.8/29``) covers an address another account
claims (the host ``100.72.1.12``, or a narrower prefix), the narrower claim wins,
whichever arrived first: the wider prefix is enforced without it, split into the
CIDR blocks that remain (``100.72.1.8/30``, ``100.72.1.14/31``, ``100.72.1.13``).
A subscriber who paid is never cut by someone else's row; the billing's error is
reported as ``address_conflict`` against the account whose prefix was trimmed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _net(text: str) -> IPNetwork:
    return ipaddress.ip_network(text)


def _element(net: IPNetwork) -> str:
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def carve(prefix: str, holes: Iterable[str]) -> tuple[str, ...]:
    """The elements of ``prefix`` without ``holes`` (hosts or prefixes inside it),
    in address order; holes outside the prefix are ignored."""
    pieces: list[IPNetwork] = [_net(prefix)]
    for hole_text in holes:
        hole = _net(hole_text)
        out: list[IPNetwork] = []
        for piece in pieces:
            if piece.version != hole.version:
                out.append(piece)
            elif hole.subnet_of(piece):  # type: ignore[arg-type]
                out.extend(piece.address_exclude(hole))  # type: ignore[arg-type]
            elif not piece.subnet_of(hole):  # type: ignore[arg-type]
                out.append(piece)
        pieces = out
    pieces.sort()
    return tuple(_element(p) for p in pieces)


def carve_addresses(addresses: Sequence[str], holes: Iterable[str]) -> tuple[str, ...]:
    """A subscriber's addresses with every prefix that covers a hole carved around it
    (holes not inside one of ``addresses``' prefixes change nothing)."""
    holes = list(holes)
    out: list[str] = []
    for addr in addresses:
        if "/" not in addr:
            out.append(addr)
            continue
        net = _net(addr)
        inside = [h for h in holes if _inside(h, net)]
        out.extend(carve(addr, inside) if inside else (addr,))
    return tuple(out)


def _inside(hole: str, net: IPNetwork) -> bool:
    h = _net(hole)
    return (h.version == net.version and h.prefixlen > net.prefixlen
            and h.subnet_of(net))  # type: ignore[arg-type]
