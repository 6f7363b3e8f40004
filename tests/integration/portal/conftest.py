"""Fixtures: the portal app against an in-memory daemon."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from debtgate.config.portal import PortalConfig
from debtgate.model import State
from debtgate.portal.app import make_app
from debtgate.portal.lookup import AckResult, DaemonUnavailable
from debtgate.portal.security import UrlSigner
from debtgate.view import SubscriberView

PUBLIC = "http://10.255.255.1:8080/"
PORTAL_HOST = "10.255.255.1:8080"
SECRET = b"s" * 32
"""The portal secret (CSRF tokens, original URL signatures) of ``make_client``."""
SBP = "https://qr.nspk.ru/AS1000TEST?type=02&bank=100000000111&sum={amount_kopecks}&cur=RUB&account={account}"


class MemoryLink:
    """A DaemonLink backed by a dict; counts view questions, records acknowledgements."""

    def __init__(self, views: dict[str, SubscriberView]) -> None:
        self.views = dict(views)
        self.acks: list[str] = []
        self.down = False
        self.asked = 0

    async def view(self, ip: str) -> SubscriberView | None:
        self.asked += 1
        if self.down:
            raise DaemonUnavailable("test: down")
        return self.views.get(ip)

    async def acknowledge(self, ip: str) -> AckResult:
        if self.down:
            raise DaemonUnavailable("test: down")
        view = self.views.get(ip)
        if view is None or view.state is not State.WARN:
            return AckResult(acknowledged=False)
        self.acks.append(ip)
        self.views[ip] = msgspec.structs.replace(view, acknowledged=True)
        return AckResult(acknowledged=True, expires_in=view.ack_timeout)


def subscriber(address: str, state: State, **kw: object) -> SubscriberView:
    base: dict[str, object] = {
        "account": "ACC0000123456",
        "amount_due": Decimal("1234.50"),
        "currency": "RUB",
        "since": date(2025, 3, 5),
        "block_at": date(2025, 3, 20) if state is State.WARN else None,
        "language": "",
        "ack_timeout": 3600 if state is State.WARN else 0,
    }
    base.update(kw)
    return SubscriberView(address=address, state=state, **base)  # type: ignore[arg-type]


def make_config(**kw: object) -> PortalConfig:
    data: dict[str, object] = {
        "public_url": PUBLIC,
        "operator_name": "Example Telecom",
        "cabinet_url": "https://my.example.net/",
        "payment_links": [
            {"title": "Bank card", "url": "https://pay.example.net/?acc={account}&sum={amount}"}
        ],
        "sbp_template": SBP,
        "contacts": {"phone": "+7 (800) 555-35-35", "email": "help@example.net",
                     "hours": "9-21"},
        "trusted_proxies": ["127.0.0.0/8", "::1/128"],
        "rate_limit": 100.0,
        "rate_burst": 1000,
    }
    data.update(kw)
    return PortalConfig.model_validate(data)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def make_client():
    clients: list[TestClient] = []

    async def factory(link: MemoryLink, config: PortalConfig | None = None,
                      clock: Clock | None = None) -> TestClient:
        app = make_app(config or make_config(), link, secret=SECRET, clock=clock)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


def as_ip(ip: str) -> dict[str, str]:
    """Headers making the test server believe the request came from ``ip``
    (the test client connects from 127.0.0.1, so it must be a trusted proxy)."""
    return {"X-Forwarded-For": ip, "Host": PORTAL_HOST}


def signed(ip: str, url: str) -> dict[str, str]:
    """``url`` and ``sig`` of an original URL as the interception produces it for ``ip``."""
    return {"url": url, "sig": UrlSigner(SECRET).sign(ip, url)}
