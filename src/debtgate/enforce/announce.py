"""Transitions handed to the history, the audit trail and the listeners (RADIUS, ...).

Small batches are handed over at once; a large one (a month-start storm) by a
background task after the engine's lock is released, so enforcement is not kept
waiting. Order is kept, and memory is bounded.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from debtgate.billing.memory import release_memory
from debtgate.core.transitions import History, Transition
from debtgate.enforce.audit import audit
from debtgate.enforce.turn import Turn
from debtgate.model import State, Subscriber

if TYPE_CHECKING:
    from debtgate.enforce.inventory import Inventory

log = logging.getLogger(__name__)

BULK_AUDIT = 1000
"""Above this many transitions in one apply, the audit groups them (1,000 accounts a line)
and they are announced in the background (see :meth:`Announcer.announce`)."""
ANNOUNCE_CHUNK = 1000
"""Transitions handed over per turn of the event loop by the background announcer."""
BACKLOG_MAX = 2_000_000
"""Queued transitions beyond which announcements are handed over at once."""


def audit_bulk(changes: list[Transition]) -> None:
    groups: dict[tuple[str | None, str | None, str], list[str]] = {}
    for change in changes:
        key = (str(change.old) if change.old else None, str(change.new) if change.new else None,
               change.cause)
        groups.setdefault(key, []).append(change.account)
    at = changes[0].at.isoformat()
    for (old, new, cause), accounts in groups.items():
        for i in range(0, len(accounts), BULK_AUDIT):
            audit("transitions", old=old, new=new, cause=cause, at=at,
                  count=len(accounts[i:i + BULK_AUDIT]), accounts=accounts[i:i + BULK_AUDIT])


@dataclass(slots=True)
class _Pending:
    """A batch of transitions waiting to be announced."""

    changes: list[Transition]
    subs: Mapping[str, Subscriber | None]
    done: int = 0
    audited: bool = False
    single: bool = False
    """Audited one line per transition (a small batch)."""


class TransitionListener(Protocol):
    def __call__(self, change: Transition, sub: Subscriber | None) -> None: ...


class Announcer:
    """Hands the engine's transitions to the history, the audit trail and the listeners
    (RADIUS, ...), and owns the backlog of large batches. A part of the engine, composed:
    it reads the inventory (a subscriber as of the change), takes bulk turns, and calls
    ``forget_ack`` when an account leaves the warn state."""

    def __init__(self, inventory: Inventory, turn: Turn,
                 forget_ack: Callable[[str, tuple[str, ...]], None],
                 history_cap: int) -> None:
        self.inventory = inventory
        self.turn = turn
        self._forget_ack = forget_ack
        self.history = History(history_cap)
        """The last transitions of each account (read as lists of dicts)."""
        self.listeners: list[TransitionListener] = []
        self._backlog: deque[_Pending] = deque()
        """Announcements of large batches not yet handed to history, audit and listeners
        (in order; a later small batch waits behind them)."""
        self._backlog_size = 0
        self._backlog_task: asyncio.Task[None] | None = None

    def announce(self, changes: list[Transition],
                  subs: Mapping[str, Subscriber | None] | None = None) -> None:
        """Hand transitions to the history, the audit trail and the listeners.

        ``subs``: each account's subscriber as of the change (else the inventory's).
        A large batch (more than ``BULK_AUDIT``) is handed over by a background task,
        after the engine's lock is released, so enforcement is not kept waiting; a
        later batch queues behind it (order is kept). Past ``BACKLOG_MAX`` queued
        transitions the work is done at once (bounded memory)."""
        if not changes:
            return
        if len(changes) <= BULK_AUDIT and not self._backlog:
            self._hand_over(changes, subs)
            return
        self._backlog.append(_Pending(changes, subs if subs is not None else {
            c.account: self.inventory.get(c.account) for c in changes}))
        self._backlog_size += len(changes)
        if self._backlog_size > BACKLOG_MAX:
            self.drain()
            return
        task = self._backlog_task
        if task is None or task.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.drain()
                return
            self._backlog_task = loop.create_task(self._announce_later(), name="announce")

    def drain(self) -> None:
        """Hand over every queued announcement now (in order)."""
        while self._backlog:
            self._hand_over_batch(self._backlog[0], len(self._backlog[0].changes))
            self._backlog.popleft()

    async def announced(self) -> None:
        """Wait until every queued announcement is handed over."""
        while self._backlog_task is not None and not self._backlog_task.done():
            await asyncio.shield(self._backlog_task)
        self.drain()

    def _hand_over_batch(self, batch: _Pending, upto: int) -> None:
        """Hand over ``batch.changes[batch.done:upto]`` (audited as a whole first)."""
        if not batch.audited:
            batch.audited = True
            if len(batch.changes) > BULK_AUDIT:
                audit_bulk(batch.changes)
            else:
                batch.single = True
        chunk = batch.changes[batch.done:upto]
        batch.done = upto
        self._backlog_size -= len(chunk)
        self._hand_over(chunk, batch.subs, audited=not batch.single)

    async def _announce_later(self) -> None:
        await asyncio.sleep(0)  # let the apply's caller go on first
        backlog = self._backlog
        while backlog:
            async with self.turn.slice():  # bulk work: a payment on its way goes first
                if not backlog:
                    break
                batch = backlog[0]
                self._hand_over_batch(batch, min(batch.done + ANNOUNCE_CHUNK,
                                                 len(batch.changes)))
                if batch.done >= len(batch.changes) and backlog and backlog[0] is batch:
                    backlog.popleft()
            await asyncio.sleep(0)
        release_memory()  # the large batch's transient objects: give the pages back

    def _hand_over(self, changes: list[Transition],
                   subs: Mapping[str, Subscriber | None] | None, audited: bool = False) -> None:
        bulk = audited or len(changes) > BULK_AUDIT
        if bulk and not audited:
            audit_bulk(changes)
        history, listeners = self.history, self.listeners
        inventory = self.inventory
        for change in changes:
            history.add(change)
            if not bulk:
                audit("transition", **change.as_dict())
            if change.old is State.WARN and change.new is not State.WARN:
                self._forget_ack(change.account, change.old_addresses)
            if listeners:
                sub = subs.get(change.account) if subs is not None else inventory.get(
                    change.account)
                for listener in listeners:
                    try:
                        listener(change, sub)
                    except Exception:  # a listener bug must not stop enforcement
                        log.exception("transition listener failed for account=%s",
                                      change.account)
