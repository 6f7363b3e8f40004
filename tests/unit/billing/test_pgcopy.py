"""COPY into columns (every row, batches, escapes) and which accounts queries asyncpg
can inline its ``$1`` into."""

from __future__ import annotations

import random

import pytest

from debtgate.billing.base import NO_MARK, Columns, MarkColumn, Row
from debtgate.billing.pgcopy import CopyParser, copyable, lean_query, only_accounts
from debtgate.billing.pgfetch import Marks, parse_payload

EXTRAS = ("amount_due", "since", "name")
TYPES = {"account": "text", "addresses": "text", "state": "text", "amount_due": "numeric",
         "since": "date", "name": "text", "version": "int8"}


def parse(data: bytes, every_row: bool, chunk: int = 7) -> Columns:
    parser = CopyParser(EXTRAS, every_row=every_row)
    for i in range(0, len(data), chunk):
        parser.feed_sync(data[i:i + chunk])
    return parser.close()


LINES = ("a1\t10.0.0.1\tactive\t7\t0.00\t\tAnn\n"
         "a2\t10.0.0.2\tblocked\t8\t12.50\t2026-11-01\tJo\\tAnn\n"
         "a3\t10.0.0.3\tBlocked\t\t\t\tZoë\n"
         "a4\t\t\t9\t\t\t\n"
         "a5\t\t\t\t1\\\\\t\t\n").encode()  # escaped: the line-by-line path


@pytest.mark.parametrize("chunk", [1, 7, 40, 1 << 18])
def test_every_row_keeps_the_extra_columns_of_active_rows(chunk: int) -> None:
    cols = parse(LINES, every_row=True, chunk=chunk)
    assert cols.account == ["a1", "a2", "a3", "a4", "a5"]
    assert cols.marks == [7, 8, None, 9, None]
    assert cols.state == ["active", "blocked", "Blocked", None, None]
    assert cols[4]["amount_due"] == "1\\"
    assert cols[0] == {"account": "a1", "addresses": "10.0.0.1", "state": "active",
                       "amount_due": "0.00", "since": None, "name": "Ann"}
    assert cols[1]["name"] == "Jo\tAnn" and cols[2]["name"] == "Zoë"
    # Every row keeps its columns, held dense (a row with none of them reads without).
    assert cols.dense is not None and cols.dense["name"] == ["Ann", "Jo\tAnn", "Zoë", None, None]
    assert cols[3] == {"account": "a4", "addresses": None, "state": None}
    snapshot = parse(LINES, every_row=False)
    assert snapshot.dense is None
    assert 0 not in snapshot.extra and snapshot[0] == {
        "account": "a1", "addresses": "10.0.0.1", "state": "active"}
    def given(row: Row) -> dict[str, object]:  # NULL and a missing column are the same
        return {k: v for k, v in row.items() if v is not None}
    assert [given(snapshot[i]) for i in (1, 2, 3)] == [given(cols[i]) for i in (1, 2, 3)]


def test_chunking_does_not_change_the_columns() -> None:
    rng = random.Random(7)
    lines = []
    for i in range(3000):
        state = rng.choice(["active", "active", "blocked", "warn", ""])
        name = rng.choice(["", "Ann", "O\\\\Brien", "tab\\there", "Zoë"])
        lines.append(f"acc{i}\t10.0.{i // 256}.{i % 256}\t{state}\t{i}\t{i % 7}.00\t\t{name}\n")
    data = "".join(lines).encode()
    whole = parse(data, every_row=False, chunk=len(data))
    assert len(whole) == 3000 and {"O\\Brien", "tab\there", "Zoë"} <= {
        r.get("name") for r in whole}
    assert all((i in whole.extra) == (whole.state[i] != "active") for i in range(3000))
    for chunk in (1, 100, 9000):
        part = parse(data, every_row=False, chunk=chunk)
        assert (part.account, part.addresses, part.state, part.marks, part.extra) == (
            whole.account, whole.addresses, whole.state, whole.marks, whole.extra)


def test_lean_query_every_row() -> None:
    sql, extras = lean_query("SELECT * FROM v", TYPES, every_row=True)
    assert extras == EXTRAS
    assert sql.endswith("q.amount_due, q.since, q.name FROM (SELECT * FROM v) q")
    assert "CASE" not in sql and "q.version::int8" in sql
    assert "hashtextextended" in lean_query("SELECT * FROM v", TYPES, version=False)[0]
    no_version = {k: v for k, v in TYPES.items() if k != "version"}
    assert "NULL::int8" in lean_query("SELECT * FROM v", no_version, version=True)[0]


