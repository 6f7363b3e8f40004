"""The engine: billing events in, kernel state out.

One apply at a time (a lock). Each event is validated, turned into a
:class:`~debtgate.core.reconcile.Plan` by the pure core, applied as ONE nft
transaction, recorded as committed, then conntrack is cut and the account
transitions are handed to RADIUS and the audit trail.

Over 400 lines, for now: the engine still performs its I/O itself (the kernel
transaction, the conntrack queue, the listeners) around the pure core. Issue #18 asks
for a sans-IO step (an event and the clock in, a plan, announcements and persistence
out) with a thin async shell; that split will bring it under.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import operator
import time
from collections import Counter, deque
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    MutableMapping,
    Sequence,
)
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from debtgate.billing.base import Columns, Delta, Event, Snapshot
from debtgate.billing.memory import gc_paused, release_memory
from debtgate.billing.rows import Policy, element
from debtgate.billing.validate import Outcome, validate_batch
from debtgate.core.desired import (
    build_desired,
    build_desired_bulk,
    garden_desired,
    placements,
    update_desired,
)
from debtgate.core.guard import GuardPolicy, hold
from debtgate.core.placement import place_many
from debtgate.core.reconcile import Plan, commit, reconcile
from debtgate.core.sets import ENFORCEMENT_SETS, GARDEN_SETS, MANAGED_SETS
from debtgate.core.transitions import arrivals, bulk_transitions, transitions
from debtgate.enforce import deltas
from debtgate.enforce.announce import Announcer
from debtgate.enforce.audit import audit
from debtgate.enforce.deltas import carve_if_needed, check_clashes, validate_delta, validate_rows_of
from debtgate.enforce.inventory import Inventory, Placements
from debtgate.enforce.overrides import Override
from debtgate.enforce.portal_side import PortalSide
from debtgate.enforce.slicing import validate_sliced
from debtgate.enforce.snapshot_news import snapshot_news
from debtgate.enforce.turn import Turn
from debtgate.errors import ApplyError
from debtgate.kernel.conntrack import ConntrackCutter
from debtgate.kernel.nft import NftAdapter
from debtgate.model import State, Subscriber

log = logging.getLogger(__name__)


HISTORY = 10
LOCATED = 100
"""Rejections per event whose detail gets the row's line in its file (a search each)."""
"""Transitions kept per account for explain."""
RESTRICTED = frozenset({State.BLOCKED, State.PAUSED, State.DISABLED})


BULK_CHANGE = deltas.BULK_CHANGE
"""Above this many accounts in one change, :meth:`Engine.change_accounts` works in bulk,
and a billing change is a bulk job (:meth:`Engine._bulk_delta`)."""
SLICE = 2_000
"""Accounts of a bulk change applied per slice (one nft transaction each): the longest
a payment waits behind a storm is one slice. Measured on the product (N = 100,000, a
storm of 10,000): a slice of 5,000 took 80-90 ms on the loop and payments in the
storm's first second waited up to 200 ms; 2,000 (see docs/BENCHMARKS.md)."""
CHECK_SLICE = 10_000
"""Subscribers of a large change checked against the inventory's exact addresses in one
slice: ~1.1-2.7 ms per 1,000 at 1,000,000 subscribers (100,000 at once held the loop,
and a payment's notification, for 0.11-0.27 s)."""
FRESH_MAX = 1_000_000
"""Bound of :attr:`Engine.fresh` (it is emptied as bulk jobs end)."""

_STATE_OF = operator.attrgetter("state")


@dataclass(slots=True)
class Stats:
    applies: int = 0
    kernel_writes: int = 0
    drift_repairs: int = 0
    conntrack_cut: int = 0
    apply_errors: int = 0
    last_apply_seconds: float = 0.0
    last_apply_at: float | None = None
    synced: bool = False


