"""The engine's side of the portal channel: a subscriber's view, acknowledgements."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

from debtgate.core.sets import ACK_SETS
from debtgate.enforce.audit import audit
from debtgate.model import State, Subscriber
from debtgate.view import PromiseOffer, SubscriberView, view_of

if TYPE_CHECKING:
    from debtgate.billing.rows import Policy
    from debtgate.enforce.inventory import Inventory
    from debtgate.kernel.conntrack import ConntrackCutter
    from debtgate.kernel.nft import NftAdapter


class Enforcement(Protocol):
    """What the portal side reads of the engine (the engine owns all of it)."""

    @property
    def inventory(self) -> Inventory: ...

    @property
    def placed(self) -> Mapping[str, State]: ...

    @property
    def ack_timeout(self) -> int: ...

    @property
    def policy(self) -> Policy: ...

    def state_of(self, sub: Subscriber) -> State: ...

    def exclusive(self) -> AbstractAsyncContextManager[None]: ...


class Offers(Protocol):
    """What self-service adds to a view (``debtgate.selfservice.service.SelfService``)."""

    def offers(self, sub: Subscriber, state: State) -> tuple[PromiseOffer, bool]: ...


class PortalSide:
    """The engine's side of the portal channel (``PortalBackend``): the view of an
    address, acknowledgements of warnings. Composed into the engine (``engine.portal``);
    it owns the acknowledgements, the portal counters and the self-service link, and
    reads the rest through :class:`Enforcement`."""

    def __init__(self, engine: Enforcement, nft: NftAdapter, cutter: ConntrackCutter) -> None:
        self._engine = engine
        self.nft = nft
        self.cutter = cutter
        self.acked: dict[str, float] = {}
        """Accounts whose warning is acknowledged, until when (wall clock)."""
        self.views = 0
        self.acks = 0
        self.errors = 0
        """Requests of the portal channel refused as malformed."""
        self.selfservice: Offers | None = None
        """Attached by self-service while it runs."""

    def _holder(self, ip: str) -> Subscriber | None:
        """The subscriber owning ``ip``: one address lookup, then the account by id (O(1)
        for a host). An account id that merely looks like the address is not its owner."""
        inventory = self._engine.inventory
        owner = inventory.owner(ip)
        return inventory.get(owner) if owner is not None else None

    # -- the portal's view (PortalBackend) ---------------------------------------
    def view(self, ip: str) -> SubscriberView | None:
        """What the portal may show to the holder of ``ip`` (and nobody else)."""
        # Only the owner of the address is ever shown (see _holder).
        eng = self._engine
        sub = self._holder(ip)
        if sub is None:
            return None
        self.views += 1
        effective = eng.placed.get(sub.account, eng.state_of(sub))
        acked = self.acked.get(sub.account, 0.0) > time.time()
        promise: PromiseOffer | None = None
        can_resume = False
        if self.selfservice is not None:
            promise, can_resume = self.selfservice.offers(sub, effective)
        return view_of(sub, ip, state=effective, acknowledged=acked,
                       ack_timeout=eng.ack_timeout,
                       default_currency=eng.policy.default_currency, promise=promise,
                       can_resume=can_resume)

    # -- acknowledgements ------------------------------------------------------
    async def acknowledge(self, ip: str) -> dict[str, Any] | None:
        eng = self._engine
        sub = self._holder(ip)
        if sub is None or eng.placed.get(sub.account, sub.state) is not State.WARN:
            return None
        timeout = eng.ack_timeout
        async with eng.exclusive():
            for name, elems in _by_ack_set(sub.addresses):
                await self.nft.add_timed(name, elems, timeout)
        self.acked[sub.account] = time.time() + timeout
        self.acks += 1
        audit("acknowledged", account=sub.account, address=ip, seconds=timeout)
        await self.cutter.cut(list(sub.addresses))
        return {"acknowledged": True, "expires_in": timeout}

    def forget_ack(self, account: str, addresses: tuple[str, ...]) -> None:
        """An account left the warn state: its acknowledgement goes (kernel elements in
        the background)."""
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
