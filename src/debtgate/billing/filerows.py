"""Subscriber files decoded straight into :class:`~debtgate.billing.base.Columns`.

A well-formed JSON file is decoded by msgspec into typed rows (in C: about half the
time of ``json.loads`` building a dict per row) and transposed into columns, the form
the engine validates in bulk (:mod:`debtgate.billing.validate_bulk`). A file with a value of
an unexpected type somewhere (a number as an account, an object as a name) is not
refused for that: it is decoded generically and every row is validated one by one,
so each bad row is named and the good ones still apply. CSV is read into columns
directly (an empty cell is NULL, as in the PostgreSQL snapshot).

Text that is not valid in the file's encoding (``[source.file] encoding``) rejects
the rows that hold it, not the file: the file is decoded with each undecodable byte
kept as a lone surrogate (``surrogateescape``), and a CSV record or JSON row holding
one (or a JSON ``\\ud800`` escape that pairs with nothing) becomes a
:class:`~debtgate.billing.base.Refused` row (reason ``bad_encoding``, naming the line
or row, the encoding and the byte). Only a file whose structure is broken (truncated
JSON, an unterminated CSV quote) is refused whole.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import operator
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from debtgate.billing.base import Columns, LazyColumns, Refused, Row
from debtgate.billing.memory import gc_paused
from debtgate.errors import SourceError

CONTRACT = ("account", "addresses", "state")
EXTRA_NAMES = ("amount_due", "currency", "since", "block_at", "name", "language", "tariff",
               "nas", "session_id", "user_name")


class FileRow(msgspec.Struct, gc=False):
    """One row of a well-formed subscriber file (the contract, docs/subscribers.md)."""

    account: str
    addresses: str | list[str]
    state: str
    amount_due: str | int | float | None = None
    currency: str | None = None
    since: str | None = None
    block_at: str | None = None
    name: str | None = None
    language: str | None = None
    tariff: str | None = None
    nas: str | None = None
    session_id: str | None = None
    user_name: str | None = None


class Wrapped(msgspec.Struct, gc=False):
    subscribers: list[FileRow]


_TYPED = msgspec.json.Decoder(list[FileRow] | Wrapped)
_ACCOUNT = operator.attrgetter("account")
_ADDRESSES = operator.attrgetter("addresses")
_STATE = operator.attrgetter("state")
_FIRST, _SECOND, _THIRD = (operator.itemgetter(i) for i in range(3))


def _assemble(account: list[Any], addresses: list[Any], state: list[Any],
              extras: Mapping[str, list[Any]]) -> Columns:
    """Columns from the contract's three columns and the extra columns (``EXTRA_NAMES``,
    each as long as ``account``; held dense)."""
    cols = Columns(EXTRA_NAMES)
    cols.account, cols.addresses, cols.state = account, addresses, state
    cols.marks = [None] * len(account)
    cols.set_dense(extras)
    cols.typed_texts = True  # typed rows and CSV cells: display fields are text or None
    return cols


def _columns(rows: list[FileRow]) -> Columns:
    """Columns from typed rows: each column read with one C loop; the extra ones
    when first needed (the display texts only after enforcement has begun)."""
    cols = _assemble(
        list(map(_ACCOUNT, rows)),
        [a[0] if type(a) is list and len(a) == 1 else a for a in map(_ADDRESSES, rows)],
        list(map(_STATE, rows)),
        LazyColumns(rows, EXTRA_NAMES))
    cols.lines = "row"
    return cols


def _tuples_to_columns(tuples: list[tuple[Any, ...]]) -> Columns:
    """Columns from row tuples in contract order (account, addresses, state, extras)."""
    width = len(CONTRACT)
    return _assemble(list(map(_FIRST, tuples)), list(map(_SECOND, tuples)),
                     list(map(_THIRD, tuples)),
                     {name: list(map(operator.itemgetter(width + k), tuples))
                      for k, name in enumerate(EXTRA_NAMES)})


_SURROGATE = re.compile("[\ud800-\udfff]")


def _undecodable(char: str, encoding: str) -> str:
    """What one lone surrogate in decoded text stands for."""
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: a byte the codec refused
        return (f"byte 0x{code - 0xDC00:02x} is not valid {encoding} text (if the file is "
                "in another encoding, set [source.file] encoding)")
    return f"\\u{code:04x} is an unpaired UTF-16 surrogate (encodes no character)"


def decode_json(data: str | bytes, encoding: str = "utf-8",
                problems: list[str] | None = None) -> Columns | list[Row]:
    """Columns for a well-formed file; the generic rows when some value has an unexpected
    type or some text is not valid (those rows come back :class:`Refused`); SourceError
    for a file that is not a list of rows (or ``{"subscribers": [...]}``). ``problems``
    collects a line per refused row."""
    text: str | bytes = data
    try:
        utf8 = codecs.lookup(encoding).name == "utf-8"
    except LookupError as exc:  # the config checks the name: only a caller's mistake
        raise SourceError(f"JSON: {exc}") from None
    if isinstance(data, bytes) and not utf8:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            return _salvage(data, encoding, problems)
    with gc_paused():
        try:
            got = _TYPED.decode(text)
        except msgspec.ValidationError:
            return _generic(text, encoding, problems)
        except (msgspec.DecodeError, UnicodeEncodeError):
            # Broken structure, bytes the encoding refuses, or a \ud800 escape (msgspec
            # calls that "truncated"): the standard parser tells them apart.
            return _salvage(data, encoding, problems)
        except RecursionError:
            raise SourceError("JSON: nested too deeply") from None
        return _columns(got.subscribers if isinstance(got, Wrapped) else got)


def _rows_of(data: Any) -> list[Row]:
    if isinstance(data, dict):
        data = data.get("subscribers")
    if not isinstance(data, list):
        raise SourceError('JSON: expected a list of rows or {"subscribers": [...]}')
    # Non-mapping items are passed on: validation rejects them one by one.
    return data


def _generic(text: str | bytes, encoding: str, problems: list[str] | None) -> list[Row]:
    try:
        data: Any = msgspec.json.decode(text)
    except (msgspec.DecodeError, UnicodeEncodeError):
        return _salvage(text, encoding, problems)
    except RecursionError:
        raise SourceError("JSON: nested too deeply") from None
    return _rows_of(data)


def _salvage(data: str | bytes, encoding: str, problems: list[str] | None) -> list[Row]:
    """The rows of a file msgspec refused, by the standard parser: a file whose
    structure is broken is refused whole (the parser names line and column); rows
    holding text that is not valid come back :class:`Refused`, one by one."""
    try:
        text = data.decode(encoding, "surrogateescape") if isinstance(data, bytes) else data
    except (UnicodeError, LookupError) as exc:
        raise SourceError(f"JSON: cannot decode as {encoding}: {exc}") from None
    try:
        rows = _rows_of(json.loads(text))
    except json.JSONDecodeError as exc:
        raise SourceError(f"JSON: {exc}") from None
    except RecursionError:
        raise SourceError("JSON: nested too deeply") from None
    for index, row in enumerate(rows):
        reason = "bad_encoding"
        try:
            bad = _bad_text(row)
        except RecursionError:  # nested about as deep as the parser goes
            reason, bad = "bad_row", ("row", "")
        if bad is None:
            continue
        where, char = bad
        detail = (f"row {index + 1}: {where}: {_undecodable(char, encoding)}" if char
                  else f"row {index + 1}: nested too deeply")
        account = row.get("account") if isinstance(row, dict) else None
        if type(account) is not str or _SURROGATE.search(account):
            account = None
        rows[index] = {"account": account, "state": Refused(reason, detail)}
        if problems is not None:
            problems.append(detail)
    return rows


def _bad_text(value: Any, where: str = "row") -> tuple[str, str] | None:
    """(where, the surrogate) of the first lone surrogate in a decoded JSON value."""
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        return None if found is None else (where, found.group())
    if isinstance(value, dict):
        for key, item in value.items():
            found = _SURROGATE.search(key)
            if found is not None:
                return "a column name", found.group()
            got = _bad_text(item, key if where == "row" else where)
            if got is not None:
                return got
    elif isinstance(value, list):
        for item in value:
            got = _bad_text(item, where)
            if got is not None:
                return got
    return None


def decode_csv(data: str | bytes, encoding: str = "utf-8",
               problems: list[str] | None = None) -> Columns:
    """Columns of a CSV file (a header row naming the columns). A record holding bytes
    that ``encoding`` does not decode is :class:`Refused` (its line, the encoding and
    the byte named; ``problems`` collects a line each); a UTF-8 byte order mark is
    skipped. SourceError for a file without a usable header or with broken quoting."""
    damaged = False
    if isinstance(data, bytes):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            damaged = True
            try:
                text = data.decode(encoding, "surrogateescape")
            except (UnicodeError, LookupError) as exc:
                raise SourceError(f"CSV: cannot decode as {encoding}: {exc}") from None
        except LookupError as exc:
            raise SourceError(f"CSV: {exc}") from None
    else:
        text = data
        damaged = _SURROGATE.search(text) is not None
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        if header and damaged and _SURROGATE.search("".join(header)):
            raise SourceError(f"CSV: line 1 (the header): "
                              f"{_undecodable(_first_surrogate(header), encoding)}")
        if not header or "account" not in header:
            raise SourceError("CSV: the header must name at least 'account'")
        where = {name: header.index(name) for name in (*CONTRACT, *EXTRA_NAMES) if name in header}
        order = [where.get(name) for name in (*CONTRACT, *EXTRA_NAMES)]
        tuples = []
        lines: list[int] = []
        line = reader.line_num
        for cells in reader:
            start, line = line + 1, reader.line_num
            if not cells:
                continue  # a blank line (csv.DictReader skips them too)
            size = len(cells)
            lines.append(start)
            if damaged and _SURROGATE.search("".join(cells)):
                tuples.append(_refused_record(cells, where.get("account"), start, encoding,
                                              problems))
                continue
            tuples.append(tuple(cells[i] or None if i is not None and i < size else None
                                for i in order))
    except csv.Error as exc:
        raise SourceError(f"CSV: line {reader.line_num}: {exc}") from None
    cols = _tuples_to_columns(tuples)
    cols.lines = lines
    return cols


def _first_surrogate(cells: list[str]) -> str:
    found = _SURROGATE.search("".join(cells))
    assert found is not None  # noqa: S101 - the caller found one
    return found.group()


def _refused_record(cells: list[str], at: int | None, line: int, encoding: str,
                    problems: list[str] | None) -> tuple[Any, ...]:
    """The row of a record holding undecodable bytes: its account (when that cell
    decoded) and a :class:`Refused` state; nothing else of it is kept."""
    detail = f"line {line}: {_undecodable(_first_surrogate(cells), encoding)}"
    account = cells[at] if at is not None and at < len(cells) else None
    if not account or _SURROGATE.search(account):
        account = None
    if problems is not None:
        problems.append(detail)
    return (account, None, Refused("bad_encoding", detail), *(None,) * len(EXTRA_NAMES))
