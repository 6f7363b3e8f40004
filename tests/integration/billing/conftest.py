"""A real PostgreSQL with the reference billing schema, and a source feeding a recorder."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from debtgate.billing.base import Delta, Event, Snapshot
from debtgate.billing.postgres import PostgresSource, PostgresSourceSection
from tests.pgserver import PgServer, reference_billing

pytestmark = pytest.mark.postgres
_names = itertools.count()


@pytest.fixture(scope="session")
def template_server() -> Iterator[PgServer]:
    """One server; its database ``billing`` holds the schema and sample rows (a template)."""
    with reference_billing() as server:
        yield server


class Billing:
    def __init__(self, server: PgServer, database: str) -> None:
        self.server = server
        self.database = database
        self.dsn = server.dsn_for(database)

    def sql(self, text: str) -> str:
        return self.server.psql(text, "-A", "-t", database=self.database)


@pytest.fixture
def billing(template_server: PgServer) -> Billing:
    """A fresh copy of the billing for one test."""
    name = f"t{next(_names)}"
    template_server.create_database(name, template="billing")
    return Billing(template_server, name)


class Recorder:
    """A sink that records every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.changed = asyncio.Event()

    async def __call__(self, event: Event) -> None:
        self.events.append(event)
        self.changed.set()

    @property
    def snapshots(self) -> list[Snapshot]:
        return [e for e in self.events if isinstance(e, Snapshot)]

    @property
    def deltas(self) -> list[Delta]:
        return [e for e in self.events if isinstance(e, Delta)]

    async def wait(self, pred: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            value = pred()
            if value:
                return value
            if loop.time() > end:
                raise AssertionError(f"timed out waiting for {what or pred}: {self.events}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 0.05)


def settings(dsn: str | None, **kw: Any) -> PostgresSourceSection:
    base: dict[str, Any] = {"coalesce_ms": 50, "heartbeat_interval": 0.2,
                            "reconnect_min": 0.1, "reconnect_max": 0.5, "connect_timeout": 2}
    if dsn is not None:
        base["dsn"] = dsn
    return PostgresSourceSection.model_validate({**base, **kw})


@contextlib.asynccontextmanager
async def running(source: PostgresSource, sink: Recorder) -> AsyncIterator[PostgresSource]:
    task = asyncio.create_task(source.run(sink))
    try:
        yield source
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def by_account(rows: Any) -> dict[str, Any]:
    return {r["account"]: r for r in rows}
