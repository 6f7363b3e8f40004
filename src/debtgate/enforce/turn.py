"""Whose turn it is on the engine: the one place where payments go first.

Everything that changes the engine's state (the desired sets, the inventory, what is
committed to the kernel) holds the turn. There are two kinds of holders:

* **urgent** work, small and felt by a person: a payment or any other small billing
  change, an override, a promise, an acknowledgement, a guard approval. It waits at
  most for the slice of bulk work in progress, never for the rest of it;
* **bulk** work, in bounded slices: a snapshot, a storm, the periodic kernel
  read-back. Before each slice it lets every urgent holder that is waiting go first.

So a payment committed during a month-start storm waits for one slice (a few
thousand accounts, tens of milliseconds), not for the storm. Bulk jobs run one at a
time among themselves (:meth:`Turn.bulk_job`): a second storm waits for the first.

:class:`Turn` is the whole scheduler: the engine asks for ``urgent()`` or ``slice()``
around each step, and the order follows from here, not from timing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

BREATHS = 2
"""Loop iterations each bulk slice lets run first. A free asyncio.Lock is taken without
yielding, so back-to-back slices never let the loop poll its sockets: a payment's
notification sat unread in the billing connection for up to 0.27 s of a storm's slices
(1,000,000 subscribers). The first iteration reads the socket, the second runs the
listener callback the driver schedules from it, which marks the urgent work (:meth:`hold`)
before this slice looks."""


class Turn:
    """A lock with two priorities: urgent holders overtake bulk slices."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._jobs = asyncio.Lock()
        self._urgent = 0
        self._urgent_done = 0
        self._no_urgent = asyncio.Event()
        self._no_urgent.set()
        self.no_bulk_job = asyncio.Event()
        """Set while no bulk job (a snapshot, a large change, a read-back) is under way."""
        self.no_bulk_job.set()
        self.slices = 0
        """Bulk slices run (for the status page)."""
        self.overtaken = 0
        """Times an urgent holder went before a waiting bulk slice."""

    def locked(self) -> bool:
        return self._lock.locked()

    def hold(self, on: bool) -> None:
        """Urgent work is on its way (``True``) or done (``False``): no bulk slice starts
        meanwhile. A billing source says so from the moment a payment is notified, so
        that its fetch (several round trips) does not alternate with bulk slices."""
        if on:
            self._urgent += 1
            self._no_urgent.clear()
        else:
            self._urgent -= 1
            if not self._urgent:
                self._no_urgent.set()

    @contextlib.asynccontextmanager
    async def urgent(self) -> AsyncIterator[None]:
        """Hold the turn for small work; waits only for the holder in progress."""
        self.hold(True)
        try:
            async with self._lock:
                yield
        finally:
            self._urgent_done += 1
            self.hold(False)

    @contextlib.asynccontextmanager
    async def slice(self) -> AsyncIterator[None]:
        """Hold the turn for one bounded slice of bulk work, after every urgent holder
        already waiting, and after the loop has read its sockets (:data:`BREATHS`)."""
        done = self._urgent_done
        for _ in range(BREATHS):
            await asyncio.sleep(0)
        while True:
            if self._urgent:
                await self._no_urgent.wait()
            await self._lock.acquire()
            if not self._urgent:
                break
            self._lock.release()  # an urgent holder came while this slice waited
        if self._urgent_done != done:
            self.overtaken += 1
        try:
            self.slices += 1
            yield
        finally:
            self._lock.release()

    @contextlib.asynccontextmanager
    async def bulk_job(self) -> AsyncIterator[None]:
        """One bulk job at a time (its slices still interleave with urgent work)."""
        async with self._jobs:
            self.no_bulk_job.clear()
            try:
                yield
            finally:
                self.no_bulk_job.set()
