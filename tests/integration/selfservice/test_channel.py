"""The portal's channel end to end in one process: the portal app, UnixSocketLink, the
daemon's portal API on a Unix socket, SelfService, a scripted hook."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from debtgate.api.portal_channel import make_portal_api, serve_unix
from debtgate.portal.app import make_app
from debtgate.portal.lookup import UnixSocketLink
from debtgate.selfservice.hooks import HookAnswer
from debtgate.selfservice.service import SelfService
from debtgate.view import view_of
from tests.integration.portal.conftest import as_ip, make_config
from tests.unit.selfservice.helpers import BLOCKED_IP, PAUSED_IP, FakeEngine, ScriptedHook, config


class Backend(FakeEngine):
    """The engine's PortalBackend half, enough for the channel."""

    def view(self, ip):
        sub = self.inventory.find(ip)
        if sub is None:
            return None
        promise, can_resume = (self.selfservice.offers(sub, sub.state)
                               if self.selfservice is not None else (None, False))
        return view_of(sub, ip, default_currency="RUB", promise=promise,
                       can_resume=can_resume)

    async def acknowledge(self, ip):
        return None


@pytest.fixture
async def portal(tmp_path):
    backend = Backend()
    hook = ScriptedHook(HookAnswer(True), HookAnswer(False, "limit"))
    service = SelfService(config(), hook=hook)
    service.attach(backend, backend)
    runner = await serve_unix(make_portal_api(backend), tmp_path / "portal.sock")
    link = UnixSocketLink(tmp_path / "portal.sock", cache_ttl=60)
    client = TestClient(TestServer(make_app(make_config(), link, secret=b"s" * 32)))
    await client.start_server()
    yield client, hook, backend
    await client.close()
    await link.close()
    await runner.cleanup()


def form(html: str, action: str) -> dict[str, str]:
    block = re.search(rf'<form id="{action}".*?</form>', html, re.S)
    assert block is not None, f"no {action} form"
    return dict(re.findall(r'name="(\w+)" value="([^"]*)"', block.group(0)))


async def test_promise_round_trip_and_double_submit(portal):
    client, hook, _ = portal
    html = await (await client.get("/?lang=en", headers=as_ip(BLOCKED_IP))).text()
    assert "Promise to pay: 5 days of access" in html
    assert "Available 1 time every 30 days." in html and "at most RUB\u00a03,000.00" in html
    fields = form(html, "promise")
    for _ in range(2):  # a double click: the same key twice
        resp = await client.post("/promise", data=fields, headers=as_ip(BLOCKED_IP),
                                 allow_redirects=False)
        assert resp.status == 303
        assert resp.headers["Location"].endswith("done=promise-ok")
    assert len(hook.calls) == 1
    page = await (await client.get(resp.headers["Location"], headers=as_ip(BLOCKED_IP))).text()
    assert "Your promised payment is accepted" in page and "for 5 days" in page
    fields = form(page, "promise")  # a new page, a new key: the billing refuses
    resp = await client.post("/promise", data=fields, headers=as_ip(BLOCKED_IP),
                             allow_redirects=False)
    assert resp.headers["Location"].endswith("done=promise-limit")
    page = await (await client.get(resp.headers["Location"], headers=as_ip(BLOCKED_IP))).text()
    assert "already been used recently: it is available 1 time every 30 days" in page
    assert '<form id="promise"' not in page


async def test_resume_button_in_russian(portal):
    client, hook, _ = portal
    html = await (await client.get("/?lang=ru", headers=as_ip(PAUSED_IP))).text()
    assert "Возобновить обслуживание" in html
    resp = await client.post("/resume", data=form(html, "resume"), headers=as_ip(PAUSED_IP),
                             allow_redirects=False)
    assert resp.headers["Location"].endswith("done=resume-ok")
    page = await (await client.get(resp.headers["Location"], headers=as_ip(PAUSED_IP))).text()
    assert "С возвращением!" in page
    assert hook.calls[0][:2] == ("resume", "A-paused")


async def test_csrf_and_key_are_required(portal):
    client, hook, _ = portal
    html = await (await client.get("/", headers=as_ip(BLOCKED_IP))).text()
    fields = form(html, "promise")
    for broken in ({**fields, "csrf": "x.y"}, {k: v for k, v in fields.items() if k != "csrf"},
                   {**fields, "request_id": "short"}):
        resp = await client.post("/promise", data=broken, headers=as_ip(BLOCKED_IP))
        assert resp.status == 403
    # A token shown to another address is no good either.
    resp = await client.post("/promise", data=fields, headers=as_ip(PAUSED_IP))
    assert resp.status == 403
    assert hook.calls == []


async def test_channel_validates_input(tmp_path, portal):
    client, _, backend = portal
    link = UnixSocketLink(tmp_path / "portal.sock")
    try:
        session = link._client()
        for body in ({"ip": "x", "request_id": "k" * 20}, {"ip": BLOCKED_IP},
                     {"ip": BLOCKED_IP, "request_id": "bad key with spaces!"}):
            async with session.post("http://daemon/v1/promise", json=body) as resp:
                assert resp.status == 400
        assert await link.selfservice("promise", "9.9.9.9", "k" * 20) is None
    finally:
        await link.close()
