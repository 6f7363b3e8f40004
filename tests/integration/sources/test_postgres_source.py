"""The PostgreSQL feed against a real server: snapshot, deltas, coalescing, resync, errors."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from debtgate.errors import SourceError
from debtgate.sources import pgahead, pgsync
from debtgate.sources.base import DeltaAhead, Restrictions, Snapshot
from debtgate.sources.postgres import PostgresSource

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
        assert len(rec.deltas) == 1
        assert {r["state"] for r in rec.deltas[0].rows} == {"blocked"}
        assert source.counters["notifications"] >= 10000


@pytest.mark.parametrize(("batch", "slow", "helper", "queries"), [
    (4000, False, True, 2),  # a first batch of 2,000 ids, then the other 1,000
    (700, False, True, 5),  # 700 ids a query, over both connections
    (700, False, False, 5),  # over the one connection
    (700, True, False, 2),  # the first batch is slow (a scan): the rest in one query
])
async def test_a_storm_sends_its_restricting_rows_ahead_lean(
        billing: Billing, monkeypatch: pytest.MonkeyPatch, batch: int, slow: bool,
        helper: bool, queries: int) -> None:
    """3,000 accounts change in one transaction: their restricting rows without a
    RADIUS session come first, in parts of the few columns the head start reads,
    fetched in batches of ids (over a second connection too, in the same snapshot),
    then the Delta with every row whole (the same moment of the billing)."""
    monkeypatch.setattr(pgahead, "BATCH_IDS", batch)
    if slow:  # every batch seems slower than an index lookup
        monkeypatch.setattr(pgahead, "SCAN_SECONDS", -1.0)
    sent: list[tuple[int, str, str]] = []
    copy_into = pgahead.copy_into

    async def counted(conn: Any, sql: str, *args: Any, **kwargs: Any) -> None:
        seen = await conn.fetchval("SELECT pg_current_snapshot()::text")
        sent.append((conn.get_server_pid(), seen, sql))
        await copy_into(conn, sql, *args, **kwargs)
        await asyncio.sleep(0.05)  # time for the second connection to open and take some

    monkeypatch.setattr(pgahead, "copy_into", counted)
    add_active(billing, "S", 3000, "100.66.0.0")
    billing.sql("SET session_replication_role = replica; INSERT INTO sessions "
                "(account_id, nas, session_id) VALUES ('S7', 'bras-1', 'sess-7')")
    rec = Recorder()
    source = PostgresSource(settings(billing.dsn, coalesce_ms=100, storm_helper=helper))
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.connected, what="snapshot")
        # Every S account blocked with a debt but S5; S7 has a RADIUS session; S9's
        # date would not convert (the Delta rejects that row).
        billing.sql("UPDATE accounts SET state = CASE WHEN id = 'S5' THEN 'active' "
                    "ELSE 'blocked' END, balance = -300, "
                    "since = CASE WHEN id = 'S9' THEN date 'infinity' "
                    "ELSE date '2026-11-01' END WHERE id LIKE 'S%'")
        await rec.wait(lambda: rec.deltas, what="storm delta")
        parts = [e for e in rec.events if isinstance(e, DeltaAhead)]
        delta = rec.deltas[0]
        assert parts and rec.events.index(parts[-1]) < rec.events.index(delta)
        ahead = [(r["account"], r["state"]) for part in parts for r in part.rows]
        blocked = {f"S{i}" for i in range(1, 3001)} - {"S5", "S7", "S9"}
        assert {a for a, _ in ahead} == blocked and len(ahead) == len(blocked)
        assert {s for _, s in ahead} == {"blocked"}
        # The reference view's amount and dates are checked by the server: not fetched.
        assert all(p.asked == 3000 and p.rows.extra_names == () for p in parts)
        rows = by_account(delta.rows)
        assert set(rows) == {f"S{i}" for i in range(1, 3001)} and not delta.gone
        assert rows["S5"]["state"] == "active" and rows["S7"]["session_id"] == "sess-7"
        assert {"name", "tariff", "currency", "nas"} <= set(rows["S8"])  # whole rows
        assert (rows["S8"]["amount_due"], rows["S8"]["since"]) == ("300.00", "2026-11-01")
        assert rows["S9"]["since"] == "infinity"
        assert len(sent) == queries
        assert len({seen for _, seen, _ in sent}) == 1  # one snapshot for every batch
        if helper and queries > 2:  # both backends took batches (each needs ~ms to answer)
            assert len({pid for pid, _, _ in sent}) == 2
        assert not source._no_export


async def test_a_storm_is_fetched_in_the_order_its_ids_were_notified(
        billing: Billing, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batches of a storm follow the order the billing sent its ids in (its
    neighbours on neighbouring pages), not a set's order: each id once, where it
    first arrived."""
    monkeypatch.setattr(pgahead, "BATCH_IDS", 1000)
    batches: list[list[str]] = []
    copy_into = pgahead.copy_into

    async def recorded(conn: Any, sql: str, *args: Any, **kwargs: Any) -> None:
        batches.append(re.findall(r'"(S\d+)"', sql))
        await copy_into(conn, sql, *args, **kwargs)

    monkeypatch.setattr(pgahead, "copy_into", recorded)
    add_active(billing, "S", 3000, "100.66.0.0")
    order = [f"S{i}" for i in range(3000, 0, -1)]  # descending: no set keeps that
    payloads = [",".join(order[i:i + 500]) for i in range(0, 3000, 500)] + ["S2999,S1"]
    rec = Recorder()
    source = PostgresSource(settings(billing.dsn, coalesce_ms=100, storm_helper=False))
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.connected, what="snapshot")
        billing.sql("BEGIN; SET LOCAL session_replication_role = replica;"  # no trigger
                    "UPDATE accounts SET state = 'blocked' WHERE id LIKE 'S%';"
                    + "".join(f"NOTIFY debtgate, '{p}';" for p in payloads) + "COMMIT")
        await rec.wait(lambda: rec.deltas, what="storm delta")
        assert [b for b in batches if b] == [order[i:i + 1000] for i in range(0, 3000, 1000)]
        parts = [e for e in rec.events if isinstance(e, DeltaAhead)]
        ahead = [r["account"] for p in parts for r in p.rows]  # each batch in index order
        assert len(ahead) == 3000 and set(ahead) == set(order)
        assert len(rec.deltas) == 1 and len(rec.deltas[0].rows) == 3000


