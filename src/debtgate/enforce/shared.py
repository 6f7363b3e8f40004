"""State shared by every gateway on one PostgreSQL billing: overrides and the audit trail.

With the PostgreSQL source, the daemon creates and migrates a ``debtgate`` schema
in the billing database. Overrides live there (every gateway applies the same
ones; a change is announced with NOTIFY on ``debtgate_overrides`` and the other
gateways reload at once), and the audit trail is copied there (every gateway
sees the same history: transitions, overrides, guard holds and approvals).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
from collections.abc import Callable
from typing import Any

import asyncpg

from debtgate.billing.pgfetch import load_dsn
from debtgate.enforce.overrides import FileOverrideStore, Override
from debtgate.errors import SourceError

log = logging.getLogger(__name__)
CHANNEL = "debtgate_overrides"

MIGRATIONS: list[str] = [
    # 1: overrides and audit
    """
    CREATE TABLE IF NOT EXISTS debtgate.overrides (
        id          text PRIMARY KEY,
        account     text NOT NULL,
        action      text NOT NULL CHECK (action IN ('restrict', 'release')),
        reason      text NOT NULL,
        created_at  timestamptz NOT NULL,
        expires_at  timestamptz,
        author      text NOT NULL,
        gateway     text NOT NULL,
        deleted_at  timestamptz,
        deleted_by  text
    );
    CREATE INDEX IF NOT EXISTS overrides_live ON debtgate.overrides (account)
        WHERE deleted_at IS NULL;
    CREATE TABLE IF NOT EXISTS debtgate.audit (
        id       bigserial PRIMARY KEY,
        at       timestamptz NOT NULL DEFAULT now(),
        gateway  text NOT NULL,
        event    text NOT NULL,
        data     jsonb NOT NULL
    );
    CREATE INDEX IF NOT EXISTS audit_at ON debtgate.audit (at);
    """,
    # 2: restrictions the mass-change guard holds, per gateway
    """
    CREATE TABLE IF NOT EXISTS debtgate.held (
        gateway  text NOT NULL,
        account  text NOT NULL,
        wanted   text NOT NULL,
        since    timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (gateway, account)
    );
    """,
]


async def migrate(conn: asyncpg.Connection) -> int:
    """Create or upgrade the ``debtgate`` schema; returns its version."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('debtgate.migrate'))")
        await conn.execute("CREATE SCHEMA IF NOT EXISTS debtgate")
        await conn.execute("CREATE TABLE IF NOT EXISTS debtgate.schema_version "
                           "(version int NOT NULL, applied_at timestamptz DEFAULT now())")
        current = await conn.fetchval("SELECT coalesce(max(version), 0) "
                                      "FROM debtgate.schema_version")
        for version, sql in enumerate(MIGRATIONS, start=1):
            if version > current:
                await conn.execute(sql)
                await conn.execute("INSERT INTO debtgate.schema_version (version) VALUES ($1)",
                                   version)
                log.info("debtgate schema migrated to version %d", version)
        return len(MIGRATIONS)


