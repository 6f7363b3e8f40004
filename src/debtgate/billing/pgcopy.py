"""COPY fetches of the PostgreSQL source into :class:`~debtgate.billing.base.Columns`.

Two fetches share one path (``COPY (SELECT ...) TO STDOUT`` in text format, parsed
chunk by chunk by :class:`CopyParser`): the snapshot, and the rows of a large burst
of changed accounts through the accounts query (:func:`copy_accounts`).

COPY takes no bind parameters: asyncpg's ``copy_from_query(query, *args)`` has the
server quote the ids (``quote_literal``) and puts the literal in place of ``$1``. It
replaces every ``$n`` of the text, inside literals and comments too, so only a query
whose one ``$`` is its ``$1`` goes this way (:func:`copyable`); another is fetched with
bind parameters, row by row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import asyncpg

from debtgate.billing.base import NO_MARK, Columns, MarkColumn
from debtgate.billing.pgfetch import EXTRA_COLUMNS, bare_query, describe, has_version, mark_expr
from debtgate.errors import SourceError

_ONE_PARAM = re.compile(r"\$1(?!\d)")


def copyable(query: str) -> bool:
    """Whether asyncpg can inline the accounts query's ``$1`` (its only ``$``)."""
    return query.count("$") == 1 and _ONE_PARAM.search(query) is not None


def addresses_expr(types: Mapping[str, str]) -> str:
    return ("array_to_string(q.addresses, ' ')" if types["addresses"].startswith("_")
            else "q.addresses")


def lean_query(query: str, types: Mapping[str, str], *, every_row: bool = False,
               version: bool | None = None
               ) -> tuple[str, tuple[str, ...]]:
    """The query as COPY wants it: account, addresses (as one text), state, the
    change mark, then the display and session columns, NULL for active rows unless
    ``every_row`` (a snapshot does not need them: an active subscriber is not
    enforced). ``version`` says whether the
    change mark is the ``version`` column (default: if the query has one) or the
    row's fingerprint."""
    extras = tuple(c for c in EXTRA_COLUMNS if c in types)
    cols = ["q.account::text", addresses_expr(types), "q.state::text", mark_expr(types, version)]
    cols += [f"q.{c}" if every_row else f"CASE WHEN q.state::text = 'active' THEN NULL "
             f"ELSE q.{c} END" for c in extras]
    sql = f"SELECT {', '.join(cols)} FROM ({bare_query(query)}) q"  # noqa: S608
    return sql, extras


_UNESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_STATE_TEXT = {s: s for s in ("active", "warn", "blocked", "paused", "disabled")}
"""The states as one shared text each."""


def _unescape_field(field: str) -> str | None:
    if field == "\\N":
        return None
    return _UNESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), field)


class CopyParser:
    """COPY ... TO STDOUT (text format, NULL as '') into :class:`Columns`, chunk by chunk.

    An empty field is None (no contract column distinguishes '' from NULL). The
    extra columns are kept for non-active rows, or for every row with ``every_row``.
    (A column-wise split of whole batches was measured: 15 % more CPU on a snapshot
    of mostly active rows, 20 % less on rows that all carry the extra columns.)
    """

    def __init__(self, extra_names: tuple[str, ...], every_row: bool = False) -> None:
        self.cols = Columns(extra_names)
        self.cols.typed_texts = True  # COPY text: every field is text or NULL
        self.cols.marks = MarkColumn()
        self._tail = b""
        self._extras = len(extra_names)
        self._skip: str | None = None if every_row else "active"
        """Rows in this state keep no extra columns (None: every row keeps them)."""
        self._shared: dict[str, str | None] = {"": None}
        """One text object per distinct value (an empty field is None), taken with
        ``setdefault`` in C loops: the display columns repeat (language, currency,
        tariff, dates, NAS), and a value kept once leaves no freed duplicate behind
        among the long-lived texts of the snapshot."""
        self._dense: list[list[str | None]] | None = None
        """With ``every_row``: the extra columns, held dense (no tuple per row)."""
        if every_row and extra_names:
            self._dense = [[] for _ in extra_names]
            self.cols.set_dense(dict(zip(extra_names, self._dense, strict=True)))

    async def feed(self, chunk: bytes) -> None:
        self.feed_sync(chunk)

    def feed_sync(self, chunk: bytes) -> None:
        data = self._tail + chunk if self._tail else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self._tail = bytes(data)
            return
        self._tail = bytes(data[cut + 1:])
        text = bytes(data[:cut]).decode("utf-8")
        if self._skip is not None or "\\" in text or not self._whole(text):
            self._lines(text.split("\n"))

    def close(self) -> Columns:
        if self._tail:
            self._lines([self._tail.decode("utf-8")])
            self._tail = b""
        self._shared.clear()
        return self.cols

    def _whole(self, text: str) -> bool:
        """Every row of a batch at once (rows that all keep their extra columns, no
        escape in the batch): tabs and newlines split together, each column taken by
        slicing, NULLs mended only in a column that has some. For a large change,
        where every row carries every column, this (with the extra columns held
        dense) takes about half the time of the line parser. False (nothing taken)
        if the batch does not split into whole rows."""
        k = 4 + self._extras
        fields = text.replace("\n", "\t").split("\t")
        rows = text.count("\n") + 1
        if len(fields) != rows * k:
            return False
        cols = self.cols
        for column, at in ((cols.account, 0), (cols.addresses, 1)):
            got = fields[at::k]
            column.extend([x or None for x in got] if "" in got else got)
        states = fields[2::k]
        cols.state.extend([_STATE_TEXT.get(x, x) or None for x in states] if "" in states
                          else map(_STATE_TEXT.get, states, states))
        marks = fields[3::k]
        cols.marks.raw.extend(  # type: ignore[union-attr]
            [int(m) if m else NO_MARK for m in marks] if "" in marks else map(int, marks))
        if self._dense is not None:
            value = self._shared.setdefault
            for at, column in enumerate(self._dense, 4):
                got = fields[at::k]
                column.extend(map(value, got, got))
        return True

    def _lines(self, lines: list[str]) -> None:
        cols = self.cols
        accounts, addresses, states = cols.account, cols.addresses, cols.state
        marks = cols.marks.raw  # type: ignore[union-attr]
        dense = self._dense
        extra = cols.extra if dense is None else {}
        shared = _STATE_TEXT
        skip = self._skip
        value = self._shared.setdefault
        n = len(accounts)
        for line in lines:
            if "\\" in line:
                self._add([_unescape_field(f) for f in line.split("\t")])
                n += 1
                continue
            acc, addr, state, mark, *rest = line.split("\t", 4)
            accounts.append(acc or None)
            addresses.append(addr or None)
            states.append(shared.get(state, state) or None)
            marks.append(int(mark) if mark else NO_MARK)
            if dense is not None:
                values = rest[0].split("\t") if rest else []
                values += [""] * (len(dense) - len(values))
                for column, got in zip(dense, map(value, values, values), strict=False):
                    column.append(got)
            elif rest and state != skip:
                values = rest[0].split("\t")
                extra[n] = tuple(map(value, values, values))
            n += 1

    def _add(self, fields: list[str | None]) -> None:
        cols = self.cols
        fields = [f or None for f in fields]
        fields += [None] * (4 + self._extras - len(fields))
        cols.account.append(fields[0])
        cols.addresses.append(fields[1])
        cols.state.append(fields[2])
        cols.marks.append(int(fields[3]) if fields[3] else None)
        if self._dense is not None:
            for column, got in zip(self._dense, fields[4:], strict=False):
                column.append(got)
        elif self._extras and (self._skip is None or fields[2] != self._skip):
            cols.extra[len(cols.account) - 1] = tuple(fields[4:4 + self._extras])


