"""The PostgreSQL feed against a real server: snapshot, deltas, coalescing, resync, errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from debtgate.billing import pgsync
from debtgate.billing.base import Delta, Snapshot
from debtgate.billing.postgres import PostgresSource
from debtgate.errors import SourceError

from .conftest import Billing, Recorder, by_account, running, settings

pytestmark = pytest.mark.postgres


async def test_snapshot_then_update_blocks_and_payment_unblocks(billing: Billing) -> None:
    rec = Recorder()
    source = PostgresSource(settings(billing.dsn))
    async with running(source, rec):
        snap = await rec.wait(lambda: rec.snapshots, what="snapshot")
        rows = by_account(snap[0].rows)
        assert set(rows) == {"A-active", "A-blocked", "A-warn", "A-paused"}
        assert rows["A-blocked"]["addresses"] == "100.64.1.11 2001:db8:100:1::11"
        assert rows["A-blocked"]["amount_due"] == "1250.00"  # numeric as text
        await rec.wait(lambda: source.health.connected, what="connected")

        billing.sql("UPDATE accounts SET state = 'blocked', balance = -10 WHERE id = 'A-active'")
        delta = (await rec.wait(lambda: rec.deltas, what="block delta"))[0]
        assert [r["account"] for r in delta.rows] == ["A-active"] and not delta.gone
        assert delta.rows[0]["state"] == "blocked" and delta.rows[0]["amount_due"] == "10.00"

        billing.sql("INSERT INTO payments (account_id, amount) VALUES ('A-blocked', 1250)")
        delta = (await rec.wait(lambda: rec.deltas[1:], what="payment delta"))[0]
        assert [r["account"] for r in delta.rows] == ["A-blocked"]
        assert delta.rows[0]["state"] == "active" and delta.rows[0]["since"] is None

        billing.sql("DELETE FROM addresses WHERE account_id = 'A-paused'")
        delta = (await rec.wait(lambda: rec.deltas[2:], what="gone delta"))[0]
        assert delta.rows == [] and list(delta.gone) == ["A-paused"]
        assert len(rec.snapshots) == 1
        assert source.health.last_event is not None and source.health.lag is not None


def add_active(billing: Billing, prefix: str, count: int, first: str) -> None:
    """``count`` active accounts ``<prefix>1``... holding the hosts after ``first``
    (no notification: the source's snapshot finds them)."""
    billing.sql(f"""
SET session_replication_role = replica;
INSERT INTO accounts (id, state, address_list)
SELECT '{prefix}' || i, 'active', host('{first}'::inet + i) FROM generate_series(1, {count}) i;
""")


@contextlib.asynccontextmanager
async def s_blocked(billing: Billing, **options: Any
                    ) -> AsyncIterator[tuple[Recorder, PostgresSource]]:
    """A storm: 3,000 active S accounts, then one UPDATE blocks them all; inside, the
    source is running and its Delta of the storm has arrived."""
    add_active(billing, "S", 3000, "100.66.0.0")
    rec = Recorder()
    source = PostgresSource(settings(billing.dsn, coalesce_ms=100, **options))
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.connected, what="snapshot")
        billing.sql("UPDATE accounts SET state = 'blocked' WHERE id LIKE 'S%'")
        await rec.wait(lambda: rec.deltas, what="storm delta")
        yield rec, source


async def test_burst_of_10000_ids_is_one_delta(billing: Billing) -> None:
    add_active(billing, "B", 10000, "100.65.0.0")
    rec = Recorder()
    source = PostgresSource(settings(billing.dsn, coalesce_ms=200))
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.connected, what="snapshot")
        assert len(rec.snapshots[0].rows) == 10004
        # 10,000 separate notifications in one transaction, one per account.
        billing.sql("UPDATE accounts SET state = 'blocked' WHERE id LIKE 'B%';"
                    "SELECT pg_notify('debtgate', 'B' || i) FROM generate_series(1, 10000) i")
        await rec.wait(lambda: sum(len(d.rows) for d in rec.deltas) >= 10000, what="burst")
        # One change, but for the last few notifications, which may come after its ids
        # were taken: those are small changes of their own, over the lane.
        big = max(rec.deltas, key=lambda d: len(d.rows))
        assert len(big.rows) >= 9_900 and len(rec.deltas) <= 3
        assert {r["state"] for d in rec.deltas for r in d.rows} == {"blocked"}
        assert source.counters["notifications"] >= 10000


async def test_a_storm_whose_query_returns_rows_not_asked_holds_each_account_once(
        billing: Billing) -> None:
    """An accounts query that also returns a row nobody asked for (here: S1 always):
    the Delta has every asked row once."""
    query = ("SELECT * FROM debtgate_subscribers WHERE account = ANY($1::text[]) "
             "OR account = 'S1'")
    async with s_blocked(billing, accounts_query=query) as (rec, _):
        accounts = [r["account"] for r in rec.deltas[0].rows]
        assert sorted(accounts) == sorted(f"S{i}" for i in range(1, 3001))


