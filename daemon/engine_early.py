"""The engine's head starts: restrictions enforced, add-only, before the rows that
carry them are validated whole (a cold snapshot, its ``Restrictions``, the parts of
a storm on their way). The event that follows decides everything.

The checks are :mod:`debtgate.headstart`'s (pure); this mixin holds the pipeline
(the kernel inserts one slice while the next is checked) and what the engine must
remember between the parts of a change and the change itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import TYPE_CHECKING

from .core.desired import build_desired_bulk
from .core.guard import GuardPolicy
from .core.reconcile import Plan, reconcile
from .errors import ApplyError
from .headstart import HeadSlice, head_plan, head_slices, unclaimed
from .inventory import Inventory, Placements
from .model import State, Subscriber
from .sources.base import Columns, DeltaAhead, Restrictions
from .validate import Policy, validate_batch

if TYPE_CHECKING:
    from .engine import Stats
    from .overrides import Override

log = logging.getLogger(__name__)


def _billing_state(sub: Subscriber) -> State:
    return sub.state


class EarlySide:
    """The head-start half of :class:`~debtgate.engine.Engine`."""

    inventory: Inventory
    placed: MutableMapping[str, State]
    committed: dict[str, set[str]]
    policy: Policy
    guard: GuardPolicy
    held: dict[str, State]
    overrides: dict[str, Override]
    stats: Stats
    clock: Callable[[], datetime]
    state_of: Callable[[Subscriber], State]
    ahead: set[str]
    """Hosts enforced ahead of the Delta still on its way (:class:`DeltaAhead`)."""
    _inflight: asyncio.Task[bool] | None = None
    """The kernel transaction of the last part of a change, left running while the
    next part is checked (:meth:`settle_ahead`)."""

    has_baseline: Callable[[], bool]
    _apply: Callable[[Plan, str], Awaitable[None]]

    async def _head_start(self, cols: Columns, cause: str,
                          keep: Callable[[HeadSlice], HeadSlice] | None = None
                          ) -> set[int] | None:
        """Enforce the hosts that ``cols`` surely restricts (see
        :mod:`debtgate.headstart`), add-only, before the whole of it is validated;
        ``keep`` narrows each slice further (a change: what the inventory allows).

        Slice by slice: while the kernel inserts one slice (inside the transaction's
        system call, without the interpreter lock) the next is checked. The whole
        snapshot is validated only after: its thread would otherwise hold the lock
        that the transaction's thread needs after each system call.

        A part of a change (``keep``) leaves its transaction running when it returns
        (:meth:`settle_ahead`): the next part is checked meanwhile.

        Returns the indices of the rows enforced (of a part: handed to the kernel), or
        None if the kernel refused."""
        skip = {*self.overrides, *self.held}
        # A part of a change is one slice (one transaction): the source parses the next
        # part while the kernel inserts this one.
        slices = (head_slices(cols, self.policy, skip) if keep is None else
                  head_slices(cols, self.policy, skip, size=len(cols), first=len(cols)))

        def step() -> HeadSlice | None:
            got = next(slices, None)
            return got if got is None or keep is None else keep(got)

        # A part takes over the transaction the previous part left running, and leaves
        # its own running: the kernel inserts one part while the next is checked.
        running, self._inflight = self._inflight, None
        taken: set[int] = set()
        while (got := await asyncio.to_thread(step)) is not None:
            plan = head_plan(got.hosts, got.states, self.committed, self.clock())
            if running is not None and not await running:
                return None  # the kernel refused a slice: the snapshot's transaction says why
            running = None if plan.empty else asyncio.create_task(
                self._head_apply(plan, cause), name="head-start")
            taken.update(got.rows)
        if keep is not None:
            self._inflight = running
        elif running is not None and not await running:
            return None
        return taken

    async def settle_ahead(self) -> bool:
        """Wait for the kernel transaction a part of a change left running (False if
        the kernel refused it; :meth:`_apply` logged why)."""
        running, self._inflight = self._inflight, None
        return True if running is None else await running

    async def _head_apply(self, plan: Plan, cause: str) -> bool:
        try:
            await self._apply(plan, cause)
        except ApplyError:
            return False  # logged by _apply
        self.stats.early_restricted += plan.writes
        return True

    async def _restrict_early(self, event: Restrictions) -> None:
        """Enforce the restricting rows of a snapshot on its way, on a cold start only.

        Add-only: nothing is released, nothing is recorded in the inventory and no
        transition is announced; the snapshot that follows decides everything (and
        finds these elements committed). Rows the snapshot would reject are rejected
        here too (the same validation), and their rejections are counted there."""
        if self.has_baseline():
            return
        rows = event.rows
        if isinstance(rows, Columns):  # the plain IPv4 hosts first, in pipelined slices
            taken = await self._head_start(rows, "billing snapshot (restrictions first)")
            if taken is None:
                return  # the kernel refused: the snapshot's transaction tries again
            if len(taken) == len(rows):
                return
            rows = rows.pick([i for i in range(len(rows)) if i not in taken])
        outcome = await asyncio.to_thread(validate_batch, rows, self.policy)
        subs = list(outcome.subscribers.values())
        state_of = self.state_of if self.overrides else _billing_state
        wanted = build_desired_bulk(subs, list(map(state_of, subs)))
        plan = reconcile(wanted, self.committed, self.clock()).additions()
        await self._apply(plan, "billing snapshot (restrictions first)")
        self.stats.early_restricted += plan.writes

    async def _delta_ahead(self, event: DeltaAhead) -> None:
        """Enforce, add-only, the restrictions of a part of a large change that its
        Delta is bound to keep: the rows :func:`~debtgate.headstart.head_slices` takes,
        whose host no other account holds (nor a prefix of another around it), whose
        account is placed active (or is new), neither taken by an earlier part. Not
        when the change could trip the mass-change guard (it may hold them). The
        Delta then reconciles these hosts too (:attr:`ahead`): one it does not keep
        is taken back in its own transaction."""
        if not self.stats.synced or not isinstance(event.rows, Columns):
            return
        inv = self.inventory
        if self.guard.trips(event.asked + len(self.held), len(inv)):
            return  # the Delta decides what the guard holds
        placed = self.placed
        restricted: AbstractSet[str] = (
            placed.other.keys() if isinstance(placed, Placements)
            else {acc for acc, state in placed.items() if state is not State.ACTIVE})
        accounts, ahead = event.rows.account, self.ahead

        def keep(got: HeadSlice) -> HeadSlice:
            return unclaimed(got, accounts, inv.owners, restricted, ahead)

        before = len(ahead)
        await self._head_start(event.rows, "billing change (ahead)", keep)
        log.debug("change ahead: %d of %d rows enforced before the change (accounts in the "
                  "change: %d)", len(ahead) - before, len(event.rows), event.asked)

    def take_ahead(self) -> set[str]:
        """The hosts enforced ahead of a change, forgotten here."""
        got, self.ahead = self.ahead, set()
        return got
