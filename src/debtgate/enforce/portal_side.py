"""The engine's side of the portal channel: a subscriber's view, acknowledgements."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from debtgate.core.sets import ACK_SETS
from debtgate.enforce.audit import audit
from debtgate.model import State, Subscriber
from debtgate.view import SubscriberView, view_of

if TYPE_CHECKING:
    from debtgate.billing.rows import Policy
    from debtgate.enforce.inventory import Inventory
    from debtgate.kernel.conntrack import ConntrackCutter
    from debtgate.kernel.nft import NftAdapter


class PortalSide:
    """The portal-facing half of :class:`~debtgate.enforce.engine.Engine` (``PortalBackend``)."""

    inventory: Inventory
    placed: MutableMapping[str, State]
    acked: dict[str, float]
    portal_views: int
    portal_acks: int
    ack_timeout: int
    policy: Policy
    exclusive: Callable[[], AbstractAsyncContextManager[None]]
    nft: NftAdapter
    cutter: ConntrackCutter
    state_of: Callable[[Subscriber], State]

    # -- the portal's view (PortalBackend) ---------------------------------------
    def view(self, ip: str) -> SubscriberView | None:
        """What the portal may show to the holder of ``ip`` (and nobody else)."""
        # One address lookup (owner), then the account by id: O(1) for a host address.
        # Only the owner of the address is ever shown (an account id that merely looks
        # like the address is not).
        owner = self.inventory.owner(ip)
        sub = self.inventory.get(owner) if owner is not None else None
        if sub is None:
            return None
        self.portal_views += 1
        effective = self.placed.get(sub.account, self.state_of(sub))
        acked = self.acked.get(sub.account, 0.0) > time.time()
        promise, can_resume = None, False
        selfservice = getattr(self, "selfservice", None)  # attached by debtgate.selfservice.service
        if selfservice is not None:
            promise, can_resume = selfservice.offers(sub, effective)
        return view_of(sub, ip, state=effective, acknowledged=acked,
                       ack_timeout=self.ack_timeout,
                       default_currency=self.policy.default_currency, promise=promise,
                       can_resume=can_resume)

    # -- acknowledgements ------------------------------------------------------
    async def acknowledge(self, ip: str) -> dict[str, Any] | None:
        owner = self.inventory.owner(ip)
        sub = self.inventory.get(owner) if owner is not None else None
        if sub is None or self.placed.get(sub.account, sub.state) is not State.WARN:
            return None
        async with self.exclusive():
            for name, elems in _by_ack_set(sub.addresses):
                await self.nft.add_timed(name, elems, self.ack_timeout)
        self.acked[sub.account] = time.time() + self.ack_timeout
        self.portal_acks += 1
        audit("acknowledged", account=sub.account, address=ip, seconds=self.ack_timeout)
        await self.cutter.cut(list(sub.addresses))
        return {"acknowledged": True, "expires_in": self.ack_timeout}

    def _forget_ack(self, account: str, addresses: tuple[str, ...]) -> None:
        if self.acked.pop(account, None) is None:
            return
        task = asyncio.get_running_loop().create_task(self._delete_acks(addresses),
                                                      name=f"forget-ack-{account}")
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _delete_acks(self, addresses: tuple[str, ...]) -> None:
        for name, elems in _by_ack_set(addresses):
            await self.nft.delete_elements(name, elems)


def _by_ack_set(addresses: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """An account's addresses split into the IPv4 and IPv6 acknowledgement sets."""
    return [(name, [a for a in addresses if (":" in a) == name.endswith("v6")])
            for name in ACK_SETS]
