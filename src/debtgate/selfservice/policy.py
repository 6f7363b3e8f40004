"""The local half of self-service: eligibility, rate limits, remembered request ids.

Pure and clock-injected, so each rule is unit-tested without a daemon. The billing's
hook has the last word; these only keep obviously ineligible or abusive requests away
from it and make a double click one request.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from debtgate.config.selfservice import PromiseSection
from debtgate.model import State, Subscriber
from debtgate.view import PromiseOffer

TRANSIENT = frozenset({"billing_timeout", "billing_unavailable", "billing_error"})
"""Failures that say nothing about the request itself: its id may be retried."""


def promise_refusal(cfg: PromiseSection, sub: Subscriber, state: State) -> str | None:
    """Why ``sub`` (in effective ``state``) may not promise, as far as we know; None if it may."""
    if not cfg.enabled:
        return "disabled"
    if not cfg.allows(state):
        return "state"
    if sub.amount_due <= Decimal(0):
        return "no_debt"
    if cfg.max_debt is not None and sub.amount_due > cfg.max_debt:
        return "debt_too_high"
    if cfg.tariffs and sub.tariff not in cfg.tariffs:
        return "tariff"
    return None


def promise_offer(cfg: PromiseSection, sub: Subscriber, state: State,
                  currency: str) -> PromiseOffer:
    """The promised-payment offer of the portal's view, with the operator's conditions."""
    reason = promise_refusal(cfg, sub, state)
    return PromiseOffer(eligible=reason is None, reason=reason, days=cfg.days,
                        per_period=cfg.per_period, period_days=cfg.period_days,
                        max_debt=cfg.max_debt, currency=sub.currency or currency,
                        states=tuple(str(s) for s in cfg.states), tariffs=tuple(cfg.tariffs))


class WindowLimiter:
    """At most ``limit`` events per ``window`` seconds per key (sliding window, bounded table)."""

    def __init__(self, limit: int, window: float, *, max_keys: int = 50000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._max = max_keys
        self._clock = clock
        self._events: OrderedDict[str, deque[float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        """Count one event for ``key``; False (not counted) when the key is over its limit."""
        now = self._clock()
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = deque()
        while events and events[0] <= now - self.window:
            events.popleft()
        self._events.move_to_end(key)
        if len(events) >= self.limit:
            return False
        events.append(now)
        while len(self._events) > self._max:
            self._events.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._events)


@dataclass(slots=True)
class Remembered:
    account: str
    action: str
    answer: asyncio.Future[dict[str, Any]]
    at: float


class RecentRequests:
    """Request ids seen lately and their answers: a repeat (even while the first is still
    being decided) shares the first one's answer instead of asking the billing again."""

    def __init__(self, ttl: float, size: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._items: OrderedDict[str, Remembered] = OrderedDict()

    def _expire(self) -> None:
        limit = self._clock() - self._ttl
        while self._items:
            key, item = next(iter(self._items.items()))
            if item.at > limit and len(self._items) <= self._size:
                break
            del self._items[key]

    def find(self, key: str) -> Remembered | None:
        self._expire()
        return self._items.get(key)

    def start(self, key: str, account: str, action: str) -> Remembered:
        """Remember a new request; its ``answer`` is set with :meth:`finish`."""
        item = Remembered(account, action, asyncio.get_running_loop().create_future(),
                          self._clock())
        self._items[key] = item
        self._expire()
        return item

    def finish(self, key: str, item: Remembered, answer: dict[str, Any]) -> None:
        """Give the answer to everyone waiting; forget ids whose failure was transient."""
        if not item.answer.done():
            item.answer.set_result(answer)
        if answer.get("reason") in TRANSIENT and self._items.get(key) is item:
            del self._items[key]

    def __len__(self) -> int:
        return len(self._items)
