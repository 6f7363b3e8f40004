"""Payments first: a large change is applied in slices, releases first, and a small
change (a payment) read during it goes before its next slice and wins over the
large change's older row of the same account."""

from __future__ import annotations

import asyncio
from typing import Any

from debtgate.billing.base import Delta, Snapshot
from debtgate.core.guard import GuardPolicy
from debtgate.core.reconcile import Plan
from debtgate.enforce import engine as engine_mod
from tests.unit.helpers import Harness, columns, row

N = 12_000


def host(i: int) -> str:
    return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


class Gated(Harness):
    """The fake kernel stops in the n-th transaction until told to go on."""

    def __init__(self) -> None:
        super().__init__()
        self.engine.guard = GuardPolicy(enabled=False)
        self.entered = asyncio.Event()
        self.go_on = asyncio.Event()
        self.stop_at: int | None = None
        apply = self.nft.apply

        async def gated(plan: Plan) -> None:
            if self.stop_at is not None and len(self.nft.plans) == self.stop_at:
                self.stop_at = None
                self.entered.set()
                await self.go_on.wait()
            await apply(plan)

        self.nft.apply = gated  # type: ignore[method-assign]


def blocked(accounts: range, **extra: Any) -> list[dict[str, Any]]:
    return [row(f"a{i}", host(i), "blocked", **extra) for i in accounts]


async def test_a_storm_is_applied_in_slices_releases_first() -> None:
    h = Harness()
    h.engine.guard = GuardPolicy(enabled=False)
    await h.snapshot(*blocked(range(3000)), *(row(f"a{i}", host(i)) for i in range(3000, N)))
    before = len(h.nft.plans)
    storm = [row(f"a{i}", host(i)) for i in range(3000)]  # 3,000 paid
    storm += blocked(range(3000, N))  # 9,000 blocked
    await h.engine.handle(Delta(storm))
    plans = h.nft.plans[before:]
    assert len(plans) == -(-N // engine_mod.SLICE)
    assert all(len(p.changes) == 1 for p in plans)
    # The releases come first: no slice restricts anyone before every release is out.
    released = 0
    for plan in plans:
        change = plan.changes[0]
        released += len(change.delete)
        assert not change.add or released == 3000
        assert len(change.add) + len(change.delete) <= engine_mod.SLICE
    assert released == 3000
    assert len(plans[0].conntrack) == engine_mod.SLICE
    assert set(h.nft.sets["blocked_v4_host"]) == {host(i) for i in range(3000, N)}
    # Conntrack is cut for every change (queued by the cutter, never held in the turn).
    assert sum(len(c) for c in h.cutter.cut_calls[-len(plans):]) == N
    assert h.engine.turn.slices >= len(plans)


async def test_a_payment_during_a_storm_goes_before_its_next_slice_and_wins() -> None:
    h = Gated()
    await h.snapshot(*(row(f"a{i}", host(i)) for i in range(N)))
    base = len(h.nft.plans)
    storm = Delta(blocked(range(N)))  # read now
    h.stop_at = base  # stop in the storm's first slice
    job = asyncio.create_task(h.engine.handle(storm))
    await h.entered.wait()
    # a100 (in the slice in progress) and a7000 (in a later one) pay; the change is
    # read after the storm's rows.
    pay = asyncio.create_task(h.engine.handle(Delta([row("a100", host(100)),
                                                     row("a7000", host(7000))])))
    await asyncio.sleep(0)
    h.go_on.set()
    await asyncio.gather(job, pay)
    plans = h.nft.plans[base:]
    # The payment is the second transaction: after the slice in progress, before the rest.
    assert plans[1].changes[0].delete == (host(100),) and not plans[1].changes[0].add
    # a7000 was never blocked: the storm's older row of it is left out.
    assert not {host(100), host(7000)} & h.nft.sets["blocked_v4_host"]
    assert not any(host(7000) in d.add for p in plans for d in p.changes)
    assert len(h.nft.sets["blocked_v4_host"]) == N - 2
    assert h.engine.inventory.get("a7000").state == "active"
    assert not h.engine.fresh  # forgotten once no older event waits


async def test_a_change_read_before_the_storm_does_not_undo_it() -> None:
    h = Gated()
    await h.snapshot(*(row(f"a{i}", host(i)) for i in range(N)))
    base = len(h.nft.plans)
    older = Delta([row("a7000", host(7000), "warn")])  # read first, applied second
    storm = Delta(blocked(range(N)))
    h.stop_at = base
    job = asyncio.create_task(h.engine.handle(storm))
    await h.entered.wait()
    late = asyncio.create_task(h.engine.handle(older))
    await asyncio.sleep(0)
    h.go_on.set()
    await asyncio.gather(job, late)
    # The storm's row is the newer one: a7000 ends blocked.
    assert host(7000) in h.nft.sets["blocked_v4_host"]
    assert h.engine.inventory.get("a7000").state == "blocked"


async def test_a_snapshot_keeps_a_payment_read_after_it() -> None:
    h = Harness()
    h.engine.guard = GuardPolicy(enabled=False)
    await h.snapshot(*blocked(range(10)))
    snap = Snapshot(blocked(range(10)))  # read before the payment: a3 still blocked
    await h.delta(row("a3", host(3)))  # the payment
    await h.delta(row("new", "10.9.9.9", "blocked"))  # a new account, after the snapshot
    await h.engine.handle(snap)
    assert h.engine.inventory.get("a3").state == "active"
    assert h.engine.inventory.get("new") is not None
    assert h.nft.sets["blocked_v4_host"] == {host(i) for i in range(10) if i != 3} | {
        "10.9.9.9"}
    later = Snapshot(blocked(range(10)))  # read after: it decides
    await h.engine.handle(later)
    assert h.engine.inventory.get("a3").state == "blocked"
    assert h.engine.inventory.get("new") is None


async def test_the_guard_weighs_a_storm_as_one_change() -> None:
    h = Harness()
    await h.snapshot(*(row(f"a{i}", host(i)) for i in range(N)))
    await h.engine.handle(Delta(blocked(range(N))))
    assert len(h.engine.held) == N  # held whole, though applied in slices
    assert not h.nft.sets.get("blocked_v4_host")


async def test_a_snapshot_read_before_an_address_move_keeps_the_moved_address() -> None:
    h = Harness()
    h.engine.guard = GuardPolicy(enabled=False)
    rows = [*blocked(range(10)), *(row(f"a{i}", host(i)) for i in range(10, 20))]
    await h.engine.handle(Snapshot(columns(rows, ())))
    snap = Snapshot(columns(rows, ()))  # read before the changes below
    await h.delta(row("a3", "10.8.8.8"))  # paid, and moved to another address
    await h.delta(row("a12", "10.8.8.12", "blocked"))  # a lean account moved and blocked
    await h.engine.handle(snap)
    inv = h.engine.inventory
    assert inv.owner("10.8.8.8") == "a3" and inv.owner(host(3)) is None
    assert inv.owner("10.8.8.12") == "a12" and inv.owner(host(12)) is None
    assert inv.owner(host(4)) == "a4" and inv.owner(host(15)) == "a15"
    assert h.nft.sets["blocked_v4_host"] == {host(i) for i in range(10) if i != 3} | {
        "10.8.8.12"}