class Engine:
    def __init__(self, nft: NftAdapter, cutter: ConntrackCutter, policy: Policy,
                 ack_timeout: int = 3600, clock: Callable[[], datetime] | None = None) -> None:
        self.nft = nft
        self.cutter = cutter
        self.policy = policy
        self.ack_timeout = ack_timeout
        self.clock = clock or (lambda: datetime.now(UTC))
        self.inventory = Inventory(default_currency=policy.default_currency)
        self.desired: dict[str, set[str]] = build_desired(())
        self.committed: dict[str, set[str]] = {}
        self.garden: dict[str, set[str]] = garden_desired((), ())
        self.rejections: Counter[str] = Counter()
        self.foreign_rows = 0
        """Rows of the last snapshot wholly outside ``[network] serves`` (another
        gateway's subscribers: not enforced here, not counted by the guard)."""
        self.foreign_addresses = 0
        """Addresses of the last snapshot outside ``[network] serves``."""
        self.last_rejections: deque[dict[str, Any]] = deque(maxlen=50)
        self.stats = Stats()
        self.placed: MutableMapping[str, State] = Placements(self.inventory)
        """The state each account is enforced as (billing, overrides and the guard applied);
        only non-active placements are stored."""
        self.overrides: dict[str, Override] = {}
        self.guard = GuardPolicy()
        self.held: dict[str, State] = {}
        """Restrictions the guard holds: account -> the state billing wants."""
        self.held_since: float | None = None
        self.on_applied: Callable[[Plan | None, Sequence[str]], None] = lambda p, a: None
        """Called after every change of the applied state: the plan of a small change and
        its accounts, or ``(None, ())`` after bulk work (the persisted state's writer)."""
        self.turn = Turn()
        """Whose turn it is: urgent work before the next slice of bulk work."""
        self.portal = PortalSide(self, nft, cutter)
        """The portal channel's side: views and acknowledgements."""
        self.announcer = Announcer(self.inventory, self.turn, self.portal.forget_ack, HISTORY)
        """Transitions to the history, the audit trail and the listeners."""
        self.fresh: dict[str, int] = {}
        """Accounts placed by a small change, with when its rows were read: an older
        event (a storm or a snapshot read before it, applied after) leaves them be."""
        self._waiting: list[int] = []
        """When the bulk events waiting for their job (or running it) were read."""

    def state_of(self, sub: Subscriber) -> State:
        """The effective state: an active override wins over billing."""
        override = self.overrides.get(sub.account)
        if override is not None and override.active(self.clock()):
            return override.state
        return sub.state

    def _guarded(self, subs: Mapping[str, Subscriber], total: int, bypass: bool,
                 cause: str) -> dict[str, State]:
        """Effective states for ``subs``, with a mass restriction held back."""
        if self.overrides:
            state_of = self.state_of
            final = {acc: state_of(sub) for acc, sub in subs.items()}
        else:
            final = dict(zip(subs, map(_STATE_OF, subs.values()), strict=True))
        if bypass or not self.guard.enabled or not self.has_baseline():
            if not bypass:
                self.held.clear()
                self.held_since = None
            return final
        kernel_restricted: set[str] | None = None
        fresh: list[str] = []
        for acc, state in final.items():
            if state not in RESTRICTED or acc in self.overrides:
                continue
            placed = self.placed.get(acc)
            if placed is not None:
                if placed in RESTRICTED:
                    continue
            else:
                if kernel_restricted is None:
                    kernel_restricted = set().union(*(
                        self.committed.get(n, set()) for n in ENFORCEMENT_SETS
                        if not n.startswith("warn")))
                if any(a in kernel_restricted for a in subs[acc].addresses):
                    continue
            fresh.append(acc)
        for acc in list(self.held):
            if acc in subs and acc not in fresh:
                del self.held[acc]  # billing changed its mind, or it was applied
        if not self.guard.trips(len(fresh), total):
            if not self.held:
                self.held_since = None
            return final
        for acc in fresh:
            self.held[acc] = final[acc]
        if self.held_since is None:
            self.held_since = time.time()
            log.error("mass-change guard: %d of %d subscribers would be restricted at once "
                      "(cause=%s); holding them until approved (debtgate approve)",
                      len(fresh), total, cause)
            audit("guard_hold", count=len(fresh), total=total, cause=cause)
        return hold(final, {a: self.placed.get(a) for a in fresh}, fresh)

    def has_baseline(self) -> bool:
        """Whether there is a previous state to compare with (not a first install)."""
        return self.stats.synced or bool(self.placed) or any(
            self.committed.get(n) for n in ENFORCEMENT_SETS)

    def enforcing(self) -> bool:
        """Whether the kernel holds any restriction this daemon applied or adopted."""
        return any(self.committed.get(n) for n in ENFORCEMENT_SETS)

    # -- start-up --------------------------------------------------------
    async def adopt_kernel(self) -> None:
        """Read what the kernel holds: the start applies only the difference."""
        self.committed = await self.nft.read_sets(MANAGED_SETS)
        log.info("kernel holds %d enforced elements",
                 sum(len(self.committed[s]) for s in ENFORCEMENT_SETS))

    def set_garden(self, cidrs: Iterable[str], resolvers: Iterable[str]) -> None:
        """Config networks, normalised like the kernel lists them (hosts without /32)."""
        norm = [element(ipaddress.ip_network(c, strict=False)) for c in cidrs]
        self.garden = garden_desired(norm, [element(ipaddress.ip_network(r)) for r in resolvers])

    # -- events ------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """The urgent turn: what follows plans against :attr:`committed`."""
        async with self.turn.urgent():
            yield

    async def handle(self, event: Event) -> None:
        """Apply one billing event: a small change at once (urgent: a payment), a
        snapshot or a large change as a bulk job in slices (:mod:`debtgate.enforce.turn`)."""
        if not isinstance(event, Snapshot) and len(event.rows) + len(event.gone) <= BULK_CHANGE:
            async with self.turn.urgent():
                await self._timed(self._delta(event))
            return
        self._waiting.append(event.seq)
        try:
            async with self.turn.bulk_job():
                with gc_paused():
                    await self._timed(self._snapshot(event) if isinstance(event, Snapshot)
                                      else self._bulk_delta(event))
        finally:
            self._waiting.remove(event.seq)
            # What a small change placed matters only to events read before it: the
            # bulk events still waiting (later ones are read after it).
            oldest = min(self._waiting, default=None)
            self.fresh = {} if oldest is None else {
                a: seq for a, seq in self.fresh.items() if seq > oldest}

    async def _timed(self, work: Awaitable[None]) -> None:
        started = time.perf_counter()
        await work
        self.stats.last_apply_seconds = time.perf_counter() - started

    def _newer(self, accounts: Iterable[str], seq: int) -> set[str]:
        """Which of ``accounts`` an event read later than ``seq`` has placed already."""
        fresh = self.fresh
        return {a for a in accounts if fresh.get(a, -1) > seq} if fresh else set()

    def _record_rejections(self, outcome: Outcome, rows: object = None) -> None:
        """Count and log the rejections; rows from a file name their line (or row) in
        the first :data:`LOCATED` details."""
        for i, rej in enumerate(outcome.rejections):
            detail = rej.detail
            if (i < LOCATED and rej.account and isinstance(rows, Columns)
                    and not detail.startswith(("line ", "row "))):
                where = rows.locate(rej.account, last=rej.reason == "duplicate_account")
                detail = f"{where}: {detail}" if where else detail
            self.rejections[rej.reason] += 1
            self.last_rejections.append({"account": rej.account, "reason": rej.reason,
                                         "detail": detail})
            log.warning("billing row rejected: account=%s reason=%s: %s",
                        rej.account, rej.reason, detail)

    async def _snapshot(self, event: Snapshot) -> None:
        """A snapshot as a bulk job: validated in slices (urgent work goes on), then
        placed, reconciled and applied in one slice. An account that a later-read
        change placed meanwhile keeps the version the inventory holds."""
        policy, inv = self.policy, self.inventory
        outcome = await validate_sliced(
            event.rows, lambda rows: validate_batch(rows, policy, inv.accounts), self.turn)
        async with self.turn.slice():
            self._apply_snapshot(event, outcome)
            news = await self._snapshot_plan(outcome)
        if news is not None:  # what changed, found in slices (debtgate.enforce.snapshot_news)
            changes, after = await snapshot_news(self.turn, *news)
            self.announcer.announce(changes, after)

    def _apply_snapshot(self, event: Snapshot, outcome: Outcome) -> None:
        """The snapshot's rejections and foreign rows recorded; the accounts a later
        change placed meanwhile taken as the inventory holds them."""
        self._record_rejections(outcome, event.rows)
        self.foreign_rows = len(outcome.foreign_accounts)
        self.foreign_addresses = outcome.foreign_addresses
        stale = self._newer(self.fresh, event.seq)
        if not stale:
            return
        inv, subs, lean, hosts = self.inventory, outcome.subscribers, outcome.lean, outcome.hosts
        for account in stale:
            read = subs.pop(account, None)
            host = lean.pop(account, None)
            if hosts is not None:  # the host index follows (rebuilt, it costs 0.2 s at 1M)
                for addr in (*(read.addresses if read else ()), *((host,) if host else ())):
                    if hosts.get(addr) == account:
                        del hosts[addr]
            if account in inv.lean:
                lean[account] = inv.lean[account]
                if hosts is not None and inv.lean[account]:
                    hosts[inv.lean[account]] = account
            elif (kept := inv.full.get(account)) is not None:
                subs[account] = kept
                if hosts is not None:
                    if any("/" in a for a in kept.addresses):
                        hosts = outcome.hosts = None  # prefixes: the index is built again
                    else:
                        hosts.update(dict.fromkeys(kept.addresses, account))
        log.info("snapshot: %d accounts changed since it was read keep their newer "
                 "version", len(stale))

    async def _snapshot_plan(self, outcome: Outcome) -> tuple[Any, ...] | None:
        """Apply a validated snapshot; returns what :func:`snapshot_news` needs to find
        its transitions (None: nothing, or a first snapshot, announced here)."""
        inv = self.inventory
        subs, lean = outcome.subscribers, outcome.lean
        total = len(subs) + len(lean)
        if not total and len(inv) > 0:
            log.error("billing snapshot holds no valid subscriber (had %d): refusing to "
                      "release everyone; keeping the last good state", len(inv))
            self.rejections["empty_snapshot"] += 1
            return None
        # Lean accounts are active with nothing to show; one with an override, or
        # one the guard held, is placed like any other.
        for account in {a for a in (*self.overrides, *self.held) if a in lean}:
            subs[account] = inv.lean_subscriber(account, lean.pop(account))
        old_full, old_lean, old_placed = inv.full, inv.lean, self.placed
        final = self._guarded(subs, total, False, "snapshot")
        desired = build_desired_bulk(list(subs.values()), list(map(final.__getitem__, subs)))
        desired.update(self.garden)
        plan = reconcile(desired, self.committed, self.clock())
        await self._apply(plan, cause="billing snapshot")
        first = not old_full and not old_lean
        # The snapshot's own dicts stay as they are for its news: the inventory gets a
        # copy of the lean ones (it changes with the next payment).
        inv.replace_all(subs, lean if first else dict(lean), outcome.hosts)
        placed = Placements(inv)  # lean accounts are placed active implicitly
        placed.update(final)
        self.placed = placed
        self.desired = {k: v for k, v in desired.items() if k in ENFORCEMENT_SETS}
        del desired, plan, outcome
        self.stats.synced = True
        self.on_applied(None, ())
        if first:  # every account is new
            self.announcer.announce(arrivals(subs, final, self.clock(), "billing"), subs)
            return None
        return (old_full, old_lean, self._old_state_of(old_placed), subs, lean, final,
                inv.lean_subscriber, self.clock())

    @staticmethod
    def _old_state_of(old_placed: Mapping[str, State]) -> Callable[[Subscriber], State]:
        """An account's placement in the inventory a snapshot replaced."""
        if isinstance(old_placed, Placements):
            old_other = old_placed.other  # every account of ``before`` was in the inventory

            def old_state(sub: Subscriber) -> State:
                return old_other.get(sub.account, State.ACTIVE)
        else:
            def old_state(sub: Subscriber) -> State:
                return old_placed.get(sub.account, sub.state)
        return old_state

    async def _delta(self, event: Delta) -> None:
        """A small change (the caller holds the urgent turn)."""
        outcome = validate_delta(event.rows, self.policy, self.inventory, event.gone)
        self._record_rejections(outcome)
        # An account whose addresses all moved to another gateway's prefixes leaves.
        gone = [*event.gone, *(a for a in outcome.foreign_accounts
                               if self.inventory.get(a) is not None)]
        subs = outcome.subscribers
        stale = self._newer([*subs, *gone], event.seq)
        if stale:
            subs = {a: sub for a, sub in subs.items() if a not in stale}
            gone = [a for a in gone if a not in stale]
        await self.change_accounts(subs, gone, cause="billing")
        if len(self.fresh) < FRESH_MAX:
            self.fresh.update(dict.fromkeys([*subs, *gone], event.seq))

    async def _bulk_delta(self, event: Delta) -> None:
        """A large change (a storm, a resync's changes) as a bulk job: the rows are
        validated among themselves, then, slice by slice with urgent work
        going first between slices (:class:`~debtgate.enforce.turn.Turn`): checked against the
        inventory (:data:`CHECK_SLICE` at a time), held back by the guard as one change
        (one slice), then applied
        :data:`SLICE` accounts at a time, releases first, then restrictions, then the
        rest. An account that a later-read change placed meanwhile (a payment during
        the storm) is left out (:attr:`fresh`). The rows are validated in slices too
        (:mod:`debtgate.enforce.slicing`)."""
        started = time.perf_counter()
        policy, inv = self.policy, self.inventory
        outcome = await validate_sliced(
            event.rows, lambda rows: validate_rows_of(rows, policy, inv), self.turn)
        subs = outcome.subscribers
        everyone = list(subs.values())
        prefixes = False
        for at in range(0, len(everyone), CHECK_SLICE):
            async with self.turn.slice():
                prefixes |= check_clashes(outcome, self.inventory,
                                          everyone[at:at + CHECK_SLICE])
        del everyone
        async with self.turn.slice():
            inv = self.inventory
            prefixes = carve_if_needed(outcome, inv, event.gone, prefixes)
            self._record_rejections(outcome)
            gone = [*event.gone, *(a for a in outcome.foreign_accounts
                                   if inv.get(a) is not None)]
            del outcome
            gone = [g for g in gone if g not in subs]
            final = self._guarded(subs, max(len(inv), len(subs)), False, "billing")
            order = self._release_first(subs, gone, final)
        # No address moves between two accounts of one change (check_against refuses a
        # host another account holds), so slices never share an element; a change that
        # carries prefixes (carving among its own accounts) is applied whole.
        step = SLICE if not prefixes else max(len(order), 1)
        log.debug("change of %d accounts: validated in %.3f s, %d slices", len(order),
                  time.perf_counter() - started, -(-len(order) // step))
        for at in range(0, len(order), step):
            async with self.turn.slice():
                chunk = order[at:at + step]
                stale = self._newer(chunk, event.seq)
                part = [a for a in chunk if a not in stale] if stale else chunk
                part_subs = {a: subs[a] for a in part if a in subs}
                part_gone = [a for a in part if a not in subs]
                await self._change_many(part_subs, part_gone,
                                        {a: final[a] for a in part_subs}, "billing")

    def _release_first(self, subs: Mapping[str, Subscriber], gone: list[str],
                       final: Mapping[str, State]) -> list[str]:
        """The accounts of a change in the order they are applied: releases (a
        restricted account let through, or gone), then restrictions, then the rest."""
        placed = self.placed
        # Only a restricted placement matters: Placements keeps those in a plain dict.
        was = placed.other.get if isinstance(placed, Placements) else placed.get
        releases: list[str] = [g for g in gone if was(g) in RESTRICTED]
        restrictions: list[str] = []
        rest: list[str] = [g for g in gone if was(g) not in RESTRICTED]
        for account, state in final.items():
            if state in RESTRICTED:
                restrictions.append(account)
            elif was(account) in RESTRICTED:
                releases.append(account)
            else:
                rest.append(account)
        return [*releases, *restrictions, *rest]

    async def change_accounts(self, subs: Mapping[str, Subscriber], gone: Iterable[str],
                              cause: str, bypass_guard: bool = False) -> None:
        """Apply new versions of some accounts (caller holds the lock)."""
        gone = [g for g in gone if g not in subs]
        final = self._guarded(subs, max(len(self.inventory), len(subs)), bypass_guard, cause)
        if len(subs) + len(gone) > BULK_CHANGE:
            await self._change_many(subs, gone, final, cause)
            return
        scope: set[str] = set()
        before: dict[str, Subscriber] = {}
        before_state: dict[str, State] = {}
        for account in [*subs, *gone]:
            old = self.inventory.get(account)
            new = subs.get(account)
            if old is not None:
                before[account] = old
                before_state[account] = self.placed.get(account, old.state)
            scope |= update_desired(self.desired, old, before_state.get(account),
                                    new, final.get(account))
        plan = reconcile(self.desired, self.committed, self.clock(), scope=scope)
        try:
            await self._apply(plan, cause=cause)
        except ApplyError:
            # Roll the desired state back: the inventory still says what the kernel has.
            for account in [*subs, *gone]:
                update_desired(self.desired, subs.get(account), final.get(account),
                               before.get(account), before_state.get(account))
            raise
        for account in gone:
            self.inventory.remove(account)
            self.placed.pop(account, None)
        for sub in subs.values():
            self.inventory.put(sub)
        self.placed.update(final)
        after: dict[str, Subscriber | None] = {**subs, **{g: None for g in gone}}
        self.announcer.announce(transitions(before, after,
                                   lambda sub: before_state.get(sub.account, sub.state),
                                   lambda sub: final[sub.account], self.clock(), cause), after)
        self.on_applied(plan, [*subs, *gone])

    async def _change_many(self, subs: Mapping[str, Subscriber], gone: list[str],
                           final: Mapping[str, State], cause: str) -> None:
        """:meth:`change_accounts` for many accounts, with the same outcome: one pass over
        them (each account's old placement out of the desired sets, its new one in, in
        the same order), no Subscriber built for a lean account, one reconcile over the
        touched elements, one nft transaction, the inventory updated in bulk."""
        inv, placed, desired = self.inventory, self.placed, self.desired
        scope, undo, olds = place_many(
            desired, inv.full, inv.lean, placed.get,
            placed.other if isinstance(placed, Placements) else None, subs, gone, final)
        plan = reconcile(desired, self.committed, self.clock(), scope=scope)
        try:
            await self._apply(plan, cause=cause)
        except ApplyError:
            # Roll the desired state back: the inventory still says what the kernel has.
            for name, addr, added in reversed(undo):
                if added:
                    desired[name].discard(addr)
                else:
                    desired[name].add(addr)
            raise
        del plan, undo
        for account in gone:
            inv.remove(account)
            placed.pop(account, None)
        inv.put_many(subs.values())
        placed.update(final)
        self.announcer.announce(bulk_transitions(subs, gone, olds, final, self.clock(), cause),
                       {**subs, **dict.fromkeys(gone)})
        self.on_applied(None, ())

    async def _apply(self, plan: Plan, cause: str) -> None:
        if plan.empty:
            return
        try:
            await self.nft.apply(plan)
        except ApplyError as exc:
            self.stats.apply_errors += 1
            log.error("nft transaction failed (%d writes, cause=%s): %s", plan.writes, cause, exc)
            raise
        commit(self.committed, plan)
        self.stats.applies += 1
        self.stats.kernel_writes += plan.writes
        self.stats.last_apply_at = time.time()
        log.info("applied %d set changes (cause=%s)", plan.writes, cause)
        await self._cut(plan.conntrack)  # queued: the cutter never holds the turn

    async def _cut(self, elements: Sequence[str]) -> None:
        if not elements:
            return
        try:
            self.stats.conntrack_cut += await self.cutter.cut(elements)
        except Exception as exc:  # noqa: BLE001 - cutting flows is best effort
            log.warning("conntrack cut failed for %d addresses: %s", len(elements), exc)

    # -- overrides, guard, restore ----------------------------------------------
    async def reapply(self, accounts: Iterable[str], cause: str, bypass_guard: bool = True
                      ) -> None:
        """Place some accounts again (after an override or an approval)."""
        async with self.exclusive():
            subs = {a: sub for a in accounts if (sub := self.inventory.get(a)) is not None}
            if subs:
                await self.change_accounts(subs, (), cause=cause, bypass_guard=bypass_guard)

    async def approve(self, author: str) -> dict[str, Any]:
        """Apply what the mass-change guard holds."""
        held = list(self.held)
        audit("guard_approve", author=author, count=len(held))
        log.warning("mass-change guard: %s approved %d held restrictions", author, len(held))
        await self.reapply(held, cause=f"guard approval by {author}")
        self.held.clear()
        self.held_since = None
        return {"applied": len(held)}

    async def restore(self, sets: Mapping[str, set[str]], subs: list[Subscriber]) -> int:
        """Put a persisted state back into an empty kernel (before billing answers):
        the sets first (every restriction enforced), then :meth:`recall`."""
        async with self.exclusive():
            desired = {n: set(sets.get(n, ())) for n in ENFORCEMENT_SETS}
            plan = reconcile(desired, self.committed, self.clock(), cut_sets=frozenset())
            await self._apply(plan, cause="restore after reboot")
            self.recall(subs)
            audit("restored", writes=plan.writes, subscribers=len(subs))
            return plan.writes

    def recall(self, subs: list[Subscriber]) -> int:
        """Before the first snapshot: the restricted subscribers of the persisted state
        whose placement the kernel holds as the inventory, and what the kernel enforces
        as the desired state. A payment then moves its account at once (its old
        placement is known), the portal's page shows the debt, and the first snapshot
        announces only what changed. A subscriber the kernel does not hold as written
        (the file older than the last change, an override) stays unknown until the
        snapshot. Returns how many were recalled."""
        committed = self.committed
        held = [s for s in subs if all(elem in committed.get(name, ())
                                       for name, elem in placements(s, s.state))]
        self.inventory.replace_all({s.account: s for s in held})
        self.placed = {s.account: s.state for s in held}
        self.desired = {n: set(committed.get(n, ())) for n in ENFORCEMENT_SETS}
        return len(held)

    # -- reconcile -----------------------------------------------------------
    async def full_reconcile(self) -> int:
        """Read the kernel back and repair drift; returns the number of repairs.

        Bulk work: the sets are read while urgent work goes on; only a difference is
        read again, in a slice, before it is called drift."""
        async with self.turn.bulk_job():
            kernel = await self.nft.read_sets(MANAGED_SETS)
            async with self.turn.slice():
                desired: dict[str, set[str]] = {**self.desired, **self.garden}
                plan = reconcile(desired, kernel, self.clock())
                if plan.empty:
                    self.committed = kernel
                    return 0
                # An apply meanwhile, or a set dump that overlaps a hash table resize
                # (just after a large insert) can miss elements: drift is what a read
                # in the turn confirms.
                kernel = await self.nft.read_sets(MANAGED_SETS)
                plan = reconcile(desired, kernel, self.clock())
                self.committed = kernel
                release_memory()  # the set dumps' transient objects
                if not plan.empty:
                    log.warning("drift: kernel differs from the desired state by %d "
                                "elements; repairing", plan.writes)
                    self.stats.drift_repairs += plan.writes
                    audit("drift_repair", writes=plan.writes,
                          sets=[d.name for d in plan.changes])
                await self._apply(plan, cause="reconcile repair")
                if not plan.empty:
                    self.on_applied(None, ())
                return plan.writes

    async def apply_garden(self) -> None:
        async with self.exclusive():
            plan = reconcile(self.garden, self.committed, self.clock(),
                             cut_sets=frozenset())
            plan = Plan(at=plan.at, changes=tuple(d for d in plan.changes
                                                  if d.name in GARDEN_SETS))
            await self._apply(plan, cause="config garden")