@pytest.mark.parametrize(("lane", "at_once"), [(True, False), (False, False), (True, True)])
async def test_a_payment_is_read_over_the_lane_while_a_storm_is_fetched(
        billing: Billing, monkeypatch: pytest.MonkeyPatch, lane: bool, at_once: bool) -> None:
    """The main connection fetches a storm (slowed down here); a payment committed
    meanwhile is fetched over the second connection and handed over first, read
    later than the storm (its ``seq``). Without the lane it waits for the storm.
    ``at_once``: committed right after the storm, before the storm's ids are taken:
    still a change of its own, over the lane. (A notification within 2 ms of others is
    taken as part of their transaction.)"""
    copy_accounts = pgsync.copy_accounts
    fetching = asyncio.Event()

    async def slow(*args: Any, **kwargs: Any) -> Any:
        fetching.set()
        await asyncio.sleep(1.0)
        return await copy_accounts(*args, **kwargs)

    monkeypatch.setattr(pgsync, "copy_accounts", slow)
    add_active(billing, "S", 3000, "100.66.0.0")
    rec = Recorder()
    source = PostgresSource(settings(billing.dsn, coalesce_ms=20, lane=lane))
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.connected, what="snapshot")
        assert source.health.extra["lane"] is lane
        storm = "UPDATE accounts SET state = 'blocked' WHERE id LIKE 'S%'"
        pay = "INSERT INTO payments (account_id, amount) VALUES ('A-blocked', 1250)"
        if at_once:  # before the storm's ids are taken (its split list is waited for)
            billing.sql(storm)
            billing.sql(pay)
        else:
            billing.sql(storm)
            await asyncio.wait_for(fetching.wait(), 5)
            billing.sql(pay)
        await rec.wait(lambda: len(rec.deltas) == 2, what="both deltas")
        storm, = (d for d in rec.deltas if len(d.rows) == 3000)
        pay, = (d for d in rec.deltas if len(d.rows) == 1)
        assert pay.rows[0]["account"] == "A-blocked" and pay.rows[0]["state"] == "active"
        first = rec.events.index(pay) < rec.events.index(storm)
        assert first is lane
        # Read after the storm began (or, at once, before the storm's ids were taken:
        # then read first, and the storm's later read holds the newer rows anyway).
        assert (pay.seq > storm.seq) is not at_once
        assert source.counters["lane_deltas"] == (1 if lane else 0)


async def test_a_dead_lane_ends_the_session_and_both_connections_come_back(
        billing: Billing) -> None:
    rec = Recorder()
    source = PostgresSource(settings(billing.dsn))
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.connected, what="snapshot")
        names = billing.sql("SELECT application_name FROM pg_stat_activity "
                            "WHERE datname = current_database() ORDER BY 1")
        assert {"debtgate", "debtgate-lane"} <= set(names.split())
        billing.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                    "datname = current_database() AND application_name = 'debtgate-lane'")
        await rec.wait(lambda: source.counters["reconnects"] >= 1 and source.health.connected
                       and source.health.extra.get("lane"), what="reconnected", timeout=8)
        billing.sql("UPDATE accounts SET state = 'blocked' WHERE id = 'A-active'")
        delta = (await rec.wait(lambda: rec.deltas, what="delta after reconnect"))[0]
        assert [r["account"] for r in delta.rows] == ["A-active"]
        assert isinstance(delta, Delta)


async def test_empty_payload_resyncs_only_what_changed(billing: Billing) -> None:
    rec = Recorder()
    source = PostgresSource(settings(billing.dsn))
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.connected, what="snapshot")
        # Changes the triggers do not see (a lost notification)...
        billing.sql("SET session_replication_role = replica;"
                    "UPDATE accounts SET state = 'warn' WHERE id = 'A-active';"
                    "UPDATE accounts SET address_list = NULL WHERE id = 'A-paused'")
        billing.sql("NOTIFY debtgate")  # ... are found by a resync.
        delta = (await rec.wait(lambda: rec.deltas, what="resync delta"))[0]
        assert [r["account"] for r in delta.rows] == ["A-active"]
        assert list(delta.gone) == ["A-paused"]
        # A no-op resync emits nothing.
        source.request_resync()
        await rec.wait(lambda: source.health.extra.get("last_resync_seconds") is not None)
        count = len(rec.events)
        source.request_resync()
        await rec.wait(lambda: source._resync is False)  # noqa: SLF001
        await rec.wait(lambda: source.health.connected)
        assert len(rec.events) == count
        # A full resync sends a complete Snapshot again.
        source.request_resync(full=True)
        await rec.wait(lambda: len(rec.snapshots) == 2, what="full snapshot")
        assert set(by_account(rec.snapshots[1].rows)) == {"A-active", "A-blocked", "A-warn"}


