"""The storm's query for its parts (pure: SQL text only)."""

from __future__ import annotations

from debtgate.sources.pgahead import ahead_query

Q = "SELECT * FROM v WHERE account = ANY('{a,b}'::text[])"
BASE = {"account": "text", "addresses": "text", "state": "text"}


def test_typed_display_columns_are_checked_by_the_server_not_fetched() -> None:
    sql, extras = ahead_query(Q, {**BASE, "amount_due": "numeric", "since": "date",
                                  "block_at": "date", "nas": "text"})
    assert extras == ()
    assert "abs(q.amount_due::numeric) < 1e12" in sql
    assert "q.since BETWEEN '0001-01-01' AND '9999-12-31'" in sql
    assert "q.block_at BETWEEN" in sql and "q.nas IS NULL" in sql
    assert sql.startswith("SELECT q.account::text, q.addresses, q.state::text, NULL FROM (")


def test_other_types_are_fetched_and_converted_here() -> None:
    sql, extras = ahead_query(Q, {**BASE, "amount_due": "text", "since": "timestamptz",
                                  "block_at": "date", "addresses": "_inet"})
    assert extras == ("amount_due", "since")
    assert "q.amount_due, q.since FROM (" in sql and "array_to_string(q.addresses" in sql
    assert "q.amount_due IS NULL OR" not in sql and "q.block_at BETWEEN" in sql


def test_absent_columns_are_neither_fetched_nor_checked() -> None:
    sql, extras = ahead_query(Q, BASE)
    assert extras == ()
    assert sql.endswith("WHERE q.state::text <> 'active'")