@pytest.mark.parametrize("helper", [True, False])
async def test_a_storm_whose_query_returns_rows_not_asked_holds_each_account_in_one_part(
        billing: Billing, monkeypatch: pytest.MonkeyPatch, helper: bool) -> None:
    """An accounts query that also returns a row nobody asked for in that batch (here:
    S1 in every batch): each part keeps only the rows of the ids its batch asked, so
    no account is in two parts; the Delta has every row once."""
    monkeypatch.setattr(pgahead, "BATCH_IDS", 500)
    query = ("SELECT * FROM debtgate_subscribers WHERE account = ANY($1::text[]) "
             "OR account = 'S1'")
    async with s_blocked(billing, storm_helper=helper, accounts_query=query) as (rec, _):
        parts = [e for e in rec.events if isinstance(e, DeltaAhead)]
        ahead = [a for p in parts for a in p.rows.account]
        assert len(parts) > 1 and sorted(ahead) == sorted(f"S{i}" for i in range(1, 3001))
        assert len(rec.deltas[0].rows) == 3000


async def test_a_storm_without_snapshot_export_keeps_to_one_connection(
        billing: Billing, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A billing role that may not export snapshots: the storm is fetched ahead over
    its one connection (said once in the log), nothing is lost."""
    monkeypatch.setattr(pgahead, "BATCH_IDS", 500)
    role = f"gw_{billing.database}"  # roles are the cluster's: one per test database
    add_active(billing, "S", 3000, "100.66.0.0")
    billing.sql(f"""
CREATE ROLE {role} LOGIN;
GRANT SELECT ON debtgate_subscribers TO {role};
REVOKE EXECUTE ON FUNCTION pg_export_snapshot() FROM PUBLIC;
""")
    rec = Recorder()
    dsn = billing.dsn.replace(f"//{billing.server.user}@", f"//{role}@")
    source = PostgresSource(settings(dsn, coalesce_ms=100))
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.connected, what="snapshot")
        billing.sql("UPDATE accounts SET state = 'blocked' WHERE id LIKE 'S%'")
        await rec.wait(lambda: rec.deltas, what="storm delta")
        parts = [e for e in rec.events if isinstance(e, DeltaAhead)]
        assert sum(len(p.rows) for p in parts) == 3000
        assert len(rec.deltas[0].rows) == 3000 and source._no_export
    assert "cannot export a snapshot" in caplog.text


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
        # Nothing emitted after the start (the restricting rows first, the snapshot):
        # the engine keeps its state.
        assert [type(e) for e in rec.events] == [Restrictions, Snapshot]
        billing.sql("BEGIN; DROP VIEW debtgate_subscribers;"
                    "ALTER VIEW good RENAME TO debtgate_subscribers; COMMIT;"
                    "UPDATE accounts SET state = 'blocked' WHERE id = 'A-active'")
        delta = (await rec.wait(lambda: rec.deltas, what="recovered", timeout=8))[0]
        assert [r["account"] for r in delta.rows] == ["A-active"]
        assert len(rec.snapshots) == 1


async def test_a_storm_whose_second_connection_dies_loses_only_its_batch(
        billing: Billing, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The second connection is killed on the server while it answers a batch: that
    batch's rows come with the Delta only, the first connection fetches the rest ahead,
    the source stays connected."""
    monkeypatch.setattr(pgahead, "BATCH_IDS", 500)
    copy_into = pgahead.copy_into
    pids: list[int] = []
    killed: list[str] = []

    async def killing(conn: Any, sql: str, *args: Any, **kwargs: Any) -> None:
        pid = conn.get_server_pid()
        pids.append(pid)
        if pid != pids[0] and not killed:  # the second connection's first batch
            killed.append(sql)
            billing.sql(f"SELECT pg_terminate_backend({pid})")
        await copy_into(conn, sql, *args, **kwargs)
        await asyncio.sleep(0.05)

    monkeypatch.setattr(pgahead, "copy_into", killing)
    async with s_blocked(billing) as (rec, source):
        ahead = {r["account"] for e in rec.events if isinstance(e, DeltaAhead) for r in e.rows}
        assert killed and len(ahead) == 2500  # six batches of 500, one lost
        assert len(rec.deltas[0].rows) == 3000 and source.counters["reconnects"] == 0
        assert source.health.connected
    assert "the second connection failed" in caplog.text


async def test_a_storm_whose_whole_rows_copy_fails_fetches_them_row_by_row(
        billing: Billing, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The COPY of a storm's whole rows fails on the server, inside the storm's
    transaction: its savepoint is rolled back and the rows come row by row in the same
    transaction; the parts fetched ahead stand, the source stays connected."""
    failed: list[str] = []

    async def failing(conn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            await conn.execute("SELECT 1 / 0")  # a real error: the transaction is aborted
        except asyncpg.PostgresError as exc:
            failed.append(str(exc))
            raise SourceError(f"postgres: the accounts query failed: {exc}") from None

    monkeypatch.setattr(pgsync, "copy_accounts", failing)
    async with s_blocked(billing) as (rec, source):
        ahead = [r["account"] for e in rec.events if isinstance(e, DeltaAhead) for r in e.rows]
        assert failed and len(ahead) == 3000
        rows = by_account(rec.deltas[0].rows)
        assert len(rows) == 3000 and {r["state"] for r in rows.values()} == {"blocked"}
        assert source.counters["reconnects"] == 0 and source.health.connected
    assert "fetching them row by row" in caplog.text
