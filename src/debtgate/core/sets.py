"""The nftables set layout, as data (pure).

Every address a subscriber holds lands in exactly one *enforcement* set,
chosen by its category, family and whether it is a host or a prefix:
``blocked_v4_host``, ``locked_v6_net`` and so on. Hosts go to hash sets,
prefixes to interval sets (see ``nft-rules/debtgate.nft``).
"""

from __future__ import annotations

import enum

from debtgate.model import State


class Category(enum.StrEnum):
    """How an address is enforced."""

    BLOCKED = "blocked"
    LOCKED = "locked"
    WARN = "warn"


CATEGORY_OF_STATE: dict[State, Category] = {
    State.BLOCKED: Category.BLOCKED,
    State.PAUSED: Category.LOCKED,
    State.DISABLED: Category.LOCKED,
    State.WARN: Category.WARN,
}


def family(element: str) -> str:
    return "v6" if ":" in element else "v4"


def set_name(category: Category, element: str) -> str:
    """The set an element of a category belongs in."""
    kind = "net" if "/" in element else "host"
    return f"{category.value}_{family(element)}_{kind}"


SET_NAMES: dict[tuple[Category, bool, bool], str] = {
    (c, v6, net): f"{c.value}_{'v6' if v6 else 'v4'}_{'net' if net else 'host'}"
    for c in Category for v6 in (False, True) for net in (False, True)}
"""(category, IPv6, prefix) -> set name: :func:`set_name` as one dict lookup."""

ENFORCEMENT_SETS: tuple[str, ...] = tuple(
    f"{c.value}_{f}_{k}" for c in Category for f in ("v4", "v6") for k in ("host", "net")
)
"""Sets whose content the daemon derives from billing; a change cuts conntrack."""

GARDEN_SETS: tuple[str, ...] = ("garden_v4", "garden_v6", "resolvers_v4", "resolvers_v6")
"""Sets filled from config."""

ACK_SETS: tuple[str, ...] = ("ack_v4", "ack_v6")
"""Acknowledged warnings: elements carry a timeout and expire in the kernel."""

DNS_GARDEN_SETS: tuple[str, ...] = ("gardendns_v4", "gardendns_v6")
"""Addresses of walled-garden domains: elements expire a little after their TTL."""

MANAGED_SETS: tuple[str, ...] = ENFORCEMENT_SETS + GARDEN_SETS
"""Sets the reconcile owns completely (drift in them is repaired)."""

INTERVAL_SETS: frozenset[str] = frozenset(
    [s for s in ENFORCEMENT_SETS if s.endswith("_net")] + list(GARDEN_SETS) + list(ACK_SETS)
)
