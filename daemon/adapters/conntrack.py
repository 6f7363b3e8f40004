"""The conntrack adapter: cut a subscriber's tracked flows (pyroute2, netlink).

After a block, an open connection must obey the new state; after an unblock,
a keep-alive connection to the portal must not linger. For a few hosts the
kernel filters the dump by source address (Linux >= 5.8); for prefixes or
large batches one dump is matched in user space.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
from collections.abc import Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)

PER_HOST_LIMIT = 64
"""Above this many addresses, one full dump is cheaper than filtered dumps."""


class ConntrackCutter(Protocol):
    async def cut(self, elements: Sequence[str]) -> int: ...


class NullCutter:
    """Used when ``nft.conntrack = false``."""

    async def cut(self, elements: Sequence[str]) -> int:
        return 0


class PyrouteCutter:
    """Deletes conntrack entries whose original source is one of the elements."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    async def cut(self, elements: Sequence[str]) -> int:
        if not elements:
            return 0
        return await asyncio.to_thread(self._cut, list(elements))

    def _cut(self, elements: list[str]) -> int:
        from pyroute2 import Conntrack  # noqa: PLC0415 - netlink only where used
        from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple  # noqa: PLC0415

        hosts4 = [e for e in elements if "/" not in e and ":" not in e]
        hosts6 = {str(ipaddress.ip_address(e)) for e in elements if "/" not in e and ":" in e}
        nets = [ipaddress.ip_network(e) for e in elements if "/" in e]
        nets4 = [n for n in nets if n.version == 4]
        nets6 = [n for n in nets if n.version == 6]
        deleted = 0
        with self._lock:
            if hosts4 or nets4:
                with Conntrack() as ct:
                    if len(hosts4) <= PER_HOST_LIMIT:
                        # The kernel filters by source (Linux >= 5.8): no full dump.
                        for host in hosts4:
                            flt = NFCTAttrTuple(family=socket.AF_INET, saddr=host)
                            deleted += self._delete_all(ct, ct.dump_entries(tuple_orig=flt))
                        hosts4 = []
                    if hosts4 or nets4:
                        wanted = set(hosts4)
                        deleted += self._delete_all(
                            ct, (e for e in ct.dump_entries() if _matches(e, wanted, nets4)))
            if hosts6 or nets6:
                # pyroute2's kernel-side filter finds nothing for IPv6: match in user space
                # over a dump of the IPv6 table only.
                with Conntrack(nfgen_family=socket.AF_INET6) as ct6:
                    deleted += self._delete_all(
                        ct6, (e for e in ct6.dump_entries() if _matches(e, hosts6, nets6)))
        return deleted

    @staticmethod
    def _delete_all(ct: Any, entries: Any) -> int:
        victims = list(entries)
        count = 0
        for entry in victims:
            try:
                kwargs: dict[str, Any] = {"tuple_orig": entry.tuple_orig}
                if entry.zone:
                    kwargs["zone"] = entry.zone
                ct.entry("del", **kwargs)
                count += 1
            except Exception as exc:  # noqa: BLE001 - an entry may expire meanwhile
                log.debug("conntrack delete failed (entry gone?): %s", exc)
        return count


def _matches(entry: Any, hosts: set[str], nets: list[Any]) -> bool:
    saddr = getattr(entry.tuple_orig, "saddr", None)
    if saddr is None:
        return False
    if saddr in hosts:
        return True
    if nets:
        addr = ipaddress.ip_address(saddr)
        return any(addr in net for net in nets if net.version == addr.version)
    return False
