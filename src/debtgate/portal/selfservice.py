"""Self-service on the stub page: the promised-payment and resume buttons and their results.

Each page showing a button carries a CSRF token (bound to the asking address) and a
fresh idempotency key: a double click sends the same key twice and the daemon answers
both with the one decision of the billing. ``POST /promise`` and ``POST /resume``
answer 303 to the page with ``done=<action>-<outcome>``; the page then says what
happened in plain words, and its usual poll of ``/api/state`` reports the subscriber
back online as soon as the billing's change has reached the gateway.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote

from aiohttp import web

from debtgate.portal.handlers import checked_form, error_page
from debtgate.portal.lookup import DaemonUnavailable, SelfServiceResult
from debtgate.portal.offers import outcome
from debtgate.portal.render import original
from debtgate.portal.state import ADDRESS, PORTAL
from debtgate.portal.urls import portal_redirect

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


async def _act(request: web.Request, action: str) -> web.StreamResponse:
    portal = request.app[PORTAL]
    ip = request[ADDRESS]
    form = await checked_form(request, f"self-service {action}")
    if isinstance(form, web.StreamResponse):
        return form
    key = form.get("request_id")
    if not isinstance(key, str) or not _KEY.match(key):
        return error_page(portal, request, "csrf", 403)
    portal.probes.forget(ip)
    call = getattr(portal.link, "selfservice", None)
    if call is None:
        result: SelfServiceResult | None = SelfServiceResult(ok=False, reason="disabled")
    else:
        try:
            result = await call(action, ip, key)
        except DaemonUnavailable as exc:
            log.warning("self-service %s from %s failed: %s", action, ip, exc)
            result = SelfServiceResult(ok=False, reason="unavailable")
    raw, sig = form.get("url"), form.get("sig")
    url = original(portal, ip, raw if isinstance(raw, str) else None,
                   sig if isinstance(sig, str) else None)
    target = portal_redirect("/", url, portal.language(request))
    target += ("&" if "?" in target else "?") + "done=" + quote(outcome(action, result))
    return web.Response(status=303, headers={"Location": target})


async def promise(request: web.Request) -> web.StreamResponse:
    """POST /promise: a promised payment (CSRF-checked, idempotent by ``request_id``)."""
    return await _act(request, "promise")


async def resume(request: web.Request) -> web.StreamResponse:
    """POST /resume: resume a voluntary pause (CSRF-checked, idempotent by ``request_id``)."""
    return await _act(request, "resume")
