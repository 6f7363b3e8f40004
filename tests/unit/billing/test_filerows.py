"""Subscriber files into columns: the same subscribers and rejections as row by row."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from debtgate.billing.base import Columns, Refused
from debtgate.billing.file import parse_text
from debtgate.billing.filerows import EXTRA_NAMES
from debtgate.billing.rows import Policy
from debtgate.billing.validate import validate_columns, validate_rows
from debtgate.enforce.inventory import Inventory
from debtgate.errors import SourceError
from tests.unit.billing.test_bulk_validate import rows as random_rows

ROWS: list[Any] = [
    {"account": "a", "addresses": ["10.0.0.1"], "state": "active"},
    {"account": "n", "addresses": "10.0.0.9", "state": "active", "name": "Named Active"},
    {"account": "b", "addresses": ["10.0.0.2", "2001:db8::2"], "state": "blocked",
     "amount_due": 12.5, "since": "2026-11-01", "name": " Bob ", "language": "EN"},
    {"account": "c", "addresses": "10.0.1.0/24", "state": "warn", "block_at": "2026-12-01"},
    {"account": "d", "addresses": ["10.0.0.4"], "state": "paused", "nas": "bras1",
     "session_id": "s1", "user_name": "d@isp"},
    {"account": "e", "addresses": [], "state": "blocked"},
    {"account": "f", "addresses": ["10.0.0.2"], "state": "blocked"},   # b's address
    {"account": "g", "addresses": "0.0.0.0/0", "state": "blocked"},
    {"account": "h", "addresses": ["10.0.0.8"], "state": "owing"},
    {"account": "i", "addresses": ["10.0.0.10"], "state": "blocked", "amount_due": "x"},
    {"account": "j", "addresses": ["10.0.0.11"], "state": "blocked", "extra_key": [1, 2]},
]


def outcome(rows: Any) -> tuple[Any, Any]:
    policy = Policy()
    out = (validate_columns(rows, policy) if isinstance(rows, Columns)
           else validate_rows(rows, policy))
    inv = Inventory(default_currency=policy.default_currency)
    inv.replace_all(out.subscribers, out.lean)
    return dict(inv.accounts), sorted((r.account or "", r.reason) for r in out.rejections)


@pytest.mark.parametrize("wrapped", [False, True])
def test_well_formed_json_decodes_into_columns_with_the_row_outcome(wrapped: bool) -> None:
    text = json.dumps({"subscribers": ROWS} if wrapped else ROWS)
    got = parse_text(text, "json")
    assert isinstance(got, Columns) and len(got) == len(ROWS)
    assert outcome(got) == outcome(json.loads(text)["subscribers"] if wrapped
                                   else json.loads(text))
    subs, rejections = outcome(got)
    assert subs["n"].name == "Named Active" and subs["d"].session is not None
    assert ("f", "address_conflict") in rejections and ("i", "bad_amount") in rejections


def test_a_value_of_an_unexpected_type_falls_back_to_rows_and_names_the_row() -> None:
    rows = [*ROWS, {"account": 17, "addresses": ["10.0.0.12"], "state": "blocked"},
            {"account": "k", "addresses": ["10.0.0.13"], "state": "blocked", "name": {"x": 1}},
            "not a row"]
    got = parse_text(json.dumps(rows), "json")
    assert not isinstance(got, Columns)
    subs, rejections = outcome(got)
    assert "17" in subs and ("k", "bad_field") in rejections and ("", "bad_row") in rejections
    assert outcome([r for r in got if r in ROWS]) == outcome(parse_text(json.dumps(ROWS), "json"))


@pytest.mark.parametrize("text", ["{", "[1, 2", '{"rows": []}', '"x"'])
def test_unusable_json_is_an_error_for_the_whole_file(text: str) -> None:
    with pytest.raises(SourceError, match="JSON"):
        parse_text(text, "json")


def test_csv_into_columns() -> None:
    out = io.StringIO()
    names = ["account", "addresses", "state", "amount_due", "since", "name", "unknown"]
    writer = csv.DictWriter(out, names)
    writer.writeheader()
    writer.writerow({"account": "a", "addresses": "10.0.0.1", "state": "active"})
    writer.writerow({"account": "b", "addresses": "10.0.0.2 2001:db8::2", "state": "blocked",
                     "amount_due": "10,5", "since": "2026-11-01", "name": "Bee"})
    writer.writerow({"account": "c", "addresses": "10.0.0.3", "state": "nope"})
    text = out.getvalue() + "d,10.0.0.4\n\n"  # a short row, a blank line
    got = parse_text(text, "csv")
    assert isinstance(got, Columns) and len(got) == 4
    subs, rejections = outcome(got)
    assert subs["b"].addresses == ("10.0.0.2", "2001:db8::2")
    assert str(subs["b"].amount_due) == "10.5"
    assert subs["a"].state.value == "active"
    assert rejections == [("c", "unknown_state"), ("d", "missing_field")]
    with pytest.raises(SourceError, match="header"):
        parse_text("id,addresses\n1,10.0.0.1\n", "csv")


@settings(max_examples=300, deadline=None)
@given(random_rows)
def test_any_decoded_file_validates_like_its_rows(items: list[dict[str, Any]]) -> None:
    """Columns read lazily from typed rows (display texts unchecked: the decoder typed
    them) and CSV columns give the row-by-row outcome."""
    data = json.dumps(items).encode()
    got = parse_text(data, "json")
    assert outcome(got) == outcome(items)
    if isinstance(got, Columns):
        assert got.typed_texts


def test_typed_json_rows_refuse_a_currency_or_a_name_like_the_row_path() -> None:
    """Typed rows skip the display columns' type checks; the currency and name checks
    still run on them (the bulk path reads those two columns)."""
    rows = [{"account": f"t{i}", "addresses": f"10.3.0.{i + 1}", "state": "blocked",
             "currency": "EUR", "name": f"T {i}"} for i in range(40)]
    rows[3]["currency"], rows[4]["name"], rows[5]["currency"] = "RUBLES", "x" * 201, "usd"
    got = parse_text(json.dumps(rows).encode(), "json")
    assert isinstance(got, Columns) and got.typed_texts
    assert outcome(got) == outcome(rows)
    subs, rejections = outcome(got)
    assert rejections == [("t3", "bad_currency"), ("t4", "bad_field")]
    assert subs["t5"].currency == "USD" and subs["t0"].currency == "EUR"


@settings(max_examples=200, deadline=None)
@given(random_rows, st.sets(st.integers(0, 29)), st.sampled_from(["utf-8", "cp1251"]))
def test_undecodable_csv_records_are_refused_like_any_rejected_row(
        items: list[dict[str, Any]], damaged: set[int], encoding: str) -> None:
    """A CSV record holding a byte the encoding refuses is rejected (bad_encoding) and
    counts as its account's row (a later row of the account is a duplicate; an earlier
    good one stays); every other record validates as the same rows given as dicts."""
    names = ["account", "addresses", "state", *EXTRA_NAMES]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    want: list[Any] = []
    lines = []
    for index, item in enumerate(items):
        cells = ["" if item.get(n) is None else str(item[n]) for n in names]
        writer.writerow(cells)
        row = {n: c or None for n, c in zip(names, cells, strict=True)}
        if index in damaged:
            lines.append(index + 2)
            row = {"account": row["account"],
                   "state": Refused("bad_encoding", f"line {index + 2}")}
        want.append(row)
    try:
        data = out.getvalue().encode(encoding).splitlines(keepends=True)
    except UnicodeEncodeError:  # Arabic-Indic digits have no cp1251 bytes
        assume(False)
    bad = b"\x98" if encoding == "cp1251" else b"\xc8"  # 0x98: no character in cp1251
    for at in (i + 2 for i in damaged if i < len(items)):
        data[at - 1] = data[at - 1].replace(b"\n", b"," + bad + b"\n")
    problems: list[str] = []
    got = parse_text(b"".join(data), "csv", encoding, problems)
    assert [int(p.split(":")[0].removeprefix("line ")) for p in problems] == lines
    assert all(f"not valid {encoding}" in p and f"0x{bad[0]:02x}" in p for p in problems)
    assert outcome(got) == outcome(want)
