"""Overrides and audit shared by gateways through the billing database (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from debtgate.enforce.overrides import FileOverrideStore, new_override
from debtgate.enforce.shared import PgShared, SharedOverrides
from tests.pgserver import billing_db  # noqa: F401

pytestmark = pytest.mark.postgres
NOW = datetime.now(UTC)


async def test_two_gateways_share_overrides_and_audit(billing_db, tmp_path: Path) -> None:  # noqa: F811
    gw1 = PgShared(billing_db.dsn, None, gateway="gw1")
    gw2 = PgShared(billing_db.dsn, None, gateway="gw2")
    store1 = SharedOverrides(gw1, FileOverrideStore(tmp_path / "gw1.json"))
    store2 = SharedOverrides(gw2, FileOverrideStore(tmp_path / "gw2.json"))
    heard = asyncio.Event()
    listener = asyncio.create_task(gw2.listen(heard.set))
    try:
        await asyncio.sleep(0.3)  # gw2 is listening
        override = new_override("A-blocked", "release", "paid at the office", NOW,
                                NOW + timedelta(hours=2), "alice")
        await store1.save([override])
        await asyncio.wait_for(heard.wait(), 5)
        seen = await store2.load()
        assert [(o.id, o.account, o.action) for o in seen] == [
            (override.id, "A-blocked", "release")]
        assert (tmp_path / "gw2.json").exists()  # cached locally for a start without the DB
        await store1.save([])  # deleted on gw1
        assert await store2.load() == []
        # the audit of both gateways lands in one table
        gw1.record("transition", {"account": "A-blocked", "new": "active"})
        gw2.record("override_added", {"account": "A-warn"})
        tasks = [asyncio.create_task(g.run_audit()) for g in (gw1, gw2)]
        await asyncio.sleep(0.5)
        for task in tasks:
            task.cancel()
        rows = billing_db.psql("SELECT gateway || '|' || event || '|' || (data->>'account') "
                               "FROM debtgate.audit ORDER BY gateway")
        assert "gw1|transition|A-blocked" in rows and "gw2|override_added|A-warn" in rows
    finally:
        listener.cancel()
        await gw1.close()
        await gw2.close()


async def test_database_down_falls_back_to_local_copy(tmp_path: Path) -> None:
    local = FileOverrideStore(tmp_path / "local.json")
    override = new_override("A1", "restrict", "abuse", NOW, None, "bob")
    await local.save([override])
    store = SharedOverrides(PgShared("postgresql://nobody@127.0.0.1:1/none", None), local)
    assert [o.id for o in await store.load()] == [override.id]


async def test_migration_is_idempotent(billing_db) -> None:  # noqa: F811
    import asyncpg

    from debtgate.enforce.shared import MIGRATIONS, migrate

    conn = await asyncpg.connect(billing_db.dsn)
    try:
        assert await migrate(conn) == len(MIGRATIONS)
        assert await migrate(conn) == len(MIGRATIONS)
        versions = await conn.fetchval("SELECT count(*) FROM debtgate.schema_version")
        assert versions == len(MIGRATIONS)
    finally:
        await conn.close()


async def test_held_restrictions_are_visible_to_every_gateway(billing_db) -> None:  # noqa: F811
    gw1 = PgShared(billing_db.dsn, None, gateway="gw1")
    try:
        await gw1.save_held({"A1": "blocked", "A2": "blocked"})
        await gw1.save_held({"A2": "disabled"})
        rows = billing_db.psql("SELECT gateway || ':' || account || ':' || wanted "
                               "FROM debtgate.held")
        assert "gw1:A2:disabled" in rows and "A1" not in rows
    finally:
        await gw1.close()
