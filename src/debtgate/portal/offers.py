"""What the stub page offers and says about self-service (pure): the promised-payment and
resume buttons a subscriber's view allows, and the ``done=`` result of an action in
words the templates know. The page builder (:mod:`.render`) and the action handlers
(:mod:`.selfservice`) both use it from below."""

from __future__ import annotations

import re
from typing import Any

from debtgate.model import State
from debtgate.portal.i18n import format_money
from debtgate.portal.lookup import SelfServiceResult
from debtgate.view import SubscriberView

REASONS = frozenset({
    "limit", "state", "no_debt", "debt_too_high", "tariff", "rate_limited", "disabled",
    "billing_timeout", "billing_unavailable", "billing_error", "unknown_account", "days",
    "bad_request", "unavailable",
})
"""Outcomes the templates explain in words; any other refusal reads as "other"."""
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


def context(view: SubscriberView, lang: str, done_raw: str | None, key_slot: str,
            csrf_slot: str) -> dict[str, Any]:
    """What the pages need for the buttons and the result message (the CSRF token and
    the idempotency key are placeholders, ``csrf_slot`` and ``key_slot``, the page
    builder fills per response)."""
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
        "request_id": key_slot,
    }
    if done is not None and done["reason"] != "ok" and done["reason"] not in (
            "billing_timeout", "billing_unavailable", "billing_error", "unavailable"):
        # A definitive refusal: no second button right under it.
        ctx["promise"] = None if done["action"] == "promise" else ctx["promise"]
        ctx["can_resume"] = False if done["action"] == "resume" else ctx["can_resume"]
    if ctx["promise"] or ctx["can_resume"]:
        ctx["csrf"] = csrf_slot
    return ctx
