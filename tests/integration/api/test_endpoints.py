"""Every endpoint over the real Unix socket (no token) and the TCP listener (token)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from debtgate.errors import ApplyError

from .conftest import Served

pytestmark = pytest.mark.timeout(60)


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str, headers: dict[str, str]):
        self.session, self.base, self.headers = session, base, headers

    async def __call__(self, method: str, path: str, **kw: Any) -> tuple[int, Any, str]:
        headers = {**self.headers, **kw.pop("headers", {})}
        async with self.session.request(method, self.base + path, headers=headers, **kw) as r:
            text = await r.text()
            ctype = r.headers.get("Content-Type", "")
            data = json.loads(text) if ctype.startswith("application/json") and text else text
            return r.status, data, ctype


@pytest.fixture(params=["unix", "tcp"])
async def api(request: pytest.FixtureRequest, served: Served) -> AsyncIterator[Api]:
    if request.param == "unix":
        session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(served.socket)))
        base, headers = "http://localhost", {}
    else:
        session = aiohttp.ClientSession()
        base, headers = served.url, {"Authorization": f"Bearer {served.token}"}
    async with session:
        yield Api(session, base, headers)


async def test_socket_is_private(served: Served) -> None:
    mode = os.stat(served.socket).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


async def test_health_ready_status(api: Api, served: Served) -> None:
    status, data, _ = await api("GET", "/healthz")
    assert status == 200 and data["alive"] is True
    assert (await api("GET", "/readyz"))[:2] == (200, {"ready": True, "reason": "synced"})
    served.backend.is_ready = (False, "feed stale for 600 s")
    status, data, _ = await api("GET", "/readyz")
    assert status == 503 and data == {"ready": False, "reason": "feed stale for 600 s"}
    status, data, _ = await api("GET", "/status")
    assert status == 200 and data["subscribers"]["active"] == 1200


async def test_metrics(api: Api) -> None:
    status, text, ctype = await api("GET", "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    assert 'debtgate_subscribers{state="warn"} 30.0' in text
    assert 'debtgate_set_elements{set="warn_v4",view="kernel"} 29.0' in text
    status, text, ctype = await api("GET", "/metrics",
                                    headers={"Accept": "application/openmetrics-text"})
    assert ctype.startswith("application/openmetrics-text") and text.endswith("# EOF\n")


@pytest.mark.parametrize("key", ["100.64.0.2", "ACC0002", "2001:db8:0::2"])
async def test_explain(api: Api, key: str) -> None:
    status, data, _ = await api("GET", f"/subscribers/{key}")
    assert status == 200 and data["account"] == "ACC0002" and data["state"] == "blocked"


async def test_explain_unknown(api: Api) -> None:
    status, data, _ = await api("GET", "/subscribers/10.9.9.9")
    assert status == 404 and "10.9.9.9" in data["error"]


async def test_override_lifecycle(api: Api, served: Served) -> None:
    body = {"account": "ACC0001", "action": "restrict", "reason": "fraud", "ttl_seconds": 7200}
    status, created, _ = await api("POST", "/overrides", json=body)
    assert status == 201 and created["account"] == "ACC0001" and created["action"] == "restrict"
    expires = datetime.fromisoformat(created["expires_at"])
    assert timedelta(seconds=7190) < expires - datetime.now(UTC) <= timedelta(seconds=7200)
    status, items, _ = await api("GET", "/overrides")
    assert status == 200 and [o["id"] for o in items] == [created["id"]]
    assert (await api("DELETE", f"/overrides/{created['id']}"))[0] == 204
    assert (await api("DELETE", f"/overrides/{created['id']}"))[0] == 404
    assert (await api("GET", "/overrides"))[1] == []
    assert all(a in ("unix:root", "tcp:127.0.0.1") for a in served.backend.authors)


async def test_override_until(api: Api) -> None:
    until = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    body = {"account": "ACC0002", "action": "release", "reason": "promised payment",
            "expires_at": until.isoformat().replace("+00:00", "Z")}
    status, created, _ = await api("POST", "/overrides", json=body)
    assert status == 201 and datetime.fromisoformat(created["expires_at"]) == until


async def test_author_header(api: Api, served: Served) -> None:
    body = {"account": "ACC0001", "action": "release", "reason": "x"}
    await api("POST", "/overrides", json=body, headers={"X-Debtgate-Author": "\"al\\ice'\t"})
    assert served.backend.authors[-1].startswith("alice (")


BAD = [
    (b"{", "body must be JSON"),
    (b"\xff\xfe", "JSON"),
    (b"[1]", "JSON object"),
    (b'"x"', "JSON object"),
    (b"[" * 10000, "nested too deeply"),
    (b'{"account": "ACC0001", "action": "ban", "reason": "x"}', "action"),
    (b'{"account": "", "action": "restrict", "reason": "x"}', "account"),
    (b'{"account": "ACC0001", "action": "restrict"}', "reason"),
    (b'{"account": "ACC0001", "action": "restrict", "reason": "x", "x": 1}', "unknown field"),
    (b'{"account": "ACC0001", "action": "restrict", "reason": "x", "ttl_seconds": -5}', "ttl"),
    (b'{"account": "ACC0001", "action": "restrict", "reason": "x", "ttl_seconds": true}', "ttl"),
    (b'{"account": "ACC0001", "action": "restrict", "reason": "x", "ttl_seconds": 1.5}', "ttl"),
    (b'{"account": "ACC0001", "action": "restrict", "reason": "x", "expires_at": "soon"}',
     "ISO 8601"),
    (b'{"account": "ACC0001", "action": "restrict", "reason": "x", '
     b'"expires_at": "2099-01-01T00:00:00"}', "offset"),
    (b'{"account": "ACC0001", "action": "restrict", "reason": "x", '
     b'"expires_at": "2001-01-01T00:00:00Z"}', "past"),
    (b'{"account": "ACC0001", "action": "restrict", "reason": "x", '
     b'"expires_at": "2099-01-01T00:00:00Z", "ttl_seconds": 5}', "not both"),
    (b'{"account": "NOPE", "action": "restrict", "reason": "x"}', "unknown account"),
]


@pytest.mark.parametrize(("body", "message"), BAD)
async def test_bad_override_is_400(api: Api, body: bytes, message: str) -> None:
    status, data, ctype = await api("POST", "/overrides", data=body,
                                    headers={"Content-Type": "application/json"})
    assert status == 400 and ctype.startswith("application/json")
    assert message in data["error"]


async def test_body_limit(api: Api) -> None:
    body = {"account": "ACC0001", "action": "restrict", "reason": "x" * 20000}
    status, data, _ = await api("POST", "/overrides", json=body)
    assert status == 413 and "too large" in data["error"]


async def test_resync_and_guard(api: Api, served: Served) -> None:
    status, data, _ = await api("POST", "/resync")
    assert status == 202 and data == {"accepted": True} and served.backend.resyncs == 1
    status, data, _ = await api("POST", "/guard/approve")
    assert status == 409 and "not holding" in data["error"]
    served.backend.guard_holding = 250
    status, data, _ = await api("POST", "/guard/approve")
    assert status == 200 and data["released"] == 250


async def test_unknown_route_and_method_are_json(api: Api) -> None:
    status, data, _ = await api("GET", "/nope")
    assert status == 404 and "error" in data
    status, data, _ = await api("PUT", "/status")
    assert status == 405 and "error" in data


async def test_openapi_lists_every_route(api: Api) -> None:
    status, doc, _ = await api("GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.0")
    assert set(doc["paths"]) == {"/healthz", "/readyz", "/status", "/metrics",
                                 "/subscribers/{key}", "/overrides", "/overrides/{id}",
                                 "/resync", "/guard/approve", "/openapi.json"}


async def test_backend_failures(api: Api, served: Served) -> None:
    served.backend.resync_error = ApplyError("nft: busy")
    status, data, _ = await api("POST", "/resync")
    assert status == 503 and "nft: busy" in data["error"]
    served.backend.resync_error = RuntimeError("bug with a secret detail")
    status, data, _ = await api("POST", "/resync")
    assert status == 500 and "secret" not in data["error"]
