"""The mass-change guard: hold a sync that would newly restrict too many."""

from __future__ import annotations

import pytest

from debtgate.core.guard import GuardPolicy, hold
from debtgate.model import State


@pytest.mark.parametrize(("policy", "restricting", "total", "trips"), [
    (GuardPolicy(), 10, 100, False),          # min_count: small changes always pass
    (GuardPolicy(), 11, 100, True),           # 11 % > 5 %
    (GuardPolicy(), 50, 1000, False),         # exactly 5 %: not more than the share
    (GuardPolicy(), 51, 1000, True),
    (GuardPolicy(enabled=False), 900, 1000, False),
    (GuardPolicy(share=1.0, count=100), 101, 100_000, True),  # the count alone trips it
    (GuardPolicy(share=1.0, count=100), 100, 100_000, False),
    (GuardPolicy(min_count=0), 1, 0, False),  # nobody known yet: the share cannot trip
])
def test_trips(policy: GuardPolicy, restricting: int, total: int, trips: bool) -> None:
    assert policy.trips(restricting, total) is trips


def test_held_accounts_stay_where_they_were() -> None:
    after = {"a": State.BLOCKED, "b": State.BLOCKED, "c": State.DISABLED, "d": State.ACTIVE}
    before = {"a": State.ACTIVE, "b": State.WARN, "c": State.BLOCKED, "d": State.BLOCKED}
    out = hold(after, before, ["a", "b", "c", "new"])
    assert out["a"] is State.ACTIVE and out["b"] is State.WARN
    assert out["c"] is State.BLOCKED  # already restricted: stays as it was
    assert out["new"] is State.ACTIVE  # a newcomer stays unrestricted
    assert out["d"] is State.ACTIVE  # not held: releases always pass
    assert after["a"] is State.BLOCKED  # the input is not changed
