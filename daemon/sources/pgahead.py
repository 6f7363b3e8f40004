"""A storm's restricting rows, fetched ahead of its whole rows (the PostgreSQL source).

When a billing transaction changes thousands of accounts at once (a month-start
block), the engine can enforce the rows that restrict while the rest still arrive
(:class:`~debtgate.sources.base.DeltaAhead`); the Delta with every row whole follows
and decides. This module fetches those rows as cheaply as the engine's checks allow:

* only the columns the head start reads (account, addresses, state and the display
  columns that must convert, :data:`AHEAD_EXTRAS`, unless the server can check them:
  :data:`SERVER_CHECKS`), only restricting rows without a RADIUS session
  (:func:`ahead_query`): a quarter of the bytes and of the parsing of the whole rows;
* the ids in batches of :data:`BATCH_IDS`, so that the server finds them through the
  accounts' index and the first rows arrive within milliseconds. One query for all
  of them is planned as a sequential scan, which finds the changed rows only where
  the table holds them (after a bulk load: at its end, 0.3 s later). A batch slower
  than :data:`SCAN_SECONDS` (a query the server cannot answer from an index) sends
  the remaining ids at once;
* with a second connection (:func:`open_helper`), which imports the first one's
  snapshot (``pg_export_snapshot``): two backends take the batches in turn, so the
  server answers one while the other's rows are on their way. The helper is only an
  aid: if it cannot connect, import the snapshot or finish, its batches are not
  fetched ahead (their rows come with the Delta, whole).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import asyncpg

from ..errors import SourceError
from .base import Columns
from .pgbind import bind_text_array
from .pgcopy import RESTRICTING, CopyParser, addresses_expr, copy_into
from .pgfetch import bare_query, describe, setup_codecs

log = logging.getLogger(__name__)

AHEAD_EXTRAS = ("amount_due", "since", "block_at")
"""The display columns the head start's checks convert (the rest are read by the
Delta that follows), unless the server can tell that they convert
(:data:`SERVER_CHECKS`)."""
_AMOUNT_CHECK = "(q.{c} IS NULL OR abs(q.{c}::numeric) < 1e12)"
_DATE_CHECK = "(q.{c} IS NULL OR q.{c} BETWEEN '0001-01-01' AND '9999-12-31')"
SERVER_CHECKS = {
    "amount_due": {"numeric": _AMOUNT_CHECK, "int2": _AMOUNT_CHECK, "int4": _AMOUNT_CHECK,
                   "int8": _AMOUNT_CHECK},
    "since": {"date": _DATE_CHECK},
    "block_at": {"date": _DATE_CHECK},
}
"""Conditions over a display column of a type whose every value the row path either
converts or rejects, true exactly for the values it converts (a finite amount under
10^12, NaN and infinities excluded; a date Python can hold, infinities and dates
before Christ excluded, ISO written as the source sets DateStyle): with one, the
column is checked by the server and not fetched ahead; a row it excludes is left to
the Delta. Other types (text, floats, timestamps) are fetched and converted here."""
_SESSION_COLUMNS = ("nas", "session_id", "user_name")
BATCH_IDS = 4_000
"""Ids per query: on a table of a million accounts the planner switches from the
index to a sequential scan between 5,000 and 10,000 ids (measured)."""
FIRST_PART = 2_000
"""Rows of the first part of a change (and ids of its first batch): the engine starts
early."""
PART = 10_000
"""Rows of each later part: the engine checks one while the next arrive."""
SCAN_SECONDS = 0.1
"""A batch that takes longer was not answered from an index (measured: 4,000 ids in
25-35 ms through the index, 0.15-0.4 s by a scan): the rest go in one query."""


def ahead_query(query: str, types: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """The query as a storm's parts want it: only the rows that restrict and hold no
    RADIUS session (those the head start can take), whose display columns the server
    finds convertible (:data:`SERVER_CHECKS`), with the account, addresses, state,
    no change mark and only the :data:`AHEAD_EXTRAS` the server cannot check."""
    checks = {c: SERVER_CHECKS[c][types[c]] for c in AHEAD_EXTRAS
              if types.get(c) in SERVER_CHECKS[c]}
    extras = tuple(c for c in AHEAD_EXTRAS if c in types and c not in checks)
    cols = ["q.account::text", addresses_expr(types), "q.state::text", "NULL",
            *(f"q.{c}" for c in extras)]
    where = [RESTRICTING, *(f"q.{c} IS NULL" for c in _SESSION_COLUMNS if c in types),
             *(check.format(c=c) for c, check in checks.items())]
    sql = f"SELECT {', '.join(cols)} FROM ({bare_query(query)}) q"  # noqa: S608
    return f"{sql} WHERE {' AND '.join(where)}", extras


class _Batches:
    """The spans of ids still to fetch, taken in turn by the connections: the first
    of :data:`FIRST_PART` ids (the engine starts early), then :data:`BATCH_IDS`."""

    def __init__(self, total: int) -> None:
        self.total, self.at, self.size = total, 0, min(FIRST_PART, BATCH_IDS)

    def take(self) -> tuple[int, int] | None:
        if self.at >= self.total:
            return None
        span = (self.at, min(self.at + self.size, self.total))
        self.at = span[1]
        if self.size < BATCH_IDS:
            self.size = BATCH_IDS
        return span

    def rest_at_once(self) -> None:
        self.size = self.total  # not from an index: the rest in one query


class _Parts:
    """The rows fetched ahead, handed over in parts cut at the end of a batch: the
    first once it holds :data:`FIRST_PART` rows, the others :data:`PART`, each the
    parser's own columns (no copy). A batch's rows are kept only where their account
    is one of the batch's ids, so the parts of a change never repeat an account (the
    batches do not share ids): :class:`~debtgate.sources.base.DeltaAhead`."""

    def __init__(self, on_part: Callable[[Columns], None]) -> None:
        self.on_part, self.size, self.rows = on_part, FIRST_PART, 0

    def hand(self, cols: Columns, stray: list[int]) -> None:
        if stray:
            out = set(stray)
            cols = cols.pick([i for i in range(len(cols)) if i not in out])
        self.size = PART
        if len(cols):
            self.rows += len(cols)
            self.on_part(cols)


def strays(accounts: Sequence[str | None], since: int, batch: Sequence[str]) -> list[int]:
    """The rows from ``since`` on whose account is not one of ``batch``'s ids (an
    accounts query may return other rows: they are the Delta's to judge)."""
    asked = set(batch)
    got = accounts[since:]
    if asked.issuperset(got):
        return []
    return [since + i for i, account in enumerate(got) if account not in asked]


