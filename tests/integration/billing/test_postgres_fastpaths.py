"""The PostgreSQL feed's COPY paths against a real server: the snapshot and large
changes fetched through COPY into columns end where the row-by-row path ends."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from debtgate.billing import pgsync
from debtgate.billing.base import Columns, Delta, Snapshot
from debtgate.billing.pgfetch import fetch_rows, setup_codecs
from debtgate.billing.postgres import PostgresSource
from tests.unit.helpers import Harness

from .conftest import Billing, Recorder, by_account, running, settings

pytestmark = pytest.mark.postgres


async def replay(events: list[Any]) -> Harness:
    """An engine (fake kernel) fed with the events, for comparing end results."""
    h = Harness()
    for event in events:
        await h.engine.handle(event)
    await h.engine.announcer.announced()
    return h


def end_result(h: Harness, accounts: Any) -> tuple[Any, ...]:
    sets = {name: elems for name, elems in h.nft.sets.items() if elems}
    return (sets, {a: h.engine.inventory.get(a) for a in accounts}, len(h.engine.inventory),
            sorted((t.account, t.new) for t in h.transitions))


async def test_odd_states_in_columns_end_like_the_same_rows_as_dicts(
        billing: Billing) -> None:
    query = ("SELECT account, addresses, CASE account WHEN 'A-warn' THEN NULL "
             "WHEN 'A-paused' THEN 'Paused' WHEN 'A-active' THEN ' active' ELSE state END "
             "AS state, amount_due, since, name, version FROM debtgate_subscribers")
    rec = Recorder()
    source = PostgresSource(settings(billing.dsn, snapshot_query=query))
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.connected, what="snapshot")
    assert [type(e) for e in rec.events] == [Snapshot]
    cols = rec.events[0].rows
    assert isinstance(cols, Columns)
    accounts = ["A-active", "A-blocked", "A-warn", "A-paused"]
    by_cols = await replay([Snapshot(cols)])
    assert end_result(by_cols, accounts) == end_result(
        await replay([Snapshot([dict(r) for r in cols])]), accounts)
    # ' active' is active, 'Paused' paused, a NULL state rejected (the account unknown).
    assert by_cols.engine.inventory.get("A-active").state == "active"
    assert by_cols.engine.inventory.get("A-paused").state == "paused"
    assert by_cols.engine.inventory.get("A-warn") is None


FILL = """
SET session_replication_role = replica;  -- no notifications: the test sends its own
INSERT INTO accounts (id, state, address_list, name, language, tariff, balance, since)
SELECT 'B' || i, 'active', host('100.65.0.0'::inet + i), 'Bee ' || i, 'en', 'Home', 5,
       NULL FROM generate_series(1, 1500) i;
INSERT INTO sessions (account_id, nas, session_id, user_name)
SELECT 'B' || i, 'bras1', 's' || i, 'u' || i FROM generate_series(1, 1500, 7) i;
"""
CHANGE = """
SET session_replication_role = replica;
UPDATE accounts SET state = 'blocked', balance = -12.5, since = '2026-11-01',
       name = E'Tab\\there \\\\ O''Brien', version = nextval('debtgate_version')
 WHERE id ~ '^B' AND substr(id, 2)::int <= 1200;
