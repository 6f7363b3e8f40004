"""A bounded per-NAS queue holding at most one pending item per session key.

* ``put`` of a key already pending replaces the item in place (the latest
  intent wins, the queue position is kept);
* a key whose request is in flight is *parked*: it becomes ready again only
  when ``done(key)`` is called, so one request per session is in flight;
* memory is bounded by the number of distinct keys (``limit``).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class QueueFull(Exception):
    """More distinct sessions are pending than the queue limit allows."""


class CoalescingQueue(Generic[T]):
    """FIFO over session keys with coalescing and one-in-flight-per-key."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._ready: OrderedDict[Hashable, T] = OrderedDict()
        self._parked: dict[Hashable, T] = {}
        self._inflight: set[Hashable] = set()
        self._wakeup = asyncio.Event()
        self.coalesced = 0
        """Items replaced by a later item for the same key."""

    def __len__(self) -> int:
        return len(self._ready) + len(self._parked)

    @property
    def ready(self) -> int:
        """Items that can be taken now (their key has nothing in flight)."""
        return len(self._ready)

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def put(self, key: Hashable, item: T) -> bool:
        """Queue ``item``; return True if it replaced a pending one. Raises QueueFull."""
        if key in self._inflight:
            replaced = key in self._parked
            if not replaced and len(self) >= self.limit:
                raise QueueFull
            self._parked[key] = item
        elif key in self._ready:
            replaced = True
            self._ready[key] = item
        else:
            if len(self) >= self.limit:
                raise QueueFull
            replaced = False
            self._ready[key] = item
            self._wakeup.set()
        if replaced:
            self.coalesced += 1
        return replaced

    def has_pending(self, key: Hashable) -> bool:
        """A newer item waits for ``key`` (the in-flight one is superseded)."""
        return key in self._parked or key in self._ready

    def get_nowait(self) -> tuple[Hashable, T] | None:
        """Take the oldest ready item and mark its key in flight."""
        if not self._ready:
            self._wakeup.clear()
            return None
        key, item = self._ready.popitem(last=False)
        self._inflight.add(key)
        return key, item

    async def get(self) -> tuple[Hashable, T]:
        """Wait for and take the oldest ready item."""
        while (got := self.get_nowait()) is None:
            await self._wakeup.wait()
        return got

    def done(self, key: Hashable) -> None:
        """The request for ``key`` finished; a parked item becomes ready."""
        self._inflight.discard(key)
        item = self._parked.pop(key, None)
        if item is not None:
            self._ready[key] = item
            self._wakeup.set()