async def copy_ahead(conn: asyncpg.Connection, query: str, ids: Sequence[str],
                     on_part: Callable[[Columns], None], *, seconds: float | None = None,
                     helper: Awaitable[asyncpg.Connection | None] | None = None
                     ) -> int | None:
    """The restricting rows of ``ids`` (:func:`ahead_query` of the accounts ``query``;
    ``ids`` distinct) to ``on_part`` in parts while they arrive (see :class:`_Parts`),
    only rows of the ids asked in their batch; the number of rows, or None when the
    query's ``$1`` cannot be replaced by a literal (nothing fetched). ``helper``: a
    second connection in the same snapshot (:func:`open_helper`) that takes batches
    in turn."""
    types = await describe(conn, query, what="accounts query", seconds=seconds)
    if bind_text_array(query, ()) is None:
        return None
    batches = _Batches(len(ids))
    parts = _Parts(on_part)

    async def fetch(on: asyncpg.Connection, what: str) -> None:
        parser: CopyParser | None = None
        stray: list[int] = []
        while (span := batches.take()) is not None:
            batch = ids[span[0]:span[1]]
            sql, extras = ahead_query(bind_text_array(query, batch) or "", types)
            if parser is None:
                parser, stray = CopyParser(extras, every_row=True), []
            since = len(parser.cols)
            started = time.monotonic()
            await copy_into(on, sql, parser, what=what, seconds=seconds)
            if time.monotonic() - started > SCAN_SECONDS:
                batches.rest_at_once()
            stray += strays(parser.cols.account, since, batch)
            if len(parser.cols) - len(stray) >= parts.size:
                parts.hand(parser.close(), stray)
                parser = None
        if parser is not None:
            parts.hand(parser.close(), stray)  # the rest, at the end

    async def assist(opened: Awaitable[asyncpg.Connection | None]) -> None:
        try:
            other = await opened
            if other is not None:
                await fetch(other, "accounts query (restricting rows ahead, second connection)")
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
                SourceError) as exc:
            log.warning("a change of %d accounts: the second connection failed; the rows it "
                        "had not handed over come with the change: %s", len(ids), exc)

    aid = None if helper is None else asyncio.create_task(assist(helper), name="pg-ahead-aid")
    try:
        await fetch(conn, "accounts query (restricting rows ahead)")
        if aid is not None:
            await aid
    finally:
        if aid is not None and not aid.done():
            aid.cancel()
            await asyncio.gather(aid, return_exceptions=True)
    return parts.rows


async def open_helper(connect: Callable[[], Awaitable[asyncpg.Connection]], snapshot: str,
                      seconds: float | None) -> asyncpg.Connection | None:
    """A second connection in a read-only REPEATABLE READ transaction on the exported
    ``snapshot`` (``pg_export_snapshot`` of the first one, whose transaction must stay
    open), or None (logged) if it cannot be had: another server of a multi-host DSN,
    a pooler, a refused connection."""
    try:
        other = await asyncio.wait_for(connect(), seconds)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        log.warning("a second connection for a large change failed: %s", exc)
        return None
    try:
        await setup_codecs(other)
        await other.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
                            f"SET TRANSACTION SNAPSHOT {quote_literal(snapshot)}")
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("a second connection for a large change cannot share the snapshot: %s",
                    exc)
        other.terminate()
        return None
    return other


async def close_helper(opening: asyncio.Task[asyncpg.Connection | None]) -> None:
    """Close the second connection of :func:`open_helper` (still opening: cancelled).
    Terminated: its read-only transaction holds nothing worth a round trip."""
    if not opening.done():
        opening.cancel()
        await asyncio.gather(opening, return_exceptions=True)
        return
    other = None if opening.cancelled() or opening.exception() else opening.result()
    if other is not None:
        other.terminate()


def quote_literal(text: str) -> str:
    """``text`` as an SQL string literal (standard_conforming_strings)."""
    return "'" + text.replace("'", "''") + "'"