class PgShared:
    """Overrides store (OverrideStore protocol) and audit sink in the billing database."""

    def __init__(self, dsn: str | None, dsn_file: Any, gateway: str | None = None) -> None:
        self._dsn = dsn
        self._dsn_file = dsn_file
        self.gateway = gateway or socket.gethostname()
        self.instance = secrets.token_hex(6)
        """Tells this process's own NOTIFYs apart (gateways may share a host name)."""
        self._pool: asyncpg.Pool | None = None
        self._audit: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=100_000)
        self.audit_dropped = 0

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(load_dsn(self._dsn, self._dsn_file),
                                                   min_size=1, max_size=3, timeout=10)
            async with self._pool.acquire() as conn:
                await migrate(conn)
        return self._pool

    # -- OverrideStore ---------------------------------------------------------
    async def load(self) -> list[Override]:
        pool = await self.pool()
        rows = await pool.fetch("SELECT id, account, action, reason, created_at, expires_at, "
                                "author FROM debtgate.overrides WHERE deleted_at IS NULL "
                                "AND (expires_at IS NULL OR expires_at > now())")
        return [Override(r["id"], r["account"], r["action"], r["reason"], r["created_at"],
                         r["expires_at"], r["author"]) for r in rows]

    async def save(self, overrides: list[Override]) -> None:
        """Make the live set equal to ``overrides`` (adds new ones, retires the rest)."""
        pool = await self.pool()
        ids = [o.id for o in overrides]
        async with pool.acquire() as conn, conn.transaction():
            for o in overrides:
                await conn.execute(
                    "INSERT INTO debtgate.overrides (id, account, action, reason, created_at, "
                    "expires_at, author, gateway) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) "
                    "ON CONFLICT (id) DO NOTHING", o.id, o.account, o.action, o.reason,
                    o.created_at, o.expires_at, o.author, self.gateway)
            await conn.execute("UPDATE debtgate.overrides SET deleted_at = now(), deleted_by = $2 "
                               "WHERE deleted_at IS NULL AND NOT (id = ANY($1::text[]))",
                               ids, self.gateway)
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, self.instance)

    async def listen(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` when another gateway changes the overrides (until cancelled);
        reconnects with backoff, and reloads after every reconnect (NOTIFYs sent meanwhile
        are lost)."""
        backoff = 1.0
        while True:
            try:
                await self._listen_once(on_change)
            except DB_ERRORS as exc:
                log.warning("shared overrides listener lost (retry in %.0f s): %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                on_change()

    async def _listen_once(self, on_change: Callable[[], None]) -> None:
        conn = await asyncpg.connect(load_dsn(self._dsn, self._dsn_file), timeout=10)

        def _notified(_c: Any, _pid: int, _channel: str, payload: str) -> None:
            if payload != self.instance:
                on_change()

        try:
            await conn.add_listener(CHANNEL, _notified)
            while True:
                await asyncio.sleep(30)
                await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    # -- held restrictions -------------------------------------------------------
    async def save_held(self, held: dict[str, str]) -> None:
        """This gateway's held restrictions (account -> wanted state), replacing the last."""
        pool = await self.pool()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM debtgate.held WHERE gateway = $1 AND "
                               "NOT (account = ANY($2::text[]))", self.gateway, list(held))
            await conn.executemany(
                "INSERT INTO debtgate.held (gateway, account, wanted) VALUES ($1, $2, $3) "
                "ON CONFLICT (gateway, account) DO UPDATE SET wanted = EXCLUDED.wanted",
                [(self.gateway, a, w) for a, w in held.items()])

    async def run_held(self, current: Callable[[], dict[str, str]]) -> None:
        """Keep ``debtgate.held`` in step with the guard (checked every second)."""
        written: dict[str, str] | None = None
        while True:
            await asyncio.sleep(1.0)
            held = current()
            if held == written:
                continue
            try:
                await self.save_held(held)
                written = held
            except DB_ERRORS as exc:
                log.warning("held restrictions not written to the billing database: %s", exc)
                await asyncio.sleep(5)

    # -- audit -----------------------------------------------------------------
    def record(self, event: str, data: dict[str, Any]) -> None:
        try:
            self._audit.put_nowait((event, data))
        except asyncio.QueueFull:
            self.audit_dropped += 1

    async def run_audit(self) -> None:
        """Copy audit lines to ``debtgate.audit`` in batches."""
        while True:
            batch = [await self._audit.get()]
            while not self._audit.empty() and len(batch) < 1000:
                batch.append(self._audit.get_nowait())
            try:
                pool = await self.pool()
                await pool.executemany(
                    "INSERT INTO debtgate.audit (gateway, event, data) VALUES ($1, $2, $3::jsonb)",
                    [(self.gateway, ev, json.dumps(d, default=str)) for ev, d in batch])
            except DB_ERRORS as exc:
                log.warning("audit copy to the billing database failed (%d lines kept in the "
                            "journal only): %s", len(batch), exc)
                await asyncio.sleep(5)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class SharedOverrides:
    """Overrides in the billing database (shared by every gateway), cached in a local
    file so a gateway that starts while the database is down still applies them."""

    def __init__(self, shared: PgShared, local: FileOverrideStore) -> None:
        self.shared = shared
        self.local = local

    async def load(self) -> list[Override]:
        try:
            found = await self.shared.load()
        except DB_ERRORS as exc:
            log.error("shared overrides unreachable, using the local copy: %s", exc)
            return await self.local.load()
        await self.local.save(found)
        return found

    async def save(self, overrides: list[Override]) -> None:
        await self.local.save(overrides)
        try:
            await self.shared.save(overrides)
        except DB_ERRORS as exc:
            raise SourceError(f"override not saved in the shared database: {exc}") from exc