def test_only_accounts_keeps_asked_rows_with_their_extras() -> None:
    cols = parse(LINES, every_row=True)
    assert only_accounts(cols, {"a1", "a2", "a3", "a4", "a5", "x"}) is cols
    kept = only_accounts(cols, {"a2", "a4"})
    assert list(kept) == [cols[1], cols[3]] and kept.marks == [8, 9]


# -- $1 as a literal ---------------------------------------------------------------

QUERY = "SELECT * FROM debtgate_subscribers WHERE account = ANY($1::text[])"


def test_only_a_query_whose_one_dollar_is_its_parameter_is_inlined() -> None:
    """asyncpg replaces every ``$n`` of the text (in literals and comments too): a query
    with any other ``$`` is fetched row by row with bind parameters instead."""
    assert copyable("SELECT * FROM v WHERE account = ANY($1::text[])")
    for other in ("SELECT * FROM v WHERE a = ANY($1) AND '$1' <> a",
                  "SELECT * FROM v WHERE a = ANY($1) /* not $2 */",
                  "SELECT * FROM v WHERE a = ANY($10)", "SELECT * FROM v",
                  "SELECT $$x$$ FROM v WHERE a = ANY($1)"):
        assert not copyable(other), other


def test_marks_are_held_in_one_array_and_read_back_as_given() -> None:
    cols = parse(LINES, every_row=True)
    assert isinstance(cols.marks, MarkColumn)
    assert list(cols.marks.raw[:2]) == [7, 8] and cols.marks.raw[2] == NO_MARK
    assert list(cols.marks) == [7, 8, None, 9, None] and cols.marks[-2] == 9
    assert list(cols.marks[1:4]) == [8, None, 9]
    # What the source keeps of them: the same marks, without a list in between.
    prints = Marks(cols.account, cols.marks)
    assert prints.as_dict() == {"a1": 7, "a2": 8, "a3": None, "a4": 9, "a5": None}
    assert prints.summary() == (5, 24)
    assert cols.pick([1, 3]).marks == [8, 9]


def test_repeated_display_values_are_one_object_each() -> None:
    lines = "".join(f"a{i}\t10.0.0.{i}\tblocked\t{i}\t500.00\t2026-11-01\tName {i % 3}\n"
                    for i in range(1, 50)).encode()
    cols = parse(lines, every_row=False, chunk=64)
    since = [cols.extra[i][1] for i in range(len(cols))]
    names = [cols.extra[i][2] for i in range(len(cols))]
    assert set(since) == {"2026-11-01"} and len({id(s) for s in since}) == 1
    assert len(set(names)) == 3 and len({id(n) for n in names}) == 3
    # Empty fields are still None, distinct values still their own text.
    empty = parse(b"b1\t10.0.0.1\tblocked\t1\t\t\tx\nb2\t10.0.0.2\twarn\t2\t1.5\t\ty\n",
                  every_row=False)
    assert empty.extra == {0: (None, None, "x"), 1: ("1.5", None, "y")}


class LineByLine(CopyParser):
    def _whole(self, text: str) -> bool:
        return False


def test_whole_batches_parse_like_lines() -> None:
    rng = random.Random(11)
    lines = []
    for i in range(2000):
        state = rng.choice(["active", "blocked", "warn", "", "Paused"])
        mark = rng.choice([str(i), "", str(-i)])
        amount = rng.choice(["", "500", "12.50"])
        name = rng.choice(["", "Ann", "Zoë", "O\\\\Brien"])  # an escape: that batch by lines
        account = rng.choice([f"acc{i}", ""])
        lines.append(f"{account}\t10.1.{i // 256}.{i % 256}\t{state}\t{mark}\t{amount}\t\t{name}\n")
    data = "".join(lines).encode()
    for chunk in (97, 4096, len(data)):
        fast = parse(data, every_row=True, chunk=chunk)
        slow = LineByLine(EXTRAS, every_row=True)
        for i in range(0, len(data), chunk):
            slow.feed_sync(data[i:i + chunk])
        ref = slow.close()
        assert fast.account == ref.account and fast.addresses == ref.addresses
        assert fast.state == ref.state and list(fast.marks) == list(ref.marks)
        assert fast.dense == ref.dense
        assert [fast[i] for i in range(len(fast))] == [ref[i] for i in range(len(ref))]
    assert None in fast.account and None in fast.state and None in fast.marks


def test_notification_payloads() -> None:
    assert parse_payload("A1,A2,A3") == ["A1", "A2", "A3"]
    assert parse_payload(" A1 , A2,,A3,\n") == ["A1", "A2", "A3"]
    assert parse_payload("A 1,A2") == ["A 1", "A2"]  # inner spaces are part of an id
    assert parse_payload("") is None and parse_payload("  ") is None
    assert parse_payload('["A1", null, 7]') == ["A1", "7"]
    assert parse_payload("[broken") is None
