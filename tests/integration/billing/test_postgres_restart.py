"""The billing server stops and comes back: reconnect, resnapshot, nothing lost or flapped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from debtgate.billing.base import Snapshot
from debtgate.billing.postgres import PostgresSource
from debtgate_lab.pglab import free_port
from tests.pgserver import PgServer, reference_billing

from .conftest import Recorder, by_account, running, settings

pytestmark = pytest.mark.postgres


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    with reference_billing() as server:
        yield server


async def test_restart_mid_run_loses_nothing(own_server: PgServer, tmp_path) -> None:
    server = own_server
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(server.dsn + "\n")
    rec = Recorder()
    source = PostgresSource(settings(None, dsn_file=dsn_file))
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.connected, what="snapshot")
        await asyncio.to_thread(server.stop)
        await rec.wait(lambda: not source.health.connected, what="disconnect noticed")
        assert source.health.last_error
        # Back on another port the source does not know: changes made now are never
        # notified to it (it is not listening).
        real = server.port
        server.port = free_port()
        await asyncio.to_thread(server._pg_ctl, "start", "-o", f"-p {server.port}")  # noqa: SLF001
        server.psql("UPDATE accounts SET state = 'blocked' WHERE id = 'A-active';"
                    "INSERT INTO payments (account_id, amount) VALUES ('A-blocked', 5000);"
                    "DELETE FROM addresses WHERE account_id = 'A-paused';")
        await asyncio.to_thread(server.stop)
        server.port = real
        await asyncio.sleep(0.3)
        # Nothing emitted while the billing was away (the start: the snapshot).
        assert [type(e) for e in rec.events] == [Snapshot]
        started = time.monotonic()
        await asyncio.to_thread(server._pg_ctl, "start")  # noqa: SLF001
        delta = (await rec.wait(lambda: rec.deltas, timeout=10, what="resync delta"))[0]
        assert time.monotonic() - started < 5
        rows = by_account(delta.rows)
        assert set(rows) == {"A-active", "A-blocked"} and list(delta.gone) == ["A-paused"]
        assert rows["A-active"]["state"] == "blocked" and rows["A-blocked"]["state"] == "active"
        # No intermediate (empty or partial) snapshot: only the first one.
        assert [type(e) for e in rec.events].count(Snapshot) == 1
        await rec.wait(lambda: source.health.connected, what="reconnected")
        assert source.health.last_error is None
        # And the feed works again.
        server.psql("UPDATE accounts SET state = 'paused' WHERE id = 'A-warn'")
        delta = (await rec.wait(lambda: rec.deltas[1:], what="live delta"))[0]
        assert [r["account"] for r in delta.rows] == ["A-warn"]