async def copy_into(conn: asyncpg.Connection, sql: str, parser: CopyParser, *, what: str,
                    seconds: float | None, args: Sequence[object] = ()) -> None:
    """The rows of ``sql`` into ``parser`` (not closed: more may follow)."""
    try:
        await conn.copy_from_query(sql, *args, output=parser.feed, format="text", null="",
                                   timeout=seconds)
    except asyncpg.PostgresError as exc:
        if isinstance(exc, asyncpg.PostgresConnectionError):
            raise
        raise SourceError(f"postgres: the {what} failed: {exc}") from None


async def _copy(conn: asyncpg.Connection, sql: str, parser: CopyParser, *, what: str,
                seconds: float | None, args: Sequence[object] = ()) -> Columns:
    await copy_into(conn, sql, parser, what=what, seconds=seconds, args=args)
    return parser.close()


async def copy_snapshot(conn: asyncpg.Connection, query: str, *, what: str,
                        seconds: float | None = None) -> tuple[Columns, bool]:
    """The snapshot through COPY into columns; also whether marks are versions."""
    types = await describe(conn, query, what=what, seconds=seconds)
    sql, extras = lean_query(query, types)
    cols = await _copy(conn, sql, CopyParser(extras), what=what, seconds=seconds)
    return cols, has_version(types)


async def copy_restricted(conn: asyncpg.Connection, query: str, *, what: str,
                          seconds: float | None = None) -> Columns:
    """The snapshot query's rows whose state is not ``active``, through COPY (the
    restricted-first fetch of a first start: :meth:`PgSync._restricted_head`)."""
    types = await describe(conn, query, what=what, seconds=seconds)
    sql, extras = lean_query(query, types)
    return await _copy(conn, f"{sql} WHERE q.state::text IS DISTINCT FROM 'active'",
                       CopyParser(extras), what=what, seconds=seconds)


async def copy_accounts(conn: asyncpg.Connection, query: str, ids: Sequence[str],
                        asked: set[str], *, version: bool, seconds: float | None = None
                        ) -> Columns | None:
    """The accounts query's rows of ``ids`` through COPY, every column of every row (as
    the row-by-row fetch gives them), with the change mark the source keeps (the
    ``version`` column if ``version``, else the row's fingerprint); only rows whose
    account was asked (``asked``: ``ids`` as a set). None for a query that is not
    :func:`copyable` (the caller fetches the rows with bind parameters)."""
    if not copyable(query):
        return None
    types = await describe(conn, query, what="accounts query", seconds=seconds)
    sql, extras = lean_query(query, types, every_row=True, version=version)
    cols = await _copy(conn, sql, CopyParser(extras, every_row=True),
                       what="accounts query", seconds=seconds, args=(list(ids),))
    return only_accounts(cols, asked)


def only_accounts(cols: Columns, wanted: set[str]) -> Columns:
    """The rows of ``cols`` whose account is in ``wanted`` (``cols`` itself if all are)."""
    if wanted.issuperset(cols.account):
        return cols
    return cols.pick([i for i, account in enumerate(cols.account) if account in wanted])
