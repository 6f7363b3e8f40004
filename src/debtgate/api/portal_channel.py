"""The daemon side of the portal's local channel: HTTP on a Unix socket.

The portal process (unprivileged, no CAP_NET_ADMIN) asks the daemon two things:

``GET /v1/view?ip=IP``
    200 with the JSON view of the subscriber owning IP (:class:`debtgate.view.SubscriberView`,
    the type the portal decodes),
    404 when the address belongs to no subscriber of this gateway.
``POST /v1/ack`` with ``{"ip": IP}``
    200 ``{"acknowledged": true, "expires_in": seconds}``, or 409 when the
    address is not in the warn state.
``POST /v1/promise`` and ``POST /v1/resume`` with ``{"ip": IP, "request_id": KEY}``
    200 ``{"ok": bool, "reason": str|null, "action": ..., "days": n}`` (the billing's
    answer, or why it was not asked), 404 when the address is nobody's, 400 on bad
    input. Served by the backend's ``selfservice`` (:class:`SelfServiceBackend`,
    attached by :mod:`debtgate.selfservice.service`); without one the answer is
    ``{"ok": false, "reason": "disabled"}``.

The engine implements :class:`PortalBackend`; :func:`make_portal_api` wraps it
and :func:`serve_unix` serves it.
"""

from __future__ import annotations

import grp
import ipaddress
import json
import logging
import os
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from aiohttp.typedefs import Handler

from debtgate.view import SubscriberView, encode_view

log = logging.getLogger(__name__)

MAX_BODY = 1024
"""Largest request body the API accepts (an ack is ~30 bytes)."""


class PortalBackend(Protocol):
    """What the daemon's engine provides to the portal (``engine.portal``)."""

    errors: int
    """Requests of the channel refused as malformed (counted here, shown on the status)."""

    def view(self, ip: str) -> SubscriberView | None:
        """The view of the subscriber owning ``ip``, or None."""
        ...

    async def acknowledge(self, ip: str) -> dict[str, Any] | None:
        """Acknowledge ``ip``'s warning: ``{"acknowledged": True, "expires_in": s}``,
        or None when the address is not in warn."""
        ...


class SelfServiceBackend(Protocol):
    """Promised payment and resume (``engine.portal.selfservice`` while self-service runs)."""

    async def promise(self, ip: str, request_id: str) -> dict[str, Any] | None:
        """The billing's answer to a promised payment for ``ip``'s owner; None if nobody's."""
        ...

    async def resume(self, ip: str, request_id: str) -> dict[str, Any] | None:
        """The billing's answer to resuming ``ip``'s owner's paused service; None if nobody's."""
        ...


REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
"""An idempotency key: the portal puts a fresh one in each page's form."""


def _default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def _json(data: Mapping[str, Any], status: int = 200) -> web.Response:
    body = json.dumps(data, default=_default, ensure_ascii=False)
    return web.Response(text=body, status=status, content_type="application/json")


def _address(raw: object) -> str | None:
    if not isinstance(raw, str) or len(raw) > 64:
        return None
    try:
        return str(ipaddress.ip_address(raw.split("%", 1)[0]))
    except ValueError:
        return None


BACKEND: web.AppKey[PortalBackend] = web.AppKey("backend", PortalBackend)


async def _view(request: web.Request) -> web.Response:
    ip = _address(request.query.get("ip"))
    if ip is None:
        return _json({"error": "ip must be one IPv4 or IPv6 address"}, 400)
    view = request.app[BACKEND].view(ip)
    if view is None:
        return _json({"error": "unknown address"}, 404)
    return web.Response(body=encode_view(view), content_type="application/json")


async def _ack(request: web.Request) -> web.Response:
    try:
        payload = await request.json()
    except ValueError:
        return _json({"error": "body must be JSON"}, 400)
    ip = _address(payload.get("ip") if isinstance(payload, dict) else None)
    if ip is None:
        return _json({"error": "ip must be one IPv4 or IPv6 address"}, 400)
    result = await request.app[BACKEND].acknowledge(ip)
    if result is None:
        return _json({"error": "address is not in warn"}, 409)
    log.info("warning acknowledged by %s", ip)
    return _json(result)


async def _selfservice(request: web.Request) -> web.Response:
    try:
        payload = await request.json()
    except ValueError:
        return _json({"error": "body must be JSON"}, 400)
    if not isinstance(payload, dict):
        return _json({"error": "body must be a JSON object"}, 400)
    ip = _address(payload.get("ip"))
    key = payload.get("request_id")
    if ip is None or not isinstance(key, str) or not REQUEST_ID.match(key):
        return _json({"error": "ip must be one address, request_id 16-64 of [A-Za-z0-9_-]"}, 400)
    action = request.match_info["action"]
    service: SelfServiceBackend | None = getattr(request.app[BACKEND], "selfservice", None)
    if service is None:
        return _json({"ok": False, "reason": "disabled", "action": action})
    call = service.promise if action == "promise" else service.resume
    result = await call(ip, key)
    if result is None:
        return _json({"error": "unknown address"}, 404)
    return _json(result)


@web.middleware
async def _count_refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if response.status == 400:
        request.app[BACKEND].errors += 1
    return response


def make_portal_api(backend: PortalBackend) -> web.Application:
    """The aiohttp application the portal talks to."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_count_refusals])
    app[BACKEND] = backend
    app.router.add_get("/v1/view", _view)
    app.router.add_post("/v1/ack", _ack)
    app.router.add_post("/v1/{action:promise|resume}", _selfservice)
    return app


async def serve_unix(
    app: web.Application, path: Path | str, mode: int = 0o660, group: str | None = None
) -> web.AppRunner:
    """Serve ``app`` on a Unix socket at ``path`` (replacing a stale one).

    The socket gets ``mode`` and, if given, ``group`` (the portal's user must be a
    member). Returns the runner; ``await runner.cleanup()`` stops it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_socket():
        path.unlink()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    old_umask = os.umask(0o177)
    try:
        site = web.UnixSite(runner, str(path))
        await site.start()
    finally:
        os.umask(old_umask)
    if group is not None:
        os.chown(path, -1, grp.getgrnam(group).gr_gid)
    path.chmod(mode)
    log.info("portal API listening on %s", path)
    return runner
