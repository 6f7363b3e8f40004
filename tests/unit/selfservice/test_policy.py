"""Eligibility, the window limiter and remembered request ids, with an injected clock."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from msgspec.structs import replace

from debtgate.config.selfservice import PromiseSection
from debtgate.model import State, Subscriber
from debtgate.selfservice.policy import (
    RecentRequests,
    WindowLimiter,
    promise_offer,
    promise_refusal,
)
from debtgate.view import PromiseOffer
from tests.unit.selfservice.helpers import Clock

SUB = Subscriber("A-1", ("10.0.0.1",), State.BLOCKED, Decimal("1250.00"), "RUB",
                 tariff="Home 100")
ON = PromiseSection(enabled=True, days=5, max_debt=Decimal(3000))


@pytest.mark.parametrize(("cfg", "sub", "state", "reason"), [
    (ON, SUB, State.BLOCKED, None),
    (PromiseSection(), SUB, State.BLOCKED, "disabled"),
    (ON, SUB, State.PAUSED, "state"),
    (ON, SUB, State.WARN, "state"),
    (ON.model_copy(update={"states": ["blocked", "warn"]}), SUB, State.WARN, None),
    (ON, replace(SUB, amount_due=Decimal(0)), State.BLOCKED, "no_debt"),
    (ON, replace(SUB, amount_due=Decimal("3000.01")), State.BLOCKED, "debt_too_high"),
    (ON, replace(SUB, amount_due=Decimal("3000")), State.BLOCKED, None),
    (PromiseSection(enabled=True), replace(SUB, amount_due=Decimal(10**6)), State.BLOCKED, None),
    (ON.model_copy(update={"tariffs": ["Office"]}), SUB, State.BLOCKED, "tariff"),
    (ON.model_copy(update={"tariffs": ["Office", "Home 100"]}), SUB, State.BLOCKED, None),
])
def test_promise_refusal(cfg, sub, state, reason):
    assert promise_refusal(cfg, sub, state) == reason


def test_offer_carries_the_conditions():
    offer = promise_offer(ON.model_copy(update={"per_period": 2, "period_days": 28}), SUB,
                          State.BLOCKED, "USD")
    assert offer == PromiseOffer(eligible=True, reason=None, days=5, per_period=2,
                                 period_days=28, max_debt=Decimal("3000"), currency="RUB",
                                 states=("blocked",), tariffs=())


def test_window_limiter_slides_with_the_clock():
    clock = Clock()
    lim = WindowLimiter(2, 60, clock=clock)
    assert lim.allow("a") and lim.allow("a")
    assert not lim.allow("a")
    assert lim.allow("b")
    clock.now += 59
    assert not lim.allow("a")
    clock.now += 1.5
    assert lim.allow("a")  # the first two left the window; refused ones never counted
    assert lim.allow("a")
    assert not lim.allow("a")


def test_window_limiter_is_bounded():
    lim = WindowLimiter(1, 60, max_keys=3, clock=Clock())
    for key in "abcde":
        assert lim.allow(key)
    assert len(lim) == 3
    assert lim.allow("a")  # forgotten, so allowed again


async def test_recent_requests_share_answers_and_expire():
    clock = Clock()
    recent = RecentRequests(ttl=100, size=10, clock=clock)
    item = recent.start("key", "A-1", "promise")
    assert recent.find("key") is item
    recent.finish("key", item, {"ok": True, "reason": None})
    assert await asyncio.wait_for(item.answer, 1) == {"ok": True, "reason": None}
    clock.now += 99
    assert recent.find("key") is item
    clock.now += 2
    assert recent.find("key") is None


async def test_transient_failures_are_forgotten():
    recent = RecentRequests(ttl=100, size=10, clock=Clock())
    item = recent.start("key", "A-1", "promise")
    recent.finish("key", item, {"ok": False, "reason": "billing_timeout"})
    assert recent.find("key") is None
    item = recent.start("key2", "A-1", "promise")
    recent.finish("key2", item, {"ok": False, "reason": "limit"})
    assert recent.find("key2") is item


async def test_recent_requests_are_bounded():
    recent = RecentRequests(ttl=100, size=3, clock=Clock())
    for n in range(5):
        recent.start(f"k{n}", "A", "promise")
    assert len(recent) == 3 and recent.find("k0") is None and recent.find("k4") is not None
