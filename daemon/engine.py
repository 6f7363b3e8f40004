"""The engine: billing events in, kernel state out.

One apply at a time (a lock). Each event is validated, turned into a
:class:`~debtgate.core.reconcile.Plan` by the pure core, applied as ONE nft
transaction, recorded as committed, then conntrack is cut and the account
transitions are handed to RADIUS and the audit trail.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from .adapters.conntrack import ConntrackCutter
from .adapters.nft import NftAdapter
from .audit import audit
from .core.desired import build_desired, garden_desired, update_desired
from .core.reconcile import Plan, commit, reconcile
from .core.sets import ACK_SETS, ENFORCEMENT_SETS, GARDEN_SETS, MANAGED_SETS
from .core.transitions import Transition, transitions
from .errors import ApplyError
from .inventory import Inventory
from .model import Rejection, State, Subscriber
from .portal_api import view_dict
from .sources.base import Delta, Event, Snapshot
from .validate import Outcome, Policy, validate_rows

log = logging.getLogger(__name__)


class TransitionListener(Protocol):
    def __call__(self, change: Transition, sub: Subscriber | None) -> None: ...


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
        self.inventory = Inventory()
        self.desired: dict[str, set[str]] = build_desired(())
        self.committed: dict[str, set[str]] = {}
        self.garden: dict[str, set[str]] = garden_desired((), ())
        self.rejections: Counter[str] = Counter()
        self.last_rejections: deque[dict[str, Any]] = deque(maxlen=50)
        self.listeners: list[TransitionListener] = []
        self.history: dict[str, deque[dict[str, Any]]] = {}
        self.acked: dict[str, float] = {}
        self.portal_views = 0
        self.portal_acks = 0
        self.stats = Stats()
        self.lock = asyncio.Lock()
        self.state_of: Callable[[Subscriber], State] = lambda sub: sub.state

    # -- start-up --------------------------------------------------------
    async def adopt_kernel(self) -> None:
        """Read what the kernel holds: the start applies only the difference."""
        self.committed = await self.nft.read_sets(MANAGED_SETS)
        log.info("kernel holds %d enforced elements",
                 sum(len(self.committed[s]) for s in ENFORCEMENT_SETS))

    def set_garden(self, cidrs: Iterable[str], resolvers: Iterable[str]) -> None:
        self.garden = garden_desired(cidrs, resolvers)

    # -- events ------------------------------------------------------------
    async def handle(self, event: Event) -> None:
        async with self.lock:
            started = time.perf_counter()
            if isinstance(event, Snapshot):
                await self._snapshot(event)
            else:
                await self._delta(event)
            self.stats.last_apply_seconds = time.perf_counter() - started

    def _record_rejections(self, outcome: Outcome) -> None:
        for rej in outcome.rejections:
            self.rejections[rej.reason] += 1
            self.last_rejections.append({"account": rej.account, "reason": rej.reason,
                                         "detail": rej.detail})
            log.warning("billing row rejected: account=%s reason=%s: %s",
                        rej.account, rej.reason, rej.detail)

    async def _snapshot(self, event: Snapshot) -> None:
        outcome = await asyncio.to_thread(
            validate_rows, event.rows, self.policy, self.inventory.accounts)
        self._record_rejections(outcome)
        old = dict(self.inventory.accounts)
        desired = build_desired(outcome.subscribers.values(), self.state_of)
        desired.update(self.garden)
        plan = reconcile(desired, self.committed, self.clock())
        await self._apply(plan, cause="billing snapshot")
        self.inventory.replace_all(outcome.subscribers)
        self.desired = {k: v for k, v in desired.items() if k in ENFORCEMENT_SETS}
        self._announce(transitions(old, self.inventory.accounts, self.state_of, self.clock(),
                                   "billing"))
        self.stats.synced = True

    async def _delta(self, event: Delta) -> None:
        previous: dict[str, Subscriber] = {}
        for row in event.rows:
            old = self.inventory.get(str(row.get("account"))) if isinstance(row, Mapping) else None
            if old is not None:
                previous[old.account] = old
        outcome = validate_rows(event.rows, self.policy, previous)
        for sub in list(outcome.subscribers.values()):
            clash = self.inventory.claimed_by_other(sub)
            if clash is not None:
                outcome.subscribers.pop(sub.account)
                if sub.account in previous:
                    outcome.subscribers[sub.account] = previous[sub.account]
                outcome.rejections.append(Rejection(
                    sub.account, "address_conflict", f"address {clash} is held by another account"))
        self._record_rejections(outcome)
        await self.change_accounts(outcome.subscribers, event.gone, cause="billing")

    async def change_accounts(self, subs: dict[str, Subscriber], gone: Iterable[str],
                              cause: str) -> None:
        """Apply new versions of some accounts (caller holds the lock)."""
        scope: set[str] = set()
        before: dict[str, Subscriber] = {}
        after: dict[str, Subscriber] = {}
        for account in set(subs) | set(gone):
            old = self.inventory.get(account)
            new = subs.get(account)
            if old is not None:
                before[account] = old
            if new is not None:
                after[account] = new
            scope |= update_desired(self.desired, old, self.state_of(old) if old else None,
                                    new, self.state_of(new) if new else None)
        plan = reconcile(self.desired, self.committed, self.clock(), scope=scope)
        try:
            await self._apply(plan, cause=cause)
        except ApplyError:
            # Roll the desired state back: the inventory still says what the kernel has.
            for account in set(subs) | set(gone):
                update_desired(self.desired, after.get(account),
                               self.state_of(after[account]) if account in after else None,
                               before.get(account),
                               self.state_of(before[account]) if account in before else None)
            raise
        for account in gone:
            self.inventory.remove(account)
        for sub in subs.values():
            self.inventory.put(sub)
        self._announce(transitions(before, {**before, **after} | {g: None for g in gone},
                                   self.state_of, self.clock(), cause))

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
        if plan.conntrack:
            try:
                self.stats.conntrack_cut += await self.cutter.cut(plan.conntrack)
            except Exception as exc:  # noqa: BLE001 - cutting flows is best effort
                log.warning("conntrack cut failed for %d addresses: %s", len(plan.conntrack), exc)

    def _announce(self, changes: list[Transition]) -> None:
        for change in changes:
            sub = self.inventory.get(change.account)
            hist = self.history.setdefault(change.account, deque(maxlen=20))
            hist.append(change.as_dict())
            audit("transition", **change.as_dict())
            if change.old is State.WARN and change.new is not State.WARN:
                self._forget_ack(change.account, change.old_addresses)
            for listener in self.listeners:
                try:
                    listener(change, sub)
                except Exception:  # a listener bug must not stop enforcement
                    log.exception("transition listener failed for account=%s", change.account)

    # -- reconcile -----------------------------------------------------------
    async def full_reconcile(self) -> int:
        """Read the kernel back and repair drift; returns the number of repairs."""
        async with self.lock:
            kernel = await self.nft.read_sets(MANAGED_SETS)
            desired: dict[str, set[str]] = {**self.desired, **self.garden}
            plan = reconcile(desired, kernel, self.clock())
            self.committed = kernel
            if not plan.empty:
                log.warning("drift: kernel differs from the desired state by %d elements; "
                            "repairing", plan.writes)
                self.stats.drift_repairs += plan.writes
                audit("drift_repair", writes=plan.writes,
                      sets=[d.name for d in plan.changes])
            await self._apply(plan, cause="reconcile repair")
            return plan.writes

    async def apply_garden(self) -> None:
        async with self.lock:
            plan = reconcile(self.garden, self.committed, self.clock(),
                             cut_sets=frozenset())
            plan = Plan(at=plan.at, changes=tuple(d for d in plan.changes
                                                  if d.name in GARDEN_SETS))
            await self._apply(plan, cause="config garden")

    # -- the portal's view (PortalBackend) ---------------------------------------
    def view(self, ip: str) -> dict[str, Any] | None:
        """What the portal may show to the holder of ``ip`` (and nobody else)."""
        sub = self.inventory.find(ip)
        if sub is None or self.inventory.owner(ip) != sub.account:
            return None
        self.portal_views += 1
        effective = self.state_of(sub)
        acked = self.acked.get(sub.account, 0.0) > time.time()
        data = view_dict(sub, ip, acknowledged=acked, ack_timeout=self.ack_timeout,
                         default_currency=self.policy.default_currency)
        data["state"] = effective.value
        return data

    # -- acknowledgements ------------------------------------------------------
    async def acknowledge(self, ip: str) -> dict[str, Any] | None:
        sub = self.inventory.find(ip)
        if sub is None or self.state_of(sub) is not State.WARN:
            return None
        async with self.lock:
            for name in ACK_SETS:
                fam = "v6" if name.endswith("v6") else "v4"
                elems = [a for a in sub.addresses if (":" in a) == (fam == "v6")]
                await self.nft.add_timed(name, elems, self.ack_timeout)
        self.acked[sub.account] = time.time() + self.ack_timeout
        self.portal_acks += 1
        audit("acknowledged", account=sub.account, address=ip, seconds=self.ack_timeout)
        if self.cutter:
            await self.cutter.cut([a for a in sub.addresses])
        return {"acknowledged": True, "expires_in": self.ack_timeout}

    def _forget_ack(self, account: str, addresses: tuple[str, ...]) -> None:
        if self.acked.pop(account, None) is None:
            return
        task = asyncio.get_running_loop().create_task(self._delete_acks(addresses),
                                                      name=f"forget-ack-{account}")
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _delete_acks(self, addresses: tuple[str, ...]) -> None:
        for name in ACK_SETS:
            v6 = name.endswith("v6")
            await self.nft.delete_elements(name, [a for a in addresses if (":" in a) == v6])
