"""The PostgreSQL feed's fast paths against a real server: the restricting rows first on
a cold start, and large changes fetched through COPY into columns."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest
from debtgate.sources import pgsync
from debtgate.sources.base import Columns, Delta, Restrictions, Snapshot
from debtgate.sources.pgbind import text_array_literal
from debtgate.sources.pgfetch import fetch_rows, setup_codecs
from debtgate.sources.postgres import PostgresSource

from tests.unit.helpers import Harness

from .conftest import Billing, Recorder, by_account, running, settings

pytestmark = pytest.mark.postgres


async def replay(events: list[Any]) -> Harness:
    """An engine (fake kernel) fed with the events, for comparing end results."""
    h = Harness()
    for event in events:
        await h.engine.handle(event)
    await h.engine.announced()
    return h


def end_result(h: Harness, accounts: Any) -> tuple[Any, ...]:
    sets = {name: elems for name, elems in h.nft.sets.items() if elems}
    return (sets, {a: h.engine.inventory.get(a) for a in accounts}, len(h.engine.inventory),
            sorted((t.account, t.new) for t in h.transitions))


async def test_restrictions_come_first_then_the_snapshot_decides(billing: Billing) -> None:
    rec = Recorder()
    source = PostgresSource(settings(billing.dsn))
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.connected, what="snapshot")
        assert [type(e) for e in rec.events] == [Restrictions, Snapshot]
        early, snap = rec.events[0].rows, rec.events[1].rows
        assert isinstance(early, Columns)
        restricting = {a: r for a, r in by_account(snap).items() if r["state"] != "active"}
        assert by_account(early) == restricting
        assert set(restricting) == {"A-blocked", "A-warn", "A-paused"}
        assert early.marks == [snap.marks[snap.account.index(a)] for a in early.account]
        assert source.health.extra["restrictions_first_rows"] == 3
        # A reconnect takes a resync, never a head start again.
        billing.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        await rec.wait(lambda: source.counters["reconnects"] >= 1 and source.health.connected,
                       what="reconnected")
        billing.sql("UPDATE accounts SET state = 'blocked' WHERE id = 'A-active'")
        await rec.wait(lambda: rec.deltas, what="delta after reconnect")
        assert [type(e) for e in rec.events] == [Restrictions, Snapshot, Delta]


async def test_odd_states_and_the_end_result_equal_a_plain_snapshot(billing: Billing) -> None:
    query = ("SELECT account, addresses, CASE account WHEN 'A-warn' THEN NULL "
             "WHEN 'A-paused' THEN 'Paused' WHEN 'A-active' THEN ' active' ELSE state END "
             "AS state, amount_due, since, name, version FROM debtgate_subscribers")
    recorded = []
    for first in (True, False):
        rec = Recorder()
        source = PostgresSource(settings(billing.dsn, snapshot_query=query,
                                         restrictions_first=first))
        async with running(source, rec):
            await rec.wait(lambda: rec.snapshots and source.health.connected,  # noqa: B023
                           what="snapshot")
        recorded.append(rec.events)
    with_head, plain = recorded
    assert [type(e) for e in plain] == [Snapshot]
    assert [type(e) for e in with_head] == [Restrictions, Snapshot]
    # Any state text but exactly 'active' (the engine normalises ' active'); no NULL.
    assert sorted(by_account(with_head[0].rows)) == ["A-active", "A-blocked", "A-paused"]
    assert list(with_head[1].rows) == list(plain[0].rows)
    accounts = ["A-active", "A-blocked", "A-warn", "A-paused"]
    early = await replay(with_head[:1])
    assert early.nft.sets["blocked_v4_host"] == {"100.64.1.11"}  # enforced before the snapshot
    assert end_result(await replay(with_head), accounts) == end_result(
        await replay(plain), accounts)


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
                      "WHERE account = ANY($1::text[]) /* not $2 */ AND '$1' <> account",
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
            json.dumps(ids[i:i + 300]).replace("'", "''")) for i in range(0, len(ids), 300)))
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


async def test_few_ids_stay_row_by_row_and_a_literal_round_trips(billing: Billing) -> None:
    rec = Recorder()
    source = PostgresSource(settings(billing.dsn))
    async with running(source, rec):
        await rec.wait(lambda: rec.snapshots and source.health.connected, what="snapshot")
        billing.sql("UPDATE accounts SET state = 'blocked' WHERE id = 'A-active'")
        delta = (await rec.wait(lambda: rec.deltas, what="delta"))[0]
        assert not isinstance(delta.rows, Columns) and pgsync.COPY_IDS >= 100
    conn = await asyncpg.connect(billing.dsn)
    try:
        got = await conn.fetchval(f"SELECT {text_array_literal(HOSTILE)}")  # noqa: S608
        # Without a quote, a backslash or a NUL the literal is joined in one piece.
        plain = [h for h in HOSTILE if not {'"', "\\", "\x00"} & set(h)]
        joined = await conn.fetchval(f"SELECT {text_array_literal(plain)}")  # noqa: S608
    finally:
        await conn.close()
    assert got == [h for h in HOSTILE if "\x00" not in h]
    assert joined == plain and len(plain) == 7


AMOUNTS = ["0", "300.00", "-300.5", "999999999999.99", "-999999999999.99", "1000000000000",
           "-1000000000000", "1e15", "NaN", "Infinity", "-Infinity", None]
DATES = ["2026-11-01", "0001-01-01", "9999-12-31", "10000-01-01", "0044-03-15 BC",
         "infinity", "-infinity", None]


@pytest.mark.parametrize(("column", "pg_type", "values", "kind"), [
    ("amount_due", "numeric", AMOUNTS, "amount"),
    ("amount_due", "int8", ["0", "999999999999", "1000000000000", "-9223372036854775808",
                            "9223372036854775807", None], "amount"),
    ("amount_due", "int4", ["0", "-2147483648", "2147483647", None], "amount"),
    ("since", "date", DATES, "date"),
    ("block_at", "date", DATES, "date"),
])
async def test_the_server_checks_of_a_storm_agree_with_the_row_path(
        billing: Billing, column: str, pg_type: str, values: list[str | None],
        kind: str) -> None:
    """A display column the server checks for the storm's parts (not fetched ahead)
    passes exactly the values the row path converts, as the source reads them."""
    from debtgate.sources.pgahead import SERVER_CHECKS
    from debtgate.validate import _CONVERT, RowError

    check = SERVER_CHECKS[column][pg_type].format(c=column)
    conn = await asyncpg.connect(billing.dsn)
    try:
        await setup_codecs(conn)
        rows = await conn.fetch(
            f"SELECT q.{column}::text AS shown, {check} AS ok FROM "  # noqa: S608
            f"(SELECT v::{pg_type} AS {column} FROM unnest($1::text[]) v) q", values)
    finally:
        await conn.close()
    assert len(rows) == len(values)

    def converts(text: str | None) -> bool:
        try:
            _CONVERT[kind](text)
        except RowError:
            return False
        return True

    got = {r["shown"]: r["ok"] for r in rows}
    assert got == {r["shown"]: converts(r["shown"]) for r in rows}
    assert True in got.values()
    assert False in got.values() or pg_type.startswith("int")


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
