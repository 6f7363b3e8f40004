"""The management API: what the NOC and the ``debtgate`` CLI ask a running daemon.

The daemon implements :class:`ManagementBackend`; :func:`make_mgmt_app` wraps
it and :func:`serve_mgmt` serves it on the root-only Unix socket (no token)
and/or a TCP listener that requires ``Authorization: Bearer <token>``.
Endpoints, the status shape and the metrics are described in ``docs/api.md``;
``GET /openapi.json`` serves the machine-readable description.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from debtgate.api import openapi as oa
from debtgate.api.auth import TOKEN, author_of, bearer_auth, error, json_errors
from debtgate.api.metrics import make_registry, render

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
"""Largest request body accepted (an override is a few hundred bytes)."""
ACTIONS = ("restrict", "release")


class ManagementBackend(Protocol):
    """What the daemon provides to the management API (see ``docs/api.md``)."""

    def health(self) -> dict[str, Any]: ...
    def ready(self) -> tuple[bool, str]: ...
    def status(self) -> dict[str, Any]: ...
    def explain(self, key: str) -> dict[str, Any] | None: ...
    def list_overrides(self) -> list[dict[str, Any]]: ...
    async def add_override(self, account: str, action: str, reason: str,
                           expires_at: datetime | None, author: str) -> dict[str, Any]: ...
    async def delete_override(self, override_id: str, author: str) -> bool: ...
    async def resync(self) -> None: ...
    async def approve_guard(self, author: str) -> dict[str, Any]: ...


BACKEND: web.AppKey[ManagementBackend] = web.AppKey("backend", ManagementBackend)


def _default(value: object) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str)
    return str(value)


def _json(data: Any, status: int = 200) -> web.Response:
    body = json.dumps(data, default=_default, ensure_ascii=False)
    return web.Response(text=body, status=status, content_type="application/json")


def _backend(request: web.Request) -> ManagementBackend:
    return request.app[BACKEND]


async def _healthz(request: web.Request) -> web.Response:
    return _json({"alive": True, **_backend(request).health()})


async def _readyz(request: web.Request) -> web.Response:
    ready, reason = _backend(request).ready()
    return _json({"ready": bool(ready), "reason": reason}, 200 if ready else 503)


async def _status(request: web.Request) -> web.Response:
    return _json(_backend(request).status())


async def _metrics(request: web.Request) -> web.Response:
    body, content_type = render(request.app[REGISTRY], request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


def normalize_key(raw: str) -> str:
    """An address in canonical form, or the account as given."""
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return raw


async def _explain(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    if not key or len(key) > oa.MAX_KEY or not key.isprintable():
        return error("no such subscriber", 404)
    found = _backend(request).explain(normalize_key(key))
    if found is None:
        return error(f"no subscriber with address or account {key!r}", 404)
    return _json(found)


async def _list_overrides(request: web.Request) -> web.Response:
    return _json(_backend(request).list_overrides())


def _bounded_text(payload: dict[str, Any], name: str, limit: int) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if len(value) > limit or not value.isprintable():
        raise ValueError(f"{name} must be printable and at most {limit} characters")
    return value.strip()


def _expiry(payload: dict[str, Any], now: datetime) -> datetime | None:
    until, ttl = payload.get("expires_at"), payload.get("ttl_seconds")
    if until is not None and ttl is not None:
        raise ValueError("give expires_at or ttl_seconds, not both")
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= oa.MAX_TTL:
            raise ValueError(f"ttl_seconds must be an integer from 1 to {oa.MAX_TTL}")
        return now + timedelta(seconds=ttl)
    if until is None:
        return None
    try:
        when = datetime.fromisoformat(until) if isinstance(until, str) else None
    except ValueError:
        when = None
    if when is None:
        raise ValueError("expires_at must be an ISO 8601 date-time, e.g. 2025-03-01T18:00:00Z")
    if when.tzinfo is None:
        raise ValueError("expires_at needs a UTC offset, e.g. 2025-03-01T18:00:00+03:00")
    if when <= now:
        raise ValueError("expires_at is in the past")
    if when - now > timedelta(seconds=oa.MAX_TTL):
        raise ValueError("expires_at is more than a year ahead")
    return when.astimezone(UTC)


def parse_override(payload: object, now: datetime) -> tuple[str, str, str, datetime | None]:
    """Validate a ``POST /overrides`` body; raises ValueError with a message for people."""
    if not isinstance(payload, dict):
        raise ValueError("body must be a JSON object")
    unknown = set(payload) - {"account", "action", "reason", "expires_at", "ttl_seconds"}
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    account = _bounded_text(payload, "account", oa.MAX_ACCOUNT)
    action = payload.get("action")
    if action not in ACTIONS:
        raise ValueError("action must be 'restrict' or 'release'")
    reason = _bounded_text(payload, "reason", oa.MAX_REASON)
    return account, str(action), reason, _expiry(payload, now)


async def _add_override(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        payload = json.loads(raw)
        account, action, reason, expires = parse_override(payload, datetime.now(UTC))
    except json.JSONDecodeError:
        return error("body must be JSON", 400)
    except RecursionError:
        return error("body is nested too deeply", 400)
    except ValueError as exc:  # UnicodeDecodeError or parse_override's message
        message = "body must be UTF-8 JSON" if isinstance(exc, UnicodeDecodeError) else str(exc)
        return error(message or "bad request", 400)
    author = author_of(request)
    try:
        created = await _backend(request).add_override(account, action, reason, expires, author)
    except ValueError as exc:
        return error(str(exc) or "override refused", 400)
    log.info("override added by %s: account=%s action=%s expires=%s", author, account, action,
             expires.isoformat() if expires else "never")
    return _json(created, 201)


async def _delete_override(request: web.Request) -> web.Response:
    oid = request.match_info["id"]
    author = author_of(request)
    if len(oid) > oa.MAX_ID or not await _backend(request).delete_override(oid, author):
        return error(f"no override {oid!r}", 404)
    log.info("override %s deleted by %s", oid, author)
    return web.Response(status=204)


async def _resync(request: web.Request) -> web.Response:
    await _backend(request).resync()
    log.info("resync requested by %s", author_of(request))
    return _json({"accepted": True}, 202)


async def _approve(request: web.Request) -> web.Response:
    author = author_of(request)
    try:
        result = await _backend(request).approve_guard(author)
    except ValueError as exc:
        return error(str(exc) or "nothing to approve", 409)
    log.warning("guard approval by %s: %s", author, result)
    return _json(result)


async def _openapi(request: web.Request) -> web.Response:
    return _json(oa.openapi_document())


REGISTRY: web.AppKey[Any] = web.AppKey("registry", object)


def make_mgmt_app(backend: ManagementBackend, token: str | None) -> web.Application:
    """The management application; ``token`` guards every non-Unix-socket request."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[json_errors, bearer_auth])
    app[BACKEND] = backend
    app[TOKEN] = token or None
    app[REGISTRY] = make_registry(backend.status)
    r = app.router
    r.add_get("/healthz", _healthz)
    r.add_get("/readyz", _readyz)
    r.add_get("/status", _status)
    r.add_get("/metrics", _metrics)
    r.add_get("/subscribers/{key}", _explain)
    r.add_get("/overrides", _list_overrides)
    r.add_post("/overrides", _add_override)
    r.add_delete("/overrides/{id}", _delete_override)
    r.add_post("/resync", _resync)
    r.add_post("/guard/approve", _approve)
    r.add_get("/openapi.json", _openapi)
    return app


