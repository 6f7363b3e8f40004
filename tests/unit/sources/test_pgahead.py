"""The storm's query for its parts and how its rows are cut into parts (pure)."""

from __future__ import annotations

from debtgate.sources import pgahead
from debtgate.sources.base import Columns
from debtgate.sources.pgahead import _Batches, _Parts, ahead_query, strays
from debtgate.sources.pgcopy import CopyParser

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


def test_the_first_batch_is_small_then_batches_of_the_index_size() -> None:
    b = _Batches(9_000)
    spans = list(iter(b.take, None))
    assert spans == [(0, 2000), (2000, 6000), (6000, 9000)]
    b = _Batches(9_000)
    b.take()
    b.rest_at_once()  # a batch was not answered from an index
    assert list(iter(b.take, None)) == [(2000, 9000)]


def test_rows_of_ids_the_batch_did_not_ask_are_strays() -> None:
    accounts = ["x", "a", "b", "z", "a"]
    assert strays(accounts, 1, ["a", "b"]) == [3]  # row 0 belongs to an earlier batch
    assert strays(accounts, 1, ["a", "b", "z"]) == []
    assert strays(accounts, 5, ["a"]) == []


def parsed(accounts: list[str]) -> Columns:
    parser = CopyParser((), every_row=True)
    parser.feed_sync("".join(f"{a}\t10.0.0.{i}\tblocked\t\n"
                             for i, a in enumerate(accounts)).encode())
    return parser.close()


def test_parts_are_whole_batches_without_strays() -> None:
    got: list[Columns] = []
    parts = _Parts(got.append)
    assert parts.size == pgahead.FIRST_PART
    cols = parsed(["a", "stray", "b", "c"])
    parts.hand(cols, [1])
    assert got[0].account == ["a", "b", "c"] and got[0].addresses[1] == "10.0.0.2"
    assert parts.size == pgahead.PART and parts.rows == 3
    whole = parsed(["d"])
    parts.hand(whole, [])
    assert got[1] is whole  # the parser's own columns: no copy
    parts.hand(parsed(["e"]), [0])  # nothing left: no empty part
    assert len(got) == 2 and parts.rows == 4