UPDATE accounts SET address_list = NULL WHERE id IN ('B1400', 'B1401');
"""
HOSTILE = ["x'); DROP TABLE accounts; --", 'q"r', "b\\s", "$dgids$", "NULL", "{}", " ", "B1,B2",
           "nul\x00", "B9999"]

NO_VERSION = {
    "snapshot_query": "SELECT account, addresses, state, amount_due, since, name, nas, "
                      "session_id, user_name FROM debtgate_subscribers",
    "accounts_query": "SELECT account, addresses, state, amount_due, since, name, nas, "
                      "session_id, user_name FROM debtgate_subscribers "
                      "WHERE account = ANY($1::text[])",
}


@pytest.mark.parametrize("queries", [{}, NO_VERSION], ids=["version", "fingerprint"])
async def test_a_large_change_through_copy_equals_row_by_row(
        billing: Billing, queries: dict[str, str]) -> None:
    billing.sql(FILL)
    rec = Recorder()
    source = PostgresSource(settings(billing.dsn, coalesce_ms=300, **queries))
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.connected, what="snapshot")
        billing.sql(CHANGE)
        ids = HOSTILE + [f"B{i}" for i in range(1, 1501)]
        # One transaction: the notifications (under 8000 bytes each) arrive together.
        billing.sql(";".join("SELECT pg_notify('debtgate', '{}')".format(
            json.dumps(ids[i:i + 302]).replace("'", "''")) for i in range(0, len(ids), 302)))
        delta = (await rec.wait(lambda: rec.deltas, what="delta"))[0]
        assert isinstance(delta.rows, Columns) and len(delta.rows) == 1498
        assert sorted(delta.gone) == sorted(["B1400", "B1401", *HOSTILE])
        rows = by_account(delta.rows)
        assert rows["B7"]["state"] == "blocked" and rows["B7"]["name"] == "Tab\there \\ O'Brien"
        assert rows["B8"]["nas"] == "bras1" and rows["B1300"]["amount_due"] == "0"
        # The marks kept are the ones a resync compares: nothing to do.
        count = len(rec.events)
        source.request_resync()
        await rec.wait(lambda: source._resync is False and source.health.connected)  # noqa: SLF001
        assert len(rec.events) == count

        # The same change fetched row by row ends in the same engine state.
        conn = await asyncpg.connect(billing.dsn)
        try:
            await setup_codecs(conn)
            asked = sorted(i for i in ids if "\x00" not in i)
            records = await fetch_rows(conn, source.s.accounts_query, asked, what="test",
                                       fingerprint="version" not in queries.get(
                                           "accounts_query", "version"))
        finally:
            await conn.close()
        assert sorted(r["account"] for r in records) == sorted(rows)
        gone = [a for a in sorted(ids) if a not in rows]
        by_copy = await replay([rec.snapshots[0], delta])
        by_records = await replay([rec.snapshots[0], Delta(records, gone)])
        assert end_result(by_copy, ids) == end_result(by_records, ids)
        assert by_copy.engine.inventory.get("B7").state == "blocked"


async def test_few_ids_stay_row_by_row(billing: Billing) -> None:
    rec = Recorder()
    source = PostgresSource(settings(billing.dsn))
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.connected, what="snapshot")
        billing.sql("UPDATE accounts SET state = 'blocked' WHERE id = 'A-active'")
        delta = (await rec.wait(lambda: rec.deltas, what="delta"))[0]
        assert not isinstance(delta.rows, Columns) and pgsync.COPY_IDS >= 100


ODD_TEXTS = """
SET session_replication_role = replica;
UPDATE accounts SET currency = 'RUBLES' WHERE id IN ('B3', 'B1203');
UPDATE accounts SET name = repeat('x', 201) WHERE id IN ('B4', 'B1204');
UPDATE accounts SET currency = 'usd', name = ' ' || repeat('y', 200) || ' '
 WHERE id IN ('B5', 'B1205');
UPDATE accounts SET currency = 'ру' WHERE id = 'A-blocked';
UPDATE accounts SET state = 'blocked'
 WHERE id IN ('B3', 'B4', 'B5', 'B1203', 'B1204', 'B1205');
UPDATE accounts SET version = nextval('debtgate_version') WHERE id ~ '^B';
"""


async def test_a_currency_or_a_name_out_of_contract_is_rejected_on_the_column_paths(
        billing: Billing) -> None:
    """The snapshot and a large change come in columns (the bulk path); the same rows as
    dicts (the row paths) give the same subscribers and rejections. (A snapshot leaves
    the display columns of active rows out: the odd rows here are blocked.)"""
    billing.sql(FILL)
    rec = Recorder()
    source = PostgresSource(settings(billing.dsn, coalesce_ms=300))
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.connected, what="snapshot")
        billing.sql(ODD_TEXTS)
        ids = [f"B{i}" for i in range(1, 1501)]
        parts = [json.dumps(ids[i:i + 300]) for i in range(0, len(ids), 300)]
        billing.sql(";".join(f"SELECT pg_notify('debtgate', '{part}')" for part in parts))
        delta = (await rec.wait(lambda: rec.deltas, what="delta"))[0]
        source.request_resync(full=True)
        snap = (await rec.wait(lambda: rec.snapshots[1:], what="second snapshot"))[0]
    assert isinstance(snap.rows, Columns) and isinstance(delta.rows, Columns)
    iso = "is not an ISO 4217 code (three letters)"
    for rows in (snap.rows, [dict(r) for r in snap.rows]):
        h = await replay([Snapshot(rows)])
        assert dict(h.engine.rejections) == {"bad_currency": 3, "bad_field": 2}
        details = {r["account"]: r["detail"] for r in h.engine.last_rejections}
        assert details["B3"] == f"currency: 'RUBLES' {iso}"
        assert details["A-blocked"] == f"currency: 'ру' {iso}"
        assert details["B1204"] == "name: 201 characters, longer than 200"
        sub = h.engine.inventory.get("B1205")
        assert sub is not None and sub.currency == "USD" and sub.name == "y" * 200
    by_copy = await replay([rec.snapshots[0], delta])
    by_rows = await replay([rec.snapshots[0], Delta([dict(r) for r in delta.rows])])
    assert end_result(by_copy, ids) == end_result(by_rows, ids)
    assert dict(by_copy.engine.rejections) == {"bad_currency": 2, "bad_field": 2}
    assert by_copy.engine.inventory.get("B1203").currency == "RUB"  # the last good version
