"""The PostgreSQL billing feed: a snapshot, then LISTEN/NOTIFY deltas.

Two dedicated connections (never pooled). The *lane* LISTENs after every
(re)connect and fetches the small changes (a payment); the main one takes the
snapshot, then does the bulk work (snapshots, resyncs, large changes) as one job at a
time. PostgreSQL sends a notification only to an idle backend, so the listener must
be the connection that never runs a long query: a payment is heard and read at once
even during a storm's fetch or a resync. Without the lane (``lane = false``, or it
could not connect) everything goes over the main connection, and a notification
waits for the fetch in progress.

A notification carries account ids (comma-separated, or a JSON array); an empty
payload means "resync everything". A notification on an idle feed is applied at
once; under load, ids arriving within ``coalesce_ms`` are fetched with the accounts
query and applied as ONE Delta (:mod:`debtgate.billing.coalesce`); ids the query no
longer returns are ``gone``. Each event carries when its fetch began
(:attr:`~debtgate.billing.base.Delta.seq`): the engine lets a payment read during a
storm's fetch win over the storm's older row of the same account. A heartbeat
notices a dead server; reconnects back off; a periodic resync is the safety net.

The first snapshot is a full :class:`Snapshot`. Later resyncs (periodic, after
a reconnect, :meth:`request_resync`) fetch only each row's fingerprint and
emit a :class:`Delta` of the rows that changed and the accounts that vanished:
a no-op resync touches nothing. ``request_resync(full=True)`` sends a full
Snapshot again (e.g. after the gateway's validation policy changed). What is
fetched and emitted lives in :mod:`debtgate.billing.pgsync`; this module holds
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
from typing import Any

import asyncpg

from debtgate.billing.base import Delta, Sink, SourceHealth, Urgent, no_urgent
from debtgate.billing.coalesce import Coalescer, PendingIds
from debtgate.billing.memory import gc_paused
from debtgate.billing.pgfetch import Marks, dsn_hosts, load_dsn, parse_payload, redact, setup_codecs
from debtgate.billing.pgsync import PgSync
from debtgate.config.postgres import PostgresSourceSection
from debtgate.errors import SourceError

log = logging.getLogger(__name__)
BULK_IDS = 2000
"""Above this many ids in one change, cyclic GC is paused while it is fetched and applied."""
SMALL_NOTIFY = 10
"""A notification of up to this many ids is a small change of its own (a payment): it
goes over the lane even when it arrives among a storm's notifications."""
SMALL_BURST = 50
"""More small notifications than this pending at once are a burst (row-by-row
triggers): fetched as one change."""
LANE_IDS = 500
"""Changes of up to this many accounts are fetched over the lane (see the module
docstring); larger ones wait for the main connection."""
LOST = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError, ConnectionError)


