"""A storm's rows enforced while the rest still arrive (``DeltaAhead``): the parts of a
change add only what its Delta keeps, and the Delta has the last word."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from debtgate.core.guard import GuardPolicy
from debtgate.headstart import HeadSlice, unclaimed
from debtgate.model import State
from debtgate.sources.base import Columns, Delta, DeltaAhead, Snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from .helpers import Harness, columns, row
from .test_bulk_validate import EXTRAS, rows


def nonempty(sets: dict[str, set[str]]) -> dict[str, set[str]]:
    return {name: elems for name, elems in sets.items() if elems}


def parts(cols: Columns, cuts: list[int]) -> list[Columns]:
    bounds = sorted({0, len(cols), *(c % (len(cols) + 1) for c in cuts)})
    return [cols.pick(range(a, b)) for a, b in zip(bounds, bounds[1:], strict=False)]


class Recorder(Harness):
    """A harness that remembers what the parts added."""

    def ahead_elements(self, first_plan: int) -> set[tuple[str, str]]:
        return {(d.name, a) for p in self.nft.plans[first_plan:] for d in p.changes
                for a in d.add}


async def storm(baseline: list[dict[str, Any]], change: list[dict[str, Any]],
                cuts: list[int] | None) -> tuple[Harness, set[tuple[str, str]]]:
    h = Recorder()
    await h.engine.handle(Snapshot(baseline))
    ahead: set[tuple[str, str]] = set()
    if cuts is not None:
        mark = len(h.nft.plans)
        for part in parts(columns(change, EXTRAS), cuts):
            await h.engine.handle(DeltaAhead(part, len(change)))
        ahead = h.ahead_elements(mark)
    await h.engine.handle(Delta(change))
    return h, ahead


@settings(max_examples=300, deadline=None)
@given(rows, rows, st.lists(st.integers(0, 40), max_size=3))
async def test_parts_ahead_end_where_the_delta_alone_ends(
        baseline: list[dict[str, Any]], change: list[dict[str, Any]], cuts: list[int]) -> None:
    ref, _ = await storm(baseline, change, None)
    got, ahead = await storm(baseline, change, cuts)
    assert nonempty(got.nft.sets) == nonempty(ref.nft.sets)
    assert dict(got.engine.placed) == dict(ref.engine.placed)
    assert not got.engine.ahead  # the Delta took them over
    # What went ahead is what the Delta enforces, unless the change names an account
    # or a host twice in different parts (the Delta then takes it back).
    accounts = [r["account"] for r in change]
    hosts = [r["addresses"] for r in change if isinstance(r["addresses"], str)]
    if len(set(accounts)) == len(accounts) and len(set(hosts)) == len(hosts):
        for name, addr in ahead:
            assert addr in ref.nft.sets[name], (name, addr)


def big(n: int, state: str, base: str = "10.8") -> list[dict[str, Any]]:
    return [row(f"S{i}", f"{base}.{i // 250}.{i % 250 + 1}", state, amount_due="100")
            for i in range(n)]


async def test_a_storm_is_enforced_part_by_part_and_the_delta_adds_nothing() -> None:
    h = Harness()
    h.engine.guard = GuardPolicy(enabled=False)
    await h.engine.handle(Snapshot(big(3000, "active")))
    change = big(3000, "blocked")
    mark = len(h.nft.plans)
    cols = columns(change, EXTRAS)
    for part in parts(cols, [500, 2000]):
        await h.engine.handle(DeltaAhead(part, len(change)))
    ahead = h.nft.plans[mark:]
    assert len(ahead) >= 3 and all(not d.delete for p in ahead for d in p.changes)
    assert sum(p.writes for p in ahead) == 3000
    assert len(h.nft.sets["blocked_v4_host"]) == 3000
    assert h.engine.inventory.get("S1").state is State.ACTIVE  # the Delta decides that
    before = len(h.nft.plans)
    await h.engine.handle(Delta(change))
    assert len(h.nft.plans) == before  # everything already enforced: no transaction
    assert h.engine.inventory.get("S1").state is State.BLOCKED
    assert h.engine.placed.get("S2999") is State.BLOCKED


async def test_the_guard_and_the_inventory_keep_rows_back() -> None:
    h = Harness()  # the default guard: 3,000 of 3,000 would trip it
    await h.engine.handle(Snapshot(big(3000, "active")))
    change = big(3000, "blocked")
    before = len(h.nft.plans)
    await h.engine.handle(DeltaAhead(columns(change, EXTRAS), len(change)))
    assert len(h.nft.plans) == before and not h.engine.ahead
    await h.engine.handle(Delta(change))
    assert h.engine.held and not h.nft.sets.get("blocked_v4_host")  # held for approval

    h = Harness()
    h.engine.guard = GuardPolicy(enabled=False)
    await h.engine.handle(Snapshot([*big(100, "active"), row("W", "10.9.0.1", "warn"),
                                    row("O", "10.9.0.2")]))
    change = [*big(100, "blocked"), row("W", "10.9.0.1", "blocked"),   # placed warn
              row("N", "10.9.0.2", "blocked")]                         # O's host
    await h.engine.handle(DeltaAhead(columns(change, EXTRAS), len(change)))
    assert len(h.nft.sets["blocked_v4_host"]) == 100
    assert "10.9.0.1" not in h.nft.sets["blocked_v4_host"]
    assert "10.9.0.2" not in h.nft.sets["blocked_v4_host"]
    await h.engine.handle(Delta(change))
    assert "10.9.0.1" in h.nft.sets["blocked_v4_host"]  # the Delta moves W itself
    assert h.nft.sets["warn_v4_host"] == set()


async def test_the_delta_takes_back_what_it_does_not_keep() -> None:
    h = Harness()
    h.engine.guard = GuardPolicy(enabled=False)
    await h.engine.handle(Snapshot(big(20, "active")))
    first = [row("D", "10.9.1.1", "blocked"), row("E", "10.9.1.2", "blocked")]
    await h.engine.handle(DeltaAhead(columns(first, EXTRAS), 3))
    assert {"10.9.1.1", "10.9.1.2"} <= h.nft.sets["blocked_v4_host"]
    # The Delta that follows says otherwise (D's row is garbage now, E pays).
    await h.engine.handle(Delta([row("D", "10.9.1.1", "blocked", amount_due="lots"),
                                 row("E", "10.9.1.2", "active")]))
    assert "10.9.1.1" not in h.nft.sets["blocked_v4_host"]
    assert "10.9.1.2" not in h.nft.sets["blocked_v4_host"]
    assert h.engine.rejections["bad_amount_due"] == 1 or sum(h.engine.rejections.values()) == 1
    # A snapshot after parts reconciles everything (the source lost the Delta).
    await h.engine.handle(DeltaAhead(columns([row("F", "10.9.1.3", "blocked")], EXTRAS), 1))
    assert "10.9.1.3" in h.nft.sets["blocked_v4_host"] and h.engine.ahead
    await h.engine.handle(Snapshot(big(20, "active")))
    assert not h.nft.sets["blocked_v4_host"] and not h.engine.ahead


def test_unclaimed_checks_the_inventory_and_earlier_parts() -> None:
    got = HeadSlice(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"],
                    [State.BLOCKED] * 5, [0, 1, 2, 3, 4])
    accounts = ["own", "free", "other", "warned", "late"]
    owners = {"10.0.0.1": "own", "10.0.0.3": "someone"}
    taken: set[str] = set()
    taken.add("10.0.0.5")  # a new host an earlier part took for another account
    kept = unclaimed(got, accounts, lambda hosts: [owners.get(h) for h in hosts],
                     {"warned"}, taken)
    assert kept.hosts == ["10.0.0.1", "10.0.0.2"] and kept.rows == [0, 1]
    assert taken == {"10.0.0.1", "10.0.0.2", "10.0.0.5"}
    again = unclaimed(HeadSlice(["10.0.0.2"], [State.BLOCKED], [0]), ["later"],
                      lambda hosts: [None], set(), taken)
    assert again.hosts == []  # the host went ahead for "free" already


@pytest.mark.parametrize("spoil", ["none", "restricted", "taken_free_host",
                                   "held_by_other", "free_host", "no_account"])
def test_unclaimed_whole_slice_checks_agree_with_row_checks(spoil: str) -> None:
    """A storm's slice (every host its own account's) is kept whole by list and set
    checks; one row that breaks a condition is dropped alone, as the row-by-row checks
    drop it."""
    hosts = [f"10.1.0.{i}" for i in range(1, 7)]
    accounts: list[str | None] = [f"s{i}" for i in range(1, 7)]
    owners: dict[str, str | None] = dict(zip(hosts, accounts, strict=True))
    restricted: set[str] = set()
    taken: set[str] = set()
    if spoil == "restricted":
        restricted.add("s3")
    elif spoil == "taken_free_host":  # a new host, taken by an earlier part
        del owners["10.1.0.3"]
        taken.add("10.1.0.3")
    elif spoil == "held_by_other":
        owners["10.1.0.3"] = "someone"
    elif spoil == "free_host":
        del owners["10.1.0.3"]  # a new host: free, so it is kept
    elif spoil == "no_account":
        accounts[2] = None
    got = HeadSlice(hosts, [State.BLOCKED] * 6, list(range(6)))
    kept = unclaimed(got, accounts, lambda hs: [owners.get(h) for h in hs], restricted, taken)
    dropped = spoil not in ("none", "free_host")
    assert kept.hosts == [h for h in hosts if not (dropped and h == "10.1.0.3")]
    assert kept.rows == [i for i in range(6) if not (dropped and i == 2)]
    assert taken >= set(kept.hosts)


async def test_a_part_leaves_its_transaction_running_and_the_next_waits_for_it() -> None:
    """The kernel inserts one part while the next is checked; transactions keep their
    order, and the Delta plans only once the last part's transaction is done."""
    h = Harness()
    h.engine.guard = GuardPolicy(enabled=False)
    await h.engine.handle(Snapshot(big(3000, "active")))
    gate = asyncio.Event()
    order: list[int] = []
    fake_apply = h.nft.apply

    async def slow_apply(plan: Any) -> None:
        order.append(plan.writes)
        await gate.wait()
        await fake_apply(plan)

    h.nft.apply = slow_apply  # type: ignore[method-assign]
    change = big(3000, "blocked")
    first, second = parts(columns(change, EXTRAS), [1000])
    await h.engine.handle(DeltaAhead(first, len(change)))
    assert order == [1000] and not h.nft.sets.get("blocked_v4_host")  # still running
    checked = asyncio.create_task(h.engine.handle(DeltaAhead(second, len(change))))
    for _ in range(50):
        await asyncio.sleep(0)
    assert not checked.done() and order == [1000]  # checked, waiting for the first
    delta = asyncio.create_task(h.engine.handle(Delta(change)))
    gate.set()
    await checked
    await delta
    assert order == [1000, 2000]  # the Delta found everything enforced: no transaction
    assert len(h.nft.sets["blocked_v4_host"]) == 3000
    assert h.engine.placed.get("S2999") is State.BLOCKED
