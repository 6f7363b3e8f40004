"""The PostgreSQL billing feed: a snapshot, then LISTEN/NOTIFY deltas.

One dedicated connection (never pooled): after every (re)connect it LISTENs,
then takes a snapshot, then applies notifications. A notification carries
account ids (comma-separated, or a JSON array); an empty payload means
"resync everything". A notification on an idle feed is applied at once; under
load, ids arriving within ``coalesce_ms`` are fetched with the accounts query and
applied as ONE Delta (:mod:`debtgate.sources.coalesce`); ids the query no longer returns are
``gone``. A heartbeat notices a dead server; reconnects back off; a periodic
resync is the safety net.

The first snapshot is a full :class:`Snapshot`, preceded on a cold start by its
restricting rows (``restrictions_first``). Later resyncs (periodic, after
a reconnect, :meth:`request_resync`) fetch only each row's fingerprint and
emit a :class:`Delta` of the rows that changed and the accounts that vanished:
a no-op resync touches nothing. ``request_resync(full=True)`` sends a full
Snapshot again (e.g. after the gateway's validation policy changed). What is
fetched and emitted lives in :mod:`debtgate.sources.pgsync`; this module holds
the connection and the notification loop.

While the billing is unreachable no event is emitted: the kernel keeps its
state (no mass unblock, no mass block).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import Field, SecretStr, model_validator

from ..configbase import Section
from ..errors import SourceError
from .base import Columns, Delta, DeltaAhead, Row, Sink, SourceHealth, gc_paused
from .coalesce import Coalescer, PendingIds
from .pgahead import close_helper, copy_ahead, open_helper
from .pgfetch import Marks, dsn_hosts, load_dsn, parse_payload, redact, setup_codecs
from .pgsync import PgSync

log = logging.getLogger(__name__)
BULK_IDS = 2000
"""Above this many ids in one change, cyclic GC is paused while it is fetched and applied."""
AHEAD_IDS = 2000
"""From this many changed accounts on, their rows go to the engine in parts while
the rest are still fetched (:class:`DeltaAhead`), so that a storm's restrictions are
enforced as the rows arrive; a smaller change comes whole."""
LOST = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError, ConnectionError)


class PostgresSourceSection(Section):
    dsn: SecretStr | None = None
    """libpq-style DSN, e.g. ``postgresql://debtgate@db1:5432,db2:5432/billing?target_session_attrs=any``
    (several hosts: tried in order). Never logged; prefer ``dsn_file``."""
    dsn_file: Path | None = None
    """File holding the DSN (mode 0600), read at every connect."""
    snapshot_query: str = "SELECT * FROM debtgate_subscribers"
    """Returns every subscriber as contract rows (account, addresses, state, ...)."""
    accounts_query: str = "SELECT * FROM debtgate_subscribers WHERE account = ANY($1::text[])"
    """Returns the rows of the accounts in ``$1::text[]`` (missing ones are gone)."""
    channel: str = Field("debtgate", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    """The LISTEN channel the billing's triggers NOTIFY with account ids."""
    coalesce_ms: int = Field(20, ge=0, le=5000)
    """Notifications within this many milliseconds are applied as one change."""
    # Adaptive (debtgate.sources.coalesce): on an idle feed a notification is applied
    # after a tenth of this (1 ms at least) without another one; under load, ids are
    # gathered for the whole window.
    heartbeat_interval: float = Field(5.0, gt=0, le=300)
    """Seconds between ``SELECT 1`` probes that notice a dead server."""
    reconnect_min: float = Field(0.5, gt=0)
    """First delay (seconds) before reconnecting; doubled on each failure."""
    reconnect_max: float = Field(30.0, gt=0)
    """Longest delay (seconds) between reconnect attempts."""
    resync_interval: float = Field(300.0, gt=0)
    """Seconds between resyncs (the safety net for lost notifications). With a
    ``version`` column a resync first compares the row count and the sum of
    versions: unchanged means nothing to do."""
    full_resync_interval: float = Field(3600.0, gt=0)
    """Seconds between complete snapshots when the query has a ``version`` column
    (the safety net for a change that did not bump the version)."""
    connect_timeout: float = Field(5.0, gt=0)
    """Seconds allowed to connect, and for a heartbeat to answer."""
    query_timeout: float = Field(300.0, gt=0)
    """Seconds allowed for one snapshot or accounts query."""
    storm_helper: bool = True
    """A change of thousands of accounts (a month-start storm) fetches its restricting
    rows ahead over a second connection too, in the same snapshot
    (``pg_export_snapshot``): two server backends answer the batches of ids in turn.
    One more connection to the billing for the seconds of such a change; if it cannot
    be had (a pooler, a server that cannot export snapshots) the change is fetched
    over the one connection, as with ``false``."""
    restrictions_first: bool = True
    """On the first snapshot after the daemon starts, fetch only the restricting rows
    (state other than ``active``) first and enforce them at once, then take the full
    snapshot, which decides everything (releases, the guard, the inventory). Only
    while the gateway enforces nothing yet; not repeated after reconnects. Costs one
    more scan of the snapshot query at start."""

    @model_validator(mode="after")
    def _one_dsn(self) -> PostgresSourceSection:
        if (self.dsn is None) == (self.dsn_file is None):
            raise ValueError("set exactly one of dsn and dsn_file")
        return self


