"""Subscriber files decoded straight into :class:`~debtgate.sources.base.Columns`.

A well-formed JSON file is decoded by msgspec into typed rows (in C: about half the
time of ``json.loads`` building a dict per row) and transposed into columns, the form
the engine validates in bulk (:mod:`debtgate.validate_bulk`). A file with a value of
an unexpected type somewhere (a number as an account, an object as a name) is not
refused for that: it is decoded generically and every row is validated one by one,
so each bad row is named and the good ones still apply. CSV is read into columns
directly (an empty cell is NULL, as in the PostgreSQL snapshot).
"""

from __future__ import annotations

import csv
import io
import operator
from collections.abc import Mapping
from typing import Any

import msgspec

from ..errors import SourceError
from .base import Columns, LazyColumns, Row, gc_paused

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
    return _assemble(
        list(map(_ACCOUNT, rows)),
        [a[0] if type(a) is list and len(a) == 1 else a for a in map(_ADDRESSES, rows)],
        list(map(_STATE, rows)),
        LazyColumns(rows, EXTRA_NAMES))


def _tuples_to_columns(tuples: list[tuple[Any, ...]]) -> Columns:
    """Columns from row tuples in contract order (account, addresses, state, extras)."""
    width = len(CONTRACT)
    return _assemble(list(map(_FIRST, tuples)), list(map(_SECOND, tuples)),
                     list(map(_THIRD, tuples)),
                     {name: list(map(operator.itemgetter(width + k), tuples))
                      for k, name in enumerate(EXTRA_NAMES)})


def decode_json(text: str | bytes) -> Columns | list[Row]:
    """Columns for a well-formed file; the generic rows when some value has an unexpected
    type; SourceError for a file that is not a list of rows (or ``{"subscribers": [...]}``)."""
    with gc_paused():
        try:
            data = _TYPED.decode(text)
        except msgspec.ValidationError:
            return _generic(text)
        except msgspec.DecodeError as exc:
            raise SourceError(f"JSON: {exc}") from None
        return _columns(data.subscribers if isinstance(data, Wrapped) else data)


def _generic(text: str | bytes) -> list[Row]:
    try:
        data: Any = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise SourceError(f"JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("subscribers")
    if not isinstance(data, list):
        raise SourceError('JSON: expected a list of rows or {"subscribers": [...]}')
    # Non-mapping items are passed on: validation rejects them one by one.
    return data


def decode_csv(text: str) -> Columns:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or "account" not in header:
        raise SourceError("CSV: the header must name at least 'account'")
    where = {name: header.index(name) for name in (*CONTRACT, *EXTRA_NAMES) if name in header}
    order = [where.get(name) for name in (*CONTRACT, *EXTRA_NAMES)]
    tuples = []
    for cells in reader:
        if not cells:
            continue  # a blank line (csv.DictReader skips them too)
        size = len(cells)
        tuples.append(tuple(cells[i] or None if i is not None and i < size else None
                            for i in order))
    return _tuples_to_columns(tuples)
