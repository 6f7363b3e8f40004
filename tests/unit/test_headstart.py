"""The head start of a cold snapshot: only hosts the snapshot surely restricts (pure),
and the engine enforcing them before it validates the rest."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime
from typing import Any

from debtgate.core.desired import build_desired
from debtgate.headstart import elements, head_plan, head_slices, head_start
from debtgate.model import State
from debtgate.overrides import Override
from debtgate.sources.base import Columns, Restrictions, Snapshot
from debtgate.sources.file import parse_text
from debtgate.validate import Policy, validate_rows
from hypothesis import given, settings

from .helpers import NOW, Harness, columns, row
from .test_bulk_validate import EXTRAS, rows

AT = datetime(2026, 11, 22, tzinfo=UTC)


def desired_of(items: list[dict[str, Any]], policy: Policy) -> dict[str, set[str]]:
    return build_desired(validate_rows(items, policy).subscribers.values())


def assert_sound(items: list[dict[str, Any]], cols: Columns, policy: Policy) -> None:
    """Every host of the head start is where full validation puts it."""
    hosts, states = head_start(cols, policy)
    want = desired_of(items, policy)
    for name, got in elements(hosts, states).items():
        assert got <= want[name], (name, got - want[name])


@settings(max_examples=400, deadline=None)
@given(rows)
def test_head_start_only_takes_what_validation_enforces(items: list[dict[str, Any]]) -> None:
    policy = Policy()
    assert_sound(items, columns(items, EXTRAS), policy)
    assert_sound(items, columns(items, EXTRAS, active_extras=False), policy)
    served = Policy(serves=(ipaddress.ip_network("10.0.0.0/30"),))
    assert_sound(items, columns(items, EXTRAS), served)


@settings(max_examples=300, deadline=None)
@given(rows)
def test_head_start_of_a_decoded_file_is_sound(items: list[dict[str, Any]]) -> None:
    parsed = parse_text(json.dumps(items).encode(), "json")
    if isinstance(parsed, Columns):  # a file with odd types is validated row by row
        assert_sound(items, parsed, Policy())


def test_plain_restricting_rows_are_taken_and_doubtful_ones_left() -> None:
    items = [
        row("a", "10.0.0.1", "blocked", amount_due="500", name="Ann"),
        row("b", "10.0.0.2", "paused"),
        row("c", "10.0.0.3", "warn", block_at="2026-12-01"),
        row("d", "10.0.0.4", "disabled"),
        row("act", "10.0.0.5"),                                   # active: nothing to do
        row("dup", "10.0.0.6", "blocked"), row("dup", "10.0.0.7", "active"),  # account twice
        row("x", "10.0.0.8", "blocked"), row("y", "10.0.0.8"),    # host claimed twice
        row("in", "10.0.9.9", "blocked"), row("net", "10.0.9.0/24"),  # inside a prefix
        row("bad", "10.0.0.10", "blocked", amount_due="lots"),   # rejected
        row("ses", "10.0.0.11", "blocked", nas="bras1"),         # a session: row path
        row("v6", "2001:db8::1", "blocked"),                      # not an IPv4 host
        row("odd", "10.0.0.12", "owing"),                         # unknown state
        row("skip", "10.0.0.13", "blocked"),                      # an override
    ]
    hosts, states = head_start(columns(items, EXTRAS), Policy(), skip={"skip"})
    assert dict(zip(hosts, states, strict=True)) == {
        "10.0.0.1": State.BLOCKED, "10.0.0.2": State.PAUSED, "10.0.0.3": State.WARN,
        "10.0.0.4": State.DISABLED}
    assert elements(hosts, states) == {"blocked_v4_host": {"10.0.0.1"},
                                       "locked_v4_host": {"10.0.0.2", "10.0.0.4"},
                                       "warn_v4_host": {"10.0.0.3"}}
    served = Policy(serves=(ipaddress.ip_network("10.0.0.0/31"),))
    assert head_start(columns(items, EXTRAS), served)[0] == ["10.0.0.1"]


def test_slices_add_up_to_the_whole() -> None:
    items = [row(f"A{i}", f"10.1.{i // 200}.{i % 200 + 1}",
                 ("blocked", "active", "warn")[i % 3], amount_due=str(i))
             for i in range(1000)]
    items[500] = row("A1", "10.9.9.9", "blocked")  # A1 twice: neither is taken
    cols = columns(items, EXTRAS)
    whole = head_start(cols, Policy())
    for size, first in ((1, None), (7, None), (100, None), (5000, None), (100, 3),
                        (len(cols), len(cols))):
        slices = list(head_slices(cols, Policy(), size=size, first=first))
        if first == len(cols):
            assert len(slices) == 1  # one slice, one transaction (a part of a change)
        joined: tuple[list[str], list[State]] = ([], [])
        for hosts, states, taken in slices:
            assert [cols.addresses[i] for i in taken] == hosts
            joined[0].extend(hosts)
            joined[1].extend(states)
        assert joined == whole
    assert "10.1.0.2" not in whole[0] and "10.9.9.9" not in whole[0]
    assert len(whole[0]) == len([i for i in items if i["state"] != "active"]) - 1


def test_head_plan_adds_only_what_is_missing_and_cuts_it() -> None:
    plan = head_plan(["10.0.0.1", "10.0.0.2", "10.0.0.3"],
                     [State.BLOCKED, State.BLOCKED, State.PAUSED],
                     {"blocked_v4_host": {"10.0.0.1"}}, AT)
    assert plan.adds("blocked_v4_host") == ("10.0.0.2",)
    assert plan.adds("locked_v4_host") == ("10.0.0.3",)
    assert not any(d.delete for d in plan.changes)
    assert sorted(plan.conntrack) == ["10.0.0.2", "10.0.0.3"]


def big_snapshot(n: int = 3000) -> list[dict[str, Any]]:
    return [row(f"A{i}", f"10.2.{i // 250}.{i % 250 + 1}",
                ("blocked", "active", "active", "paused")[i % 4], amount_due="100")
            for i in range(n)]


async def test_a_cold_snapshot_enforces_its_head_start_first() -> None:
    items = big_snapshot()
    items.append(row("net", "10.3.0.0/24", "blocked"))  # a prefix: the snapshot's own apply
    h = Harness()
    await h.engine.handle(Snapshot(columns(items, EXTRAS)))
    restricting = [i for i in items if i["state"] != "active"]
    head = h.nft.plans[:-1]
    assert head and all(not d.delete for p in head for d in p.changes)
    assert sum(p.writes for p in head) == len(restricting) - 1
    assert h.engine.stats.early_restricted == len(restricting) - 1
    last = h.nft.plans[-1]  # the snapshot's transaction finds the head start committed
    assert last.writes == 1 and last.adds("blocked_v4_net") == ("10.3.0.0/24",)
    ref = Harness()
    await ref.snapshot(*items)  # rows, not columns: no head start
    assert len(ref.nft.plans) == 1 and ref.engine.stats.early_restricted == 0
    assert h.nft.sets == ref.nft.sets
    assert dict(h.engine.placed) == dict(ref.engine.placed)


async def test_no_head_start_with_a_baseline_or_for_an_override() -> None:
    items = big_snapshot()
    h = Harness()
    h.engine.overrides["A0"] = Override(id="o1", account="A0", action="release",
                                        reason="test", created_at=NOW, expires_at=None,
                                        author="noc")
    await h.engine.handle(Snapshot(columns(items, EXTRAS)))
    assert "10.2.0.1" not in h.nft.sets["blocked_v4_host"]  # A0 released by the override
    assert h.engine.stats.early_restricted > 0
    before, plans = h.engine.stats.early_restricted, len(h.nft.plans)
    items[1]["state"] = "blocked"
    await h.engine.handle(Snapshot(columns(items, EXTRAS)))
    assert h.engine.stats.early_restricted == before  # a baseline: the snapshot decides
    assert len(h.nft.plans) == plans + 1


async def test_a_refused_head_start_leaves_it_to_the_snapshot() -> None:
    h = Harness()
    h.nft.fail_next = True
    await h.engine.handle(Snapshot(columns(big_snapshot(), EXTRAS)))
    assert h.engine.stats.early_restricted == 0 and h.engine.stats.apply_errors == 1
    assert len(h.nft.sets["blocked_v4_host"]) == 750
    assert len(h.nft.plans) == 1  # the snapshot's own transaction did it all


async def test_restrictions_in_columns_take_the_head_start_and_validate_the_rest() -> None:
    items = [row(f"B{i}", f"10.4.{i // 250}.{i % 250 + 1}", "blocked") for i in range(2000)]
    items += [row("v6", ["2001:db8::7"], "paused"), row("net", "10.5.0.0/24", "blocked"),
              row("ses", "10.6.0.1", "blocked", nas="bras1", session_id="s1"),
              row("bad", "10.6.0.2", "blocked", amount_due="lots")]
    h = Harness()
    await h.engine.handle(Restrictions(columns(items, EXTRAS, active_extras=False)))
    assert len(h.nft.sets["blocked_v4_host"]) == 2001  # 2,000 plain + the session's host
    assert "10.6.0.2" not in h.nft.sets["blocked_v4_host"]
    assert h.nft.sets["locked_v6_host"] == {"2001:db8::7"}
    assert h.nft.sets["blocked_v4_net"] == {"10.5.0.0/24"}
    assert h.engine.stats.early_restricted == 2003
    head, rest = h.nft.plans[:-1], h.nft.plans[-1]
    assert sum(p.writes for p in head) == 2000 and rest.writes == 3
    assert h.engine.rejections == {}  # counted once, by the snapshot
