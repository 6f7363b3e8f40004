"""The TCP listener needs the bearer token; the Unix socket does not."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from debtgate.api.mgmt import make_mgmt_app, serve_mgmt

from .backend import MemoryBackend
from .conftest import Served

PATHS = [("GET", "/healthz"), ("GET", "/status"), ("GET", "/metrics"), ("GET", "/overrides"),
         ("POST", "/resync"), ("POST", "/guard/approve"), ("GET", "/openapi.json"),
         ("DELETE", "/overrides/x"), ("GET", "/subscribers/ACC0001")]
WRONG = [None, "Bearer", "Bearer ", "Bearer wrong", "Basic czNjcmV0", "bearer s3cret",
         "Bearer s3cret-token-0123456789abcdeX", "Bearer s3cret-token-0123456789abcdef0",
         "Bearer \u00e9\u00e9"]


@pytest.mark.parametrize("header", WRONG)
@pytest.mark.parametrize(("method", "path"), PATHS)
async def test_tcp_refuses_without_right_token(served: Served, method: str, path: str,
                                               header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    async with aiohttp.ClientSession() as s, s.request(method, served.url + path,
                                                       headers=headers) as r:
        assert r.status == 401
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert (await r.json())["error"]
    assert served.backend.resyncs == 0


async def test_tcp_accepts_right_token(served: Served) -> None:
    headers = {"Authorization": f"Bearer {served.token}"}
    async with aiohttp.ClientSession() as s, s.post(served.url + "/resync",
                                                    headers=headers) as r:
        assert r.status == 202
    assert served.backend.resyncs == 1


async def test_unix_needs_no_token(served: Served) -> None:
    conn = aiohttp.UnixConnector(path=str(served.socket))
    async with aiohttp.ClientSession(connector=conn) as s, s.post("http://x/resync") as r:
        assert r.status == 202


async def test_token_never_logged(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    async with aiohttp.ClientSession() as s:
        for header in (f"Bearer {served.token}x", f"Bearer {served.token}"):
            async with s.get(served.url + "/status", headers={"Authorization": header}):
                pass
    assert served.token not in caplog.text


async def test_tcp_without_token_refused_at_start() -> None:
    app = make_mgmt_app(MemoryBackend(), None)
    with pytest.raises(ValueError, match="token"):
        await serve_mgmt(app, None, "127.0.0.1:0")


async def test_bad_listen_address() -> None:
    app = make_mgmt_app(MemoryBackend(), "t" * 20)
    for bad in ("127.0.0.1", "127.0.0.1:http", ":80", "127.0.0.1:70000"):
        with pytest.raises(ValueError, match="ADDRESS:PORT"):
            await serve_mgmt(app, None, bad)
    assert isinstance(app, web.Application)
