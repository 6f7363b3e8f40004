"""SelfService against a fake engine and a scripted hook: idempotency, limits, audit."""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal

from debtgate.config.reloads import Reloads
from debtgate.selfservice.hooks import HookAnswer, HookFailed
from debtgate.selfservice.service import SelfService
from tests.unit.selfservice.helpers import (
    ACTIVE_IP,
    BLOCKED_IP,
    KEY1,
    KEY2,
    OTHER_IP,
    PAUSED_IP,
    Clock,
    FakeEngine,
    ScriptedHook,
    config,
)


def make(*answers, clock=None, **promise):
    hook = ScriptedHook(*answers)
    service = SelfService(config(**promise), hook=hook, clock=clock or Clock())
    engine = FakeEngine()
    service.attach(engine, engine)
    return service, hook, engine


async def test_offers():
    service, _, engine = make()
    sub = engine.inventory.find(BLOCKED_IP)
    promise, can_resume = service.offers(sub, sub.state)
    assert promise.eligible and promise.days == 5
    assert promise.max_debt == Decimal("3000")
    assert not can_resume
    paused = engine.inventory.find(PAUSED_IP)
    promise, can_resume = service.offers(paused, paused.state)
    assert can_resume is True
    assert promise.eligible is False and promise.reason == "state"
    assert engine.selfservice is service


async def test_promise_asks_the_billing_and_audits(caplog):
    service, hook, _ = make()
    with caplog.at_level(logging.INFO):
        answer = await service.promise(BLOCKED_IP, KEY1)
    assert answer == {"ok": True, "reason": None, "action": "promise", "days": 5}
    assert hook.calls == [("promise", "A-blocked", KEY1, 5)]
    audits = [json.loads(r.getMessage()) for r in caplog.records if r.name == "debtgate.audit"]
    assert audits == [{"audit": "selfservice_promise", "account": "A-blocked",
                       "address": BLOCKED_IP, "request_id": KEY1, "ok": True, "reason": None,
                       "days": 5}]
    assert all("A-blocked" in r.getMessage() for r in caplog.records
               if r.name == "debtgate.selfservice.service")


async def test_unknown_address_is_none():
    service, hook, _ = make()
    assert await service.promise(OTHER_IP, KEY1) is None
    assert hook.calls == []


async def test_double_click_is_one_request():
    service, hook, _ = make()
    hook.gate = asyncio.Event()
    first = asyncio.ensure_future(service.promise(BLOCKED_IP, KEY1))
    second = asyncio.ensure_future(service.promise("2001:db8::11", KEY1))
    await asyncio.sleep(0.01)
    hook.gate.set()
    assert await first == await second
    assert len(hook.calls) == 1
    assert await service.promise(BLOCKED_IP, KEY1) == await first  # later repeat too
    assert len(hook.calls) == 1


async def test_cancelled_portal_request_does_not_cancel_the_billing_call():
    service, hook, _ = make()
    hook.gate = asyncio.Event()
    first = asyncio.ensure_future(service.promise(BLOCKED_IP, KEY1))
    await asyncio.sleep(0.01)
    first.cancel()
    hook.gate.set()
    assert (await service.promise(BLOCKED_IP, KEY1))["ok"] is True
    assert len(hook.calls) == 1


async def test_key_reused_for_another_account_is_refused():
    service, hook, _ = make()
    await service.promise(BLOCKED_IP, KEY1)
    assert (await service.resume(PAUSED_IP, KEY1))["reason"] == "bad_request"
    assert len(hook.calls) == 1


async def test_local_refusals_do_not_reach_the_billing():
    service, hook, _ = make(max_debt="100")
    assert (await service.promise(BLOCKED_IP, KEY1))["reason"] == "debt_too_high"
    assert (await service.promise(ACTIVE_IP, KEY2))["reason"] == "state"
    assert (await service.resume(ACTIVE_IP, "r" * 20))["reason"] == "state"
    assert hook.calls == []


async def test_billing_refusal_and_failures():
    service, hook, _ = make(HookAnswer(False, "limit"),
                            HookFailed("billing_timeout", "no answer in 5 s"),
                            HookAnswer(True))
    assert (await service.promise(BLOCKED_IP, KEY1))["reason"] == "limit"
    assert (await service.promise(BLOCKED_IP, KEY2))["reason"] == "billing_timeout"
    # A transient failure is not remembered: the same key may be retried.
    assert (await service.promise(BLOCKED_IP, KEY2))["ok"] is True
    assert [c[2] for c in hook.calls] == [KEY1, KEY2, KEY2]


async def test_rate_limits_per_address_and_per_account():
    clock = Clock()
    service, hook, _ = make(HookAnswer(False, "limit"), clock=clock)
    keys = [f"key-{n:016d}" for n in range(10)]
    got = [(await service.promise(BLOCKED_IP, k))["reason"] for k in keys[:4]]
    assert got == ["limit", "limit", "limit", "rate_limited"]  # 3 per address
    # Another address of the same account: the account allows 4 in all.
    assert (await service.promise("2001:db8::11", keys[4]))["reason"] == "limit"
    assert (await service.promise("2001:db8::11", keys[5]))["reason"] == "rate_limited"
    assert len(hook.calls) == 4
    clock.now += 61
    assert (await service.promise(BLOCKED_IP, keys[6]))["reason"] == "limit"


async def test_reload_replaces_the_hook():
    service, hook, engine = make()
    old = service.cfg
    new_config = config(days=3)
    reloads = Reloads(config())
    service.watch(reloads)
    assert await reloads.reload(config()) == []
    assert service.hook is hook and not hook.closed
    assert await reloads.reload(new_config) == ["self-service (its hook replaced)"]
    assert hook.closed and service.cfg != old and service.cfg.promise.days == 3
