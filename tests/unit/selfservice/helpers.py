"""A fake engine, a scripted hook and a clock for self-service tests."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from debtgate.config import Config, parse_config
from debtgate.enforce.inventory import Inventory
from debtgate.model import State, Subscriber
from debtgate.selfservice.hooks import HookAnswer, HookFailed

BLOCKED_IP, PAUSED_IP, ACTIVE_IP, OTHER_IP = "100.64.1.11", "100.64.1.13", "100.64.1.10", "9.9.9.9"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeEngine:
    def __init__(self) -> None:
        self.inventory = Inventory()
        for sub in (
            Subscriber("A-blocked", (BLOCKED_IP, "2001:db8::11"), State.BLOCKED,
                       Decimal("1250.00"), "RUB", tariff="Home 100"),
            Subscriber("A-paused", (PAUSED_IP,), State.PAUSED),
            Subscriber("A-active", (ACTIVE_IP,), State.ACTIVE),
        ):
            self.inventory.put(sub)
        self.selfservice: Any = None
        self.errors = 0

    def state_of(self, sub: Subscriber) -> State:
        return sub.state


class ScriptedHook:
    """Answers from a list (HookAnswer or HookFailed); counts calls; may wait on a gate."""

    def __init__(self, *answers: HookAnswer | HookFailed) -> None:
        self.answers = list(answers) or [HookAnswer(True)]
        self.calls: list[tuple[str, str, str, int]] = []
        self.gate: asyncio.Event | None = None
        self.closed = False

    async def call(self, action: str, account: str, key: str, *, days: int = 0,
                   address: str = "") -> HookAnswer:
        self.calls.append((action, account, key, days))
        if self.gate is not None:
            await self.gate.wait()
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, HookFailed):
            raise answer
        return answer

    async def close(self) -> None:
        self.closed = True


def config(**promise: Any) -> Config:
    return parse_config({"selfservice": {
        "promise": {"enabled": True, "days": 5, "max_debt": "3000", **promise},
        "resume": {"enabled": True},
        "hook": {"kind": "http", "url": "http://127.0.0.1:9/", "secret_file": "/nonexistent"},
        "limits": {"per_address": 3, "per_account": 4, "window": 60},
    }})


KEY1, KEY2 = "k" * 20, "j" * 20
