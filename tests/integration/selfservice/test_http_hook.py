"""The HTTP webhook against a real aiohttp server that verifies the HMAC signature."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from debtgate.config.selfservice import HookSection
from debtgate.selfservice.hooks import HookFailed, HttpHook, sign

SECRET = b"0123456789abcdef-secret"


class Billing:
    def __init__(self) -> None:
        self.seen: list[dict] = []
        self.mode = "ok"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        want = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Debtgate-Signature", ""), want):
            return web.json_response({"error": "bad signature"}, status=401)
        data = json.loads(body)
        self.seen.append(data)
        if self.mode == "slow":
            await asyncio.sleep(2)
        if self.mode == "error":
            return web.Response(status=500, text="oops")
        if self.mode == "refuse":
            return web.json_response({"ok": False, "reason": "limit"})
        return web.json_response({"ok": True, "reason": None})


@pytest.fixture
async def billing(tmp_path):
    b = Billing()
    app = web.Application()
    app.router.add_post("/hook", b.handle)
    server = TestServer(app)
    await server.start_server()
    secret = tmp_path / "hook.secret"
    secret.write_bytes(SECRET + b"\n")
    cfg = HookSection(kind="http", url=str(server.make_url("/hook")), secret_file=secret,
                      timeout=0.5)
    hook = HttpHook(cfg)
    yield b, hook, cfg
    await hook.close()
    await server.close()


async def test_signed_request_and_answer(billing):
    b, hook, _ = billing
    answer = await hook.call("promise", "A-1", "key-1", days=5, address="100.64.1.11")
    assert answer.ok
    assert b.seen[0]["account"] == "A-1" and b.seen[0]["days"] == 5
    assert b.seen[0]["request_id"] == "key-1" and b.seen[0]["action"] == "promise"
    b.mode = "refuse"
    answer = await hook.call("resume", "A-1", "key-2")
    assert (answer.ok, answer.reason) == (False, "limit")
    assert "days" not in b.seen[1]


async def test_wrong_secret_is_rejected_by_the_billing(billing, tmp_path):
    b, _, cfg = billing
    other = tmp_path / "other.secret"
    other.write_bytes(b"another-secret-of-16+")
    hook = HttpHook(cfg.model_copy(update={"secret_file": other}))
    try:
        with pytest.raises(HookFailed) as exc:
            await hook.call("promise", "A-1", "key-1", days=5)
        assert exc.value.reason == "billing_error" and b.seen == []
    finally:
        await hook.close()


@pytest.mark.parametrize(("mode", "reason"), [("slow", "billing_timeout"),
                                              ("error", "billing_error")])
async def test_failures(billing, mode, reason):
    b, hook, _ = billing
    b.mode = mode
    with pytest.raises(HookFailed) as exc:
        await hook.call("promise", "A-1", "key-1", days=5)
    assert exc.value.reason == reason


async def test_unreachable(tmp_path):
    secret = tmp_path / "s"
    secret.write_bytes(SECRET)
    hook = HttpHook(HookSection(kind="http", url="http://127.0.0.1:1/hook", secret_file=secret))
    try:
        with pytest.raises(HookFailed) as exc:
            await hook.call("promise", "A-1", "key-1", days=5)
        assert exc.value.reason == "billing_unavailable"
    finally:
        await hook.close()


def test_signature_format():
    assert sign(b"k" * 16, b"{}") == "sha256=" + hmac.new(b"k" * 16, b"{}",
                                                          hashlib.sha256).hexdigest()
