"""The conntrack adapter: cut a subscriber's tracked flows (pyroute2, netlink).

After a block, an open connection must obey the new state; after an unblock,
a keep-alive connection to the portal must not linger. For a few hosts the
kernel filters the dump by source address (Linux >= 5.8); for prefixes or
large batches one dump is matched in user space.

The daemon runs it as :class:`BackgroundCutter` over a :class:`ProcessCutter`
(:mod:`debtgate.kernel.conntrack_child`): the engine never waits for a cut (the
kernel's sets already say what passes), and pyroute2's parsing of a dump runs in a
child process, not under the daemon's GIL. Measured on the product (bench/product.py,
N = 100,000, a 10,000-account storm's slices cut while the probers fill the table): a
cut in a thread of the daemon held its event loop for 1.4-2.1 s and a payment 0.5 s
after the storm waited that long; see docs/BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)

PER_HOST_LIMIT = 64
"""Above this many addresses, one full dump is cheaper than filtered dumps."""


class ConntrackCutter(Protocol):
    """What the engine calls after each apply, holding its turn: so ``cut`` must not
    wait for the kernel (:class:`BackgroundCutter` queues)."""

    async def cut(self, elements: Sequence[str]) -> int: ...


class BackgroundCutter:
    """Cuts off the engine's turn: :meth:`cut` queues the addresses and returns at once;
    :meth:`run` (one task, the only user of ``inner``) cuts what is queued, all of it in
    one call. The queue is a set of addresses, so it is bounded by the addresses served;
    a failure is logged and the next batch goes on."""

    def __init__(self, inner: ConntrackCutter,
                 on_cut: Callable[[int], None] = lambda n: None) -> None:
        self.inner = inner
        self.on_cut = on_cut
        self._pending: dict[str, None] = {}
        self._wake = asyncio.Event()
        self.busy = False

    async def cut(self, elements: Sequence[str]) -> int:
        if elements:
            self._pending.update(dict.fromkeys(elements))
            self._wake.set()
        return 0

    def idle(self) -> bool:
        """Nothing queued and nothing being cut."""
        return not self._pending and not self.busy

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = list(self._pending), {}
            if not batch:
                continue
            self.busy = True
            try:
                self.on_cut(await self.inner.cut(batch))
            except Exception as exc:  # noqa: BLE001 - cutting flows is best effort
                log.warning("conntrack cut failed for %d addresses: %s", len(batch), exc)
            finally:
                self.busy = False


class NullCutter:
    """Used when ``nft.conntrack = false``."""

    async def cut(self, elements: Sequence[str]) -> int:
        return 0


class PyrouteCutter:
    """Deletes conntrack entries whose original source is one of the elements,
    blocking: the child process of :mod:`debtgate.kernel.conntrack_child` runs it."""

    def cut_now(self, elements: list[str]) -> int:
        """The cut itself; the number of entries deleted."""
        from pyroute2 import Conntrack  # noqa: PLC0415 - netlink only where used
        from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple  # noqa: PLC0415

        hosts4 = [e for e in elements if "/" not in e and ":" not in e]
        hosts6 = {str(ipaddress.ip_address(e)) for e in elements if "/" not in e and ":" in e}
        nets = [ipaddress.ip_network(e) for e in elements if "/" in e]
        nets4 = [n for n in nets if n.version == 4]
        nets6 = [n for n in nets if n.version == 6]
        deleted = 0
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