async def test_missing_and_mistyped_columns_are_clear_errors(billing: Billing) -> None:
    for query, message in [
        ("SELECT id AS account, state FROM accounts", "no column addresses"),
        ("SELECT id AS account, 42 AS addresses, state FROM accounts",
         "column addresses is int4"),
        ("SELECT nonsense FROM accounts", "failed"),
    ]:
        rec = Recorder()
        source = PostgresSource(settings(billing.dsn, snapshot_query=query))
        async with running(source, rec):
            await rec.wait(lambda: source.health.last_error, what="error")  # noqa: B023
            assert message in source.health.last_error
            assert rec.events == [] and not source.health.connected


async def test_broken_view_keeps_last_good_state(billing: Billing) -> None:
    rec = Recorder()
    source = PostgresSource(settings(billing.dsn))
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.connected, what="snapshot")
        billing.sql("BEGIN; ALTER VIEW debtgate_subscribers RENAME TO good;"
                    "CREATE VIEW debtgate_subscribers AS SELECT id AS account,"
                    " balance AS addresses, state FROM accounts; COMMIT; NOTIFY debtgate")
        await rec.wait(lambda: source.health.last_error, what="error")
        assert "column addresses is numeric" in source.health.last_error
        # Nothing emitted after the snapshot: the engine keeps its state.
        assert [type(e) for e in rec.events] == [Snapshot]
        billing.sql("BEGIN; DROP VIEW debtgate_subscribers;"
                    "ALTER VIEW good RENAME TO debtgate_subscribers; COMMIT;"
                    "UPDATE accounts SET state = 'blocked' WHERE id = 'A-active'")
        delta = (await rec.wait(lambda: rec.deltas, what="recovered", timeout=8))[0]
        assert [r["account"] for r in delta.rows] == ["A-active"]
        assert len(rec.snapshots) == 1


async def test_a_storm_whose_whole_rows_copy_fails_fetches_them_row_by_row(
        billing: Billing, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The COPY of a storm's rows fails on the server: the rows come row by row, the
    source stays connected."""
    failed: list[str] = []

    async def failing(conn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            await conn.execute("SELECT 1 / 0")  # a real error: the transaction is aborted
        except asyncpg.PostgresError as exc:
            failed.append(str(exc))
            raise SourceError(f"postgres: the accounts query failed: {exc}") from None

    monkeypatch.setattr(pgsync, "copy_accounts", failing)
    async with s_blocked(billing) as (rec, source):
        assert failed and source.health.connected
        rows = by_account(rec.deltas[0].rows)
        assert len(rows) == 3000 and {r["state"] for r in rows.values()} == {"blocked"}
        assert source.counters["reconnects"] == 0 and source.health.connected
    assert "fetching them row by row" in caplog.text


async def test_a_first_start_gets_the_restricted_rows_before_the_snapshot(
        billing: Billing) -> None:
    rec = Recorder()
    source = PostgresSource(settings(billing.dsn))
    source.prefer_restricted()  # the kernel enforces nothing yet
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.listening, what="snapshot")
        head, snap = rec.events[:2]
        assert isinstance(head, Delta) and isinstance(snap, Snapshot) and not head.gone
        assert {r["account"]: r["state"] for r in head.rows} == {
            "A-blocked": "blocked", "A-warn": "warn", "A-paused": "paused"}
        assert by_account(head.rows)["A-blocked"]["amount_due"] == "1250.00"
        assert set(by_account(snap.rows)) == {"A-active", "A-blocked", "A-warn", "A-paused"}
        assert head.seq < snap.seq  # the snapshot's rows are read after the head's
        # A later session (after a reconnect) starts with the snapshot alone.
        billing.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name LIKE 'debtgate%'")
        await rec.wait(lambda: source.counters["reconnects"] == 1 and source.health.listening
                       and source.health.extra["stable"], timeout=10, what="the next session")
        billing.sql("UPDATE accounts SET state = 'blocked', balance = -10 WHERE id = 'A-active'")
        await rec.wait(lambda: len(rec.events) > 2, what="the block")
        [block] = rec.events[2:]
        assert isinstance(block, Delta) and [r["account"] for r in block.rows] == ["A-active"]


async def test_restrictions_first_false_starts_with_the_snapshot_alone(billing: Billing) -> None:
    rec = Recorder()
    source = PostgresSource(settings(billing.dsn, restrictions_first=False))
    source.prefer_restricted()
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.listening, what="snapshot")
        assert isinstance(rec.events[0], Snapshot) and len(rec.events) == 1