class _NoExport(Exception):  # noqa: N818 - internal signal, never leaves the source
    """``pg_export_snapshot`` failed: the transaction is aborted, start it again."""


class PostgresSource(PgSync):
    """A :class:`~debtgate.sources.base.BillingSource` over asyncpg."""

    def __init__(self, settings: PostgresSourceSection) -> None:
        self.s = settings
        self.health = SourceHealth(kind="postgres", extra={"channel": settings.channel})
        self._prints: Marks | None = None
        """account -> change mark (the row's version, or its fingerprint), compact."""
        self._version = False
        """The snapshot query has a ``version`` column (marks are versions)."""
        self._next_full = 0.0
        self._no_export = False
        """The server refused ``pg_export_snapshot`` once: no second connection."""
        self._cold = True
        """No snapshot (or head start) handed over yet in this process."""
        self._pending = PendingIds()
        self._coalesce = Coalescer(settings.coalesce_ms / 1000)
        self._wake = asyncio.Event()
        self._lost = asyncio.Event()
        self._resync = False
        self._full = False
        self._next_resync = 0.0
        self.counters = {"snapshots": 0, "deltas": 0, "notifications": 0, "reconnects": 0}

    @classmethod
    def from_config(cls, config: Any) -> PostgresSource:
        section = config.source.postgres
        if section is None:
            raise SourceError("source.kind is postgres but [source.postgres] is missing")
        return cls(section)

    def request_resync(self, full: bool = False) -> None:
        self._resync = True
        self._full = self._full or full
        self._wake.set()

    # -- connection ------------------------------------------------------
    def _dsn(self) -> str:
        secret = self.s.dsn.get_secret_value() if self.s.dsn else None
        return load_dsn(secret, self.s.dsn_file)

    def _set_connected(self, up: bool, error: str | None = None) -> None:
        if up != self.health.connected:
            if up:
                log.info("billing database connected (%s)", self.health.extra.get("server"))
            else:
                log.error("billing database unreachable, enforcement unchanged: %s", error)
        self.health.connected = up
        if error is not None:
            self.health.last_error = error

    async def run(self, sink: Sink) -> None:
        delay = self.s.reconnect_min
        while True:
            try:
                await self._session(sink)
            except (*LOST, SourceError) as exc:
                self._set_connected(False, f"{type(exc).__name__}: {exc}"[:500])
            self.counters["reconnects"] += 1
            if self.health.extra.get("stable"):
                delay = self.s.reconnect_min
            await asyncio.sleep(delay * (0.75 + random.random() / 2))  # noqa: S311
            delay = min(delay * 2, self.s.reconnect_max)

    async def _session(self, sink: Sink) -> None:
        dsn = self._dsn()
        self.health.extra["server"] = dsn_hosts(dsn)
        self.health.extra["stable"] = False
        self._lost.clear()
        conn = await asyncpg.connect(dsn, timeout=self.s.connect_timeout)
        try:
            conn.add_termination_listener(lambda _c: self._signal_lost())
            await setup_codecs(conn)
            await conn.add_listener(self.s.channel, self._on_notify)
            await self._resync_now(conn, sink)
            self._set_connected(True)
            self.health.last_error = None
            self.health.extra["stable"] = True
            await self._serve(conn, sink)
        finally:
            conn.terminate()

    def _signal_lost(self) -> None:
        self._lost.set()
        self._wake.set()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.counters["notifications"] += 1
        ids = parse_payload(payload)
        if ids is None:
            self._resync = True
        else:
            self._pending.add(ids)
            self._coalesce.arrived(time.monotonic(), len(payload))
        self._wake.set()

    # -- the loop ----------------------------------------------------------
    async def _serve(self, conn: asyncpg.Connection, sink: Sink) -> None:
        beat = time.monotonic() + self.s.heartbeat_interval
        while True:
            now = time.monotonic()
            if self._lost.is_set():
                raise ConnectionError("the billing database closed the connection")
            if self._resync or now >= self._next_resync:
                await self._resync_now(conn, sink)
                continue
            due = self._coalesce.due() if self._pending else None
            if due is not None:
                if now >= due:
                    await self._apply_pending(conn, sink)
                    continue
                wait = due - now
            else:
                wait = min(beat, self._next_resync) - now
            if now >= beat:
                await conn.fetchval("SELECT 1", timeout=self.s.connect_timeout)
                beat = time.monotonic() + self.s.heartbeat_interval
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, min(wait, beat - now)))
            except TimeoutError:
                pass

    async def _apply_pending(self, conn: asyncpg.Connection, sink: Sink) -> None:
        # A storm's ids keep the billing's order (see PendingIds); a few are sorted.
        ids, pending = self._pending.take(BULK_IDS)
        first = self._coalesce.take()
        self._coalesce.started()
        try:
            await self._apply_ids(conn, sink, ids, first, pending)
        finally:
            self._coalesce.applied(time.monotonic())

    async def _apply_ids(self, conn: asyncpg.Connection, sink: Sink, ids: list[str],
                         first: float | None, asked: set[str]) -> None:
        # Many rows (a storm): no cyclic GC passes over the daemon's million objects
        # while they are fetched and applied (see gc_paused).
        with gc_paused() if len(ids) > BULK_IDS else contextlib.nullcontext():
            await self._apply_ids_now(conn, sink, ids, first, asked)

    async def _apply_ids_now(self, conn: asyncpg.Connection, sink: Sink, ids: list[str],
                             first: float | None, asked: set[str]) -> None:
        """``asked``: the same ids as a set (the pending set, not built again)."""
        if len(ids) < AHEAD_IDS:
            rows, gone = await self._fetch_accounts(conn, ids)
        else:
            rows, gone = await self._fetch_ahead(conn, sink, ids, asked)
        await self._emit(sink, Delta(rows, gone), rows, gone)
        if first is not None:
            self.health.lag = time.monotonic() - first

    async def _fetch_ahead(self, conn: asyncpg.Connection, sink: Sink, ids: list[str],
                           asked: set[str]) -> tuple[Sequence[Row], list[str]]:
        """:meth:`_fetch_accounts` of a large change, its restricting rows fetched first,
        lean (:mod:`~debtgate.sources.pgahead`), and handed to the engine in
        parts (:class:`DeltaAhead`) while they arrive and while the whole rows follow.
        One read-only REPEATABLE READ transaction: the parts and the Delta show the
        billing at the same moment. The Delta follows once every part is handed over;
        a part the engine fails on is logged and the rest are not sent, and a failed
        fetch ahead leaves the change whole to its Delta."""
        parts: asyncio.Queue[Columns | None] = asyncio.Queue()

        async def hand_over() -> None:
            while (part := await parts.get()) is not None:
                try:
                    await sink(DeltaAhead(part, len(ids)))
                except Exception:
                    log.warning("a part of a change of %d accounts was not applied ahead; "
                                "the change follows whole", len(ids), exc_info=True)
                    return

        forward = asyncio.create_task(hand_over(), name="pg-delta-ahead")
        helper = None
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                helper = await self._open_helper(conn)
                try:
                    async with conn.transaction():  # a savepoint
                        ahead = await copy_ahead(conn, self.s.accounts_query, ids,
                                                 parts.put_nowait, seconds=self.s.query_timeout,
                                                 helper=helper)
                except SourceError as exc:
                    log.warning("a change of %d accounts: its restricting rows were not "
                                "fetched ahead, the change follows whole: %s", len(ids), exc)
                else:
                    log.debug("a change of %d accounts: restricting rows fetched ahead: %s",
                              len(ids), "none (the accounts query's $1 cannot be replaced "
                              "by a literal)" if ahead is None else ahead)
                # The whole rows once the engine has every part: their scan and parsing
                # would otherwise take the CPU from the last parts.
                parts.put_nowait(None)
                await forward
                got = await self._fetch_accounts(conn, ids, asked)
        except _NoExport:
            forward.cancel()
            return await self._fetch_ahead(conn, sink, ids, asked)  # over one connection
        except BaseException:
            forward.cancel()
            raise
        finally:
            if helper is not None:
                await close_helper(helper)
        return got

    async def _open_helper(self, conn: asyncpg.Connection
                           ) -> asyncio.Task[asyncpg.Connection | None] | None:
        """A second connection on this transaction's snapshot, opening (see
        :func:`~debtgate.sources.pgahead.open_helper`); None if not wanted or if the
        server cannot export a snapshot (:class:`_NoExport`: the transaction is lost,
        the caller starts again without)."""
        if not self.s.storm_helper or self._no_export:
            return None
        try:
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
        except asyncpg.PostgresError as exc:
            if isinstance(exc, asyncpg.PostgresConnectionError):
                raise
            log.warning("the billing server cannot export a snapshot; large changes are "
                        "fetched over one connection: %s", exc)
            self._no_export = True
            raise _NoExport from None
        return asyncio.create_task(open_helper(
            lambda: asyncpg.connect(self._dsn(), timeout=self.s.connect_timeout),
            snapshot, self.s.connect_timeout), name="pg-ahead-helper")

    def describe(self) -> str:
        return redact(self._dsn())
