"""Events in, plans out: drive the engine with fake kernel adapters (pure logic only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from debtgate.billing.base import Columns, Delta, Snapshot
from debtgate.billing.rows import Policy
from debtgate.core.reconcile import Plan, commit
from debtgate.enforce.engine import Engine
from debtgate.errors import ApplyError

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class FakeNft:
    """Records plans; holds sets like the kernel would."""

    def __init__(self) -> None:
        self.sets: dict[str, set[str]] = {}
        self.plans: list[Plan] = []
        self.timed: list[tuple[str, list[str], int]] = []
        self.fail_next = False

    async def apply(self, plan: Plan) -> None:
        if self.fail_next:
            self.fail_next = False
            raise ApplyError("nft: simulated failure")
        if not plan.empty:
            self.plans.append(plan)
            commit(self.sets, plan)

    async def read_sets(self, names: Any) -> dict[str, set[str]]:
        return {n: set(self.sets.get(n, set())) for n in names}

    async def add_timed(self, name: str, elements: Any, seconds: int) -> None:
        self.timed.append((name, list(elements), seconds))

    async def delete_elements(self, name: str, elements: Any) -> None:
        self.sets.get(name, set()).difference_update(elements)


class FakeCutter:
    def __init__(self) -> None:
        self.cut_calls: list[list[str]] = []

    async def cut(self, elements: Any) -> int:
        self.cut_calls.append(list(elements))
        return len(elements)


def row(account: str, addresses: Any, state: str = "active", **extra: Any) -> dict[str, Any]:
    return {"account": account, "addresses": addresses, "state": state, **extra}


class Harness:
    def __init__(self, policy: Policy | None = None) -> None:
        self.nft = FakeNft()
        self.cutter = FakeCutter()
        self.engine = Engine(self.nft, self.cutter, policy or Policy(), clock=lambda: NOW)  # type: ignore[arg-type]
        self.transitions: list[Any] = []
        self.engine.announcer.listeners.append(lambda change, sub: self.transitions.append(change))

    async def snapshot(self, *rows: Any) -> Plan | None:
        before = len(self.nft.plans)
        await self.engine.handle(Snapshot(list(rows)))
        return self.nft.plans[-1] if len(self.nft.plans) > before else None

    async def delta(self, *rows: Any, gone: tuple[str, ...] = ()) -> Plan | None:
        before = len(self.nft.plans)
        await self.engine.handle(Delta(list(rows), gone))
        return self.nft.plans[-1] if len(self.nft.plans) > before else None


def columns(rows: list[dict[str, Any]], extras: tuple[str, ...],
            active_extras: bool = True) -> Columns:
    """Rows in columns as a source hands them over: extras only for the rows that carry
    some (``active_extras=False``: never for active rows, like the PostgreSQL snapshot)."""
    cols = Columns(extras)
    for i, r in enumerate(rows):
        cols.account.append(r["account"])
        cols.addresses.append(r["addresses"])
        cols.state.append(r["state"])
        cols.marks.append(None)
        extra = tuple(r.get(n) for n in extras)
        if any(v is not None for v in extra) and (active_extras or r["state"] != "active"):
            cols.extra[i] = extra
    return cols
