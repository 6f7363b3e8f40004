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
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from ..model import State
from .handlers import checked_form, error_page
from .i18n import format_money
from .lookup import DaemonUnavailable, SelfServiceResult, SubscriberView
from .render import original
from .state import ADDRESS, PORTAL, Portal
from .urls import portal_redirect

if TYPE_CHECKING:
    from .render import PageBuilder

log = logging.getLogger(__name__)

ACTIONS = ("promise", "resume")
REASONS = frozenset({
    "limit", "state", "no_debt", "debt_too_high", "tariff", "rate_limited", "disabled",
    "billing_timeout", "billing_unavailable", "billing_error", "unknown_account", "days",
    "bad_request", "unavailable",
})
"""Outcomes the templates explain in words; any other refusal reads as "other"."""
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_DONE = re.compile(r"^(promise|resume)-([a-z_]{1,32})$")


def outcome(action: str, result: SelfServiceResult | None) -> str:
    """The ``done=`` value of a result: ``promise-ok``, ``promise-limit``, ``resume-other``..."""
    if result is None:
        return f"{action}-unknown_account"
    if result.ok:
        return f"{action}-ok"
    reason = (result.reason or "other").lower()
    return f"{action}-{reason if reason in REASONS else 'other'}"


def parse_done(raw: str | None) -> dict[str, str] | None:
    match = _DONE.match(raw or "")
    if match is None:
        return None
    reason = match.group(2)
    if reason != "ok" and reason not in REASONS:
        reason = "other"
    return {"action": match.group(1), "reason": reason}


def context(portal: Portal, view: SubscriberView, lang: str, done_raw: str | None,
            builder: PageBuilder) -> dict[str, Any]:
    """What the pages need for the buttons and the result message (the CSRF token and
    the idempotency key are placeholders the builder fills per response)."""
    offer = view.promise
    can_promise = bool(offer and offer.eligible and view.state in (State.BLOCKED, State.WARN))
    done = parse_done(done_raw)
    ctx: dict[str, Any] = {
        "promise": offer if can_promise else None,
        "offer": offer,
        "promise_days": offer.days if offer else 0,
        "promise_max_debt": (format_money(offer.max_debt, view.currency, lang)
                             if offer and offer.max_debt is not None else ""),
        "can_resume": view.can_resume and view.state is State.PAUSED,
        "done": done,
        "request_id": builder.key_slot,
    }
    if done is not None and done["reason"] != "ok" and done["reason"] not in (
            "billing_timeout", "billing_unavailable", "billing_error", "unavailable"):
        # A definitive refusal: no second button right under it.
        ctx["promise"] = None if done["action"] == "promise" else ctx["promise"]
        ctx["can_resume"] = False if done["action"] == "resume" else ctx["can_resume"]
    if ctx["promise"] or ctx["can_resume"]:
        ctx["csrf"] = builder.csrf_slot
    return ctx


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
