"""The real local channel: daemon/portal_api.py served on a Unix socket, UnixSocketLink."""

from __future__ import annotations

import stat
from datetime import date
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from debtgate.api.portal_channel import make_portal_api, serve_unix
from debtgate.model import State, Subscriber
from debtgate.portal.lookup import AckResult, DaemonUnavailable, UnixSocketLink
from debtgate.view import SubscriberView, view_of

WARN_IP, BLOCKED_IP = "100.64.0.20", "2001:db8::20"


class MemoryBackend:
    """A tiny PortalBackend: two subscribers, counts lookups."""

    def __init__(self) -> None:
        self.subs = {
            WARN_IP: Subscriber(account="W-000042", addresses=(WARN_IP,), state=State.WARN,
                                amount_due=Decimal("500.00"), block_at=date(2025, 4, 1),
                                language="en"),
            BLOCKED_IP: Subscriber(account="B-000777", addresses=("2001:db8::/64",),
                                   state=State.BLOCKED, amount_due=Decimal("1234.5"),
                                   since=date(2025, 3, 5)),
        }
        self.acked: set[str] = set()
        self.lookups = 0
        self.errors = 0

    def view(self, ip: str) -> SubscriberView | None:
        self.lookups += 1
        sub = self.subs.get(ip)
        if sub is None:
            return None
        return view_of(sub, ip, acknowledged=ip in self.acked, ack_timeout=3600,
                       default_currency="RUB")

    async def acknowledge(self, ip: str) -> dict[str, Any] | None:
        sub = self.subs.get(ip)
        if sub is None or sub.state is not State.WARN:
            return None
        self.acked.add(ip)
        return {"acknowledged": True, "expires_in": 3600}


@pytest.fixture
async def channel(tmp_path):
    backend = MemoryBackend()
    path = tmp_path / "run" / "portal.sock"
    runner = await serve_unix(make_portal_api(backend), path)
    link = UnixSocketLink(path, cache_ttl=60)
    yield backend, link, path
    await link.close()
    await runner.cleanup()


async def test_round_trip_view(channel):
    backend, link, path = channel
    assert stat.S_IMODE(path.stat().st_mode) == 0o660
    view = await link.view(BLOCKED_IP)
    assert view is not None
    assert view.account == "B-000777" and view.state is State.BLOCKED
    assert view.amount_due == Decimal("1234.5") and view.currency == "RUB"
    assert view.since == date(2025, 3, 5) and view.block_at is None
    assert view.address == BLOCKED_IP and view.captive
    assert await link.view("100.64.0.99") is None


async def test_cache_serves_repeats_and_ack_invalidates(channel):
    backend, link, _ = channel
    first = await link.view(WARN_IP)
    assert first is not None and first.captive and not first.acknowledged
    await link.view(WARN_IP)
    assert backend.lookups == 1
    assert await link.acknowledge(WARN_IP) == AckResult(acknowledged=True, expires_in=3600)
    after = await link.view(WARN_IP)
    assert backend.lookups == 2
    assert after is not None and after.acknowledged and not after.captive
    await link.view("100.64.0.99")
    await link.view("100.64.0.99")
    assert backend.lookups == 3  # unknown addresses are cached too


async def test_ack_of_non_warn_is_refused(channel):
    backend, link, _ = channel
    assert await link.acknowledge(BLOCKED_IP) == AckResult(acknowledged=False)
    assert await link.acknowledge("100.64.0.99") == AckResult(acknowledged=False)
    assert backend.acked == set()


@pytest.mark.parametrize("query", ["ip=not-an-ip", "ip=10.0.0.0/8", "", "ip=" + "1" * 100])
async def test_api_rejects_bad_addresses(channel, query):
    backend, _, path = channel
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path))) as s:
        async with s.get(f"http://daemon/v1/view?{query}") as resp:
            assert resp.status == 400
        async with s.post("http://daemon/v1/ack", data=b"{not json") as resp:
            assert resp.status == 400
        async with s.post("http://daemon/v1/ack", json=["10.0.0.1"]) as resp:
            assert resp.status == 400
        async with s.get(f"http://daemon/v1/view?ip={WARN_IP}") as resp:
            assert resp.status == 200
    assert backend.errors == 3  # the refusals are counted (the status's portal.errors)


async def test_missing_daemon_raises_unavailable(tmp_path):
    link = UnixSocketLink(tmp_path / "nobody.sock", timeout=1)
    with pytest.raises(DaemonUnavailable):
        await link.view("100.64.0.1")
    with pytest.raises(DaemonUnavailable):
        await link.acknowledge("100.64.0.1")
    await link.close()


async def test_serve_unix_replaces_stale_socket(tmp_path):
    path = tmp_path / "portal.sock"
    backend = MemoryBackend()
    first = await serve_unix(make_portal_api(backend), path, mode=0o600)
    await first.cleanup()
    second = await serve_unix(make_portal_api(backend), path)
    link = UnixSocketLink(path)
    try:
        assert (await link.view(WARN_IP)) is not None
    finally:
        await link.close()
        await second.cleanup()


async def test_portal_over_real_channel(channel, make_client):
    from .conftest import as_ip, make_config

    _, link, _ = channel
    client = await make_client(link, make_config())
    html = await (await client.get("/", params={"lang": "ru"}, headers=as_ip(BLOCKED_IP))).text()
    assert "1\u00a0234,50\u00a0₽" in html and "•••0777" in html
