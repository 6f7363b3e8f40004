"""Restrictions first: a cold start enforces debtors before the full snapshot arrives."""

from __future__ import annotations

from debtgate.model import State
from debtgate.overrides import Override
from debtgate.sources.base import Restrictions

from .helpers import NOW, Harness, row


async def test_cold_start_enforces_restrictions_then_snapshot_completes() -> None:
    h = Harness()
    await h.engine.handle(Restrictions([row("b", ["10.0.0.2"], "blocked"),
                                        row("p", ["2001:db8::7"], "paused")]))
    assert h.nft.sets["blocked_v4_host"] == {"10.0.0.2"}
    assert h.nft.sets["locked_v6_host"] == {"2001:db8::7"}
    assert h.cutter.cut_calls == [["10.0.0.2", "2001:db8::7"]]
    assert len(h.engine.inventory) == 0  # the snapshot fills the inventory
    assert h.transitions == []
    assert h.engine.stats.early_restricted == 2
    # The full snapshot: one more restriction, the early ones are already there.
    plan = await h.snapshot(row("a", ["10.0.0.1"]), row("b", ["10.0.0.2"], "blocked"),
                            row("p", ["2001:db8::7"], "paused"),
                            row("c", ["10.0.0.3"], "blocked"))
    assert plan is not None
    assert plan.writes == 1 and plan.adds("blocked_v4_host") == ("10.0.0.3",)
    assert h.engine.inventory.get("b") is not None
    await h.engine.announced()
    assert sorted((t.account, t.new) for t in h.transitions) == [
        ("b", State.BLOCKED), ("c", State.BLOCKED), ("p", State.PAUSED)]


async def test_restrictions_never_release_and_are_ignored_with_a_baseline() -> None:
    h = Harness()
    await h.snapshot(row("b", ["10.0.0.2"], "blocked"))
    await h.engine.handle(Restrictions([row("c", ["10.0.0.3"], "blocked")]))
    assert h.nft.sets["blocked_v4_host"] == {"10.0.0.2"}  # the snapshot decides
    assert h.engine.stats.early_restricted == 0


async def test_rows_the_snapshot_would_reject_are_not_enforced_early() -> None:
    h = Harness()
    await h.engine.handle(Restrictions([
        row("x", ["0.0.0.0/0"], "blocked"),          # never enforced
        row("y", ["10.0.0.9"], "owes"),               # unknown state
        row("d1", ["10.0.0.5"], "blocked"), row("d2", ["10.0.0.5"], "blocked"),
    ]))
    assert h.nft.sets.get("blocked_v4_host") == {"10.0.0.5"}  # the first claim only
    assert h.nft.sets.get("blocked_v4_net", set()) == set()
    assert h.engine.rejections == {}  # counted once, by the snapshot


async def test_an_override_to_active_wins_over_early_restriction() -> None:
    h = Harness()
    h.engine.overrides["b"] = Override(id="o1", account="b", action="release", reason="test",
                                       created_at=NOW, expires_at=None, author="noc")
    await h.engine.handle(Restrictions([row("b", ["10.0.0.2"], "blocked")]))
    assert not h.nft.sets.get("blocked_v4_host")