def parse_listen(tcp: str) -> tuple[str, int]:
    """``ADDR:PORT`` or ``[V6]:PORT`` to (host, port); raises ValueError."""
    host, sep, port = tcp.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen must be ADDRESS:PORT, not {tcp!r}")
    return host, int(port)


async def serve_mgmt(app: web.Application, unix_path: Path | None,
                     tcp: str | None) -> list[web.AppRunner]:
    """Serve ``app``; returns its runner in a list (``await r.cleanup()`` each to stop).

    The Unix socket (a stale one is replaced) is created under umask 0177 and
    then chmod 0600: no window where others could connect. A TCP listener is
    refused unless the app has a token.
    """
    if tcp is not None and not app[TOKEN]:
        raise ValueError("a TCP management listener needs a token (api.token_file)")
    host, port = parse_listen(tcp) if tcp is not None else ("", 0)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        if unix_path is not None:
            unix_path = Path(unix_path)
            unix_path.parent.mkdir(parents=True, exist_ok=True)
            if unix_path.is_socket():
                unix_path.unlink()
            old_umask = os.umask(0o177)
            try:
                await web.UnixSite(runner, str(unix_path)).start()
            finally:
                os.umask(old_umask)
            unix_path.chmod(0o600)
            log.info("management API on unix:%s", unix_path)
        if tcp is not None:
            await web.TCPSite(runner, host, port).start()
            log.info("management API on tcp %s (bearer token required)", runner.addresses[-1])
    except BaseException:
        await runner.cleanup()
        raise
    return [runner]
