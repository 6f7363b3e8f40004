"""What the PostgreSQL source fetches and hands to the engine (the half of
:class:`~debtgate.billing.postgres.PostgresSource` that is not the connection loop).

* A full snapshot goes through COPY into :class:`Columns`; later resyncs compare
  change marks (versions or fingerprints) and emit a :class:`Delta` of what changed.
* The rows of changed accounts come from the accounts query: row by row (asyncpg
  Records, lowest latency) for a few ids, through COPY into :class:`Columns` above
  :data:`COPY_IDS` ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import asyncpg

from debtgate.billing.base import Columns, Delta, Row, Sink, Snapshot, SourceHealth
from debtgate.billing.coalesce import Coalescer, PendingIds
from debtgate.billing.memory import release_memory
from debtgate.billing.pgcopy import copy_accounts, copy_restricted, copy_snapshot
from debtgate.billing.pgfetch import (
    Marks,
    describe,
    fetch_prints,
    fetch_rows,
    has_version,
    row_mark,
    summary_query,
)
from debtgate.config.postgres import PostgresSourceSection
from debtgate.errors import SourceError

log = logging.getLogger(__name__)
COPY_IDS = 500
"""Above this many account ids the accounts query is fetched through COPY into
:class:`Columns` (measured: see docs/billing-postgres.md, "Benchmarks"); fewer go
row by row, the lowest latency for a payment."""


class PgSync:
    """Snapshots, resyncs and deltas of the PostgreSQL source (a mixin: the source
    class provides the settings, the health and the pending-change state)."""

    s: PostgresSourceSection
    health: SourceHealth
    counters: dict[str, int]
    _prints: Marks | None
    _version: bool
    _next_full: float
    _pending: PendingIds
    _coalesce: Coalescer
    _resync: bool
    _full: bool
    _next_resync: float
    _hold: Callable[[], None]
    _restricted_first: bool

    async def _resync_now(self, conn: asyncpg.Connection, sink: Sink) -> None:
        full = self._full or self._prints is None or (
            self._version and time.monotonic() >= self._next_full)
        self._resync = self._full = False
        self._next_resync = time.monotonic() + self.s.resync_interval
        started = time.monotonic()
        seq = time.monotonic_ns()
        # Ids notified from now on are applied after the snapshot; older ones it covers.
        self._pending.clear()
        self._coalesce.take()
        self._hold()
        if not full:
            types = await describe(conn, self.s.snapshot_query, what="snapshot query",
                                   seconds=self.s.query_timeout)
            full = has_version(types) != self._version  # the view changed its shape
        if full:
            self._prints = None
            if self._restricted_first:
                await self._restricted_head(conn, sink)
                self._restricted_first = False
                seq = time.monotonic_ns()  # the snapshot's rows are read after the head's
            cols, self._version = await copy_snapshot(
                conn, self.s.snapshot_query, what="snapshot query", seconds=self.s.query_timeout)
            self._next_full = time.monotonic() + self.s.full_resync_interval
            await self._emit(sink, Snapshot(cols, seq), cols, (), snapshot=True)
            del cols
            release_memory()  # the snapshot's transient objects: give the pages back
            self.counters["snapshots"] += 1
        else:
            await self._diff(conn, sink, seq)
        self.health.last_snapshot = time.time()
        self.health.extra["last_resync_seconds"] = round(time.monotonic() - started, 3)

    async def _restricted_head(self, conn: asyncpg.Connection, sink: Sink) -> None:
        """A first start (the kernel enforces nothing, no state restored): the rows
        that are not active, as one change, before the whole snapshot. The same path
        as any large change; the snapshot that follows applies the rest and repairs
        what the head could not see (an address a restricted row shares with an
        active one: the earlier holder keeps it). Measured on the product at 1,000,000
        subscribers, 100,000 restricted (docs/BENCHMARKS.md, two full passes): every
        sampled restriction enforced 4.2-5.2 s after the spawn (the kernel listing
        holding all of them 5.9-8.0 s), ready 2.9-3.5 s, against 10.0 s (11.4 s) and
        10.6 s when they waited for the whole snapshot's fetch and validation.
        ``restrictions_first = false`` turns it off."""
        seq = time.monotonic_ns()
        cols = await copy_restricted(conn, self.s.snapshot_query, what="snapshot query",
                                     seconds=self.s.query_timeout)
        log.info("first start: %d restricted rows fetched before the snapshot", len(cols))
        await self._emit(sink, Delta(cols, (), seq), cols, ())
        del cols

    async def _fetch_accounts(self, conn: asyncpg.Connection, ids: list[str],
                              asked: set[str] | None = None
                              ) -> tuple[Sequence[Row], list[str]]:
        """The current rows of ``ids`` (only rows of asked accounts) and the asked ids
        the accounts query no longer returns (gone); ``asked``: ``ids`` as a set, if
        the caller holds one."""
        wanted = set(ids) if asked is None else asked
        every = ids
        if any("\x00" in i for i in ids):  # no PostgreSQL text holds one: gone
            ids = [i for i in ids if "\x00" not in i]
        rows: Sequence[Row] | None = None
        if len(ids) > COPY_IDS:
            try:
                # Inside a transaction (a storm's), a failed COPY must not abort it.
                async with conn.transaction() if conn.is_in_transaction() else nullcontext():
                    rows = await copy_accounts(conn, self.s.accounts_query, ids, wanted,
                                               version=self._version,
                                               seconds=self.s.query_timeout)
            except SourceError as exc:
                log.warning("accounts query through COPY failed for %d ids, fetching them "
                            "row by row: %s", len(ids), exc)
            else:
                if rows is None:
                    log.debug("accounts query: %d ids row by row (its $1 cannot be replaced "
                              "by a literal)", len(ids))
        if isinstance(rows, Columns):
            got = set(rows.account)
        else:
            rows = [r for r in await fetch_rows(
                conn, self.s.accounts_query, ids, what="accounts query",
                seconds=self.s.query_timeout, fingerprint=not self._version)
                if str(r.get("account")) in wanted]
            got = {str(r.get("account")) for r in rows}
        return rows, [a for a in every if a not in got]

    async def _diff(self, conn: asyncpg.Connection, sink: Sink, seq: int) -> None:
        assert self._prints is not None
        marks = self._prints
        if self._version:
            # Nothing changed if the row count and the sum of versions are the same
            # (a change bumps a version; a new version is larger than any older one).
            try:
                count, total = await conn.fetchrow(summary_query(self.s.snapshot_query),
                                                   timeout=self.s.query_timeout)
            except asyncpg.PostgresError as exc:
                if isinstance(exc, asyncpg.PostgresConnectionError):
                    raise
                raise SourceError(f"postgres: the snapshot query failed: {exc}") from None
            if (count, int(total)) == marks.summary():
                return
        known = marks.as_dict()
        prints = await fetch_prints(conn, self.s.snapshot_query, seconds=self.s.query_timeout,
                                    version=self._version)
        changed = [r[0] for r in prints if known.get(r[0]) != r[1]]
        if len(prints) != len(known) or changed:
            current = {r[0] for r in prints}
            gone = [a for a in known if a not in current]
        else:
            gone = []
        del prints, known
        if not changed and not gone:
            return
        rows: Sequence[Row] = []
        if changed:
            rows, vanished = await self._fetch_accounts(conn, changed)
            gone.extend(vanished)
        log.info("resync: %d changed and %d vanished accounts", len(rows), len(gone))
        await self._emit(sink, Delta(rows, gone, seq), rows, gone)

    async def _emit(self, sink: Sink, event: Snapshot | Delta, rows: Any,
                    gone: Any, snapshot: bool = False) -> None:
        try:
            await sink(event)
        except Exception:
            self._prints = None  # the engine's state is unknown: next resync is full
            raise
        if snapshot:
            if isinstance(rows, Columns):
                self._prints = Marks(rows.account, rows.marks)
            else:
                self._prints = Marks([str(r.get("account")) for r in rows],
                                     [row_mark(r, self._version) for r in rows])
        elif self._prints is not None:
            if isinstance(rows, Columns):
                for account, mark in zip(rows.account, rows.marks, strict=True):
                    if account is not None:
                        self._prints.set(account, mark)
            else:
                for r in rows:
                    self._prints.set(str(r.get("account")), row_mark(r, self._version))
            for account in gone:
                self._prints.drop(account)
        self.health.last_event = time.time()
        if not snapshot:
            self.counters["deltas"] += 1
        self.health.extra.update(self.counters)
        self.health.extra["accounts"] = self._prints.count if self._prints else 0
