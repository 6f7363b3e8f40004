"""The SQL hook against a real PostgreSQL with the reference billing schema."""

from __future__ import annotations

import asyncio

import pytest

from debtgate.config.selfservice import HookSection
from debtgate.selfservice.hooks import HookFailed, SqlHook
from tests.pgserver import billing_db  # noqa: F401

pytestmark = pytest.mark.postgres


def hook(server, **kw) -> SqlHook:
    return SqlHook(HookSection(dsn=server.dsn, **kw))


def count(server, sql: str) -> int:
    return int(server.psql(sql, "-At").strip())


async def test_promise_is_idempotent_and_limited(billing_db):  # noqa: F811
    billing_db.psql("UPDATE billing.selfservice_policy SET promise_per_period = 1")
    h = hook(billing_db)
    try:
        first, again = await asyncio.gather(h.call("promise", "A-blocked", "key-1", days=5),
                                            h.call("promise", "A-blocked", "key-1", days=5))
        assert first.ok and again.ok
        assert count(billing_db, "SELECT count(*) FROM billing.selfservice_requests") == 1
        assert billing_db.psql("SELECT state FROM debtgate_subscribers WHERE account = "
                               "'A-blocked'", "-At").strip() == "active"
        # The credit ends; a second promise in the same period is refused by the billing.
        billing_db.psql("UPDATE accounts SET credit_until = now() - interval '1 s' "
                        "WHERE id = 'A-blocked'; SELECT billing.expire_selfservice()")
        refused = await h.call("promise", "A-blocked", "key-2", days=5)
        assert (refused.ok, refused.reason) == (False, "limit")
        assert (await h.call("promise", "A-blocked", "key-2", days=5)) == refused
        assert (await h.call("promise", "A-blocked", "key-9", days=30)).reason == "days"
        assert (await h.call("promise", "nobody", "key-3", days=5)).reason == "unknown_account"
    finally:
        await h.close()


async def test_resume_and_pause(billing_db):  # noqa: F811
    h = hook(billing_db)
    try:
        assert (await h.call("resume", "A-active", "r-1")).reason == "state"
        assert (await h.call("resume", "A-paused", "r-2")).ok
        assert (await h.call("resume", "A-paused", "r-2")).ok  # the same answer again
        assert count(billing_db, "SELECT count(*) FROM billing.selfservice_requests "
                                 "WHERE ok") == 1
        billing_db.psql("SELECT * FROM billing.pause_service('A-paused', 14, 'p-1')")
        assert billing_db.psql("SELECT state FROM accounts WHERE id = 'A-paused'",
                               "-At").strip() == "paused"
    finally:
        await h.close()


async def test_failures_are_classified(billing_db):  # noqa: F811
    slow = hook(billing_db, timeout=0.3, promise_query="SELECT true AS ok, "
                "pg_sleep(2)::text || $1::text || $2::int || $3::text AS reason")
    broken = hook(billing_db, promise_query="SELECT * FROM billing.no_such_function($1, $2, $3)")
    down = SqlHook(HookSection(dsn="postgresql://nobody@127.0.0.1:1/x", timeout=2))
    try:
        for h, reason in ((slow, "billing_timeout"), (broken, "billing_error"),
                          (down, "billing_unavailable")):
            with pytest.raises(HookFailed) as exc:
                await h.call("promise", "A-blocked", "key-x", days=5)
            assert exc.value.reason == reason
        assert count(billing_db, "SELECT count(*) FROM billing.selfservice_requests") == 0
    finally:
        for h in (slow, broken, down):
            await h.close()
