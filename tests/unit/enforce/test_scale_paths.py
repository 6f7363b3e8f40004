"""Compact state at scale: placements, history, announcements in the background,
the plain-row validation fast path (same outcomes as the general path)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pytest

from debtgate.billing.base import Snapshot
from debtgate.billing.rows import Policy, RowError, parse_plain, parse_row
from debtgate.core.transitions import History, Transition
from debtgate.enforce.announce import BULK_AUDIT
from debtgate.enforce.inventory import Inventory, Placements
from debtgate.model import State
from tests.unit.helpers import NOW, Harness, row


def test_placements_store_only_non_active_accounts() -> None:
    inv = Inventory()
    inv.replace_all({}, {"a": "10.0.0.1", "b": "10.0.0.2"})
    placed = Placements(inv, {"a": State.ACTIVE, "b": State.BLOCKED})
    assert placed.other == {"b": State.BLOCKED}
    assert placed["a"] is State.ACTIVE and placed.get("zz") is None
    assert placed.get("zz", State.WARN) is State.WARN
    assert placed == {"a": State.ACTIVE, "b": State.BLOCKED} and len(placed) == 2
    placed.update({"b": State.ACTIVE})
    assert placed.other == {} and placed["b"] is State.ACTIVE and placed
    assert placed.pop("b") is State.ACTIVE and placed.pop("zz", None) is None
    assert not Placements(Inventory())


def test_placement_counts_match_a_count_over_every_account() -> None:
    inv = Inventory()
    inv.replace_all({}, {f"a{i}": f"10.0.0.{i}" for i in range(1, 9)})
    placed = Placements(inv, {"a1": State.BLOCKED, "a2": State.WARN, "a3": State.BLOCKED,
                              "a4": State.PAUSED})
    assert placed.counts() == dict(Counter(st.value for st in placed.values()))
    assert placed.counts() == {"blocked": 2, "warn": 1, "paused": 1, "active": 4}
    placed.update({"a1": State.ACTIVE, "a2": State.ACTIVE, "a3": State.ACTIVE})
    placed.pop("a4")
    assert placed.counts() == {"active": 8}
    assert Placements(Inventory()).counts() == {}


def test_history_keeps_the_last_transitions_compactly() -> None:
    hist = History(3)
    for i, new in enumerate([State.WARN, State.BLOCKED, State.ACTIVE, State.BLOCKED]):
        hist.add(Transition("a", None if i == 0 else State.ACTIVE, new, NOW, f"c{i}"))
    got = hist.get("a", [])
    assert [t["cause"] for t in got] == ["c1", "c2", "c3"] and got[-1]["new"] == "blocked"
    assert "a" in hist and len(hist) == 1 and list(hist) == ["a"]
    assert list(hist.get("zz", ())) == []
    one = History(1)
    one.add(Transition("b", None, State.WARN, NOW, "x"))
    one.add(Transition("b", State.WARN, State.BLOCKED, NOW, "y"))
    assert [t["cause"] for t in one["b"]] == ["y"]


def test_history_holds_at_most_its_total_forgetting_the_oldest_accounts() -> None:
    hist = History(3, total=10)
    for i in range(6):  # a0..a5, one transition each
        hist.add(Transition(f"a{i}", None, State.BLOCKED, NOW, "storm"))
    hist.add(Transition("a0", State.BLOCKED, State.ACTIVE, NOW, "paid"))  # a0 is newest now
    assert hist.transitions == 7 and list(hist)[-1] == "a0"
    for i in range(6, 9):
        hist.add(Transition(f"a{i}", None, State.BLOCKED, NOW, "storm"))
    assert hist.transitions == 10 and list(hist)[:2] == ["a1", "a2"]
    hist.add(Transition("a5", State.BLOCKED, State.ACTIVE, NOW, "paid"))
    # 11 > 10: the accounts whose last transition is oldest go until at most 5 remain
    # (a0's two would make 6: it goes too, though it paid after a1..a4 were blocked).
    assert hist.transitions == 5 and list(hist) == ["a6", "a7", "a8", "a5"]
    assert [t["cause"] for t in hist["a5"]] == ["storm", "paid"]
    hist.add(Transition("a0", State.ACTIVE, State.BLOCKED, NOW, "again"))
    assert hist.transitions == 6 and [t["cause"] for t in hist["a0"]] == ["again"]


async def test_large_batches_are_announced_after_the_apply_in_order() -> None:
    h = Harness()
    n = BULK_AUDIT + 5
    rows = [row(f"a{i}", f"10.0.{i // 250}.{i % 250 + 1}", "blocked") for i in range(n)]
    await h.engine.handle(Snapshot(rows))
    assert len(h.nft.sets["blocked_v4_host"]) == n  # enforced at once
    # A small change right after waits behind the big batch (order is kept).
    await h.delta(row("a0", "10.0.0.1"))
    assert h.nft.sets["blocked_v4_host"].isdisjoint({"10.0.0.1"})
    await h.engine.announcer.announced()
    assert len(h.transitions) == n + 1
    assert h.transitions[-1].account == "a0" and h.transitions[-1].new is State.ACTIVE
    assert [t["new"] for t in h.engine.announcer.history["a0"]] == ["blocked", "active"]
    assert h.engine.placed["a0"] is State.ACTIVE and h.engine.placed["a1"] is State.BLOCKED


PLAIN = [
    row("b", "10.0.0.2", "blocked", amount_due="5,50", currency=" eur ", since="2026-11-01",
        name=" Jo ", language="RU", tariff="Home"),
    row("c", ["10.0.0.3"], "warn", block_at="2026-12-01"),
    row("d", "10.0.0.4", "paused", amount_due=None, currency=None, since=None),
    row("e", "10.0.0.5", "disabled", amount_due="12.5", since="2026-11-01T10:00:00"),
]


@pytest.mark.parametrize("r", PLAIN)
def test_parse_plain_equals_parse_row(r: dict[str, Any]) -> None:
    policy = Policy(default_currency="rub")
    got = parse_plain(r["account"], r["addresses"], r["state"], r, policy)
    assert got == parse_row(r, policy)


@pytest.mark.parametrize("r", [
    row(" b", "10.0.0.2", "blocked"), row("b", "10.0.0.2", "Blocked"),
    row("b", "10.0.0.0/24", "blocked"), row("b", "127.0.0.1", "blocked"),
    row("b", "10.0.0.2", "blocked", nas="bras1"), row("b", "10.0.0.2", "blocked", name=5),
    row("b", "10.0.0.2", "blocked", since="1.11.2026"),
    row("b", "10.0.0.2", "blocked", amount_due="x"),
])
def test_parse_plain_leaves_the_unusual_to_the_general_path(r: dict[str, Any]) -> None:
    assert parse_plain(r["account"], r["addresses"], r["state"], r, Policy()) is None
    try:
        parse_row(r, Policy())
    except RowError:
        pass


def test_cached_dates_are_shared() -> None:
    a = parse_plain("x", "10.0.0.9", "blocked", {"since": "2026-11-01"}, Policy())
    b = parse_plain("y", "10.0.0.8", "blocked", {"since": "2026-11-01"}, Policy())
    assert a and b and a[0].since is b[0].since == date(2026, 11, 1)


def test_marks_are_compact_and_equal_to_the_dict_they_replace() -> None:
    from debtgate.billing.pgfetch import Marks

    marks = Marks(["a", "b", "c"], [5, None, 7])
    assert marks.summary() == (3, 12) and marks.as_dict() == {"a": 5, "b": None, "c": 7}
    marks.set("a", 9)
    marks.set("d", 1)
    marks.drop("c")
    marks.drop("zz")
    assert marks.as_dict() == {"a": 9, "b": None, "d": 1}
    assert marks.summary() == (3, 10) and marks.count == 3
