"""Handlers of the portal's own URLs: the page, the warning acknowledgement, the APIs."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from debtgate.portal.lookup import DaemonUnavailable
from debtgate.portal.render import Page, original
from debtgate.portal.state import ADDRESS, FORM_LANG, PORTAL, Portal
from debtgate.portal.urls import portal_redirect

log = logging.getLogger(__name__)

CAPTIVE_JSON = "application/captive+json"


def html_response(portal: Portal, page: Page, ip: str) -> web.Response:
    """An aiohttp response of ``page`` (its CSP, language; the body filled for ``ip``)."""
    return web.Response(
        status=page.status, body=portal.builder.body(page, ip),
        content_type="text/html", charset="utf-8",
        headers={"Content-Language": page.lang, "Content-Security-Policy": page.csp},
    )


def error_page(portal: Portal, request: web.Request, kind: str, status: int) -> web.Response:
    page = portal.builder.error(kind, status, portal.language(request))
    return html_response(portal, page, request[ADDRESS])


async def page(request: web.Request) -> web.Response:
    """GET /: the page for the asking address's state."""
    portal = request.app[PORTAL]
    ip = request[ADDRESS]
    try:
        view = await portal.link.view(ip)
    except DaemonUnavailable as exc:
        log.warning("page shown as unavailable: %s", exc)
        return error_page(portal, request, "unavailable", 503)
    # the raw query, as the door passes it: yarl's decoded ``query_string`` would be
    # decoded once more by the page (a ``%2B`` in a signed URL read as a space)
    built = portal.builder.page(ip, view, request.rel_url.raw_query_string,
                                request.headers.get("Accept-Language"))
    return html_response(portal, built, ip)


async def checked_form(request: web.Request, what: str) -> Any:
    """The POSTed form if its CSRF token is valid for the asking address, else the 403
    page (a ``web.Response``); the form's ``lang`` is remembered for the answer."""
    portal = request.app[PORTAL]
    ip = request[ADDRESS]
    form = await request.post()
    lang_field = form.get("lang")
    if isinstance(lang_field, str):
        request[FORM_LANG] = lang_field
    token = form.get("csrf")
    if not portal.csrf.verify(ip, token if isinstance(token, str) else None):
        log.info("%s with a bad CSRF token from %s", what, ip)
        return error_page(portal, request, "csrf", 403)
    return form


async def acknowledge(request: web.Request) -> web.StreamResponse:
    """POST /ack: acknowledge the warning (CSRF-checked), then go where the user was going."""
    portal = request.app[PORTAL]
    ip = request[ADDRESS]
    form = await checked_form(request, "acknowledgement")
    if isinstance(form, web.StreamResponse):
        return form
    portal.probes.forget(ip)
    try:
        result = await portal.link.acknowledge(ip)
    except DaemonUnavailable as exc:
        log.warning("acknowledgement failed: %s", exc)
        return error_page(portal, request, "unavailable", 503)
    raw, sig = form.get("url"), form.get("sig")
    url = original(portal, ip, raw if isinstance(raw, str) else None,
                   sig if isinstance(sig, str) else None)
    if result.acknowledged and url:
        target = url.url
    else:
        target = portal_redirect("/", url, portal.language(request))
    return web.Response(status=303, headers={"Location": target})


def _json(data: dict[str, Any], status: int = 200, content_type: str = "application/json"
          ) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type=content_type)


async def api_state(request: web.Request) -> web.Response:
    """GET /api/state: {"state", "online"} of the asking address only."""
    portal = request.app[PORTAL]
    try:
        view = await portal.link.view(request[ADDRESS])
    except DaemonUnavailable:
        return _json({"state": "unavailable", "online": False}, 503)
    if view is None:
        return _json({"state": "unknown", "online": False})
    return _json({"state": view.state.value, "online": not view.captive})


async def api_captive(request: web.Request) -> web.Response:
    """GET /api/captive: the RFC 8908 Captive Portal API for the asking address."""
    portal = request.app[PORTAL]
    try:
        view = await portal.link.view(request[ADDRESS])
    except DaemonUnavailable:
        return _json({"error": "unavailable"}, 503)
    cfg = portal.config
    if view is None:
        data: dict[str, Any] = {"captive": False}
    else:
        data = {
            "captive": view.captive,
            "user-portal-url": cfg.captive_portal_url,
            "can-extend-session": False,
        }
        if cfg.venue_info_url:
            data["venue-info-url"] = cfg.venue_info_url
    resp = _json(data, content_type=CAPTIVE_JSON)
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


async def not_found(request: web.Request) -> web.Response:
    """Anything else on the portal's own host."""
    portal = request.app[PORTAL]
    if request.method not in ("GET", "HEAD"):
        return web.Response(status=405, text="Method Not Allowed",
                            headers={"Allow": "GET, HEAD"})
    return error_page(portal, request, "notfound", 404)