class PostgresSource(PgSync):
    """A :class:`~debtgate.billing.base.BillingSource` over asyncpg."""

    def __init__(self, settings: PostgresSourceSection) -> None:
        self.s = settings
        self.health = SourceHealth(kind="postgres", extra={"channel": settings.channel})
        self._prints: Marks | None = None
        """account -> change mark (the row's version, or its fingerprint), compact."""
        self._version = False
        """The snapshot query has a ``version`` column (marks are versions)."""
        self._next_full = 0.0
        self._urgent: Urgent = no_urgent
        self._holding = False
        """The engine was told a small change is on its way (:meth:`_hold`)."""
        self._lane_up = False
        self._pending = PendingIds()
        self._coalesce = Coalescer(settings.coalesce_ms / 1000)
        self._small = PendingIds()
        """Ids of small notifications (a payment), fetched over the lane apart from a
        storm's ids even when they arrive among them."""
        self._small_coalesce = Coalescer(settings.coalesce_ms / 1000)
        self._wake = asyncio.Event()
        self._lost = asyncio.Event()
        self._resync = False
        self._full = False
        self._restricted_first = False
        self._next_resync = 0.0
        self.counters = {"snapshots": 0, "deltas": 0, "notifications": 0, "reconnects": 0,
                         "lane_deltas": 0}

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

    async def run(self, sink: Sink, urgent: Urgent = no_urgent) -> None:
        self._urgent = urgent
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
        conn = await asyncpg.connect(dsn, timeout=self.s.connect_timeout,
                                     server_settings={"application_name": "debtgate"})
        lane: asyncpg.Connection | None = None
        try:
            conn.add_termination_listener(lambda _c: self._signal_lost())
            await setup_codecs(conn)
            lane = await self._open_lane(dsn)
            # The server sends a notification only to an idle backend: the listener is
            # the connection that never runs a long query (the lane, if there is one).
            await (lane or conn).add_listener(self.s.channel, self._on_notify)
            self._set_connected(True)
            # The session's first sync (the daemon's first snapshot) is a job like any
            # resync: the lane serves payments while it is fetched and applied.
            self._resync = True
            await self._serve(conn, lane, sink)
        finally:
            self.health.listening = False
            conn.terminate()
            if lane is not None:
                lane.terminate()

    async def _open_lane(self, dsn: str) -> asyncpg.Connection | None:
        """The second connection, for small changes; None if not wanted or refused."""
        self.health.extra["lane"] = False
        if not self.s.lane:
            return None
        try:
            lane = await asyncpg.connect(dsn, timeout=self.s.connect_timeout,
                                         server_settings={"application_name": "debtgate-lane"})
            await setup_codecs(lane)
        except LOST as exc:
            log.warning("billing database: no second connection for small changes (%s); "
                        "a payment waits for the bulk fetch in progress", exc)
            return None
        lane.add_termination_listener(lambda _c: self._signal_lost())
        self.health.extra["lane"] = True
        return lane

    def _signal_lost(self) -> None:
        self._lost.set()
        self._wake.set()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.counters["notifications"] += 1
        ids = parse_payload(payload)
        if ids is None:
            self._resync = True
            self._wake.set()
            return
        now = time.monotonic()
        # A notification of a few ids is a small change of its own (a payment), even
        # right after a storm's split id list (it ends the list: the storm's remainder
        # of a few ids goes over the lane too), unless small ones pile up (a billing
        # that notifies row by row: a burst, one change).
        small = (self._lane_up and len(ids) <= SMALL_NOTIFY
                 and len(self._small) + len(ids) <= SMALL_BURST)
        if small:
            self._coalesce.list_ended()
        if not small and self._small and len(ids) <= SMALL_NOTIFY:
            self._pending.add(list(self._small.ids))
            self._coalesce.arrived(self._small_coalesce.take() or now)
            self._small.clear()
        queue, coalescer = ((self._small, self._small_coalesce) if small
                            else (self._pending, self._coalesce))
        queue.add(ids)
        coalescer.arrived(now, len(payload))
        if len(ids) <= 3:
            log.debug("notified: account=%s (%s)", ",".join(ids), "small" if small else "bulk")
        self._hold()
        self._wake.set()

    def _hold(self) -> None:
        """Tell the engine whether a small change is pending here (the lane will fetch
        it at once): bulk work waits until it is handed over."""
        small = self._lane_up and (bool(self._small) or (
            bool(self._pending) and len(self._pending) <= LANE_IDS))
        if small != self._holding:
            self._holding = small
            self._urgent(small)

    # -- the loop ----------------------------------------------------------
    async def _serve(self, conn: asyncpg.Connection, lane: asyncpg.Connection | None,
                     sink: Sink) -> None:
        """Serve notifications. The main connection does one job at a time (a resync,
        a large change) as a task; meanwhile a small change is fetched over the lane
        and handed over at once (the engine lets it go before the job's next slice)."""
        beat = time.monotonic() + self.s.heartbeat_interval
        job: asyncio.Task[None] | None = None
        self._lane_up = lane is not None
        # Without the lane a notification waits for the job in progress: listening
        # once the first sync is done.
        self.health.listening = lane is not None
        try:
            while True:
                now = time.monotonic()
                if self._lost.is_set():
                    raise ConnectionError("the billing database closed the connection")
                if job is not None and job.done():
                    done: asyncio.Task[None] = job
                    job = None
                    done.result()  # the job's failure ends the session
                    if not self.health.extra["stable"]:  # the session's first sync
                        self.health.last_error = None
                        self.health.extra["stable"] = self.health.listening = True
                    beat = time.monotonic() + self.s.heartbeat_interval
                    continue
                small_due = self._small_coalesce.due() if self._small else None
                if lane is not None and small_due is not None and now >= small_due:
                    try:
                        await self._apply_pending(lane, sink, small=True, queue=self._small,
                                                  coalesce=self._small_coalesce)
                    finally:
                        self._hold()
                    self.counters["lane_deltas"] += 1
                    continue
                due = self._coalesce.due() if self._pending else None
                if due is not None and now >= due:
                    if lane is not None and len(self._pending) <= LANE_IDS:
                        try:
                            await self._apply_pending(lane, sink, small=True)
                        finally:
                            self._hold()  # released unless more came meanwhile
                        self.counters["lane_deltas"] += 1
                        continue
                    if job is None:
                        small = len(self._pending) <= LANE_IDS
                        if small:
                            await self._apply_pending(conn, sink, small=True)
                        else:
                            job = asyncio.create_task(self._apply_pending(conn, sink),
                                                      name="pg-change")
                        continue
                    due = None  # a large change waits for the main connection
                if job is None and (self._resync or now >= self._next_resync):
                    job = asyncio.create_task(self._resync_now(conn, sink), name="pg-resync")
                    continue
                if now >= beat and (job is None or lane is not None):
                    await (lane or conn).fetchval("SELECT 1", timeout=self.s.connect_timeout)
                    beat = time.monotonic() + self.s.heartbeat_interval
                    continue
                until = min(beat, self._next_resync) if job is None else min(beat, now + 1.0)
                for when in (due, small_due):
                    if when is not None:
                        until = min(until, when)
                await self._sleep(max(0.0, until - now), job)
        finally:
            self._lane_up = False
            self._small.clear()  # the next session's resync covers them
            self._small_coalesce.take()
            self._hold()
            if job is not None and not job.done():
                job.cancel()
                with contextlib.suppress(BaseException):
                    await job

    async def _sleep(self, seconds: float, job: asyncio.Task[None] | None) -> None:
        """Until a notification, the job's end or ``seconds``."""
        self._wake.clear()
        wake = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({wake} if job is None else {wake, job}, timeout=seconds,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake.cancel()

    async def _apply_pending(self, conn: asyncpg.Connection, sink: Sink,
                             small: bool = False, queue: PendingIds | None = None,
                             coalesce: Coalescer | None = None) -> None:
        """Fetch and hand over the ids of ``queue`` (default: the main pending ids)."""
        queue = self._pending if queue is None else queue
        coalescer = self._coalesce if coalesce is None else coalesce
        # A storm's ids keep the billing's order (see PendingIds); a few are sorted.
        ids, pending = queue.take(BULK_IDS)
        first = coalescer.take()
        if small:  # a burst of small changes is gathered while one is applied
            coalescer.started()
        try:
            # Many rows (a storm): no cyclic GC passes over the daemon's million objects
            # while they are fetched (see gc_paused).
            with gc_paused() if len(ids) > BULK_IDS else contextlib.nullcontext():
                seq = time.monotonic_ns()
                rows, gone = await self._fetch_accounts(conn, ids, pending)
                fetched = time.monotonic_ns()
                await self._emit(sink, Delta(rows, gone, seq), rows, gone)
            log.debug("change of %d accounts (%s): fetched in %.1f ms, applied in %.1f ms",
                      len(ids), "small" if small else "large", (fetched - seq) / 1e6,
                      (time.monotonic_ns() - fetched) / 1e6)
            if first is not None:
                self.health.lag = time.monotonic() - first
        finally:
            if small:
                coalescer.applied(time.monotonic())

    def prefer_restricted(self) -> None:
        self._restricted_first = self.s.restrictions_first

    def describe(self) -> str:
        return redact(self._dsn())
