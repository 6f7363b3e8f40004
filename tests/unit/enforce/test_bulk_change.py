"""The bulk paths of a large change (``Engine._change_many``, the lazy previous
versions of a large delta) give the same outcome as the per-account path."""

from __future__ import annotations

import random
from typing import Any

import pytest

from debtgate.billing.base import Delta, Snapshot
from debtgate.core.reconcile import reconcile
from debtgate.enforce import engine as engine_mod
from debtgate.enforce.inventory import Inventory
from debtgate.enforce.overrides import Override
from debtgate.errors import ApplyError
from debtgate.model import State
from tests.unit.helpers import NOW, Harness, row

STATES = ["active", "warn", "blocked", "paused", "disabled"]


def _snapshot_rows(rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for i in range(300):
        kind = i % 7
        if kind == 0:
            addresses: Any = f"10.1.{i}.0/28"
        elif kind == 1:
            addresses = [f"10.0.{i}.1", f"2001:db8::{i:x}"]
        elif kind == 2:
            addresses = f"2001:db8:{i:x}::/56"
        else:
            addresses = f"10.0.{i}.1"
        rows.append(row(f"a{i}", addresses, rng.choice(STATES) if i % 3 else "active",
                        name=f"N{i}" if i % 5 == 0 else None))
    return rows


def _delta_rows(rng: random.Random) -> tuple[list[dict[str, Any]], list[str]]:
    rows = []
    for i in rng.sample(range(300), 150):
        addresses: Any = f"10.0.{i}.1" if i % 4 else f"10.2.{i}.1"
        rows.append(row(f"a{i}", addresses, rng.choice(STATES), amount_due="10"))
    for i in range(300, 340):  # newcomers
        rows.append(row(f"a{i}", f"10.3.{i - 300}.1", rng.choice(STATES)))
    rows.append(row("a301", "10.0.7.1", "blocked"))  # a duplicate account: rejected
    rows.append(row("x1", "10.0.3.1", "blocked"))  # another account's address: conflict
    rows.append(row("x2", "not an address", "blocked"))
    gone = [f"a{i}" for i in range(300) if i % 13 == 0] + ["never-seen"]
    return rows, gone


async def _run(bulk: bool, seed: int, fail: bool = False) -> dict[str, Any]:
    rng = random.Random(seed)
    engine_mod.BULK_CHANGE = 0 if bulk else 10**9
    try:
        h = Harness()
        h.engine.guard = type(h.engine.guard)(enabled=False)
        h.engine.overrides["a10"] = Override("o1", "a10", "restrict", "r", NOW, None, "t")
        await h.engine.handle(Snapshot(_snapshot_rows(rng)))
        rows, gone = _delta_rows(rng)
        h.nft.fail_next = fail
        try:
            await h.engine.handle(Delta(rows, gone))
        except ApplyError:
            assert fail
        await h.engine.announcer.announced()
        e = h.engine
        return {
            "plans": [(p.changes, p.conntrack) for p in h.nft.plans],
            "committed": e.committed, "desired": e.desired,
            "full": e.inventory.full, "lean": e.inventory.lean,
            "hosts": e.inventory._hosts, "nets": e.inventory._nets,  # noqa: SLF001
            "placed": dict(e.placed), "rejections": list(e.last_rejections),
            "transitions": [t.as_dict() for t in h.transitions],
            "history": {a: e.announcer.history[a] for a in e.announcer.history},
        }
    finally:
        engine_mod.BULK_CHANGE = 2000


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_bulk_change_matches_the_per_account_path(seed: int) -> None:
    slow, fast = await _run(False, seed), await _run(True, seed)
    for key in slow:
        assert fast[key] == slow[key], key


async def test_bulk_change_rolls_the_desired_state_back_on_failure() -> None:
    slow, fast = await _run(False, 5, fail=True), await _run(True, 5, fail=True)
    assert fast["desired"] == slow["desired"] and fast["full"] == slow["full"]
    assert fast["committed"] == slow["committed"]


def test_scoped_reconcile_matches_the_element_by_element_rule() -> None:
    rng = random.Random(7)
    pool = [f"10.0.0.{i}" for i in range(60)]
    desired = {"a": set(rng.sample(pool, 30)), "b": set(rng.sample(pool, 10)), "c": set()}
    actual = {"a": set(rng.sample(pool, 25)), "d": set(rng.sample(pool, 5))}
    scope = rng.sample(pool, 40)
    plan = reconcile(desired, actual, NOW, scope=scope)
    for name in ("a", "b", "c", "d"):
        want, have = desired.get(name, set()), actual.get(name, set())
        assert set(plan.adds(name)) == {e for e in scope if e in want and e not in have}
        assert set(plan.deletes(name)) == {e for e in scope if e in have and e not in want}


def test_put_many_is_put_in_order() -> None:
    from debtgate.model import Subscriber

    subs = [Subscriber("a", ("10.0.0.9",), State.BLOCKED),
            Subscriber("b", ("10.0.1.0/24", "10.0.0.2"), State.WARN),
            Subscriber("c", (), State.ACTIVE)]
    one, many = Inventory(), Inventory()
    for inv in (one, many):
        inv.replace_all({"b": Subscriber("b", ("10.0.0.3",), State.BLOCKED)},
                        {"a": "10.0.0.1", "c": "10.0.0.5"})
    for sub in subs:
        one.put(sub)
    many.put_many(subs)
    assert (one.full, one.lean, one._hosts, one._nets) == (  # noqa: SLF001
        many.full, many.lean, many._hosts, many._nets)  # noqa: SLF001
